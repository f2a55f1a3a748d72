//! Special tokens in text: llama.cpp's special-token partition ([`Tokenizer::partition`])
//! and the texts by which tokens are recognized as end-of-generation or FIM markers.
//!
//! Which special tokens occur in a text is the first step of the partition
//! ([`SpecialMatcher`]):
//! the special texts are sorted by their bytes; at each position of the text, the ones that
//! start there are found by narrowing the sorted range one byte at a time (the range of the
//! first byte comes from a table). Building is one sort, much cheaper than an Aho-Corasick
//! automaton over Gemma's 6,400 special tokens; searching stops at the first byte for most
//! positions, and never walks further than the longest special text.

use std::ops::Range;

use super::vocab::Strings;
use super::{attr, Tokenizer};

pub struct SpecialMatcher {
    /// The special texts in byte order.
    texts: Strings,
    /// `texts[j]` is pattern `pattern[j]` (an index into the caller's list).
    pattern: Vec<u32>,
    /// Range of `texts` starting with each byte.
    first: Box<[(u32, u32); 256]>,
    /// The distinct first bytes, when there are at most three (then memchr finds the
    /// positions to try).
    few_firsts: Option<Vec<u8>>,
}

impl SpecialMatcher {
    /// A matcher for `patterns` (pattern `k` is `patterns[k]`; none may be empty); `None`
    /// when there are none.
    pub fn new<'a>(patterns: impl ExactSizeIterator<Item = &'a [u8]>) -> Option<SpecialMatcher> {
        let pats: Vec<&[u8]> = patterns.collect();
        if pats.is_empty() {
            return None;
        }
        let mut order: Vec<u32> = (0..pats.len() as u32).collect();
        // Shorter first among equal prefixes; equal texts stay in pattern order.
        order.sort_by(|&a, &b| pats[a as usize].cmp(pats[b as usize]));
        let total = pats.iter().map(|p| p.len()).sum();
        let mut texts = Strings::with_capacity(pats.len(), total);
        let mut first = Box::new([(0u32, 0u32); 256]);
        for (j, &k) in order.iter().enumerate() {
            let p = pats[k as usize];
            if !texts.try_push(p) {
                return None;
            }
            let j = j as u32;
            if let Some(&b) = p.first() {
                let r = &mut first[usize::from(b)];
                if r.0 == r.1 {
                    *r = (j, j + 1);
                } else {
                    r.1 = j + 1;
                }
            }
        }
        let firsts: Vec<u8> = (0..=255u8)
            .filter(|&b| first[usize::from(b)].0 != first[usize::from(b)].1)
            .collect();
        Some(SpecialMatcher {
            texts,
            pattern: order,
            first,
            few_firsts: (firsts.len() <= 3).then_some(firsts),
        })
    }

    /// Set `present[k]` for every pattern `k` that occurs in `text` (overlaps included);
    /// returns whether any does.
    pub fn find_present(&self, text: &[u8], present: &mut [bool]) -> bool {
        let mut any = false;
        match self.few_firsts.as_deref() {
            Some(&[a]) => {
                memchr::memchr_iter(a, text).for_each(|p| any |= self.at(text, p, present))
            }
            Some(&[a, b]) => {
                memchr::memchr2_iter(a, b, text).for_each(|p| any |= self.at(text, p, present))
            }
            Some(&[a, b, c]) => {
                memchr::memchr3_iter(a, b, c, text).for_each(|p| any |= self.at(text, p, present))
            }
            _ => {
                for p in 0..text.len() {
                    let (lo, hi) = self.first[usize::from(text[p])];
                    if lo != hi {
                        any |= self.at(text, p, present);
                    }
                }
            }
        }
        any
    }

    /// Mark the patterns that start at `text[p]`; whether there are any.
    #[inline]
    fn at(&self, text: &[u8], p: usize, present: &mut [bool]) -> bool {
        let mut any = false;
        let (mut lo, mut hi) = self.first[usize::from(text[p])];
        let mut d = 1;
        loop {
            // Every text in lo..hi starts with text[p..p + d]; those of length d (equal
            // texts of several ids) sort first.
            while lo < hi && self.texts.len_of(lo as usize) == d {
                present[self.pattern[lo as usize] as usize] = true;
                any = true;
                lo += 1;
            }
            if lo == hi || p + d >= text.len() {
                return any;
            }
            let b = text[p + d];
            let byte_at = |j: u32| {
                self.texts
                    .get(j as usize)
                    .and_then(|t| t.get(d))
                    .copied()
                    .unwrap_or(0)
            };
            // Texts in lo..hi are longer than d and sorted by their byte d.
            lo = partition(lo, hi, |j| byte_at(j) < b);
            hi = partition(lo, hi, |j| byte_at(j) <= b);
            d += 1;
        }
    }
}

/// The first `j` in `lo..hi` for which `pred` is false (`pred` is true, then false).
#[inline]
fn partition(mut lo: u32, mut hi: u32, pred: impl Fn(u32) -> bool) -> u32 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A piece of input after the special-token partition.
#[derive(Clone, Debug)]
pub(super) enum Frag {
    Text(Range<usize>),
    Token(u32),
}

/// Texts that make a token end generation (llama.cpp's list; the token also becomes control).
pub(super) const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];
pub(super) const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
pub(super) const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
pub(super) const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
pub(super) const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
pub(super) const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
pub(super) const FIM_PAD_TEXTS: &[&str] =
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
pub(super) const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
pub(super) const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// C `isspace` in the "C" locale, which llama.cpp's lstrip/rstrip use.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

impl Tokenizer {
    /// llama.cpp's `tokenizer_st_partition`: for each special token in cache order, split
    /// every remaining text fragment at each of its (non-overlapping, leftmost-first)
    /// occurrences. Only tokens that occur somewhere in the text are tried; which ones do is
    /// found in one pass ([`special::SpecialMatcher`]).
    pub(super) fn partition(&self, text: &str, parse_special: bool) -> Vec<Frag> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Frag::Text(0..text.len()));
        let Some(matcher) = &self.special_matcher else {
            return frags;
        };
        let bytes = text.as_bytes();
        let mut present = vec![false; self.special_cache.len()];
        if !matcher.find_present(bytes, &mut present) {
            return frags;
        }
        let mut next = Vec::new();
        for (k, &id) in self.special_cache.iter().enumerate() {
            if !present[k] {
                continue;
            }
            let a = self.attrs[id as usize];
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let tok = &self.vocab.texts()[id as usize];
            let finder = memchr::memmem::Finder::new(tok);
            next.clear();
            for f in frags.drain(..) {
                let Frag::Text(r) = f else {
                    next.push(f);
                    continue;
                };
                let (mut off, mut len) = (r.start, r.len());
                loop {
                    let Some(p) = finder.find(&bytes[off..off + len]) else {
                        if len > 0 {
                            next.push(Frag::Text(off..off + len));
                        }
                        break;
                    };
                    let m = off + p;
                    if m > off {
                        let mut left = m - off;
                        if a & attr::LSTRIP != 0 {
                            while left > 0 && is_c_space(bytes[off + left - 1]) {
                                left -= 1;
                            }
                        }
                        if left > 0 {
                            next.push(Frag::Text(off..off + left));
                        }
                    }
                    next.push(Frag::Token(id));
                    let end = m + tok.len();
                    if end >= off + len {
                        break;
                    }
                    let mut roff = end;
                    let mut rlen = off + len - end;
                    if a & attr::RSTRIP != 0 {
                        while rlen > 0 && is_c_space(bytes[roff]) {
                            roff += 1;
                            rlen -= 1;
                        }
                    }
                    off = roff;
                    len = rlen;
                    if len == 0 {
                        break;
                    }
                }
            }
            std::mem::swap(&mut frags, &mut next);
        }
        frags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_occurring_pattern() {
        let pats: [&[u8]; 7] = [b"<a>", b"<ab>", b"b", b"<a", b"xyz", b"b", b"<abc>"];
        let m = SpecialMatcher::new(pats.iter().copied()).unwrap();
        let mut present = [false; 7];
        assert!(m.find_present(b"q<ab>bb<a", &mut present));
        assert_eq!(present, [false, true, true, true, false, true, false]);
        let mut present = [false; 7];
        assert!(!m.find_present(b"xy<", &mut present));
        assert_eq!(present, [false; 7]);
        // Two first bytes: the memchr path; more: the table path.
        let m = SpecialMatcher::new([&b"<a"[..], b"<b", b"q"].into_iter()).unwrap();
        let mut present = [false; 3];
        assert!(m.find_present(b"x<bq<", &mut present));
        assert_eq!(present, [false, true, true]);
        let m = SpecialMatcher::new([&b"<a"[..], b"b", b"c", b"d"].into_iter()).unwrap();
        let mut present = [false; 4];
        assert!(m.find_present(b"xd<a", &mut present));
        assert_eq!(present, [true, false, false, true]);
        assert!(SpecialMatcher::new(std::iter::empty::<&[u8]>()).is_none());
    }

    /// Same answers as an Aho-Corasick automaton (what partition used before) on random
    /// patterns and texts over a small alphabet, duplicates included.
    #[test]
    fn agrees_with_aho_corasick() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..300 {
            let alphabet: &[u8] = match round % 3 {
                0 => b"ab<",
                1 => b"<a",
                _ => b"abcdefg<>| ",
            };
            let n_pats = 1 + rnd(40) as usize;
            let pats: Vec<Vec<u8>> = (0..n_pats)
                .map(|_| {
                    let len = 1 + rnd(6) as usize;
                    (0..len)
                        .map(|_| alphabet[rnd(alphabet.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let m = SpecialMatcher::new(pats.iter().map(Vec::as_slice)).unwrap();
            let ac = aho_corasick::AhoCorasick::new(&pats).unwrap();
            for _ in 0..20 {
                let len = rnd(40) as usize;
                let text: Vec<u8> = (0..len)
                    .map(|_| alphabet[rnd(alphabet.len() as u64) as usize])
                    .collect();
                let mut want = vec![false; n_pats];
                for mt in ac.find_overlapping_iter(&text) {
                    want[mt.pattern().as_usize()] = true;
                }
                let mut got = vec![false; n_pats];
                let any = m.find_present(&text, &mut got);
                assert_eq!(got, want, "{pats:?} in {text:?}");
                assert_eq!(any, want.contains(&true));
            }
        }
    }
}
