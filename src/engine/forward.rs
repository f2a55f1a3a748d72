//! The forward pass: one micro-batch of tokens (from any mix of sequences) through every
//! layer, writing their keys and values into their sequences' caches and the requested
//! logit rows into the output.
//!
//! Activations are row-major `[token][feature]` in scratch buffers sized at engine
//! creation for the largest micro-batch; a decode step uses their first rows.

use crate::model::{Activation, FeedForward, Model};
use crate::ops::act::{geglu, softcap, swiglu};
use crate::ops::attention::{attention, AttnShape, TokenKv};
use crate::ops::norm::{rmsnorm, rmsnorm_in_place};
use crate::ops::pool::Pool;
use crate::ops::rope::Rope;
use crate::ops::{matmul, matmul_many, MatmulScratch};

use super::kv::Sequence;

/// A token of a micro-batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub seq: usize,
    pub pos: usize,
    pub id: u32,
    /// Where its logits go in the step's output, if wanted.
    pub logits_row: Option<usize>,
}

/// Buffers for one micro-batch of up to `cap` tokens.
pub(super) struct Scratch {
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// Rope angles per token: global layers, then sliding-window layers.
    rope_global: Vec<f32>,
    rope_local: Vec<f32>,
    rope: Rope,
    rope_swa: Option<Rope>,
    mm: MatmulScratch,
    moe: super::moe::MoeScratch,
}

impl Scratch {
    /// Buffers for micro-batches of up to `cap` tokens, in sequences of up to `num_ctx`
    /// positions (which chooses Phi-3's rope factors).
    pub(super) fn new(model: &Model, cap: usize, num_ctx: usize) -> Scratch {
        let c = &model.config;
        let f = &c.features;
        let freqs = model.rope_freqs_for(num_ctx);
        let rope = Rope::new(c.n_rot, f.rope_neox, c.rope_base, c.rope_scale, freqs)
            .with_attn_factor(f.rope_attn_factor);
        let rope_swa = f
            .rope_base_swa
            .filter(|_| f.swa.is_some())
            .map(|base| Rope::new(c.n_rot, f.rope_neox, base, 1.0, None));
        let z = |n: usize| vec![0.0f32; n];
        Scratch {
            x: z(cap * c.n_embd),
            xb: z(cap * c.n_embd),
            q: z(cap * c.q_dim()),
            k: z(cap * c.kv_dim()),
            v: z(cap * c.kv_dim()),
            att: z(cap * c.q_dim().max(c.n_embd)),
            gate: z(cap * c.n_ff),
            up: z(cap * c.n_ff),
            rope_global: z(cap * rope.table_len()),
            rope_local: z(cap * rope.table_len()),
            rope,
            rope_swa,
            mm: MatmulScratch::default(),
            moe: super::moe::MoeScratch::new(model, cap),
        }
    }
}

pub(super) fn add_bias(rows: &mut [f32], bias: Option<&Vec<f32>>) {
    if let Some(b) = bias {
        for r in rows.chunks_exact_mut(b.len()) {
            for (x, y) in r.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

/// Rows per parallel task for the row-wise steps (norms, rope, residuals) of a prompt;
/// a decode step's few rows run on the calling thread (cheaper than waking the pool).
const PAR_ROWS: usize = 16;

/// Calls `f(first_row, rows)` over `out` (rows of `width` values) in chunks of
/// [`PAR_ROWS`] rows, in parallel when there are enough rows.
pub(super) fn by_rows(out: &mut [f32], width: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    if out.len() < 4 * PAR_ROWS * width {
        f(0, out);
        return;
    }
    Pool::global().for_each_chunk_mut(&mut [out], &[PAR_ROWS * width], &|_, c, part| {
        f(c * PAR_ROWS, part)
    });
}

/// `out = rmsnorm(x)` row by row, on the pool for a prompt.
fn norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    by_rows(out, d, &|r0, part| {
        rmsnorm(&x[r0 * d..r0 * d + part.len()], w, eps, part)
    });
}

/// `x += f * norm(o)` for rows of `d` values: the residual connection, with Gemma's
/// post-attention/post-FFN norms (`norm` = RMSNorm with `w` when given, else identity) and
/// Granite's residual multiplier (`f`, else 1: multiplying by 1 changes no bits).
fn add_residual(
    x: &mut [f32],
    o: &[f32],
    d: usize,
    w: Option<&Vec<f32>>,
    eps: f32,
    scale: Option<f32>,
) {
    let f = scale.unwrap_or(1.0);
    by_rows(x, d, &|r0, xs| {
        let os = &o[r0 * d..r0 * d + xs.len()];
        match w {
            Some(w) => {
                for (xr, or) in xs.chunks_exact_mut(d).zip(os.chunks_exact(d)) {
                    let scale = crate::ops::norm::rms_scale(or, eps);
                    for ((a, &b), &g) in xr.iter_mut().zip(or).zip(w) {
                        *a += (b * scale) * g * f;
                    }
                }
            }
            None => {
                for (a, b) in xs.iter_mut().zip(os) {
                    *a += b * f;
                }
            }
        }
    });
}

pub(super) fn forward(
    model: &Model,
    seqs: &mut [Option<Sequence>],
    s: &mut Scratch,
    toks: &[Token],
    logits: &mut [f32],
) {
    let c = &model.config;
    let ft = &c.features;
    let n = toks.len();
    let (d, qd, kvd, ff, hd) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff, c.head_dim);
    let rl = s.rope.table_len();

    let x = &mut s.x[..n * d];
    for (t, row) in toks.iter().zip(x.chunks_exact_mut(d)) {
        model.embed(t.id, row);
        if let Some(scale) = ft.embed_scale {
            row.iter_mut().for_each(|v| *v *= scale);
        }
    }
    for (i, t) in toks.iter().enumerate() {
        s.rope
            .table(t.pos, &mut s.rope_global[i * rl..(i + 1) * rl]);
        if let Some(r) = &s.rope_swa {
            r.table(t.pos, &mut s.rope_local[i * rl..(i + 1) * rl]);
        }
    }

    for (l, layer) in model.layers.iter().enumerate() {
        let local = ft.swa.as_ref().is_some_and(|w| w.layers[l]);
        norm_rows(
            &s.x[..n * d],
            &layer.attn_norm,
            c.rms_eps,
            &mut s.xb[..n * d],
        );

        let (q, k, v) = (&mut s.q[..n * qd], &mut s.k[..n * kvd], &mut s.v[..n * kvd]);
        matmul_many(
            &[
                model.matrix(&layer.wq),
                model.matrix(&layer.wk),
                model.matrix(&layer.wv),
            ],
            &s.xb[..n * d],
            n,
            &mut [&mut q[..], &mut k[..], &mut v[..]],
            &mut s.mm,
        );
        let (rope, table) = match (&s.rope_swa, local) {
            (Some(r), true) => (r, &s.rope_local),
            _ => (&s.rope, &s.rope_global),
        };
        // Per token: bias, per-head norm (Gemma 3), rotary embedding.
        let qk = |rows: &mut [f32], width: usize, r0: usize, bias, norm: &Option<Vec<f32>>| {
            add_bias(rows, bias);
            if let Some(w) = norm {
                rmsnorm_in_place(rows, w, c.rms_eps);
            }
            for (i, row) in rows.chunks_exact_mut(width).enumerate() {
                let t = r0 + i;
                rope.apply(row, hd, &table[t * rl..(t + 1) * rl]);
            }
        };
        by_rows(q, qd, &|r0, rows| {
            qk(rows, qd, r0, layer.bq.as_ref(), &layer.q_norm)
        });
        by_rows(k, kvd, &|r0, rows| {
            qk(rows, kvd, r0, layer.bk.as_ref(), &layer.k_norm)
        });
        add_bias(v, layer.bv.as_ref());

        // Store this micro-batch's keys and values (rounded to f16), then attend: every
        // query reads its keys and values, its own included, from the cache.
        for (i, t) in toks.iter().enumerate() {
            if let Some(seq) = seqs.get_mut(t.seq).and_then(Option::as_mut) {
                let r = i * kvd..(i + 1) * kvd;
                seq.store(l, t.pos, &k[r.clone()], &v[r]);
            }
        }
        let shape = AttnShape {
            n_head: c.n_head,
            n_kv_head: c.n_head_kv,
            head_dim: hd,
            scale: ft.attn_scale,
            softcap: ft.attn_softcap,
            window: if local {
                ft.swa.as_ref().map(|w| w.window)
            } else {
                None
            },
        };
        let att = &mut s.att[..n * qd];
        let seqs_ro: &[Option<Sequence>] = seqs;
        attention(&shape, q, att, |i| {
            let t = toks[i];
            // The engine only schedules tokens of live sequences.
            let seq = seqs_ro[t.seq].as_ref().expect("live sequence");
            let end = (t.pos + 1) * kvd;
            TokenKv {
                k: &seq.k[l][..end],
                v: &seq.v[l][..end],
                pos: t.pos,
            }
        });

        let o = &mut s.xb[..n * d];
        matmul(&model.matrix(&layer.wo), att, n, o, &mut s.mm);
        add_residual(
            &mut s.x[..n * d],
            o,
            d,
            layer.post_attn_norm.as_ref(),
            c.rms_eps,
            ft.residual_scale,
        );

        norm_rows(
            &s.x[..n * d],
            &layer.ffn_norm,
            c.rms_eps,
            &mut s.xb[..n * d],
        );
        match &layer.ffn {
            FeedForward::Dense { gate, up, down } => {
                let (g, u) = (&mut s.gate[..n * ff], &mut s.up[..n * ff]);
                matmul_many(
                    &[model.matrix(gate), model.matrix(up)],
                    &s.xb[..n * d],
                    n,
                    &mut [&mut g[..], &mut u[..]],
                    &mut s.mm,
                );
                gated(ft.activation, g, u);
                let o = &mut s.xb[..n * d];
                matmul(&model.matrix(down), g, n, o, &mut s.mm);
            }
            FeedForward::Experts(moe) => {
                // In place: the normed input rows become the mixture's output rows.
                super::moe::forward(model, moe, &mut s.xb[..n * d], n, &mut s.moe, &mut s.mm);
            }
        }
        add_residual(
            &mut s.x[..n * d],
            &s.xb[..n * d],
            d,
            layer.post_ffn_norm.as_ref(),
            c.rms_eps,
            ft.residual_scale,
        );
    }

    // Logits for the tokens that want them: gather, norm, project. Rows of one
    // micro-batch are consecutive in the step's output, starting at the first one's.
    let mut m = 0;
    let mut first = None;
    for (i, t) in toks.iter().enumerate() {
        if let Some(r) = t.logits_row {
            first.get_or_insert(r);
            rmsnorm(
                &s.x[i * d..(i + 1) * d],
                &model.output_norm,
                c.rms_eps,
                &mut s.xb[m * d..(m + 1) * d],
            );
            m += 1;
        }
    }
    let Some(first) = first else {
        return;
    };
    let nv = c.n_vocab;
    let out = &mut logits[first * nv..(first + m) * nv];
    matmul(
        &model.matrix(&model.output),
        &s.xb[..m * d],
        m,
        out,
        &mut s.mm,
    );
    if let Some(cap) = ft.final_softcap {
        softcap(out, cap);
    }
    if let Some(scale) = ft.logit_scale {
        let f = 1.0 / scale;
        out.iter_mut().for_each(|v| *v *= f);
    }
}

/// `g = act(g) * u`: the gated activation of a feed-forward block.
pub(super) fn gated(act: Activation, g: &mut [f32], u: &[f32]) {
    match act {
        Activation::Silu => swiglu(g, u),
        Activation::GeluTanh => geglu(g, u),
    }
}
