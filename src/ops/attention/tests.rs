//! Tests of both schedules and both kernels against an f64 softmax and each other.

use super::*;
use half::slice::HalfFloatSliceExt;

/// Deterministic pseudo-random values in about -1..1.
fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `fill` rounded to f16, as the engine stores a cache.
fn fill_h(n: usize, seed: u64) -> Vec<f16> {
    fill(n, seed).into_iter().map(f16::from_f32).collect()
}

fn widen(x: &[f16]) -> Vec<f32> {
    x.iter().map(|h| h.to_f32()).collect()
}

fn kernels() -> Vec<Kernel> {
    #[cfg(target_arch = "x86_64")]
    if super::super::act::simd::available() {
        return vec![Kernel::Portable, Kernel::Avx2];
    }
    vec![Kernel::Portable]
}

/// Direct two-pass softmax in f64 for query row `qh` over positions start..=pos.
fn naive(shape: &AttnShape, qh: &[f32], k: &[f32], v: &[f32], h: usize, pos: usize) -> Vec<f64> {
    let hd = shape.head_dim;
    let kv_dim = shape.n_kv_head * hd;
    let off = (h / (shape.n_head / shape.n_kv_head)) * hd;
    let start = shape.window.map_or(0, |w| (pos + 1).saturating_sub(w));
    let s: Vec<f64> = (start..=pos)
        .map(|p| {
            (0..hd)
                .map(|j| qh[j] as f64 * k[p * kv_dim + off + j] as f64)
                .sum::<f64>()
                * shape.scale as f64
        })
        .map(|x| match shape.softcap {
            Some(c) => c as f64 * (x / c as f64).tanh(),
            None => x,
        })
        .collect();
    let m = s.iter().cloned().fold(f64::MIN, f64::max);
    let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
    (0..hd)
        .map(|j| {
            (start..=pos)
                .zip(&s)
                .map(|(p, x)| (x - m).exp() / z * v[p * kv_dim + off + j] as f64)
                .sum()
        })
        .collect()
}

/// Against the f64 softmax, for both kernels, several head sizes (a multiple of 64,
/// not), GQA, MHA and MQA, contexts spanning many key blocks, with and without a window
/// and soft-capping.
#[test]
fn matches_naive_softmax() {
    for (n_head, n_kv_head, head_dim) in
        [(4, 2, 8), (9, 3, 64), (4, 1, 256), (2, 2, 24), (6, 2, 80)]
    {
        for (window, softcap) in [
            (None, None),
            (Some(3), None),
            (Some(37), None),
            (None, Some(1.5)),
            (Some(37), Some(4.0)),
        ] {
            let shape = AttnShape {
                n_head,
                n_kv_head,
                head_dim,
                scale: 1.0 / (head_dim as f32).sqrt() * 3.0,
                softcap,
                window,
            };
            let kv_dim = n_kv_head * head_dim;
            let row = n_head * head_dim;
            let len = 150;
            let k = fill_h(len * kv_dim, 1);
            let v = fill_h(len * kv_dim, 2);
            let (kf, vf) = (widen(&k), widen(&v));
            let pos = [0usize, 4, 8, 63, 64, 65, 100, 149];
            let q = fill(pos.len() * row, 3);
            for kernel in kernels() {
                let mut out = vec![0.0; pos.len() * row];
                attention_with(kernel, &shape, &q, &mut out, |t| TokenKv {
                    k: &k[..(pos[t] + 1) * kv_dim],
                    v: &v[..(pos[t] + 1) * kv_dim],
                    pos: pos[t],
                });
                for (t, &p) in pos.iter().enumerate() {
                    for h in 0..n_head {
                        let at = t * row + h * head_dim;
                        let want = naive(&shape, &q[at..at + head_dim], &kf, &vf, h, p);
                        for (j, w) in want.iter().enumerate() {
                            let got = out[at + j] as f64;
                            assert!(
                                (got - w).abs() < 2e-6,
                                "{kernel:?} hd{head_dim} {window:?} pos{p} h{h} j{j}: {got} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A token's output is bit-identical alone, in a prefill batch of its sequence, and in
/// a step mixing two sequences (whatever tiles the scheduler makes of them).
#[test]
fn batching_is_bit_identical() {
    for (n_head, n_kv_head, head_dim) in [(9, 3, 64), (4, 1, 256), (2, 2, 24), (8, 1, 8)] {
        for window in [None, Some(20)] {
            let shape = AttnShape {
                n_head,
                n_kv_head,
                head_dim,
                scale: 0.3,
                softcap: None,
                window,
            };
            let kv_dim = n_kv_head * head_dim;
            let row = n_head * head_dim;
            let len = 90;
            let (ka, va) = (fill_h(len * kv_dim, 10), fill_h(len * kv_dim, 11));
            let (kb, vb) = (fill_h(len * kv_dim, 12), fill_h(len * kv_dim, 13));
            let qa = fill(len * row, 14);
            let qb = fill(len * row, 15);
            for kernel in kernels() {
                // Alone: one call per token.
                let alone = |q: &[f32], k: &[f16], v: &[f16], p: usize| {
                    let mut o = vec![0.0; row];
                    attention_with(kernel, &shape, &q[p * row..(p + 1) * row], &mut o, |_| {
                        TokenKv {
                            k: &k[..(p + 1) * kv_dim],
                            v: &v[..(p + 1) * kv_dim],
                            pos: p,
                        }
                    });
                    o
                };
                // Batch: all of a's positions at once.
                let mut batch = vec![0.0; len * row];
                attention_with(kernel, &shape, &qa, &mut batch, |t| TokenKv {
                    k: &ka[..(t + 1) * kv_dim],
                    v: &va[..(t + 1) * kv_dim],
                    pos: t,
                });
                // Mixed: a's positions 40..90 interleaved in runs with b's 0..30 and
                // b's decode-like token 70.
                let mut toks: Vec<(bool, usize)> = Vec::new();
                for i in 0..50 {
                    toks.push((true, 40 + i));
                    if i % 7 == 3 {
                        toks.push((false, i % 30));
                    }
                }
                toks.push((false, 70));
                let mut q = Vec::new();
                for &(a, p) in &toks {
                    let src = if a { &qa } else { &qb };
                    q.extend_from_slice(&src[p * row..(p + 1) * row]);
                }
                let mut mixed = vec![0.0; toks.len() * row];
                attention_with(kernel, &shape, &q, &mut mixed, |t| {
                    let (a, p) = toks[t];
                    let (k, v) = if a { (&ka, &va) } else { (&kb, &vb) };
                    TokenKv {
                        k: &k[..(p + 1) * kv_dim],
                        v: &v[..(p + 1) * kv_dim],
                        pos: p,
                    }
                });
                for p in 0..len {
                    let o = alone(&qa, &ka, &va, p);
                    let b = &batch[p * row..(p + 1) * row];
                    assert!(
                        o.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{kernel:?} hd{head_dim} {window:?}: batch differs at pos {p}"
                    );
                }
                for (t, &(a, p)) in toks.iter().enumerate() {
                    let o = if a {
                        alone(&qa, &ka, &va, p)
                    } else {
                        alone(&qb, &kb, &vb, p)
                    };
                    let m = &mixed[t * row..(t + 1) * row];
                    assert!(
                        o.iter().zip(m).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{kernel:?} hd{head_dim} {window:?}: mixed differs at token {t} ({a}, {p})"
                    );
                }
            }
        }
    }
}

/// Over contexts of several chunks (with and without a window): a token's output is
/// bit-identical in a prefill batch, alone under split-K, and alone as a tile.
#[test]
fn schedules_are_bit_identical_across_chunks() {
    for (n_head, n_kv_head, head_dim) in [(9, 3, 64), (4, 1, 256), (2, 2, 24)] {
        for window in [None, Some(300)] {
            let shape = AttnShape {
                n_head,
                n_kv_head,
                head_dim,
                scale: 0.3,
                softcap: None,
                window,
            };
            let (kv_dim, row, len) = (n_kv_head * head_dim, n_head * head_dim, 700);
            let (k, v) = (fill_h(len * kv_dim, 41), fill_h(len * kv_dim, 42));
            let q = fill(len * row, 43);
            for kernel in kernels() {
                let mut batch = vec![0.0; len * row];
                schedule(
                    kernel,
                    &shape,
                    &q,
                    &mut batch,
                    &|t| TokenKv {
                        k: &k[..(t + 1) * kv_dim],
                        v: &v[..(t + 1) * kv_dim],
                        pos: t,
                    },
                    false,
                );
                for p in (0..len).step_by(7).chain([255, 256, 511, 512, 699]) {
                    for split in [true, false] {
                        let mut o = vec![0.0; row];
                        schedule(
                            kernel,
                            &shape,
                            &q[p * row..(p + 1) * row],
                            &mut o,
                            &|_| TokenKv {
                                k: &k[..(p + 1) * kv_dim],
                                v: &v[..(p + 1) * kv_dim],
                                pos: p,
                            },
                            split,
                        );
                        let b = &batch[p * row..(p + 1) * row];
                        assert!(
                            o.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{kernel:?} hd{head_dim} {window:?} split {split}: pos {p}"
                        );
                    }
                }
                // And against the f64 softmax at the end.
                let (kf, vf) = (widen(&k), widen(&v));
                let p = len - 1;
                for h in 0..n_head {
                    let at = p * row + h * head_dim;
                    let want = naive(&shape, &q[at..at + head_dim], &kf, &vf, h, p);
                    for (j, w) in want.iter().enumerate() {
                        let got = batch[at + j] as f64;
                        assert!((got - w).abs() < 2e-6, "{kernel:?} hd{head_dim} j{j}");
                    }
                }
            }
        }
    }
}

/// What attention reads back is the f16-rounded value: a query that sees only its own
/// position returns that position's value row exactly (weight exp(0) = 1), which is
/// `f16::from_f32` of the f32 written, not the f32 itself.
#[test]
fn reads_back_f16_rounded_values() {
    let (n_head, n_kv_head, head_dim) = (4, 2, 64);
    let shape = AttnShape {
        n_head,
        n_kv_head,
        head_dim,
        scale: 0.125,
        softcap: None,
        window: Some(1),
    };
    let (kv_dim, row, len) = (n_kv_head * head_dim, n_head * head_dim, 40);
    // Values over many binades, as K/V rows are (not only -1..1).
    let vf: Vec<f32> = fill(len * kv_dim, 21)
        .iter()
        .enumerate()
        .map(|(i, x)| x * 2f32.powi((i % 17) as i32 - 8))
        .collect();
    let kf = fill(len * kv_dim, 22);
    let mut k = vec![f16::ZERO; len * kv_dim];
    let mut v = vec![f16::ZERO; len * kv_dim];
    k.convert_from_f32_slice(&kf);
    v.convert_from_f32_slice(&vf);
    let q = fill(len * row, 23);
    let group = n_head / n_kv_head;
    for kernel in kernels() {
        let mut out = vec![0.0; len * row];
        attention_with(kernel, &shape, &q, &mut out, |t| TokenKv {
            k: &k[..(t + 1) * kv_dim],
            v: &v[..(t + 1) * kv_dim],
            pos: t,
        });
        let mut inexact = 0;
        for p in 0..len {
            for h in 0..n_head {
                let o = &out[(p * n_head + h) * head_dim..][..head_dim];
                let at = p * kv_dim + h / group * head_dim;
                for (j, &x) in o.iter().enumerate() {
                    let want = f16::from_f32(vf[at + j]).to_f32();
                    assert_eq!(x.to_bits(), want.to_bits(), "{kernel:?} pos{p} h{h} j{j}");
                    inexact += usize::from(x != vf[at + j]);
                }
            }
        }
        // Most f32 values are not f16s: the rounding did happen.
        assert!(inexact > len * row / 2, "{kernel:?}: {inexact}");
    }
}

/// Over an f16 cache, the AVX2 tiles of a long prefill batch agree with the portable
/// kernel (the scalar reference) within the tolerance both meet against f64.
#[test]
fn avx2_tiles_match_portable() {
    let ks = kernels();
    if ks.len() < 2 {
        return;
    }
    for (n_head, n_kv_head, head_dim, window) in
        [(9, 3, 64, None), (4, 1, 256, Some(100)), (8, 8, 128, None)]
    {
        let shape = AttnShape {
            n_head,
            n_kv_head,
            head_dim,
            scale: 1.0 / (head_dim as f32).sqrt() * 3.0,
            softcap: None,
            window,
        };
        let (kv_dim, row, len) = (n_kv_head * head_dim, n_head * head_dim, 300);
        let (k, v) = (fill_h(len * kv_dim, 31), fill_h(len * kv_dim, 32));
        let q = fill(len * row, 33);
        let outs: Vec<Vec<f32>> = ks
            .iter()
            .map(|&kernel| {
                let mut out = vec![0.0; len * row];
                attention_with(kernel, &shape, &q, &mut out, |t| TokenKv {
                    k: &k[..(t + 1) * kv_dim],
                    v: &v[..(t + 1) * kv_dim],
                    pos: t,
                });
                out
            })
            .collect();
        for (i, (a, b)) in outs[0].iter().zip(&outs[1]).enumerate() {
            assert!(
                (a - b).abs() < 2e-6,
                "hd{head_dim} {window:?} at {i}: {a} vs {b}"
            );
        }
    }
}
