//! Single-row dot kernels for the K-quants (Q2_K..Q6_K) and IQ4_XS against Q8_K
//! activations (d f32 at 0, qs at 4, bsums (16 x i16) at 260).

use std::arch::x86_64::*;

use super::helpers::*;
use crate::quant::blocks::{
    BlockIq4Xs, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K,
};

pub(in crate::quant::simd) const Q8K: usize = BlockQ8K::SIZE;
pub(in crate::quant::simd) const YQ: usize = 4;
pub(in crate::quant::simd) const YBSUMS: usize = 260;

/// Q8_K's 16 group sums as i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn bsums(b: &[u8; Q8K]) -> __m256i {
    ld256(at(b, YBSUMS))
}

/// The 8 scales and 8 mins (6-bit, as bytes of a u64 each) of Q4_K/Q5_K's 12 bytes;
/// see `blocks::scale_min_k4` for the packing.
#[inline(always)]
pub(in crate::quant::simd) fn k4_scales(s: &[u8; 12]) -> (u64, u64) {
    let w0 = u32::from_le_bytes(*at(s, 0));
    let w1 = u32::from_le_bytes(*at(s, 4));
    let w2 = u32::from_le_bytes(*at(s, 8));
    const LO6: u32 = 0x3f3f_3f3f;
    const LO4: u32 = 0x0f0f_0f0f;
    const LO2: u32 = 0x0303_0303;
    let sc_lo = w0 & LO6;
    let mn_lo = w1 & LO6;
    let sc_hi = (w2 & LO4) | (((w0 >> 6) & LO2) << 4);
    let mn_hi = ((w2 >> 4) & LO4) | (((w1 >> 6) & LO2) << 4);
    (
        sc_lo as u64 | (sc_hi as u64) << 32,
        mn_lo as u64 | (mn_hi as u64) << 32,
    )
}

/// `Σ_j mins[j] * (bsums[2j] + bsums[2j+1])` as i32 lanes (mins: 8 bytes of a u64).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_mins(mins: u64, bs: __m256i) -> __m256i {
    let m = _mm_cvtsi64_si128(mins as i64);
    let m = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
    _mm256_madd_epi16(m, bs)
}

/// The scale of sub-block `j` as an i16 broadcast.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn bcast_scale(scales: u64, j: usize) -> __m256i {
    _mm256_set1_epi16(((scales >> (8 * j)) & 0xff) as i16)
}

/// Q5_K group `g`'s 64 quants (0..32) as two vectors (activation quants 64g..64g+32 and
/// 64g+32..64g+64): bits 2g and 2g+1 of each `qh` byte are the fifth bits (the 16-bit
/// shift only carries bits across bytes into positions 6..8, which are never read).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn q5k_group(a: &[u8; BlockQ5K::SIZE], g: usize) -> [__m256i; 2] {
    let m4 = _mm256_set1_epi8(0x0f);
    let b4 = _mm256_set1_epi8(0x10);
    let qh = _mm256_srl_epi16(ld256(at(a, 16)), _mm_cvtsi32_si128(2 * g as i32));
    let q = ld256(at(a, 48 + 32 * g));
    [
        _mm256_or_si256(
            _mm256_and_si256(q, m4),
            _mm256_and_si256(_mm256_slli_epi16::<4>(qh), b4),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4),
            _mm256_and_si256(_mm256_slli_epi16::<3>(qh), b4),
        ),
    ]
}

/// Q4_K group `g`'s 64 quants (0..16) as two vectors, paired as in [`q5k_group`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn q4k_group(a: &[u8; BlockQ4K::SIZE], g: usize) -> [__m256i; 2] {
    let m4 = _mm256_set1_epi8(0x0f);
    let q = ld256(at(a, 16 + 32 * g));
    [
        _mm256_and_si256(q, m4),
        _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4),
    ]
}

/// The Q4_K/Q5_K dot product (same scale and min packing): `group(a, g)` gives a
/// super-block's quants for activation quants 64g..64g+64.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_dot<const A: usize>(
    w: &[u8],
    x: &[u8],
    group: impl Fn(&[u8; A], usize) -> [__m256i; 2],
) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (a, b) in pairs::<A, Q8K>(w, x) {
        prefetch_ahead(a);
        let yd = f32_le(at(b, 0));
        let dm = _mm_mul_ps(_mm_set1_ps(yd), h2f2(at(a, 0)));
        let d = _mm256_broadcastss_ps(dm);
        let dmin = _mm256_set1_ps(lane1(dm));
        let (scales, mins) = k4_scales(at(a, 4));
        let mut sumi = _mm256_setzero_si256();
        for g in 0..4 {
            let [lo, hi] = group(a, g);
            let p0 = _mm256_maddubs_epi16(lo, ld256(at(b, YQ + 64 * g)));
            let p1 = _mm256_maddubs_epi16(hi, ld256(at(b, YQ + 64 * g + 32)));
            let s0 = _mm256_madd_epi16(p0, bcast_scale(scales, 2 * g));
            let s1 = _mm256_madd_epi16(p1, bcast_scale(scales, 2 * g + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(s0, s1));
        }
        let m = k4_mins(mins, bsums(b));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(m), acc);
    }
    hsum_ps(acc)
}

/// Q6_K half `h`'s 128 quants (0..64, before the -32 offset) as four vectors; vector k
/// pairs with activation quants 128h + 32k..128h + 32k + 32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn q6k_half(a: &[u8; BlockQ6K::SIZE], h: usize) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(0x30);
    let ql0 = ld256(at(a, 64 * h));
    let ql1 = ld256(at(a, 64 * h + 32));
    let qh = ld256(at(a, 128 + 32 * h));
    [
        _mm256_or_si256(
            _mm256_and_si256(ql0, m4),
            _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m2),
        ),
        _mm256_or_si256(
            _mm256_and_si256(ql1, m4),
            _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m2),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
            _mm256_and_si256(qh, m2),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
            _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m2),
        ),
    ]
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) unsafe fn q4_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<{ BlockQ4K::SIZE }>(w, x, |a, g| q4k_group(a, g))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) unsafe fn q5_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<{ BlockQ5K::SIZE }>(w, x, |a, g| q5k_group(a, g))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) unsafe fn q6_k(w: &[u8], x: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (a, b) in pairs::<{ BlockQ6K::SIZE }, Q8K>(w, x) {
        prefetch_ahead(a);
        // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
        let d = _mm256_set1_ps(f32_le(at(b, 0)) * lane1(h2f2(at(a, 206))));
        let sc = ld128(at(a, 192));
        // Unsigned q (0..64) first: |Σ| <= 256 * 63 * 127 * 128 < 2^31.
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let q = q6k_half(a, h);
            for (k, qk) in q.into_iter().enumerate() {
                let p = _mm256_maddubs_epi16(qk, ld256(at(b, YQ + 128 * h + 32 * k)));
                let s = _mm256_madd_epi16(p, scale_pair(sc, 8 * h + 2 * k));
                sumi = _mm256_add_epi32(sumi, s);
            }
        }
        // The -32 offset: 32 * Σ_i scale_i * bsums_i.
        let off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), bsums(b));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32::<5>(off));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// Q3_K's 16 scales (6-bit, minus 32) as signed bytes; packing in `blocks::q3k_scales`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q3k_scales(s: &[u8; 12]) -> __m128i {
    let a0 = u32::from_le_bytes(*at(s, 0));
    let a1 = u32::from_le_bytes(*at(s, 4));
    let a2 = u32::from_le_bytes(*at(s, 8));
    const LO4: u32 = 0x0f0f_0f0f;
    const LO2: u32 = 0x0303_0303;
    let v = _mm_setr_epi32(
        ((a0 & LO4) | ((a2 & LO2) << 4)) as i32,
        ((a1 & LO4) | (((a2 >> 2) & LO2) << 4)) as i32,
        (((a0 >> 4) & LO4) | (((a2 >> 4) & LO2) << 4)) as i32,
        (((a1 >> 4) & LO4) | (((a2 >> 6) & LO2) << 4)) as i32,
    );
    _mm_sub_epi8(v, _mm_set1_epi8(32))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) unsafe fn q3_k(w: &[u8], x: &[u8]) -> f32 {
    let m2 = _mm256_set1_epi8(3);
    let b2 = _mm256_set1_epi8(4);
    let mut acc = _mm256_setzero_ps();
    for (a, b) in pairs::<{ BlockQ3K::SIZE }, Q8K>(w, x) {
        // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
        let d = _mm256_set1_ps(f32_le(at(b, 0)) * lane1(h2f2(at(a, 106))));
        let sc = q3k_scales(at(a, 96));
        // q = low2 + 4 * hbit - 4: unsigned low2 + 4 * hbit (0..8) in maddubs, then
        // -4 * Σ_i scale_i * bsums_i. |Σ| <= 256 * 7 * 127 * 32 per block.
        let mut hm = ld256(at(a, 0));
        let mut sumi = _mm256_setzero_si256();
        for g in 0..2 {
            let mut q2 = ld256(at(a, 32 + 32 * g));
            for s in 0..4 {
                let q = _mm256_or_si256(
                    _mm256_and_si256(q2, m2),
                    _mm256_and_si256(_mm256_slli_epi16::<2>(hm), b2),
                );
                q2 = _mm256_srli_epi16::<2>(q2);
                hm = _mm256_srli_epi16::<1>(hm);
                let p = _mm256_maddubs_epi16(q, ld256(at(b, YQ + 128 * g + 32 * s)));
                let v = _mm256_madd_epi16(p, scale_pair(sc, 8 * g + 2 * s));
                sumi = _mm256_add_epi32(sumi, v);
            }
        }
        let off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), bsums(b));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32::<2>(off));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) unsafe fn q2_k(w: &[u8], x: &[u8]) -> f32 {
    let m2 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    for (a, b) in pairs::<{ BlockQ2K::SIZE }, Q8K>(w, x) {
        let yd = f32_le(at(b, 0));
        let dm = _mm_mul_ps(_mm_set1_ps(yd), h2f2(at(a, 80)));
        let d = _mm256_broadcastss_ps(dm);
        let dmin = _mm256_set1_ps(lane1(dm));
        let raw = ld128(at(a, 0));
        let sc = _mm_and_si128(raw, m4);
        let mn = _mm_and_si128(_mm_srli_epi16::<4>(raw), m4);
        let mut sumi = _mm256_setzero_si256();
        for g in 0..2 {
            let mut q2 = ld256(at(a, 16 + 32 * g));
            for s in 0..4 {
                let q = _mm256_and_si256(q2, m2);
                q2 = _mm256_srli_epi16::<2>(q2);
                let p = _mm256_maddubs_epi16(q, ld256(at(b, YQ + 128 * g + 32 * s)));
                let v = _mm256_madd_epi16(p, scale_pair(sc, 8 * g + 2 * s));
                sumi = _mm256_add_epi32(sumi, v);
            }
        }
        let m = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mn), bsums(b));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(m), acc);
    }
    hsum_ps(acc)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) unsafe fn iq4_xs(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table();
    let mut acc = _mm256_setzero_ps();
    for (a, b) in pairs::<{ BlockIq4Xs::SIZE }, Q8K>(w, x) {
        let d = _mm256_set1_ps(f32_le(at(b, 0)) * _mm_cvtss_f32(h2f2(at(a, 0))));
        let sh = u16::from_le_bytes(*at(a, 2)) as u32;
        let sl = u32::from_le_bytes(*at(a, 4));
        // |Σ| <= 256 * 127 * 127 * 32 per block.
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let scale = (((sl >> (4 * ib)) & 0x0f) | (((sh >> (2 * ib)) & 3) << 4)) as i16 - 32;
            let q = _mm256_shuffle_epi8(table, nibbles(at(a, 8 + 16 * ib)));
            let p = dot_i8_pairs(q, ld256(at(b, YQ + 32 * ib)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16(scale)));
        }
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}
