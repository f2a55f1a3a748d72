//! Slots: a model's engine sequences, each remembering which tokens its KV cache holds
//! after its last request, so that a request whose prompt starts with those tokens (a
//! chat continuing, a shared system prompt) only computes the rest.

use std::time::Instant;

use crate::engine::{Engine, SeqId};
use crate::generate::common_prefix;

/// One sequence of the engine and what its cache holds.
pub struct Slot {
    seq: Option<SeqId>,
    /// The sequence's context length.
    cap: usize,
    /// Tokens in the cache, in order (valid while the slot is free).
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
        Some((i, seq, prefix))
    }

    /// Gives a slot back with the tokens its cache now holds.
    pub fn free(&mut self, i: usize, cached: Vec<u32>) {
        if let Some(s) = self.slots.get_mut(i) {
            s.busy = false;
            s.cached = cached;
            s.last_used = Instant::now();
        }
    }

    /// Trims a slot's record to the positions the engine keeps.
    pub fn keep(&mut self, i: usize, n: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            s.cached.truncate(n);
        }
    }
}
