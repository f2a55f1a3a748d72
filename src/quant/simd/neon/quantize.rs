//! NEON activation quantizers, bit-identical to the scalar references in
//! `quant::quantize`: the same f32 operations element by element (`amax / 127`, `1 / d`,
//! `x * id`, `-127 / max`, `iscale * x`); C `roundf` is `fcvtas` (round half away from
//! zero) and ggml's `nearest_int` is `fcvtns` (round half to even), both exact for the
//! |values| <= 127 (plus a few ulps) seen here; the i32 -> i8 narrowing saturates like
//! Rust's `as` from float; maxima are order-independent because the inputs are finite.
//! A block with a NaN or infinity, or whose scale overflows (a subnormal maximum), goes
//! to the scalar quantizer, as in the AVX2 version.

use std::arch::aarch64::*;

use super::{Q80, Q81, Q8K, YBSUMS, YQ};
use crate::quant::dot::QuantizeFn;
use crate::quant::error::check_lengths;
use crate::quant::{GgmlType, QuantError};

/// 4 f32 from an array.
#[inline]
#[target_feature(enable = "neon")]
fn ld4(x: &[f32; 4]) -> float32x4_t {
    // SAFETY: reads exactly the 4 floats `x` borrows; `ld1` needs no alignment.
    unsafe { vld1q_f32(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn st16(dst: &mut [u8; 16], v: int8x16_t) {
    // SAFETY: writes exactly the 16 bytes `dst` borrows mutably; no alignment needed.
    unsafe { vst1q_u8(dst.as_mut_ptr(), vreinterpretq_u8_s8(v)) }
}

/// `x[4k..4k + 4]` as vectors, their largest magnitude, and whether all are finite.
#[inline]
#[target_feature(enable = "neon")]
fn load_finite<const N: usize, const V: usize>(x: &[f32; N]) -> ([float32x4_t; V], f32, bool) {
    let inf = vdupq_n_f32(f32::INFINITY);
    let chunks = x.as_chunks::<4>().0;
    let v: [float32x4_t; V] = std::array::from_fn(|k| ld4(&chunks[k]));
    let mut amax = vdupq_n_f32(0.0);
    let mut finite = vdupq_n_u32(u32::MAX);
    for vk in &v {
        let a = vabsq_f32(*vk);
        amax = vmaxq_f32(amax, a);
        finite = vandq_u32(finite, vcltq_f32(a, inf));
    }
    (v, vmaxvq_f32(amax), vminvq_u32(finite) == u32::MAX)
}

/// 16 i32 in -128..=127 (4 vectors, in order) to 16 bytes in order (saturating).
#[inline]
#[target_feature(enable = "neon")]
fn pack_i8(q: &[int32x4_t]) -> int8x16_t {
    let a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
    let b = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
    vcombine_s8(vqmovn_s16(a), vqmovn_s16(b))
}

/// Sum of the lanes of some i32 vectors.
#[inline]
#[target_feature(enable = "neon")]
fn sum_i32(q: &[int32x4_t]) -> i32 {
    let s = q.iter().fold(vdupq_n_s32(0), |s, v| vaddq_s32(s, *v));
    vaddvq_s32(s)
}

/// 16 quants of a block (the last bytes of `y` from `off`).
#[inline]
#[target_feature(enable = "neon")]
fn store(y: &mut [u8], off: usize, v: int8x16_t) {
    let qs: &mut [u8; 16] = (&mut y[off..off + 16])
        .try_into()
        .expect("16 quants inside the block");
    st16(qs, v);
}

/// Q8_0 (`B = 34`) or Q8_1 (`B = 36`) rows; lengths already checked by the caller.
#[inline]
#[target_feature(enable = "neon")]
fn quantize_q8_legacy<const B: usize>(src: &[f32], dst: &mut [u8]) {
    let f16 = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
    for (x, y) in src
        .as_chunks::<32>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<B>().0)
    {
        let (v, amax, finite) = load_finite::<32, 8>(x);
        let d = amax / 127.0;
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
        let q = v.map(|vk| vcvtaq_s32_f32(vmulq_n_f32(vk, id)));
        y[..2].copy_from_slice(&f16(d));
        if B == Q81 {
            y[2..4].copy_from_slice(&f16(sum_i32(&q) as f32 * d));
        }
        store(y, B - 32, pack_i8(&q[..4]));
        store(y, B - 16, pack_i8(&q[4..]));
    }
}

/// Q8_K rows; lengths already checked by the caller.
#[inline]
#[target_feature(enable = "neon")]
fn quantize_q8k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src
        .as_chunks::<256>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<Q8K>().0)
    {
        let (v, amax, finite) = load_finite::<256, 64>(x);
        // The signed element of largest magnitude, first on ties (as the reference).
        let max = if finite && amax != 0.0 {
            let target = vdupq_n_f32(amax);
            let mut idx = 0;
            for (k, vk) in v.iter().enumerate() {
                if vmaxvq_u32(vceqq_f32(vabsq_f32(*vk), target)) != 0 {
                    let lanes = &x[4 * k..4 * k + 4];
                    idx = 4 * k + lanes.iter().position(|l| l.abs() == amax).unwrap_or(0);
                    break;
                }
            }
            x[idx]
        } else {
            0.0
        };
        let iscale = -127.0f32 / max;
        if !finite || amax == 0.0 || !iscale.is_finite() {
            let r = crate::quant::quantize_row_q8_k(x, y);
            debug_assert!(r.is_ok());
            continue;
        }
        let lim = vdupq_n_s32(127);
        y[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for (g, vg) in v.as_chunks::<4>().0.iter().enumerate() {
            let q = vg.map(|vk| vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vk, iscale)), lim));
            let at = YBSUMS + 2 * g;
            y[at..at + 2].copy_from_slice(&(sum_i32(&q) as i16).to_le_bytes());
            store(y, YQ + 16 * g, pack_i8(&q));
        }
    }
}

macro_rules! safe_quant {
    ($($name:ident => $imp:ident : $ty:ident),* $(,)?) => {$(
        fn $name(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
            check_lengths(GgmlType::$ty, src.len(), dst.len())?;
            // Reachable only through `quantize_fn`, which `simd::quantize_fn_for` calls
            // after detecting NEON.
            // SAFETY: the CPU has NEON (checked before handing this fn out).
            unsafe { $imp(src, dst) };
            Ok(())
        }
    )*};
}

#[inline]
#[target_feature(enable = "neon")]
fn q8_0_quant(src: &[f32], dst: &mut [u8]) {
    quantize_q8_legacy::<Q80>(src, dst)
}

#[inline]
#[target_feature(enable = "neon")]
fn q8_1_quant(src: &[f32], dst: &mut [u8]) {
    quantize_q8_legacy::<Q81>(src, dst)
}

safe_quant! {
    quantize_q8_0 => q8_0_quant: Q8_0,
    quantize_q8_1 => q8_1_quant: Q8_1,
    quantize_q8_k => quantize_q8k: Q8K,
}

/// The NEON activation quantizer for an activation format (Q8_0, Q8_1, Q8_K), the same
/// for both NEON variants (no integer products). Only `simd::quantize_fn_for` may call
/// this, after the same checks as for `dot_fn`.
pub(in crate::quant::simd) fn quantize_fn(act: GgmlType) -> Option<QuantizeFn> {
    Some(match act {
        GgmlType::Q8_0 => quantize_q8_0,
        GgmlType::Q8_1 => quantize_q8_1,
        GgmlType::Q8K => quantize_q8_k,
        _ => return None,
    })
}
