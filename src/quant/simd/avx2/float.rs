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
