//! Matrix-product tiles for the float formats (F32, F16, BF16: `float.rs`) and the legacy
//! 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
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

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::float::{float_gemm, BF16, F16, F32};
use super::helpers::*;
use super::kquants::{bcast_scale, bsums, k4_scales, q4k_group, q5k_group, q6k_half, Q8K, YQ};
use super::legacy::{Q80, Q81};
use crate::quant::blocks::{
    BlockIq4Nl, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
};
use crate::quant::dot::GemmFn;
use crate::quant::GgmlType;

/// Weight rows unpacked together (each of the `RM x RN` products keeps an accumulator).
const RM: usize = 4;
/// Activation rows per tile.
const RN: usize = 2;
/// Activation bytes one sweep over a row group reads (kept within L2).
const CHUNK_BYTES: usize = 128 * 1024;

/// One block of a row group, unpacked: the quants of its `RM` rows, their scales `d`
/// repeated across a vector (so the tile multiplies by them straight from L1) and their
/// mins (unsigned formats only).
#[derive(Clone, Copy)]
struct LegacyBlock {
    q: [[u8; 32]; RM],
    /// `|q|` (signed formats: the unsigned operand of `maddubs`).
    aq: [[u8; 32]; RM],
    d: [[f32; 8]; RM],
    m: [f32; RM],
}

const LEGACY_ZERO: LegacyBlock = LegacyBlock {
    q: [[0; 32]; RM],
    aq: [[0; 32]; RM],
    d: [[0.0; 8]; RM],
    m: [0.0; RM],
};

thread_local! {
    /// Each thread's unpacked row group (grown to the widest matrix seen).
    static LEGACY: RefCell<Vec<LegacyBlock>> = const { RefCell::new(Vec::new()) };
    static KQUANT: RefCell<Vec<KBlock>> = const { RefCell::new(Vec::new()) };
    /// The activation scales of a call, as f32 (token-major).
    static DX: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn st_f4(dst: &mut [f32; 4], v: __m128) {
    // SAFETY: writes exactly the 4 floats `dst` borrows mutably; no alignment needed.
    unsafe { _mm_storeu_ps(dst.as_mut_ptr(), v) }
}

/// The loop around the tiles: `out[r * step.0 + t * step.1] = w[r] · x[t]` for `rows` weight rows of
/// `A`-byte blocks and `n` activation rows of `B`-byte blocks. Rows are taken `RM` at a
/// time and unpacked into `buf` (`unpack(i, block, unpacked)` fills row i's part), then
/// `tile` computes their products with `RN` activation rows at a time; activation rows
/// are swept in chunks that stay in L2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
fn drive<W: Copy + 'static, const A: usize, const B: usize>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
    buf: &'static std::thread::LocalKey<RefCell<Vec<W>>>,
    zero: W,
    unpack: impl Fn(usize, &[u8; A], &mut W),
    tile: impl Fn(&[W], &[&[[u8; B]]; RN], [usize; RN]) -> [[f32; RN]; RM],
) {
    if rows == 0 || n == 0 {
        return;
    }
    let rb = w.len() / rows;
    let nb = rb / A;
    let xb = x.len() / n;
    assert!(rb * rows == w.len() && nb * A == rb && xb * n == x.len() && xb >= nb * B);
    assert!(out.len() > (rows - 1) * step.0 + (n - 1) * step.1);
    let chunk = (CHUNK_BYTES / xb.max(1)).max(RN).next_multiple_of(RN);
    buf.with_borrow_mut(|buf| {
        buf.resize(nb, zero);
        let act = |t: usize| x[t * xb..t * xb + nb * B].as_chunks::<B>().0;
        for t0 in (0..n).step_by(chunk) {
            let t1 = (t0 + chunk).min(n);
            for r in (0..rows).step_by(RM) {
                // Rows past the end (rm < RM) keep stale values; their results are dropped.
                let rm = RM.min(rows - r);
                for i in 0..rm {
                    let row = w[(r + i) * rb..(r + i + 1) * rb].as_chunks::<A>().0;
                    for (blk, wb) in row.iter().zip(buf.iter_mut()) {
                        unpack(i, blk, wb);
                    }
                }
                let mut t = t0;
                while t < t1 {
                    // Edge tiles repeat the last token; those results are dropped.
                    let rn = RN.min(t1 - t);
                    let ts: [usize; RN] = std::array::from_fn(|j| t + j.min(rn - 1));
                    let xs: [&[[u8; B]]; RN] = ts.map(act);
                    let sums = tile(buf, &xs, ts);
                    for (i, s) in sums.iter().enumerate().take(rm) {
                        for (j, v) in s.iter().enumerate().take(rn) {
                            out[(r + i) * step.0 + (t + j) * step.1] = *v;
                        }
                    }
                    t += rn;
                }
            }
        }
    });
}

/// A legacy format: Q8_0 activations when `SIGNED`, else Q8_1. `unpack` turns a weight
/// block into its 32 quants (signed bytes when `SIGNED`, else unsigned and paired with a
/// min) and its `[d, m]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_legacy<const A: usize, const B: usize, const SIGNED: bool>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
    unpack: impl Fn(&[u8; A]) -> (__m256i, __m128),
) {
    // The activation scales as f32, once per call (the tiles read each many times).
    let nb = w.len().checked_div(rows).unwrap_or(0) / A;
    DX.with_borrow_mut(|dx| {
        dx.clear();
        for t in 0..n {
            let xb = x.len() / n;
            for blk in x[t * xb..t * xb + nb * B].as_chunks::<B>().0 {
                dx.push(_mm_cvtss_f32(h2f2(at(blk, 0))));
            }
        }
        let dx = &dx[..];
        drive::<LegacyBlock, A, B>(
            w,
            rows,
            x,
            n,
            out,
            step,
            &LEGACY,
            LEGACY_ZERO,
            |i, blk, wb| {
                let (v, s) = unpack(blk);
                st(&mut wb.q[i], v);
                if SIGNED {
                    st(&mut wb.aq[i], _mm256_abs_epi8(v));
                }
                wb.d[i] = [_mm_cvtss_f32(s); 8];
                wb.m[i] = lane1(s);
            },
            |ws, xs, ts| {
                let dxs = ts.map(|t| &dx[t * nb..(t + 1) * nb]);
                let sums = tile::<B, SIGNED, RN>(ws, xs, &dxs);
                let mins = if SIGNED {
                    [_mm_setzero_ps(); RN]
                } else {
                    mins::<B, RN>(ws, xs)
                };
                let mut o = [[0.0f32; RN]; RM];
                for (j, m) in mins.iter().enumerate() {
                    let mut mj = [0.0f32; RM];
                    st_f4(&mut mj, *m);
                    for i in 0..RM {
                        // The single-row kernels' `hsum(acc) + mins`.
                        o[i][j] = hsum_ps(sums[i][j]) + if SIGNED { 0.0 } else { mj[i] };
                    }
                }
                o
            },
        )
    })
}

/// The `RM x N` lane accumulators of a row group and `N` activation rows.
#[inline]
#[allow(clippy::needless_range_loop)] // (i, j) index several arrays at once
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<const B: usize, const SIGNED: bool, const N: usize>(
    ws: &[LegacyBlock],
    xs: &[&[[u8; B]]; N],
    dxs: &[&[f32]; N],
) -> [[__m256; N]; RM] {
    // Even and odd blocks in separate accumulators, as `legacy_dot` does.
    let mut acc = [[[_mm256_setzero_ps(); 2]; N]; RM];
    for (b, wb) in ws.iter().enumerate() {
        let e = b & 1;
        let mut y = [_mm256_setzero_si256(); N];
        let mut dx = [_mm256_setzero_ps(); N];
        for j in 0..N {
            let blk = &xs[j][b];
            y[j] = ld256(at(blk, B - 32));
            dx[j] = _mm256_set1_ps(dxs[j][b]);
        }
        for i in 0..RM {
            let q = ld256(&wb.q[i]);
            let dw = ld_f8(&wb.d[i]);
            if SIGNED {
                let aq = ld256(&wb.aq[i]);
                for j in 0..N {
                    let p = sum_pairs(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(y[j], q)));
                    let d = _mm256_mul_ps(dw, dx[j]);
                    acc[i][j][e] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[i][j][e]);
                }
            } else {
                for j in 0..N {
                    let p = sum_pairs(_mm256_maddubs_epi16(q, y[j]));
                    let d = _mm256_mul_ps(dw, dx[j]);
                    acc[i][j][e] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[i][j][e]);
                }
            }
        }
    }
    acc.map(|r| r.map(|a| _mm256_add_ps(a[0], a[1])))
}

/// Q8_1 activations: `Σ_b m[b][i] * s_j[b]` in block order, the rows in the lanes (the
/// single-row kernels' separate min sum, the same f32 operations).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mins<const B: usize, const N: usize>(ws: &[LegacyBlock], xs: &[&[[u8; B]]; N]) -> [__m128; N] {
    std::array::from_fn(|j| {
        let mut acc = [_mm_setzero_ps(); 2];
        for (k, (wb, blk)) in ws.iter().zip(xs[j].iter()).enumerate() {
            let s = _mm_set1_ps(lane1(h2f2(at(blk, 0))));
            acc[k & 1] = _mm_add_ps(acc[k & 1], _mm_mul_ps(ld_f4(&wb.m), s));
        }
        _mm_add_ps(acc[0], acc[1])
    })
}

/// Defines each tile kernel twice: `$imp`, the `#[target_feature]` body over the
/// arguments named first (those of [`GemmFn`]), and `$safe`, the safe wrapper `gemm_fn`
/// hands out.
macro_rules! gemm_kernels {
    (
        ($w:ident, $rows:ident, $x:ident, $n:ident, $out:ident, $step:ident)
        $($safe:ident => $imp:ident $body:block)*
    ) => {$(
        /// # Safety
        /// The CPU must support AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $imp(
            $w: &[u8],
            $rows: usize,
            $x: &[u8],
            $n: usize,
            $out: &mut [f32],
            $step: (usize, usize),
        ) $body

        fn $safe(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32], step: (usize, usize)) {
            // Reachable only through `gemm_fn`, which `simd::gemm_fn_for` calls after
            // detecting the features.
            // SAFETY: the CPU has AVX2, FMA and F16C (checked before handing this fn out).
            unsafe { $imp(w, rows, x, n, out, step) }
        }
    )*};
}

gemm_kernels! {
    (w, rows, x, n, out, step)
    gemm_f32 => f32_gemm { float_gemm::<F32>(w, rows, x, n, out, step) }
    gemm_f16 => f16_gemm { float_gemm::<F16>(w, rows, x, n, out, step) }
    gemm_bf16 => bf16_gemm { float_gemm::<BF16>(w, rows, x, n, out, step) }
    gemm_q8_0 => q8_0_gemm {
        gemm_legacy::<Q80, Q80, true>(w, rows, x, n, out, step, |a| {
            (ld256(at(a, 2)), h2f2(at(a, 0)))
        })
    }
    gemm_q4_0 => q4_0_gemm {
        gemm_legacy::<{ BlockQ4_0::SIZE }, Q80, true>(w, rows, x, n, out, step, |a| {
            let q = _mm256_sub_epi8(nibbles(at(a, 2)), _mm256_set1_epi8(8));
            (q, h2f2(at(a, 0)))
        })
    }
    gemm_q5_0 => q5_0_gemm {
        gemm_legacy::<{ BlockQ5_0::SIZE }, Q80, true>(w, rows, x, n, out, step, |a| {
            let hi = bit_mask(u32::from_le_bytes(*at(a, 2)));
            let q = _mm256_sub_epi8(
                nibbles(at(a, 6)),
                _mm256_andnot_si256(hi, _mm256_set1_epi8(0x10)),
            );
            (q, h2f2(at(a, 0)))
        })
    }
    gemm_iq4_nl => iq4_nl_gemm {
        let table = iq4_table();
        gemm_legacy::<{ BlockIq4Nl::SIZE }, Q80, true>(w, rows, x, n, out, step, |a| {
            (
                _mm256_shuffle_epi8(table, nibbles(at(a, 2))),
                h2f2(at(a, 0)),
            )
        })
    }
    gemm_q4_1 => q4_1_gemm {
        gemm_legacy::<{ BlockQ4_1::SIZE }, Q81, false>(w, rows, x, n, out, step, |a| {
            (nibbles(at(a, 4)), h2f2(at(a, 0)))
        })
    }
    gemm_q5_1 => q5_1_gemm {
        gemm_legacy::<{ BlockQ5_1::SIZE }, Q81, false>(w, rows, x, n, out, step, |a| {
            let hi = bit_mask(u32::from_le_bytes(*at(a, 4)));
            let q = _mm256_or_si256(
                nibbles(at(a, 8)),
                _mm256_and_si256(hi, _mm256_set1_epi8(0x10)),
            );
            (q, h2f2(at(a, 0)))
        })
    }
}

// ---------------------------------------------------------------------------------------
// K-quants (Q8_K activations): 256-element super-blocks.

/// One super-block of a row group, unpacked.
#[derive(Clone, Copy)]
struct KBlock {
    /// Per row, 8 vectors of 32 unsigned quants; vector k pairs with activation quants
    /// 32k..32k + 32.
    q: [[[u8; 32]; 8]; RM],
    /// Per row and vector, the i16 scales `madd` multiplies the pair sums by (one per
    /// 128-bit lane for Q6_K's 16-element sub-blocks).
    sc: [[[u8; 32]; 8]; RM],
    /// Per row, the 16 i16 multipliers of the activation's group sums `bsums`: the
    /// sub-block mins (Q4_K, Q5_K: each twice) or the scales (Q6_K: the -32 offset).
    mb: [[u8; 32]; RM],
    /// Per row, `[d, dmin]` (dmin unused for Q6_K).
    d: [[f32; 2]; RM],
}

const K_ZERO: KBlock = KBlock {
    q: [[[0; 32]; 8]; RM],
    sc: [[[0; 32]; 8]; RM],
    mb: [[0; 32]; RM],
    d: [[0.0; 2]; RM],
};

/// The 8 mins of Q4_K/Q5_K (bytes of a u64) as 16 i16 lanes, each twice (for `bsums`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_min_vec(mins: u64) -> __m256i {
    let m = _mm_cvtsi64_si128(mins as i64);
    _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m))
}

/// A K-quant format: `MINS` for Q4_K/Q5_K (`w = d * sc * q - dmin * m`), else Q6_K
/// (`w = d * sc * (q - 32)`). `unpack` fills one row's part of a [`KBlock`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_k<const A: usize, const MINS: bool>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
    unpack: impl Fn(usize, &[u8; A], &mut KBlock),
) {
    drive::<KBlock, A, Q8K>(
        w,
        rows,
        x,
        n,
        out,
        step,
        &KQUANT,
        K_ZERO,
        unpack,
        |ws, xs, _| tile_k::<MINS>(ws, xs),
    )
}

/// The `RM x RN` products of a row group over its super-blocks: the same per-super-block
/// integer sums, scale products and float operations as the single-row kernels.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::needless_range_loop)] // (i, j) index several arrays at once
fn tile_k<const MINS: bool>(ws: &[KBlock], xs: &[&[[u8; Q8K]]; RN]) -> [[f32; RN]; RM] {
    let mut acc = [[_mm256_setzero_ps(); RN]; RM];
    for (b, kb) in ws.iter().enumerate() {
        let xb: [&[u8; Q8K]; RN] = std::array::from_fn(|j| &xs[j][b]);
        let mut sumi = [[_mm256_setzero_si256(); RN]; RM];
        for k in 0..8 {
            let y: [__m256i; RN] = std::array::from_fn(|j| ld256(at(xb[j], YQ + 32 * k)));
            for i in 0..RM {
                let q = ld256(&kb.q[i][k]);
                let sc = ld256(&kb.sc[i][k]);
                for j in 0..RN {
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y[j]), sc);
                    sumi[i][j] = _mm256_add_epi32(sumi[i][j], p);
                }
            }
        }
        for j in 0..RN {
            let yd = f32_le(at(xb[j], 0));
            let bs = bsums(xb[j]);
            for i in 0..RM {
                let corr = _mm256_madd_epi16(ld256(&kb.mb[i]), bs);
                let [dw, dmin] = kb.d[i];
                if MINS {
                    let d = _mm256_set1_ps(yd * dw);
                    let dm = _mm256_set1_ps(yd * dmin);
                    acc[i][j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi[i][j]), acc[i][j]);
                    acc[i][j] = _mm256_fnmadd_ps(dm, _mm256_cvtepi32_ps(corr), acc[i][j]);
                } else {
                    let s = _mm256_sub_epi32(sumi[i][j], _mm256_slli_epi32::<5>(corr));
                    let d = _mm256_set1_ps(yd * dw);
                    acc[i][j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[i][j]);
                }
            }
        }
    }
    acc.map(|r| r.map(|v| hsum_ps(v)))
}

/// Stores Q4_K/Q5_K's scales, mins and `[d, dmin]` for row `i`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_unpack_scales(i: usize, a: &[u8], kb: &mut KBlock) {
    let (scales, mins) = k4_scales(at(a, 4));
    for k in 0..8 {
        st(&mut kb.sc[i][k], bcast_scale(scales, k));
    }
    st(&mut kb.mb[i], k4_min_vec(mins));
    let dm = h2f2(at(a, 0));
    kb.d[i] = [_mm_cvtss_f32(dm), lane1(dm)];
}

gemm_kernels! {
    (w, rows, x, n, out, step)
    gemm_q4_k => q4_k_gemm {
        gemm_k::<{ BlockQ4K::SIZE }, true>(w, rows, x, n, out, step, |i, a, kb| {
            k4_unpack_scales(i, a, kb);
            for g in 0..4 {
                let [lo, hi] = q4k_group(a, g);
                st(&mut kb.q[i][2 * g], lo);
                st(&mut kb.q[i][2 * g + 1], hi);
            }
        })
    }
    gemm_q5_k => q5_k_gemm {
        gemm_k::<{ BlockQ5K::SIZE }, true>(w, rows, x, n, out, step, |i, a, kb| {
            k4_unpack_scales(i, a, kb);
            for g in 0..4 {
                let [lo, hi] = q5k_group(a, g);
                st(&mut kb.q[i][2 * g], lo);
                st(&mut kb.q[i][2 * g + 1], hi);
            }
        })
    }
    gemm_q6_k => q6_k_gemm {
        gemm_k::<{ BlockQ6K::SIZE }, false>(w, rows, x, n, out, step, |i, a, kb| {
            let sc = ld128(at(a, 192));
            for h in 0..2 {
                let q = q6k_half(a, h);
                for (k, qk) in q.into_iter().enumerate() {
                    st(&mut kb.q[i][4 * h + k], qk);
                    st(&mut kb.sc[i][4 * h + k], scale_pair(sc, 8 * h + 2 * k));
                }
            }
            st(&mut kb.mb[i], _mm256_cvtepi8_epi16(sc));
            // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
            kb.d[i] = [lane1(h2f2(at(a, 206))), 0.0];
        })
    }
}

/// The AVX2 matrix-product tile kernel for a weight type. Only `simd::gemm_fn_for` may
/// call this, after the same checks as for `dot_fn`.
pub(in crate::quant::simd) fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => gemm_f32,
        F16 => gemm_f16,
        Bf16 => gemm_bf16,
        Q4_0 => gemm_q4_0,
        Q4_1 => gemm_q4_1,
        Q5_0 => gemm_q5_0,
        Q5_1 => gemm_q5_1,
        Q8_0 => gemm_q8_0,
        Iq4Nl => gemm_iq4_nl,
        Q4K => gemm_q4_k,
        Q5K => gemm_q5_k,
        Q6K => gemm_q6_k,
        _ => return None,
    })
}
