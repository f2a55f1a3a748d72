//! Matrix-product kernel throughput on a batch of activation rows (prefill shape),
//! single-threaded: the tile kernel (`gemm_fn_for`) against dot products per row and
//! token, in GMAC/s (multiply-adds per second), for AVX2 and (where the CPU has them)
//! AVX-VNNI and AVX-512:
//!
//!     cargo run --release --example gemm_bench [TYPE ...]
//!
//! Shape: 2048 x 640 weights (Gemma 3's FFN up projection) times 64 tokens; weights and
//! activations are L2/L3-resident as in a prefill task. `GEMM_SHAPE=ROWSxCOLSxTOKENS`
//! sets another (e.g. `8192x896x8`: a slice of Qwen's output matrix at 8 sequences). Each figure is the fastest of
//! repeated passes (robust to other load; `uptime` before running says how shared).
use std::hint::black_box;
use std::time::{Duration, Instant};

use hearth::quant::dot::{quantize_activations, vec_dot_type};
use hearth::quant::simd::{dot_fn_for, gemm_fn_for, Kernel};
use hearth::quant::{dequantize_row, GgmlType};

fn rand_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Random quants with every block's f16 scale fields set to 0.01 (so values stay sane).
fn matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut data = vec![0u8; rb * rows];
    let mut s = 0x1234_5678u64;
    for b in data.iter_mut() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (s >> 56) as u8;
    }
    let tb = ty.type_size();
    let f = half::f16::from_f32(0.01).to_bits().to_le_bytes();
    for blk in data.chunks_exact_mut(tb) {
        match ty {
            GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q4_1 | GgmlType::Q5_1 => {
                blk[0..2].copy_from_slice(&f);
                blk[2..4].copy_from_slice(&f);
            }
            GgmlType::Q6K => blk[tb - 2..].copy_from_slice(&f),
            _ => blk[0..2].copy_from_slice(&f),
        }
    }
    let mut row = vec![0.0f32; cols];
    dequantize_row(ty, &data[..rb], &mut row).unwrap();
    assert!(row.iter().all(|v| v.is_finite()));
    data
}

/// The x86 SIMD sets this CPU has (AVX2 first, then AVX-VNNI, AVX-512), else the best one.
fn kernels() -> Vec<Kernel> {
    let x86: Vec<Kernel> = [Kernel::Avx2, Kernel::AvxVnni, Kernel::Avx512]
        .into_iter()
        .filter(|k| k.is_available())
        .collect();
    if x86.is_empty() {
        vec![hearth::quant::simd::detect()]
    } else {
        x86
    }
}

fn best(mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let types: Vec<GgmlType> = if args.is_empty() {
        use GgmlType::*;
        vec![Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Iq4Nl, Q4K, Q5K, Q6K]
    } else {
        args.iter()
            .map(|a| {
                GgmlType::all()
                    .find(|t| t.name().eq_ignore_ascii_case(a))
                    .expect("a ggml type name")
            })
            .collect()
    };
    let (rows, cols, n) = match std::env::var("GEMM_SHAPE") {
        Ok(v) => {
            let d: Vec<usize> = v
                .split('x')
                .map(|p| p.parse().expect("ROWSxCOLSxTOKENS"))
                .collect();
            assert!(
                d.len() == 3 && d[1].is_multiple_of(32),
                "GEMM_SHAPE=ROWSxCOLSxTOKENS, COLS a multiple of 32"
            );
            (d[0], d[1], d[2])
        }
        Err(_) => (2048, 640, 64),
    };
    let x = rand_f32(n * cols, 7);
    for ty in types {
        let cols = if ty.block_size() == 256 {
            cols.next_multiple_of(256)
        } else {
            cols
        };
        let w = matrix(ty, rows, cols);
        let rb = w.len() / rows;
        let act = vec_dot_type(ty).unwrap();
        let ar = act.row_bytes(cols as u64).unwrap() as usize;
        let mut a = vec![0u8; n * ar];
        for (src, dst) in x.chunks_exact(x.len() / n).zip(a.chunks_exact_mut(ar)) {
            let mut v = src.to_vec();
            v.resize(cols, 0.5);
            quantize_activations(act, &v, dst).unwrap();
        }
        let macs = (rows * cols * n) as f64;
        let mut out = vec![0.0f32; rows * n];
        let mut line = format!("{:>7}", ty.to_string());
        let mut first_gemm = None;
        for k in kernels() {
            let dot = dot_fn_for(k, ty).unwrap();
            let t_dot = best(|| {
                for r in 0..rows {
                    for t in 0..n {
                        out[r * n + t] = dot(&w[r * rb..(r + 1) * rb], &a[t * ar..(t + 1) * ar]);
                    }
                }
                black_box(&out);
            });
            let reference = out.clone();
            line += &format!(
                "  {} dot: {:6.1}",
                k.name(),
                macs / t_dot.as_secs_f64() / 1e9
            );
            match gemm_fn_for(k, ty) {
                Some(g) => {
                    let t = best(|| {
                        g(&w, rows, &a, n, &mut out, (n, 1));
                        black_box(&out);
                    });
                    let same = out == reference;
                    let vs = match first_gemm {
                        Some(t0) => format!(", {:.2}x avx2", t0 / t.as_secs_f64()),
                        None => String::new(),
                    };
                    first_gemm.get_or_insert(t.as_secs_f64());
                    line += &format!(
                        " gemm: {:6.1} GMAC/s ({:.2}x dot{vs}, bit-identical: {same})",
                        macs / t.as_secs_f64() / 1e9,
                        t_dot.as_secs_f64() / t.as_secs_f64()
                    );
                }
                None => line += " gemm: -",
            }
        }
        println!("{line}");
    }
}
