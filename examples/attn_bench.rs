//! Attention and activation throughput on synthetic data, in the shapes of SmolLM2-135M
//! (9 heads, 3 kv heads, head_dim 64) and Gemma 3 270M (4 heads, 1 kv head, head_dim 256,
//! window 512): a 512-token prefill of one sequence, and one decode token at position 511,
//! over an f16 KV cache as the engine keeps it; and one decode token at position 2199 (a
//! long context: the whole cache for SmolLM2, the 512-key window for Gemma).
//!
//!     HEARTH_NUM_THREADS=2 cargo run --release --example attn_bench
//!
//! Each figure is the fastest of repeated passes (robust to other load on a shared
//! machine; `uptime` before running says how shared). `HEARTH_KERNEL=scalar` times the
//! portable code.
use std::hint::black_box;
use std::time::Instant;

use half::f16;

use hearth::ops::act::{geglu, swiglu};
use hearth::ops::attention::{attention, AttnShape, TokenKv};

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

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let shapes = [
        ("smollm2", 9, 3, 64, None, 30),
        ("gemma3", 4, 1, 256, Some(512), 18),
    ];
    let n = 512;
    let long = 2200;
    for (name, n_head, n_kv_head, head_dim, window, layers) in shapes {
        let shape = AttnShape {
            n_head,
            n_kv_head,
            head_dim,
            scale: 1.0 / (head_dim as f32).sqrt(),
            softcap: None,
            window,
        };
        let kv_dim = n_kv_head * head_dim;
        let row = n_head * head_dim;
        let k: Vec<f16> = fill(long * kv_dim, 1)
            .into_iter()
            .map(f16::from_f32)
            .collect();
        let v: Vec<f16> = fill(long * kv_dim, 2)
            .into_iter()
            .map(f16::from_f32)
            .collect();
        let q: Vec<f32> = fill(n * row, 3).iter().map(|x| x * 4.0).collect();
        let mut out = vec![0.0; n * row];
        let pre = best(10, || {
            attention(&shape, &q, &mut out, |t| TokenKv {
                k: &k[..(t + 1) * kv_dim],
                v: &v[..(t + 1) * kv_dim],
                pos: t,
            });
            black_box(&out);
        });
        let last = (n - 1) * row;
        let dec = best(200, || {
            attention(&shape, &q[last..], &mut out[..row], |_| TokenKv {
                k: &k[..n * kv_dim],
                v: &v[..n * kv_dim],
                pos: n - 1,
            });
            black_box(&out);
        });
        let dec_long = best(200, || {
            attention(&shape, &q[last..], &mut out[..row], |_| TokenKv {
                k: &k,
                v: &v,
                pos: long - 1,
            });
            black_box(&out);
        });
        println!(
            "{name:8} attention prefill {n}: {:7.3} ms/layer ({:6.1} ms for {layers} layers); decode at {}: {:6.1} us/layer, at {}: {:6.1} us/layer ({:5.2} ms for {layers} layers)",
            pre * 1e3,
            pre * 1e3 * layers as f64,
            n - 1,
            dec * 1e6,
            long - 1,
            dec_long * 1e6,
            dec_long * 1e3 * layers as f64
        );
    }
    for (name, n_ff) in [("swiglu", 1536), ("geglu", 2048)] {
        let up = fill(n * n_ff, 5);
        let x = fill(n * n_ff, 6);
        let mut g = x.clone();
        let f = |g: &mut [f32], u: &[f32]| {
            if name == "swiglu" {
                swiglu(g, u)
            } else {
                geglu(g, u)
            }
        };
        let pre = best(10, || {
            g.copy_from_slice(&x);
            f(&mut g, &up);
        });
        let dec = best(1000, || {
            g[..n_ff].copy_from_slice(&x[..n_ff]);
            f(&mut g[..n_ff], &up[..n_ff]);
        });
        println!(
            "{name:8} n_ff {n_ff}: {n} tokens {:7.3} ms; one token {:6.2} us",
            pre * 1e3,
            dec * 1e6
        );
    }
}
