//! Pre-tokenizers: split text into the "words" that byte-level BPE then merges within.
//!
//! llama.cpp gives each `tokenizer.ggml.pre` a *sequence* of regexes. The text starts as one
//! chunk; each regex splits every chunk into its matches and the gaps between them (both kept),
//! and the next regex works inside those chunks, never across a boundary. llama.cpp runs the
//! GPT-2, Llama-3 and Qwen2 regexes through hand-written matchers rather than a regex engine;
//! those matchers differ from true regex semantics in a few corner cases (e.g. a lookahead
//! `(?!\S)` treats the end of a chunk as "not whitespace"), and the token ids follow the
//! matchers, so this module reimplements the matchers' behaviour, not the regexes'. The simple
//! patterns (`\p{N}`, `\p{N}+`, `[0-9][0-9][0-9]`, the punctuation run of `default`) go
//! through `std::regex` in llama.cpp with its own category mapping; they are written out here
//! as plain loops with the same meaning. So does the GPT-4o regex ([`PreTokenizer::Gpt4o`]),
//! the one large pattern without a matcher: llama.cpp runs it through `std::regex`
//! (ECMAScript: leftmost match, first alternative that succeeds, greedy quantifiers that
//! backtrack) over "collapsed" text, in which every non-ASCII codepoint is replaced by one byte
//! for its category, so that all non-ASCII letters look alike (see `gpt4o`).
//!
//! Everything works on codepoint indices within one fragment of text and yields byte ranges.

use std::ops::Range;

use super::unicode::{flags, Flags};
use super::TokenizerError;

/// The pre-tokenizer families hearth implements (llama.cpp `LLAMA_VOCAB_PRE_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// `default`, or no `tokenizer.ggml.pre` at all: punctuation runs, GPT-2, `\p{N}+`, digit triples.
    Default,
    /// `gpt-2` and the names that share its regex (mpt, olmo, jais, ...).
    Gpt2,
    /// `smollm`, `starcoder`, `refact`, `command-r`, ...: every digit alone, then GPT-2.
    Smollm,
    /// `llama-bpe` / `llama3` and friends: the Llama 3 regex (digits in groups of up to 3).
    Llama3,
    /// `qwen2` and friends: the Llama 3 regex with single digits.
    Qwen2,
    /// `gpt-4o` (Phi-4-mini), `llama4`, `kanana2`, `talkie` and `minimax-m2`: the GPT-4o
    /// (o200k) regex, case-aware words with their contractions, digits in groups of up to 3.
    Gpt4o,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value (for a `gpt2` vocab).
    /// `None` (key absent) is `default`, as in llama.cpp. Any name hearth does not implement is
    /// an error naming it; there is no silent fallback.
    pub fn from_name(name: Option<&str>) -> Result<PreTokenizer, TokenizerError> {
        let Some(name) = name else {
            return Ok(PreTokenizer::Default);
        };
        Ok(match name {
            "default" => PreTokenizer::Default,
            // "gpt2" is not a llama.cpp name; accepted as an alias of "gpt-2".
            "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en"
            | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "exaone4" | "trillion"
            | "granite-docling" => PreTokenizer::Gpt2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" | "mellum2" => PreTokenizer::Smollm,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => PreTokenizer::Llama3,
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2"
            | "hunyuan" | "solar-open" => PreTokenizer::Qwen2,
            // llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT4O, and MINIMAX_M2, which has the same regex
            // and flags (clean_spaces off, merges applied).
            "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => PreTokenizer::Gpt4o,
            other => return Err(TokenizerError::UnknownPreTokenizer(other.to_string())),
        })
    }

    /// Whether llama.cpp sets `ignore_merges` for this family: a word that is itself a token
    /// is emitted whole, without running the merges.
    pub fn ignore_merges(self) -> bool {
        matches!(self, PreTokenizer::Llama3)
    }

    /// Split `text` into words; appends their byte ranges (in order, covering all of `text`).
    pub fn split(self, text: &str, out: &mut Vec<Range<usize>>) {
        if text.is_empty() {
            return;
        }
        let mut cps: Vec<char> = Vec::with_capacity(text.len());
        let mut offs: Vec<usize> = Vec::with_capacity(text.len() + 1);
        for (i, c) in text.char_indices() {
            cps.push(c);
            offs.push(i);
        }
        offs.push(text.len());

        let mut chunks: Vec<Range<usize>> = Vec::with_capacity(16);
        chunks.push(0..cps.len());
        let mut next = Vec::new();
        let mut run = |stage: &Stage| {
            next.clear();
            for ch in chunks.iter() {
                stage(&cps, ch.clone(), &mut next);
            }
            std::mem::swap(&mut chunks, &mut next);
        };
        match self {
            PreTokenizer::Default => {
                run(&|c, r, o| isolate_runs(c, r, o, is_default_punct));
                run(&gpt2);
                run(&|c, r, o| isolate_runs(c, r, o, is_number_class));
                run(&digit_triples);
            }
            PreTokenizer::Gpt2 => run(&gpt2),
            PreTokenizer::Smollm => {
                run(&isolate_each_number);
                run(&gpt2);
            }
            PreTokenizer::Llama3 => run(&|c, r, o| llama3(c, r, o, Some(3))),
            PreTokenizer::Qwen2 => run(&|c, r, o| llama3(c, r, o, Some(1))),
            PreTokenizer::Gpt4o => run(&gpt4o),
        }
        out.extend(chunks.into_iter().map(|r| offs[r.start]..offs[r.end]));
    }
}

/// One splitting pass: the codepoints, one chunk of them, and where its pieces go.
type Stage = dyn Fn(&[char], Range<usize>, &mut Vec<Range<usize>>);

/// `\p{N}` as llama.cpp's collapsed-text regexes see it: ASCII digits, and any non-ASCII
/// codepoint of category N.
fn is_number_class(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        flags(c).is_number()
    }
}

/// `[\p{P}\$\+<=>\^~\|]`: for ASCII llama.cpp's collapsed regex lists the characters
/// explicitly (so the backquote, category Sk, is *not* in it); above ASCII it is category P.
fn is_default_punct(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, '!'..='#' | '%'..='*' | ','..='/' | ':' | ';' | '?' | '@' | '['..=']' | '_'
            | '{' | '}' | '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|')
    } else {
        flags(c).is_punctuation()
    }
}

/// Split a chunk at every codepoint that is a number: each such codepoint alone, the runs
/// between them as chunks (regex `\p{N}`).
fn isolate_each_number(cps: &[char], r: Range<usize>, out: &mut Vec<Range<usize>>) {
    let mut gap = r.start;
    for i in r.clone() {
        if is_number_class(cps[i]) {
            if gap < i {
                out.push(gap..i);
            }
            out.push(i..i + 1);
            gap = i + 1;
        }
    }
    if gap < r.end {
        out.push(gap..r.end);
    }
}

/// Split a chunk into maximal runs of `pred` and the gaps between them (regex `[...]+`).
fn isolate_runs(
    cps: &[char],
    r: Range<usize>,
    out: &mut Vec<Range<usize>>,
    pred: fn(char) -> bool,
) {
    let mut i = r.start;
    while i < r.end {
        let start = i;
        let m = pred(cps[i]);
        while i < r.end && pred(cps[i]) == m {
            i += 1;
        }
        out.push(start..i);
    }
}

/// Regex `[0-9][0-9][0-9]`: leftmost non-overlapping ASCII digit triples and the gaps.
fn digit_triples(cps: &[char], r: Range<usize>, out: &mut Vec<Range<usize>>) {
    let mut gap = r.start;
    let mut i = r.start;
    while i + 3 <= r.end {
        if cps[i..i + 3].iter().all(|c| c.is_ascii_digit()) {
            if gap < i {
                out.push(gap..i);
            }
            out.push(i..i + 3);
            i += 3;
            gap = i;
        } else {
            i += 1;
        }
    }
    if gap < r.end {
        out.push(gap..r.end);
    }
}

/// Reads codepoints of one chunk; outside it there is "nothing" (`None`), which every class
/// test treats as false, as llama.cpp's matchers do with their empty flags.
struct Cursor<'a> {
    cps: &'a [char],
    end: usize,
}

impl Cursor<'_> {
    #[inline]
    fn cp(&self, pos: usize) -> Option<char> {
        if pos < self.end {
            Some(self.cps[pos])
        } else {
            None
        }
    }
    #[inline]
    fn fl(&self, pos: usize) -> Option<Flags> {
        self.cp(pos).map(flags)
    }
    #[inline]
    fn letter(&self, pos: usize) -> bool {
        self.fl(pos).is_some_and(|f| f.is_letter())
    }
    #[inline]
    fn number(&self, pos: usize) -> bool {
        self.fl(pos).is_some_and(|f| f.is_number())
    }
    #[inline]
    fn space(&self, pos: usize) -> bool {
        self.fl(pos).is_some_and(|f| f.is_whitespace())
    }
    /// A letter other than a-z (GPT-4o's `(?=[\p{L}])([^a-z])`): A-Z or any non-ASCII letter.
    #[inline]
    fn upper(&self, pos: usize) -> bool {
        self.cp(pos).is_some_and(|c| !c.is_ascii_lowercase()) && self.letter(pos)
    }
    /// A letter other than A-Z (GPT-4o's `(?=[\p{L}])([^A-Z])`): a-z or any non-ASCII letter.
    #[inline]
    fn lower(&self, pos: usize) -> bool {
        self.cp(pos).is_some_and(|c| !c.is_ascii_uppercase()) && self.letter(pos)
    }
    /// In the chunk and neither whitespace, letter nor number (`[^\s\p{L}\p{N}]`).
    #[inline]
    fn other(&self, pos: usize) -> bool {
        self.fl(pos)
            .is_some_and(|f| !(f.is_whitespace() || f.is_letter() || f.is_number()))
    }
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// as llama.cpp's matcher applies it (case-sensitive contractions; a lone codepoint that
/// matches nothing becomes a word by itself).
fn gpt2(cps: &[char], r: Range<usize>, out: &mut Vec<Range<usize>>) {
    let cur = Cursor { cps, end: r.end };
    let mut pos = r.start;
    // Invariant: at the top of the loop the previous word ended at `pos`.
    while pos < r.end {
        let start = pos;
        let c = cps[pos];
        if c == '\'' && pos + 1 < r.end {
            let n = cps[pos + 1];
            if matches!(n, 's' | 't' | 'm' | 'd') {
                out.push(pos..pos + 2);
                pos += 2;
                continue;
            }
            if pos + 2 < r.end {
                let nn = cps[pos + 2];
                if matches!((n, nn), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    out.push(pos..pos + 3);
                    pos += 3;
                    continue;
                }
            }
        }
        // The optional leading space: classify by the codepoint after it.
        let lead = usize::from(c == ' ');
        let probe = pos + lead;
        if cur.letter(probe) {
            pos = probe;
            while cur.letter(pos) {
                pos += 1;
            }
            out.push(start..pos);
            continue;
        }
        if cur.number(probe) {
            pos = probe;
            while cur.number(pos) {
                pos += 1;
            }
            out.push(start..pos);
            continue;
        }
        if cur.other(probe) {
            pos = probe;
            while cur.other(pos) {
                pos += 1;
            }
            out.push(start..pos);
            continue;
        }
        let mut n = 0;
        while cur.space(pos + n) {
            n += 1;
        }
        if n > 1 && pos + n < r.end {
            // \s+(?!\S): leave the last whitespace to prefix the next word.
            pos += n - 1;
        } else if n > 0 {
            pos += n;
        } else {
            pos += 1;
        }
        out.push(start..pos);
    }
}

/// Llama 3 (`max_digits` = 3) and Qwen2 (`max_digits` = 1):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// as llama.cpp's matcher applies it.
fn llama3(cps: &[char], r: Range<usize>, out: &mut Vec<Range<usize>>, max_digits: Option<usize>) {
    let max_digits = max_digits.unwrap_or(usize::MAX).max(1);
    let cur = Cursor { cps, end: r.end };
    let mut pos = r.start;
    while pos < r.end {
        let start = pos;
        let c = cps[pos];
        let f = flags(c);
        if c == '\'' && pos + 1 < r.end {
            // Only ASCII letters lowercase to these letters (the Kelvin sign and dotted I
            // lowercase to k and i, which no contraction uses).
            let n = cps[pos + 1].to_ascii_lowercase();
            if matches!(n, 's' | 't' | 'm' | 'd') {
                out.push(pos..pos + 2);
                pos += 2;
                continue;
            }
            if pos + 2 < r.end {
                let nn = cps[pos + 2].to_ascii_lowercase();
                if matches!((n, nn), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    out.push(pos..pos + 3);
                    pos += 3;
                    continue;
                }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(c == '\r' || c == '\n' || f.is_number()) && (f.is_letter() || cur.letter(pos + 1)) {
            pos += 1;
            while cur.letter(pos) {
                pos += 1;
            }
            out.push(start..pos);
            continue;
        }
        // \p{N}{1,max}
        if f.is_number() {
            let mut ini = pos;
            while cur.number(pos) {
                pos += 1;
                if pos - ini >= max_digits {
                    out.push(ini..pos);
                    ini = pos;
                }
            }
            if ini < pos {
                out.push(ini..pos);
            }
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'. llama.cpp tests the class of the codepoint after the
        // space but only requires the current one to exist, so a space at the very end of a
        // chunk lands here as a one-space word (the same word the whitespace rules would make).
        let lead = usize::from(c == ' ');
        let probe = pos + lead;
        let probe_other_or_end = match cur.fl(probe) {
            None => true,
            Some(g) => !(g.is_whitespace() || g.is_letter() || g.is_number()),
        };
        if probe_other_or_end {
            pos = probe;
            while cur.other(pos) {
                pos += 1;
            }
            while matches!(cur.cp(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            out.push(start..pos);
            continue;
        }
        let mut n = 0;
        let mut last_newline_end = None;
        while cur.space(pos + n) {
            if matches!(cps[pos + n], '\r' | '\n') {
                last_newline_end = Some(pos + n + 1);
            }
            n += 1;
        }
        if let Some(e) = last_newline_end {
            // \s*[\r\n]+
            pos = e;
        } else if n > 1 && pos + n < r.end {
            // \s+(?!\S)
            pos += n - 1;
        } else if n > 0 {
            pos += n;
        } else {
            pos += 1;
        }
        out.push(start..pos);
    }
}

/// GPT-4o, as llama.cpp's `std::regex` runs its adaptation of the o200k pattern:
///
/// ```text
/// [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?
/// |[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|...|'[dD])?
/// |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
/// ```
///
/// The original pattern's `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` became
/// "letters that are not a-z, then letters that are not A-Z", and llama.cpp matches it on
/// collapsed text, where every non-ASCII letter is the same byte. So:
/// - an "upper" letter (`[^a-z]`) is A-Z or *any* non-ASCII letter, a "lower" one (`[^A-Z]`)
///   is a-z or any non-ASCII letter: a non-ASCII letter is both, whatever its case;
/// - combining marks (`\p{M}`, dropped by the adaptation) are not letters: they end a word
///   and, like punctuation, can prefix the next one;
/// - `\p{N}` is 0-9 or any non-ASCII number (`½`, `²`, Arabic-Indic digits, ...);
/// - `\s` is ASCII whitespace or any non-ASCII `White_Space` codepoint.
///
/// The first alternative backtracks: its "upper" run gives letters back until a "lower" one
/// can follow, so "ÉA" is "É" + "A" (the É alone is upper-then-lower) while "ÉTÉ" and
/// "ΑθήναΑθήνα" stay whole and "helloÉcole" is one word. Every codepoint starts some match,
/// so there are no gaps between words.
fn gpt4o(cps: &[char], r: Range<usize>, out: &mut Vec<Range<usize>>) {
    let cur = Cursor { cps, end: r.end };
    let mut pos = r.start;
    while pos < r.end {
        let end = gpt4o_word(&cur, pos).max(pos + 1);
        out.push(pos..end);
        pos = end;
    }
}

/// The end of the GPT-4o word that starts at `p` (< the chunk's end).
fn gpt4o_word(cur: &Cursor<'_>, p: usize) -> usize {
    let c = cur.cps[p];
    let f = flags(c);

    // Alternatives 1 and 2: `[^\r\n\p{L}\p{N}]?` (taken whenever it can be: with it dropped
    // the letters would have to start at a codepoint that is no letter), then letters.
    let prefixed = !(c == '\r' || c == '\n' || f.is_letter() || f.is_number());
    let q = p + usize::from(prefixed);
    if cur.letter(q) {
        // `(upper)*`, greedy: the longest run of upper letters from q.
        let mut u = q;
        while cur.upper(u) {
            u += 1;
        }
        // `(lower)+` must follow: at u, else the run gives back letters one by one until a
        // lower one is next, i.e. the last letter of the run that is lower too.
        let lower_from = if cur.lower(u) {
            Some(u)
        } else {
            (q..u).rev().find(|&i| cur.lower(i))
        };
        let end = match lower_from {
            // Alternative 1: upper* lower+.
            Some(i) => run_end(i, |j| cur.lower(j)),
            // Alternative 2: upper+ lower* (q is upper here, and nothing lower follows u).
            None => run_end(u, |j| cur.lower(j)),
        };
        return contraction_end(cur, end);
    }
    // `\p{N}{1,3}`
    if f.is_number() {
        let mut e = p;
        while e < p + 3 && cur.number(e) {
            e += 1;
        }
        return e;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
    let q = p + usize::from(c == ' ');
    if cur.other(q) {
        let e = run_end(q, |j| cur.other(j));
        return run_end(e, |j| matches!(cur.cp(j), Some('\r' | '\n' | '/')));
    }
    // Whitespace (all that is left).
    let k = run_end(p, |j| cur.space(j));
    if let Some(nl) = (p..k).rev().find(|&j| matches!(cur.cps[j], '\r' | '\n')) {
        // `\s*[\r\n]+`: through the run's last newline.
        return nl + 1;
    }
    if k == cur.end || k - p < 2 {
        // `\s+(?!\S)` at the end of the chunk, or `\s+` for a single whitespace codepoint.
        k
    } else {
        // `\s+(?!\S)`: the last whitespace is left to prefix the next word.
        k - 1
    }
}

/// The first position from `i` where `pred` fails.
fn run_end(mut i: usize, pred: impl Fn(usize) -> bool) -> usize {
    while pred(i) {
        i += 1;
    }
    i
}

/// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?` at `e`.
fn contraction_end(cur: &Cursor<'_>, e: usize) -> usize {
    if cur.cp(e) != Some('\'') {
        return e;
    }
    let low = |i: usize| cur.cp(i).map(|c| c.to_ascii_lowercase());
    match (low(e + 1), low(e + 2)) {
        (Some('s' | 't' | 'm' | 'd'), _) => e + 2,
        (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l')) => e + 3,
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(p: PreTokenizer, s: &str) -> Vec<String> {
        let mut v = Vec::new();
        p.split(s, &mut v);
        v.into_iter().map(|r| s[r].to_string()).collect()
    }

    #[test]
    fn unknown_name_is_an_error() {
        let e = PreTokenizer::from_name(Some("tekken")).unwrap_err();
        assert!(e.to_string().contains("tekken"), "{e}");
        assert_eq!(
            PreTokenizer::from_name(None).unwrap(),
            PreTokenizer::Default
        );
    }

    #[test]
    fn gpt2_basic() {
        let p = PreTokenizer::Gpt2;
        assert_eq!(words(p, "Hello world"), ["Hello", " world"]);
        assert_eq!(words(p, "  leading"), [" ", " leading"]);
        assert_eq!(words(p, "a  "), ["a", "  "]);
        assert_eq!(words(p, "I'm fine"), ["I", "'m", " fine"]);
        assert_eq!(words(p, "I'M"), ["I", "'", "M"]);
        assert_eq!(words(p, "x\n\ny"), ["x", "\n", "\n", "y"]);
        assert_eq!(words(p, "a\u{378}b"), ["a", "\u{378}", "b"]);
    }

    #[test]
    fn smollm_isolates_digits() {
        assert_eq!(
            words(PreTokenizer::Smollm, "ab 123 4"),
            ["ab", " ", "1", "2", "3", " ", "4"]
        );
    }

    #[test]
    fn default_splits() {
        assert_eq!(
            words(PreTokenizer::Default, "hi, 12345!"),
            ["hi", ",", " ", "123", "45", "!"]
        );
    }
    /// Llama 3 (`llama-bpe`) has no reference model here; these splits were checked against
    /// the regex itself (Python's `regex` module running the original tokenizer.json pattern).
    #[test]
    fn llama3_matches_the_regex() {
        let p = PreTokenizer::from_name(Some("llama-bpe")).unwrap();
        assert_eq!(p, PreTokenizer::Llama3);
        let cases: &[(&str, &[&str])] = &[
            ("Hello world", &["Hello", " world"]),
            (
                "I'M FINE, you'll SEE",
                &["I", "'M", " FINE", ",", " you", "'ll", " SEE"],
            ),
            ("12345678 apples", &["123", "456", "78", " apples"]),
            ("  leading spaces", &[" ", " leading", " spaces"]),
            (
                "line1\r\nline2\n\n  indented\n",
                &[
                    "line",
                    "1",
                    "\r\n",
                    "line",
                    "2",
                    "\n\n",
                    " ",
                    " indented",
                    "\n",
                ],
            ),
            (
                "x=(alpha+beta)*gamma;",
                &["x", "=(", "alpha", "+beta", ")*", "gamma", ";"],
            ),
            (
                "tabs\tand\nnewlines\n\n",
                &["tabs", "\tand", "\n", "newlines", "\n\n"],
            ),
            ("日本語のテキスト 123", &["日本語のテキスト", " ", "123"]),
            (
                "end.\n\nNext: 3.14",
                &["end", ".\n\n", "Next", ":", " ", "3", ".", "14"],
            ),
            ("a  \n b", &["a", "  \n", " b"]),
            (
                "$var @user #tag!!\n\n",
                &["$var", " @", "user", " #", "tag", "!!\n\n"],
            ),
            ("trailing   ", &["trailing", "   "]),
        ];
        for (text, want) in cases {
            assert_eq!(words(p, text), *want, "{text:?}");
        }
        assert!(p.ignore_merges());
    }

    #[test]
    fn qwen2_single_digits() {
        assert_eq!(
            words(PreTokenizer::Qwen2, "x 2024 ok"),
            ["x", " ", "2", "0", "2", "4", " ok"]
        );
    }

    #[test]
    fn gpt4o_names() {
        for name in ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"] {
            let p = PreTokenizer::from_name(Some(name)).unwrap();
            assert_eq!(p, PreTokenizer::Gpt4o, "{name}");
            assert!(!p.ignore_merges());
        }
    }

    /// Hand-checked against the regex semantics (ECMAScript backtracking over llama.cpp's
    /// collapsed text, where every non-ASCII letter is one and the same byte).
    #[test]
    fn gpt4o_splits() {
        let p = PreTokenizer::Gpt4o;
        let cases: &[(&str, &[&str])] = &[
            ("Hello World", &["Hello", " World"]),
            ("helloWorld", &["hello", "World"]),
            ("XMLHttpRequest", &["XMLHttp", "Request"]),
            ("HELLO world", &["HELLO", " world"]),
            // Contractions stay on their word, in either case; a lone one is punctuation.
            (
                "I'm DON'T you're it's",
                &["I'm", " DON'T", " you're", " it's"],
            ),
            ("x 'll", &["x", " '", "ll"]),
            ("'sHello", &["'s", "Hello"]),
            // \p{N}{1,3}, non-ASCII numbers included; digits never join letters.
            ("1234567", &["123", "456", "7"]),
            ("a1b22 ½²³⁴", &["a", "1", "b", "22", " ", "½²³", "⁴"]),
            // Non-ASCII letters are both "upper" and "lower".
            ("ÉA", &["É", "A"]),
            ("AÉB", &["AÉ", "B"]),
            ("ÉTÉ Éa éA", &["ÉTÉ", " Éa", " é", "A"]),
            ("ΑθήναΑθήνα", &["ΑθήναΑθήνα"]),
            ("helloÉcole", &["helloÉcole"]),
            ("HELLOé", &["HELLOé"]),
            // Combining marks are not letters: they end a word and prefix the next.
            ("cafe\u{301}s", &["cafe", "\u{301}s"]),
            ("e\u{301}", &["e", "\u{301}"]),
            // One non-letter, non-newline codepoint prefixes a word; a space and a symbol
            // before letters go together as punctuation instead.
            (
                "\tfoo (bar 😀baz \u{3000}x",
                &["\tfoo", " (", "bar", " 😀", "baz", " ", "\u{3000}x"],
            ),
            ("😀qux", &["😀qux"]),
            ("((x", &["((", "x"]),
            // Punctuation takes following newlines and slashes.
            ("foo.\n\nbar", &["foo", ".\n\n", "bar"]),
            ("a://b !!\n/x", &["a", "://", "b", " !!\n/", "x"]),
            ("$100", &["$", "100"]),
            // Whitespace.
            ("a  b", &["a", " ", " b"]),
            ("a  ", &["a", "  "]),
            ("x   123", &["x", "  ", " ", "123"]),
            ("x \n\n y", &["x", " \n\n", " y"]),
            ("\r\nz\n", &["\r\n", "z", "\n"]),
            (" ", &[" "]),
        ];
        for (text, want) in cases {
            assert_eq!(words(p, text), *want, "{text:?}");
        }
    }
}
