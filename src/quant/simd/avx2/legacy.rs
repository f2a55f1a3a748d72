//! Single-row dot kernels for the legacy 32-element blocks (Q4_0, Q4_1, Q5_0, Q5_1,
//! Q8_0, IQ4_NL) against Q8_0 / Q8_1 activations.

use std::arch::x86_64::*;

use super::helpers::*;
use crate::quant::blocks::{
    BlockIq4Nl, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1,
};

pub(super) const Q80: usize = BlockQ8_0::SIZE;
pub(super) const Q81: usize = BlockQ8_1::SIZE;

/// The legacy-format dot product: `block(w, x)` gives a block pair's `[dw, mw]` (f32
/// lanes 0 and 1, from [`h2f2`]) and the i32 lanes of Σ q * y. Blocks alternate between
/// two accumulators (two FMA dependency chains: one chain caps a row at one block per
/// FMA latency, ~23 GB/s of Q8_0 here), combined at the end. With Q8_1 activations
/// (`MINS`) lane 1 of `dw * [dx, sx]` (the block's `m * s`) is summed separately, in two
/// chains as well. The tile kernels in `gemm` repeat these operations exactly.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn legacy_dot<const A: usize, const B: usize, const MINS: bool>(
    w: &[u8],
    x: &[u8],
    block: impl Fn(&[u8; A], &[u8; B]) -> (__m128, __m256i),
) -> f32 {
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut min0, mut min1) = (_mm_setzero_ps(), _mm_setzero_ps());
    let ws = w.as_chunks::<A>().0;
    let xs = x.as_chunks::<B>().0;
    let n = ws.len().min(xs.len());
    let (ws, xs) = (&ws[..n], &xs[..n]);
    // Explicit pairs (an indexed accumulator array made LLVM keep them in memory).
    let step = |acc: __m256, mins: __m128, a: &[u8; A], b: &[u8; B]| {
        let (dw, s) = block(a, b);
        // [dw * dx, mw * sx]
        let dm = _mm_mul_ps(dw, h2f4(at(b, 0)));
        let mins = if MINS { _mm_add_ps(mins, dm) } else { mins };
        let d = _mm256_broadcastss_ps(dm);
        (_mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc), mins)
    };
    let (wp, wr) = ws.as_chunks::<2>();
    let (xp, xr) = xs.as_chunks::<2>();
    for (a, b) in wp.iter().zip(xp) {
        // One line per pair of blocks (at most 68 bytes) is enough.
        prefetch_ahead(&a[0]);
        (acc0, min0) = step(acc0, min0, &a[0], &b[0]);
        (acc1, min1) = step(acc1, min1, &a[1], &b[1]);
    }
    if let (Some(a), Some(b)) = (wr.first(), xr.first()) {
        (acc0, min0) = step(acc0, min0, a, b);
    }
    let acc = [acc0, acc1];
    let mins = [min0, min1];
    let sum = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
    if MINS {
        sum + lane1(_mm_add_ps(mins[0], mins[1]))
    } else {
        sum
    }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q80, Q80, false>(w, x, |a, b| {
        (h2f4(at(a, 0)), dot_i8(ld256(at(a, 2)), ld256(at(b, 2))))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ4_0::SIZE }, Q80, false>(w, x, |a, b| {
        let q = _mm256_sub_epi8(nibbles(at(a, 2)), _mm256_set1_epi8(8));
        (h2f4(at(a, 0)), dot_i8(q, ld256(at(b, 2))))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_1(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ4_1::SIZE }, Q81, true>(w, x, |a, b| {
        // Unsigned 0..16 weights: maddubs directly.
        let p = _mm256_maddubs_epi16(nibbles(at(a, 4)), ld256(at(b, 4)));
        (h2f4(at(a, 0)), sum_pairs(p))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q5_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ5_0::SIZE }, Q80, false>(w, x, |a, b| {
        let hi = bit_mask(u32::from_le_bytes(*at(a, 2)));
        // q - 16 = nibble - (16 where bit 4 is clear).
        let q = _mm256_sub_epi8(
            nibbles(at(a, 6)),
            _mm256_andnot_si256(hi, _mm256_set1_epi8(0x10)),
        );
        (h2f4(at(a, 0)), dot_i8(q, ld256(at(b, 2))))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q5_1(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ5_1::SIZE }, Q81, true>(w, x, |a, b| {
        let hi = bit_mask(u32::from_le_bytes(*at(a, 4)));
        let q = _mm256_or_si256(
            nibbles(at(a, 8)),
            _mm256_and_si256(hi, _mm256_set1_epi8(0x10)),
        );
        let p = _mm256_maddubs_epi16(q, ld256(at(b, 4)));
        (h2f4(at(a, 0)), sum_pairs(p))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn iq4_nl(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table();
    legacy_dot::<{ BlockIq4Nl::SIZE }, Q80, false>(w, x, |a, b| {
        let q = _mm256_shuffle_epi8(table, nibbles(at(a, 2)));
        (h2f4(at(a, 0)), dot_i8(q, ld256(at(b, 2))))
    })
}
