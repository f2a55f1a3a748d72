//! The llama family (SmolLM2, Llama 2/3.x, Mistral and other models GGUF files label
//! `llama`): pre-norm blocks, normal rope, SwiGLU, optional biases, tied or separate
//! output. Its features are the base the other families change.

use super::{Activation, Features};

pub(super) fn features(head_dim: usize) -> Features {
    Features {
        rope_neox: false,
        activation: Activation::Silu,
        embed_scale: None,
        qk_norm: false,
        post_norms: false,
        qkv_bias_required: false,
        fused_gate_up: false,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        attn_softcap: None,
        swa: None,
        rope_base_swa: None,
        rope_attn_factor: 1.0,
        residual_scale: None,
        final_softcap: None,
        logit_scale: None,
    }
}
