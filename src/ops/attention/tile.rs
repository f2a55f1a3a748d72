//! A tile: the queries of one KV head over a shared cache, walked chunk by chunk and
//! key block by key block; and the portable kernel of its partial states.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::softmax::{finish, merge, State, EMPTY};
use super::{clip, Kernel, CHUNK, EMPTY_RANGE, MAX_TILE};

thread_local! {
    /// A tile's per-chunk partial sums ([`Tile::attend`]), per thread.
    static TILE_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One KV head's cache, shared by the queries of a tile.
pub(super) struct Tile<'a> {
    /// Keys of positions `0..` (at least up to the tile's last query), rows of `kv_dim`.
    pub(super) k: &'a [f16],
    pub(super) v: &'a [f16],
    pub(super) kv_dim: usize,
    /// The head's offset within a row.
    pub(super) off: usize,
    /// Multiplies q·k (already divided by the cap when soft-capping).
    pub(super) scale: f32,
    /// Scores become `cap * tanh(score)` (Gemma 2).
    pub(super) softcap: Option<f32>,
    pub(super) block: usize,
}

impl Tile<'_> {
    /// A scaled score, soft-capped when the model says so.
    #[inline(always)]
    pub(super) fn cap(&self, s: f32) -> f32 {
        match self.softcap {
            Some(c) => c * s.tanh(),
            None => s,
        }
    }

    /// `os[i]` = attention of `qs[i]` over key positions `ranges[i].0..=ranges[i].1`:
    /// chunk by chunk, merging each chunk's partial states as it goes.
    pub(super) fn attend(
        &self,
        kernel: Kernel,
        qs: &[&[f32]],
        os: &mut [&mut [f32]],
        ranges: &[(usize, usize)],
    ) {
        let Some(hd) = qs.first().map(|q| q.len()) else {
            return;
        };
        let m = qs.len();
        assert!(m <= MAX_TILE && os.len() == m && ranges.len() == m);
        // The chunk partial sums live in a per-thread buffer (no allocation per tile).
        TILE_BUF.with_borrow_mut(|buf| {
            buf.clear();
            buf.resize(m * hd, 0.0);
            self.attend_in(kernel, qs, os, ranges, buf)
        });
    }

    fn attend_in(
        &self,
        kernel: Kernel,
        qs: &[&[f32]],
        os: &mut [&mut [f32]],
        ranges: &[(usize, usize)],
        buf: &mut [f32],
    ) {
        let (hd, m) = (qs[0].len(), qs.len());
        let (lo, hi) = ranges
            .iter()
            .fold((usize::MAX, 0), |(a, b), r| (a.min(r.0), b.max(r.1)));
        let mut run = [EMPTY; MAX_TILE];
        let mut part = [EMPTY; MAX_TILE];
        let mut clipped = [EMPTY_RANGE; MAX_TILE];
        for c in lo / CHUNK..=hi / CHUNK {
            for (cr, &r) in clipped.iter_mut().zip(ranges) {
                *cr = clip(r, c);
            }
            let mut ps: [&mut [f32]; MAX_TILE] = std::array::from_fn(|_| Default::default());
            for (p, b) in ps.iter_mut().zip(buf.chunks_mut(hd)) {
                *p = b;
            }
            self.partial(kernel, qs, &mut ps[..m], &mut part[..m], &clipped[..m]);
            for i in 0..m {
                merge(&mut run[i], os[i], &part[i], ps[i]);
            }
        }
        for (o, st) in os.iter_mut().zip(&run) {
            if st.max == f32::NEG_INFINITY {
                o.fill(0.0);
            } else {
                finish(st, o);
            }
        }
    }

    /// The partial state of each query over its range (within one chunk, or empty):
    /// `states[i]` and the unnormalised `accs[i]`.
    pub(super) fn partial(
        &self,
        kernel: Kernel,
        qs: &[&[f32]],
        accs: &mut [&mut [f32]],
        states: &mut [State],
        ranges: &[(usize, usize)],
    ) {
        let hd = qs.first().map_or(0, |q| q.len());
        let m = qs.len();
        assert!(m <= MAX_TILE && accs.len() == m && states.len() == m && ranges.len() == m);
        assert!(qs.iter().all(|q| q.len() == hd) && accs.iter().all(|o| o.len() == hd));
        assert!(self.off + hd <= self.kv_dim && self.block.is_multiple_of(8) && self.block <= 64);
        for &(s, e) in ranges {
            let need = (e + 1) * self.kv_dim;
            assert!(
                s > e || (e / CHUNK == s / CHUNK && self.k.len() >= need && self.v.len() >= need)
            );
        }
        for (a, st) in accs.iter_mut().zip(states.iter_mut()) {
            a.fill(0.0);
            *st = EMPTY;
        }
        if m == 0 {
            return;
        }
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2, FMA and F16C.
                unsafe { super::avx2::partial(self, qs, accs, states, ranges) }
            }
            Kernel::Portable => portable_partial(self, qs, accs, states, ranges),
        }
    }

    /// Calls `f(b0, spans)` for every key block `b0..b0+block` that meets some query's
    /// range, in increasing order; `spans` lists `(i, lo, hi)` for each query i meeting
    /// it, `lo..=hi` being the part of the block it sees.
    pub(super) fn walk(
        &self,
        ranges: &[(usize, usize)],
        mut f: impl FnMut(usize, &[(usize, usize, usize)]),
    ) {
        let (first, last) = ranges
            .iter()
            .fold((usize::MAX, 0), |(a, b), r| (a.min(r.0), b.max(r.1)));
        let mut spans = [(0usize, 0usize, 0usize); MAX_TILE];
        let mut b0 = first / self.block * self.block;
        while b0 <= last {
            let b1 = b0 + self.block - 1;
            let mut k = 0;
            for (i, &(s, e)) in ranges.iter().enumerate() {
                let (lo, hi) = (s.max(b0), e.min(b1));
                if lo <= hi {
                    spans[k] = (i, lo, hi);
                    k += 1;
                }
            }
            if k > 0 {
                f(b0, &spans[..k]);
            }
            b0 += self.block;
        }
    }
}

/// The tile in plain Rust: per key a dot product, libm `exp`, and a multiply-add into
/// the output row. Plain multiply-adds, not `mul_add`, so there are no software-FMA calls.
/// Each key and value row is widened to f32 into a buffer first.
fn portable_partial(
    t: &Tile,
    qs: &[&[f32]],
    accs: &mut [&mut [f32]],
    states: &mut [State],
    ranges: &[(usize, usize)],
) {
    let hd = qs[0].len();
    // Head dims up to 256 (every model family here) widen into the stack; larger ones
    // into a heap buffer.
    let mut stack = [0.0f32; 256];
    let mut heap = Vec::new();
    let row: &mut [f32] = if hd <= stack.len() {
        &mut stack[..hd]
    } else {
        heap.resize(hd, 0.0);
        &mut heap
    };
    let mut s = [0.0f32; 64];
    t.walk(ranges, |_, spans| {
        for &(i, lo, hi) in spans {
            let (q, o, st) = (qs[i], &mut *accs[i], &mut states[i]);
            let s = &mut s[..hi + 1 - lo];
            let mut bmax = f32::NEG_INFINITY;
            for (j, sj) in (lo..=hi).zip(s.iter_mut()) {
                let at = j * t.kv_dim + t.off;
                t.k[at..at + hd].convert_to_f32_slice(row);
                *sj = t.cap(dot(q, row) * t.scale);
                bmax = bmax.max(*sj);
            }
            if bmax > st.max {
                // Rescale what was accumulated under the old maximum (0 on the first block).
                let f = (st.max - bmax).exp();
                st.sum[0] *= f;
                o.iter_mut().for_each(|x| *x *= f);
                st.max = bmax;
            }
            for (j, &sj) in (lo..=hi).zip(s.iter()) {
                let w = (sj - st.max).exp();
                st.sum[0] += w;
                let at = j * t.kv_dim + t.off;
                t.v[at..at + hd].convert_to_f32_slice(row);
                for (x, &y) in o.iter_mut().zip(row.iter()) {
                    *x += w * y;
                }
            }
        }
    });
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize the reduction.
    let mut acc = [0.0f32; 8];
    let (ac, ar) = a.as_chunks::<8>();
    let (bc, br) = b.as_chunks::<8>();
    for (x, y) in ac.iter().zip(bc) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
