//! The gemma3 family: embeddings scaled by sqrt(n_embd), GeGLU (tanh), RMSNorm weights
//! used as stored (the converter already added Gemma's `1 +`), per-head Q/K norms,
//! post-attention and post-FFN norms, and sliding-window attention on all layers but
//! every `pattern`-th (default 6), whose rope base defaults to 10000.

use super::{Activation, Features, Keys, ModelError, SlidingWindow};

pub(super) fn features(
    keys: &Keys<'_>,
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    head_dim: usize,
) -> Result<Features, ModelError> {
    let swa = match keys.opt_u32("attention.sliding_window")? {
        Some(window) if window > 0 => {
            let pattern = keys
                .opt_u32("attention.sliding_window_pattern")?
                .unwrap_or(6);
            // Layer l is global when l % pattern == pattern - 1 (pattern 0: all local).
            let layers = (0..n_layer)
                .map(|l| pattern == 0 || l % pattern < pattern - 1)
                .collect();
            Some(SlidingWindow { window, layers })
        }
        _ => None,
    };
    // Gemma 3 27B scales queries by 1/sqrt(n_embd / n_head); the others by 1/sqrt(head_dim).
    let attn_scale = if n_layer == 62 {
        1.0 / ((n_embd / n_head) as f32).sqrt()
    } else {
        1.0 / (head_dim as f32).sqrt()
    };
    Ok(Features {
        rope_neox: true,
        activation: Activation::GeluTanh,
        embed_scale: Some((n_embd as f32).sqrt()),
        qk_norm: true,
        post_norms: true,
        qkv_bias_required: false,
        attn_scale,
        rope_base_swa: Some(keys.opt_f32("rope.freq_base_swa")?.unwrap_or(10000.0)),
        swa,
        final_softcap: keys
            .opt_f32("final_logit_softcapping")?
            .filter(|&c| c > 0.0),
    })
}
