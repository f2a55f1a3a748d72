//! Shared helpers of the AVX-512 kernels (safe `#[target_feature]` fns): 512-bit loads and
//! stores of borrowed arrays, joining two 256-bit halves, the VNNI byte dot product, the
//! nibbles of two legacy blocks, f16 scales of two blocks, and the horizontal sum.

use std::arch::x86_64::*;

pub(super) use crate::quant::simd::avx2::helpers::{
    at, f32_le, h2f2, hsum_ps, lane1, ld128, ld256, prefetch_ahead,
};

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn ld512(b: &[u8; 64]) -> __m512i {
    // SAFETY: reads exactly the 64 bytes `b` borrows; `loadu` needs no alignment.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn st512(dst: &mut [u8; 64], v: __m512i) {
    // SAFETY: writes exactly the 64 bytes `dst` borrows mutably; no alignment needed.
    unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn ld_f16x(v: &[f32; 16]) -> __m512 {
    // SAFETY: reads exactly the 16 floats `v` borrows; `loadu` needs no alignment.
    unsafe { _mm512_loadu_ps(v.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn st_f16x(dst: &mut [f32; 16], v: __m512) {
    // SAFETY: writes exactly the 16 floats `dst` borrows mutably; no alignment needed.
    unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn ld_i16x(v: &[i32; 16]) -> __m512i {
    // SAFETY: reads exactly the 16 i32 `v` borrows; `loadu` needs no alignment.
    unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn st_i16x(dst: &mut [i32; 16], v: __m512i) {
    // SAFETY: writes exactly the 16 i32 `dst` borrows mutably; no alignment needed.
    unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), v) }
}

/// `lo` in bytes 0..32, `hi` in bytes 32..64.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// Lanes 8..16 of a float vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn hi256_ps(v: __m512) -> __m256 {
    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)))
}

/// Lanes 8..16 of an integer vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn hi256(v: __m512i) -> __m256i {
    _mm512_extracti64x4_epi64::<1>(v)
}

/// The horizontal sum of 16 lanes as AVX2's two-accumulator kernels take it:
/// `hsum_ps(lanes 0..8 + lanes 8..16)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn hsum512(v: __m512) -> f32 {
    hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(v), hi256_ps(v)))
}

/// Lanes 0..8 + lanes 8..16 of i32 lanes (exact unless the sums overflow, which the
/// callers' bounds exclude).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn fold(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), hi256(v))
}

/// Per 4 consecutive bytes, `Σ u * y` as i32 (16 lanes), `u` unsigned, `y` signed:
/// `vpdpbusd`, exact for all byte values (no intermediate saturation).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn dpbusd(u: __m512i, y: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y)
}

/// `Σ (u - off) * y` per 4 bytes, for unsigned `u` (an offset weight format, or signed
/// weights with their sign bit flipped and `off = 128`): `dpbusd(u, y) - dpbusd(off, y)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn offset_dot<const OFF: u8>(u: __m512i, y: __m512i) -> __m512i {
    let p = dpbusd(u, y);
    if OFF == 0 {
        p
    } else {
        _mm512_sub_epi32(p, dpbusd(_mm512_set1_epi8(OFF as i8), y))
    }
}

/// The 32 nibbles of each of two legacy blocks' 16 bytes: block 0's low nibbles in bytes
/// 0..16, its high nibbles in 16..32, block 1's in 32..64 (the element order of each
/// block).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn nibbles2(q0: &[u8; 16], q1: &[u8; 16]) -> __m512i {
    let v = join(
        _mm256_broadcastsi128_si256(ld128(q0)),
        _mm256_broadcastsi128_si256(ld128(q1)),
    );
    // The 16-bit lanes of 128-bit quarters 1 and 3 shifted by 4.
    let v = _mm512_mask_srli_epi16::<4>(v, 0xff00_ff00, v);
    _mm512_and_si512(v, _mm512_set1_epi8(0x0f))
}

/// The first four f16 of two blocks (8 bytes each) as f32: block 0's in lanes 0..4,
/// block 1's in lanes 4..8 (legacy blocks: `[d, m]` or `[d, s]` in the first two).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn h2f4x2(b0: &[u8; 8], b1: &[u8; 8]) -> __m256 {
    let v = _mm_set_epi64x(
        u64::from_le_bytes(*b1) as i64,
        u64::from_le_bytes(*b0) as i64,
    );
    _mm256_cvtph_ps(v)
}

/// Lane 0 of `v` in lanes 0..8 and lane 4 in lanes 8..16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn spread04(v: __m256) -> __m512 {
    let idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(v))
}
