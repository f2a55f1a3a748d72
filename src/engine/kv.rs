//! A sequence and its KV cache: per layer, keys and values of every position, each a
//! row of `n_head_kv * head_dim` f32.
//!
//! The buffers are zero-initialised allocations of the full `num_ctx`, which the
//! allocator serves from fresh pages: memory is only resident once positions are used.

use crate::model::Config;

/// One sequence's state.
pub struct Sequence {
    /// Positions filled (the next token goes to position `len`).
    pub len: usize,
    pub(super) k: Vec<Vec<f32>>,
    pub(super) v: Vec<Vec<f32>>,
}

impl Sequence {
    pub(super) fn new(c: &Config, num_ctx: usize) -> Sequence {
        let per_layer = num_ctx * c.kv_dim();
        Sequence {
            len: 0,
            k: (0..c.n_layer).map(|_| vec![0.0; per_layer]).collect(),
            v: (0..c.n_layer).map(|_| vec![0.0; per_layer]).collect(),
        }
    }
}
