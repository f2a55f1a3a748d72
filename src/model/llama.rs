//! The llama family (SmolLM2, Llama 2/3.x, Mistral and other models GGUF files label
//! `llama`): pre-norm blocks, normal rope, SwiGLU, optional biases, tied or separate
//! output.

use super::{Activation, Features, Keys, ModelError};

pub(super) fn features(_keys: &Keys<'_>, head_dim: usize) -> Result<Features, ModelError> {
    Ok(Features {
        rope_neox: false,
        activation: Activation::Silu,
        embed_scale: None,
        qk_norm: false,
        post_norms: false,
        qkv_bias_required: false,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        swa: None,
        rope_base_swa: None,
        final_softcap: None,
    })
}
