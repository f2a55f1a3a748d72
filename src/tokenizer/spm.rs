//! SentencePiece-style vocabularies (`tokenizer.ggml.model = "llama"`: Llama 1/2, Gemma).
//!
//! llama.cpp's `llm_tokenizer_spm_session`: spaces are written as U+2581 (▁), the text starts
//! as one symbol per UTF-8 character, and the adjacent pair whose concatenation is a token with
//! the highest score is merged first (ties: leftmost), until no adjacent pair forms a token. A
//! symbol that is not a token at the end (a character outside the vocabulary) is spelled with
//! byte tokens `<0xXX>`. Every merged symbol is a token, so llama.cpp's `rev_merge`
//! re-segmentation never has anything to undo and is not needed here.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// A token text as output shows it, appended to `out`: invalid UTF-8 replaced as
/// `String::from_utf8_lossy` does, then every "▁" as ' '.
pub fn unescape_into(text: &[u8], out: &mut Vec<u8>) {
    for chunk in text.utf8_chunks() {
        let mut rest = chunk.valid().as_bytes();
        // E2 only ever starts a character, so a match is always a whole "▁".
        while let Some(p) = memchr::memmem::find(rest, "\u{2581}".as_bytes()) {
            out.extend_from_slice(&rest[..p]);
            out.push(b' ');
            rest = &rest[p + 3..];
        }
        out.extend_from_slice(rest);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
}

/// The escaped text of a fragment: optional leading space, every ' ' as "▁".
pub fn escape(text: &str, prefix_space: bool) -> String {
    let mut s = String::with_capacity(text.len() + 3);
    if prefix_space {
        s.push('\u{2581}');
    }
    for c in text.chars() {
        if c == ' ' {
            s.push('\u{2581}');
        } else {
            s.push(c);
        }
    }
    s
}

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    len: u32,
    prev: u32,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// A candidate merge: higher score first, then smaller left index.
struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    fn cmp(&self, o: &Self) -> Ordering {
        // Max-heap: greater = popped first. total_cmp keeps a NaN score from corrupting the
        // heap (llama.cpp's `<` would make its order undefined).
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

/// Everything SPM tokenization needs from the vocabulary.
pub struct SpmVocab<'a> {
    pub vocab: &'a Vocab,
    pub scores: &'a [f32],
    /// Longest token text in bytes: a longer pair cannot be a token.
    pub max_token_len: usize,
    /// Token for each byte (`<0xXX>`, else the one-byte text), or `None`.
    pub byte_tokens: &'a [Option<u32>; 256],
    /// Used for a byte that has no token at all (llama.cpp throws there).
    pub unk: Option<u32>,
}

/// Tokenize already-escaped text, appending ids to `out`.
pub fn tokenize(v: &SpmVocab<'_>, text: &str, out: &mut Vec<u32>) {
    if text.is_empty() {
        return;
    }
    let bytes = text.as_bytes();
    let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
    let n_chars = text.chars().count();
    for (i, (off, c)) in text.char_indices().enumerate() {
        syms.push(Sym {
            start: off as u32,
            len: c.len_utf8() as u32,
            prev: if i == 0 { NONE } else { i as u32 - 1 },
            next: if i + 1 == n_chars { NONE } else { i as u32 + 1 },
        });
    }
    let mut heap = BinaryHeap::with_capacity(syms.len());
    let try_add = |syms: &[Sym], heap: &mut BinaryHeap<Bigram>, left: u32, right: u32| {
        if left == NONE || right == NONE {
            return;
        }
        let (l, r) = (syms[left as usize], syms[right as usize]);
        let size = l.len + r.len;
        if size as usize > v.max_token_len {
            return;
        }
        let s = &bytes[l.start as usize..(l.start + size) as usize];
        if let Some(id) = v.vocab.id(s) {
            let score = v.scores.get(id as usize).copied().unwrap_or(0.0);
            heap.push(Bigram {
                score,
                left,
                right,
                size,
            });
        }
    };
    for i in 1..syms.len() as u32 {
        try_add(&syms, &mut heap, i - 1, i);
    }
    while let Some(b) = heap.pop() {
        let (l, r) = (b.left as usize, b.right as usize);
        if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != b.size {
            continue;
        }
        syms[l].len += syms[r].len;
        syms[r].len = 0;
        let rn = syms[r].next;
        syms[l].next = rn;
        if rn != NONE {
            syms[rn as usize].prev = b.left;
        }
        try_add(&syms, &mut heap, syms[l].prev, b.left);
        try_add(&syms, &mut heap, b.left, rn);
    }
    let mut i = 0u32;
    while i != NONE {
        let s = syms[i as usize];
        let piece = &bytes[s.start as usize..(s.start + s.len) as usize];
        match v.vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece {
                    if let Some(id) = v.byte_tokens[usize::from(b)].or(v.unk) {
                        out.push(id);
                    }
                }
            }
        }
        i = s.next;
    }
}
