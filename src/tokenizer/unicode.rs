//! Unicode codepoint classes as llama.cpp's pre-tokenizers see them.
//!
//! The categories come from `unicode_tables.rs` (generated from Unicode 15.1 data, the
//! version llama.cpp's `unicode-data.cpp` is built from; a check against that table found no
//! codepoint that differs). Whitespace is the Unicode `White_Space` property, as in llama.cpp.
//!
//! Lookups go through a flat byte-per-codepoint table built once on first use (1.1 MB), so a
//! class lookup is one load.

use std::sync::OnceLock;

use super::unicode_tables::CATEGORY_RANGES;
/// The Unicode version of the category tables.
pub use super::unicode_tables::UNICODE_VERSION;

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
}
