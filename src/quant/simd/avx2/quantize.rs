//! AVX2 activation quantizers, bit-identical to the scalar references in
//! `quant::quantize`: the same f32 operations element by element (`amax / 127`, `1 / d`,
//! `x * id`, `-127 / max`, `iscale * x`), `roundf` rebuilt exactly from truncation (the
//! fraction `x - trunc(x)` is exact below 2^23), `nearest_int` = `cvtps_epi32` in the
//! default round-to-nearest-even mode, and maxima order-independent because the inputs
//! are finite. A block with a NaN or infinity, or whose scale overflows (a subnormal
//! maximum), goes to the scalar quantizer (the reference's results there depend on its
//! exact sequential semantics).

use std::arch::x86_64::*;

use super::kquants::{Q8K, YBSUMS, YQ};
use super::legacy::{Q80, Q81};
use crate::quant::dot::QuantizeFn;
use crate::quant::error::check_lengths;
use crate::quant::{GgmlType, QuantError};

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
/// `simd::quantize_fn_for` may call this, after the same checks as for
/// [`dot_fn`](super::dot_fn).
pub(in crate::quant::simd) fn quantize_fn(act: GgmlType) -> Option<QuantizeFn> {
    Some(match act {
        GgmlType::Q8_0 => quantize_q8_0,
        GgmlType::Q8_1 => quantize_q8_1,
        GgmlType::Q8K => quantize_q8_k,
        _ => return None,
    })
}
