//! Shared helpers of the AVX2 kernels (safe `#[target_feature]` fns: callable without
//! `unsafe` from the kernels): bounds-checked loads, f16 conversion, horizontal sums,
//! i8 x i8 products, nibble and bit unpacking, block-pair iteration and prefetching.

use std::arch::x86_64::*;

use crate::quant::blocks::KVALUES_IQ4NL;

/// `N` bytes of `s` at `off`, as an array reference (panics if out of range; every call
/// site uses offsets inside a fixed-size block, so the check folds away).
#[inline(always)]
pub(in crate::quant::simd) fn at<const N: usize>(s: &[u8], off: usize) -> &[u8; N] {
    s[off..off + N]
        .first_chunk::<N>()
        .expect("offset inside the block")
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn ld256(b: &[u8; 32]) -> __m256i {
    // SAFETY: reads exactly the 32 bytes `b` borrows; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn ld128(b: &[u8; 16]) -> __m128i {
    // SAFETY: reads exactly the 16 bytes `b` borrows; `loadu` needs no alignment.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// An f16 (little-endian bytes) to f32 with F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn h2f(b: &[u8; 2]) -> f32 {
    let v = _mm_cvtsi32_si128(u16::from_le_bytes(*b) as i32);
    _mm_cvtss_f32(_mm_cvtph_ps(v))
}

/// Two consecutive f16 (4 little-endian bytes) to f32 lanes 0 and 1 (lanes 2, 3 zero).
/// Used where a block has a scale and a min: one conversion for both, and a `vmovd`
/// load that cannot tie the result to a previous register's value (a scalar `+=` of
/// converted halves made LLVM merge them into the accumulator register with `vpinsrw`,
/// a false loop-carried dependency that halved Q4_1's speed).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn h2f2(b: &[u8; 4]) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(u32::from_le_bytes(*b) as i32))
}

/// Four consecutive f16 (8 bytes) to f32 lanes 0..4, converted straight from memory
/// (`vcvtph2ps xmm, m64`). Where only lane 0 is used LLVM turns [`h2f2`] into a `vpinsrw`
/// into whatever register is free, typically an accumulator, which chains independent
/// accumulators together (it halved the two-chain kernels' speed); a full-width load
/// has no such input.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn h2f4(b: &[u8; 8]) -> __m128 {
    // SAFETY: reads exactly the 8 bytes `b` borrows; `loadl` needs no alignment.
    _mm_cvtph_ps(unsafe { _mm_loadl_epi64(b.as_ptr().cast()) })
}

#[inline]
pub(in crate::quant::simd) fn f32_le(b: &[u8; 4]) -> f32 {
    f32::from_le_bytes(*b)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Lane 1 of a vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn lane1(v: __m128) -> f32 {
    _mm_cvtss_f32(_mm_movehdup_ps(v))
}

/// Pairwise sums of i16 to i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn sum_pairs(p: __m256i) -> __m256i {
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// Per 4 consecutive bytes, sum of `w * y` as i32 (8 lanes), for signed `w` and `y`
/// with `y != -128` (see the module notes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn dot_i8(w: __m256i, y: __m256i) -> __m256i {
    sum_pairs(dot_i8_pairs(w, y))
}

/// i16 sums of adjacent products `w * y` (signed x signed, `y != -128`); at most
/// 2 * 128 * 127 in magnitude, so never saturated.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn dot_i8_pairs(w: __m256i, y: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(y, w))
}

/// 32 nibbles of 16 bytes: low nibbles to bytes 0..16, high nibbles to bytes 16..32
/// (the legacy-block element order).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn nibbles(qs: &[u8; 16]) -> __m256i {
    let v = ld128(qs);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(v), v);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// Byte j = 0xff when bit j of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn bit_mask(bits: u32) -> __m256i {
    let spread = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let v = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), spread);
    let sel = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel)
}

/// `KVALUES_IQ4NL` as bytes in both 128-bit lanes, for `shuffle_epi8` lookups.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn iq4_table() -> __m256i {
    const KV: [u8; 16] = {
        let mut o = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            o[i] = KVALUES_IQ4NL[i] as u8;
            i += 1;
        }
        o
    };
    _mm256_broadcastsi128_si256(ld128(&KV))
}

/// i16 vector holding `s[i]` in the low 128-bit lane and `s[i + 1]` in the high one,
/// from 16 signed byte scales (for two 16-element sub-blocks in one 32-byte vector).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn scale_pair(s: __m128i, i: usize) -> __m256i {
    let base = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    let idx = _mm_add_epi8(base, _mm_set1_epi8(i as i8));
    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, idx))
}

#[inline]
pub(in crate::quant::simd) fn pairs<'a, const A: usize, const B: usize>(
    w: &'a [u8],
    x: &'a [u8],
) -> impl Iterator<Item = (&'a [u8; A], &'a [u8; B])> {
    w.as_chunks::<A>().0.iter().zip(x.as_chunks::<B>().0)
}

/// How far ahead (bytes) the single-row kernels ask for weight bytes: a decode step
/// streams every matrix from DRAM once, and the hardware prefetcher alone leaves each
/// core's share of the bandwidth unused (Gemma 3 decode, 2 threads: 512 B ahead +3%,
/// 1 KiB +7%, 2 KiB +11%, 4 KiB +5-10% over none).
const PREFETCH: usize = 2048;

/// Asks for the cache lines `PREFETCH` bytes after each 64 bytes of `block`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant::simd) fn prefetch_ahead(block: &[u8]) {
    let p = block.as_ptr().cast::<i8>().wrapping_add(PREFETCH);
    for off in (0..block.len()).step_by(64) {
        // A prefetch never faults, whatever the address (past the end of the map too).
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off));
    }
}
