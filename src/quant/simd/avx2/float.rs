//! Kernels for float weights (F32, F16, BF16) against f32 activations: the single-row dot
//! and the matrix-product tile, which are one function.
//!
//! Every (weight row, activation row) product has the same arithmetic: two accumulators
//! over 16-element steps (elements `16c..16c+8` into the first, `16c+8..16c+16` into the
//! second, one fused multiply-add each), their sum reduced horizontally, then the tail one
//! multiply and one add at a time. [`float_tile`] computes `RM` rows by `RN` activation
//! rows at once with that arithmetic for each pair, so the dot (a 1 x 1 tile) and the
//! matrix product agree bit for bit, and a token's result does not depend on its batch.
//!
//! Two accumulators rather than more keep a tile's pairs many: 3 rows x 2 activation
//! rows is 12 accumulators, and per 8 elements 5 loads (3 weights widened, 2 activations)
//! feed 6 multiply-adds, so the tile runs at the FMA units' rate from L1. One row alone
//! (decode) streams its weights from DRAM, which two chains keep up with.

use std::arch::x86_64::*;

use super::helpers::*;

/// Float formats of the kernels.
pub(super) const F32: u8 = 0;
pub(super) const F16: u8 = 1;
pub(super) const BF16: u8 = 2;

/// Elements per step: two vectors of eight, one accumulator each.
const STEP: usize = 16;
/// Weight bytes a row group keeps in L1 while activation pairs sweep it.
const GROUP_BYTES: usize = 16 * 1024;
/// Activation bytes one sweep over the rows reads (kept within L2).
const CHUNK_BYTES: usize = 96 * 1024;

/// Bytes per weight of format `K`.
const fn elem_bytes(k: u8) -> usize {
    if k == F32 {
        4
    } else {
        2
    }
}

/// Eight weights of format `K` at `w`, widened to f32.
///
/// # Safety
/// `w` must point to 8 readable weights of format `K`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn widen8<const K: u8>(w: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 32 (F32) or 16 (F16, BF16) readable bytes.
    unsafe {
        match K {
            F32 => _mm256_loadu_ps(w.cast()),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(w.cast())),
            _ => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                _mm_loadu_si128(w.cast()),
            ))),
        }
    }
}

/// Weight `i` of format `K` as f32 (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn widen1<const K: u8>(w: &[u8], i: usize) -> f32 {
    match K {
        F32 => f32_le(at(w, 4 * i)),
        F16 => h2f(at(w, 2 * i)),
        _ => f32::from_bits((u16::from_le_bytes(*at(w, 2 * i)) as u32) << 16),
    }
}

/// `RM` weight rows times `RN` activation rows (f32), each of `cols` values:
/// `out[r][t]`, each pair with the module's arithmetic.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn float_tile<const K: u8, const RM: usize, const RN: usize>(
    ws: [&[u8]; RM],
    xs: [&[u8]; RN],
    cols: usize,
) -> [[f32; RN]; RM] {
    let es = elem_bytes(K);
    assert!(ws.iter().all(|w| w.len() >= cols * es) && xs.iter().all(|x| x.len() >= cols * 4));
    let full = cols / STEP;
    let mut acc = [[[_mm256_setzero_ps(); 2]; RN]; RM];
    let wp: [*const u8; RM] = std::array::from_fn(|r| ws[r].as_ptr());
    let xp: [*const f32; RN] = std::array::from_fn(|t| xs[t].as_ptr().cast::<f32>());
    for c in 0..full {
        #[allow(clippy::needless_range_loop)] // h picks the accumulator and the elements
        for h in 0..2 {
            let e = c * STEP + 8 * h;
            // Elements e..e + 8 <= full * STEP <= cols lie inside every weight row (cols * es
            // bytes) and every activation row (cols f32), as asserted above.
            // SAFETY: every pointer read below is in bounds (the line above).
            unsafe {
                let x: [__m256; RN] = std::array::from_fn(|t| _mm256_loadu_ps(xp[t].add(e)));
                for r in 0..RM {
                    let w = widen8::<K>(wp[r].add(e * es));
                    for t in 0..RN {
                        acc[r][t][h] = _mm256_fmadd_ps(w, x[t], acc[r][t][h]);
                    }
                }
            }
        }
    }
    let mut out = [[0.0; RN]; RM];
    for r in 0..RM {
        for t in 0..RN {
            let mut sum = hsum_ps(_mm256_add_ps(acc[r][t][0], acc[r][t][1]));
            for i in full * STEP..cols {
                sum += widen1::<K>(ws[r], i) * f32_le(at(xs[t], 4 * i));
            }
            out[r][t] = sum;
        }
    }
    out
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f32_dot(w: &[u8], x: &[u8]) -> f32 {
    float_tile::<F32, 1, 1>([w], [x], x.len() / 4)[0][0]
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_dot(w: &[u8], x: &[u8]) -> f32 {
    float_tile::<F16, 1, 1>([w], [x], x.len() / 4)[0][0]
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bf16_dot(w: &[u8], x: &[u8]) -> f32 {
    float_tile::<BF16, 1, 1>([w], [x], x.len() / 4)[0][0]
}

/// One tile of up to 3 rows from `r` and up to 2 activation rows from `t`, written to
/// `out[r * row_step + t * token_step]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile_at<'a, const K: u8, const RM: usize, const RN: usize>(
    w: &dyn Fn(usize) -> &'a [u8],
    x: &dyn Fn(usize) -> &'a [u8],
    (r, t, cols): (usize, usize, usize),
    out: &mut [f32],
    (row_step, token_step): (usize, usize),
) {
    let s = float_tile::<K, RM, RN>(
        std::array::from_fn(|i| w(r + i)),
        std::array::from_fn(|j| x(t + j)),
        cols,
    );
    for (i, row) in s.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            out[(r + i) * row_step + (t + j) * token_step] = v;
        }
    }
}

/// The tile kernel of the float formats ([`GemmFn`](crate::quant::dot::GemmFn)'s
/// contract): activation rows in chunks that stay in L2; within a chunk, groups of weight
/// rows that stay in L1 while the chunk's activation pairs sweep them in 3 x 2 tiles.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn float_gemm<const K: u8>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
) {
    if rows == 0 || n == 0 {
        return;
    }
    let (wb, xb) = (w.len() / rows, x.len() / n);
    let cols = xb / 4;
    let chunk = (CHUNK_BYTES / xb.max(1)).max(2);
    let group = (GROUP_BYTES / wb.max(1)).max(1).div_ceil(3) * 3;
    let wrow = |r: usize| &w[r * wb..(r + 1) * wb];
    let xrow = |t: usize| &x[t * xb..(t + 1) * xb];
    for t0 in (0..n).step_by(chunk) {
        let t1 = (t0 + chunk).min(n);
        for r0 in (0..rows).step_by(group) {
            let r1 = (r0 + group).min(rows);
            let mut t = t0;
            while t < t1 {
                let two = t + 2 <= t1;
                let mut r = r0;
                while r < r1 {
                    let at = (r, t, cols);
                    match (r1 - r, two) {
                        (3.., true) => tile_at::<K, 3, 2>(&wrow, &xrow, at, out, step),
                        (3.., false) => tile_at::<K, 3, 1>(&wrow, &xrow, at, out, step),
                        (2, true) => tile_at::<K, 2, 2>(&wrow, &xrow, at, out, step),
                        (2, false) => tile_at::<K, 2, 1>(&wrow, &xrow, at, out, step),
                        (_, true) => tile_at::<K, 1, 2>(&wrow, &xrow, at, out, step),
                        (_, false) => tile_at::<K, 1, 1>(&wrow, &xrow, at, out, step),
                    }
                    r += (r1 - r).min(3);
                }
                t += if two { 2 } else { 1 };
            }
        }
    }
}
