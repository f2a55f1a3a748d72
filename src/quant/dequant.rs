//! Scalar reference dequantization: one row of ggml blocks to f32.
//!
//! Why shaped so: this is the *oracle* that later SIMD kernels are tested against, so it
//! favours being obviously right over being fast:
//! - One small function per type, decoding one block (`&[u8; SIZE]` to `&mut [f32; N]`)
//!   through the field structs of [`blocks`](super::blocks), in the same element order and
//!   with the same f32 operations, in the same order, as ggml's `dequantize_row_*`
//!   (ggml-quants.c), e.g. Q4_K's `d1 = d * sc`, `m1 = dmin * m`, then `d1 * q - m1`.
//!   Results are bit-identical to ggml's reference.
//! - Why that is robust (useful for SIMD kernels): an f16 scale has 11 significant bits and
//!   every integer it meets is small (|sc| <= 128, |q| <= 32, |kvalue| <= 127), so all the
//!   products here need at most 23 bits and are *exact* in f32, from the smallest subnormal
//!   f16 to 65504. Hence the order of the multiplications cannot change a result, and
//!   neither can fusing `d1 * q - m1` into an FMA; the only rounding is the final add or
//!   subtract of the min (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K). Q8_K (f32 scale) rounds once, in
//!   its single multiply. What a kernel must not do is compute in f16 or fold the min into
//!   the scale (`d * (q - m/d)`).
//! - Lengths are checked once up front; afterwards `as_chunks` hands out whole blocks, so
//!   no input bytes can make this panic. NaN/inf scales simply propagate, as in ggml.
//! - No `unsafe`: fields are copied out of byte arrays, whatever the mmap alignment.

use super::blocks::*;
use super::error::check_lengths;
use super::{GgmlType, QuantError};

/// Dequantizes one row: `dst.len()` elements from `src`, which must hold exactly
/// `ty.row_bytes(dst.len())` bytes.
///
/// Errors: [`QuantError::Unsupported`] for a type without a kernel,
/// [`QuantError::PartialBlock`] when `dst.len()` is not a multiple of the block size,
/// [`QuantError::ByteLength`] when `src` has the wrong length. Never panics.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    check_lengths(ty, dst.len(), src.len())?;
    match ty {
        GgmlType::F32 => each::<4, 1>(src, dst, |b, y| y[0] = f32::from_le_bytes(*b)),
        GgmlType::F16 => each::<2, 1>(src, dst, |b, y| y[0] = f16_le(*b)),
        // bf16 is the top half of an f32; widening is exact for every bit pattern.
        GgmlType::Bf16 => each::<2, 1>(src, dst, |b, y| {
            y[0] = f32::from_bits((u16::from_le_bytes(*b) as u32) << 16)
        }),
        GgmlType::Q4_0 => each(src, dst, q4_0),
        GgmlType::Q4_1 => each(src, dst, q4_1),
        GgmlType::Q5_0 => each(src, dst, q5_0),
        GgmlType::Q5_1 => each(src, dst, q5_1),
        GgmlType::Q8_0 => each(src, dst, q8_0),
        GgmlType::Q2K => each(src, dst, q2_k),
        GgmlType::Q3K => each(src, dst, q3_k),
        GgmlType::Q4K => each(src, dst, q4_k),
        GgmlType::Q5K => each(src, dst, q5_k),
        GgmlType::Q6K => each(src, dst, q6_k),
        GgmlType::Q8K => each(src, dst, q8_k),
        GgmlType::Iq4Nl => each(src, dst, iq4_nl),
        GgmlType::Iq4Xs => each(src, dst, iq4_xs),
        // is_supported() and this match list the same types (checked by a unit test).
        _ => return Err(QuantError::Unsupported(ty)),
    }
    Ok(())
}

/// Applies a block decoder to each (block bytes, block elements) pair. Lengths were
/// checked by the caller, so both chunkings have empty remainders and equal counts.
#[inline(always)]
fn each<const S: usize, const E: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; S], &mut [f32; E]),
) {
    let (sb, _) = src.as_chunks::<S>();
    let (db, _) = dst.as_chunks_mut::<E>();
    for (s, d) in sb.iter().zip(db) {
        f(s, d);
    }
}

fn q4_0(bytes: &[u8; BlockQ4_0::SIZE], y: &mut [f32; QK]) {
    let b = BlockQ4_0::read(bytes);
    let d = f16_le(b.d);
    for j in 0..QK / 2 {
        let x0 = (b.qs[j] & 0x0f) as i32 - 8;
        let x1 = (b.qs[j] >> 4) as i32 - 8;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

fn q4_1(bytes: &[u8; BlockQ4_1::SIZE], y: &mut [f32; QK]) {
    let b = BlockQ4_1::read(bytes);
    let d = f16_le(b.d);
    let m = f16_le(b.m);
    for j in 0..QK / 2 {
        let x0 = (b.qs[j] & 0x0f) as i32;
        let x1 = (b.qs[j] >> 4) as i32;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

/// Bit 4 of elements j and j + 16 of a Q5 block, from the 32-bit high-bit mask.
#[inline(always)]
fn q5_high(qh: u32, j: usize) -> (u8, u8) {
    (
        (((qh >> j) << 4) & 0x10) as u8,
        ((qh >> (j + 12)) & 0x10) as u8,
    )
}

fn q5_0(bytes: &[u8; BlockQ5_0::SIZE], y: &mut [f32; QK]) {
    let b = BlockQ5_0::read(bytes);
    let d = f16_le(b.d);
    let qh = u32::from_le_bytes(b.qh);
    for j in 0..QK / 2 {
        let (h0, h1) = q5_high(qh, j);
        let x0 = ((b.qs[j] & 0x0f) | h0) as i32 - 16;
        let x1 = ((b.qs[j] >> 4) | h1) as i32 - 16;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

fn q5_1(bytes: &[u8; BlockQ5_1::SIZE], y: &mut [f32; QK]) {
    let b = BlockQ5_1::read(bytes);
    let d = f16_le(b.d);
    let m = f16_le(b.m);
    let qh = u32::from_le_bytes(b.qh);
    for j in 0..QK / 2 {
        let (h0, h1) = q5_high(qh, j);
        let x0 = ((b.qs[j] & 0x0f) | h0) as i32;
        let x1 = ((b.qs[j] >> 4) | h1) as i32;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

fn q8_0(bytes: &[u8; BlockQ8_0::SIZE], y: &mut [f32; QK]) {
    let b = BlockQ8_0::read(bytes);
    let d = f16_le(b.d);
    for (out, &q) in y.iter_mut().zip(&b.qs) {
        *out = q as i8 as f32 * d;
    }
}

fn q2_k(bytes: &[u8; BlockQ2K::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockQ2K::read(bytes);
    let d = f16_le(b.d);
    let dmin = f16_le(b.dmin);
    // Two groups of 128; in each, 4 shifts x 2 sub-blocks of 16.
    for g in 0..2 {
        for j in 0..4 {
            for h in 0..2 {
                let sc = b.scales[8 * g + 2 * j + h];
                let dl = d * (sc & 0x0f) as f32;
                let ml = dmin * (sc >> 4) as f32;
                for l in 0..16 {
                    let i = 16 * h + l;
                    let q = (b.qs[32 * g + i] >> (2 * j)) & 3;
                    y[128 * g + 32 * j + i] = dl * q as f32 - ml;
                }
            }
        }
    }
}

fn q3_k(bytes: &[u8; BlockQ3K::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockQ3K::read(bytes);
    let d_all = f16_le(b.d);
    let scales = q3k_scales(&b.scales);
    for g in 0..2 {
        for j in 0..4 {
            let m = 1u8 << (4 * g + j);
            for h in 0..2 {
                let dl = d_all * scales[8 * g + 2 * j + h] as f32;
                for l in 0..16 {
                    let i = 16 * h + l;
                    let lo = ((b.qs[32 * g + i] >> (2 * j)) & 3) as i32;
                    // The stored bit is the *absence* of the -4 offset.
                    let q = lo - if b.hmask[i] & m != 0 { 0 } else { 4 };
                    y[128 * g + 32 * j + i] = dl * q as f32;
                }
            }
        }
    }
}

fn q4_k(bytes: &[u8; BlockQ4K::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockQ4K::read(bytes);
    let d = f16_le(b.d);
    let dmin = f16_le(b.dmin);
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, &b.scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, &b.scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            let q = b.qs[32 * g + l];
            y[64 * g + l] = d1 * (q & 0x0f) as f32 - m1;
            y[64 * g + 32 + l] = d2 * (q >> 4) as f32 - m2;
        }
    }
}

fn q5_k(bytes: &[u8; BlockQ5K::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockQ5K::read(bytes);
    let d = f16_le(b.d);
    let dmin = f16_le(b.dmin);
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, &b.scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, &b.scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
        for l in 0..32 {
            let q = b.qs[32 * g + l];
            let h = b.qh[l];
            let q1 = (q & 0x0f) + if h & u1 != 0 { 16 } else { 0 };
            let q2 = (q >> 4) + if h & u2 != 0 { 16 } else { 0 };
            y[64 * g + l] = d1 * q1 as f32 - m1;
            y[64 * g + 32 + l] = d2 * q2 as f32 - m2;
        }
    }
}

fn q6_k(bytes: &[u8; BlockQ6K::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockQ6K::read(bytes);
    let d = f16_le(b.d);
    for h in 0..2 {
        let ql = &b.ql[64 * h..64 * h + 64];
        let qh = &b.qh[32 * h..32 * h + 32];
        let sc = &b.scales[8 * h..8 * h + 8];
        let y = &mut y[128 * h..128 * h + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            // ggml: d * sc * q, i.e. (d * sc) * q.
            y[l] = d * sc[is] as i8 as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
        }
    }
}

fn q8_k(bytes: &[u8; BlockQ8K::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockQ8K::read(bytes);
    let d = f32::from_le_bytes(b.d);
    for (out, &q) in y.iter_mut().zip(&b.qs) {
        *out = d * q as i8 as f32;
    }
}

fn iq4_nl(bytes: &[u8; BlockIq4Nl::SIZE], y: &mut [f32; QK]) {
    let b = BlockIq4Nl::read(bytes);
    let d = f16_le(b.d);
    for j in 0..QK / 2 {
        y[j] = d * KVALUES_IQ4NL[(b.qs[j] & 0x0f) as usize] as f32;
        y[j + QK / 2] = d * KVALUES_IQ4NL[(b.qs[j] >> 4) as usize] as f32;
    }
}

fn iq4_xs(bytes: &[u8; BlockIq4Xs::SIZE], y: &mut [f32; QK_K]) {
    let b = BlockIq4Xs::read(bytes);
    let d = f16_le(b.d);
    let scales_h = u16::from_le_bytes(b.scales_h);
    for ib in 0..QK_K / 32 {
        let lo = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f;
        let hi = ((scales_h >> (2 * ib)) & 3) as u8;
        let dl = d * ((lo | (hi << 4)) as i32 - 32) as f32;
        for j in 0..16 {
            let q = b.qs[16 * ib + j];
            y[32 * ib + j] = dl * KVALUES_IQ4NL[(q & 0x0f) as usize] as f32;
            y[32 * ib + 16 + j] = dl * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_types_dequantize_and_others_do_not() {
        for ty in GgmlType::all() {
            let n = ty.block_size() * 2;
            let src = vec![0u8; ty.type_size() * 2];
            let mut dst = vec![f32::NAN; n];
            let r = dequantize_row(ty, &src, &mut dst);
            if ty.is_supported() {
                assert_eq!(r, Ok(()), "{ty}");
                // All-zero bytes: zero scales (f16/f32 +0.0), so every element is 0.
                assert!(dst.iter().all(|&x| x == 0.0), "{ty}: {dst:?}");
            } else {
                assert_eq!(r, Err(QuantError::Unsupported(ty)));
            }
        }
    }

    #[test]
    fn length_errors() {
        let mut dst = vec![0f32; 33];
        assert_eq!(
            dequantize_row(GgmlType::Q4_0, &[0; 18], &mut dst),
            Err(QuantError::PartialBlock {
                ty: GgmlType::Q4_0,
                elems: 33,
                block: 32
            })
        );
        let mut dst = vec![0f32; 256];
        let e = dequantize_row(GgmlType::Q4K, &[0; 143], &mut dst).unwrap_err();
        assert_eq!(
            e,
            QuantError::ByteLength {
                ty: GgmlType::Q4K,
                elems: 256,
                expected: 144,
                actual: 143
            }
        );
        assert!(e.to_string().contains("144"), "{e}");
        assert!(dequantize_row(GgmlType::Q4K, &[0; 145], &mut dst).is_err());
        // Empty rows are fine.
        assert_eq!(dequantize_row(GgmlType::Q6K, &[], &mut []), Ok(()));
    }

    #[test]
    fn never_panics_on_extreme_bytes() {
        for ty in GgmlType::all().filter(|t| t.is_supported()) {
            for fill in [0x00u8, 0x7c, 0x7e, 0xff, 0x80, 0x55] {
                let src = vec![fill; ty.type_size() * 3];
                let mut dst = vec![0f32; ty.block_size() * 3];
                dequantize_row(ty, &src, &mut dst).unwrap();
            }
        }
    }

    #[test]
    fn q8_0_by_hand() {
        // d = 0.5 (f16 0x3800), q = -3, 127, -128, 0, ...
        let mut src = vec![0x00, 0x38];
        src.extend([(-3i8) as u8, 127, 0x80]);
        src.resize(34, 0);
        let mut dst = [1f32; 32];
        dequantize_row(GgmlType::Q8_0, &src, &mut dst).unwrap();
        assert_eq!(&dst[..4], &[-1.5, 63.5, -64.0, 0.0]);
    }

    #[test]
    fn q4_k_scale_then_quant_order() {
        // d = 1, dmin = 1, scale 0 = 3, min 0 = 2, first nibble 5: 1*3 * 5 - 1*2 = 13.
        let mut src = vec![0u8; 144];
        src[0..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        src[2..4].copy_from_slice(&0x3c00u16.to_le_bytes());
        src[4] = 3;
        src[8] = 2;
        src[16] = 0x05;
        let mut dst = [0f32; 256];
        dequantize_row(GgmlType::Q4K, &src, &mut dst).unwrap();
        assert_eq!(dst[0], 13.0);
        assert_eq!(dst[1], -2.0);
        assert_eq!(dst[32], 0.0); // sub-block 1: scale 0, min 0
    }
}
