//! The qwen2 family (Qwen 2 / 2.5): the llama shape with Q/K/V biases, NEOX rope and
//! (for the small models) embeddings tied to the output.

use super::Features;

pub(super) fn features(head_dim: usize) -> Features {
    Features {
        rope_neox: true,
        qkv_bias_required: true,
        ..super::llama::features(head_dim)
    }
}
