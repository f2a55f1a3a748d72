//! Streaming detokenizer: feed ids one at a time, get back only whole UTF-8 characters.
//!
//! A token's bytes may end in the middle of a character (byte tokens, or GPT-2 tokens that
//! hold part of a multi-byte character), so bytes that could still become a valid character are
//! held back until the next token completes them. Bytes that can never be valid (a stray
//! continuation byte, a truncated sequence followed by something else) are emitted as U+FFFD,
//! one per maximal invalid sequence as `String::from_utf8_lossy` does; [`StreamDecoder::finish`]
//! flushes a trailing incomplete sequence the same way.

use super::{Tokenizer, TokenizerError};

/// Incremental decoder over one [`Tokenizer`].
pub struct StreamDecoder<'t> {
    tok: &'t Tokenizer,
    inner: TextDecoder,
}

impl<'t> StreamDecoder<'t> {
    /// A decoder that, like llama.cpp's `token_to_piece(special = false)`, renders control and
    /// unknown tokens as nothing.
    pub fn new(tok: &'t Tokenizer) -> StreamDecoder<'t> {
        StreamDecoder {
            tok,
            inner: TextDecoder::new(),
        }
    }

    /// Render control/unknown tokens as their text (`<|im_end|>`...) instead of nothing.
    pub fn with_special(mut self, render_special: bool) -> StreamDecoder<'t> {
        self.inner.render_special = render_special;
        self
    }

    /// Add one token; returns the text that is now complete (possibly empty). An id outside the
    /// vocabulary is an error and changes nothing.
    pub fn push(&mut self, id: u32) -> Result<String, TokenizerError> {
        self.inner.push(self.tok, id)
    }

    /// Flush whatever is held back (an incomplete sequence becomes U+FFFD) and reset.
    pub fn finish(&mut self) -> String {
        self.inner.finish()
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending_len(&self) -> usize {
        self.inner.pending.len()
    }
}

/// The state of a [`StreamDecoder`] without the borrow of its tokenizer, for a decoder that
/// lives apart from the tokenizer (a server's sequence): each call is given the tokenizer.
#[derive(Debug, Default, Clone)]
pub struct TextDecoder {
    pending: Vec<u8>,
    render_special: bool,
}

impl TextDecoder {
    /// A decoder that renders control and unknown tokens as nothing.
    pub fn new() -> TextDecoder {
        TextDecoder::default()
    }

    /// Add one token of `tok`; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String, TokenizerError> {
        tok.piece_for_output(id, self.render_special, &mut self.pending)?;
        Ok(self.take_complete())
    }

    /// Flush whatever is held back (an incomplete sequence becomes U+FFFD) and reset.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    // Safe: from_utf8 vouched for these bytes.
                    out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &rest[good + bad..];
                        }
                        None => {
                            // Incomplete character at the end: keep it for the next token.
                            rest = &rest[good..];
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let start = self.pending.len() - keep;
        self.pending.drain(..start);
        out
    }
}
