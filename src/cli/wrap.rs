//! Word wrapping for streamed text on a terminal: a word is held until it is complete,
//! then placed on the current line or, if it would overflow, on the next.

use std::io::Write;

pub struct WordWrap<W: Write> {
    out: W,
    width: usize,
    col: usize,
    word: String,
    word_len: usize,
    /// Spaces seen after the last word, written before the next word unless it wraps.
    spaces: usize,
}

impl<W: Write> WordWrap<W> {
    pub fn new(out: W, width: usize) -> WordWrap<W> {
        WordWrap {
            out,
            width: width.max(10),
            col: 0,
            word: String::new(),
            word_len: 0,
            spaces: 0,
        }
    }

    fn flush_word(&mut self) -> std::io::Result<()> {
        if self.word.is_empty() {
            return Ok(());
        }
        if self.col > 0 && self.col + self.spaces + self.word_len > self.width {
            self.out.write_all(b"\n")?;
            self.col = 0;
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
                    self.out.write_all(b"\n")?;
                    self.col = 0;
                }
                ' ' | '\t' => {
                    self.flush_word()?;
                    self.spaces += 1;
                }
                c => {
                    self.word.push(c);
                    self.word_len += 1;
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

    #[test]
    fn wraps_at_word_boundaries() {
        let mut buf = Vec::new();
        let mut w = WordWrap::new(&mut buf, 10);
        for piece in ["The qu", "ick brown fox ", "jumps over\nthe lazy dog"] {
            w.write_str(piece).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "The quick\nbrown fox\njumps over\nthe lazy\ndog"
        );
    }
}
