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
//! then merged one after the other in increasing chunk order
//! ([`merge`](softmax::merge)) and the result normalised ([`finish`](softmax::finish)).
//! No score buffer is needed at any context length.
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

#[cfg(target_arch = "x86_64")]
mod avx2;
mod softmax;
mod split_k;
#[cfg(test)]
mod tests;
mod tile;

use half::f16;

use super::pool::Pool;
use split_k::split_k;
use tile::Tile;

/// The geometry of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually `1/sqrt(head_dim)`).
    pub scale: f32,
    /// Soft-capping of the scaled scores: `cap * tanh(score / cap)` (Gemma 2).
    pub softcap: Option<f32>,
    /// Sliding window: a query at position p sees keys at positions > p - window.
    pub window: Option<usize>,
}

impl AttnShape {
    /// The factor a tile multiplies q·k by: with soft-capping, `scale / cap`, so that
    /// the capped score is `cap * tanh(q·k * scale / cap)` (ggml's order of operations).
    fn tile_scale(&self) -> f32 {
        match self.softcap {
            Some(cap) => self.scale / cap,
            None => self.scale,
        }
    }
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
                scale: shape.tile_scale(),
                softcap: shape.softcap,
                block,
            };
            tile.attend(kernel, &qs[..m], &mut os[..m], &ranges[..m]);
            t = e;
        }
    });
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
