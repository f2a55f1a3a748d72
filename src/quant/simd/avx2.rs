//! AVX2 + FMA + F16C dot kernels (x86-64), one per weight type; see `quant::dot` for
//! the formats and the scalar originals, and `super` for how they are handed out.
//!
//! Techniques:
//! - i8 x i8 products: `maddubs` multiplies unsigned by signed bytes, so a signed weight
//!   vector `w` is made unsigned with `abs(w)` and its sign moved onto the activations
//!   with `sign(y, w)`. Exact as long as no activation is -128, which the activation
//!   quantizers never produce (their range is -127..=127). Unsigned weights (Q4_1, Q5_1,
//!   Q2_K..Q6_K) go to `maddubs` directly; their offsets (Q3_K's -4, Q6_K's -32) are
//!   applied afterwards through Q8_K's per-16 sums `bsums`, which is exact integer algebra.
//! - Sub-block scales multiply the i16 pair sums inside `madd` (scale in the other operand),
//!   so one block's integer sum is exact in i32 (bounds noted per kernel) and converted to
//!   float once per block, like the scalar code.
//! - Packed scales (Q3_K, Q4_K, Q5_K) are decoded four at a time with u32 bit arithmetic.
//! - All loads and stores are unaligned (tensor data comes from an mmap at any alignment)
//!   and go through [`ld256`]/[`ld128`]/[`ld8`]/[`st256`], which touch exactly one
//!   borrowed array, so bounds are those of the safe slices: blocks are zipped from
//!   `as_chunks`, as in the scalar code, and short inputs only shorten the sum.
//! - f16 scales are loaded 4 bytes at a time ([`h2f2`]) and converted with F16C.
//!
//! Contents: single-row dot kernels for every weight type hearth computes with, byte-exact
//! Q8_0/Q8_1/Q8_K activation quantizers, and (in `gemm`) tile kernels for batches of
//! activation rows.
//!
//! The kernel bodies are `unsafe fn` only because of `#[target_feature]`: the caller must
//! guarantee the CPU has AVX2, FMA and F16C. The safe wrappers at the bottom are handed out
//! by [`dot_fn`] only, which `super::dot_fn_for` calls after detecting those features.

use std::arch::x86_64::*;

use crate::quant::blocks::{
    BlockIq4Nl, BlockIq4Xs, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K,
    BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, KVALUES_IQ4NL,
};
use crate::quant::dot::{DotFn, QuantizeFn};
use crate::quant::error::check_lengths;
use crate::quant::{GgmlType, QuantError};

mod gemm;
pub(super) use gemm::gemm_fn;

// ---------------------------------------------------------------------------------------
// Helpers (safe `#[target_feature]` fns: callable without `unsafe` from the kernels).

/// `N` bytes of `s` at `off`, as an array reference (panics if out of range; every call
/// site uses offsets inside a fixed-size block, so the check folds away).
#[inline(always)]
fn at<const N: usize>(s: &[u8], off: usize) -> &[u8; N] {
    s[off..off + N]
        .first_chunk::<N>()
        .expect("offset inside the block")
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld256(b: &[u8; 32]) -> __m256i {
    // SAFETY: reads exactly the 32 bytes `b` borrows; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld128(b: &[u8; 16]) -> __m128i {
    // SAFETY: reads exactly the 16 bytes `b` borrows; `loadu` needs no alignment.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// 8 little-endian f32 from 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_ps(b: &[u8; 32]) -> __m256 {
    _mm256_castsi256_ps(ld256(b))
}

/// An f16 (little-endian bytes) to f32 with F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn h2f(b: &[u8; 2]) -> f32 {
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
fn h2f2(b: &[u8; 4]) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(u32::from_le_bytes(*b) as i32))
}

/// Four consecutive f16 (8 bytes) to f32 lanes 0..4, converted straight from memory
/// (`vcvtph2ps xmm, m64`). Where only lane 0 is used LLVM turns [`h2f2`] into a `vpinsrw`
/// into whatever register is free, typically an accumulator, which chains independent
/// accumulators together (it halved the two-chain kernels' speed); a full-width load
/// has no such input.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn h2f4(b: &[u8; 8]) -> __m128 {
    // SAFETY: reads exactly the 8 bytes `b` borrows; `loadl` needs no alignment.
    _mm_cvtph_ps(unsafe { _mm_loadl_epi64(b.as_ptr().cast()) })
}

#[inline]
fn f32_le(b: &[u8; 4]) -> f32 {
    f32::from_le_bytes(*b)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Lane 1 of a vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lane1(v: __m128) -> f32 {
    _mm_cvtss_f32(_mm_movehdup_ps(v))
}

/// Pairwise sums of i16 to i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn sum_pairs(p: __m256i) -> __m256i {
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// Per 4 consecutive bytes, sum of `w * y` as i32 (8 lanes), for signed `w` and `y`
/// with `y != -128` (see the module notes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8(w: __m256i, y: __m256i) -> __m256i {
    sum_pairs(dot_i8_pairs(w, y))
}

/// i16 sums of adjacent products `w * y` (signed x signed, `y != -128`); at most
/// 2 * 128 * 127 in magnitude, so never saturated.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8_pairs(w: __m256i, y: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(y, w))
}

/// 32 nibbles of 16 bytes: low nibbles to bytes 0..16, high nibbles to bytes 16..32
/// (the legacy-block element order).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nibbles(qs: &[u8; 16]) -> __m256i {
    let v = ld128(qs);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(v), v);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// Byte j = 0xff when bit j of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bit_mask(bits: u32) -> __m256i {
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
fn iq4_table() -> __m256i {
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
fn scale_pair(s: __m128i, i: usize) -> __m256i {
    let base = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    let idx = _mm_add_epi8(base, _mm_set1_epi8(i as i8));
    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, idx))
}

// ---------------------------------------------------------------------------------------
// Legacy 32-element blocks (Q8_0 / Q8_1 activations).

const Q80: usize = BlockQ8_0::SIZE;
const Q81: usize = BlockQ8_1::SIZE;

#[inline]
fn pairs<'a, const A: usize, const B: usize>(
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
fn prefetch_ahead(block: &[u8]) {
    let p = block.as_ptr().cast::<i8>().wrapping_add(PREFETCH);
    for off in (0..block.len()).step_by(64) {
        // A prefetch never faults, whatever the address (past the end of the map too).
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off));
    }
}

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
unsafe fn q8_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q80, Q80, false>(w, x, |a, b| {
        (h2f4(at(a, 0)), dot_i8(ld256(at(a, 2)), ld256(at(b, 2))))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ4_0::SIZE }, Q80, false>(w, x, |a, b| {
        let q = _mm256_sub_epi8(nibbles(at(a, 2)), _mm256_set1_epi8(8));
        (h2f4(at(a, 0)), dot_i8(q, ld256(at(b, 2))))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ4_1::SIZE }, Q81, true>(w, x, |a, b| {
        // Unsigned 0..16 weights: maddubs directly.
        let p = _mm256_maddubs_epi16(nibbles(at(a, 4)), ld256(at(b, 4)));
        (h2f4(at(a, 0)), sum_pairs(p))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0(w: &[u8], x: &[u8]) -> f32 {
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
unsafe fn q5_1(w: &[u8], x: &[u8]) -> f32 {
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
unsafe fn iq4_nl(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table();
    legacy_dot::<{ BlockIq4Nl::SIZE }, Q80, false>(w, x, |a, b| {
        let q = _mm256_shuffle_epi8(table, nibbles(at(a, 2)));
        (h2f4(at(a, 0)), dot_i8(q, ld256(at(b, 2))))
    })
}

// ---------------------------------------------------------------------------------------
// K-quants (Q8_K activations: d f32 at 0, qs at 4, bsums (16 x i16) at 260).

const Q8K: usize = BlockQ8K::SIZE;
const YQ: usize = 4;
const YBSUMS: usize = 260;

/// Q8_K's 16 group sums as i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bsums(b: &[u8; Q8K]) -> __m256i {
    ld256(at(b, YBSUMS))
}

/// The 8 scales and 8 mins (6-bit, as bytes of a u64 each) of Q4_K/Q5_K's 12 bytes;
/// see `blocks::scale_min_k4` for the packing.
#[inline(always)]
fn k4_scales(s: &[u8; 12]) -> (u64, u64) {
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
fn bcast_scale(scales: u64, j: usize) -> __m256i {
    _mm256_set1_epi16(((scales >> (8 * j)) & 0xff) as i16)
}

/// Q5_K group `g`'s 64 quants (0..32) as two vectors (activation quants 64g..64g+32 and
/// 64g+32..64g+64): bits 2g and 2g+1 of each `qh` byte are the fifth bits (the 16-bit
/// shift only carries bits across bytes into positions 6..8, which are never read).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q5k_group(a: &[u8; BlockQ5K::SIZE], g: usize) -> [__m256i; 2] {
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
fn q4k_group(a: &[u8; BlockQ4K::SIZE], g: usize) -> [__m256i; 2] {
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
fn q6k_half(a: &[u8; BlockQ6K::SIZE], h: usize) -> [__m256i; 4] {
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
unsafe fn q4_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<{ BlockQ4K::SIZE }>(w, x, |a, g| q4k_group(a, g))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_k(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<{ BlockQ5K::SIZE }>(w, x, |a, g| q5k_group(a, g))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k(w: &[u8], x: &[u8]) -> f32 {
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
unsafe fn q3_k(w: &[u8], x: &[u8]) -> f32 {
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
unsafe fn q2_k(w: &[u8], x: &[u8]) -> f32 {
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
unsafe fn iq4_xs(w: &[u8], x: &[u8]) -> f32 {
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

// ---------------------------------------------------------------------------------------
// Float weights (f32 activations).

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f32_dot(w: &[u8], x: &[u8]) -> f32 {
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
unsafe fn f16_dot(w: &[u8], x: &[u8]) -> f32 {
    half_dot::<false>(w, x)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16_dot(w: &[u8], x: &[u8]) -> f32 {
    half_dot::<true>(w, x)
}

// ---------------------------------------------------------------------------------------
// Activation quantizers, bit-identical to the scalar references in `quant::quantize`:
// the same f32 operations element by element (`amax / 127`, `1 / d`, `x * id`,
// `-127 / max`, `iscale * x`), `roundf` rebuilt exactly from truncation (the fraction
// `x - trunc(x)` is exact below 2^23), `nearest_int` = `cvtps_epi32` in the default
// round-to-nearest-even mode, and maxima order-independent because the inputs are finite.
// A block with a NaN or infinity, or whose scale overflows (a subnormal maximum), goes to the scalar
// quantizer (the reference's results there depend on its exact sequential semantics).

/// 8 f32 from an array.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld8(x: &[f32; 8]) -> __m256 {
    // SAFETY: reads exactly the 8 floats `x` borrows; `loadu` needs no alignment.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn st256(dst: &mut [u8; 32], v: __m256i) {
    // SAFETY: writes exactly the 32 bytes `dst` borrows mutably; no alignment needed.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

/// `x[8k..8k + 8]` as vectors, and whether all are finite.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_finite<const N: usize, const V: usize>(x: &[f32; N]) -> ([__m256; V], __m256, bool) {
    let sign = _mm256_set1_ps(-0.0);
    let inf = _mm256_set1_ps(f32::INFINITY);
    let chunks = x.as_chunks::<8>().0;
    let v: [__m256; V] = std::array::from_fn(|k| ld8(&chunks[k]));
    let mut amax = _mm256_setzero_ps();
    let mut finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for vk in &v {
        let a = _mm256_andnot_ps(sign, *vk);
        amax = _mm256_max_ps(amax, a);
        finite = _mm256_and_ps(finite, _mm256_cmp_ps::<_CMP_LT_OQ>(a, inf));
    }
    (v, amax, _mm256_movemask_ps(finite) == 0xff)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hmax_ps(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// C `roundf` (half away from zero) of finite values below 2^23, as i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_away(x: __m256) -> __m256i {
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(x);
    let frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, t));
    let away = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
    let one = _mm256_or_ps(_mm256_and_ps(x, _mm256_set1_ps(-0.0)), _mm256_set1_ps(1.0));
    _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(away, one)))
}

/// 32 i32 in -128..=127 (4 vectors, in order) to 32 bytes in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pack_i8(q: [__m256i; 4]) -> __m256i {
    let a = _mm256_packs_epi32(q[0], q[1]);
    let b = _mm256_packs_epi32(q[2], q[3]);
    let p = _mm256_packs_epi16(a, b);
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Q8_0 (`B = 34`) or Q8_1 (`B = 36`) rows; lengths already checked by the caller.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8_legacy<const B: usize>(src: &[f32], dst: &mut [u8]) {
    let f16 = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
    for (x, y) in src
        .as_chunks::<32>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<B>().0)
    {
        let (v, amax, finite) = load_finite::<32, 4>(x);
        let d = hmax_ps(amax) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // A subnormal maximum makes `1 / d` overflow: infinite scaled values, which the
        // reference converts with Rust's saturating `as` (scalar fallback, like NaNs).
        if !finite || !id.is_finite() {
            let r = if B == Q81 {
                crate::quant::quantize_row_q8_1(x, y)
            } else {
                crate::quant::quantize_row_q8_0(x, y)
            };
            debug_assert!(r.is_ok());
            continue;
        }
        let id = _mm256_set1_ps(id);
        let q = v.map(|vk| round_away(_mm256_mul_ps(vk, id)));
        y[..2].copy_from_slice(&f16(d));
        if B == Q81 {
            let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
            y[2..4].copy_from_slice(&f16(_mm_cvtsi128_si32(s) as f32 * d));
        }
        let qs: &mut [u8; 32] = (&mut y[B - 32..])
            .try_into()
            .expect("the last 32 bytes of a block");
        st256(qs, pack_i8(q));
    }
}

/// Q8_K rows; lengths already checked by the caller.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src
        .as_chunks::<256>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<Q8K>().0)
    {
        let (v, amax, finite) = load_finite::<256, 32>(x);
        let amax_s = hmax_ps(amax);
        // The signed element of largest magnitude, first on ties (as the reference).
        let max = if finite && amax_s != 0.0 {
            let target = _mm256_set1_ps(amax_s);
            let sign = _mm256_set1_ps(-0.0);
            let mut idx = 0;
            for (k, vk) in v.iter().enumerate() {
                let a = _mm256_andnot_ps(sign, *vk);
                let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, target));
                if m != 0 {
                    idx = 8 * k + m.trailing_zeros() as usize;
                    break;
                }
            }
            x[idx]
        } else {
            0.0
        };
        let iscale = -127.0f32 / max;
        if !finite || amax_s == 0.0 || !iscale.is_finite() {
            let r = crate::quant::quantize_row_q8_k(x, y);
            debug_assert!(r.is_ok());
            continue;
        }
        let is = _mm256_set1_ps(iscale);
        let lim = _mm256_set1_epi32(127);
        y[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for c in 0..8 {
            let q: [__m256i; 4] = std::array::from_fn(|k| {
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[4 * c + k], is)), lim)
            });
            for g in 0..2 {
                let s = _mm256_add_epi32(q[2 * g], q[2 * g + 1]);
                let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
                let at = YBSUMS + 2 * (2 * c + g);
                y[at..at + 2].copy_from_slice(&(_mm_cvtsi128_si32(s) as i16).to_le_bytes());
            }
            let qs: &mut [u8; 32] = (&mut y[YQ + 32 * c..YQ + 32 * c + 32])
                .try_into()
                .expect("32 quants inside the block");
            st256(qs, pack_i8(q));
        }
    }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_quant(src: &[f32], dst: &mut [u8]) {
    quantize_q8_legacy::<Q80>(src, dst)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_1_quant(src: &[f32], dst: &mut [u8]) {
    quantize_q8_legacy::<Q81>(src, dst)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_k_quant(src: &[f32], dst: &mut [u8]) {
    quantize_q8k(src, dst)
}

// ---------------------------------------------------------------------------------------
// Safe entry points.

macro_rules! safe_dot {
    ($($name:ident => $imp:ident),* $(,)?) => {$(
        fn $name(w: &[u8], x: &[u8]) -> f32 {
            // These fns are reachable only through `dot_fn`, which `simd::dot_fn_for`
            // calls after detecting the features.
            // SAFETY: the CPU has AVX2, FMA and F16C (checked before handing this fn out).
            unsafe { $imp(w, x) }
        }
    )*};
}

safe_dot! {
    dot_f32 => f32_dot,
    dot_f16 => f16_dot,
    dot_bf16 => bf16_dot,
    dot_q4_0 => q4_0,
    dot_q4_1 => q4_1,
    dot_q5_0 => q5_0,
    dot_q5_1 => q5_1,
    dot_q8_0 => q8_0,
    dot_iq4_nl => iq4_nl,
    dot_q2_k => q2_k,
    dot_q3_k => q3_k,
    dot_q4_k => q4_k,
    dot_q5_k => q5_k,
    dot_q6_k => q6_k,
    dot_iq4_xs => iq4_xs,
}

/// The AVX2 kernel for a weight type. Only `simd::dot_fn_for` may call this, after
/// checking that the CPU has AVX2, FMA and F16C.
pub(super) fn dot_fn(ty: GgmlType) -> Option<DotFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => dot_f32,
        F16 => dot_f16,
        Bf16 => dot_bf16,
        Q4_0 => dot_q4_0,
        Q4_1 => dot_q4_1,
        Q5_0 => dot_q5_0,
        Q5_1 => dot_q5_1,
        Q8_0 => dot_q8_0,
        Iq4Nl => dot_iq4_nl,
        Q2K => dot_q2_k,
        Q3K => dot_q3_k,
        Q4K => dot_q4_k,
        Q5K => dot_q5_k,
        Q6K => dot_q6_k,
        Iq4Xs => dot_iq4_xs,
        _ => return None,
    })
}

macro_rules! safe_quant {
    ($($name:ident => $imp:ident : $ty:ident),* $(,)?) => {$(
        fn $name(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
            check_lengths(GgmlType::$ty, src.len(), dst.len())?;
            // These fns are reachable only through `quantize_fn`, which
            // `simd::quantize_fn_for` calls after detecting the features.
            // SAFETY: the CPU has AVX2, FMA and F16C (checked before handing this fn out).
            unsafe { $imp(src, dst) };
            Ok(())
        }
    )*};
}

safe_quant! {
    quantize_q8_0 => q8_0_quant: Q8_0,
    quantize_q8_1 => q8_1_quant: Q8_1,
    quantize_q8_k => q8_k_quant: Q8K,
}

/// The AVX2 activation quantizer for an activation format (Q8_0, Q8_1, Q8_K). Only
/// `simd::quantize_fn_for` may call this, after the same checks as for [`dot_fn`].
pub(super) fn quantize_fn(act: GgmlType) -> Option<QuantizeFn> {
    Some(match act {
        GgmlType::Q8_0 => quantize_q8_0,
        GgmlType::Q8_1 => quantize_q8_1,
        GgmlType::Q8K => quantize_q8_k,
        _ => return None,
    })
}
