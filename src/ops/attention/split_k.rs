//! The split-K schedule (a few tokens, i.e. decode): partial states per (token, chunk),
//! merged afterwards in chunk order.

use super::softmax::{finish, merge, State, EMPTY};
use super::tile::Tile;
use super::{clip, key_block, range, AttnShape, Geometry, Kernel, TokenKv, CHUNK, MAX_TILE};
use crate::ops::pool::Pool;

/// The split-K schedule: a task is (token, chunk, kv head, slice of the group's heads);
/// partial states go to a buffer, merged afterwards by the caller in chunk order.
pub(super) fn split_k<'c, F>(
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
            scale: shape.tile_scale(),
            softcap: shape.softcap,
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
