//! The phi3 family (Phi-3, Phi-3.5, Phi-4-mini): NEOX rope over the first
//! `rope.dimension_count` dimensions of each head, Q/K/V fused in one `attn_qkv` matrix
//! and gate/up in one `ffn_up` (gate rows first), and "longrope": per-pair frequency
//! factors (`rope_factors_long` when the context exceeds
//! `rope.scaling.original_context_length`, else `rope_factors_short`) with the rotated
//! values multiplied by `rope.scaling.attn_factor`.
//!
//! `attention.sliding_window` is ignored, as llama.cpp does (its converters set it for
//! every layer although the models alternate; ggml-org/llama.cpp#13676).

use super::{Features, Keys, ModelError};

pub(super) fn features(keys: &Keys<'_>, head_dim: usize) -> Result<Features, ModelError> {
    let attn_factor = keys.opt_f32("rope.scaling.attn_factor")?.unwrap_or(1.0);
    if !attn_factor.is_finite() || attn_factor <= 0.0 {
        return Err(ModelError::Invalid(format!(
            "rope.scaling.attn_factor {attn_factor}"
        )));
    }
    Ok(Features {
        rope_neox: true,
        fused_gate_up: true,
        rope_attn_factor: attn_factor,
        ..super::llama::features(head_dim)
    })
}
