//! Single-row dot kernels for the legacy 32-element blocks (Q4_0, Q5_0, Q5_1, Q8_0,
//! IQ4_NL; Q4_1's is AVX2's, which streams faster with the same bits) against Q8_0 /
//! Q8_1 activations, two blocks per 512-bit vector.
//!
//! A block pair's weights are unpacked to 64 unsigned bytes `u` (the `unpack_*` fns, which
//! the tile kernels in `gemm` share) with a per-format offset `OFF`: the weight is
//! `u - OFF` (Q4_0: nibble - 8; Q5_0: 5-bit value - 16; signed formats: the byte with its
//! sign bit flipped, `OFF = 128`). `vpdpbusd` then gives, per 4 bytes, `Σ u * y`, and
//! `Σ (u - OFF) * y = Σ u * y - OFF * Σ y` exactly (another `vpdpbusd` with `OFF` bytes):
//! unlike AVX2's `abs`/`sign` trick this holds for every activation byte, -128 included.
//!
//! Lanes and float order equal the AVX2 kernels' exactly: i32 lane k of a block is the
//! sum over its bytes 4k..4k+4 (block 0 of a pair in lanes 0..8, block 1 in 8..16, i.e.
//! AVX2's even and odd accumulators side by side), each block adds `(dw * dx) * lane`
//! with one fused multiply-add, and the end sum is `hsum(even + odd)` (+ the mins, summed
//! per parity as AVX2 does). So these kernels return AVX2's bits, and switching between
//! the two sets never changes a token.

use std::arch::x86_64::*;

use super::helpers::*;
use crate::quant::blocks::KVALUES_IQ4NL;

/// The legacy dot product: `unpack(a0, a1)` gives a weight block pair's 64 unsigned bytes
/// (offset `OFF`); `B` is the activation block size (Q8_0: 34, Q8_1: 36, quants last).
/// With Q8_1 activations (`MINS`) each block's `m * s` is summed separately, even and
/// odd blocks apart. An odd last block is paired with zero blocks, which add exactly 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn legacy_dot<const A: usize, const B: usize, const OFF: u8, const MINS: bool>(
    w: &[u8],
    x: &[u8],
    unpack: impl Fn(&[u8; A], &[u8; A]) -> __m512i,
) -> f32 {
    let ws = w.as_chunks::<A>().0;
    let xs = x.as_chunks::<B>().0;
    let n = ws.len().min(xs.len());
    let (ws, xs) = (&ws[..n], &xs[..n]);
    let mut acc = _mm512_setzero_ps();
    let mut mins = _mm256_setzero_ps();
    let step =
        |acc: __m512, mins: __m256, a0: &[u8; A], a1: &[u8; A], b0: &[u8; B], b1: &[u8; B]| {
            let s = offset_dot::<OFF>(unpack(a0, a1), act_pair::<B>(b0, b1));
            // [dw0 dx0, mw0 sx0, _, _, dw1 dx1, mw1 sx1, _, _]
            let dm = _mm256_mul_ps(h2f4x2(at(a0, 0), at(a1, 0)), h2f4x2(at(b0, 0), at(b1, 0)));
            let mins = if MINS { _mm256_add_ps(mins, dm) } else { mins };
            (
                _mm512_fmadd_ps(spread04(dm), _mm512_cvtepi32_ps(s), acc),
                mins,
            )
        };
    let (wp, wr) = ws.as_chunks::<2>();
    let (xp, xr) = xs.as_chunks::<2>();
    for (a, b) in wp.iter().zip(xp) {
        // One line per pair of blocks (at most 68 bytes) is enough.
        prefetch_ahead(&a[0]);
        (acc, mins) = step(acc, mins, &a[0], &a[1], &b[0], &b[1]);
    }
    if let (Some(a), Some(b)) = (wr.first(), xr.first()) {
        (acc, mins) = step(acc, mins, a, &[0; A], b, &[0; B]);
    }
    let sum = hsum512(acc);
    if MINS {
        let (even, odd) = (
            _mm256_castps256_ps128(mins),
            _mm256_extractf128_ps::<1>(mins),
        );
        sum + (lane1(even) + lane1(odd))
    } else {
        sum
    }
}

/// Two activation blocks' quants (the last 32 bytes of each).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn act_pair<const B: usize>(b0: &[u8; B], b1: &[u8; B]) -> __m512i {
    join(ld256(at(b0, B - 32)), ld256(at(b1, B - 32)))
}

/// Sets bit 4 (clear in the nibbles: an add) of byte j where bit j of the 64-bit `qh0 | qh1 << 32` is set (Q5's fifth
/// bits; element j of a block is byte j of its half).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q5_high(u: __m512i, qh0: &[u8; 4], qh1: &[u8; 4]) -> __m512i {
    let k = u32::from_le_bytes(*qh0) as u64 | (u32::from_le_bytes(*qh1) as u64) << 32;
    _mm512_mask_add_epi8(u, k, u, _mm512_set1_epi8(0x10))
}

/// Signed bytes to the unsigned operand (`OFF = 128`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn flip(v: __m512i) -> __m512i {
    _mm512_xor_si512(v, _mm512_set1_epi8(-128))
}

pub(super) const Q80: usize = 34;
pub(super) const Q81: usize = 36;
pub(super) const Q40: usize = 18;
pub(super) const Q41: usize = 20;
pub(super) const Q50: usize = 22;
pub(super) const Q51: usize = 24;

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn unpack_q8_0(a0: &[u8; Q80], a1: &[u8; Q80]) -> __m512i {
    flip(join(ld256(at(a0, 2)), ld256(at(a1, 2))))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn unpack_q4_0(a0: &[u8; Q40], a1: &[u8; Q40]) -> __m512i {
    nibbles2(at(a0, 2), at(a1, 2))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn unpack_q4_1(a0: &[u8; Q41], a1: &[u8; Q41]) -> __m512i {
    nibbles2(at(a0, 4), at(a1, 4))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn unpack_q5_0(a0: &[u8; Q50], a1: &[u8; Q50]) -> __m512i {
    q5_high(nibbles2(at(a0, 6), at(a1, 6)), at(a0, 2), at(a1, 2))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn unpack_q5_1(a0: &[u8; Q51], a1: &[u8; Q51]) -> __m512i {
    q5_high(nibbles2(at(a0, 8), at(a1, 8)), at(a0, 4), at(a1, 4))
}

/// `KVALUES_IQ4NL` in every 128-bit quarter, for `vpshufb` lookups.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn iq4_table512() -> __m512i {
    const KV: [u8; 16] = {
        let mut o = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            o[i] = KVALUES_IQ4NL[i] as u8;
            i += 1;
        }
        o
    };
    _mm512_broadcast_i32x4(ld128(&KV))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn unpack_iq4_nl(table: __m512i, a0: &[u8; Q40], a1: &[u8; Q40]) -> __m512i {
    flip(_mm512_shuffle_epi8(table, nibbles2(at(a0, 2), at(a1, 2))))
}

/// # Safety
/// The CPU must support AVX2, FMA, F16C, AVX-512 F/BW/VL and AVX512-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q8_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q80, Q80, 128, false>(w, x, |a0, a1| unpack_q8_0(a0, a1))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q4_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q40, Q80, 8, false>(w, x, |a0, a1| unpack_q4_0(a0, a1))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q5_0(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q50, Q80, 16, false>(w, x, |a0, a1| unpack_q5_0(a0, a1))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn q5_1(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q51, Q81, 0, true>(w, x, |a0, a1| unpack_q5_1(a0, a1))
}

/// # Safety
/// As for [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn iq4_nl(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table512();
    legacy_dot::<Q40, Q80, 128, false>(w, x, |a0, a1| unpack_iq4_nl(table, a0, a1))
}
