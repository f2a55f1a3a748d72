//! The parts of an answer — thinking, text and tool calls — read out of the generated
//! text as it streams, for the APIs to shape in their own ways.
//!
//! Thinking comes first in the text, so it is split off first ([`ThinkParser`]); the
//! answer that follows is read for tool calls ([`ToolParser`]) when tools were offered.

use super::thinking::{Split, ThinkParser};
use super::tools::{CallSyntax, Piece, ToolParser};

/// How to read a request's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputSpec {
    /// Tools were offered: how the model writes its calls.
    pub tools: Option<CallSyntax>,
    /// The model thinks: whether its prompt ended inside a thinking block, and whether
    /// the thinking is given to the client (`think: false` drops what a model thinks
    /// anyway).
    pub thinking: Option<Thinking>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thinking {
    pub inside: bool,
    pub keep: bool,
}

impl OutputSpec {
    /// The parser, or `None` when the text is all answer.
    pub fn parser(&self) -> Option<OutputParser> {
        if self.tools.is_none() && self.thinking.is_none() {
            return None;
        }
        Some(OutputParser {
            think: self.thinking.map(|t| (ThinkParser::new(t.inside), t.keep)),
            tools: self.tools.clone().map(ToolParser::new),
        })
    }
}

/// Splits streamed text into [`Piece`]s.
pub struct OutputParser {
    think: Option<(ThinkParser, bool)>,
    tools: Option<ToolParser>,
}

impl OutputParser {
    /// How many tool calls were read.
    pub fn calls(&self) -> usize {
        self.tools.as_ref().map_or(0, ToolParser::calls)
    }

    /// Takes the next piece of generated text; returns what became certain.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        match &mut self.think {
            Some((p, _)) => {
                let splits = p.push(text);
                self.answer(splits)
            }
            None => self.content(text),
        }
    }

    /// The end of the text: everything still held.
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = match &mut self.think {
            Some((p, _)) => {
                let splits = p.finish();
                self.answer(splits)
            }
            None => Vec::new(),
        };
        if let Some(t) = &mut self.tools {
            out.extend(t.finish());
        }
        out
    }

    fn answer(&mut self, splits: Vec<Split>) -> Vec<Piece> {
        let keep = self.think.as_ref().is_some_and(|(_, k)| *k);
        let mut out = Vec::new();
        for s in splits {
            match s {
                Split::Thinking(t) if keep => out.push(Piece::Thinking(t)),
                Split::Thinking(_) => {}
                Split::Content(c) => out.extend(self.content(&c)),
            }
        }
        out
    }

    fn content(&mut self, text: &str) -> Vec<Piece> {
        match &mut self.tools {
            Some(t) => t.push(text),
            None if text.is_empty() => Vec::new(),
            None => vec![Piece::Text(text.to_string())],
        }
    }
}

/// The whole answer at once: thinking, text and calls.
#[derive(Debug, Default, PartialEq)]
pub struct Whole {
    pub thinking: String,
    pub text: String,
    pub calls: Vec<crate::template::ToolCall>,
}

impl Whole {
    /// Splits a finished answer (the text itself when there is no parser).
    pub fn of(parser: Option<&mut OutputParser>, text: String) -> Whole {
        let Some(p) = parser else {
            return Whole {
                text,
                ..Whole::default()
            };
        };
        let mut pieces = p.push(&text);
        pieces.extend(p.finish());
        let mut w = Whole::default();
        for piece in pieces {
            match piece {
                Piece::Thinking(t) => w.thinking.push_str(&t),
                Piece::Text(t) => w.text.push_str(&t),
                Piece::Call(c) => w.calls.push(c),
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_then_a_call() {
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
        let text = "<think>\nI need the weather.\n</think>\n\n<tool_call>\n\
                    {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        // Streamed in small pieces, then whole: the same parts.
        let mut p = spec.parser().unwrap();
        let mut streamed = Vec::new();
        for chunk in text.as_bytes().chunks(5) {
            streamed.extend(p.push(std::str::from_utf8(chunk).unwrap()));
        }
        streamed.extend(p.finish());
        assert_eq!(p.calls(), 1);
        let w = Whole::of(spec.parser().as_mut(), text.to_string());
        assert_eq!(w.thinking, "I need the weather.");
        assert_eq!(w.text.trim(), "");
        assert_eq!(w.calls.len(), 1);
        assert_eq!(w.calls[0].name, "get_weather");
        assert_eq!(w.calls[0].arguments["city"], "Paris");
        let thinking: String = streamed
            .iter()
            .filter_map(|p| match p {
                Piece::Thinking(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(thinking, w.thinking);
    }

    #[test]
    fn thinking_dropped_when_not_kept() {
        let spec = OutputSpec {
            tools: None,
            thinking: Some(Thinking {
                inside: true,
                keep: false,
            }),
        };
        let w = Whole::of(spec.parser().as_mut(), "hmm\n</think>\nYes.".into());
        assert_eq!(
            w,
            Whole {
                text: "Yes.".into(),
                ..Whole::default()
            }
        );
        assert!(OutputSpec::default().parser().is_none());
    }
}
