//! Dot-kernel throughput: GB/s of weight bytes streamed by a single-threaded
//! matrix-vector product, per weight type, scalar vs the best SIMD kernel set of the CPU
//! (AVX2, or NEON with `sdot` / plain NEON on aarch64; `HEARTH_KERNEL` picks another one)
//! (`gemm_bench` measures the batched tile kernels):
//!
//!     cargo run --release --example kernel_bench [TYPE ...] [--quick]
//!
//! Shapes: 576x1536 and 640x2048 (SmolLM2 / Gemma 3 FFN sizes, cache-resident after the
//! first pass) and a ~50 MB matrix (2048 columns) that exceeds L3, so it measures DRAM
//! streaming. Each figure is weight bytes / the fastest of repeated passes (robust to other load
//! on a shared machine; `uptime` before running says how shared).
use std::hint::black_box;
use std::time::{Duration, Instant};

use hearth::quant::dot::{quantize_activations, scalar_quantize_activations, vec_dot_type, DotFn};
use hearth::quant::simd::{dot_fn_for, kernel, quantize_fn_for, Kernel};
use hearth::quant::GgmlType;

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        s = s.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes()[..(n - out.len()).min(8)]);
    }
    out
}

/// Random rows with sane f16 scales (float types: random values in ±4).
fn matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    use GgmlType::*;
    let n = rows * cols;
    let f16 = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
    match ty {
        F32 => {
            return (0..n)
                .flat_map(|i| ((i % 97) as f32 / 25.0 - 2.0).to_le_bytes())
                .collect()
        }
        F16 => {
            return (0..n)
                .flat_map(|i| f16((i % 97) as f32 / 25.0 - 2.0))
                .collect()
        }
        Bf16 => {
            return (0..n)
                .flat_map(|i| {
                    half::bf16::from_f32((i % 97) as f32 / 25.0 - 2.0)
                        .to_bits()
                        .to_le_bytes()
                })
                .collect()
        }
        _ => {}
    }
    let mut w = bytes(ty.row_bytes(n as u64).unwrap() as usize, ty.id() as u64);
    let offs: &[usize] = match ty {
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl | Iq4Xs => &[0],
        Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
        Q2K => &[80, 82],
        Q3K => &[108],
        Q6K => &[208],
        _ => &[],
    };
    for b in w.chunks_exact_mut(ty.type_size()) {
        for &o in offs {
            b[o..o + 2].copy_from_slice(&f16(0.01));
        }
    }
    w
}

/// GB/s of `total` weight bytes streamed by `pass` (one full matrix-vector product per
/// call), from the fastest of repeated passes: the machine may be shared, and the best
/// pass is the one least disturbed by other processes.
fn rate(total: usize, min_time: Duration, mut pass: impl FnMut() -> f32) -> f64 {
    black_box(pass()); // warm-up (and page-in)
    let t = Instant::now();
    let mut best = f64::INFINITY;
    let mut reps = 0u32;
    while t.elapsed() < min_time || reps < 3 {
        let p = Instant::now();
        black_box(pass());
        best = best.min(p.elapsed().as_secs_f64());
        reps += 1;
    }
    total as f64 / best / 1e9
}

fn bench_rows(dot: DotFn, w: &[u8], rb: usize, x: &[u8], min: Duration) -> f64 {
    rate(w.len(), min, || w.chunks_exact(rb).map(|r| dot(r, x)).sum())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let min = Duration::from_millis(if quick { 100 } else { 400 });
    use GgmlType::*;
    let types = [
        Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Iq4Nl, Q2K, Q3K, Q4K, Q5K, Q6K, Iq4Xs, F16, Bf16, F32,
    ];
    let simd = kernel();
    let fast_kernel = (simd != Kernel::Scalar).then_some(simd);
    if fast_kernel.is_none() {
        println!(
            "!!! no SIMD kernel set on this CPU (or HEARTH_KERNEL=scalar): scalar figures only !!!"
        );
    }
    let name = simd.name();
    if wanted.is_empty() {
        quantize_table(min, fast_kernel);
    }
    println!("| type | shape | MB | scalar GB/s | {name} GB/s | x |\n|---|---|---|---|---|---|");
    for ty in types {
        if !wanted.is_empty() && !wanted.iter().any(|w| w.eq_ignore_ascii_case(ty.name())) {
            continue;
        }
        let cols_big = 2048;
        let rb_big = ty.row_bytes(cols_big as u64).unwrap() as usize;
        let rows_big = (50_000_000usize).div_ceil(rb_big).next_multiple_of(4);
        for (rows, cols) in [(576usize, 1536usize), (640, 2048), (rows_big, cols_big)] {
            let w = matrix(ty, rows, cols);
            let rb = w.len() / rows;
            let act = vec_dot_type(ty).unwrap();
            let xf: Vec<f32> = bytes(cols, 3)
                .iter()
                .map(|&b| b as f32 / 64.0 - 2.0)
                .collect();
            let mut x = vec![0u8; act.row_bytes(cols as u64).unwrap() as usize];
            quantize_activations(act, &xf, &mut x).unwrap();
            let scalar = bench_rows(dot_fn_for(Kernel::Scalar, ty).unwrap(), &w, rb, &x, min);
            let fast = fast_kernel
                .and_then(|k| dot_fn_for(k, ty))
                .map(|f| bench_rows(f, &w, rb, &x, min));
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            println!(
                "| {ty} | {rows}x{cols} | {:.1} | {scalar:.2} | {} | {} |",
                w.len() as f64 / 1e6,
                show(fast),
                show(fast.map(|f| f / scalar)),
            );
        }
    }
}

/// Activation quantization: GB/s of f32 input (a 2048-element row, as one token's input).
fn quantize_table(min: Duration, fast_kernel: Option<Kernel>) {
    let name = fast_kernel.map_or("simd", Kernel::name);
    println!("| activations | scalar GB/s | {name} GB/s |\n|---|---|---|");
    let n = 2048;
    let xf: Vec<f32> = bytes(n, 5).iter().map(|&b| b as f32 / 64.0 - 2.0).collect();
    for act in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K] {
        let mut out = vec![0u8; act.row_bytes(n as u64).unwrap() as usize];
        let scalar = rate(4 * n, min, || {
            scalar_quantize_activations(act, &xf, &mut out).unwrap();
            out[0] as f32
        });
        let fast = fast_kernel.and_then(|k| quantize_fn_for(k, act)).map(|q| {
            rate(4 * n, min, || {
                q(&xf, &mut out).unwrap();
                out[0] as f32
            })
        });
        println!(
            "| {act} | {scalar:.2} | {} |",
            fast.map_or("-".to_string(), |v| format!("{v:.2}"))
        );
    }
    println!();
}
