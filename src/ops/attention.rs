//! Causal multi-head attention with grouped KV heads, over a KV cache in f32.
//!
//! Each (token, head) pair is independent: its query attends to the cached keys at
//! positions `start..=pos` of its own sequence (`start > 0` for sliding-window layers),
//! with a numerically stable online softmax, so no score buffer is needed at any
//! context length.

use super::pool::Pool;

/// The geometry of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually `1/sqrt(head_dim)`).
    pub scale: f32,
    /// Sliding window: a query at position p sees keys at positions > p - window.
    pub window: Option<usize>,
}

/// The cached keys and values a token attends to.
pub struct TokenKv<'c> {
    /// Keys of positions `0..=pos`, rows of `n_kv_head * head_dim`.
    pub k: &'c [f32],
    /// Values, laid out as `k`.
    pub v: &'c [f32],
    pub pos: usize,
}

/// `out[t][h]` = softmax over visible positions of `q[t][h] · k` times `v`.
///
/// `q` and `out` hold one row of `n_head * head_dim` per token; `kv(t)` gives token t's
/// cache (which must already hold that token's own key and value).
pub fn attention<'c, F>(shape: &AttnShape, q: &[f32], out: &mut [f32], kv: F)
where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    let hd = shape.head_dim;
    let group = shape.n_head / shape.n_kv_head.max(1);
    let kv_dim = shape.n_kv_head * hd;
    Pool::global().for_each_chunk_mut(&mut [out], &[hd], &|_, i, o| {
        let (t, h) = (i / shape.n_head, i % shape.n_head);
        let c = kv(t);
        let qh = &q[i * hd..(i + 1) * hd];
        let off = (h / group.max(1)) * hd;
        let start = shape.window.map_or(0, |w| (c.pos + 1).saturating_sub(w));
        attend(qh, c.k, c.v, kv_dim, off, start, c.pos, shape.scale, o);
    });
}

/// Keys scored per block: one max and one rescale per block instead of per key.
const BLOCK: usize = 64;

/// One query head against the cached positions `start..=end` (head offset `off` in
/// rows of `kv_dim`), written to `o`. Also compiled for AVX2 (chosen at run time); plain
/// multiply-adds, not `mul_add`, so the portable build has no software-FMA calls.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn attend(
    qh: &[f32],
    k: &[f32],
    v: &[f32],
    kv_dim: usize,
    off: usize,
    start: usize,
    end: usize,
    scale: f32,
    o: &mut [f32],
) {
    let hd = qh.len();
    o.fill(0.0);
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0.0f32;
    let mut s = [0.0f32; BLOCK];
    let mut p = start;
    while p <= end {
        let m = (end + 1 - p).min(BLOCK);
        let mut bmax = f32::NEG_INFINITY;
        for (j, sj) in s[..m].iter_mut().enumerate() {
            let at = (p + j) * kv_dim + off;
            *sj = dot(qh, &k[at..at + hd]) * scale;
            bmax = bmax.max(*sj);
        }
        if bmax > max {
            // Rescale what was accumulated under the old maximum (0 on the first block).
            let f = (max - bmax).exp();
            sum *= f;
            o.iter_mut().for_each(|x| *x *= f);
            max = bmax;
        }
        for (j, &sj) in s[..m].iter().enumerate() {
            let w = (sj - max).exp();
            sum += w;
            let at = (p + j) * kv_dim + off;
            for (x, &y) in o.iter_mut().zip(&v[at..at + hd]) {
                *x += w * y;
            }
        }
        p += m;
    }
    if sum > 0.0 {
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|x| *x *= inv);
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize the reduction.
    let mut acc = [0.0f32; 8];
    let (ac, ar) = a.as_chunks::<8>();
    let (bc, br) = b.as_chunks::<8>();
    for (x, y) in ac.iter().zip(bc) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a direct two-pass softmax in f64.
    #[test]
    fn matches_naive_softmax() {
        let shape = AttnShape {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 0.35,
            window: None,
        };
        let kv_dim = 16;
        let len = 9;
        let k: Vec<f32> = (0..len * kv_dim)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.1)
            .collect();
        let v: Vec<f32> = (0..len * kv_dim)
            .map(|i| ((i * 5 % 17) as f32 - 8.0) * 0.2)
            .collect();
        let q: Vec<f32> = (0..2 * 32)
            .map(|i| ((i * 3 % 19) as f32 - 9.0) * 0.15)
            .collect();
        for window in [None, Some(3)] {
            let shape = AttnShape { window, ..shape };
            let mut out = vec![0.0; 64];
            let pos = [4usize, 8];
            attention(&shape, &q, &mut out, |t| TokenKv {
                k: &k,
                v: &v,
                pos: pos[t],
            });
            for t in 0..2 {
                for h in 0..4 {
                    let qh = &q[t * 32 + h * 8..t * 32 + h * 8 + 8];
                    let off = (h / 2) * 8;
                    let start = window.map_or(0, |w| (pos[t] + 1).saturating_sub(w));
                    let s: Vec<f64> = (start..=pos[t])
                        .map(|p| {
                            (0..8)
                                .map(|j| qh[j] as f64 * k[p * kv_dim + off + j] as f64)
                                .sum::<f64>()
                                * shape.scale as f64
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                    for j in 0..8 {
                        let want: f64 = (start..=pos[t])
                            .zip(&s)
                            .map(|(p, x)| (x - m).exp() / z * v[p * kv_dim + off + j] as f64)
                            .sum();
                        let got = out[t * 32 + h * 8 + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-5,
                            "{window:?} t{t} h{h} j{j}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
