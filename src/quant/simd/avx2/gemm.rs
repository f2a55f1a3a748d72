//! Matrix-product tiles for the legacy 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
//! IQ4_NL): a group of weight rows times a batch of activation rows (prefill, batched
//! decode).
//!
//! The single-row kernels unpack every weight block (nibbles, high bits, f16 scales) once
//! per activation row. Here `RM` rows are unpacked once into an L1-resident buffer
//! (32 bytes of quants and an f32 `[d, m]` per block) and multiplied with the activation
//! rows `RN` at a time: each unpacked weight vector serves `RN` products and each
//! activation vector `RM`, from registers.
//!
//! Bit-identical to the single-row kernels: for each (row, token) the same integer lane
//! sums, the same f32 scale products, one fused multiply-add per block in block order and
//! the same horizontal sum. The engine relies on it: a token's logits do not depend on how
//! it was batched.

use std::cell::RefCell;

use super::*;
use crate::quant::dot::GemmFn;

/// Weight rows unpacked together (each of the `RM x RN` products keeps an accumulator).
const RM: usize = 4;
/// Activation rows per tile.
const RN: usize = 2;
/// Activation bytes one sweep over a row group reads (kept within L2).
const CHUNK_BYTES: usize = 128 * 1024;

/// One block of a row group, unpacked: the quants of its `RM` rows and their scales
/// `d` repeated across a vector (so the tile multiplies by them straight from L1).
#[derive(Clone, Copy)]
struct WBlock {
    q: [[u8; 32]; RM],
    d: [[f32; 8]; RM],
}

/// One thread's unpacked row group: per block, the rows' quants and scales, and their
/// mins (unsigned formats only).
#[derive(Default)]
struct Unpacked {
    blocks: Vec<WBlock>,
    mins: Vec<[f32; RM]>,
}

thread_local! {
    static UNPACKED: RefCell<Unpacked> = RefCell::new(Unpacked::default());
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn st(dst: &mut [u8; 32], v: __m256i) {
    // SAFETY: writes exactly the 32 bytes `dst` borrows mutably; no alignment needed.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_f8(v: &[f32; 8]) -> __m256 {
    // SAFETY: reads exactly the 8 floats `v` borrows; `loadu` needs no alignment.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_f4(v: &[f32; 4]) -> __m128 {
    // SAFETY: reads exactly the 4 floats `v` borrows; `loadu` needs no alignment.
    unsafe { _mm_loadu_ps(v.as_ptr()) }
}

/// `out[r * n + t] = w[r] · x[t]` for `rows` weight rows of `A`-byte blocks and `n`
/// activation rows of `B`-byte blocks (Q8_0 when `SIGNED`, else Q8_1). `unpack` turns a
/// weight block into its 32 quants (signed bytes when `SIGNED`, else unsigned and paired
/// with a min) and its `[d, m]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_legacy<const A: usize, const B: usize, const SIGNED: bool>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    unpack: impl Fn(&[u8; A]) -> (__m256i, __m128),
) {
    if rows == 0 || n == 0 {
        return;
    }
    let rb = w.len() / rows;
    let nb = rb / A;
    let xb = x.len() / n;
    assert!(rb * rows == w.len() && nb * A == rb && xb * n == x.len() && xb >= nb * B);
    assert!(out.len() == rows * n);
    let chunk = (CHUNK_BYTES / xb.max(1)).max(RN).next_multiple_of(RN);
    UNPACKED.with_borrow_mut(|buf| {
        let zero = WBlock {
            q: [[0; 32]; RM],
            d: [[0.0; 8]; RM],
        };
        buf.blocks.resize(nb, zero);
        buf.mins.resize(nb, [0.0; RM]);
        let act = |t: usize| x[t * xb..t * xb + nb * B].as_chunks::<B>().0;
        for t0 in (0..n).step_by(chunk) {
            let t1 = (t0 + chunk).min(n);
            for r in (0..rows).step_by(RM) {
                // Rows past the end (rm < RM) keep stale values; their results are dropped.
                let rm = RM.min(rows - r);
                for i in 0..rm {
                    let row = w[(r + i) * rb..(r + i + 1) * rb].as_chunks::<A>().0;
                    for ((blk, wb), m) in row.iter().zip(&mut buf.blocks).zip(&mut buf.mins) {
                        let (v, s) = unpack(blk);
                        st(&mut wb.q[i], v);
                        wb.d[i] = [_mm_cvtss_f32(s); 8];
                        m[i] = lane1(s);
                    }
                }
                let mut t = t0;
                while t < t1 {
                    // Edge tiles repeat the last token; those results are dropped.
                    let rn = RN.min(t1 - t);
                    let xs: [&[[u8; B]]; RN] = std::array::from_fn(|j| act(t + j.min(rn - 1)));
                    let sums = tile::<B, SIGNED, RN>(&buf.blocks, &xs);
                    let mins = if SIGNED {
                        [_mm_setzero_ps(); RN]
                    } else {
                        mins::<B, RN>(&buf.mins, &xs)
                    };
                    for j in 0..rn {
                        let mut m = [0.0f32; 4];
                        if !SIGNED {
                            st_f4(&mut m, mins[j]);
                        }
                        for i in 0..rm {
                            out[(r + i) * n + t + j] = hsum_ps(sums[i][j]) + m[i];
                        }
                    }
                    t += rn;
                }
            }
        }
    });
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn st_f4(dst: &mut [f32; 4], v: __m128) {
    // SAFETY: writes exactly the 4 floats `dst` borrows mutably; no alignment needed.
    unsafe { _mm_storeu_ps(dst.as_mut_ptr(), v) }
}

/// The `RM x N` lane accumulators of a row group and `N` activation rows.
#[inline]
#[allow(clippy::needless_range_loop)] // (i, j) index several arrays at once
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<const B: usize, const SIGNED: bool, const N: usize>(
    ws: &[WBlock],
    xs: &[&[[u8; B]]; N],
) -> [[__m256; N]; RM] {
    let mut acc = [[_mm256_setzero_ps(); N]; RM];
    for (b, wb) in ws.iter().enumerate() {
        let mut y = [_mm256_setzero_si256(); N];
        let mut dx = [_mm256_setzero_ps(); N];
        for j in 0..N {
            let blk = &xs[j][b];
            y[j] = ld256(at(blk, B - 32));
            dx[j] = _mm256_set1_ps(h2f(at(blk, 0)));
        }
        for i in 0..RM {
            let q = ld256(&wb.q[i]);
            let dw = ld_f8(&wb.d[i]);
            if SIGNED {
                let aq = _mm256_abs_epi8(q);
                for j in 0..N {
                    let p = sum_pairs(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(y[j], q)));
                    let d = _mm256_mul_ps(dw, dx[j]);
                    acc[i][j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[i][j]);
                }
            } else {
                for j in 0..N {
                    let p = sum_pairs(_mm256_maddubs_epi16(q, y[j]));
                    let d = _mm256_mul_ps(dw, dx[j]);
                    acc[i][j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[i][j]);
                }
            }
        }
    }
    acc
}

/// Q8_1 activations: `Σ_b m[b][i] * s_j[b]` in block order, the rows in the lanes (the
/// single-row kernels' separate min sum, the same f32 operations).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mins<const B: usize, const N: usize>(ms: &[[f32; RM]], xs: &[&[[u8; B]]; N]) -> [__m128; N] {
    std::array::from_fn(|j| {
        let mut acc = _mm_setzero_ps();
        for (m, blk) in ms.iter().zip(xs[j].iter()) {
            let s = _mm_set1_ps(lane1(h2f2(at(blk, 0))));
            acc = _mm_add_ps(acc, _mm_mul_ps(ld_f4(m), s));
        }
        acc
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    gemm_legacy::<Q80, Q80, true>(w, rows, x, n, out, |a| (ld256(at(a, 2)), h2f2(at(a, 0))))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    gemm_legacy::<{ BlockQ4_0::SIZE }, Q80, true>(w, rows, x, n, out, |a| {
        let q = _mm256_sub_epi8(nibbles(at(a, 2)), _mm256_set1_epi8(8));
        (q, h2f2(at(a, 0)))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    gemm_legacy::<{ BlockQ5_0::SIZE }, Q80, true>(w, rows, x, n, out, |a| {
        let hi = bit_mask(u32::from_le_bytes(*at(a, 2)));
        let q = _mm256_sub_epi8(
            nibbles(at(a, 6)),
            _mm256_andnot_si256(hi, _mm256_set1_epi8(0x10)),
        );
        (q, h2f2(at(a, 0)))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn iq4_nl_gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    let table = iq4_table();
    gemm_legacy::<{ BlockIq4Nl::SIZE }, Q80, true>(w, rows, x, n, out, |a| {
        (
            _mm256_shuffle_epi8(table, nibbles(at(a, 2))),
            h2f2(at(a, 0)),
        )
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    gemm_legacy::<{ BlockQ4_1::SIZE }, Q81, false>(w, rows, x, n, out, |a| {
        (nibbles(at(a, 4)), h2f2(at(a, 0)))
    })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1_gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    gemm_legacy::<{ BlockQ5_1::SIZE }, Q81, false>(w, rows, x, n, out, |a| {
        let hi = bit_mask(u32::from_le_bytes(*at(a, 4)));
        let q = _mm256_or_si256(
            nibbles(at(a, 8)),
            _mm256_and_si256(hi, _mm256_set1_epi8(0x10)),
        );
        (q, h2f2(at(a, 0)))
    })
}

macro_rules! safe_gemm {
    ($($name:ident => $imp:ident),* $(,)?) => {$(
        fn $name(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
            // These fns are reachable only through `gemm_fn`, which `simd::gemm_fn_for`
            // calls after detecting the features.
            // SAFETY: the CPU has AVX2, FMA and F16C (checked before handing this fn out).
            unsafe { $imp(w, rows, x, n, out) }
        }
    )*};
}

safe_gemm! {
    gemm_q4_0 => q4_0_gemm,
    gemm_q4_1 => q4_1_gemm,
    gemm_q5_0 => q5_0_gemm,
    gemm_q5_1 => q5_1_gemm,
    gemm_q8_0 => q8_0_gemm,
    gemm_iq4_nl => iq4_nl_gemm,
}

/// The AVX2 matrix-product tile kernel for a weight type. Only `simd::gemm_fn_for` may
/// call this, after the same checks as for `dot_fn`.
pub(in crate::quant::simd) fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
    use GgmlType::*;
    Some(match ty {
        Q4_0 => gemm_q4_0,
        Q4_1 => gemm_q4_1,
        Q5_0 => gemm_q5_0,
        Q5_1 => gemm_q5_1,
        Q8_0 => gemm_q8_0,
        Iq4Nl => gemm_iq4_nl,
        _ => return None,
    })
}
