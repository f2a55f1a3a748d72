//! Scalar dot products of one quantized weight row with one activation row that was
//! quantized to the weight type's partner format (ggml's `vec_dot_type`):
//!
//! | weights | activations |
//! |---|---|
//! | Q4_0, Q5_0, Q8_0, IQ4_NL | Q8_0 |
//! | Q4_1, Q5_1 | Q8_1 (carries `d * sum(q)` so the weights' min folds into one product) |
//! | Q2_K … Q6_K, IQ4_XS | Q8_K (f32 scale, per-16 sums for the mins) |
//! | F32, F16, BF16 | F32 |
//!
//! Why shaped so: each kernel decodes a block's quants to small integers and takes an
//! integer dot product per (sub-)block, then applies the float scales once per
//! (sub-)block, as ggml's generic kernels do. Integer sums are exact, so a SIMD kernel
//! must give exactly the same per-block integers; only the float accumulation order may
//! differ. These are the portable path and the oracle for the SIMD ones.
//!
//! Lengths: callers pass whole rows (`w` and `x` hold the same number of blocks); a
//! mismatch is caught by [`dot_fn`]'s caller at bind time, and here blocks are zipped, so
//! a short input can only shorten the sum, never read out of bounds.

use super::blocks::*;
use super::{quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k, simd, GgmlType, QuantError};

/// Activation format for a weight type, or `None` when hearth has no dot kernel for it.
pub fn vec_dot_type(ty: GgmlType) -> Option<GgmlType> {
    use GgmlType::*;
    Some(match ty {
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl => Q8_0,
        Q4_1 | Q5_1 => Q8_1,
        Q2K | Q3K | Q4K | Q5K | Q6K | Iq4Xs => Q8K,
        F32 | F16 | Bf16 => F32,
        _ => return None,
    })
}

/// Converts an activation row to `act` (a [`vec_dot_type`]): `dst` must hold
/// `act.row_bytes(src.len())` bytes. Uses the chosen instruction set's quantizer
/// ([`simd::kernel`]); all of them give the scalar reference's bytes exactly.
pub fn quantize_activations(act: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    match simd::quantize_fn_for(simd::kernel(), act) {
        Some(q) => q(src, dst),
        None => scalar_quantize_activations(act, src, dst),
    }
}

/// A quantizer of one activation row: (f32 values, destination bytes).
pub type QuantizeFn = fn(&[f32], &mut [u8]) -> Result<(), QuantError>;

/// [`quantize_activations`] with the scalar reference quantizers.
pub fn scalar_quantize_activations(
    act: GgmlType,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), QuantError> {
    match act {
        GgmlType::Q8_0 => quantize_row_q8_0(src, dst),
        GgmlType::Q8_1 => quantize_row_q8_1(src, dst),
        GgmlType::Q8K => quantize_row_q8_k(src, dst),
        GgmlType::F32 => {
            if dst.len() != src.len() * 4 {
                return Err(QuantError::ByteLength {
                    ty: act,
                    elems: src.len(),
                    expected: src.len() * 4,
                    actual: dst.len(),
                });
            }
            for (d, s) in dst.chunks_exact_mut(4).zip(src) {
                d.copy_from_slice(&s.to_le_bytes());
            }
            Ok(())
        }
        other => Err(QuantError::Unsupported(other)),
    }
}

/// A dot-product kernel: (weight row bytes, activation row bytes) -> sum.
pub type DotFn = fn(&[u8], &[u8]) -> f32;

/// A matrix-product kernel: `(w, rows, x, n, out, (row_step, token_step))` sets
/// `out[r * row_step + t * token_step]` to the dot product of weight row `r` (of `rows`
/// consecutive rows in `w`) with activation row `t` (of `n` consecutive rows in `x`, in
/// [`vec_dot_type`]'s format): `(n, 1)` writes `[row][token]`, `(1, rows)`
/// `[token][row]`. Results are bit-identical to [`DotFn`] calls of the same instruction
/// set.
pub type GemmFn = fn(&[u8], usize, &[u8], usize, &mut [f32], (usize, usize));

/// The matrix-product kernel for a weight type, if the chosen instruction set has one
/// (callers fall back to [`dot_fn`] per row and token).
pub fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
    simd::gemm_fn_for(simd::kernel(), ty)
}

/// The dot kernel for a weight type (activations in [`vec_dot_type`]'s format), for the
/// instruction set chosen at startup ([`simd::kernel`]: the best the CPU has, or
/// `HEARTH_KERNEL`), or the scalar one where that set has no kernel for the type.
pub fn dot_fn(ty: GgmlType) -> Option<DotFn> {
    simd::dot_fn_for(simd::kernel(), ty).or_else(|| scalar_dot_fn(ty))
}

/// The scalar (portable, reference) kernel for a weight type.
pub fn scalar_dot_fn(ty: GgmlType) -> Option<DotFn> {
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

#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

#[inline(always)]
fn blocks<const S: usize>(b: &[u8]) -> &[[u8; S]] {
    b.as_chunks::<S>().0
}

#[inline(always)]
fn as_i8<const N: usize>(q: &[u8; N]) -> [i8; N] {
    q.map(|b| b as i8)
}

fn f32_pairs(w: &[u8], x: &[u8], dec: impl Fn([u8; 2]) -> f32) -> f32 {
    let xs = blocks::<4>(x);
    blocks::<2>(w)
        .iter()
        .zip(xs)
        .map(|(a, b)| dec(*a) * f32::from_le_bytes(*b))
        .sum()
}

fn dot_f32(w: &[u8], x: &[u8]) -> f32 {
    blocks::<4>(w)
        .iter()
        .zip(blocks::<4>(x))
        .map(|(a, b)| f32::from_le_bytes(*a) * f32::from_le_bytes(*b))
        .sum()
}

fn dot_f16(w: &[u8], x: &[u8]) -> f32 {
    f32_pairs(w, x, f16_le)
}

fn dot_bf16(w: &[u8], x: &[u8]) -> f32 {
    f32_pairs(w, x, |b| {
        f32::from_bits((u16::from_le_bytes(b) as u32) << 16)
    })
}

/// Splits 16 packed bytes into 32 values: element j is the low nibble of byte j,
/// element j + 16 the high nibble (the layout of Q4_0, Q4_1, Q5_*, IQ4_NL).
#[inline(always)]
fn nibbles(qs: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for j in 0..16 {
        out[j] = qs[j] & 0x0f;
        out[j + 16] = qs[j] >> 4;
    }
    out
}

/// Q5 values (0..32) of a block: nibbles plus bit j of `qh` as bit 4 of element j.
#[inline(always)]
fn q5_values(qs: &[u8; 16], qh: [u8; 4]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut v = nibbles(qs);
    for (j, x) in v.iter_mut().enumerate() {
        *x |= (((qh >> j) & 1) << 4) as u8;
    }
    v
}

fn dot_q4_0(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ4_0::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8_0::SIZE }>(x))
    {
        let (a, b) = (BlockQ4_0::read(wb), BlockQ8_0::read(xb));
        let q = nibbles(&a.qs).map(|v| v as i8 - 8);
        sum += dot_i8(&q, &as_i8(&b.qs)) as f32 * (f16_le(a.d) * f16_le(b.d));
    }
    sum
}

fn dot_q4_1(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ4_1::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8_1::SIZE }>(x))
    {
        let (a, b) = (BlockQ4_1::read(wb), BlockQ8_1::read(xb));
        let q = nibbles(&a.qs).map(|v| v as i8);
        let sumi = dot_i8(&q, &as_i8(&b.qs));
        sum += sumi as f32 * (f16_le(a.d) * f16_le(b.d)) + f16_le(a.m) * f16_le(b.s);
    }
    sum
}

fn dot_q5_0(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ5_0::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8_0::SIZE }>(x))
    {
        let (a, b) = (BlockQ5_0::read(wb), BlockQ8_0::read(xb));
        let q = q5_values(&a.qs, a.qh).map(|v| v as i8 - 16);
        sum += dot_i8(&q, &as_i8(&b.qs)) as f32 * (f16_le(a.d) * f16_le(b.d));
    }
    sum
}

fn dot_q5_1(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ5_1::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8_1::SIZE }>(x))
    {
        let (a, b) = (BlockQ5_1::read(wb), BlockQ8_1::read(xb));
        let q = q5_values(&a.qs, a.qh).map(|v| v as i8);
        let sumi = dot_i8(&q, &as_i8(&b.qs));
        sum += sumi as f32 * (f16_le(a.d) * f16_le(b.d)) + f16_le(a.m) * f16_le(b.s);
    }
    sum
}

fn dot_q8_0(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ8_0::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8_0::SIZE }>(x))
    {
        let (a, b) = (BlockQ8_0::read(wb), BlockQ8_0::read(xb));
        sum += dot_i8(&as_i8(&a.qs), &as_i8(&b.qs)) as f32 * (f16_le(a.d) * f16_le(b.d));
    }
    sum
}

fn dot_iq4_nl(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockIq4Nl::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8_0::SIZE }>(x))
    {
        let (a, b) = (BlockIq4Nl::read(wb), BlockQ8_0::read(xb));
        let q = nibbles(&a.qs).map(|v| KVALUES_IQ4NL[v as usize]);
        sum += dot_i8(&q, &as_i8(&b.qs)) as f32 * (f16_le(a.d) * f16_le(b.d));
    }
    sum
}

/// One Q8_K activation block: scale, quants, and the sums of each group of 16 quants.
struct Act {
    d: f32,
    q: [i8; QK_K],
    bsums: [i16; 16],
}

#[inline(always)]
fn act(xb: &[u8; BlockQ8K::SIZE]) -> Act {
    let b = BlockQ8K::read(xb);
    let mut bsums = [0i16; 16];
    for (i, s) in bsums.iter_mut().enumerate() {
        *s = i16::from_le_bytes([b.bsums[2 * i], b.bsums[2 * i + 1]]);
    }
    Act {
        d: f32::from_le_bytes(b.d),
        q: as_i8(&b.qs),
        bsums,
    }
}

/// Sum over sub-blocks of `len` elements: `scale[i] * dot(q_i, y_i)`, in integers.
#[inline(always)]
fn scaled_sum(q: &[i8; QK_K], y: &[i8; QK_K], scales: &[i32], len: usize) -> i32 {
    q.chunks_exact(len)
        .zip(y.chunks_exact(len))
        .zip(scales)
        .map(|((a, b), &s)| s * dot_i8(a, b))
        .sum()
}

/// 2-bit fields of 64 bytes laid out as in Q2_K/Q3_K: in each of 2 groups of 32 bytes,
/// byte l holds elements `128 g + 32 s + l` at bit shift `2 s`.
#[inline(always)]
fn two_bit(qs: &[u8; 64]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for g in 0..2 {
        for s in 0..4 {
            for l in 0..32 {
                q[128 * g + 32 * s + l] = ((qs[32 * g + l] >> (2 * s)) & 3) as i8;
            }
        }
    }
    q
}

fn dot_q2_k(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ2K::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8K::SIZE }>(x))
    {
        let (a, y) = (BlockQ2K::read(wb), act(xb));
        let q = two_bit(&a.qs);
        let scales = a.scales.map(|s| (s & 0x0f) as i32);
        let mins: i32 = a
            .scales
            .iter()
            .zip(&y.bsums)
            .map(|(&s, &b)| (s >> 4) as i32 * b as i32)
            .sum();
        let sumi = scaled_sum(&q, &y.q, &scales, 16);
        sum += y.d * (f16_le(a.d) * sumi as f32 - f16_le(a.dmin) * mins as f32);
    }
    sum
}

fn dot_q3_k(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ3K::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8K::SIZE }>(x))
    {
        let (a, y) = (BlockQ3K::read(wb), act(xb));
        let mut q = two_bit(&a.qs);
        for g in 0..2 {
            for j in 0..4 {
                for l in 0..32 {
                    if a.hmask[l] & (1 << (4 * g + j)) == 0 {
                        q[128 * g + 32 * j + l] -= 4;
                    }
                }
            }
        }
        let scales = q3k_scales(&a.scales).map(i32::from);
        let sumi = scaled_sum(&q, &y.q, &scales, 16);
        sum += f16_le(a.d) * y.d * sumi as f32;
    }
    sum
}

/// Q4_K/Q5_K low 4 bits: 4 groups of 32 bytes, low nibbles = elements `64 g + l`,
/// high nibbles = elements `64 g + 32 + l`.
#[inline(always)]
fn k_nibbles(qs: &[u8; 128]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for g in 0..4 {
        for l in 0..32 {
            q[64 * g + l] = (qs[32 * g + l] & 0x0f) as i8;
            q[64 * g + 32 + l] = (qs[32 * g + l] >> 4) as i8;
        }
    }
    q
}

/// The shared tail of Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins.
#[inline(always)]
fn k4_sum(q: &[i8; QK_K], y: &Act, scales: &[u8; 12], d: [u8; 2], dmin: [u8; 2]) -> f32 {
    let mut sc = [0i32; 8];
    let mut mins = 0i32;
    for (j, s) in sc.iter_mut().enumerate() {
        let (scale, min) = scale_min_k4(j, scales);
        *s = scale as i32;
        mins += min as i32 * (y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32);
    }
    let sumi = scaled_sum(q, &y.q, &sc, 32);
    y.d * (f16_le(d) * sumi as f32 - f16_le(dmin) * mins as f32)
}

fn dot_q4_k(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ4K::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8K::SIZE }>(x))
    {
        let (a, y) = (BlockQ4K::read(wb), act(xb));
        sum += k4_sum(&k_nibbles(&a.qs), &y, &a.scales, a.d, a.dmin);
    }
    sum
}

fn dot_q5_k(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ5K::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8K::SIZE }>(x))
    {
        let (a, y) = (BlockQ5K::read(wb), act(xb));
        let mut q = k_nibbles(&a.qs);
        for g in 0..4 {
            for l in 0..32 {
                q[64 * g + l] |= (((a.qh[l] >> (2 * g)) & 1) << 4) as i8;
                q[64 * g + 32 + l] |= (((a.qh[l] >> (2 * g + 1)) & 1) << 4) as i8;
            }
        }
        sum += k4_sum(&q, &y, &a.scales, a.d, a.dmin);
    }
    sum
}

fn dot_q6_k(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockQ6K::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8K::SIZE }>(x))
    {
        let (a, y) = (BlockQ6K::read(wb), act(xb));
        let mut q = [0i8; QK_K];
        for h in 0..2 {
            let (ql, qh) = (&a.ql[64 * h..64 * h + 64], &a.qh[32 * h..32 * h + 32]);
            for l in 0..32 {
                let hb = |s: u32| ((qh[l] >> s) & 3) << 4;
                q[128 * h + l] = ((ql[l] & 0x0f) | hb(0)) as i8 - 32;
                q[128 * h + l + 32] = ((ql[l + 32] & 0x0f) | hb(2)) as i8 - 32;
                q[128 * h + l + 64] = ((ql[l] >> 4) | hb(4)) as i8 - 32;
                q[128 * h + l + 96] = ((ql[l + 32] >> 4) | hb(6)) as i8 - 32;
            }
        }
        let scales = a.scales.map(|s| s as i8 as i32);
        let sumi = scaled_sum(&q, &y.q, &scales, 16);
        sum += f16_le(a.d) * y.d * sumi as f32;
    }
    sum
}

fn dot_iq4_xs(w: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in blocks::<{ BlockIq4Xs::SIZE }>(w)
        .iter()
        .zip(blocks::<{ BlockQ8K::SIZE }>(x))
    {
        let (a, y) = (BlockIq4Xs::read(wb), act(xb));
        let sh = u16::from_le_bytes(a.scales_h);
        let mut q = [0i8; QK_K];
        let mut scales = [0i32; 8];
        for (ib, s) in scales.iter_mut().enumerate() {
            let lo = (a.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f;
            let hi = ((sh >> (2 * ib)) & 3) as u8;
            *s = (lo | (hi << 4)) as i32 - 32;
            let qs: &[u8; 16] = a.qs[16 * ib..16 * ib + 16].try_into().unwrap_or(&[0; 16]);
            for (j, v) in nibbles(qs).iter().enumerate() {
                q[32 * ib + j] = KVALUES_IQ4NL[*v as usize];
            }
        }
        let sumi = scaled_sum(&q, &y.q, &scales, 32);
        sum += f16_le(a.d) * y.d * sumi as f32;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::super::dequantize_row;
    use super::*;

    /// Deterministic pseudo-random bytes (splitmix64).
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9e3779b97f4a7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
                (z ^ (z >> 31)) as u8
            })
            .collect()
    }

    /// Random blocks with sane f16 scales: every 2-byte scale field is overwritten.
    fn weights(ty: GgmlType, n: usize, seed: u64) -> Vec<u8> {
        let mut w = bytes(ty.row_bytes(n as u64).unwrap() as usize, seed);
        let scale = half::f16::from_f32(0.01).to_bits().to_le_bytes();
        let bs = ty.type_size();
        let offs: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::Iq4Nl => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 => &[0, 2],
            GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
            GgmlType::Q2K => &[80, 82],
            GgmlType::Q3K => &[108],
            GgmlType::Q6K => &[208],
            GgmlType::Iq4Xs => &[0],
            _ => &[],
        };
        for b in w.chunks_exact_mut(bs) {
            for &o in offs {
                b[o..o + 2].copy_from_slice(&scale);
            }
        }
        w
    }

    /// Each kernel against dequantize(weights) · dequantize(quantized activations) in f64.
    #[test]
    fn kernels_match_dequantized_products() {
        let n = 512;
        let xf: Vec<f32> = bytes(n, 7)
            .iter()
            .map(|&b| (b as f32 - 128.0) / 50.0)
            .collect();
        for ty in GgmlType::all().filter(|t| {
            scalar_dot_fn(*t).is_some()
                && !matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16)
        }) {
            let w = weights(ty, n, ty.id() as u64);
            let mut wf = vec![0f32; n];
            dequantize_row(ty, &w, &mut wf).unwrap();
            let act = vec_dot_type(ty).unwrap();
            let mut xq = vec![0u8; act.row_bytes(n as u64).unwrap() as usize];
            quantize_activations(act, &xf, &mut xq).unwrap();
            let mut xd = vec![0f32; n];
            if act == GgmlType::Q8_1 {
                // Q8_1 has no dequantizer: its quants and scale read as Q8_0 minus `s`.
                let mut as_q80 = Vec::new();
                for b in xq.chunks_exact(36) {
                    as_q80.extend_from_slice(&b[..2]);
                    as_q80.extend_from_slice(&b[4..]);
                }
                dequantize_row(GgmlType::Q8_0, &as_q80, &mut xd).unwrap();
            } else {
                dequantize_row(act, &xq, &mut xd).unwrap();
            }
            let want: f64 = wf.iter().zip(&xd).map(|(&a, &b)| a as f64 * b as f64).sum();
            let got = scalar_dot_fn(ty).unwrap()(&w, &xq) as f64;
            let scale: f64 = wf
                .iter()
                .zip(&xd)
                .map(|(&a, &b)| (a as f64 * b as f64).abs())
                .sum();
            assert!(
                (got - want).abs() <= 1e-4 * scale + 1e-6,
                "{ty}: got {got}, want {want} (scale {scale})"
            );
        }
    }

    #[test]
    fn float_kernels() {
        let w: Vec<f32> = (0..64).map(|i| i as f32 * 0.5).collect();
        let x: Vec<f32> = (0..64).map(|i| 1.0 - i as f32 * 0.01).collect();
        let want: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let w32: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let w16: Vec<u8> = w
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        let wbf: Vec<u8> = w
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        assert_eq!(dot_f32(&w32, &xb), want);
        assert!((dot_f16(&w16, &xb) - want).abs() < 1e-3 * want.abs());
        assert!((dot_bf16(&wbf, &xb) - want).abs() < 1e-3 * want.abs());
    }
}
