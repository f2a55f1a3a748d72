//! Causal multi-head attention with grouped KV heads, over a KV cache in f16.
//!
//! Queries, scores, weights and outputs are f32; cached keys and values are f16, widened
//! (exactly) to f32 as they are read, so all arithmetic is f32 as with an f32 cache.
//!
//! Each (token, head) query attends to the cached keys at positions `start..=pos` of its
//! own sequence (`start > 0` for sliding-window layers). The positions are cut into
//! chunks of [`CHUNK`] keys at absolute multiples of `CHUNK`. Over the part of its range
//! in each chunk a query runs a blocked online softmax from scratch (key blocks, too, are
//! aligned to absolute positions), giving a partial state: the maximum score, the sum of
//! `exp(score - max)` and the unnormalised weighted sum of values. The partial states are
//! then merged one after the other in increasing chunk order ([`merge`]) and the result
//! normalised ([`finish`]). No score buffer is needed at any context length.
//!
//! Scheduling is free as long as that arithmetic is kept, and there are two:
//! - Tiles (prefill, or many sequences decoding): a task is (token block, kv head, slice
//!   of the group's query heads); it walks its chunks in order, merging as it goes.
//! - Split-K (a few tokens, i.e. decode): a task is (token, chunk, kv head, slice of the
//!   group's heads, normally all of them). The partial states go to a buffer and the
//!   caller merges them afterwards, in chunk order. A long context thus spreads over all
//!   threads, and each key and value is read once for all heads of its group.
//!
//! A query's arithmetic depends on nothing but its own `(start, pos)`: a tile of many
//! queries does for each exactly what a tile of one does, and the chunking and merge
//! order are the same under both schedules. So a token's output is bit-identical whether
//! it is processed alone, in a prefill batch, or beside other sequences.
//!
//! Within a chunk a tile walks the keys in L1-sized blocks, so that a block read from
//! memory serves every query of the tile. With AVX2 + FMA + F16C eight keys are scored at
//! a time (eight dot products reduced into one vector), the weights come from a
//! vectorised `exp`, and the values are accumulated with the output row in registers;
//! keys and values are widened with `vcvtph2ps` as they are loaded. (Widening a block
//! once into an f32 buffer for all the tile's queries was measured slower: the tile is
//! bound by the loads and FMAs, not by the conversions.)
use half::f16;
use half::slice::HalfFloatSliceExt;

use super::pool::Pool;

/// The geometry of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually `1/sqrt(head_dim)`).
    pub scale: f32,
    /// Sliding window: a query at position p sees keys at positions > p - window.
    pub window: Option<usize>,
}

/// The cached keys and values a token attends to.
pub struct TokenKv<'c> {
    /// Keys of positions `0..=pos`, rows of `n_kv_head * head_dim`.
    pub k: &'c [f16],
    /// Values, laid out as `k`.
    pub v: &'c [f16],
    pub pos: usize,
}

/// Most queries in one tile; their softmax state lives on the stack.
const MAX_TILE: usize = 32;
/// A tile aims at this many queries (tokens times heads of the group).
const TILE_QUERIES: usize = 32;
/// Keys per chunk (a multiple of every key block): the unit of split-K, and where each
/// query's softmax restarts and is merged.
const CHUNK: usize = 256;

/// A query's softmax state over some keys: the maximum score and the sum of
/// `exp(score - max)`, in eight lanes (the AVX2 tile's running sum; the portable tile
/// uses lane 0). `max` is -inf when no key was seen.
#[derive(Clone, Copy, Debug)]
struct State {
    max: f32,
    sum: [f32; 8],
}

const EMPTY: State = State {
    max: f32::NEG_INFINITY,
    sum: [0.0; 8],
};

/// Folds a chunk's partial state `(part, pacc)` into the running one `(run, acc)` (a
/// plain copy into an empty one). The one merge used by every schedule.
fn merge(run: &mut State, acc: &mut [f32], part: &State, pacc: &[f32]) {
    if part.max == f32::NEG_INFINITY {
        return;
    }
    if run.max == f32::NEG_INFINITY {
        *run = *part;
        acc.copy_from_slice(pacc);
        return;
    }
    let m = run.max.max(part.max);
    let (fa, fb) = ((run.max - m).exp(), (part.max - m).exp());
    for (s, &p) in run.sum.iter_mut().zip(&part.sum) {
        *s = *s * fa + p * fb;
    }
    for (x, &y) in acc.iter_mut().zip(pacc) {
        *x = *x * fa + y * fb;
    }
    run.max = m;
}

/// Normalises `acc` by the state's sum (lanes added as ((0+4)+(2+6)) + ((1+5)+(3+7))).
fn finish(state: &State, acc: &mut [f32]) {
    let s = &state.sum;
    let a = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    let total = (a[0] + a[2]) + (a[1] + a[3]);
    if total > 0.0 {
        let inv = 1.0 / total;
        acc.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The part of `start..=pos` inside chunk `c`, as a tile range; `EMPTY_RANGE` if none.
fn clip(r: (usize, usize), c: usize) -> (usize, usize) {
    let (lo, hi) = (r.0.max(c * CHUNK), r.1.min(c * CHUNK + CHUNK - 1));
    if lo <= hi {
        (lo, hi)
    } else {
        EMPTY_RANGE
    }
}

/// A range with no keys (meets no block, widens nothing).
const EMPTY_RANGE: (usize, usize) = (usize::MAX, 0);

/// `out[t][h]` = softmax over visible positions of `q[t][h] · k` times `v`.
///
/// `q` and `out` hold one row of `n_head * head_dim` per token; `kv(t)` gives token t's
/// cache (which must already hold that token's own key and value). Tokens that share a
/// cache (the same `k` buffer) are tiled together.
pub fn attention<'c, F>(shape: &AttnShape, q: &[f32], out: &mut [f32], kv: F)
where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    attention_with(Kernel::for_head_dim(shape.head_dim), shape, q, out, kv);
}

fn attention_with<'c, F>(kernel: Kernel, shape: &AttnShape, q: &[f32], out: &mut [f32], kv: F)
where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    let row = shape.n_head * shape.head_dim;
    if row == 0 || out.is_empty() {
        return;
    }
    let Geometry {
        n_head,
        n_kv,
        group,
        n,
        ..
    } = Geometry::of(shape, out.len());
    assert!(out.len() == n * row && q.len() >= n * row);
    assert!(
        n_kv * group == n_head,
        "query heads must split evenly over kv heads"
    );
    let pool = Pool::global();
    // Split-K when whole tiles would leave threads idle.
    let hs = group.min(MAX_TILE);
    let split = n * n_kv * group.div_ceil(hs) < 2 * pool.threads();
    schedule(kernel, shape, q, out, &kv, split);
}

/// The sizes both schedules work with, for `out_len` output values.
struct Geometry {
    hd: usize,
    n_head: usize,
    /// KV heads (at least 1) and the query heads sharing each.
    n_kv: usize,
    group: usize,
    /// Values in one cached row (all KV heads).
    kv_dim: usize,
    /// Tokens.
    n: usize,
}

impl Geometry {
    fn of(shape: &AttnShape, out_len: usize) -> Geometry {
        let (hd, n_head) = (shape.head_dim, shape.n_head);
        let n_kv = shape.n_kv_head.max(1);
        Geometry {
            hd,
            n_head,
            n_kv,
            group: (n_head / n_kv).max(1),
            kv_dim: shape.n_kv_head * hd,
            n: out_len / (n_head * hd).max(1),
        }
    }
}

/// Either schedule (the same arithmetic).
fn schedule<'c, F>(
    kernel: Kernel,
    shape: &AttnShape,
    q: &[f32],
    out: &mut [f32],
    kv: &F,
    split: bool,
) where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    if split {
        split_k(kernel, shape, q, out, kv, Pool::global());
    } else {
        tiled(kernel, shape, q, out, kv, Pool::global());
    }
}

/// A query's key range.
fn range(shape: &AttnShape, pos: usize) -> (usize, usize) {
    (shape.window.map_or(0, |w| (pos + 1).saturating_sub(w)), pos)
}

/// The tiled schedule: a task is (token block, kv head, slice of the group's heads).
fn tiled<'c, F>(kernel: Kernel, shape: &AttnShape, q: &[f32], out: &mut [f32], kv: &F, pool: &Pool)
where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    let Geometry {
        hd,
        n_head,
        n_kv,
        group,
        kv_dim,
        n,
    } = Geometry::of(shape, out.len());
    // Split heads, then tokens, until there are a few tasks per thread.
    let mut hs = group.min(MAX_TILE);
    let mut tt = (TILE_QUERIES / hs).clamp(1, n);
    let count = |tt: usize, hs: usize| n.div_ceil(tt) * n_kv * group.div_ceil(hs);
    while count(tt, hs) < 4 * pool.threads() && (tt > 1 || hs > 1) {
        if hs > 1 {
            hs = hs.div_ceil(2);
        } else {
            tt = tt.div_ceil(2);
        }
    }
    let subs = group.div_ceil(hs);
    let blocks = n.div_ceil(tt);
    let block = key_block(hd);
    let out_addr = out.as_mut_ptr() as usize;
    pool.for_each(blocks * n_kv * subs, &|i| {
        // Later tokens see more keys: hand out the last token blocks first.
        let tb = blocks - 1 - i / (n_kv * subs);
        let g = i / subs % n_kv;
        let h0 = g * group + (i % subs) * hs;
        let h1 = (h0 + hs).min((g + 1) * group);
        let t1 = ((tb + 1) * tt).min(n);
        let mut t = tb * tt;
        while t < t1 {
            // The tile: tokens from t on that share t's cache, read through the longest
            // of their cache slices (all start at the same address).
            let mut pos = [0usize; MAX_TILE];
            let first = kv(t);
            let (base, mut k, mut v) = (first.k.as_ptr(), first.k, first.v);
            pos[0] = first.pos;
            let mut e = t + 1;
            while e < t1 {
                let c = kv(e);
                if c.k.as_ptr() != base {
                    break;
                }
                if c.k.len() > k.len() {
                    (k, v) = (c.k, c.v);
                }
                pos[e - t] = c.pos;
                e += 1;
            }
            let mut qs: [&[f32]; MAX_TILE] = [&[]; MAX_TILE];
            let mut os: [&mut [f32]; MAX_TILE] = std::array::from_fn(|_| Default::default());
            let mut ranges = [(0usize, 0usize); MAX_TILE];
            let mut m = 0;
            for (tok, &p) in (t..e).zip(&pos) {
                for h in h0..h1 {
                    let at = (tok * n_head + h) * hd;
                    qs[m] = &q[at..at + hd];
                    // Row (tok, h) of `out` lies inside `out` (n rows of n_head * hd), and
                    // belongs to exactly this task (one token block, one head range), whose
                    // index the pool hands out once; `out` is borrowed mutably for the call.
                    // SAFETY: in bounds, and no other live reference overlaps it (above).
                    os[m] = unsafe {
                        std::slice::from_raw_parts_mut((out_addr as *mut f32).add(at), hd)
                    };
                    ranges[m] = range(shape, p);
                    m += 1;
                }
            }
            let tile = Tile {
                k,
                v,
                kv_dim,
                off: g * hd,
                scale: shape.scale,
                block,
            };
            tile.attend(kernel, &qs[..m], &mut os[..m], &ranges[..m]);
            t = e;
        }
    });
}

/// The split-K schedule: a task is (token, chunk, kv head, slice of the group's heads);
/// partial states go to a buffer, merged afterwards by the caller in chunk order.
fn split_k<'c, F>(
    kernel: Kernel,
    shape: &AttnShape,
    q: &[f32],
    out: &mut [f32],
    kv: &F,
    pool: &Pool,
) where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    // Tasks never call back into attention, so the caller's scratch is borrowed once.
    SPLIT_SCRATCH.with_borrow_mut(|scratch| split_k_in(kernel, shape, q, out, kv, pool, scratch));
}

/// Buffers of [`split_k`], kept per calling thread so a decode step allocates nothing
/// once they have grown to its size.
#[derive(Default)]
struct SplitScratch {
    pairs: Vec<(usize, usize)>,
    accs: Vec<f32>,
    states: Vec<State>,
    run: Vec<State>,
}

thread_local! {
    static SPLIT_SCRATCH: std::cell::RefCell<SplitScratch> = Default::default();
    /// A tile's per-chunk partial sums ([`Tile::attend`]), per thread.
    static TILE_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn split_k_in<'c, F>(
    kernel: Kernel,
    shape: &AttnShape,
    q: &[f32],
    out: &mut [f32],
    kv: &F,
    pool: &Pool,
    scratch: &mut SplitScratch,
) where
    F: Fn(usize) -> TokenKv<'c> + Sync,
{
    let Geometry {
        hd,
        n_head,
        n_kv,
        group,
        kv_dim,
        n,
    } = Geometry::of(shape, out.len());
    let SplitScratch {
        pairs,
        accs,
        states,
        run,
    } = scratch;
    // (token, chunk) pairs, each token's chunks in order.
    pairs.clear();
    for t in 0..n {
        let (s, p) = range(shape, kv(t).pos);
        pairs.extend((s / CHUNK..=p / CHUNK).map(|c| (t, c)));
    }
    // All heads of a group in a task, unless that leaves threads idle.
    let mut hs = group.min(MAX_TILE);
    while pairs.len() * n_kv * group.div_ceil(hs) < 2 * pool.threads() && hs > 1 {
        hs = hs.div_ceil(2);
    }
    let subs = group.div_ceil(hs);
    let block = key_block(hd);
    accs.clear();
    accs.resize(pairs.len() * n_head * hd, 0.0);
    states.clear();
    states.resize(pairs.len() * n_head, EMPTY);
    let (acc_addr, state_addr) = (accs.as_mut_ptr() as usize, states.as_mut_ptr() as usize);
    pool.for_each(pairs.len() * n_kv * subs, &|i| {
        let (t, c) = pairs[i / (n_kv * subs)];
        let slot = i / (n_kv * subs) * n_head;
        let g = i / subs % n_kv;
        let h0 = g * group + (i % subs) * hs;
        let h1 = (h0 + hs).min((g + 1) * group);
        let tk = kv(t);
        let r = clip(range(shape, tk.pos), c);
        let mut qs: [&[f32]; MAX_TILE] = [&[]; MAX_TILE];
        let mut ps: [&mut [f32]; MAX_TILE] = std::array::from_fn(|_| Default::default());
        for (j, h) in (h0..h1).enumerate() {
            let at = (t * n_head + h) * hd;
            qs[j] = &q[at..at + hd];
            // Slot (pair, h) of `accs` (pairs.len() * n_head slots of hd) belongs to this
            // task alone (one pair, one head range; the pool hands each index out once),
            // and `accs` is not otherwise used until `for_each` returns.
            // SAFETY: in bounds, and no other live reference overlaps it (above).
            ps[j] = unsafe {
                std::slice::from_raw_parts_mut((acc_addr as *mut f32).add((slot + h) * hd), hd)
            };
        }
        let m = h1 - h0;
        let sp = (state_addr as *mut State).wrapping_add(slot + h0);
        // The states of (pair, h0..h1): in bounds, and owned by this task alone (as `ps`).
        // SAFETY: as for `ps` above.
        let st = unsafe { std::slice::from_raw_parts_mut(sp, m) };
        let tile = Tile {
            k: tk.k,
            v: tk.v,
            kv_dim,
            off: g * hd,
            scale: shape.scale,
            block,
        };
        tile.partial(kernel, &qs[..m], &mut ps[..m], st, &[r; MAX_TILE][..m]);
    });
    // Merge each token's chunks in order.
    run.clear();
    run.resize(n_head, EMPTY);
    for (p, &(t, _)) in pairs.iter().enumerate() {
        let o = &mut out[t * n_head * hd..(t + 1) * n_head * hd];
        let first = p == 0 || pairs[p - 1].0 != t;
        if first {
            run.fill(EMPTY);
        }
        for h in 0..n_head {
            let at = (p * n_head + h) * hd;
            merge(
                &mut run[h],
                &mut o[h * hd..(h + 1) * hd],
                &states[p * n_head + h],
                &accs[at..at + hd],
            );
        }
        let last = p + 1 == pairs.len() || pairs[p + 1].0 != t;
        if last {
            for (h, st) in run.iter().enumerate() {
                let o = &mut o[h * hd..(h + 1) * hd];
                if st.max == f32::NEG_INFINITY {
                    o.fill(0.0);
                } else {
                    finish(st, o);
                }
            }
        }
    }
}

/// Keys per block (a multiple of 8, at most 64, dividing `CHUNK`): one max and one
/// rescale per block, and a block of keys and values small enough to stay in L1 while a
/// tile walks it.
fn key_block(head_dim: usize) -> usize {
    (2048 / head_dim.max(1) / 8 * 8)
        .clamp(16, 64)
        .next_power_of_two()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn for_head_dim(hd: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if hd.is_multiple_of(8)
            && super::act::simd::available()
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Kernel::Avx2;
        }
        let _ = hd;
        Kernel::Portable
    }
}

/// One KV head's cache, shared by the queries of a tile.
struct Tile<'a> {
    /// Keys of positions `0..` (at least up to the tile's last query), rows of `kv_dim`.
    k: &'a [f16],
    v: &'a [f16],
    kv_dim: usize,
    /// The head's offset within a row.
    off: usize,
    scale: f32,
    block: usize,
}

impl Tile<'_> {
    /// `os[i]` = attention of `qs[i]` over key positions `ranges[i].0..=ranges[i].1`:
    /// chunk by chunk, merging each chunk's partial states as it goes.
    fn attend(
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
    fn partial(
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
                unsafe { x86::partial(self, qs, accs, states, ranges) }
            }
            Kernel::Portable => portable_partial(self, qs, accs, states, ranges),
        }
    }

    /// Calls `f(b0, spans)` for every key block `b0..b0+block` that meets some query's
    /// range, in increasing order; `spans` lists `(i, lo, hi)` for each query i meeting
    /// it, `lo..=hi` being the part of the block it sees.
    fn walk(&self, ranges: &[(usize, usize)], mut f: impl FnMut(usize, &[(usize, usize, usize)])) {
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
                *sj = dot(q, row) * t.scale;
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::act::simd::{exp8, load, store};
    use super::{State, Tile, MAX_TILE};
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
            let sc = _mm256_mul_ps(reduce8(&acc), _mm256_set1_ps(t.scale));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in about -1..1.
    fn fill(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `fill` rounded to f16, as the engine stores a cache.
    fn fill_h(n: usize, seed: u64) -> Vec<f16> {
        fill(n, seed).into_iter().map(f16::from_f32).collect()
    }

    fn widen(x: &[f16]) -> Vec<f32> {
        x.iter().map(|h| h.to_f32()).collect()
    }

    fn kernels() -> Vec<Kernel> {
        #[cfg(target_arch = "x86_64")]
        if super::super::act::simd::available() {
            return vec![Kernel::Portable, Kernel::Avx2];
        }
        vec![Kernel::Portable]
    }

    /// Direct two-pass softmax in f64 for query row `qh` over positions start..=pos.
    fn naive(
        shape: &AttnShape,
        qh: &[f32],
        k: &[f32],
        v: &[f32],
        h: usize,
        pos: usize,
    ) -> Vec<f64> {
        let hd = shape.head_dim;
        let kv_dim = shape.n_kv_head * hd;
        let off = (h / (shape.n_head / shape.n_kv_head)) * hd;
        let start = shape.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let s: Vec<f64> = (start..=pos)
            .map(|p| {
                (0..hd)
                    .map(|j| qh[j] as f64 * k[p * kv_dim + off + j] as f64)
                    .sum::<f64>()
                    * shape.scale as f64
            })
            .collect();
        let m = s.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
        (0..hd)
            .map(|j| {
                (start..=pos)
                    .zip(&s)
                    .map(|(p, x)| (x - m).exp() / z * v[p * kv_dim + off + j] as f64)
                    .sum()
            })
            .collect()
    }

    /// Against the f64 softmax, for both kernels, several head sizes (a multiple of 64,
    /// not), GQA, MHA and MQA, contexts spanning many key blocks, with and without a window.
    #[test]
    fn matches_naive_softmax() {
        for (n_head, n_kv_head, head_dim) in
            [(4, 2, 8), (9, 3, 64), (4, 1, 256), (2, 2, 24), (6, 2, 80)]
        {
            for window in [None, Some(3), Some(37)] {
                let shape = AttnShape {
                    n_head,
                    n_kv_head,
                    head_dim,
                    scale: 1.0 / (head_dim as f32).sqrt() * 3.0,
                    window,
                };
                let kv_dim = n_kv_head * head_dim;
                let row = n_head * head_dim;
                let len = 150;
                let k = fill_h(len * kv_dim, 1);
                let v = fill_h(len * kv_dim, 2);
                let (kf, vf) = (widen(&k), widen(&v));
                let pos = [0usize, 4, 8, 63, 64, 65, 100, 149];
                let q = fill(pos.len() * row, 3);
                for kernel in kernels() {
                    let mut out = vec![0.0; pos.len() * row];
                    attention_with(kernel, &shape, &q, &mut out, |t| TokenKv {
                        k: &k[..(pos[t] + 1) * kv_dim],
                        v: &v[..(pos[t] + 1) * kv_dim],
                        pos: pos[t],
                    });
                    for (t, &p) in pos.iter().enumerate() {
                        for h in 0..n_head {
                            let at = t * row + h * head_dim;
                            let want = naive(&shape, &q[at..at + head_dim], &kf, &vf, h, p);
                            for (j, w) in want.iter().enumerate() {
                                let got = out[at + j] as f64;
                                assert!(
                                    (got - w).abs() < 2e-6,
                                    "{kernel:?} hd{head_dim} {window:?} pos{p} h{h} j{j}: {got} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// A token's output is bit-identical alone, in a prefill batch of its sequence, and in
    /// a step mixing two sequences (whatever tiles the scheduler makes of them).
    #[test]
    fn batching_is_bit_identical() {
        for (n_head, n_kv_head, head_dim) in [(9, 3, 64), (4, 1, 256), (2, 2, 24), (8, 1, 8)] {
            for window in [None, Some(20)] {
                let shape = AttnShape {
                    n_head,
                    n_kv_head,
                    head_dim,
                    scale: 0.3,
                    window,
                };
                let kv_dim = n_kv_head * head_dim;
                let row = n_head * head_dim;
                let len = 90;
                let (ka, va) = (fill_h(len * kv_dim, 10), fill_h(len * kv_dim, 11));
                let (kb, vb) = (fill_h(len * kv_dim, 12), fill_h(len * kv_dim, 13));
                let qa = fill(len * row, 14);
                let qb = fill(len * row, 15);
                for kernel in kernels() {
                    // Alone: one call per token.
                    let alone = |q: &[f32], k: &[f16], v: &[f16], p: usize| {
                        let mut o = vec![0.0; row];
                        attention_with(kernel, &shape, &q[p * row..(p + 1) * row], &mut o, |_| {
                            TokenKv {
                                k: &k[..(p + 1) * kv_dim],
                                v: &v[..(p + 1) * kv_dim],
                                pos: p,
                            }
                        });
                        o
                    };
                    // Batch: all of a's positions at once.
                    let mut batch = vec![0.0; len * row];
                    attention_with(kernel, &shape, &qa, &mut batch, |t| TokenKv {
                        k: &ka[..(t + 1) * kv_dim],
                        v: &va[..(t + 1) * kv_dim],
                        pos: t,
                    });
                    // Mixed: a's positions 40..90 interleaved in runs with b's 0..30 and
                    // b's decode-like token 70.
                    let mut toks: Vec<(bool, usize)> = Vec::new();
                    for i in 0..50 {
                        toks.push((true, 40 + i));
                        if i % 7 == 3 {
                            toks.push((false, i % 30));
                        }
                    }
                    toks.push((false, 70));
                    let mut q = Vec::new();
                    for &(a, p) in &toks {
                        let src = if a { &qa } else { &qb };
                        q.extend_from_slice(&src[p * row..(p + 1) * row]);
                    }
                    let mut mixed = vec![0.0; toks.len() * row];
                    attention_with(kernel, &shape, &q, &mut mixed, |t| {
                        let (a, p) = toks[t];
                        let (k, v) = if a { (&ka, &va) } else { (&kb, &vb) };
                        TokenKv {
                            k: &k[..(p + 1) * kv_dim],
                            v: &v[..(p + 1) * kv_dim],
                            pos: p,
                        }
                    });
                    for p in 0..len {
                        let o = alone(&qa, &ka, &va, p);
                        let b = &batch[p * row..(p + 1) * row];
                        assert!(
                            o.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{kernel:?} hd{head_dim} {window:?}: batch differs at pos {p}"
                        );
                    }
                    for (t, &(a, p)) in toks.iter().enumerate() {
                        let o = if a {
                            alone(&qa, &ka, &va, p)
                        } else {
                            alone(&qb, &kb, &vb, p)
                        };
                        let m = &mixed[t * row..(t + 1) * row];
                        assert!(
                            o.iter().zip(m).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{kernel:?} hd{head_dim} {window:?}: mixed differs at token {t} ({a}, {p})"
                        );
                    }
                }
            }
        }
    }

    /// Over contexts of several chunks (with and without a window): a token's output is
    /// bit-identical in a prefill batch, alone under split-K, and alone as a tile.
    #[test]
    fn schedules_are_bit_identical_across_chunks() {
        for (n_head, n_kv_head, head_dim) in [(9, 3, 64), (4, 1, 256), (2, 2, 24)] {
            for window in [None, Some(300)] {
                let shape = AttnShape {
                    n_head,
                    n_kv_head,
                    head_dim,
                    scale: 0.3,
                    window,
                };
                let (kv_dim, row, len) = (n_kv_head * head_dim, n_head * head_dim, 700);
                let (k, v) = (fill_h(len * kv_dim, 41), fill_h(len * kv_dim, 42));
                let q = fill(len * row, 43);
                for kernel in kernels() {
                    let mut batch = vec![0.0; len * row];
                    schedule(
                        kernel,
                        &shape,
                        &q,
                        &mut batch,
                        &|t| TokenKv {
                            k: &k[..(t + 1) * kv_dim],
                            v: &v[..(t + 1) * kv_dim],
                            pos: t,
                        },
                        false,
                    );
                    for p in (0..len).step_by(7).chain([255, 256, 511, 512, 699]) {
                        for split in [true, false] {
                            let mut o = vec![0.0; row];
                            schedule(
                                kernel,
                                &shape,
                                &q[p * row..(p + 1) * row],
                                &mut o,
                                &|_| TokenKv {
                                    k: &k[..(p + 1) * kv_dim],
                                    v: &v[..(p + 1) * kv_dim],
                                    pos: p,
                                },
                                split,
                            );
                            let b = &batch[p * row..(p + 1) * row];
                            assert!(
                                o.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                                "{kernel:?} hd{head_dim} {window:?} split {split}: pos {p}"
                            );
                        }
                    }
                    // And against the f64 softmax at the end.
                    let (kf, vf) = (widen(&k), widen(&v));
                    let p = len - 1;
                    for h in 0..n_head {
                        let at = p * row + h * head_dim;
                        let want = naive(&shape, &q[at..at + head_dim], &kf, &vf, h, p);
                        for (j, w) in want.iter().enumerate() {
                            let got = batch[at + j] as f64;
                            assert!((got - w).abs() < 2e-6, "{kernel:?} hd{head_dim} j{j}");
                        }
                    }
                }
            }
        }
    }

    /// What attention reads back is the f16-rounded value: a query that sees only its own
    /// position returns that position's value row exactly (weight exp(0) = 1), which is
    /// `f16::from_f32` of the f32 written, not the f32 itself.
    #[test]
    fn reads_back_f16_rounded_values() {
        let (n_head, n_kv_head, head_dim) = (4, 2, 64);
        let shape = AttnShape {
            n_head,
            n_kv_head,
            head_dim,
            scale: 0.125,
            window: Some(1),
        };
        let (kv_dim, row, len) = (n_kv_head * head_dim, n_head * head_dim, 40);
        // Values over many binades, as K/V rows are (not only -1..1).
        let vf: Vec<f32> = fill(len * kv_dim, 21)
            .iter()
            .enumerate()
            .map(|(i, x)| x * 2f32.powi((i % 17) as i32 - 8))
            .collect();
        let kf = fill(len * kv_dim, 22);
        let mut k = vec![f16::ZERO; len * kv_dim];
        let mut v = vec![f16::ZERO; len * kv_dim];
        k.convert_from_f32_slice(&kf);
        v.convert_from_f32_slice(&vf);
        let q = fill(len * row, 23);
        let group = n_head / n_kv_head;
        for kernel in kernels() {
            let mut out = vec![0.0; len * row];
            attention_with(kernel, &shape, &q, &mut out, |t| TokenKv {
                k: &k[..(t + 1) * kv_dim],
                v: &v[..(t + 1) * kv_dim],
                pos: t,
            });
            let mut inexact = 0;
            for p in 0..len {
                for h in 0..n_head {
                    let o = &out[(p * n_head + h) * head_dim..][..head_dim];
                    let at = p * kv_dim + h / group * head_dim;
                    for (j, &x) in o.iter().enumerate() {
                        let want = f16::from_f32(vf[at + j]).to_f32();
                        assert_eq!(x.to_bits(), want.to_bits(), "{kernel:?} pos{p} h{h} j{j}");
                        inexact += usize::from(x != vf[at + j]);
                    }
                }
            }
            // Most f32 values are not f16s: the rounding did happen.
            assert!(inexact > len * row / 2, "{kernel:?}: {inexact}");
        }
    }

    /// Over an f16 cache, the AVX2 tiles of a long prefill batch agree with the portable
    /// kernel (the scalar reference) within the tolerance both meet against f64.
    #[test]
    fn avx2_tiles_match_portable() {
        let ks = kernels();
        if ks.len() < 2 {
            return;
        }
        for (n_head, n_kv_head, head_dim, window) in
            [(9, 3, 64, None), (4, 1, 256, Some(100)), (8, 8, 128, None)]
        {
            let shape = AttnShape {
                n_head,
                n_kv_head,
                head_dim,
                scale: 1.0 / (head_dim as f32).sqrt() * 3.0,
                window,
            };
            let (kv_dim, row, len) = (n_kv_head * head_dim, n_head * head_dim, 300);
            let (k, v) = (fill_h(len * kv_dim, 31), fill_h(len * kv_dim, 32));
            let q = fill(len * row, 33);
            let outs: Vec<Vec<f32>> = ks
                .iter()
                .map(|&kernel| {
                    let mut out = vec![0.0; len * row];
                    attention_with(kernel, &shape, &q, &mut out, |t| TokenKv {
                        k: &k[..(t + 1) * kv_dim],
                        v: &v[..(t + 1) * kv_dim],
                        pos: t,
                    });
                    out
                })
                .collect();
            for (i, (a, b)) in outs[0].iter().zip(&outs[1]).enumerate() {
                assert!(
                    (a - b).abs() < 2e-6,
                    "hd{head_dim} {window:?} at {i}: {a} vs {b}"
                );
            }
        }
    }
}
