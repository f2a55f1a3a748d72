//! Reading a [`TokenizerConfig`] out of GGUF metadata (`tokenizer.ggml.*`).
//!
//! Absent optional keys stay `None` (the tokenizer applies llama.cpp's defaults); a key that
//! is present with the wrong type is an error naming it, never silently ignored.

use crate::gguf::{GgufError, GgufFile, StrArray};

use super::{SpecialIds, Strings, TokenizerConfig, TokenizerError};

/// A string array copied into one buffer (two allocations, whatever its length).
fn packed(a: StrArray<'_>, key: &'static str) -> Result<Strings, TokenizerError> {
    let mut s = Strings::with_capacity(a.len(), a.text_len().min(u32::MAX as usize));
    for t in a.iter() {
        if !s.try_push(t) {
            return Err(TokenizerError::BadMetadata {
                key,
                msg: "more than 4 GiB of strings".to_string(),
            });
        }
    }
    Ok(s)
}

fn bad(key: &'static str) -> impl FnOnce(GgufError) -> TokenizerError {
    move |e| TokenizerError::BadMetadata {
        key,
        msg: e.to_string(),
    }
}

impl TokenizerConfig {
    /// The tokenizer metadata of a GGUF file.
    pub fn from_gguf(f: &GgufFile) -> Result<TokenizerConfig, TokenizerError> {
        const MODEL: &str = "tokenizer.ggml.model";
        const PRE: &str = "tokenizer.ggml.pre";
        const TOKENS: &str = "tokenizer.ggml.tokens";
        const SCORES: &str = "tokenizer.ggml.scores";
        const TYPES: &str = "tokenizer.ggml.token_type";
        const MERGES: &str = "tokenizer.ggml.merges";

        let model = f
            .get_str(MODEL)
            .map_err(bad(MODEL))?
            .ok_or(TokenizerError::MissingKey(MODEL))?
            .to_string();
        let pre = f.get_str(PRE).map_err(bad(PRE))?.map(str::to_string);
        let tokens = f
            .get_str_array(TOKENS)
            .map_err(bad(TOKENS))?
            .ok_or(TokenizerError::MissingKey(TOKENS))?;
        let tokens = packed(tokens, TOKENS)?;
        let scores = f.get_f32_array(SCORES).map_err(bad(SCORES))?;
        let token_types = f.get_i32_array(TYPES).map_err(bad(TYPES))?;
        let merges = match f.get_str_array(MERGES).map_err(bad(MERGES))? {
            Some(a) => Some(packed(a, MERGES)?),
            None => None,
        };

        let id = |key: &'static str| f.get_u32(key).map_err(bad(key));
        // The deprecated prefix/suffix/middle keys win over fim_*, as in llama.cpp (read last).
        let special = SpecialIds {
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            eot: id("tokenizer.ggml.eot_token_id")?,
            eom: id("tokenizer.ggml.eom_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            sep: id("tokenizer.ggml.seperator_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            mask: id("tokenizer.ggml.mask_token_id")?,
            fim_pre: id("tokenizer.ggml.prefix_token_id")?
                .or(id("tokenizer.ggml.fim_pre_token_id")?),
            fim_suf: id("tokenizer.ggml.suffix_token_id")?
                .or(id("tokenizer.ggml.fim_suf_token_id")?),
            fim_mid: id("tokenizer.ggml.middle_token_id")?
                .or(id("tokenizer.ggml.fim_mid_token_id")?),
            fim_pad: id("tokenizer.ggml.fim_pad_token_id")?,
            fim_rep: id("tokenizer.ggml.fim_rep_token_id")?,
            fim_sep: id("tokenizer.ggml.fim_sep_token_id")?,
        };
        let flag = |key: &'static str| f.get_bool(key).map_err(bad(key));
        Ok(TokenizerConfig {
            model,
            pre,
            tokens,
            scores,
            token_types,
            merges,
            special,
            add_bos: flag("tokenizer.ggml.add_bos_token")?,
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix")?,
            add_sep: flag("tokenizer.ggml.add_sep_token")?,
            normalizer_lowercase: flag("tokenizer.ggml.normalizer.lowercase")?,
            normalizer_strip_accents: flag("tokenizer.ggml.normalizer.strip_accents")?,
        })
    }
}
