//! A bound model's hyper-parameters as (name, value) rows: what `hearth show` prints
//! under "Architecture", so that a user sees how hearth read the file (the family's
//! optional parts included), not only the raw metadata.

use super::{Activation, Model};

impl Model {
    /// The hyper-parameters hearth runs the model with, in display order.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        let f = &c.features;
        let mut rows = vec![
            ("layers", c.n_layer.to_string()),
            (
                "attention heads",
                format!("{} query, {} key/value", c.n_head, c.n_head_kv),
            ),
            ("head size", c.head_dim.to_string()),
        ];
        if self.encoder.is_some() {
            rows.push(("feed-forward length", c.n_ff.to_string()));
            return rows;
        }
        match c.moe {
            Some(m) => rows.push((
                "experts",
                format!(
                    "{} of {} per token, {} wide{}",
                    m.n_used,
                    m.n_expert,
                    m.n_ff,
                    if m.n_ff_shared > 0 {
                        format!(", and a shared one {} wide", m.n_ff_shared)
                    } else {
                        String::new()
                    }
                ),
            )),
            None => rows.push(("feed-forward length", c.n_ff.to_string())),
        }
        let act = match f.activation {
            Activation::Silu => "SwiGLU",
            Activation::GeluTanh => "GeGLU (tanh)",
        };
        rows.push(("activation", act.to_string()));
        let mut rope = format!(
            "{}, base {}, {} of {} dims",
            if f.rope_neox { "NEOX" } else { "normal" },
            c.rope_base,
            c.n_rot,
            c.head_dim
        );
        if c.rope_scale != 1.0 {
            rope.push_str(&format!(", linear scale {}", 1.0 / c.rope_scale));
        }
        if self.rope_freqs.is_some() {
            rope.push_str(", frequency factors");
        }
        if let Some(r) = &self.rope_factors {
            rope.push_str(&format!(
                ", long/short factors (long above {} tokens), attention factor {}",
                r.n_ctx_orig, f.rope_attn_factor
            ));
        }
        rows.push(("rope", rope));
        rows.push(("attention scale", format!("{}", f.attn_scale)));
        if let Some(w) = &f.swa {
            let n = w.layers.iter().filter(|&&l| l).count();
            rows.push((
                "sliding window",
                format!("{} tokens on {n} of {} layers", w.window, c.n_layer),
            ));
        }
        let mut parts = Vec::new();
        if f.qk_norm {
            parts.push("Q/K norms");
        }
        if f.post_norms {
            parts.push("post-norms");
        }
        if self.layers.first().is_some_and(|l| l.bq.is_some()) {
            parts.push("Q/K/V biases");
        }
        if !parts.is_empty() {
            rows.push(("block", parts.join(", ")));
        }
        let mut scales = Vec::new();
        if let Some(s) = f.embed_scale {
            scales.push(format!("embeddings x{s}"));
        }
        if let Some(s) = f.residual_scale {
            scales.push(format!("residual x{s}"));
        }
        if let Some(s) = f.logit_scale {
            scales.push(format!("logits /{s}"));
        }
        if let Some(s) = f.attn_softcap {
            scales.push(format!("attention soft-cap {s}"));
        }
        if let Some(s) = f.final_softcap {
            scales.push(format!("logit soft-cap {s}"));
        }
        if !scales.is_empty() {
            rows.push(("multipliers", scales.join(", ")));
        }
        let tied = self.output.start == self.tok_embd.start;
        rows.push((
            "output",
            if tied {
                "tied to the embeddings"
            } else {
                "own matrix"
            }
            .to_string(),
        ));
        rows
    }
}
