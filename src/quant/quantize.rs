//! Scalar reference quantization of f32 rows into the activation formats Q8_0, Q8_1
//! and Q8_K (what a matmul quantizes its input vector to before integer dot products).
//!
//! Why shaped so: these must reproduce ggml's `quantize_row_q8_0_ref`,
//! `quantize_row_q8_1_ref` and `quantize_row_q8_K_ref` bit for bit, because the dot
//! products downstream are then exactly ggml's. The details that matter:
//! - Q8_0/Q8_1 round with C `roundf` (half away from zero) = [`f32::round`], and scale by
//!   the reciprocal `id = 1/d` (a multiply, not a divide by `d`).
//! - Q8_K rounds with ggml's `nearest_int`, the "add 1.5 * 2^23 and read the mantissa"
//!   trick, i.e. round half to *even* in the current (default) rounding mode, and its
//!   scale is `-127 / max` where `max` is the *signed* element of largest magnitude (first
//!   one on ties), so the extreme element maps to exactly -127 and `d = 1 / iscale` is
//!   negative when that element is positive.
//! - The absolute max of Q8_0/Q8_1 uses ggml's `MAX(a, b)` macro (`a > b ? a : b`), which
//!   is not `f32::max` when a NaN is involved; we copy the macro so even NaN inputs give
//!   ggml's bytes (up to the float-to-int8 conversion, undefined in C and saturating here).
//! - f32 to f16 is round-to-nearest-even, like `GGML_FP32_TO_FP16`.
//!
//! Caveat: these match ggml's *reference* functions. llama.cpp's CPU backend quantizes
//! Q8_0/Q8_1 activations with its own SIMD `quantize_row_q8_0` (ggml-cpu/arch/x86/quants.c),
//! which uses `id = 127 / amax` instead of `1 / (amax / 127)` and rounds half to *even*
//! (`_mm256_round_ps`), so its bytes can differ from the reference (and from ours) in the
//! last quant on ties and near-ties. Its Q8_K path is the reference one.

use half::f16;

use super::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K};
use super::error::check_lengths;
use super::{GgmlType, QuantError};

#[inline(always)]
fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

/// ggml's `MAX(|x|)` over a block, starting from 0, with the macro's NaN behaviour.
#[inline(always)]
fn abs_max(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |amax, v| {
        let av = v.abs();
        if amax > av {
            amax
        } else {
            av
        }
    })
}

/// ggml `nearest_int`: round half to even, valid for |f| < 2^22 (beyond that, or for
/// NaN/inf, it returns the same garbage ggml does, without panicking).
#[inline(always)]
fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0; // 1.5 * 2^23: the sum's mantissa holds round(f) + 2^22
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// Quantizes one row to Q8_0 (`dst.len()` must be `GgmlType::Q8_0.row_bytes(src.len())`).
pub fn quantize_row_q8_0(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_lengths(GgmlType::Q8_0, src.len(), dst.len())?;
    let (xs, _) = src.as_chunks::<QK>();
    let (ys, _) = dst.as_chunks_mut::<{ BlockQ8_0::SIZE }>();
    for (x, y) in xs.iter().zip(ys) {
        let (d, qs) = q8_scaled(x);
        BlockQ8_0 {
            d: f16_bytes(d),
            qs,
        }
        .write(y);
    }
    Ok(())
}

/// Quantizes one row to Q8_1: Q8_0 plus `s = f16(d * sum(q))`.
pub fn quantize_row_q8_1(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_lengths(GgmlType::Q8_1, src.len(), dst.len())?;
    let (xs, _) = src.as_chunks::<QK>();
    let (ys, _) = dst.as_chunks_mut::<{ BlockQ8_1::SIZE }>();
    for (x, y) in xs.iter().zip(ys) {
        let (d, qs) = q8_scaled(x);
        let sum: i32 = qs.iter().map(|&q| q as i8 as i32).sum();
        BlockQ8_1 {
            d: f16_bytes(d),
            s: f16_bytes(sum as f32 * d),
            qs,
        }
        .write(y);
    }
    Ok(())
}

/// The shared part of Q8_0 and Q8_1: `d = amax / 127` (in f32, stored as f16 by the
/// caller) and `q = roundf(x * (1/d))`, computed from the f32 `d`, not the stored f16.
#[inline(always)]
fn q8_scaled(x: &[f32; QK]) -> (f32, [u8; QK]) {
    let d = abs_max(x) / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8 as u8;
    }
    (d, qs)
}

/// Quantizes one row to Q8_K (`d` an f32, plus the 16 group sums `bsums`).
///
/// An all-zero block gets `d = 0`, zero quants and zero `bsums` (ggml leaves `bsums`
/// unwritten there; nothing reads them when `d = 0`).
pub fn quantize_row_q8_k(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_lengths(GgmlType::Q8K, src.len(), dst.len())?;
    let (xs, _) = src.as_chunks::<QK_K>();
    let (ys, _) = dst.as_chunks_mut::<{ BlockQ8K::SIZE }>();
    for (x, y) in xs.iter().zip(ys) {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in x {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        let mut block = BlockQ8K {
            d: [0; 4],
            qs: [0; QK_K],
            bsums: [0; QK_K / 16 * 2],
        };
        if amax != 0.0 {
            let iscale = -127.0f32 / max;
            for (q, &v) in block.qs.iter_mut().zip(x) {
                // C stores MIN(127, v) into an int8_t: truncation, as `as i8` does.
                *q = nearest_int(iscale * v).min(127) as i8 as u8;
            }
            for (g, sum) in block
                .qs
                .chunks_exact(16)
                .zip(block.bsums.chunks_exact_mut(2))
            {
                let s: i32 = g.iter().map(|&q| q as i8 as i32).sum();
                sum.copy_from_slice(&(s as i16).to_le_bytes());
            }
            block.d = (1.0 / iscale).to_le_bytes();
        }
        block.write(y);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize_row;

    #[test]
    fn length_errors() {
        let x = [0f32; 64];
        let mut y = [0u8; 68];
        assert_eq!(quantize_row_q8_0(&x, &mut y), Ok(()));
        assert!(matches!(
            quantize_row_q8_0(&x[..63], &mut y),
            Err(QuantError::PartialBlock { elems: 63, .. })
        ));
        assert!(matches!(
            quantize_row_q8_0(&x, &mut y[..67]),
            Err(QuantError::ByteLength {
                expected: 68,
                actual: 67,
                ..
            })
        ));
        assert!(quantize_row_q8_1(&x, &mut y).is_err()); // Q8_1 needs 72 bytes
        let mut y1 = [0u8; 72];
        assert_eq!(quantize_row_q8_1(&x, &mut y1), Ok(()));
        let mut yk = [0u8; 292];
        assert!(quantize_row_q8_k(&x, &mut yk).is_err()); // 64 is not a K block
        assert_eq!(quantize_row_q8_k(&[0f32; 256], &mut yk), Ok(()));
    }

    #[test]
    fn rounding_modes() {
        // amax = 127 gives d = 1 and iscale = -1, so x.5 values are exact ties.
        let mut x = [0f32; 256];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = 3.5;
        let mut y0 = [0u8; 8 * 34];
        quantize_row_q8_0(&x, &mut y0).unwrap();
        assert_eq!(&y0[2..6], &[127, 3, (-3i8) as u8, 4]); // roundf: away from zero
        let mut yk = [0u8; 292];
        quantize_row_q8_k(&x, &mut yk).unwrap();
        assert_eq!(f32::from_le_bytes(yk[0..4].try_into().unwrap()), -1.0);
        // nearest_int: half to even, on -x.
        assert_eq!(&yk[4..8], &[(-127i8) as u8, (-2i8) as u8, 2, (-4i8) as u8]);
        let bsum0 = i16::from_le_bytes([yk[260], yk[261]]);
        assert_eq!(bsum0, -127 - 2 + 2 - 4);
    }

    #[test]
    fn nan_and_inf_do_not_panic() {
        let mut x = [1.5f32; 256];
        x[3] = f32::NAN;
        x[7] = f32::INFINITY;
        let mut y = [0u8; 8 * 34];
        quantize_row_q8_0(&x, &mut y).unwrap();
        let mut y = [0u8; 8 * 36];
        quantize_row_q8_1(&x, &mut y).unwrap();
        let mut y = [0u8; 292];
        quantize_row_q8_k(&x, &mut y).unwrap();
        x[0] = 1e-40; // subnormal max: iscale overflows to -inf
        x[3] = 0.0;
        x[7] = 0.0;
        for v in &mut x[1..] {
            *v = 0.0;
        }
        quantize_row_q8_k(&x, &mut y).unwrap();
    }

    #[test]
    fn round_trip_is_close() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut q = vec![0u8; 2 * 292];
        quantize_row_q8_k(&x, &mut q).unwrap();
        let mut back = vec![0f32; 512];
        dequantize_row(GgmlType::Q8K, &q, &mut back).unwrap();
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= 7.2 / 127.0 * 0.6, "{a} vs {b}");
        }
        let mut q = vec![0u8; 16 * 34];
        quantize_row_q8_0(&x, &mut q).unwrap();
        dequantize_row(GgmlType::Q8_0, &q, &mut back).unwrap();
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= 7.2 / 127.0 * 0.6, "{a} vs {b}");
        }
    }
}
