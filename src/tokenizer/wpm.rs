//! WordPiece vocabularies (`tokenizer.ggml.model = "bert"`): BERT and the embedding models
//! built on it (nomic-embed-text, bge, all-MiniLM, ...).
//!
//! llama.cpp's `llm_tokenizer_wpm_session`:
//! 1. the text is split into words ([`split_words`]): per codepoint, optionally mapped to
//!    the first codepoint of its NFD decomposition ([`unicode::nfd_first`]); whitespace ends
//!    a word; NUL, U+FFFD and control/format/private-use codepoints are dropped, and so are
//!    combining marks when accents are stripped; the rest is optionally lowercased
//!    ([`unicode::to_lower`]). Punctuation, ASCII symbols and CJK ideographs are words of
//!    their own;
//! 2. every word gets the phantom prefix "▁" (the GGUF converter writes a word-initial
//!    WordPiece token "x" as "▁x" and a continuation "##x" as "x");
//! 3. the word is covered greedily from the left by the longest vocabulary token (byte
//!    substrings, so a token may be any byte string); if some position has no token at all
//!    the whole word becomes one `[UNK]`.
//!
//! `[CLS]`/`[SEP]` around the text and the special-token partition are the caller's
//! ([`super::Tokenizer::encode`]).

use std::ops::Range;

use super::unicode;
use super::vocab::Vocab;

/// The phantom space written before every word.
pub const PHANTOM: &str = "\u{2581}";

/// llama.cpp's BertNormalizer options (`tokenizer.ggml.normalizer.lowercase` and
/// `tokenizer.ggml.normalizer.strip_accents`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Normalizer {
    pub lowercase: bool,
    /// Map each codepoint to the first codepoint of its NFD decomposition and drop
    /// combining marks.
    pub strip_accents: bool,
}

impl Default for Normalizer {
    /// llama.cpp's defaults: both on.
    fn default() -> Normalizer {
        Normalizer {
            lowercase: true,
            strip_accents: true,
        }
    }
}

/// The CJK ideograph blocks that become one-character words (llama.cpp's
/// `is_chinese_char`, which takes the range after Extension D as starting at U+2B920 as
/// Hugging Face's tokenizers do, not at U+2B820).
pub fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Normalize `text` and split it into words, each written into `buf` with its "▁" prefix;
/// `words` receives the byte range in `buf` of each word (prefix included). Both are
/// cleared first.
pub fn split_words(text: &str, norm: Normalizer, buf: &mut String, words: &mut Vec<Range<usize>>) {
    buf.clear();
    words.clear();
    // Start (in buf) of the word being built, if one is open.
    let mut open: Option<usize> = None;
    let close = |open: &mut Option<usize>, buf: &String, words: &mut Vec<Range<usize>>| {
        if let Some(start) = open.take() {
            words.push(start..buf.len());
        }
    };
    for c in text.chars() {
        let c = if norm.strip_accents {
            unicode::nfd_first(c)
        } else {
            c
        };
        let f = unicode::flags(c);
        if f.is_whitespace() {
            close(&mut open, buf, words);
            continue;
        }
        let cat = f.cat();
        if c == '\0' || c == '\u{FFFD}' || cat == unicode::Cat::Control {
            continue;
        }
        if norm.strip_accents && cat == unicode::Cat::Mark {
            continue;
        }
        let out = if norm.lowercase {
            unicode::to_lower(c)
        } else {
            c
        };
        let alone = cat == unicode::Cat::Punctuation
            || (c < '\u{7F}' && cat == unicode::Cat::Symbol)
            || is_chinese_char(c);
        if alone {
            close(&mut open, buf, words);
        }
        if open.is_none() {
            open = Some(buf.len());
            buf.push_str(PHANTOM);
        }
        buf.push(out);
        if alone {
            close(&mut open, buf, words);
        }
    }
    close(&mut open, buf, words);
}

/// A WordPiece tokenizer over a vocabulary: what it needs besides the vocabulary itself.
#[derive(Clone, Debug)]
pub struct Wpm {
    unk: u32,
    norm: Normalizer,
    /// The distinct lengths of the vocabulary's texts, longest first: the only substring
    /// lengths worth looking up.
    lens: Vec<usize>,
}

/// Reusable buffers for [`Wpm::encode`].
#[derive(Default)]
pub struct Scratch {
    buf: String,
    words: Vec<Range<usize>>,
}

impl Wpm {
    /// `unk`: the `[UNK]` id (the caller checks that it is in range).
    pub fn new(vocab: &Vocab, unk: u32, norm: Normalizer) -> Wpm {
        let mut lens: Vec<usize> = vocab.texts().iter().map(<[u8]>::len).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();
        Wpm { unk, norm, lens }
    }

    pub fn normalizer(&self) -> Normalizer {
        self.norm
    }

    /// Append the ids of `text` (no special tokens) to `out`.
    pub fn encode(&self, text: &str, vocab: &Vocab, scratch: &mut Scratch, out: &mut Vec<u32>) {
        split_words(text, self.norm, &mut scratch.buf, &mut scratch.words);
        let buf = scratch.buf.as_bytes();
        for w in &scratch.words {
            if let Some(word) = buf.get(w.clone()) {
                self.encode_word(word, vocab, out);
            }
        }
    }

    /// Greedy longest match over one word ("▁" included); `[UNK]` alone when some position
    /// matches no token.
    fn encode_word(&self, word: &[u8], vocab: &Vocab, out: &mut Vec<u32>) {
        let first = out.len();
        let mut i = 0;
        while i < word.len() {
            let rest = &word[i..];
            let hit = self
                .lens
                .iter()
                .filter(|&&l| l > 0 && l <= rest.len())
                .find_map(|&l| vocab.id(&rest[..l]).map(|id| (id, l)));
            match hit {
                Some((id, l)) => {
                    out.push(id);
                    i += l;
                }
                None => {
                    out.truncate(first);
                    break;
                }
            }
        }
        if out.len() == first {
            out.push(self.unk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Strings;

    fn words(text: &str, norm: Normalizer) -> Vec<String> {
        let (mut buf, mut w) = (String::new(), Vec::new());
        split_words(text, norm, &mut buf, &mut w);
        w.into_iter().map(|r| buf[r].to_string()).collect()
    }

    fn tiny() -> (Vocab, Wpm) {
        let texts: Strings = [
            "[UNK]",
            "▁un",
            "▁unbelievable",
            "believ",
            "able",
            "▁hello",
            "▁,",
            "▁!",
            "▁日",
            "▁本",
            "▁a",
            "b",
            "▁cafe",
            "▁x",
        ]
        .into_iter()
        .collect();
        let (vocab, _) = Vocab::new(texts);
        let wpm = Wpm::new(&vocab, 0, Normalizer::default());
        (vocab, wpm)
    }

    fn enc(text: &str) -> Vec<u32> {
        let (vocab, wpm) = tiny();
        let mut out = Vec::new();
        wpm.encode(text, &vocab, &mut Scratch::default(), &mut out);
        out
    }

    #[test]
    fn splits_words() {
        let n = Normalizer::default();
        assert_eq!(words("Hello, World!", n), ["▁hello", "▁,", "▁world", "▁!"]);
        assert_eq!(words("  a\tb\n", n), ["▁a", "▁b"]);
        assert_eq!(words("日本語x", n), ["▁日", "▁本", "▁語", "▁x"]);
        // NFD keeps the first codepoint; combining marks are dropped; controls vanish.
        assert_eq!(words("Café nai\u{308}ve", n), ["▁cafe", "▁naive"]);
        assert_eq!(words("a\u{1}b\u{200B}c\0d\u{FFFD}e", n), ["▁abcde"]);
        // ASCII symbols split; others (emoji, €) stay in the word.
        assert_eq!(words("a+b€😀", n), ["▁a", "▁+", "▁b€😀"]);
        assert!(words("", n).is_empty());
        assert!(words(" \t\n", n).is_empty());
        let keep = Normalizer {
            lowercase: false,
            strip_accents: false,
        };
        assert_eq!(words("Café e\u{301}", keep), ["▁Café", "▁e\u{301}"]);
    }

    #[test]
    fn longest_match_first() {
        // "▁unbelievable" is a token: taken whole, not "▁un" + "believ" + "able".
        assert_eq!(enc("unbelievable"), [2]);
        assert_eq!(enc("unbelievableable"), [2, 4]);
        assert_eq!(enc("unbelievable unable"), [2, 1, 4]);
        assert_eq!(enc("HELLO"), [5]);
    }

    #[test]
    fn unmatched_word_is_one_unk() {
        // "▁hellox": "▁hello" then no token for "x" mid-word: the whole word is [UNK].
        assert_eq!(enc("hellox hello"), [0, 5]);
        assert_eq!(enc("zzz"), [0]);
        assert_eq!(enc("abbb"), [10, 11, 11, 11]);
        assert_eq!(enc("abc"), [0]);
    }

    #[test]
    fn punctuation_and_cjk_split() {
        assert_eq!(enc("hello, hello!"), [5, 6, 5, 7]);
        assert_eq!(enc("日本"), [8, 9]);
        assert_eq!(enc("a日本b"), [10, 8, 9, 0]);
        assert_eq!(enc("Café"), [12]);
    }

    #[test]
    fn chinese_ranges() {
        assert!(is_chinese_char('日'));
        assert!(is_chinese_char('\u{2B920}'));
        assert!(!is_chinese_char('\u{2B820}'));
        assert!(!is_chinese_char('あ'));
        assert!(!is_chinese_char('。'));
    }
}
