//! NEON dot kernels (aarch64), one per weight type, in two variants: with the Armv8.2
//! dot-product instruction `sdot` (`DOT = true`, CPUs with the `dotprod` feature) and
//! with plain Armv8.0 NEON (`DOT = false`, every aarch64 CPU). See `quant::dot` for the
//! formats and the scalar originals, and `super` for how they are handed out.
//!
//! Techniques:
//! - i8 x i8 products, signed x signed, both variants exact for every byte value
//!   (-128 included, unlike AVX2's `maddubs` trick): [`dot16`]/[`dot32`] sum the products
//!   of 16 or 32 byte pairs into four i32 lanes, lane i holding bytes 4i..4i+4 (of each
//!   16-byte vector): one `sdot` per 16 bytes, or `smull`/`smull2` (i16 products, at most
//!   2^14), pairwise widening adds (`saddlp`/`sadalp`) into i32, and one `addp` that
//!   puts the lanes in `sdot`'s order (adding i16 products before widening could overflow
//!   at 2 * 2^14). Both variants therefore hand the float code the same lane values, so
//!   `neon` and `neon-nodot` give bit-identical results (tested).
//! - Weights are decoded to signed bytes with their offsets applied (Q4_0's -8, Q6_K's
//!   -32, ...), so no correction through Q8_K's `bsums` is needed except for the mins of
//!   Q2_K/Q4_K/Q5_K, as in the scalar code.
//! - Sub-block scales multiply the i32 lanes of a sub-block's products (`mla` by a
//!   scalar), so a super-block's integer sum is exact in i32 (as in the scalar code; the
//!   largest, Q6_K's, is at most 256 * 32 * 128 * 128 = 2^27 in magnitude) and reduced
//!   across lanes once per super-block. The K-quants then apply the float scales with exactly the scalar
//!   kernel's f32 expression, so for them NEON and scalar agree bit for bit; the 32-element
//!   formats accumulate `d * Σ` in f32 vectors (two chains), which differs from the
//!   scalar sum only in rounding order.
//! - f16 values are converted with `fcvtl` (Armv8.0 base; written as `asm!` because the
//!   `float16x4_t` intrinsics are unstable): block scales two at a time from 4 bytes,
//!   F16 weights four at a time.
//! - `sdot` is written as `asm!` as well: `vdotq_s32` is unstable on stable Rust. Its
//!   helper is a `#[target_feature(enable = "dotprod")]` fn, so the assembler accepts it
//!   and LLVM inlines it into the dotprod entry points (whose bodies are the same generic
//!   kernels instantiated with `DOT = true`).
//! - All loads go through [`ld`], which reads exactly one borrowed 16-byte array, so
//!   bounds are those of the safe slices: blocks are zipped from `as_chunks` as in the
//!   scalar code, and short inputs only shorten the sum.
//!
//! Contents: single-row dot kernels for every weight type hearth computes with and
//! byte-exact Q8_0/Q8_1/Q8_K activation quantizers (in `quantize`). Not here (yet): tile
//! (gemm) kernels (the matmul then runs the single-row kernels per token), and software
//! prefetch like AVX2's (`_prefetch` is unstable; worth measuring on real hardware).
//!
//! Every fn here is `#[target_feature(enable = "neon")]`, which the aarch64 Linux target
//! enables anyway, but Rust only lets a caller with the attribute call the intrinsics
//! safely. The safe wrappers at the bottom are handed out by [`dot_fn`] only, which
//! `super::dot_fn_for` calls after detecting the features (NEON, and `dotprod` for the
//! `sdot` variants).

use std::arch::aarch64::*;
use std::arch::asm;

use crate::quant::blocks::{
    q3k_scales, BlockIq4Nl, BlockIq4Xs, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1,
    BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, KVALUES_IQ4NL,
};
use crate::quant::dot::DotFn;
use crate::quant::GgmlType;

mod quantize;
pub(super) use quantize::quantize_fn;

// ---------------------------------------------------------------------------------------
// Helpers.

/// `N` bytes of `s` at `off`, as an array reference (panics if out of range; every call
/// site uses offsets inside a fixed-size block, so the check folds away).
#[inline(always)]
fn at<const N: usize>(s: &[u8], off: usize) -> &[u8; N] {
    s[off..off + N]
        .first_chunk::<N>()
        .expect("offset inside the block")
}

#[inline]
#[target_feature(enable = "neon")]
fn ld(b: &[u8; 16]) -> uint8x16_t {
    // SAFETY: reads exactly the 16 bytes `b` borrows; `ld1` needs no alignment.
    unsafe { vld1q_u8(b.as_ptr()) }
}

/// 16 bytes as signed lanes.
#[inline]
#[target_feature(enable = "neon")]
fn lds(b: &[u8; 16]) -> int8x16_t {
    vreinterpretq_s8_u8(ld(b))
}

/// 4 little-endian f32 from 16 bytes (the module is compiled for little-endian only).
#[inline]
#[target_feature(enable = "neon")]
fn ld_f32(b: &[u8; 16]) -> float32x4_t {
    vreinterpretq_f32_u8(ld(b))
}

/// 8 little-endian i16 from 16 bytes.
#[inline]
#[target_feature(enable = "neon")]
fn ld_i16(b: &[u8; 16]) -> int16x8_t {
    vreinterpretq_s16_u8(ld(b))
}

/// Four f16 (as u16 lanes) to f32 with `fcvtl`.
#[inline]
#[target_feature(enable = "neon")]
fn cvt_f16x4(h: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // `fcvtl` is an Armv8.0 FP/SIMD instruction (no extension needed); it only reads and
    // writes the two vector registers named here.
    // SAFETY: an instruction every aarch64 CPU has, touching only its operands (above).
    unsafe {
        asm!(
            "fcvtl {o:v}.4s, {i:v}.4h",
            i = in(vreg) h,
            o = lateout(vreg) out,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Two consecutive f16 (4 little-endian bytes) to f32 lanes 0 and 1 (lanes 2, 3 zero).
#[inline]
#[target_feature(enable = "neon")]
fn h2f2(b: &[u8; 4]) -> float32x4_t {
    cvt_f16x4(vcreate_u16(u32::from_le_bytes(*b) as u64))
}

#[inline]
fn f32_le(b: &[u8; 4]) -> f32 {
    f32::from_le_bytes(*b)
}

/// `acc + a · b` per 4 lanes with `sdot` (lane i: bytes 4i..4i+4).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut r = acc;
    // `sdot` exists on this CPU (this fn's `dotprod` feature, which its callers
    // guarantee); it only reads and writes the three vector registers named here.
    // SAFETY: the instruction exists here and touches only its operands (above).
    unsafe {
        asm!(
            "sdot {r:v}.4s, {a:v}.16b, {b:v}.16b",
            r = inout(vreg) r,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    r
}

/// `sdot` into `acc`, only where the CPU has it.
#[inline]
#[target_feature(enable = "neon")]
fn sdot_checked<const DOT: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    debug_assert!(DOT);
    // `DOT = true` instantiations (the only callers) are only reached from the `dotprod`
    // entry points (`quant_kernels!` below), which `dot_fn` hands out only on a CPU with
    // `dotprod`.
    // SAFETY: the CPU has `dotprod` (above).
    unsafe { sdot(acc, a, b) }
}

/// The 16 products `a[i] * b[i]` (signed x signed, exact), lane i summing bytes
/// 4i..4i+4, in both variants (see the module notes).
#[inline]
#[target_feature(enable = "neon")]
fn dot16<const DOT: bool>(a: int8x16_t, b: int8x16_t) -> int32x4_t {
    if DOT {
        sdot_checked::<DOT>(vdupq_n_s32(0), a, b)
    } else {
        let lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)));
        let hi = vpaddlq_s16(vmull_high_s8(a, b));
        vpaddq_s32(lo, hi)
    }
}

/// The products of two pairs of vectors, lane i summing bytes 4i..4i+4 of both pairs.
#[inline]
#[target_feature(enable = "neon")]
fn dot32<const DOT: bool>(w: [int8x16_t; 2], y: [int8x16_t; 2]) -> int32x4_t {
    if DOT {
        let s = sdot_checked::<DOT>(vdupq_n_s32(0), w[0], y[0]);
        sdot_checked::<DOT>(s, w[1], y[1])
    } else {
        let lo = vpaddlq_s16(vmull_s8(vget_low_s8(w[0]), vget_low_s8(y[0])));
        let hi = vpaddlq_s16(vmull_high_s8(w[0], y[0]));
        let lo = vpadalq_s16(lo, vmull_s8(vget_low_s8(w[1]), vget_low_s8(y[1])));
        let hi = vpadalq_s16(hi, vmull_high_s8(w[1], y[1]));
        vpaddq_s32(lo, hi)
    }
}

/// 32 nibbles of 16 bytes: low nibbles (elements 0..16), high nibbles (16..32), the
/// legacy-block element order.
#[inline]
#[target_feature(enable = "neon")]
fn nibbles(qs: &[u8; 16]) -> [uint8x16_t; 2] {
    let v = ld(qs);
    [vandq_u8(v, vdupq_n_u8(0x0f)), vshrq_n_u8::<4>(v)]
}

/// Byte j = 0xff when bit j of `bits` is set, else 0, for j in 0..16 and 16..32.
#[inline]
#[target_feature(enable = "neon")]
fn bit_masks(bits: u32) -> [uint8x16_t; 2] {
    const LO: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const HI: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
    const SEL: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let v = vreinterpretq_u8_u32(vdupq_n_u32(bits));
    let sel = ld(&SEL);
    [
        vtstq_u8(vqtbl1q_u8(v, ld(&LO)), sel),
        vtstq_u8(vqtbl1q_u8(v, ld(&HI)), sel),
    ]
}

/// `KVALUES_IQ4NL` as a 16-byte lookup table.
#[inline]
#[target_feature(enable = "neon")]
fn iq4_table() -> int8x16_t {
    const KV: [u8; 16] = {
        let mut o = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            o[i] = KVALUES_IQ4NL[i] as u8;
            i += 1;
        }
        o
    };
    lds(&KV)
}

#[inline]
#[target_feature(enable = "neon")]
fn s8(v: uint8x16_t) -> int8x16_t {
    vreinterpretq_s8_u8(v)
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

/// An activation block's 32 quants at byte `off` (2 for Q8_0, 4 for Q8_1).
#[inline]
#[target_feature(enable = "neon")]
fn act32<const B: usize>(b: &[u8; B], off: usize) -> [int8x16_t; 2] {
    [lds(at(b, off)), lds(at(b, off + 16))]
}

/// The legacy-format dot product: `block(w, x)` gives a block pair's Σ q * y as i32
/// lanes; the weight block starts with its f16 `d` (and `m`, with Q8_1 activations,
/// `MINS`), the activation block with `d` (and `s`). `[dw, mw] * [dx, sx]` gives the
/// block's scale (lane 0) and `m * s` (lane 1). Blocks alternate between two f32
/// accumulators (two FMA dependency chains), combined at the end.
#[inline]
#[target_feature(enable = "neon")]
fn legacy_dot<const A: usize, const B: usize, const MINS: bool>(
    w: &[u8],
    x: &[u8],
    block: impl Fn(&[u8; A], &[u8; B]) -> int32x4_t,
) -> f32 {
    let zero = vdupq_n_f32(0.0);
    let (mut acc0, mut acc1) = (zero, zero);
    let (mut min0, mut min1) = (zero, zero);
    let step = |acc: float32x4_t, mins: float32x4_t, a: &[u8; A], b: &[u8; B]| {
        let s = block(a, b);
        let dm = vmulq_f32(h2f2(at(a, 0)), h2f2(at(b, 0)));
        let mins = if MINS { vaddq_f32(mins, dm) } else { mins };
        (vfmaq_laneq_f32::<0>(acc, vcvtq_f32_s32(s), dm), mins)
    };
    let ws = w.as_chunks::<A>().0;
    let xs = x.as_chunks::<B>().0;
    let n = ws.len().min(xs.len());
    let (wp, wr) = ws[..n].as_chunks::<2>();
    let (xp, xr) = xs[..n].as_chunks::<2>();
    for (a, b) in wp.iter().zip(xp) {
        (acc0, min0) = step(acc0, min0, &a[0], &b[0]);
        (acc1, min1) = step(acc1, min1, &a[1], &b[1]);
    }
    if let (Some(a), Some(b)) = (wr.first(), xr.first()) {
        (acc0, min0) = step(acc0, min0, a, b);
    }
    let sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if MINS {
        sum + vgetq_lane_f32::<1>(vaddq_f32(min0, min1))
    } else {
        sum
    }
}

#[inline]
#[target_feature(enable = "neon")]
fn q8_0<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<Q80, Q80, false>(w, x, |a, b| dot32::<DOT>(act32(a, 2), act32(b, 2)))
}

#[inline]
#[target_feature(enable = "neon")]
fn q4_0<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ4_0::SIZE }, Q80, false>(w, x, |a, b| {
        let eight = vdupq_n_s8(8);
        let q = nibbles(at(a, 2)).map(|v| vsubq_s8(s8(v), eight));
        dot32::<DOT>(q, act32(b, 2))
    })
}

#[inline]
#[target_feature(enable = "neon")]
fn q4_1<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ4_1::SIZE }, Q81, true>(w, x, |a, b| {
        dot32::<DOT>(nibbles(at(a, 4)).map(|v| s8(v)), act32(b, 4))
    })
}

#[inline]
#[target_feature(enable = "neon")]
fn q5_0<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ5_0::SIZE }, Q80, false>(w, x, |a, b| {
        let hi = bit_masks(u32::from_le_bytes(*at(a, 2)));
        let [l, h] = nibbles(at(a, 6));
        // q - 16 = nibble - (16 where bit 4 is clear).
        let b4 = vdupq_n_u8(0x10);
        let q = [
            vsubq_s8(s8(l), s8(vbicq_u8(b4, hi[0]))),
            vsubq_s8(s8(h), s8(vbicq_u8(b4, hi[1]))),
        ];
        dot32::<DOT>(q, act32(b, 2))
    })
}

#[inline]
#[target_feature(enable = "neon")]
fn q5_1<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    legacy_dot::<{ BlockQ5_1::SIZE }, Q81, true>(w, x, |a, b| {
        let hi = bit_masks(u32::from_le_bytes(*at(a, 4)));
        let [l, h] = nibbles(at(a, 8));
        let b4 = vdupq_n_u8(0x10);
        let q = [
            s8(vorrq_u8(l, vandq_u8(hi[0], b4))),
            s8(vorrq_u8(h, vandq_u8(hi[1], b4))),
        ];
        dot32::<DOT>(q, act32(b, 4))
    })
}

#[inline]
#[target_feature(enable = "neon")]
fn iq4_nl<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table();
    legacy_dot::<{ BlockIq4Nl::SIZE }, Q80, false>(w, x, |a, b| {
        let q = nibbles(at(a, 2)).map(|v| vqtbl1q_s8(table, v));
        dot32::<DOT>(q, act32(b, 2))
    })
}

// ---------------------------------------------------------------------------------------
// K-quants (Q8_K activations: d f32 at 0, qs at 4, bsums (16 x i16) at 260).

const Q8K: usize = BlockQ8K::SIZE;
const YQ: usize = 4;
const YBSUMS: usize = 260;

/// 16 activation quants starting at element `e`.
#[inline]
#[target_feature(enable = "neon")]
fn y16(b: &[u8; Q8K], e: usize) -> int8x16_t {
    lds(at(b, YQ + e))
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

/// `Σ_j mins[j] * (bsums[2j] + bsums[2j+1])` (mins: 8 bytes of a u64). The pair sums
/// are sums of 32 quants, at most 32 * 128 in magnitude: exact in i16.
#[inline]
#[target_feature(enable = "neon")]
fn k4_mins(mins: u64, b: &[u8; Q8K]) -> i32 {
    let bs = vpaddq_s16(ld_i16(at(b, YBSUMS)), ld_i16(at(b, YBSUMS + 16)));
    let m = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(mins)));
    let p = vmull_s16(vget_low_s16(m), vget_low_s16(bs));
    vaddvq_s32(vmlal_high_s16(p, m, bs))
}

/// Q4_K group `g`'s 64 quants (0..16) as four vectors: activation quants
/// 64g..64g+16, +16..+32 (sub-block 2g), +32..+48, +48..+64 (sub-block 2g + 1).
#[inline]
#[target_feature(enable = "neon")]
fn q4k_group(a: &[u8; BlockQ4K::SIZE], g: usize) -> [int8x16_t; 4] {
    let m4 = vdupq_n_u8(0x0f);
    let q0 = ld(at(a, 16 + 32 * g));
    let q1 = ld(at(a, 32 + 32 * g));
    [
        s8(vandq_u8(q0, m4)),
        s8(vandq_u8(q1, m4)),
        s8(vshrq_n_u8::<4>(q0)),
        s8(vshrq_n_u8::<4>(q1)),
    ]
}

/// Q5_K group `g`'s 64 quants (0..32), ordered as in [`q4k_group`]: bits 2g and 2g + 1
/// of each `qh` byte are the fifth bits.
#[inline]
#[target_feature(enable = "neon")]
fn q5k_group(a: &[u8; BlockQ5K::SIZE], g: usize) -> [int8x16_t; 4] {
    let m4 = vdupq_n_u8(0x0f);
    let b4 = vdupq_n_u8(0x10);
    let (qh0, qh1) = (ld(at(a, 16)), ld(at(a, 32)));
    let (lo, hi) = (vdupq_n_u8(1 << (2 * g)), vdupq_n_u8(2 << (2 * g)));
    let fifth = |qh, bit| vandq_u8(vtstq_u8(qh, bit), b4);
    let q0 = ld(at(a, 48 + 32 * g));
    let q1 = ld(at(a, 64 + 32 * g));
    [
        s8(vorrq_u8(vandq_u8(q0, m4), fifth(qh0, lo))),
        s8(vorrq_u8(vandq_u8(q1, m4), fifth(qh1, lo))),
        s8(vorrq_u8(vshrq_n_u8::<4>(q0), fifth(qh0, hi))),
        s8(vorrq_u8(vshrq_n_u8::<4>(q1), fifth(qh1, hi))),
    ]
}

/// The Q4_K/Q5_K dot product (same scale and min packing): `group(a, g)` gives a
/// super-block's quants for activation quants 64g..64g+64. Floats as in the scalar
/// `k4_sum`.
#[inline]
#[target_feature(enable = "neon")]
fn k4_dot<const A: usize, const DOT: bool>(
    w: &[u8],
    x: &[u8],
    group: impl Fn(&[u8; A], usize) -> [int8x16_t; 4],
) -> f32 {
    let mut sum = 0.0f32;
    for (a, b) in pairs::<A, Q8K>(w, x) {
        let dm = h2f2(at(a, 0));
        let (scales, mins) = k4_scales(at(a, 4));
        let mut sumi = vdupq_n_s32(0);
        for g in 0..4 {
            let q = group(a, g);
            let e = 64 * g;
            let lo = dot32::<DOT>([q[0], q[1]], [y16(b, e), y16(b, e + 16)]);
            let hi = dot32::<DOT>([q[2], q[3]], [y16(b, e + 32), y16(b, e + 48)]);
            sumi = vmlaq_n_s32(sumi, lo, ((scales >> (16 * g)) & 0xff) as i32);
            sumi = vmlaq_n_s32(sumi, hi, ((scales >> (16 * g + 8)) & 0xff) as i32);
        }
        let m = k4_mins(mins, b);
        let (d, dmin) = (vgetq_lane_f32::<0>(dm), vgetq_lane_f32::<1>(dm));
        sum += f32_le(at(b, 0)) * (d * vaddvq_s32(sumi) as f32 - dmin * m as f32);
    }
    sum
}

#[inline]
#[target_feature(enable = "neon")]
fn q4_k<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<{ BlockQ4K::SIZE }, DOT>(w, x, |a, g| q4k_group(a, g))
}

#[inline]
#[target_feature(enable = "neon")]
fn q5_k<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    k4_dot::<{ BlockQ5K::SIZE }, DOT>(w, x, |a, g| q5k_group(a, g))
}

#[inline]
#[target_feature(enable = "neon")]
fn q6_k<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let m2 = vdupq_n_u8(0x30);
    let off = vdupq_n_s8(32);
    let mut sum = 0.0f32;
    for (a, b) in pairs::<{ BlockQ6K::SIZE }, Q8K>(w, x) {
        // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
        let d = vgetq_lane_f32::<1>(h2f2(at(a, 206)));
        let sc: &[u8; 16] = at(a, 192);
        let mut sumi = vdupq_n_s32(0);
        for h in 0..2 {
            for i in 0..2 {
                // Bytes l = 16i..16i + 16 of this half's ql[0..32], ql[32..64], qh.
                let ql0 = ld(at(a, 64 * h + 16 * i));
                let ql1 = ld(at(a, 64 * h + 32 + 16 * i));
                let qh = ld(at(a, 128 + 32 * h + 16 * i));
                let q = [
                    vorrq_u8(vandq_u8(ql0, m4), vandq_u8(vshlq_n_u8::<4>(qh), m2)),
                    vorrq_u8(vandq_u8(ql1, m4), vandq_u8(vshlq_n_u8::<2>(qh), m2)),
                    vorrq_u8(vshrq_n_u8::<4>(ql0), vandq_u8(qh, m2)),
                    vorrq_u8(vshrq_n_u8::<4>(ql1), vandq_u8(vshrq_n_u8::<2>(qh), m2)),
                ];
                for (k, qk) in q.into_iter().enumerate() {
                    // Elements 128h + 32k + 16i.., scale 8h + 2k + i.
                    let e = 128 * h + 32 * k + 16 * i;
                    let p = dot16::<DOT>(vsubq_s8(s8(qk), off), y16(b, e));
                    sumi = vmlaq_n_s32(sumi, p, sc[e / 16] as i8 as i32);
                }
            }
        }
        sum += d * f32_le(at(b, 0)) * vaddvq_s32(sumi) as f32;
    }
    sum
}

#[inline]
#[target_feature(enable = "neon")]
fn q3_k<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    let m2 = vdupq_n_u8(3);
    let b2 = vdupq_n_u8(4);
    let off = vdupq_n_s8(4);
    let mut sum = 0.0f32;
    for (a, b) in pairs::<{ BlockQ3K::SIZE }, Q8K>(w, x) {
        // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
        let d = vgetq_lane_f32::<1>(h2f2(at(a, 106)));
        let sc = q3k_scales(at(a, 96));
        let mut sumi = vdupq_n_s32(0);
        for i in 0..2 {
            // Bytes l = 16i..16i + 16 of hmask and of each group's 32 two-bit bytes.
            let hm = ld(at(a, 16 * i));
            for g in 0..2 {
                let mut q2 = ld(at(a, 32 + 32 * g + 16 * i));
                for j in 0..4 {
                    // q = low2 + 4 * hbit - 4; elements 128g + 32j + 16i.., scale 8g+2j+i.
                    let hb = vandq_u8(vtstq_u8(hm, vdupq_n_u8(1 << (4 * g + j))), b2);
                    let q = vsubq_s8(s8(vorrq_u8(vandq_u8(q2, m2), hb)), off);
                    q2 = vshrq_n_u8::<2>(q2);
                    let e = 128 * g + 32 * j + 16 * i;
                    let p = dot16::<DOT>(q, y16(b, e));
                    sumi = vmlaq_n_s32(sumi, p, sc[e / 16] as i32);
                }
            }
        }
        sum += d * f32_le(at(b, 0)) * vaddvq_s32(sumi) as f32;
    }
    sum
}

#[inline]
#[target_feature(enable = "neon")]
fn q2_k<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    let m2 = vdupq_n_u8(3);
    let mut sum = 0.0f32;
    for (a, b) in pairs::<{ BlockQ2K::SIZE }, Q8K>(w, x) {
        let dm = h2f2(at(a, 80));
        let sc: &[u8; 16] = at(a, 0);
        let mut sumi = vdupq_n_s32(0);
        for g in 0..2 {
            for i in 0..2 {
                let mut q2 = ld(at(a, 16 + 32 * g + 16 * i));
                for s in 0..4 {
                    // Elements 128g + 32s + 16i.., scale 8g + 2s + i (low nibble).
                    let q = s8(vandq_u8(q2, m2));
                    q2 = vshrq_n_u8::<2>(q2);
                    let e = 128 * g + 32 * s + 16 * i;
                    let p = dot16::<DOT>(q, y16(b, e));
                    sumi = vmlaq_n_s32(sumi, p, (sc[e / 16] & 0x0f) as i32);
                }
            }
        }
        // Mins (high nibbles) times the 16 group sums.
        let mn = vreinterpretq_s8_u8(vshrq_n_u8::<4>(ld(sc)));
        let (b0, b1) = (ld_i16(at(b, YBSUMS)), ld_i16(at(b, YBSUMS + 16)));
        let m0 = vmovl_s8(vget_low_s8(mn));
        let m1 = vmovl_high_s8(mn);
        let p = vmlal_high_s16(vmull_s16(vget_low_s16(m0), vget_low_s16(b0)), m0, b0);
        let p = vmlal_high_s16(vmlal_s16(p, vget_low_s16(m1), vget_low_s16(b1)), m1, b1);
        let mins = vaddvq_s32(p);
        let (d, dmin) = (vgetq_lane_f32::<0>(dm), vgetq_lane_f32::<1>(dm));
        sum += f32_le(at(b, 0)) * (d * vaddvq_s32(sumi) as f32 - dmin * mins as f32);
    }
    sum
}

#[inline]
#[target_feature(enable = "neon")]
fn iq4_xs<const DOT: bool>(w: &[u8], x: &[u8]) -> f32 {
    let table = iq4_table();
    let mut sum = 0.0f32;
    for (a, b) in pairs::<{ BlockIq4Xs::SIZE }, Q8K>(w, x) {
        let d = vgetq_lane_f32::<0>(h2f2(at(a, 0)));
        let sh = u16::from_le_bytes(*at(a, 2)) as u32;
        let sl = u32::from_le_bytes(*at(a, 4));
        let mut sumi = vdupq_n_s32(0);
        for ib in 0..8 {
            let scale = (((sl >> (4 * ib)) & 0x0f) | (((sh >> (2 * ib)) & 3) << 4)) as i32 - 32;
            let q = nibbles(at(a, 8 + 16 * ib)).map(|v| vqtbl1q_s8(table, v));
            let p = dot32::<DOT>(q, [y16(b, 32 * ib), y16(b, 32 * ib + 16)]);
            sumi = vmlaq_n_s32(sumi, p, scale);
        }
        sum += d * f32_le(at(b, 0)) * vaddvq_s32(sumi) as f32;
    }
    sum
}

// ---------------------------------------------------------------------------------------
// Float weights (f32 activations).

#[inline]
#[target_feature(enable = "neon")]
fn f32_dot(w: &[u8], x: &[u8]) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (wc, wr) = w.as_chunks::<64>();
    let (xc, xr) = x.as_chunks::<64>();
    for (a, b) in wc.iter().zip(xc) {
        for (k, s) in acc.iter_mut().enumerate() {
            *s = vfmaq_f32(*s, ld_f32(at(a, 16 * k)), ld_f32(at(b, 16 * k)));
        }
    }
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
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
#[target_feature(enable = "neon")]
fn half_dot<const BF: bool>(w: &[u8], x: &[u8]) -> f32 {
    let conv = |b: &[u8; 16]| {
        let h = vreinterpretq_u16_u8(ld(b));
        if BF {
            [
                vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(h))),
                vreinterpretq_f32_u32(vshll_high_n_u16::<16>(h)),
            ]
        } else {
            [cvt_f16x4(vget_low_u16(h)), cvt_f16x4(vget_high_u16(h))]
        }
    };
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (wc, wr) = w.as_chunks::<32>();
    let (xc, xr) = x.as_chunks::<64>();
    for (a, b) in wc.iter().zip(xc) {
        for h in 0..2 {
            let [lo, hi] = conv(at(a, 16 * h));
            acc[2 * h] = vfmaq_f32(acc[2 * h], lo, ld_f32(at(b, 32 * h)));
            acc[2 * h + 1] = vfmaq_f32(acc[2 * h + 1], hi, ld_f32(at(b, 32 * h + 16)));
        }
    }
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    if wc.len() == xc.len() {
        for (a, b) in wr.as_chunks::<2>().0.iter().zip(xr.as_chunks::<4>().0) {
            let v = if BF {
                f32::from_bits((u16::from_le_bytes(*a) as u32) << 16)
            } else {
                crate::quant::blocks::f16_le(*a)
            };
            sum += v * f32_le(b);
        }
    }
    sum
}

#[inline]
#[target_feature(enable = "neon")]
fn f16_dot(w: &[u8], x: &[u8]) -> f32 {
    half_dot::<false>(w, x)
}

#[inline]
#[target_feature(enable = "neon")]
fn bf16_dot(w: &[u8], x: &[u8]) -> f32 {
    half_dot::<true>(w, x)
}

// ---------------------------------------------------------------------------------------
// Safe entry points.

/// For each kernel `name` (generic over `DOT`), a module `name` with the safe wrappers
/// `plain` (`DOT = false`) and `dotprod` (`DOT = true`, compiled with `dotprod` enabled so
/// that [`sdot`] inlines).
macro_rules! quant_kernels {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[target_feature(enable = "neon,dotprod")]
            fn with_dotprod(w: &[u8], x: &[u8]) -> f32 {
                super::$name::<true>(w, x)
            }

            pub(super) fn dotprod(w: &[u8], x: &[u8]) -> f32 {
                // Reachable only through `dot_fn(ty, true)`, which `simd::dot_fn_for`
                // calls after detecting the features.
                // SAFETY: the CPU has NEON and dotprod (checked before handing this out).
                unsafe { with_dotprod(w, x) }
            }

            pub(super) fn plain(w: &[u8], x: &[u8]) -> f32 {
                // SAFETY: the CPU has NEON (checked before handing this fn out).
                unsafe { super::$name::<false>(w, x) }
            }
        }
    )*};
}

quant_kernels!(q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs);

/// Safe wrappers of the float kernels (no integer products: one variant).
macro_rules! float_kernels {
    ($($name:ident => $imp:ident),* $(,)?) => {$(
        fn $name(w: &[u8], x: &[u8]) -> f32 {
            // SAFETY: the CPU has NEON (checked before handing this fn out).
            unsafe { $imp(w, x) }
        }
    )*};
}

float_kernels! {
    dot_f32 => f32_dot,
    dot_f16 => f16_dot,
    dot_bf16 => bf16_dot,
}

/// The NEON kernel for a weight type, with `sdot` when `dotprod`. Only
/// `simd::dot_fn_for` may call this, after checking that the CPU has NEON (and
/// `dotprod`, when asked for).
pub(super) fn dot_fn(ty: GgmlType, dotprod: bool) -> Option<DotFn> {
    use GgmlType::*;
    macro_rules! pick {
        ($m:ident) => {
            if dotprod {
                $m::dotprod
            } else {
                $m::plain
            }
        };
    }
    Some(match ty {
        F32 => dot_f32,
        F16 => dot_f16,
        Bf16 => dot_bf16,
        Q4_0 => pick!(q4_0),
        Q4_1 => pick!(q4_1),
        Q5_0 => pick!(q5_0),
        Q5_1 => pick!(q5_1),
        Q8_0 => pick!(q8_0),
        Iq4Nl => pick!(iq4_nl),
        Q2K => pick!(q2_k),
        Q3K => pick!(q3_k),
        Q4K => pick!(q4_k),
        Q5K => pick!(q5_k),
        Q6K => pick!(q6_k),
        Iq4Xs => pick!(iq4_xs),
        _ => return None,
    })
}
