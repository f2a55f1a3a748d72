//! Unicode codepoint classes as llama.cpp's pre-tokenizers see them.
//!
//! The categories come from `unicode_tables.rs` (generated from Unicode 15.1 data, the
//! version llama.cpp's `unicode-data.cpp` is built from; a check against that table found no
//! codepoint that differs). Whitespace is the Unicode `White_Space` property, as in llama.cpp.
//!
//! Lookups go through a flat byte-per-codepoint table built once on first use (1.1 MB), so a
//! class lookup is one load.
//!
//! [`to_lower`] and [`nfd_first`] are llama.cpp's `unicode_tolower` and (per codepoint)
//! `unicode_cpts_normalize_nfd`, which the WordPiece normalizer uses; their tables are
//! llama.cpp's exactly (the generator checks them against its `unicode-data.cpp`).

use std::sync::OnceLock;

/// The Unicode version of the category tables.
pub use super::unicode_tables::UNICODE_VERSION;
use super::unicode_tables::{CATEGORY_RANGES, LOWERCASE_RUNS, NFD_RANGES};

/// General-category class of a codepoint (first letter of its Unicode category).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cat {
    /// Unassigned (Cn).
    Undefined = 0,
    /// `\p{N}`.
    Number = 1,
    /// `\p{L}`.
    Letter = 2,
    /// `\p{Z}`.
    Separator = 3,
    /// `\p{M}`.
    Mark = 4,
    /// `\p{P}`.
    Punctuation = 5,
    /// `\p{S}`.
    Symbol = 6,
    /// `\p{C}` other than Cn (controls, format, surrogates, private use).
    Control = 7,
}

/// Class bits of one codepoint: the category in the low 3 bits, whitespace in bit 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u8);

const WS_BIT: u8 = 8;

impl Flags {
    #[inline]
    pub fn cat(self) -> Cat {
        match self.0 & 7 {
            1 => Cat::Number,
            2 => Cat::Letter,
            3 => Cat::Separator,
            4 => Cat::Mark,
            5 => Cat::Punctuation,
            6 => Cat::Symbol,
            7 => Cat::Control,
            _ => Cat::Undefined,
        }
    }
    #[inline]
    pub fn is_letter(self) -> bool {
        self.0 & 7 == Cat::Letter as u8
    }
    #[inline]
    pub fn is_number(self) -> bool {
        self.0 & 7 == Cat::Number as u8
    }
    #[inline]
    pub fn is_punctuation(self) -> bool {
        self.0 & 7 == Cat::Punctuation as u8
    }
    #[inline]
    pub fn is_whitespace(self) -> bool {
        self.0 & WS_BIT != 0
    }
}

/// The Unicode `White_Space` property (PropList.txt), the set llama.cpp uses for `\s`.
const WHITESPACE: &[u32] = &[
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
];

const N_CODEPOINTS: usize = 0x110000;

fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![0u8; N_CODEPOINTS];
        for (i, &(start, code)) in CATEGORY_RANGES.iter().enumerate() {
            let end = CATEGORY_RANGES
                .get(i + 1)
                .map_or(N_CODEPOINTS, |&(s, _)| s as usize);
            let start = (start as usize).min(N_CODEPOINTS);
            t[start..end.min(N_CODEPOINTS)].fill(code & 7);
        }
        for &c in WHITESPACE {
            t[c as usize] |= WS_BIT;
        }
        t
    })
}

/// Class of a codepoint.
#[inline]
pub fn flags(c: char) -> Flags {
    // `char` is at most 0x10FFFF, so the index is always in range.
    Flags(table()[c as usize])
}

/// The simple lowercase mapping of a codepoint (UnicodeData.txt; `c` itself when it has
/// none), as llama.cpp's `unicode_tolower`.
pub fn to_lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let cp = c as u32;
    let i = LOWERCASE_RUNS.partition_point(|&(start, ..)| start <= cp);
    let Some(&(start, count, stride, delta)) = i.checked_sub(1).and_then(|i| LOWERCASE_RUNS.get(i))
    else {
        return c;
    };
    let off = cp - start;
    let stride = u32::from(stride.max(1));
    if !off.is_multiple_of(stride) || off / stride >= u32::from(count) {
        return c;
    }
    cp.checked_add_signed(delta)
        .and_then(char::from_u32)
        .unwrap_or(c)
}

/// The first codepoint of the canonical decomposition of `c` (`c` itself when it has none):
/// llama.cpp's `unicode_cpts_normalize_nfd`, which maps one codepoint to one codepoint, so
/// "é" becomes "e" (its combining accent is not produced) and a Hangul syllable its leading
/// consonant jamo.
pub fn nfd_first(c: char) -> char {
    let cp = c as u32;
    if cp < 0xC0 {
        return c;
    }
    let i = NFD_RANGES.partition_point(|&(first, ..)| first <= cp);
    match i.checked_sub(1).and_then(|i| NFD_RANGES.get(i)) {
        Some(&(_, last, target)) if cp <= last => char::from_u32(target).unwrap_or(c),
        _ => c,
    }
}

/// Force the table to be built (so the first `encode` is not the one that pays for it).
pub fn warm_up() {
    let _ = table();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(flags('a').is_letter());
        assert!(flags('é').is_letter());
        assert!(flags('日').is_letter());
        assert!(flags('5').is_number());
        assert!(flags('½').is_number());
        assert!(flags(' ').is_whitespace());
        assert!(flags('\u{3000}').is_whitespace());
        assert!(!flags('\u{200B}').is_whitespace());
        assert!(flags('!').is_punctuation());
        assert_eq!(flags('$').cat(), Cat::Symbol);
        assert_eq!(flags('\u{0301}').cat(), Cat::Mark);
        assert_eq!(flags('\u{0378}').cat(), Cat::Undefined);
        assert_eq!(flags('\u{10FFFF}').cat(), Cat::Undefined);
        assert_eq!(flags('\u{E000}').cat(), Cat::Control);
        // CJK extension I (new in Unicode 15.1).
        assert!(flags('\u{2EBF0}').is_letter());
    }

    #[test]
    fn lowercase() {
        assert_eq!(to_lower('A'), 'a');
        assert_eq!(to_lower('a'), 'a');
        assert_eq!(to_lower('É'), 'é');
        assert_eq!(to_lower('Ā'), 'ā');
        assert_eq!(to_lower('ā'), 'ā');
        assert_eq!(to_lower('Σ'), 'σ');
        assert_eq!(to_lower('Ж'), 'ж');
        // The simple mapping: one codepoint, not "i\u{307}".
        assert_eq!(to_lower('\u{130}'), 'i');
        assert_eq!(to_lower('Ÿ'), 'ÿ');
        assert_eq!(to_lower('𐐀'), '𐐨');
        assert_eq!(to_lower('日'), '日');
        assert_eq!(to_lower('\u{10FFFF}'), '\u{10FFFF}');
    }

    #[test]
    fn nfd() {
        assert_eq!(nfd_first('é'), 'e');
        assert_eq!(nfd_first('Å'), 'A');
        assert_eq!(nfd_first('ǖ'), 'u');
        assert_eq!(nfd_first('e'), 'e');
        assert_eq!(nfd_first('\u{0301}'), '\u{0301}');
        // Hangul: the leading consonant only.
        assert_eq!(nfd_first('한'), '\u{1112}');
        // Singleton decompositions.
        assert_eq!(nfd_first('\u{2126}'), '\u{3A9}');
        assert_eq!(nfd_first('\u{2000}'), '\u{2002}');
        assert_eq!(nfd_first('ﬁ'), 'ﬁ');
        assert_eq!(nfd_first('\u{10FFFF}'), '\u{10FFFF}');
    }
}
