//! Matrix-product tiles of the AVX-VNNI set for the legacy formats (Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0, IQ4_NL); the K-quant and float tiles are AVX2's.
//!
//! As in the AVX-512 set (`avx512::gemm`), weight rows are unpacked `RM` at a time into
//! an L1-resident buffer (unsigned quants with the format's offset, scales as f32) and a
//! chunk of activation rows is prepared once per call (quants, `-OFF * Σ y` per 4 bytes,
//! scales), so a (row, token) block costs one `vpdpbusd` into the correction, the scale
//! product and one fused multiply-add. Per (row, token) the operations are those of
//! `dot::legacy_dot` (even and odd blocks in two accumulators), so tiles equal the
//! single-row kernels bit for bit.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::dot::*;
use crate::quant::dot::GemmFn;
use crate::quant::simd::avx2::helpers::*;
use crate::quant::GgmlType;

/// Weight rows unpacked together.
const RM: usize = 4;
/// Activation rows per tile (16 vector registers: 2 x RM x RN accumulators).
const RN: usize = 2;
/// Prepared activation bytes one sweep over a row group reads (kept within L2).
const CHUNK_BYTES: usize = 128 * 1024;

/// A block of a row group: unsigned quants, `[dw; 8]`, and the mins (Q4_1, Q5_1).
#[derive(Clone, Copy)]
struct WBlk {
    u: [[u8; 32]; RM],
    d: [[f32; 8]; RM],
    m: [f32; RM],
}

/// A block of an activation row: quants, `-OFF * Σ y` per 4 bytes, `d` and Q8_1's `s`.
#[derive(Clone, Copy)]
struct XBlk {
    y: [u8; 32],
    c: [i32; 8],
    dx: f32,
    s: f32,
}

thread_local! {
    static WBLKS: RefCell<Vec<WBlk>> = const { RefCell::new(Vec::new()) };
    static XBLKS: RefCell<Vec<XBlk>> = const { RefCell::new(Vec::new()) };
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn st(dst: &mut [u8; 32], v: __m256i) {
    // SAFETY: writes exactly the 32 bytes `dst` borrows mutably; no alignment needed.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn ld_i8x(v: &[i32; 8]) -> __m256i {
    // SAFETY: reads exactly the 8 i32 `v` borrows; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn ld_f8(v: &[f32; 8]) -> __m256 {
    // SAFETY: reads exactly the 8 floats `v` borrows; `loadu` needs no alignment.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn ld_f4(v: &[f32; 4]) -> __m128 {
    // SAFETY: reads exactly the 4 floats `v` borrows; `loadu` needs no alignment.
    unsafe { _mm_loadu_ps(v.as_ptr()) }
}

/// A legacy format (`A`-byte weight blocks, `B`-byte activation blocks, offset `OFF`;
/// `MINS` with Q8_1 activations): `out[r * step.0 + t * step.1] = w[r] · x[t]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
#[allow(clippy::too_many_arguments)]
fn gemm_legacy<const A: usize, const B: usize, const OFF: u8, const MINS: bool>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    step: (usize, usize),
    unpack: impl Fn(&[u8; A]) -> __m256i,
) {
    if rows == 0 || n == 0 {
        return;
    }
    let rb = w.len() / rows;
    let nb = rb / A;
    let xb = x.len() / n;
    assert!(rb * rows == w.len() && nb * A == rb && xb * n == x.len() && xb >= nb * B);
    assert!(out.len() > (rows - 1) * step.0 + (n - 1) * step.1);
    let per_token = (nb * size_of::<XBlk>()).max(1);
    let chunk = (CHUNK_BYTES / per_token).max(RN).next_multiple_of(RN);
    let wzero = WBlk {
        u: [[0; 32]; RM],
        d: [[0.0; 8]; RM],
        m: [0.0; RM],
    };
    let xzero = XBlk {
        y: [0; 32],
        c: [0; 8],
        dx: 0.0,
        s: 0.0,
    };
    WBLKS.with_borrow_mut(|wb| {
        XBLKS.with_borrow_mut(|xbuf| {
            wb.resize(nb, wzero);
            xbuf.resize(nb * chunk.min(n.next_multiple_of(RN)), xzero);
            for t0 in (0..n).step_by(chunk) {
                let t1 = (t0 + chunk).min(n);
                for t in t0..t1 {
                    let row = x[t * xb..t * xb + nb * B].as_chunks::<B>().0;
                    let units = &mut xbuf[(t - t0) * nb..(t - t0 + 1) * nb];
                    for (blk, xu) in row.iter().zip(units) {
                        let y = ld256(at(blk, B - 32));
                        st(&mut xu.y, y);
                        // (Always written: the buffer holds other formats' values.)
                        let c = if OFF == 0 {
                            _mm256_setzero_si256()
                        } else {
                            let c = dpbusd(_mm256_set1_epi8(OFF as i8), y);
                            _mm256_sub_epi32(_mm256_setzero_si256(), c)
                        };
                        // SAFETY: writes exactly the 8 i32 `xu.c` borrows mutably.
                        unsafe { _mm256_storeu_si256(xu.c.as_mut_ptr().cast(), c) };
                        let ds = h2f4(at(blk, 0));
                        xu.dx = _mm_cvtss_f32(ds);
                        xu.s = lane1(ds);
                    }
                }
                let act = |t: usize| &xbuf[(t - t0) * nb..(t - t0 + 1) * nb];
                for r in (0..rows).step_by(RM) {
                    // Rows past the end (rm < RM) keep stale values; their results are
                    // dropped.
                    let rm = RM.min(rows - r);
                    for i in 0..rm {
                        let row = w[(r + i) * rb..(r + i + 1) * rb].as_chunks::<A>().0;
                        for (blk, wu) in row.iter().zip(wb.iter_mut()) {
                            st(&mut wu.u[i], unpack(blk));
                            let dm = h2f4(at(blk, 0));
                            wu.d[i] = [_mm_cvtss_f32(dm); 8];
                            wu.m[i] = lane1(dm);
                        }
                    }
                    let mut t = t0;
                    while t < t1 {
                        // Edge tiles repeat the last token; those results are dropped.
                        let rn = RN.min(t1 - t);
                        let ts: [usize; RN] = std::array::from_fn(|j| t + j.min(rn - 1));
                        let sums = tile::<MINS>(wb, ts.map(act));
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

/// The `RM x RN` products of a row group, with `dot::legacy_dot`'s operations per pair.
#[inline]
#[allow(clippy::needless_range_loop)] // (i, j) index several arrays at once
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn tile<const MINS: bool>(ws: &[WBlk], xs: [&[XBlk]; RN]) -> [[f32; RN]; RM] {
    let mut acc = [[[_mm256_setzero_ps(); 2]; RN]; RM];
    for (b, wu) in ws.iter().enumerate() {
        let e = b & 1;
        let xu: [&XBlk; RN] = std::array::from_fn(|j| &xs[j][b]);
        let y = xu.map(|v| ld256(&v.y));
        let dx = xu.map(|v| _mm256_set1_ps(v.dx));
        for i in 0..RM {
            let u = ld256(&wu.u[i]);
            let dw = ld_f8(&wu.d[i]);
            for j in 0..RN {
                let s = _mm256_dpbusd_avx_epi32(ld_i8x(&xu[j].c), u, y[j]);
                let d = _mm256_mul_ps(dw, dx[j]);
                acc[i][j][e] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[i][j][e]);
            }
        }
    }
    let mut o = acc.map(|r| r.map(|a| hsum_ps(_mm256_add_ps(a[0], a[1]))));
    if MINS {
        for j in 0..RN {
            // Σ m * s over even and over odd blocks, rows in lanes, then their sum.
            let mut mm = [_mm_setzero_ps(); 2];
            for (k, (wu, xu)) in ws.iter().zip(xs[j]).enumerate() {
                let p = _mm_mul_ps(ld_f4(&wu.m), _mm_set1_ps(xu.s));
                mm[k & 1] = _mm_add_ps(mm[k & 1], p);
            }
            let mut m = [0.0f32; 4];
            // SAFETY: writes exactly the 4 floats `m` borrows mutably.
            unsafe { _mm_storeu_ps(m.as_mut_ptr(), _mm_add_ps(mm[0], mm[1])) };
            for i in 0..RM {
                o[i][j] += m[i];
            }
        }
    }
    o
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
        /// The CPU must support AVX2, FMA, F16C and AVX-VNNI.
        #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
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
        gemm_legacy::<Q80, Q80, 128, false>(w, rows, x, n, out, step, |a| unpack_q8_0(a))
    }
    gemm_q4_0 => q4_0_gemm {
        gemm_legacy::<Q40, Q80, 8, false>(w, rows, x, n, out, step, |a| unpack_q4_0(a))
    }
    gemm_q5_0 => q5_0_gemm {
        gemm_legacy::<Q50, Q80, 16, false>(w, rows, x, n, out, step, |a| unpack_q5_0(a))
    }
    gemm_iq4_nl => iq4_nl_gemm {
        let table = iq4_table();
        gemm_legacy::<Q40, Q80, 128, false>(w, rows, x, n, out, step, |a| {
            unpack_iq4_nl(table, a)
        })
    }
    gemm_q4_1 => q4_1_gemm {
        gemm_legacy::<Q41, Q81, 0, true>(w, rows, x, n, out, step, |a| unpack_q4_1(a))
    }
    gemm_q5_1 => q5_1_gemm {
        gemm_legacy::<Q51, Q81, 0, true>(w, rows, x, n, out, step, |a| unpack_q5_1(a))
    }
}

/// The AVX-VNNI tile kernel for a weight type (`None` where AVX2's serves). Only
/// `avxvnni::gemm_fn` may call this, after the feature checks.
pub(super) fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
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
