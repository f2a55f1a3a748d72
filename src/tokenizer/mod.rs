//! Tokenizers built from GGUF metadata alone, giving exactly llama.cpp's token ids.
//!
//! Three vocabulary kinds are implemented:
//! - `tokenizer.ggml.model = "gpt2"`: GPT-2 byte-level BPE ([`bpe`]) after a pre-tokenizer
//!   chosen by `tokenizer.ggml.pre` ([`pretok`]);
//! - `tokenizer.ggml.model = "llama"`: SentencePiece-style merges by score with byte fallback
//!   ([`spm`]), used by Llama 1/2 and Gemma;
//! - `tokenizer.ggml.model = "bert"`: WordPiece ([`wpm`]), used by BERT-style embedding
//!   models (nomic-embed-text).
//!
//! The pipeline of [`Tokenizer::encode`] is llama.cpp's `llama_vocab::impl::tokenize`:
//! 1. special-token partition (`tokenizer_st_partition`): every control, user-defined and
//!    unknown token found in the text becomes a single id, longest texts first (control and
//!    unknown ones only when `parse_special`);
//! 2. each remaining text fragment is tokenized on its own;
//! 3. BOS/EOS are added as the metadata says when `add_special` (WordPiece: always
//!    `[CLS]` before and `[SEP]` after, as llama.cpp does for that vocabulary type).
//!
//! [`TokenizerConfig`] holds everything the tokenizer is built from; [`Tokenizer::from_gguf`]
//! only reads it out of the file (see [`gguf_config`]), so tests and tools can build a
//! tokenizer from edited metadata (e.g. another pre-tokenizer).

pub mod bpe;
mod gguf_config;
pub mod pretok;
mod special;
pub mod spm;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod unicode;
mod unicode_tables;
pub mod vocab;
pub mod wpm;

use std::borrow::Cow;
use std::collections::BTreeSet;

pub use bpe::{FxHasher, FxMap};
pub use pretok::PreTokenizer;
use special::{
    Frag, EOG_TEXTS, EOM_TEXTS, EOT_TEXTS, FIM_MID_TEXTS, FIM_PAD_TEXTS, FIM_PRE_TEXTS,
    FIM_REP_TEXTS, FIM_SEP_TEXTS, FIM_SUF_TEXTS,
};
pub use stream::{StreamDecoder, TextDecoder};
pub use vocab::Strings;
use vocab::Vocab;

/// Errors from building a tokenizer or decoding ids.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(
        "unknown pre-tokenizer '{0}' (tokenizer.ggml.pre): hearth implements 'default', \
         'gpt-2', 'smollm', 'llama-bpe', 'qwen2', 'gpt-4o' and the names llama.cpp treats as the \
         same"
    )]
    UnknownPreTokenizer(String),
    #[error(
        "unsupported tokenizer model '{0}' (tokenizer.ggml.model): hearth implements 'gpt2', \
         'llama' and 'bert'"
    )]
    UnsupportedModel(String),
    #[error("missing metadata key {0}")]
    MissingKey(&'static str),
    #[error("metadata key {key}: {msg}")]
    BadMetadata { key: &'static str, msg: String },
    #[error("{key} has {got} entries but the vocabulary has {need} tokens")]
    LengthMismatch {
        key: &'static str,
        got: usize,
        need: usize,
    },
    #[error("the vocabulary is empty")]
    EmptyVocab,
    #[error("the vocabulary has {0} tokens, more than token ids can address")]
    VocabTooLarge(usize),
    #[error("merge #{index} '{merge}' is malformed: {reason}")]
    InvalidMerge {
        index: usize,
        merge: String,
        reason: &'static str,
    },
    #[error("token id {id} is outside the vocabulary (size {vocab_size})")]
    InvalidTokenId { id: u32, vocab_size: usize },
}

/// Token attribute bits, as llama.cpp's `llama_token_attr`.
pub mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;
}

/// `tokenizer.ggml.token_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl TokenType {
    fn from_i32(t: i32) -> TokenType {
        match t {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }
    fn attr(self) -> u16 {
        match self {
            TokenType::Undefined => 0,
            TokenType::Normal => attr::NORMAL,
            TokenType::Unknown => attr::UNKNOWN,
            TokenType::Control => attr::CONTROL,
            TokenType::UserDefined => attr::USER_DEFINED,
            TokenType::Unused => attr::UNUSED,
            TokenType::Byte => attr::BYTE,
        }
    }
}

/// Special token ids as the metadata gives them (`tokenizer.ggml.*_token_id`); `None` = key
/// absent. Out-of-range values are ignored (llama.cpp warns and keeps its default).
#[derive(Clone, Debug, Default)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

/// Everything a [`Tokenizer`] is built from: the `tokenizer.ggml.*` metadata.
#[derive(Clone, Debug, Default)]
pub struct TokenizerConfig {
    /// `tokenizer.ggml.model`: "gpt2", "llama" or "bert".
    pub model: String,
    /// `tokenizer.ggml.pre` (gpt2 vocabularies only).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, raw bytes.
    pub tokens: Strings,
    /// `tokenizer.ggml.scores` (SPM merge priorities).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type`.
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`, "left right" strings in rank order.
    pub merges: Option<Strings>,
    pub special: SpecialIds,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.ggml.add_sep_token`.
    pub add_sep: Option<bool>,
    /// `tokenizer.ggml.normalizer.lowercase` (WordPiece).
    pub normalizer_lowercase: Option<bool>,
    /// `tokenizer.ggml.normalizer.strip_accents` (WordPiece; defaults to the lowercase flag).
    pub normalizer_strip_accents: Option<bool>,
}

enum Kind {
    Bpe {
        bpe: Box<bpe::Bpe>,
        pre: PreTokenizer,
    },
    Spm,
    Wpm(wpm::Wpm),
}

/// The vocabulary type, as `tokenizer.ggml.model` names it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ModelType {
    Bpe,
    Spm,
    Wpm,
}

/// Text <-> token ids for one model.
pub struct Tokenizer {
    model: String,
    pre_name: Option<String>,
    kind: Kind,
    /// Token texts and the text -> id index.
    vocab: Vocab,
    attrs: Vec<u16>,
    scores: Vec<f32>,
    special: SpecialIds,
    eog: BTreeSet<u32>,
    add_bos: bool,
    add_eos: bool,
    /// `[SEP]` is appended (llama.cpp's `add_sep`; reported, the WordPiece encoder always
    /// appends it with `add_special`, as llama.cpp's does).
    add_sep: bool,
    add_space_prefix: bool,
    /// Control/user-defined/unknown tokens, longest text first (ties: lower id first).
    special_cache: Vec<u32>,
    /// Finds which of `special_cache` occur in a text (pattern index = cache index).
    special_matcher: Option<special::SpecialMatcher>,
    max_token_len: usize,
    /// SPM: the token for each byte (`<0xXX>`, else the one-byte text).
    byte_tokens: [Option<u32>; 256],
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.model)
            .field("pre", &self.pre_name)
            .field("vocab_size", &self.vocab.len())
            .field("bos", &self.special.bos)
            .field("eos", &self.special.eos)
            .field("eog", &self.eog)
            .finish_non_exhaustive()
    }
}

fn too_long(key: &'static str) -> TokenizerError {
    TokenizerError::BadMetadata {
        key,
        msg: "more than 4 GiB of token texts".to_string(),
    }
}

/// Parse "<0xXX>" the way llama.cpp does (`strtol` of the two characters after "<0x").
fn parse_byte_token(text: &[u8]) -> u8 {
    let mut v: u32 = 0;
    for &c in text.iter().skip(3).take(2) {
        match (c as char).to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    v as u8
}

impl Tokenizer {
    /// Build the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(f: &crate::gguf::GgufFile) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::new(TokenizerConfig::from_gguf(f)?)
    }

    /// Build the tokenizer from its configuration, with llama.cpp's defaults and fix-ups.
    pub fn new(mut cfg: TokenizerConfig) -> Result<Tokenizer, TokenizerError> {
        let n = cfg.tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if n >= u32::MAX as usize / 2 {
            return Err(TokenizerError::VocabTooLarge(n));
        }
        let n32 = n as u32;
        let model_type = match cfg.model.as_str() {
            "gpt2" => ModelType::Bpe,
            "llama" => ModelType::Spm,
            "bert" => ModelType::Wpm,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        if let Some(s) = &cfg.scores {
            if s.len() < n {
                return Err(TokenizerError::LengthMismatch {
                    key: "tokenizer.ggml.scores",
                    got: s.len(),
                    need: n,
                });
            }
        }
        if let Some(t) = &cfg.token_types {
            if t.len() < n {
                return Err(TokenizerError::LengthMismatch {
                    key: "tokenizer.ggml.token_type",
                    got: t.len(),
                    need: n,
                });
            }
        }

        // Token texts; llama.cpp renames empty ones so that every text is distinct from "".
        // The config is ours: its packed texts are kept as they are unless one is empty.
        let mut texts = std::mem::take(&mut cfg.tokens);
        if texts.iter().any(<[u8]>::is_empty) {
            let mut renamed = Strings::with_capacity(n, texts.total_bytes() + 64);
            for (i, t) in texts.iter().enumerate() {
                let ok = if t.is_empty() {
                    renamed.try_push(format!("[EMPTY_{i}]").as_bytes())
                } else {
                    renamed.try_push(t)
                };
                if !ok {
                    return Err(too_long("tokenizer.ggml.tokens"));
                }
            }
            texts = renamed;
        }
        texts.shrink_to_fit();
        let max_token_len = texts.iter().map(<[u8]>::len).max().unwrap_or(0);
        // A repeated text maps to its last id, as llama.cpp's map assignment does.
        let (vocab, has_dups) = Vocab::new(texts);
        let texts = vocab.texts();
        let scores: Vec<f32> = match cfg.scores.take() {
            Some(mut s) => {
                s.truncate(n);
                s
            }
            None => vec![0.0; n],
        };
        let mut attrs: Vec<u16> = match &cfg.token_types {
            Some(t) => t[..n]
                .iter()
                .map(|&x| TokenType::from_i32(x).attr())
                .collect(),
            None => vec![attr::NORMAL; n],
        };

        // Pre-tokenizer and type defaults.
        let (pre, mut add_bos, mut special) = match model_type {
            ModelType::Bpe => {
                let pre = PreTokenizer::from_name(cfg.pre.as_deref())?;
                let add_bos = pre == PreTokenizer::Llama3;
                let d = SpecialIds {
                    bos: Some(11),
                    eos: Some(11),
                    ..SpecialIds::default()
                };
                (Some(pre), add_bos, d)
            }
            ModelType::Spm => {
                let d = SpecialIds {
                    bos: Some(1),
                    eos: Some(2),
                    unk: Some(0),
                    ..SpecialIds::default()
                };
                (None, true, d)
            }
            ModelType::Wpm => {
                let d = SpecialIds {
                    bos: Some(101),
                    unk: Some(100),
                    sep: Some(102),
                    pad: Some(0),
                    mask: Some(103),
                    ..SpecialIds::default()
                };
                (None, true, d)
            }
        };
        let mut add_space_prefix = model_type == ModelType::Spm;
        let mut add_eos = false;
        let mut add_sep = model_type == ModelType::Wpm;
        if let Some(v) = cfg.add_space_prefix {
            add_space_prefix = v;
        }
        if let Some(v) = cfg.add_bos {
            add_bos = v;
        }
        if let Some(v) = cfg.add_eos {
            add_eos = v;
        }
        if let Some(v) = cfg.add_sep {
            add_sep = v;
        }

        // Special ids: defaults out of range are disabled; metadata values out of range are
        // ignored (the default stays).
        {
            let m = &cfg.special;
            let s = &mut special;
            let pairs: [(&mut Option<u32>, Option<u32>); 14] = [
                (&mut s.bos, m.bos),
                (&mut s.eos, m.eos),
                (&mut s.eot, m.eot),
                (&mut s.eom, m.eom),
                (&mut s.unk, m.unk),
                (&mut s.sep, m.sep),
                (&mut s.pad, m.pad),
                (&mut s.mask, m.mask),
                (&mut s.fim_pre, m.fim_pre),
                (&mut s.fim_suf, m.fim_suf),
                (&mut s.fim_mid, m.fim_mid),
                (&mut s.fim_pad, m.fim_pad),
                (&mut s.fim_rep, m.fim_rep),
                (&mut s.fim_sep, m.fim_sep),
            ];
            for (slot, meta) in pairs {
                if slot.is_some_and(|id| id >= n32) {
                    *slot = None;
                }
                if let Some(id) = meta {
                    if id < n32 {
                        *slot = Some(id);
                    }
                }
            }
        }

        // Detect EOT/EOM/FIM tokens by text when the metadata does not name them; such a
        // token becomes control. llama.cpp walks a hash map here, so with several candidates
        // its pick is arbitrary; hearth takes the lowest id.
        // With every text distinct, the index gives the only id of each candidate text.
        let ids_of = |list: &[&str]| -> Vec<u32> {
            if has_dups {
                (0..n32)
                    .filter(|&i| list.iter().any(|t| t.as_bytes() == &texts[i as usize]))
                    .collect()
            } else {
                let mut v: Vec<u32> = list.iter().filter_map(|t| vocab.id(t.as_bytes())).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        let find = |list: &[&str]| -> Option<u32> { ids_of(list).first().copied() };
        let detect = |slot: &mut Option<u32>, list: &[&str], attrs: &mut Vec<u16>| {
            if slot.is_none() {
                if let Some(id) = find(list) {
                    *slot = Some(id);
                    attrs[id as usize] |= attr::CONTROL;
                }
            }
        };
        detect(&mut special.eot, EOT_TEXTS, &mut attrs);
        detect(&mut special.eom, EOM_TEXTS, &mut attrs);
        detect(&mut special.fim_pre, FIM_PRE_TEXTS, &mut attrs);
        detect(&mut special.fim_suf, FIM_SUF_TEXTS, &mut attrs);
        detect(&mut special.fim_mid, FIM_MID_TEXTS, &mut attrs);
        detect(&mut special.fim_pad, FIM_PAD_TEXTS, &mut attrs);
        detect(&mut special.fim_rep, FIM_REP_TEXTS, &mut attrs);
        detect(&mut special.fim_sep, FIM_SEP_TEXTS, &mut attrs);

        // Control tokens named "unused" are unused.
        let unused = memchr::memmem::Finder::new(b"unused");
        for (i, t) in texts.iter().enumerate() {
            if attrs[i] & attr::CONTROL != 0 && unused.find(t).is_some() {
                attrs[i] |= attr::UNUSED;
            }
        }

        // End-of-generation set.
        let mut eog = BTreeSet::new();
        for id in [special.fim_pad, special.fim_rep, special.fim_sep]
            .into_iter()
            .flatten()
        {
            eog.insert(id);
        }
        for i in ids_of(EOG_TEXTS) {
            eog.insert(i);
            attrs[i as usize] |= attr::CONTROL;
        }
        // gpt-oss: these are always rendered.
        for i in ids_of(&["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]) {
            attrs[i as usize] = attr::USER_DEFINED;
        }
        for id in [special.eos, special.eot, special.eom]
            .into_iter()
            .flatten()
        {
            eog.insert(id);
        }
        // o200k_harmony / solar-open: "<|end|>" is not end-of-generation there.
        {
            let text_of = |id: u32| &texts[id as usize];
            let has = |eog: &BTreeSet<u32>, s: &[u8]| eog.iter().any(|&id| text_of(id) == s);
            let end_id = eog.iter().copied().find(|&id| text_of(id) == b"<|end|>");
            let has_call = has(&eog, b"<|call|>") || has(&eog, b"<|calls|>");
            if let Some(end_id) = end_id {
                if has_call && (has(&eog, b"<|return|>") || has(&eog, b"<|flush|>")) {
                    eog.remove(&end_id);
                    attrs[end_id as usize] = attr::USER_DEFINED;
                }
            }
            // gemma4 / plamo: "</s>" is a normal token when these markers exist.
            let s_id = eog.iter().copied().find(|&id| text_of(id) == b"</s>");
            if let Some(s_id) = s_id {
                if has(&eog, b"<|tool_response>") || has(&eog, b"<|plamo:eos|>") {
                    eog.remove(&s_id);
                    attrs[s_id as usize] = attr::NORMAL;
                }
            }
        }

        // Special-token cache, longest first. Texts that are not UTF-8 are left out: a
        // match of such a text could split a character of the input.
        let mut special_cache: Vec<u32> = (0..n32)
            .filter(|&i| {
                attrs[i as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
                    && std::str::from_utf8(&texts[i as usize]).is_ok()
            })
            .collect();
        special_cache.sort_by(|&a, &b| {
            texts
                .len_of(b as usize)
                .cmp(&texts.len_of(a as usize))
                .then(a.cmp(&b))
        });
        let special_matcher =
            special::SpecialMatcher::new(special_cache.iter().map(|&i| &texts[i as usize]));

        // SPM byte tokens.
        let mut byte_tokens = [None; 256];
        if model_type == ModelType::Spm {
            for (b, slot) in byte_tokens.iter_mut().enumerate() {
                let hex = format!("<0x{b:02X}>");
                *slot = vocab
                    .id(hex.as_bytes())
                    .or_else(|| vocab.id(&[b as u8][..]));
            }
        }

        let kind = match (model_type, pre) {
            (ModelType::Bpe, Some(pre)) => {
                let merges = cfg
                    .merges
                    .as_ref()
                    .ok_or(TokenizerError::MissingKey("tokenizer.ggml.merges"))?;
                let bpe = bpe::Bpe::new(merges, &vocab, n32, pre.ignore_merges())?;
                Kind::Bpe {
                    bpe: Box::new(bpe),
                    pre,
                }
            }
            (ModelType::Wpm, _) => {
                // Every word that does not tokenize becomes [UNK]: without one there is no
                // output for it (llama.cpp would emit an invalid id).
                let unk = special.unk.ok_or_else(|| TokenizerError::BadMetadata {
                    key: "tokenizer.ggml.unknown_token_id",
                    msg: format!(
                        "a WordPiece vocabulary needs an [UNK] token id below its size {n}"
                    ),
                })?;
                let lowercase = cfg.normalizer_lowercase.unwrap_or(true);
                let norm = wpm::Normalizer {
                    lowercase,
                    strip_accents: cfg.normalizer_strip_accents.unwrap_or(lowercase),
                };
                Kind::Wpm(wpm::Wpm::new(&vocab, unk, norm))
            }
            // A BPE vocabulary always has its pre-tokenizer (set above).
            (ModelType::Spm, _) | (ModelType::Bpe, None) => Kind::Spm,
        };

        unicode::warm_up();
        Ok(Tokenizer {
            model: cfg.model,
            pre_name: cfg.pre,
            kind,
            vocab,
            attrs,
            scores,
            special,
            eog,
            add_bos,
            add_eos,
            add_sep,
            add_space_prefix,
            special_cache,
            special_matcher,
            max_token_len,
            byte_tokens,
        })
    }

    /// Tokenize `text`. `add_special`: put BOS/EOS around it as the metadata says
    /// (WordPiece: `[CLS]` and `[SEP]`, whatever the flags, as llama.cpp);
    /// `parse_special`: control tokens written in the text (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let frags = self.partition(text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let is_wpm = matches!(self.kind, Kind::Wpm(_));
        if add_special && (self.add_bos || is_wpm) {
            if let Some(b) = self.special.bos {
                out.push(b);
            }
        }
        match &self.kind {
            Kind::Bpe { bpe, pre } => {
                let mut words = Vec::new();
                let mut scratch = bpe::Scratch::default();
                for f in &frags {
                    match f {
                        Frag::Token(id) => out.push(*id),
                        Frag::Text(r) => {
                            let Some(s) = text.get(r.clone()) else {
                                continue;
                            };
                            words.clear();
                            pre.split(s, &mut words);
                            for w in &words {
                                bpe.encode_word(
                                    &s.as_bytes()[w.clone()],
                                    &self.vocab,
                                    &mut scratch,
                                    &mut out,
                                );
                            }
                        }
                    }
                }
            }
            Kind::Spm => {
                let v = spm::SpmVocab {
                    vocab: &self.vocab,
                    scores: &self.scores,
                    max_token_len: self.max_token_len,
                    byte_tokens: &self.byte_tokens,
                    unk: self.special.unk,
                };
                // A leading space is added to the first fragment and to every fragment that
                // follows a special token, when add_space_prefix is on.
                let mut prev_special = true;
                for f in &frags {
                    match f {
                        Frag::Token(id) => {
                            out.push(*id);
                            prev_special = true;
                        }
                        Frag::Text(r) => {
                            let Some(s) = text.get(r.clone()) else {
                                continue;
                            };
                            let esc = spm::escape(s, self.add_space_prefix && prev_special);
                            spm::tokenize(&v, &esc, &mut out);
                            prev_special = false;
                        }
                    }
                }
            }
            Kind::Wpm(w) => {
                let mut scratch = wpm::Scratch::default();
                for f in &frags {
                    match f {
                        Frag::Token(id) => out.push(*id),
                        Frag::Text(r) => {
                            if let Some(s) = text.get(r.clone()) {
                                w.encode(s, &self.vocab, &mut scratch, &mut out);
                            }
                        }
                    }
                }
            }
        }
        if add_special {
            let last = if is_wpm {
                self.special.sep
            } else if self.add_eos {
                self.special.eos
            } else {
                None
            };
            out.extend(last);
        }
        out
    }

    /// Decode ids to bytes: the concatenation of their pieces, control and unknown tokens
    /// rendered as nothing (llama.cpp's default). Callers may convert lossily to text.
    /// An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        self.decode_with(ids, false)
    }

    /// [`Tokenizer::decode`], optionally rendering control tokens as their text.
    ///
    /// Like llama.cpp's `llama_detokenize` (without `remove_special`), when the vocabulary
    /// adds a space prefix the first token's leading space is dropped. llama.cpp's optional
    /// "clean up tokenization spaces" pass is not applied: the bytes are exact.
    pub fn decode_with(
        &self,
        ids: &[u32],
        render_special: bool,
    ) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (i, &id) in ids.iter().enumerate() {
            let start = out.len();
            self.piece_for_output(id, render_special, &mut out)?;
            if i == 0 && self.add_space_prefix && out.get(start) == Some(&b' ') {
                out.remove(start);
            }
        }
        Ok(out)
    }

    /// Append the bytes of one token as output shows them to `out`; an id outside the
    /// vocabulary is an error and appends nothing.
    fn piece_for_output(
        &self,
        id: u32,
        render_special: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), TokenizerError> {
        let i = id as usize;
        let Some(&a) = self.attrs.get(i) else {
            return Err(TokenizerError::InvalidTokenId {
                id,
                vocab_size: self.attrs.len(),
            });
        };
        if !render_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return Ok(());
        }
        self.push_piece(i, out);
        Ok(())
    }

    /// llama.cpp's `token_to_piece` with special = true, for token `i` (in range), appended
    /// to `out`. Pieces are made from the text when asked for rather than cached: that is a
    /// few bytes of work per token and keeps a second copy of the vocabulary out of memory
    /// and out of the load time.
    fn push_piece(&self, i: usize, out: &mut Vec<u8>) {
        let a = self.attrs[i];
        let t = &self.vocab.texts()[i];
        if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(t);
        } else if a & attr::NORMAL != 0 {
            match self.kind {
                Kind::Bpe { .. } => bpe::decode_token_text_into(t, out),
                Kind::Spm | Kind::Wpm(_) => spm::unescape_into(t, out),
            }
        } else if a & attr::BYTE != 0 {
            out.push(parse_byte_token(t));
        }
    }

    /// A streaming decoder over this tokenizer (control tokens not rendered).
    pub fn stream(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }

    /// The decoded bytes of one token (control tokens as their text), `None` if out of range.
    pub fn token_piece(&self, id: u32) -> Option<Cow<'_, [u8]>> {
        let i = id as usize;
        let a = *self.attrs.get(i)?;
        if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
            return self.vocab.texts().get(i).map(Cow::Borrowed);
        }
        let mut out = Vec::new();
        self.push_piece(i, &mut out);
        Some(Cow::Owned(out))
    }

    /// The raw vocabulary text of a token (GPT-2 byte-mapped or ▁-escaped).
    pub fn token_text(&self, id: u32) -> Option<&[u8]> {
        self.vocab.texts().get(id as usize)
    }

    /// The token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &[u8]) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Whether a token is control (or unknown): not rendered in output by default.
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & (attr::CONTROL | attr::UNKNOWN) != 0)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }
    pub fn bos(&self) -> Option<u32> {
        self.special.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.special.eos
    }
    pub fn eot(&self) -> Option<u32> {
        self.special.eot
    }
    /// All special ids after defaults and detection.
    pub fn special_ids(&self) -> &SpecialIds {
        &self.special
    }
    /// Every end-of-generation id, as llama.cpp computes them.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
    /// The end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> Vec<u32> {
        self.eog.iter().copied().collect()
    }
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
    /// The separator id (`[SEP]`; `tokenizer.ggml.seperator_token_id`, spelt so in GGUF).
    pub fn sep(&self) -> Option<u32> {
        self.special.sep
    }
    /// Whether the model wants `[SEP]` appended (llama.cpp's `llama_vocab_get_add_sep`:
    /// `tokenizer.ggml.add_sep_token`, by default on for WordPiece). [`Tokenizer::encode`]
    /// of a WordPiece vocabulary appends it with `add_special` in any case, as llama.cpp's
    /// does; this flag is what pairs of texts (reranking) are joined by.
    pub fn add_sep(&self) -> bool {
        self.add_sep
    }
    /// The WordPiece normalizer, `None` for other vocabularies.
    pub fn wordpiece_normalizer(&self) -> Option<wpm::Normalizer> {
        match &self.kind {
            Kind::Wpm(w) => Some(w.normalizer()),
            _ => None,
        }
    }
    /// "gpt2", "llama" or "bert".
    pub fn model_name(&self) -> &str {
        &self.model
    }
    pub fn pre_name(&self) -> Option<&str> {
        self.pre_name.as_deref()
    }
}
