//! Word wrapping for streamed text on a terminal: a word is held until it is complete,
//! then placed on the current line or, if it would overflow, on the next. A word wider
//! than a whole line is written as soon as it fills one (broken there), so a long URL or
//! a run of text without spaces still streams.
//!
//! Widths are terminal columns (`unicode-width`: CJK and most emoji take two). The width
//! can change between pieces ([`WordWrap::set_width`]) when the terminal is resized.

use std::io::Write;

use unicode_width::UnicodeWidthChar;

pub struct WordWrap<W: Write> {
    out: W,
    width: usize,
    col: usize,
    word: String,
    word_len: usize,
    /// Spaces seen after the last word, written before the next word unless it wraps.
    spaces: usize,
}

/// The narrowest line wrapped to.
const MIN_WIDTH: usize = 10;

impl<W: Write> WordWrap<W> {
    pub fn new(out: W, width: usize) -> WordWrap<W> {
        WordWrap {
            out,
            width: width.max(MIN_WIDTH),
            col: 0,
            word: String::new(),
            word_len: 0,
            spaces: 0,
        }
    }

    /// Wraps what follows at `width` columns (the line in progress is left as it is).
    pub fn set_width(&mut self, width: usize) {
        self.width = width.max(MIN_WIDTH);
    }

    fn newline(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"\n")?;
        self.col = 0;
        Ok(())
    }

    fn flush_word(&mut self) -> std::io::Result<()> {
        if self.word.is_empty() {
            return Ok(());
        }
        if self.col > 0 && self.col + self.spaces + self.word_len > self.width {
            self.newline()?;
        } else {
            for _ in 0..self.spaces {
                self.out.write_all(b" ")?;
            }
            self.col += self.spaces;
        }
        self.spaces = 0;
        self.out.write_all(self.word.as_bytes())?;
        self.col += self.word_len;
        self.word.clear();
        self.word_len = 0;
        Ok(())
    }

    pub fn write_str(&mut self, text: &str) -> std::io::Result<()> {
        for c in text.chars() {
            match c {
                '\n' => {
                    self.flush_word()?;
                    self.spaces = 0;
                    self.newline()?;
                }
                ' ' | '\t' => {
                    self.flush_word()?;
                    self.spaces += 1;
                }
                c => {
                    let w = c.width().unwrap_or(0);
                    if self.word_len + w > self.width {
                        // A word wider than a line: it fills this one (or a fresh one) and
                        // goes on on the next.
                        if self.col > 0 {
                            self.newline()?;
                        }
                        self.spaces = 0;
                        self.flush_word()?;
                    }
                    self.word.push(c);
                    self.word_len += w;
                }
            }
        }
        self.out.flush()
    }

    /// Writes the word in progress.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.flush_word()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(width: usize, pieces: &[&str]) -> String {
        let mut buf = Vec::new();
        let mut w = WordWrap::new(&mut buf, width);
        for piece in pieces {
            w.write_str(piece).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn wraps_at_word_boundaries() {
        assert_eq!(
            wrap(
                10,
                &["The qu", "ick brown fox ", "jumps over\nthe lazy dog"]
            ),
            "The quick\nbrown fox\njumps over\nthe lazy\ndog"
        );
    }

    #[test]
    fn breaks_words_wider_than_a_line() {
        let long = "x".repeat(25);
        assert_eq!(
            wrap(10, &["ab ", &long, " cd"]),
            "ab\nxxxxxxxxxx\nxxxxxxxxxx\nxxxxx cd"
        );
        // Every line fits, and no text is lost.
        let text = "see https://example.com/a/very/long/path/that/goes/on ok";
        let out = wrap(12, &[text]);
        assert!(out.lines().all(|l| l.chars().count() <= 12), "{out:?}");
        let words = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(words(&out), words(text));
    }

    #[test]
    fn wide_characters_take_two_columns() {
        // Six CJK characters are twelve columns: five fit in ten.
        assert_eq!(wrap(10, &["日本語日本語"]), "日本語日本\n語");
        assert_eq!(wrap(10, &["ab 日本語日本"]), "ab\n日本語日本");
    }

    #[test]
    fn a_narrower_terminal_wraps_what_follows() {
        let mut buf = Vec::new();
        let mut w = WordWrap::new(&mut buf, 20);
        w.write_str("one two three four ").unwrap();
        w.set_width(10);
        w.write_str("five six seven").unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "one two three four\nfive six\nseven"
        );
    }
}
