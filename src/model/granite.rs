//! The granite and granitemoe families (IBM Granite 3.x, dense and mixture of experts,
//! the latter optionally with a shared expert): the llama shape with four multipliers from
//! the metadata: token embeddings times `embedding_scale`, q·k times `attention.scale`
//! (instead of `1/sqrt(head_dim)`), each sublayer's output times `residual_scale` before
//! the residual add, and the logits divided by `logit_scale` (required, as in llama.cpp).

use super::{Features, Keys, ModelError};

pub(super) fn features(keys: &Keys<'_>, head_dim: usize) -> Result<Features, ModelError> {
    let base = super::llama::features(head_dim);
    // A key that is absent or 0 means "no multiplier", as llama.cpp reads them.
    let opt = |k: &str| -> Result<Option<f32>, ModelError> {
        match keys.opt_f32(k)? {
            Some(v) if !v.is_finite() => Err(ModelError::Invalid(format!("{} {v}", keys.key(k)))),
            Some(v) if v != 0.0 => Ok(Some(v)),
            _ => Ok(None),
        }
    };
    let logit_scale =
        opt("logit_scale")?.ok_or_else(|| ModelError::MissingKey(keys.key("logit_scale")))?;
    Ok(Features {
        embed_scale: opt("embedding_scale")?,
        attn_scale: opt("attention.scale")?.unwrap_or(base.attn_scale),
        residual_scale: opt("residual_scale")?,
        logit_scale: Some(logit_scale),
        ..base
    })
}
