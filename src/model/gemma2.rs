//! The gemma2 family: Gemma 3's shape without the Q/K norms, with soft-capping of the
//! attention scores (`attn_logit_softcapping`, default 50) and of the logits
//! (`final_logit_softcapping`, default 30), and a sliding window (default 4096) on every
//! other layer, starting with the first (`attention.sliding_window_pattern`, default 2);
//! both kinds of layer use the same rope base unless `rope.freq_base_swa` says otherwise.

use super::{Activation, Features, Keys, ModelError, SlidingWindow};

pub(super) fn features(
    keys: &Keys<'_>,
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    head_dim: usize,
) -> Result<Features, ModelError> {
    let window = keys.opt_u32("attention.sliding_window")?.unwrap_or(4096);
    let swa = (window > 0)
        .then(|| {
            Ok::<_, ModelError>(SlidingWindow {
                window,
                layers: super::gemma3::swa_layers(keys, n_layer, 2)?,
            })
        })
        .transpose()?;
    let cap = |k: &str, default: f32| -> Result<Option<f32>, ModelError> {
        let v = keys.opt_f32(k)?.unwrap_or(default);
        if v.is_nan() || v < 0.0 {
            return Err(ModelError::Invalid(format!("{} {v}", keys.key(k))));
        }
        Ok((v > 0.0).then_some(v))
    };
    // Gemma 2 27B has 46 layers.
    let attn_scale = super::gemma3::query_scale(n_layer == 46, n_embd, n_head, head_dim);
    let base = keys.opt_f32("rope.freq_base")?.unwrap_or(10000.0);
    Ok(Features {
        rope_neox: true,
        activation: Activation::GeluTanh,
        embed_scale: Some((n_embd as f32).sqrt()),
        post_norms: true,
        attn_scale,
        attn_softcap: cap("attn_logit_softcapping", 50.0)?,
        rope_base_swa: Some(keys.opt_f32("rope.freq_base_swa")?.unwrap_or(base)),
        swa,
        final_softcap: cap("final_logit_softcapping", 30.0)?,
        ..super::llama::features(head_dim)
    })
}
