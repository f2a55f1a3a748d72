//! Matrix-product tiles of the AVX-512 set: the legacy 32-element formats (Q4_0, Q4_1,
//! Q5_0, Q5_1, Q8_0, IQ4_NL) and Q4_K, Q5_K, Q6_K. Float weights use AVX2's tiles.
//!
//! As in AVX2's `gemm`: `RM` weight rows are unpacked once into an L1-resident buffer
//! and multiplied with `RN` activation rows at a time from registers. In addition the
//! activation rows of a chunk (kept within L2) are prepared once per call: for the legacy
//! formats each block pair's 64 quants, `-OFF * Σ y` per 4 bytes (so one `vpdpbusd` into
//! it gives a lane's exact integer sum) and the f16 scales as f32 lanes.
//!
//! Bit-identical to the single-row kernels (`legacy`, `kquants`): for each (row, token)
//! the same i32 lanes, the same f32 scale products, the same fused multiply-adds in block
//! order and the same horizontal sums. The K-quant tiles run the float code of two tokens
//! in one 512-bit vector (one per half), each half exactly the single-row kernel's
//! 256-bit operations.

use std::arch::x86_64::*;
use std::cell::RefCell;
use std::thread::LocalKey;

use super::helpers::*;
use super::kquants::{k4_min_vec, q4k_unpack, q5k_unpack, q6k_unpack, KVecs, Q4K, Q5K, Q6K};
use super::legacy::*;
use crate::quant::dot::GemmFn;
use crate::quant::simd::avx2::kquants::{bsums, k4_scales, Q8K, YQ};
use crate::quant::GgmlType;

/// Weight rows unpacked together.
const RM: usize = 4;
/// Activation rows per tile (the K-quant tiles take them in pairs).
const RN: usize = 4;
/// Prepared activation bytes one sweep over a row group reads (kept within L2).
const CHUNK_BYTES: usize = 192 * 1024;

/// The loop around the tiles: `out[r * step.0 + t * step.1] = w[r] · x[t]` for `rows`
/// weight rows and `n` activation rows. Activation rows are prepared `chunk` at a time
/// (`pack(t, units)` fills token t's `xu` units), weight rows `RM` at a time
/// (`unpack(r, i, units)` fills row r's part i of the `wu` units), and `tile` computes a
/// row group's products with `RN` prepared activation rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn drive<W: Copy + 'static, X: Copy + 'static>(
    (rows, n, out, step): (usize, usize, &mut [f32], (usize, usize)),
    (wu, wbuf, wzero): (usize, &'static LocalKey<RefCell<Vec<W>>>, W),
    (xu, xbuf, xzero): (usize, &'static LocalKey<RefCell<Vec<X>>>, X),
    unpack: impl Fn(usize, usize, &mut [W]),
    pack: impl Fn(usize, &mut [X]),
    tile: impl Fn(&[W], [&[X]; RN]) -> [[f32; RN]; RM],
) {
    if rows == 0 || n == 0 {
        return;
    }
    assert!(out.len() > (rows - 1) * step.0 + (n - 1) * step.1);
    let per_token = (xu * size_of::<X>()).max(1);
    let chunk = (CHUNK_BYTES / per_token).max(RN).next_multiple_of(RN);
    wbuf.with_borrow_mut(|wb| {
        xbuf.with_borrow_mut(|xb| {
            wb.resize(wu, wzero);
            xb.resize(xu * chunk.min(n.next_multiple_of(RN)), xzero);
            for t0 in (0..n).step_by(chunk) {
                let t1 = (t0 + chunk).min(n);
                for t in t0..t1 {
                    pack(t, &mut xb[(t - t0) * xu..(t - t0 + 1) * xu]);
                }
                let act = |t: usize| &xb[(t - t0) * xu..(t - t0 + 1) * xu];
                for r in (0..rows).step_by(RM) {
                    // Rows past the end (rm < RM) keep stale values; their results are
                    // dropped.
                    let rm = RM.min(rows - r);
                    for i in 0..rm {
                        unpack(r + i, i, wb);
                    }
                    let mut t = t0;
                    while t < t1 {
                        // Edge tiles repeat the last token; those results are dropped.
                        let rn = RN.min(t1 - t);
                        let ts: [usize; RN] = std::array::from_fn(|j| t + j.min(rn - 1));
                        let sums = tile(wb, ts.map(act));
                        for (i, s) in sums.iter().enumerate().take(rm) {
                            for (j, v) in s.iter().enumerate().take(rn) {
                                out[(r + i) * step.0 + (t + j) * step.1] = *v;
                            }
                        }
                        t += rn;
                    }
                }
            }
        })
    });
}

// ---------------------------------------------------------------------------------------
// Legacy formats: units are block pairs.

/// A block pair of a row group: the unsigned quants, `[dw0; 8] ++ [dw1; 8]` and the mins
/// (Q4_1, Q5_1) of blocks 0 and 1, rows in lanes.
#[derive(Clone, Copy)]
struct WPair {
    u: [[u8; 64]; RM],
    d: [[f32; 16]; RM],
    m: [[f32; RM]; 2],
}

const WPAIR_ZERO: WPair = WPair {
    u: [[0; 64]; RM],
    d: [[0.0; 16]; RM],
    m: [[0.0; RM]; 2],
};

/// A block pair of an activation row: quants, `-OFF * Σ y` per 4 bytes,
/// `[dx0; 8] ++ [dx1; 8]` and Q8_1's `[s0, s1]`.
#[derive(Clone, Copy)]
struct XPair {
    y: [u8; 64],
    c: [i32; 16],
    dx: [f32; 16],
    s: [f32; 2],
}

const XPAIR_ZERO: XPair = XPair {
    y: [0; 64],
    c: [0; 16],
    dx: [0.0; 16],
    s: [0.0; 2],
};

thread_local! {
    static WPAIRS: RefCell<Vec<WPair>> = const { RefCell::new(Vec::new()) };
    static XPAIRS: RefCell<Vec<XPair>> = const { RefCell::new(Vec::new()) };
    static KSBS: RefCell<Vec<KSb>> = const { RefCell::new(Vec::new()) };
    static XKS: RefCell<Vec<[u8; Q8K]>> = const { RefCell::new(Vec::new()) };
}

/// Block pair `p` of a row of blocks (an odd last block paired with a zero block, as the
/// single-row kernels do).
#[inline(always)]
fn pair_of<'a, const S: usize>(
    row: &'a [[u8; S]],
    p: usize,
    zero: &'a [u8; S],
) -> (&'a [u8; S], &'a [u8; S]) {
    (&row[2 * p], row.get(2 * p + 1).unwrap_or(zero))
}

/// A legacy format (`A`-byte weight blocks, `B`-byte activation blocks, offset `OFF`;
/// `MINS` with Q8_1 activations).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn gemm_legacy<const A: usize, const B: usize, const OFF: u8, const MINS: bool>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
    unpack: impl Fn(&[u8; A], &[u8; A]) -> __m512i,
) {
    if rows == 0 || n == 0 {
        return;
    }
    let rb = w.len() / rows;
    let nb = rb / A;
    let xb = x.len() / n;
    assert!(rb * rows == w.len() && nb * A == rb && xb * n == x.len() && xb >= nb * B);
    let np = nb.div_ceil(2);
    let (wz, xz) = ([0u8; A], [0u8; B]);
    drive(
        (rows, n, out, step),
        (np, &WPAIRS, WPAIR_ZERO),
        (np, &XPAIRS, XPAIR_ZERO),
        |r, i, units: &mut [WPair]| {
            let row = w[r * rb..(r + 1) * rb].as_chunks::<A>().0;
            for (p, wp) in units.iter_mut().enumerate() {
                let (a0, a1) = pair_of(row, p, &wz);
                st512(&mut wp.u[i], unpack(a0, a1));
                let dm = h2f4x2(at(a0, 0), at(a1, 0));
                st_f16x(&mut wp.d[i], spread04(dm));
                wp.m[0][i] = lane1(_mm256_castps256_ps128(dm));
                wp.m[1][i] = lane1(_mm256_extractf128_ps::<1>(dm));
            }
        },
        |t, units: &mut [XPair]| {
            let row = x[t * xb..t * xb + nb * B].as_chunks::<B>().0;
            for (p, xp) in units.iter_mut().enumerate() {
                let (b0, b1) = pair_of(row, p, &xz);
                let y = act_pair::<B>(b0, b1);
                st512(&mut xp.y, y);
                let c = if OFF == 0 {
                    _mm512_setzero_si512()
                } else {
                    _mm512_sub_epi32(
                        _mm512_setzero_si512(),
                        dpbusd(_mm512_set1_epi8(OFF as i8), y),
                    )
                };
                st_i16x(&mut xp.c, c);
                let ds = h2f4x2(at(b0, 0), at(b1, 0));
                st_f16x(&mut xp.dx, spread04(ds));
                xp.s = [
                    lane1(_mm256_castps256_ps128(ds)),
                    lane1(_mm256_extractf128_ps::<1>(ds)),
                ];
            }
        },
        |ws, xs| tile_legacy::<MINS>(ws, xs),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn ld_f4(v: &[f32; 4]) -> __m128 {
    // SAFETY: reads exactly the 4 floats `v` borrows; `loadu` needs no alignment.
    unsafe { _mm_loadu_ps(v.as_ptr()) }
}

/// The `RM x RN` products of a row group: per block pair and (row, token) one
/// `vpdpbusd` into the activation's offset correction, the scale product and one fused
/// multiply-add, as `legacy_dot` does for one row.
#[inline]
#[allow(clippy::needless_range_loop)] // (i, j) index several arrays at once
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn tile_legacy<const MINS: bool>(ws: &[WPair], xs: [&[XPair]; RN]) -> [[f32; RN]; RM] {
    let mut acc = [[_mm512_setzero_ps(); RN]; RM];
    for (p, wp) in ws.iter().enumerate() {
        let xp: [&XPair; RN] = std::array::from_fn(|j| &xs[j][p]);
        let y = xp.map(|v| ld512(&v.y));
        let dx = xp.map(|v| ld_f16x(&v.dx));
        for i in 0..RM {
            let u = ld512(&wp.u[i]);
            let dw = ld_f16x(&wp.d[i]);
            for j in 0..RN {
                let s = _mm512_dpbusd_epi32(ld_i16x(&xp[j].c), u, y[j]);
                let d = _mm512_mul_ps(dw, dx[j]);
                acc[i][j] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[i][j]);
            }
        }
    }
    let mut o = acc.map(|r| r.map(|a| hsum512(a)));
    if MINS {
        for j in 0..RN {
            // Σ m * s over even and over odd blocks, rows in lanes, then their sum.
            let (mut even, mut odd) = (_mm_setzero_ps(), _mm_setzero_ps());
            for (wp, xp) in ws.iter().zip(xs[j]) {
                even = _mm_add_ps(even, _mm_mul_ps(ld_f4(&wp.m[0]), _mm_set1_ps(xp.s[0])));
                odd = _mm_add_ps(odd, _mm_mul_ps(ld_f4(&wp.m[1]), _mm_set1_ps(xp.s[1])));
            }
            let mut m = [0.0f32; 4];
            // SAFETY: writes exactly the 4 floats `m` borrows mutably.
            unsafe { _mm_storeu_ps(m.as_mut_ptr(), _mm_add_ps(even, odd)) };
            for i in 0..RM {
                o[i][j] += m[i];
            }
        }
    }
    o
}

// ---------------------------------------------------------------------------------------
// K-quants: units are super-blocks.

/// A super-block of a row group: per row the four quant vectors and four i16 scale
/// vectors of [`KVecs`], the i16 multipliers of the activation's `bsums` (the mins, each
/// twice, for Q4_K/Q5_K; the scales for Q6_K's -32 offset) and `[d, dmin]`.
#[derive(Clone, Copy)]
struct KSb {
    u: [[[u8; 64]; 4]; RM],
    sc: [[[u8; 64]; 4]; RM],
    mb: [[u8; 32]; RM],
    d: [[f32; 2]; RM],
}

const KSB_ZERO: KSb = KSb {
    u: [[[0; 64]; 4]; RM],
    sc: [[[0; 64]; 4]; RM],
    mb: [[0; 32]; RM],
    d: [[0.0; 2]; RM],
};

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn st256(dst: &mut [u8; 32], v: __m256i) {
    // SAFETY: writes exactly the 32 bytes `dst` borrows mutably; no alignment needed.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

/// A K-quant format: `MINS` for Q4_K/Q5_K, else Q6_K. `unpack` gives a super-block's
/// vectors, `extra` its `bsums` multipliers and `[d, dmin]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn gemm_k<const A: usize, const MINS: bool>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
    unpack: impl Fn(&[u8; A]) -> KVecs,
    extra: impl Fn(&[u8; A]) -> (__m256i, [f32; 2]),
) {
    if rows == 0 || n == 0 {
        return;
    }
    let rb = w.len() / rows;
    let nb = rb / A;
    let xb = x.len() / n;
    assert!(rb * rows == w.len() && nb * A == rb && xb * n == x.len() && xb >= nb * Q8K);
    drive(
        (rows, n, out, step),
        (nb, &KSBS, KSB_ZERO),
        (nb, &XKS, [0u8; Q8K]),
        |r, i, units: &mut [KSb]| {
            let row = w[r * rb..(r + 1) * rb].as_chunks::<A>().0;
            for (a, kb) in row.iter().zip(units.iter_mut()) {
                let (q, sc) = unpack(a);
                for k in 0..4 {
                    st512(&mut kb.u[i][k], q[k]);
                    st512(&mut kb.sc[i][k], sc[k]);
                }
                let (mb, d) = extra(a);
                st256(&mut kb.mb[i], mb);
                kb.d[i] = d;
            }
        },
        |t, units: &mut [[u8; Q8K]]| {
            let row = x[t * xb..t * xb + nb * Q8K].as_chunks::<Q8K>().0;
            units.copy_from_slice(row);
        },
        |ws, xs| tile_k::<MINS>(ws, xs),
    )
}

/// The `RM x RN` products of a row group over its super-blocks: [`super::kquants`]'
/// integer sums, then the single-row float code for two tokens at once.
#[inline]
#[allow(clippy::needless_range_loop)] // (i, j) index several arrays at once
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn tile_k<const MINS: bool>(ws: &[KSb], xs: [&[[u8; Q8K]]; RN]) -> [[f32; RN]; RM] {
    let mut acc = [[_mm512_setzero_ps(); RN / 2]; RM];
    for (b, kb) in ws.iter().enumerate() {
        let xb: [&[u8; Q8K]; RN] = std::array::from_fn(|j| &xs[j][b]);
        let mut sumi = [[_mm512_setzero_si512(); RN]; RM];
        for k in 0..4 {
            let y: [__m512i; RN] = std::array::from_fn(|j| ld512(at(xb[j], YQ + 64 * k)));
            for i in 0..RM {
                let u = ld512(&kb.u[i][k]);
                let sc = ld512(&kb.sc[i][k]);
                for j in 0..RN {
                    let p = _mm512_maddubs_epi16(u, y[j]);
                    sumi[i][j] = _mm512_dpwssd_epi32(sumi[i][j], p, sc);
                }
            }
        }
        for jp in 0..RN / 2 {
            let (x0, x1) = (xb[2 * jp], xb[2 * jp + 1]);
            let bs = join(bsums(x0), bsums(x1));
            let yd = _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_set1_ps(f32_le(at(x0, 0))))),
                _mm256_castps_pd(_mm256_set1_ps(f32_le(at(x1, 0)))),
            ));
            for i in 0..RM {
                let (s0, s1) = (sumi[i][2 * jp], sumi[i][2 * jp + 1]);
                // [fold(s0), fold(s1)]
                let f = _mm512_add_epi32(
                    _mm512_shuffle_i64x2::<0b01_00_01_00>(s0, s1),
                    _mm512_shuffle_i64x2::<0b11_10_11_10>(s0, s1),
                );
                let mb = _mm512_broadcast_i64x4(ld256(&kb.mb[i]));
                let corr = _mm512_madd_epi16(mb, bs);
                let [dw, dmin] = kb.d[i];
                let a = &mut acc[i][jp];
                let d = _mm512_mul_ps(yd, _mm512_set1_ps(dw));
                if MINS {
                    let dm = _mm512_mul_ps(yd, _mm512_set1_ps(dmin));
                    *a = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(f), *a);
                    *a = _mm512_fnmadd_ps(dm, _mm512_cvtepi32_ps(corr), *a);
                } else {
                    let s = _mm512_sub_epi32(f, _mm512_slli_epi32::<5>(corr));
                    *a = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), *a);
                }
            }
        }
    }
    let mut o = [[0.0f32; RN]; RM];
    for i in 0..RM {
        for jp in 0..RN / 2 {
            let a = acc[i][jp];
            o[i][2 * jp] = hsum_ps(_mm512_castps512_ps256(a));
            o[i][2 * jp + 1] = hsum_ps(hi256_ps(a));
        }
    }
    o
}

/// Q4_K/Q5_K's `bsums` multipliers (the mins) and `[d, dmin]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k4_extra(a: &[u8]) -> (__m256i, [f32; 2]) {
    let (_, mins) = k4_scales(at(a, 4));
    let dm = h2f2(at(a, 0));
    (k4_min_vec(mins), [_mm_cvtss_f32(dm), lane1(dm)])
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
        /// The CPU must support AVX2, FMA, F16C, AVX-512 F/BW/VL and AVX512-VNNI.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
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
            // SAFETY: the CPU has the features (checked before handing this fn out).
            unsafe { $imp(w, rows, x, n, out, step) }
        }
    )*};
}

gemm_kernels! {
    (w, rows, x, n, out, step)
    gemm_q8_0 => q8_0_gemm {
        gemm_legacy::<Q80, Q80, 128, false>(w, rows, x, n, out, step, |a0, a1| unpack_q8_0(a0, a1))
    }
    gemm_q4_0 => q4_0_gemm {
        gemm_legacy::<Q40, Q80, 8, false>(w, rows, x, n, out, step, |a0, a1| unpack_q4_0(a0, a1))
    }
    gemm_q5_0 => q5_0_gemm {
        gemm_legacy::<Q50, Q80, 16, false>(w, rows, x, n, out, step, |a0, a1| unpack_q5_0(a0, a1))
    }
    gemm_iq4_nl => iq4_nl_gemm {
        let table = iq4_table512();
        gemm_legacy::<Q40, Q80, 128, false>(w, rows, x, n, out, step, |a0, a1| {
            unpack_iq4_nl(table, a0, a1)
        })
    }
    gemm_q4_1 => q4_1_gemm {
        gemm_legacy::<Q41, Q81, 0, true>(w, rows, x, n, out, step, |a0, a1| unpack_q4_1(a0, a1))
    }
    gemm_q5_1 => q5_1_gemm {
        gemm_legacy::<Q51, Q81, 0, true>(w, rows, x, n, out, step, |a0, a1| unpack_q5_1(a0, a1))
    }
    gemm_q4_k => q4_k_gemm {
        gemm_k::<Q4K, true>(w, rows, x, n, out, step, |a| q4k_unpack(a), |a| k4_extra(a))
    }
    gemm_q5_k => q5_k_gemm {
        gemm_k::<Q5K, true>(w, rows, x, n, out, step, |a| q5k_unpack(a), |a| k4_extra(a))
    }
    gemm_q6_k => q6_k_gemm {
        gemm_k::<Q6K, false>(w, rows, x, n, out, step, |a| q6k_unpack(a), |a| {
            let mb = _mm256_cvtepi8_epi16(ld128(at(a, 192)));
            // d is the block's last 2 bytes: lane 1 of the 4 bytes ending there.
            (mb, [lane1(h2f2(at(a, 206))), 0.0])
        })
    }
}

/// The AVX-512 tile kernel for a weight type (`None` where AVX2's serves). Only
/// `avx512::gemm_fn` may call this, after the feature checks.
pub(super) fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
    use GgmlType::*;
    Some(match ty {
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
