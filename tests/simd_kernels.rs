//! SIMD dot kernels against the scalar reference kernels (`quant::dot`), on random
//! blocks (including extreme quants and activations at ±127) and on real rows of the
//! three test models (SmolLM2, Gemma 3, Qwen2.5-Coder).
//!
//! Tolerance: every kernel computes the same exact integer per (sub-)block as the scalar
//! one and differs only in the order of f32 accumulation, so the difference is bounded by
//! a few ulps of the running sums, i.e. by `n_terms * eps * Σ|w_i x_i|` in the worst case.
//! We allow `1e-5 * Σ|w_i x_i|` (eps = 6e-8, so about 170 worst-case roundings; rows here
//! have at most 96 blocks of 32 for the quantized types, and the f32 sums over up to
//! 2048 elements stay far below their worst case, as the measured maxima printed by
//! `real_model_rows` show).
//!
//! Every SIMD kernel set the CPU can run is checked: AVX2, AVX-VNNI and AVX-512 (where
//! the CPU has them) on x86-64, the latter two also against AVX2 bit for bit (they
//! promise AVX2's results, so switching never changes a token); on aarch64 both NEON
//! sets (`neon` with `sdot` where the CPU has it, and `neon-nodot`), run under
//! `qemu-aarch64` in CI (`-cpu max` has dotprod, `-cpu cortex-a57` has not). On a CPU
//! with no SIMD kernel set the comparisons cannot run: the tests say so on stderr and
//! check only the scalar kernels against f64 products of the dequantized rows.

mod common;

use hearth::gguf::GgufFile;
use hearth::quant::dot::{quantize_activations, scalar_dot_fn, vec_dot_type, DotFn};
use hearth::quant::simd::{dot_fn_for, gemm_fn_for, Kernel};
use hearth::quant::{dequantize_row, GgmlType};

const TOL: f64 = 1e-5;

/// Deterministic pseudo-random bytes (splitmix64).
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

fn floats(n: usize, seed: u64) -> Vec<f32> {
    bytes(2 * n, seed)
        .chunks_exact(2)
        .map(|b| (u16::from_le_bytes([b[0], b[1]]) as f32 - 32768.0) / 8000.0)
        .collect()
}

const QUANT_TYPES: [GgmlType; 12] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Iq4Nl,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Iq4Xs,
];

/// Byte offsets of the f16 scale fields of a block (overwritten so values stay sane).
fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl | Iq4Xs => &[0],
        Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
        Q2K => &[80, 82],
        Q3K => &[108],
        Q6K => &[208],
        _ => &[],
    }
}

/// How the non-scale bytes of test blocks are filled.
#[derive(Clone, Copy, Debug)]
enum Fill {
    Random,
    /// All 0x00: every quant at its minimum (Q4_0 -8, Q5_0 -16, Q6_K -32, ...).
    Zeros,
    /// All 0xff: every quant at its maximum (Q4_0 +7, Q8_0 -1, ...), scales too.
    Ones,
    /// 0x80: Q8_0 quants at -128.
    Min8,
}

fn weights(ty: GgmlType, n: usize, seed: u64, fill: Fill) -> Vec<u8> {
    let len = ty.row_bytes(n as u64).unwrap() as usize;
    let mut w = match fill {
        Fill::Random => bytes(len, seed),
        Fill::Zeros => vec![0; len],
        Fill::Ones => vec![0xff; len],
        Fill::Min8 => vec![0x80; len],
    };
    let bs = ty.type_size();
    for (i, b) in w.chunks_exact_mut(bs).enumerate() {
        for (k, &o) in scale_offsets(ty).iter().enumerate() {
            // Varying sane scales, both signs for d (mins are positive in practice).
            let v = 0.001 + 0.004 * ((i * 7 + k * 3) % 11) as f32;
            let v = if k == 0 && i % 3 == 2 { -v } else { v };
            b[o..o + 2].copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
        }
    }
    w
}

/// Dequantized activations (Q8_1 has no dequantizer: read it as Q8_0 without `s`).
fn dequant_act(act: GgmlType, xq: &[u8], n: usize) -> Vec<f32> {
    let mut xd = vec![0f32; n];
    if act == GgmlType::Q8_1 {
        let mut as_q80 = Vec::new();
        for b in xq.chunks_exact(36) {
            as_q80.extend_from_slice(&b[..2]);
            as_q80.extend_from_slice(&b[4..]);
        }
        dequantize_row(GgmlType::Q8_0, &as_q80, &mut xd).unwrap();
    } else {
        dequantize_row(act, xq, &mut xd).unwrap();
    }
    xd
}

/// The SIMD kernel sets this CPU can run (none: a loud note, scalar checks only).
fn simd_kernels() -> Vec<Kernel> {
    let ks: Vec<Kernel> = Kernel::ALL
        .into_iter()
        .filter(|&k| k != Kernel::Scalar && k.is_available())
        .collect();
    if ks.is_empty() {
        eprintln!(
            "!!! simd_kernels: this CPU has no SIMD kernel set (AVX2/FMA/F16C, NEON): \
             SIMD kernels NOT TESTED, checking the scalar kernels only !!!"
        );
    }
    ks
}

/// Checks one (weights, f32 activations) pair: scalar vs the f64 product of dequantized
/// rows, and each SIMD kernel set vs scalar. Returns |simd - scalar| / Σ|w x| per kernel
/// set of `simd_kernels()`, in order.
fn check(ty: GgmlType, w: &[u8], xf: &[f32], label: &str) -> Vec<f64> {
    let n = xf.len();
    let act = vec_dot_type(ty).unwrap();
    let mut xq = vec![0u8; act.row_bytes(n as u64).unwrap() as usize];
    quantize_activations(act, xf, &mut xq).unwrap();
    let mut wf = vec![0f32; n];
    dequantize_row(ty, w, &mut wf).unwrap();
    let xd = dequant_act(act, &xq, n);
    let want: f64 = wf.iter().zip(&xd).map(|(&a, &b)| a as f64 * b as f64).sum();
    let scale: f64 = wf
        .iter()
        .zip(&xd)
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();
    let scalar = scalar_dot_fn(ty).unwrap()(w, &xq) as f64;
    // Q8_1's `s = d * Σq` is stored as an f16 (relative error 2^-11) and multiplies the
    // weights' min, which the dequantized product does not see: a looser bound there.
    let ref_tol = if act == GgmlType::Q8_1 { 1e-3 } else { 1e-4 };
    assert!(
        (scalar - want).abs() <= ref_tol * scale + 1e-30,
        "{ty} {label}: scalar {scalar}, f64 reference {want} (Σ|wx| {scale})"
    );
    let mut rel = Vec::new();
    let mut neon_bits = None;
    let mut x86_bits = None;
    for k in simd_kernels() {
        let simd: DotFn = dot_fn_for(k, ty).unwrap_or_else(|| panic!("a {k:?} kernel for {ty}"));
        let got = simd(w, &xq) as f64;
        let diff = (got - scalar).abs();
        let name = k.name();
        assert!(
            diff <= TOL * scale,
            "{ty} {label}: {name} {got}, scalar {scalar}, diff {diff} > {TOL} * Σ|wx| {scale}"
        );
        rel.push(if scale > 0.0 { diff / scale } else { 0.0 });
        // The two NEON sets differ only in how they multiply bytes, not in the lanes they
        // hand to the float code: bit-identical.
        if matches!(k, Kernel::Neon | Kernel::NeonNoDot) {
            let bits = (got as f32).to_bits();
            assert_eq!(
                *neon_bits.get_or_insert(bits),
                bits,
                "{ty} {label}: neon and neon-nodot differ"
            );
        }
        // AVX-VNNI and AVX-512 compute AVX2's lanes and float operations: bit-identical.
        if matches!(k, Kernel::Avx2 | Kernel::AvxVnni | Kernel::Avx512) {
            let bits = (got as f32).to_bits();
            assert_eq!(
                *x86_bits.get_or_insert(bits),
                bits,
                "{ty} {label}: the x86 sets differ"
            );
        }
    }
    rel
}

#[test]
fn random_blocks() {
    for ty in QUANT_TYPES {
        for (n, seed) in [(256usize, 1u64), (512, 2), (1536, 3), (2048, 4)] {
            let w = weights(ty, n, seed * 1000 + ty.id() as u64, Fill::Random);
            check(ty, &w, &floats(n, seed), &format!("random n={n}"));
        }
    }
}

#[test]
fn extreme_values() {
    let n = 512;
    // ±1 everywhere quantizes to ±127 (with per-block max 1): alternating, all +, all -.
    let alt: Vec<f32> = (0..n)
        .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let pos = vec![1.0f32; n];
    let neg = vec![-1.0f32; n];
    let zero = vec![0.0f32; n];
    let rnd = floats(n, 99);
    for ty in QUANT_TYPES {
        for fill in [Fill::Random, Fill::Zeros, Fill::Ones, Fill::Min8] {
            let w = weights(ty, n, 7 + ty.id() as u64, fill);
            for (name, x) in [
                ("alt", &alt),
                ("+127", &pos),
                ("-127", &neg),
                ("zero", &zero),
                ("rnd", &rnd),
            ] {
                check(ty, &w, x, &format!("{fill:?} x {name}"));
            }
        }
    }
}

/// Inputs shorter than a row (or of different lengths) only shorten the sum.
#[test]
fn short_inputs_never_overrun() {
    for (k, ty) in simd_kernels()
        .into_iter()
        .flat_map(|k| QUANT_TYPES.map(|ty| (k, ty)))
    {
        let n = 512;
        let w = weights(ty, n, 5, Fill::Random);
        let act = vec_dot_type(ty).unwrap();
        let mut xq = vec![0u8; act.row_bytes(n as u64).unwrap() as usize];
        quantize_activations(act, &floats(n, 6), &mut xq).unwrap();
        let simd = dot_fn_for(k, ty).unwrap();
        let scalar = scalar_dot_fn(ty).unwrap();
        for (wl, xl) in [(w.len() - 1, xq.len()), (w.len(), xq.len() - 1), (3, 5)] {
            let (a, b) = (simd(&w[..wl], &xq[..xl]), scalar(&w[..wl], &xq[..xl]));
            assert!(
                (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                "{k:?} {ty}: {a} vs {b}"
            );
        }
        assert_eq!(simd(&[], &xq), 0.0);
    }
}

#[test]
fn float_weights() {
    for n in [1usize, 7, 8, 31, 32, 33, 64, 100, 576, 1000, 2048] {
        let wf = floats(n, n as u64);
        let xf = floats(n, 1000 + n as u64);
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Bf16] {
            let w: Vec<u8> = match ty {
                GgmlType::F32 => wf.iter().flat_map(|v| v.to_le_bytes()).collect(),
                GgmlType::F16 => wf
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
                    .collect(),
                _ => wf
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_bits().to_le_bytes())
                    .collect(),
            };
            check(ty, &w, &xf, &format!("n={n}"));
        }
    }
}

/// Rows of every tensor of both test models with a kernel (up to 24 rows per tensor,
/// spread over the matrix), against random activations.
#[test]
fn real_model_rows() {
    for name in [common::SMOLLM2, common::GEMMA3, common::server::QWEN] {
        let f = GgufFile::open(&common::test_model(name)).unwrap();
        let ks = simd_kernels();
        let mut worst: Vec<(GgmlType, Vec<f64>, usize)> = Vec::new();
        for t in f.tensors() {
            if scalar_dot_fn(t.ty).is_none() {
                continue;
            }
            let n = t.row_len() as usize;
            let rb = t.ty.row_bytes(n as u64).unwrap() as usize;
            let data = f.tensor_data(t);
            let rows = data.len() / rb;
            let xf = floats(n, t.offset);
            for k in 0..rows.min(24) {
                let r = k * rows / rows.min(24);
                let w = &data[r * rb..(r + 1) * rb];
                let rel = check(t.ty, w, &xf, &format!("{name} {} row {r}", t.name));
                match worst.iter_mut().find(|e| e.0 == t.ty) {
                    Some(e) => {
                        for (m, r) in e.1.iter_mut().zip(rel) {
                            *m = m.max(r);
                        }
                        e.2 += 1;
                    }
                    None => worst.push((t.ty, rel, 1)),
                }
            }
        }
        assert!(!worst.is_empty(), "{name}: no tensor had a kernel");
        for (ty, rel, rows) in worst {
            for (k, r) in ks.iter().zip(rel) {
                let kn = k.name();
                eprintln!("{name}: {ty}: {rows} rows, max |{kn} - scalar| / Σ|wx| = {r:.2e}");
            }
        }
    }
}

/// `gemm(w, rows, x, n)` equals the same instruction set's single-row dot kernel for
/// every (row, token), bit for bit (the engine's batching invariance rests on it).
fn check_gemm(k: Kernel, ty: GgmlType, w: &[u8], rows: usize, xf: &[f32], n: usize, label: &str) {
    let cols = xf.len() / n;
    let act = vec_dot_type(ty).unwrap();
    let ar = act.row_bytes(cols as u64).unwrap() as usize;
    let mut xq = vec![0u8; n * ar];
    for (src, dst) in xf.chunks_exact(cols).zip(xq.chunks_exact_mut(ar)) {
        quantize_activations(act, src, dst).unwrap();
    }
    let gemm = gemm_fn_for(k, ty).expect("a gemm kernel");
    let dot = dot_fn_for(k, ty).unwrap();
    // Both output layouts: [row][token] and [token][row].
    let mut out = vec![f32::NAN; rows * n];
    gemm(w, rows, &xq, n, &mut out, (n, 1));
    let mut out_t = vec![f32::NAN; rows * n];
    gemm(w, rows, &xq, n, &mut out_t, (1, rows));
    let rb = w.len() / rows;
    for r in 0..rows {
        for t in 0..n {
            let want = dot(&w[r * rb..(r + 1) * rb], &xq[t * ar..(t + 1) * ar]);
            for got in [out[r * n + t], out_t[t * rows + r]] {
                // (Random float weights hold NaNs, whose payload is meaningless.)
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{ty} {label}: row {r} token {t}: gemm {got} vs dot {want}"
                );
            }
        }
    }
}

#[test]
fn gemm_tiles_bit_identical() {
    for k in simd_kernels() {
        gemm_tiles_of(k);
    }
}

fn gemm_tiles_of(k: Kernel) {
    let gemm_types: Vec<GgmlType> = GgmlType::all()
        .filter(|&t| gemm_fn_for(k, t).is_some())
        .collect();
    if k == Kernel::Avx2 {
        assert!(gemm_types.len() >= 6, "{gemm_types:?}");
    }
    if matches!(k, Kernel::Avx512 | Kernel::AvxVnni) {
        assert!(gemm_types.len() >= 12, "{gemm_types:?}");
    }
    if gemm_types.is_empty() {
        // The matmul runs the single-row kernels per token then (tested above).
        eprintln!("simd_kernels: {} has no tile (gemm) kernels", k.name());
        return;
    }
    for &ty in &gemm_types {
        assert!(gemm_fn_for(Kernel::Scalar, ty).is_none());
        // Shapes around the tile edges; the 8192-column case crosses the kernel's
        // activation chunk (a few dozen tokens at that width).
        for (rows, cols, n) in [
            (1, 256, 1),
            (3, 256, 2),
            (5, 512, 3),
            (9, 256, 7),
            (4, 8192, 40),
        ] {
            let fills = [Fill::Random, Fill::Zeros, Fill::Ones, Fill::Min8];
            let w: Vec<u8> = (0..rows)
                .flat_map(|r| {
                    weights(
                        ty,
                        cols,
                        90 + r as u64,
                        if r % 3 == 0 {
                            Fill::Random
                        } else {
                            fills[r % 4]
                        },
                    )
                })
                .collect();
            let mut xf = floats(n * cols, 5 + rows as u64);
            // One token of ±1 only: quantizes to ±127 everywhere.
            for (i, v) in xf[..cols].iter_mut().enumerate() {
                *v = if i % 5 < 2 { -1.0 } else { 1.0 };
            }
            check_gemm(
                k,
                ty,
                &w,
                rows,
                &xf,
                n,
                &format!("{rows}x{cols}, {n} tokens"),
            );
        }
    }
    for name in [common::SMOLLM2, common::GEMMA3, common::server::QWEN] {
        let f = GgufFile::open(&common::test_model(name)).unwrap();
        let mut seen = 0;
        for t in f.tensors().iter().filter(|t| gemm_types.contains(&t.ty)) {
            let cols = t.row_len() as usize;
            let rb = t.ty.row_bytes(cols as u64).unwrap() as usize;
            let data = f.tensor_data(t);
            let rows = (data.len() / rb).min(6);
            let n = 5;
            let xf = floats(n * cols, t.offset + 3);
            check_gemm(
                k,
                t.ty,
                &data[..rows * rb],
                rows,
                &xf,
                n,
                &format!("{name} {}", t.name),
            );
            seen += 1;
        }
        assert!(seen > 0, "{name}: no tensor of a gemm type");
    }
}

/// The SIMD activation quantizers give the scalar references' bytes exactly.
#[test]
fn quantizers_bit_identical() {
    for k in simd_kernels() {
        quantizers_of(k);
    }
}

fn quantizers_of(k: Kernel) {
    use hearth::quant::dot::scalar_quantize_activations;
    use hearth::quant::simd::quantize_fn_for;
    let n = 2048;
    let mut inputs: Vec<(String, Vec<f32>)> = Vec::new();
    for (scale, seed) in [(1e-3f32, 1u64), (1.0, 2), (3e4, 3), (1e-30, 4)] {
        let x = floats(n, seed).iter().map(|v| v * scale).collect();
        inputs.push((format!("random x{scale}"), x));
    }
    for seed in 0..100u64 {
        let scale = 2f32.powi((seed % 80) as i32 - 40);
        let x = floats(n, 100 + seed).iter().map(|v| v * scale).collect();
        inputs.push((
            format!("random seed {seed} x2^{}", (seed % 80) as i32 - 40),
            x,
        ));
    }
    // Exact ties: max 127 gives d = 1 (Q8_0/Q8_1) and iscale = -1 (Q8_K).
    let ties: Vec<f32> = (0..n)
        .map(|i| match i % 64 {
            0 => 127.0,
            k => (k as f32 - 32.0) + 0.5,
        })
        .collect();
    inputs.push(("ties".into(), ties.clone()));
    inputs.push(("-ties".into(), ties.iter().map(|v| -v).collect()));
    // Largest magnitude on both signs (the first decides Q8_K's sign), -0.0, zeros.
    let mut mixed = floats(n, 9);
    for b in 0..n / 256 {
        mixed[256 * b + 3] = -9.0;
        mixed[256 * b + 200] = 9.0;
        mixed[256 * b + 7] = -0.0;
    }
    for v in &mut mixed[512..768] {
        *v = 0.0;
    }
    mixed[768] = -0.0;
    inputs.push(("mixed".into(), mixed));
    // Non-finite and subnormal blocks (scalar fallback), next to ordinary ones.
    let mut odd = floats(n, 11);
    odd[5] = f32::NAN;
    odd[300] = f32::INFINITY;
    odd[600] = f32::NEG_INFINITY;
    for v in &mut odd[1024..1280] {
        *v *= 1e-39;
    }
    odd[1300] = 1e-40;
    inputs.push(("non-finite and subnormal".into(), odd));

    for act in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K] {
        let q = quantize_fn_for(k, act).expect("a SIMD quantizer");
        assert!(quantize_fn_for(Kernel::Scalar, act).is_none());
        let len = act.row_bytes(n as u64).unwrap() as usize;
        for (name, x) in &inputs {
            let (mut want, mut got) = (vec![0u8; len], vec![0xaau8; len]);
            scalar_quantize_activations(act, x, &mut want).unwrap();
            q(x, &mut got).unwrap();
            if let Some(i) = want.iter().zip(&got).position(|(a, b)| a != b) {
                panic!(
                    "{k:?} {act} {name}: first differing byte {i} (block {})",
                    i / act.type_size()
                );
            }
        }
        let mut short = vec![0u8; len - 1];
        assert!(q(&inputs[0].1, &mut short).is_err());
        assert!(q(&inputs[0].1[..n - 1], &mut vec![0u8; len]).is_err());
    }
    assert!(quantize_fn_for(k, GgmlType::F32).is_none());
}
