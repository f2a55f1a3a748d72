//! The gemma3 family: embeddings scaled by sqrt(n_embd), GeGLU (tanh), RMSNorm weights
//! used as stored (the converter already added Gemma's `1 +`), per-head Q/K norms,
//! post-attention and post-FFN norms, and sliding-window attention on all layers but
//! every `pattern`-th (default 6), whose rope base defaults to 10000.

use super::{Activation, Features, Keys, ModelError, SlidingWindow};
use crate::gguf::MetaValue;

pub(super) fn features(
    keys: &Keys<'_>,
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    head_dim: usize,
) -> Result<Features, ModelError> {
    let swa = match keys.opt_u32("attention.sliding_window")? {
        Some(window) if window > 0 => Some(SlidingWindow {
            window,
            layers: swa_layers(keys, n_layer, 6)?,
        }),
        _ => None,
    };
    // Gemma 3 27B has 62 layers.
    let attn_scale = query_scale(n_layer == 62, n_embd, n_head, head_dim);
    Ok(Features {
        rope_neox: true,
        activation: Activation::GeluTanh,
        embed_scale: Some((n_embd as f32).sqrt()),
        qk_norm: true,
        post_norms: true,
        attn_scale,
        rope_base_swa: Some(keys.opt_f32("rope.freq_base_swa")?.unwrap_or(10000.0)),
        swa,
        final_softcap: keys
            .opt_f32("final_logit_softcapping")?
            .filter(|&c| c > 0.0),
        ..super::llama::features(head_dim)
    })
}

/// Gemma's query scale: the 27B models (as llama.cpp tells them by layer count) scale by
/// `1/sqrt(n_embd / n_head)`, the others by `1/sqrt(head_dim)`.
pub(super) fn query_scale(is_27b: bool, n_embd: usize, n_head: usize, head_dim: usize) -> f32 {
    let d = if is_27b { n_embd / n_head } else { head_dim };
    1.0 / (d as f32).sqrt()
}

/// Which layers use the sliding window, from `attention.sliding_window_pattern`: either a
/// number `p` (layer l is global when `l % p == p - 1`; 0: all local) or one boolean per
/// layer (true: sliding window), as llama.cpp reads it.
pub(super) fn swa_layers(
    keys: &Keys<'_>,
    n_layer: usize,
    default_pattern: usize,
) -> Result<Vec<bool>, ModelError> {
    let key = keys.key("attention.sliding_window_pattern");
    if let Some(MetaValue::Array(a)) = keys.f.get(&key) {
        let items = keys.f.array_items(a);
        if items.len() != n_layer {
            return Err(ModelError::Invalid(format!(
                "{key} has {} entries for {n_layer} layers",
                items.len()
            )));
        }
        return items
            .iter()
            .map(|v| match v {
                MetaValue::Bool(b) => Ok(*b),
                _ => Err(ModelError::Invalid(format!("{key}: not booleans"))),
            })
            .collect();
    }
    let pattern = keys
        .opt_u32("attention.sliding_window_pattern")?
        .unwrap_or(default_pattern);
    Ok((0..n_layer)
        .map(|l| pattern == 0 || l % pattern < pattern - 1)
        .collect())
}
