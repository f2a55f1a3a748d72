//! The qwen3 and qwen3moe families (Qwen 3): the llama shape with NEOX rope, a per-head
//! RMSNorm of Q and K before rope and no biases; heads may be wider than
//! `n_embd / n_head` (`attention.key_length`). `qwen3moe` replaces every FFN with a
//! mixture of experts (`super::layer::Moe`; its keys are read there).

use super::Features;

pub(super) fn features(head_dim: usize) -> Features {
    Features {
        rope_neox: true,
        qk_norm: true,
        ..super::llama::features(head_dim)
    }
}
