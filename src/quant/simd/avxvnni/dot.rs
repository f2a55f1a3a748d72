//! Single-row dot kernels of the AVX-VNNI set: the legacy formats (Q4_0, Q4_1, Q5_0, Q5_1,
//! Q8_0, IQ4_NL) with `vpdpbusd` and Q4_K, Q5_K, Q6_K with `vpmaddubsw` + `vpdpwssd`, in
//! 256-bit (VEX) registers.
//!
//! Same structure and bits as the AVX2 kernels (`avx2::legacy`, `avx2::kquants`): a legacy
//! block's weights are unpacked to 32 unsigned bytes `u` with an offset `OFF` (as in the
//! AVX-512 set: `Σ (u - OFF) * y = dpbusd(u, y) - dpbusd(OFF, y)`, exact for every byte),
//! giving AVX2's i32 lanes (sums over bytes 4k..4k+4); the K-quants' `madd` + `add` of
//! scaled pair sums become one `vpdpwssd`, the same lanes. The float code is AVX2's, so
//! the results are AVX2's bits.

use std::arch::x86_64::*;

use crate::quant::simd::avx2::helpers::*;
use crate::quant::simd::avx2::kquants::{
    bcast_scale, bsums, k4_scales, q4k_group, q5k_group, q6k_half, Q8K, YQ,
};

pub(super) const Q80: usize = 34;
pub(super) const Q81: usize = 36;
pub(super) const Q40: usize = 18;
pub(super) const Q41: usize = 20;
pub(super) const Q50: usize = 22;
pub(super) const Q51: usize = 24;
const Q4K: usize = 144;
const Q5K: usize = 176;
const Q6K: usize = 210;

/// Per 4 consecutive bytes, `Σ u * y` (u unsigned, y signed) as i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn dpbusd(u: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, y)
}

/// `Σ (u - OFF) * y` per 4 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn offset_dot<const OFF: u8>(u: __m256i, y: __m256i) -> __m256i {
    let p = dpbusd(u, y);
    if OFF == 0 {
        p
    } else {
        _mm256_sub_epi32(p, dpbusd(_mm256_set1_epi8(OFF as i8), y))
    }
}

/// AVX2's legacy dot product (two accumulators for even and odd blocks, the mins of Q8_1
/// activations summed apart) with `vpdpbusd` for the integer sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn legacy_dot<const A: usize, const B: usize, const OFF: u8, const MINS: bool>(
    w: &[u8],
    x: &[u8],
    unpack: impl Fn(&[u8; A]) -> __m256i,
) -> f32 {
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut min0, mut min1) = (_mm_setzero_ps(), _mm_setzero_ps());
    let ws = w.as_chunks::<A>().0;
    let xs = x.as_chunks::<B>().0;
    let n = ws.len().min(xs.len());
    let (ws, xs) = (&ws[..n], &xs[..n]);
    let step = |acc: __m256, mins: __m128, a: &[u8; A], b: &[u8; B]| {
        let s = offset_dot::<OFF>(unpack(a), ld256(at(b, B - 32)));
        // [dw * dx, mw * sx]
        let dm = _mm_mul_ps(h2f4(at(a, 0)), h2f4(at(b, 0)));
        let mins = if MINS { _mm_add_ps(mins, dm) } else { mins };
        let d = _mm256_broadcastss_ps(dm);
        (_mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc), mins)
    };
    let (wp, wr) = ws.as_chunks::<2>();
    let (xp, xr) = xs.as_chunks::<2>();
    for (a, b) in wp.iter().zip(xp) {
        prefetch_ahead(&a[0]);
        (acc0, min0) = step(acc0, min0, &a[0], &b[0]);
        (acc1, min1) = step(acc1, min1, &a[1], &b[1]);
    }
    if let (Some(a), Some(b)) = (wr.first(), xr.first()) {
        (acc0, min0) = step(acc0, min0, a, b);
    }
    let sum = hsum_ps(_mm256_add_ps(acc0, acc1));
    if MINS {
        sum + lane1(_mm_add_ps(min0, min1))
    } else {
        sum
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn flip(v: __m256i) -> __m256i {
    _mm256_xor_si256(v, _mm256_set1_epi8(-128))
}

/// Q5's fifth bits (bit j of `qh` to bit 4 of byte j) added to the nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn q5(qs: &[u8; 16], qh: &[u8; 4]) -> __m256i {
    let hi = bit_mask(u32::from_le_bytes(*qh));
    _mm256_or_si256(nibbles(qs), _mm256_and_si256(hi, _mm256_set1_epi8(0x10)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn unpack_q8_0(a: &[u8; Q80]) -> __m256i {
    flip(ld256(at(a, 2)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn unpack_q4_0(a: &[u8; Q40]) -> __m256i {
    nibbles(at(a, 2))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn unpack_q4_1(a: &[u8; Q41]) -> __m256i {
    nibbles(at(a, 4))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn unpack_q5_0(a: &[u8; Q50]) -> __m256i {
    q5(at(a, 6), at(a, 2))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn unpack_q5_1(a: &[u8; Q51]) -> __m256i {
    q5(at(a, 8), at(a, 4))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn unpack_iq4_nl(table: __m256i, a: &[u8; Q40]) -> __m256i {
    flip(_mm256_shuffle_epi8(table, nibbles(at(a, 2))))
}

/// # Safety
/// The CPU must support AVX2, FMA, F16C and AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q8_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q80, Q80, 128, false>(w, x, |a| unpack_q8_0(a))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q4_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q40, Q80, 8, false>(w, x, |a| unpack_q4_0(a))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q4_1(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q41, Q81, 0, true>(w, x, |a| unpack_q4_1(a))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q5_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q50, Q80, 16, false>(w, x, |a| unpack_q5_0(a))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q5_1(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q51, Q81, 0, true>(w, x, |a| unpack_q5_1(a))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn iq4_nl(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table();
    legacy_dot::<Q40, Q80, 128, false>(w, x, |a| unpack_iq4_nl(table, a))
}

/// AVX2's Q4_K/Q5_K dot product with `vpdpwssd` for the scaled sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
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
            sumi = _mm256_dpwssd_avx_epi32(sumi, p0, bcast_scale(scales, 2 * g));
            sumi = _mm256_dpwssd_avx_epi32(sumi, p1, bcast_scale(scales, 2 * g + 1));
        }
        let m = _mm_cvtsi64_si128(mins as i64);
        let m = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)), bsums(b));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(m), acc);
    }
    hsum_ps(acc)
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q4_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<Q4K>(w, x, |a, g| q4k_group(a, g))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q5_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<Q5K>(w, x, |a, g| q5k_group(a, g))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q6_k(w: &[u8], x: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (a, b) in pairs::<Q6K, Q8K>(w, x) {
        prefetch_ahead(a);
        // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
        let d = _mm256_set1_ps(f32_le(at(b, 0)) * lane1(h2f2(at(a, 206))));
        let sc = ld128(at(a, 192));
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let q = q6k_half(a, h);
            for (k, qk) in q.into_iter().enumerate() {
                let p = _mm256_maddubs_epi16(qk, ld256(at(b, YQ + 128 * h + 32 * k)));
                sumi = _mm256_dpwssd_avx_epi32(sumi, p, scale_pair(sc, 8 * h + 2 * k));
            }
        }
        let off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), bsums(b));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32::<5>(off));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}
