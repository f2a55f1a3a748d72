//! The mixture-of-experts feed-forward block (Qwen3-MoE): route each token to its top
//! experts, then run each expert once over all the tokens routed to it, so that an
//! expert's weights stream once per step however many tokens chose it, and experts no
//! token chose are never read (decode touches only the active parameters).
//!
//! Batch invariance: a token's output is the sum, in expert order, of its experts'
//! outputs on its own row; the matrix products give a row the same bits whatever rows
//! are beside it, so a token's result does not depend on the rest of the micro-batch.

use crate::model::{Activation, Model, Moe};
use crate::ops::{matmul, matmul_many, MatmulScratch};

/// Buffers for one micro-batch (empty for dense models).
#[derive(Default)]
pub(super) struct MoeScratch {
    /// Router logits, then probabilities: `n_expert` per token.
    probs: Vec<f32>,
    /// Each token's chosen experts and weights, `n_used` per token.
    choice: Vec<(usize, f32)>,
    /// The tokens routed to the expert being run, and their weights.
    rows: Vec<usize>,
    weights: Vec<f32>,
    /// Gathered input rows, the expert's gate and up activations, its output rows.
    xin: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    y: Vec<f32>,
    /// The mixture's output, accumulated over experts.
    acc: Vec<f32>,
}

impl MoeScratch {
    pub(super) fn new(model: &Model, cap: usize) -> MoeScratch {
        let c = &model.config;
        let Some(m) = c.moe else {
            return MoeScratch::default();
        };
        let z = |n: usize| vec![0.0f32; n];
        MoeScratch {
            probs: z(cap * m.n_expert),
            choice: vec![(0, 0.0); cap * m.n_used],
            rows: Vec::with_capacity(cap),
            weights: Vec::with_capacity(cap),
            xin: z(cap * c.n_embd),
            gate: z(cap * m.n_ff.max(m.n_ff_shared)),
            up: z(cap * m.n_ff.max(m.n_ff_shared)),
            y: z(cap * c.n_embd),
            acc: z(cap * c.n_embd),
        }
    }
}

/// Smallest weight sum the renormalisation divides by (llama.cpp clamps to f16's
/// smallest normal).
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// Softmax over `logits` (in place), then the `out.len()` most probable experts, most
/// probable first (ties: lower index), with their probabilities, renormalised to sum to 1
/// when `norm`.
fn route(logits: &mut [f32], norm: bool, out: &mut [(usize, f32)]) {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for l in logits.iter_mut() {
        *l = (*l - max).exp();
        sum += *l as f64;
    }
    let inv = (1.0 / sum) as f32;
    logits.iter_mut().for_each(|p| *p *= inv);
    for k in 0..out.len() {
        // Selection by repeated maximum: k is small (8 of 128 at most in practice).
        let mut best: Option<usize> = None;
        for (e, &p) in logits.iter().enumerate() {
            if out[..k].iter().any(|&(c, _)| c == e) {
                continue;
            }
            // NaN probabilities never win, so a NaN row still picks distinct experts.
            if best.is_none_or(|b| p > logits[b]) {
                best = Some(e);
            }
        }
        let e = best.unwrap_or(0);
        out[k] = (e, logits[e]);
    }
    if norm {
        let s: f32 = out.iter().map(|&(_, w)| w).sum();
        let s = s.max(MIN_WEIGHT_SUM);
        out.iter_mut().for_each(|(_, w)| *w /= s);
    }
}

/// `x` (`n` rows of `n_embd`, the block's normed input) becomes the mixture's output.
pub(super) fn forward(
    model: &Model,
    moe: &Moe,
    x: &mut [f32],
    n: usize,
    s: &mut MoeScratch,
    mm: &mut MatmulScratch,
) {
    let n_expert = moe.experts.len();
    let k = moe.n_used;
    let d = x.len() / n.max(1);
    let probs = &mut s.probs[..n * n_expert];
    matmul(&model.matrix(&moe.router), x, n, probs, mm);
    for (p, ch) in probs
        .chunks_exact_mut(n_expert)
        .zip(s.choice.chunks_exact_mut(k))
    {
        route(p, moe.norm_weights, ch);
    }
    let acc = &mut s.acc[..n * d];
    acc.fill(0.0);
    if let Some(sh) = &moe.shared {
        // Every token through the shared expert first (its output is the sum's start).
        let ff = sh.gate.rows;
        let (g, u) = (&mut s.gate[..n * ff], &mut s.up[..n * ff]);
        matmul_many(
            &[model.matrix(&sh.gate), model.matrix(&sh.up)],
            x,
            n,
            &mut [&mut g[..], &mut u[..]],
            mm,
        );
        super::forward::gated(Activation::Silu, g, u);
        matmul(&model.matrix(&sh.down), g, n, acc, mm);
    }
    for (e, ex) in moe.experts.iter().enumerate() {
        s.rows.clear();
        s.weights.clear();
        for (t, ch) in s.choice[..n * k].chunks_exact(k).enumerate() {
            if let Some(&(_, w)) = ch.iter().find(|&&(c, _)| c == e) {
                s.rows.push(t);
                s.weights.push(w);
            }
        }
        let m = s.rows.len();
        if m == 0 {
            continue;
        }
        let ff = ex.gate.rows;
        let xin = &mut s.xin[..m * d];
        for (dst, &t) in xin.chunks_exact_mut(d).zip(&s.rows) {
            dst.copy_from_slice(&x[t * d..(t + 1) * d]);
        }
        let (g, u) = (&mut s.gate[..m * ff], &mut s.up[..m * ff]);
        matmul_many(
            &[model.matrix(&ex.gate), model.matrix(&ex.up)],
            xin,
            m,
            &mut [&mut g[..], &mut u[..]],
            mm,
        );
        super::forward::gated(Activation::Silu, g, u);
        let y = &mut s.y[..m * d];
        matmul(&model.matrix(&ex.down), g, m, y, mm);
        for ((yr, &t), &w) in y.chunks_exact(d).zip(&s.rows).zip(&s.weights) {
            for (a, &b) in acc[t * d..(t + 1) * d].iter_mut().zip(yr) {
                *a += w * b;
            }
        }
    }
    x.copy_from_slice(acc);
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routing_picks_the_most_probable_and_renormalises() {
        let mut l = [0.0, 3.0, 1.0, 3.0, -2.0];
        let mut out = [(9, 0.0); 2];
        route(&mut l, true, &mut out);
        // A tie goes to the lower index; both chosen have equal weight 0.5.
        assert_eq!((out[0].0, out[1].0), (1, 3));
        assert!((out[0].1 - 0.5).abs() < 1e-6 && (out[1].1 - 0.5).abs() < 1e-6);

        let mut l = [2.0f32, 0.0, 1.0];
        let mut out = [(9, 0.0); 2];
        route(&mut l, false, &mut out);
        let z = 1.0 + 1f32.exp().recip() + 2f32.exp().recip();
        assert_eq!((out[0].0, out[1].0), (0, 2));
        assert!((out[0].1 - 1.0 / z).abs() < 1e-6);

        // NaN logits still choose distinct experts and never panic.
        let mut l = [f32::NAN; 4];
        let mut out = [(9, 0.0); 2];
        route(&mut l, true, &mut out);
        assert_ne!(out[0].0, out[1].0);
    }
}
