//! The qwen2 family (Qwen 2 / 2.5): the llama shape with Q/K/V biases, NEOX rope and
//! (for the small models) embeddings tied to the output.

use super::{Activation, Features, Keys, ModelError};

pub(super) fn features(_keys: &Keys<'_>, head_dim: usize) -> Result<Features, ModelError> {
    Ok(Features {
        rope_neox: true,
        activation: Activation::Silu,
        embed_scale: None,
        qk_norm: false,
        post_norms: false,
        qkv_bias_required: true,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        swa: None,
        rope_base_swa: None,
        final_softcap: None,
    })
}
