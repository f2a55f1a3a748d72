//! Single-row dot kernels for float weights (F32, F16, BF16) against f32 activations.

use std::arch::x86_64::*;

use super::helpers::*;

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f32_dot(w: &[u8], x: &[u8]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let (wc, wr) = w.as_chunks::<128>();
    let (xc, xr) = x.as_chunks::<128>();
    for (a, b) in wc.iter().zip(xc) {
        for (k, s) in acc.iter_mut().enumerate() {
            *s = _mm256_fmadd_ps(ld_ps(at(a, 32 * k)), ld_ps(at(b, 32 * k)), *s);
        }
    }
    let mut sum = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    if wc.len() == xc.len() {
        for (a, b) in wr.as_chunks::<4>().0.iter().zip(xr.as_chunks::<4>().0) {
            sum += f32_le(a) * f32_le(b);
        }
    }
    sum
}

/// F16 (`BF = false`) or BF16 (`BF = true`) weights: widens 8 halves at a time to f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn half_dot<const BF: bool>(w: &[u8], x: &[u8]) -> f32 {
    let conv = |b: &[u8; 16]| {
        if BF {
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(ld128(b))))
        } else {
            _mm256_cvtph_ps(ld128(b))
        }
    };
    let mut acc = [_mm256_setzero_ps(); 4];
    let (wc, wr) = w.as_chunks::<64>();
    let (xc, xr) = x.as_chunks::<128>();
    for (a, b) in wc.iter().zip(xc) {
        for (k, s) in acc.iter_mut().enumerate() {
            *s = _mm256_fmadd_ps(conv(at(a, 16 * k)), ld_ps(at(b, 32 * k)), *s);
        }
    }
    let mut sum = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    if wc.len() == xc.len() {
        for (a, b) in wr.as_chunks::<2>().0.iter().zip(xr.as_chunks::<4>().0) {
            let v = if BF {
                f32::from_bits((u16::from_le_bytes(*a) as u32) << 16)
            } else {
                h2f(a)
            };
            sum += v * f32_le(b);
        }
    }
    sum
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_dot(w: &[u8], x: &[u8]) -> f32 {
    half_dot::<false>(w, x)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bf16_dot(w: &[u8], x: &[u8]) -> f32 {
    half_dot::<true>(w, x)
}

/// Float formats of the tile kernel.
pub(super) const F32: u8 = 0;
pub(super) const F16: u8 = 1;
pub(super) const BF16: u8 = 2;

/// Weights per step of the float kernels: four vectors of eight (`half_dot`'s and
/// `f32_dot`'s chunk), each with its own accumulator.
const STEP: usize = 32;
/// Weight rows a tile sweep keeps in L1 while a token triple is reused across them.
const ROW_GROUP: usize = 8;
/// Activation bytes one sweep over the rows reads (kept within L2).
const CHUNK_BYTES: usize = 96 * 1024;

/// Eight weights of format `K` from element `i` on, widened to f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn widen8<const K: u8>(w: &[u8], i: usize) -> __m256 {
    match K {
        F32 => ld_ps(at(w, 4 * i)),
        F16 => _mm256_cvtph_ps(ld128(at(w, 2 * i))),
        _ => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(ld128(at(
            w,
            2 * i,
        ))))),
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

/// One weight row times `NT` activation rows, each product with exactly the arithmetic
/// of the single-row kernels: four accumulators over 32-element steps, the same
/// horizontal sum, then the tail one multiply and one add at a time.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn float_tile<const K: u8, const NT: usize>(w: &[u8], xs: [&[u8]; NT], cols: usize) -> [f32; NT] {
    let mut acc = [[_mm256_setzero_ps(); 4]; NT];
    let full = cols / STEP;
    for c in 0..full {
        let e = c * STEP;
        let wv: [__m256; 4] = std::array::from_fn(|k| widen8::<K>(w, e + 8 * k));
        for (a, x) in acc.iter_mut().zip(&xs) {
            for (k, s) in a.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(wv[k], ld_ps(at(x, 4 * (e + 8 * k))), *s);
            }
        }
    }
    let mut out = [0.0; NT];
    for ((o, a), x) in out.iter_mut().zip(&acc).zip(&xs) {
        let mut sum = hsum_ps(_mm256_add_ps(
            _mm256_add_ps(a[0], a[1]),
            _mm256_add_ps(a[2], a[3]),
        ));
        for i in full * STEP..cols {
            sum += widen1::<K>(w, i) * f32_le(at(x, 4 * i));
        }
        *o = sum;
    }
    out
}

/// The tile kernel of the float formats ([`GemmFn`](crate::quant::dot::GemmFn)'s
/// contract): activation rows (f32) in chunks that stay in L2; within a chunk, groups of
/// [`ROW_GROUP`] weight rows, each group swept by token triples, so a triple (from L1)
/// serves every row of the group and a widened weight vector serves three tokens.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn float_gemm<const K: u8>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    (row_step, token_step): (usize, usize),
) {
    if rows == 0 || n == 0 {
        return;
    }
    let (wb, xb) = (w.len() / rows, x.len() / n);
    let cols = xb / 4;
    let chunk = (CHUNK_BYTES / xb.max(1)).max(3);
    let xrow = |t: usize| &x[t * xb..(t + 1) * xb];
    for t0 in (0..n).step_by(chunk) {
        let t1 = (t0 + chunk).min(n);
        for r0 in (0..rows).step_by(ROW_GROUP) {
            let r1 = (r0 + ROW_GROUP).min(rows);
            let mut t = t0;
            while t < t1 {
                let nt = (t1 - t).min(3);
                for r in r0..r1 {
                    let wr = &w[r * wb..(r + 1) * wb];
                    let at_out = r * row_step + t * token_step;
                    match nt {
                        3 => {
                            let s = float_tile::<K, 3>(wr, [xrow(t), xrow(t + 1), xrow(t + 2)], cols);
                            for (j, v) in s.into_iter().enumerate() {
                                out[at_out + j * token_step] = v;
                            }
                        }
                        2 => {
                            let s = float_tile::<K, 2>(wr, [xrow(t), xrow(t + 1)], cols);
                            for (j, v) in s.into_iter().enumerate() {
                                out[at_out + j * token_step] = v;
                            }
                        }
                        _ => out[at_out] = float_tile::<K, 1>(wr, [xrow(t)], cols)[0],
                    }
                }
                t += nt;
            }
        }
    }
}
