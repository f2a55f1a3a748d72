//! Slots: a model's engine sequences, each remembering which tokens its KV cache holds,
//! so that a request whose prompt starts with those tokens (a chat continuing, a shared
//! system prompt) only computes the rest. A request takes the free slot with the longest
//! shared prefix; when another slot, free or busy, shares a longer one, those positions'
//! keys and values are copied over (a busy sequence never rewrites positions below its
//! length, so its prefix is stable).

use std::time::Instant;

use crate::engine::{Engine, SeqId};
use crate::generate::common_prefix;

/// One sequence of the engine and what its cache holds.
pub struct Slot {
    seq: Option<SeqId>,
    /// The sequence's context length.
    cap: usize,
    /// Tokens in the cache, in order: while free, exactly what it holds; while busy, the
    /// prompt it was given (valid up to the engine sequence's length).
    pub cached: Vec<u32>,
    pub busy: bool,
    last_used: Instant,
}

/// The slots of the loaded model.
pub struct Slots {
    slots: Vec<Slot>,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            slots: (0..n.max(1))
                .map(|_| Slot {
                    seq: None,
                    cap: 0,
                    cached: Vec::new(),
                    busy: false,
                    last_used: Instant::now(),
                })
                .collect(),
        }
    }

    pub fn any_free(&self) -> bool {
        self.slots.iter().any(|s| !s.busy)
    }

    /// Takes the free slot whose cache shares the longest prefix with `ids` (among those
    /// of context length `num_ctx`), else the least recently used free one; sizes its
    /// sequence for `num_ctx`. Returns the slot's index, its sequence and the tokens of
    /// `ids` already cached. `None` when every slot is busy.
    pub fn take(
        &mut self,
        engine: &mut Engine,
        ids: &[u32],
        num_ctx: usize,
    ) -> Option<(usize, SeqId, usize)> {
        let score = |s: &Slot| {
            let p = if s.seq.is_some() && s.cap == num_ctx {
                common_prefix(&s.cached, ids)
            } else {
                0
            };
            // Longest prefix first; among equals, the least recently used.
            (p, std::cmp::Reverse(s.last_used))
        };
        let (i, _) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.busy)
            .max_by_key(|(_, s)| score(s))?;
        let s = &mut self.slots[i];
        let prefix = score(s).0;
        if s.seq.is_none() || s.cap != num_ctx {
            if let Some(old) = s.seq.take() {
                engine.remove_sequence(old);
            }
            s.seq = Some(engine.add_sequence_with_ctx(num_ctx));
            s.cap = num_ctx;
            s.cached.clear();
        }
        s.busy = true;
        s.last_used = Instant::now();
        let seq = s.seq?;
        // A longer prefix elsewhere: copy it.
        let donor = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(j, d)| j != i && d.seq.is_some())
            .map(|(j, d)| {
                let held = d.seq.map_or(0, |q| engine.sequence_len(q));
                (j, common_prefix(&d.cached, ids).min(held))
            })
            .max_by_key(|&(_, p)| p);
        let mut prefix = prefix;
        if let Some((j, p)) = donor {
            // Worth a copy only past a few tokens (the last prompt token is recomputed).
            if p > prefix + 4 {
                if let Some(src) = self.slots[j].seq {
                    prefix = engine.copy_prefix(src, seq, p);
                }
            }
        }
        self.slots[i].cached = ids[..prefix].to_vec();
        Some((i, seq, prefix))
    }

    /// Records the prompt a busy slot is computing (what other slots may copy).
    pub fn set_prompt(&mut self, i: usize, ids: &[u32]) {
        if let Some(s) = self.slots.get_mut(i) {
            s.cached = ids.to_vec();
        }
    }

    /// Gives a slot back with the tokens its cache now holds.
    pub fn free(&mut self, i: usize, cached: Vec<u32>) {
        if let Some(s) = self.slots.get_mut(i) {
            s.busy = false;
            s.cached = cached;
            s.last_used = Instant::now();
        }
    }
}
