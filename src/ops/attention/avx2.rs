//! The tile kernel with AVX2 + FMA + F16C: eight keys scored at a time, a vectorised
//! `exp`, and the output row accumulated in registers.

use super::softmax::State;
use super::tile::Tile;
use super::MAX_TILE;
use crate::ops::act::simd::{exp8, load, store};
use half::f16;
use std::arch::x86_64::*;

/// Eight f16 widened to f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load_h(a: &[f16; 8]) -> __m256 {
    // SAFETY: `a` is 8 readable f16s (16 bytes); unaligned loads are allowed.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(a.as_ptr().cast()) })
}

/// The partial states with AVX2 + FMA + F16C (`head_dim` a multiple of 8, checked by
/// the caller).
///
/// Per query and block (which stays in L1 while the tile's queries use it): the scores of each group of eight key positions (aligned to
/// multiples of 8) come out as one vector, positions outside the query's range masked
/// to -inf (their rows are not read: the lane reads a row inside the range instead);
/// the weights `exp(s - max)` are summed lane-wise into an 8-lane running sum (masked
/// lanes add exact zeros); the output row is accumulated over the query's keys in
/// increasing order.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn partial(
    t: &Tile,
    qs: &[&[f32]],
    accs: &mut [&mut [f32]],
    states: &mut [State],
    ranges: &[(usize, usize)],
) {
    let mut max = [f32::NEG_INFINITY; MAX_TILE];
    let mut sum = [_mm256_setzero_ps(); MAX_TILE];
    t.walk(ranges, |b0, spans| {
        for &(i, lo, hi) in spans {
            step(t, qs[i], accs[i], &mut max[i], &mut sum[i], b0, lo, hi);
        }
    });
    for ((st, &m), s) in states.iter_mut().zip(&max).zip(&sum) {
        st.max = m;
        store(&mut st.sum, *s);
    }
}

/// One query against keys `lo..=hi` of the block starting at `b0`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn step(
    t: &Tile,
    q: &[f32],
    o: &mut [f32],
    max: &mut f32,
    sum: &mut __m256,
    b0: usize,
    lo: usize,
    hi: usize,
) {
    let hd = q.len();
    let qc = q.as_chunks::<8>().0;
    let (c0, c1) = ((lo - b0) / 8, (hi - b0) / 8);
    let mut s = [_mm256_set1_ps(f32::NEG_INFINITY); 8];
    let mut bmax = _mm256_set1_ps(f32::NEG_INFINITY);
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (c, sc_out) in s.iter_mut().enumerate().take(c1 + 1).skip(c0) {
        let j0 = b0 + 8 * c;
        // Row starts of the eight keys (lanes past the range re-read a row in it).
        let mut rows = [std::ptr::null::<f16>(); 8];
        for (l, r) in rows.iter_mut().enumerate() {
            let at = (j0 + l).clamp(lo, hi) * t.kv_dim + t.off;
            *r = t.k[at..at + hd].as_ptr();
        }
        let mut acc = [_mm256_setzero_ps(); 8];
        for (d, qv) in qc.iter().enumerate() {
            let qv = load(qv);
            for (a, &r) in acc.iter_mut().zip(&rows) {
                // Each row is the start of `hd` f16s (sliced above) and
                // `8 * d + 8 <= hd`, `qc` having `hd / 8` chunks.
                // SAFETY: the 8 f16s (16 bytes) read are inside that row.
                let kv = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(r.add(8 * d).cast()) });
                *a = _mm256_fmadd_ps(qv, kv, *a);
            }
        }
        let mut sc = _mm256_mul_ps(reduce8(&acc), _mm256_set1_ps(t.scale));
        if t.softcap.is_some() {
            // Rare (Gemma 2 only): capped lane by lane with the portable kernel's tanh.
            let mut lanes = [0.0f32; 8];
            store(&mut lanes, sc);
            lanes.iter_mut().for_each(|s| *s = t.cap(*s));
            sc = load(&lanes);
        }
        // Lanes l with lo <= j0 + l <= hi (both ends within -1..=8 of j0).
        let a = (lo as isize - j0 as isize).clamp(-1, 8) as i32;
        let b = (hi as isize - j0 as isize).clamp(-1, 8) as i32;
        let valid = _mm256_and_si256(
            _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(a - 1)),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(b + 1), lane),
        );
        let sc = _mm256_blendv_ps(
            _mm256_set1_ps(f32::NEG_INFINITY),
            sc,
            _mm256_castsi256_ps(valid),
        );
        *sc_out = sc;
        bmax = _mm256_max_ps(bmax, sc);
    }
    let m = hmax(bmax);
    // Rescale by exp(old max - new max): 0 on the first block (-inf), else <= 1; and
    // by exactly 1 when the maximum did not grow.
    let mut f = _mm256_set1_ps(1.0);
    if m > *max {
        f = exp8(_mm256_set1_ps(*max - m));
        *max = m;
    }
    *sum = _mm256_mul_ps(*sum, f);
    let mv = _mm256_set1_ps(*max);
    let mut w = [[0.0f32; 8]; 8];
    for c in c0..=c1 {
        let e = exp8(_mm256_sub_ps(s[c], mv));
        *sum = _mm256_add_ps(*sum, e);
        store(&mut w[c], e);
    }
    let w = w.as_flattened();
    let w = &w[lo - b0..=hi - b0];
    let mut d = 0;
    while d + 64 <= hd {
        pv::<8>(t, &mut o[d..d + 64], f, w, lo, d);
        d += 64;
    }
    while d < hd {
        pv::<1>(t, &mut o[d..d + 8], f, w, lo, d);
        d += 8;
    }
}

/// `o = o·f + Σ_j w[j]·v[lo + j][d..d + 8N]`, keys in increasing order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pv<const N: usize>(t: &Tile, o: &mut [f32], f: __m256, w: &[f32], lo: usize, d: usize) {
    let oc = o.as_chunks_mut::<8>().0;
    let oc = &mut oc[..N];
    let mut acc = [_mm256_setzero_ps(); N];
    for (a, x) in acc.iter_mut().zip(oc.iter()) {
        *a = _mm256_mul_ps(load(x), f);
    }
    for (j, &wj) in (lo..).zip(w) {
        let at = j * t.kv_dim + t.off + d;
        let r = t.v[at..at + 8 * N].as_chunks::<8>().0;
        let r = &r[..N];
        let wv = _mm256_set1_ps(wj);
        for (a, x) in acc.iter_mut().zip(r) {
            *a = _mm256_fmadd_ps(wv, load_h(x), *a);
        }
    }
    for (x, a) in oc.iter_mut().zip(acc) {
        store(x, a);
    }
}

/// `[Σ a[0], .., Σ a[7]]`, each sum by the same tree: ((0+1)+(2+3)) + ((4+5)+(6+7)).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn reduce8(a: &[__m256; 8]) -> __m256 {
    let t0 = _mm256_hadd_ps(a[0], a[1]);
    let t1 = _mm256_hadd_ps(a[2], a[3]);
    let t2 = _mm256_hadd_ps(a[4], a[5]);
    let t3 = _mm256_hadd_ps(a[6], a[7]);
    let u0 = _mm256_hadd_ps(t0, t1);
    let u1 = _mm256_hadd_ps(t2, t3);
    let lo = _mm256_permute2f128_ps::<0x20>(u0, u1);
    let hi = _mm256_permute2f128_ps::<0x31>(u0, u1);
    _mm256_add_ps(lo, hi)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hmax(v: __m256) -> f32 {
    let m = _mm256_max_ps(v, _mm256_permute2f128_ps::<1>(v, v));
    let m = _mm256_max_ps(m, _mm256_shuffle_ps::<0b01_00_11_10>(m, m));
    let m = _mm256_max_ps(m, _mm256_shuffle_ps::<0b10_11_00_01>(m, m));
    _mm256_cvtss_f32(m)
}
