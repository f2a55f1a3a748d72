//! An answer as a sequence of sections — thinking, text, tool calls — for the APIs whose
//! streams open and close one content block (Anthropic) or output item (Responses) per
//! section.
//!
//! [`Sections`] reads the generated text with the request's [`OutputParser`] and tells
//! an API's [`Sink`] when a section opens, grows and closes. Whitespace between sections
//! (after the thinking, between calls) opens no text section of its own: it is held and
//! given to the next text, or dropped at the end.

use axum::body::Bytes;

use crate::generate::output::OutputParser;
use crate::generate::tools::Piece;
use crate::template::ToolCall;

/// A section that streams in pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Thinking,
    Text,
}

/// One API's events for the sections of an answer.
pub(super) trait Sink {
    fn open(&mut self, kind: Kind) -> Vec<Bytes>;
    fn delta(&mut self, kind: Kind, text: &str) -> Vec<Bytes>;
    fn close(&mut self, kind: Kind) -> Vec<Bytes>;
    /// A whole call (calls are given out once their arguments are complete).
    fn call(&mut self, call: &ToolCall) -> Vec<Bytes>;
}

/// Where a streamed answer is.
pub(super) struct Sections {
    parser: Option<OutputParser>,
    open: Option<Kind>,
    /// Whitespace waiting for text.
    space: String,
    /// Whether any section was opened (or a call given).
    any: bool,
}

impl Sections {
    pub(super) fn new(parser: Option<OutputParser>) -> Sections {
        Sections {
            parser,
            open: None,
            space: String::new(),
            any: false,
        }
    }

    /// How many tool calls were read.
    pub(super) fn calls(&self) -> usize {
        self.parser.as_ref().map_or(0, OutputParser::calls)
    }

    /// Whether any section was opened.
    pub(super) fn any(&self) -> bool {
        self.any
    }

    /// The events for the next piece of generated text.
    pub(super) fn push(&mut self, sink: &mut impl Sink, text: &str) -> Vec<Bytes> {
        let pieces = match &mut self.parser {
            Some(p) => p.push(text),
            None => vec![Piece::Text(text.to_string())],
        };
        self.pieces(sink, pieces)
    }

    /// The events that end the answer: what the parser still held, then the open
    /// section's close.
    pub(super) fn finish(&mut self, sink: &mut impl Sink) -> Vec<Bytes> {
        let pieces = match &mut self.parser {
            Some(p) => p.finish(),
            None => Vec::new(),
        };
        let mut out = self.pieces(sink, pieces);
        if let Some(k) = self.open.take() {
            out.extend(sink.close(k));
        }
        out
    }

    fn switch(&mut self, sink: &mut impl Sink, to: Option<Kind>, out: &mut Vec<Bytes>) {
        if self.open == to {
            return;
        }
        if let Some(k) = self.open.take() {
            out.extend(sink.close(k));
        }
        if let Some(k) = to {
            out.extend(sink.open(k));
            self.any = true;
        }
        self.open = to;
    }

    fn pieces(&mut self, sink: &mut impl Sink, pieces: Vec<Piece>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Thinking(t) if t.is_empty() => {}
                Piece::Thinking(t) => {
                    self.switch(sink, Some(Kind::Thinking), &mut out);
                    out.extend(sink.delta(Kind::Thinking, &t));
                }
                Piece::Text(t) if self.open != Some(Kind::Text) && t.trim().is_empty() => {
                    self.space.push_str(&t);
                }
                Piece::Text(t) => {
                    self.switch(sink, Some(Kind::Text), &mut out);
                    let t = std::mem::take(&mut self.space) + &t;
                    out.extend(sink.delta(Kind::Text, &t));
                }
                Piece::Call(c) => {
                    self.space.clear();
                    self.switch(sink, None, &mut out);
                    self.any = true;
                    out.extend(sink.call(&c));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::output::{OutputSpec, Thinking};
    use crate::generate::tools::CallSyntax;

    /// Records the calls as text.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Sink for Log {
        fn open(&mut self, kind: Kind) -> Vec<Bytes> {
            self.0.push(format!("open {kind:?}"));
            Vec::new()
        }
        fn delta(&mut self, kind: Kind, text: &str) -> Vec<Bytes> {
            self.0.push(format!("{kind:?} {text:?}"));
            Vec::new()
        }
        fn close(&mut self, kind: Kind) -> Vec<Bytes> {
            self.0.push(format!("close {kind:?}"));
            Vec::new()
        }
        fn call(&mut self, call: &ToolCall) -> Vec<Bytes> {
            self.0
                .push(format!("call {} {}", call.name, call.arguments));
            Vec::new()
        }
    }

    #[test]
    fn sections_open_and_close_in_order() {
        let spec = OutputSpec {
            tools: Some(CallSyntax::Tagged {
                open: "<tool_call>".into(),
                close: "</tool_call>".into(),
            }),
            thinking: Some(Thinking {
                inside: false,
                keep: true,
            }),
        };
        let mut s = Sections::new(spec.parser());
        let mut log = Log::default();
        for piece in [
            "<think>\nLook it up",
            ".\n</think>\n\n",
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n",
            "<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool_call>",
        ] {
            s.push(&mut log, piece);
        }
        s.finish(&mut log);
        assert_eq!(
            log.0,
            [
                "open Thinking",
                "Thinking \"Look it up\"",
                "Thinking \".\"",
                "close Thinking",
                "call f {\"a\":1}",
                "call g {}",
            ]
        );
        assert_eq!(s.calls(), 2);
        // Plain text: one text section, leading space kept.
        let mut s = Sections::new(None);
        let mut log = Log::default();
        s.push(&mut log, " Paris");
        s.push(&mut log, ".");
        s.finish(&mut log);
        assert_eq!(
            log.0,
            ["open Text", "Text \" Paris\"", "Text \".\"", "close Text"]
        );
        assert!(s.any());
    }
}
