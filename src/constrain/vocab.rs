//! The model's vocabulary as `llguidance` sees it: each token's bytes, with control
//! tokens (`<|im_end|>`, `<end_of_turn>`, …) behind the 0xFF marker byte that keeps
//! them out of every grammar's text, and ids past the tokenizer's vocabulary (padding
//! rows of the output matrix) empty, so no grammar admits them.

use std::sync::Arc;

use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::ParserFactory;

use crate::tokenizer::Tokenizer;

struct Env {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// How text the grammar forces is tokenized: as the model's tokenizer does.
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        let text = String::from_utf8_lossy(s);
        self.tokenizer.encode(&text, false, false)
    }
}

/// The trie and the parser factory of a model's vocabulary (`n_vocab` logits).
pub(super) fn factory(tokenizer: &Arc<Tokenizer>, n_vocab: usize) -> Result<ParserFactory, String> {
    let n = u32::try_from(n_vocab).map_err(|_| "vocabulary too large".to_string())?;
    let words: Vec<Vec<u8>> = (0..n)
        .map(|id| {
            let Some(piece) = tokenizer.token_piece(id) else {
                return Vec::new();
            };
            if tokenizer.is_control(id) || tokenizer.is_eog(id) {
                let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                w.extend_from_slice(&piece);
                w
            } else {
                piece.into_owned()
            }
        })
        .collect();
    let eog = tokenizer.eog_ids();
    let eos = eog
        .first()
        .copied()
        .or(tokenizer.eos())
        .filter(|&e| e < n)
        .ok_or_else(|| "the model has no end-of-generation token".to_string())?;
    let mut info = TokRxInfo::new(n, eos);
    info.tok_bos = tokenizer.bos().filter(|&b| b < n);
    let trie = TokTrie::from(&info, &words);
    let trie = trie.with_eos_tokens(&eog.into_iter().filter(|&e| e < n).collect::<Vec<_>>());
    let env: TokEnv = Arc::new(Env {
        trie,
        tokenizer: Arc::clone(tokenizer),
    });
    let mut f = ParserFactory::new_simple(&env).map_err(|e| e.to_string())?;
    f.quiet();
    Ok(f)
}
