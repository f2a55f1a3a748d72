//! Single-row dot kernels for Q4_K, Q5_K and Q6_K against Q8_K activations, 64 quants per
//! 512-bit vector.
//!
//! A super-block's weights are unpacked (the `*_unpack` fns, shared with the tile kernels
//! in `gemm`) into four vectors of 64 unsigned quants, vector k pairing with activation
//! quants 64k..64k+64, and four vectors of i16 sub-block scales. Per vector,
//! `vpmaddubsw` multiplies bytes into i16 pair sums (never saturated: quants <= 63) and
//! VNNI's `vpdpwssd` multiplies those by the scales and adds adjacent pairs into the i32
//! accumulator: two instructions per 64 quants where AVX2 needs six.
//!
//! Lane k of a 32-quant half is the sum over its bytes 4k..4k+4, as in AVX2; folding the
//! 16 lanes to 8 (`fold`) gives AVX2's i32 lanes exactly (integer sums in another order),
//! and the float code per super-block is AVX2's, so these kernels return AVX2's bits.

use std::arch::x86_64::*;

use super::helpers::*;
use crate::quant::simd::avx2::kquants::{bsums, k4_scales, Q8K, YQ};

pub(super) const Q4K: usize = 144;
pub(super) const Q5K: usize = 176;
pub(super) const Q6K: usize = 210;

/// A super-block's quants and scales, as `vpmaddubsw`/`vpdpwssd` operands.
pub(super) type KVecs = ([__m512i; 4], [__m512i; 4]);

/// i16 vector with `s[i]` in lanes 0..16 and `s[j]` in 16..32 (`s`: 8 or 16 i16 lanes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn scale_halves(s: __m512i, i: i16, j: i16) -> __m512i {
    let idx = _mm512_mask_blend_epi16(0xffff_0000, _mm512_set1_epi16(i), _mm512_set1_epi16(j));
    _mm512_permutexvar_epi16(idx, s)
}

/// Q4_K/Q5_K: the 8 scales (bytes of a u64) as the four vectors' i16 scales (sub-blocks
/// 2k and 2k + 1 in vector k's halves).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k4_scale_vecs(scales: u64) -> [__m512i; 4] {
    let s = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(scales as i64)));
    std::array::from_fn(|k| scale_halves(s, 2 * k as i16, 2 * k as i16 + 1))
}

/// The four vectors of low (0..32) and high (32..64) nibbles of 32 bytes each.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k_nibbles(q: &[u8; 32]) -> __m512i {
    let v = _mm512_broadcast_i64x4(ld256(q));
    let v = _mm512_mask_srli_epi16::<4>(v, 0xffff_0000, v);
    _mm512_and_si512(v, _mm512_set1_epi8(0x0f))
}

/// Q4_K: vector k = group k's low nibbles (sub-block 2k) then high nibbles (2k + 1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn q4k_unpack(a: &[u8; Q4K]) -> KVecs {
    let (scales, _) = k4_scales(at(a, 4));
    (
        std::array::from_fn(|g| k_nibbles(at(a, 16 + 32 * g))),
        k4_scale_vecs(scales),
    )
}

/// Q5_K: as Q4_K, plus bit 2k (low half) or 2k + 1 (high half) of each `qh` byte as the
/// quant's bit 4.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn q5k_unpack(a: &[u8; Q5K]) -> KVecs {
    let (scales, _) = k4_scales(at(a, 4));
    let qh = _mm512_broadcast_i64x4(ld256(at(a, 16)));
    let q = std::array::from_fn(|g| {
        let sel = join(
            _mm256_set1_epi8(1 << (2 * g)),
            _mm256_set1_epi8(1 << (2 * g + 1)),
        );
        let hi = _mm512_test_epi8_mask(qh, sel);
        let u = k_nibbles(at(a, 48 + 32 * g));
        _mm512_mask_add_epi8(u, hi, u, _mm512_set1_epi8(0x10))
    });
    (q, k4_scale_vecs(scales))
}

/// Q6_K: quants 0..64 (before the -32 offset); vector 2h + v covers quants
/// 128h + 64v..128h + 64v + 64, i.e. sub-blocks of 16 numbered 8h + 4v..8h + 4v + 4.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn q6k_unpack(a: &[u8; Q6K]) -> KVecs {
    let m4 = _mm512_set1_epi8(0x0f);
    let m2 = _mm512_set1_epi8(0x30);
    let mut q = [_mm512_setzero_si512(); 4];
    for h in 0..2 {
        let ql = ld512(at(a, 64 * h));
        let qh = _mm512_broadcast_i64x4(ld256(at(a, 128 + 32 * h)));
        // Bits 4..6 from qh: [qh << 4, qh << 2] and [qh, qh >> 2].
        let t = _mm512_slli_epi16::<2>(qh);
        let ha = _mm512_mask_slli_epi16::<2>(t, 0x0000_ffff, t);
        let hb = _mm512_mask_srli_epi16::<2>(qh, 0xffff_0000, qh);
        q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(ha, m2));
        q[2 * h + 1] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16::<4>(ql), m4),
            _mm512_and_si512(hb, m2),
        );
    }
    let s = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(ld128(at(a, 192))));
    let sc = std::array::from_fn(|v| {
        let b = 4 * v as i16;
        let lo =
            _mm512_mask_blend_epi16(0xff00_ff00, _mm512_set1_epi16(b), _mm512_set1_epi16(b + 1));
        let hi = _mm512_mask_blend_epi16(
            0xff00_ff00,
            _mm512_set1_epi16(b + 2),
            _mm512_set1_epi16(b + 3),
        );
        let idx = _mm512_mask_blend_epi16(0xffff_0000, lo, hi);
        _mm512_permutexvar_epi16(idx, s)
    });
    (q, sc)
}

/// Σ over the four vectors of scale * quant * activation, folded to AVX2's 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn k_sumi(kv: &KVecs, y: [__m512i; 4]) -> __m256i {
    let mut sumi = _mm512_setzero_si512();
    for ((q, sc), y) in kv.0.iter().zip(&kv.1).zip(y) {
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(*q, y), *sc);
    }
    fold(sumi)
}

/// An activation block's quants as four vectors.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn act_vecs(b: &[u8; Q8K]) -> [__m512i; 4] {
    std::array::from_fn(|k| ld512(at(b, YQ + 64 * k)))
}

/// The 8 mins of Q4_K/Q5_K (bytes of a u64) as 16 i16 lanes, each twice (for `bsums`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn k4_min_vec(mins: u64) -> __m256i {
    let m = _mm_cvtsi64_si128(mins as i64);
    _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m))
}

/// The Q4_K/Q5_K dot product: AVX2's per-super-block float code.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k4_dot<const A: usize>(w: &[u8], x: &[u8], unpack: impl Fn(&[u8; A]) -> KVecs) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (a, b) in w.as_chunks::<A>().0.iter().zip(x.as_chunks::<Q8K>().0) {
        prefetch_ahead(a);
        let yd = f32_le(at(b, 0));
        let dm = _mm_mul_ps(_mm_set1_ps(yd), h2f2(at(a, 0)));
        let d = _mm256_broadcastss_ps(dm);
        let dmin = _mm256_set1_ps(lane1(dm));
        let (_, mins) = k4_scales(at(a, 4));
        let sumi = k_sumi(&unpack(a), act_vecs(b));
        let m = _mm256_madd_epi16(k4_min_vec(mins), bsums(b));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(m), acc);
    }
    hsum_ps(acc)
}

/// # Safety
/// The CPU must support AVX2, FMA, F16C, AVX-512 F/BW/VL and AVX512-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q4_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<Q4K>(w, x, |a| q4k_unpack(a))
}

/// # Safety
/// As for [`q4_k`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q5_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<Q5K>(w, x, |a| q5k_unpack(a))
}

/// # Safety
/// As for [`q4_k`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q6_k(w: &[u8], x: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (a, b) in w.as_chunks::<Q6K>().0.iter().zip(x.as_chunks::<Q8K>().0) {
        prefetch_ahead(a);
        // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
        let d = _mm256_set1_ps(f32_le(at(b, 0)) * lane1(h2f2(at(a, 206))));
        let mut sumi = k_sumi(&q6k_unpack(a), act_vecs(b));
        // The -32 offset: 32 * Σ_i scale_i * bsums_i.
        let off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(ld128(at(a, 192))), bsums(b));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32::<5>(off));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}
