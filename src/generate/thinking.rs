//! Thinking: what a reasoning model writes between its thinking tags before it answers
//! (Qwen 3, QwQ and DeepSeek-R1 write `<think>` … `</think>`), split from the answer as
//! the text streams.
//!
//! Whether a model thinks is read off its chat template, as Ollama infers the
//! capability: a template that shows `<think>`, `enable_thinking`, `reasoning_content`
//! or Go's `.Thinking`. A request's `think` reaches the template (Jinja
//! `enable_thinking` and `reasoning_effort`; Go `.Think`, `.ThinkLevel`, `.IsThinkSet`).
//!
//! [`ThinkParser`] starts outside the tags unless the prompt itself ends inside them
//! (DeepSeek-R1's template opens `<think>` for the model), eats the whitespace around
//! the thinking, holds back what may be the start of a closing tag, and never loses text:
//! an unclosed thinking block is still thinking when the answer ends.

use serde_json::Value;

use super::tools::partial_suffix;
use crate::template::ChatTemplate;

/// The tags around the thinking.
pub const OPEN: &str = "<think>";
pub const CLOSE: &str = "</think>";

/// A request's `think`: `true`, `false` or a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Think {
    Off,
    On,
    /// `"low"`, `"medium"` or `"high"`: thinking on, with that effort.
    Level(String),
}

impl Think {
    /// Ollama's `think`: a bool or `"low" | "medium" | "high"`; absent or null is `None`.
    pub fn from_json(v: Option<&Value>) -> Result<Option<Think>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(if *b { Think::On } else { Think::Off })),
            Some(Value::String(s)) => match s.as_str() {
                "low" | "medium" | "high" => Ok(Some(Think::Level(s.clone()))),
                "true" => Ok(Some(Think::On)),
                "false" => Ok(Some(Think::Off)),
                other => Err(format!(
                    "invalid think value {other:?}: want true, false, \"low\", \"medium\" or \"high\""
                )),
            },
            Some(other) => Err(format!(
                "invalid think value {other}: want true, false, \"low\", \"medium\" or \"high\""
            )),
        }
    }

    /// OpenAI's `reasoning_effort` (`none`, `minimal`, `low`, `medium`, `high`, `xhigh`),
    /// mapped as Ollama maps it: `none` turns thinking off, `minimal` is `low`, `xhigh`
    /// is `high`.
    pub fn from_effort(effort: Option<&str>) -> Result<Option<Think>, String> {
        match effort {
            None => Ok(None),
            Some("none") => Ok(Some(Think::Off)),
            Some("minimal" | "low") => Ok(Some(Think::Level("low".into()))),
            Some("medium") => Ok(Some(Think::Level("medium".into()))),
            Some("high" | "xhigh") => Ok(Some(Think::Level("high".into()))),
            Some(other) => Err(format!(
                "invalid reasoning_effort {other:?}: want none, minimal, low, medium, high or xhigh"
            )),
        }
    }

    pub fn enabled(&self) -> bool {
        *self != Think::Off
    }

    /// The level a template sees (`""` when none was given).
    pub fn level(&self) -> &str {
        match self {
            Think::Level(l) => l,
            _ => "",
        }
    }
}

/// Whether the model's template knows thinking.
pub fn supported(template: &ChatTemplate) -> bool {
    template.source().is_some_and(|s| {
        s.contains(OPEN)
            || s.contains("enable_thinking")
            || s.contains("reasoning_content")
            || s.contains(".Thinking")
    })
}

/// Whether a rendered prompt leaves the model inside a thinking block (it ends with an
/// opening tag that no closing tag follows).
pub fn prompt_opens_thinking(prompt: &str) -> bool {
    match prompt.rfind(OPEN) {
        Some(i) => !prompt[i..].contains(CLOSE),
        None => false,
    }
}

/// One piece of the split text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    Thinking(String),
    Content(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before anything but whitespace: a thinking block may open.
    Start,
    /// Inside the tags, leading whitespace not yet eaten.
    Opened,
    /// Inside the tags.
    Inside,
    /// Just past the closing tag: whitespace before the answer is eaten.
    Closed,
    /// The answer.
    Answer,
}

/// Splits streamed text into thinking and answer.
#[derive(Debug, Clone)]
pub struct ThinkParser {
    state: State,
    /// Text not yet given out (a possible tag, or whitespace that may end the thinking).
    held: String,
}

impl ThinkParser {
    /// `inside`: the prompt ended inside a thinking block.
    pub fn new(inside: bool) -> ThinkParser {
        ThinkParser {
            state: if inside { State::Opened } else { State::Start },
            held: String::new(),
        }
    }

    /// Whether the answer has begun (thinking is over or never started).
    pub fn answering(&self) -> bool {
        self.state == State::Answer
    }

    /// The pieces `text` completes.
    pub fn push(&mut self, text: &str) -> Vec<Split> {
        self.held.push_str(text);
        let mut out = Vec::new();
        loop {
            match self.state {
                State::Start => {
                    let t = self.held.trim_start();
                    if t.is_empty() || (OPEN.starts_with(t) && t.len() < OPEN.len()) {
                        break;
                    }
                    if let Some(rest) = t.strip_prefix(OPEN) {
                        self.held = rest.to_string();
                        self.state = State::Opened;
                    } else {
                        self.state = State::Answer;
                    }
                }
                State::Opened | State::Closed => {
                    let t = self.held.trim_start();
                    if t.is_empty() {
                        self.held.clear();
                        break;
                    }
                    self.held = t.to_string();
                    self.state = if self.state == State::Opened {
                        State::Inside
                    } else {
                        State::Answer
                    };
                }
                State::Inside => {
                    if let Some(i) = self.held.find(CLOSE) {
                        let thinking = self.held[..i].trim_end();
                        if !thinking.is_empty() {
                            out.push(Split::Thinking(thinking.to_string()));
                        }
                        self.held = self.held[i + CLOSE.len()..].to_string();
                        self.state = State::Closed;
                        continue;
                    }
                    // Give out all but trailing whitespace and a possible closing tag.
                    let keep_tag = partial_suffix(&self.held, CLOSE);
                    let body = &self.held[..self.held.len() - keep_tag];
                    let give = body.trim_end().len();
                    if give > 0 {
                        out.push(Split::Thinking(self.held[..give].to_string()));
                        self.held.drain(..give);
                    }
                    break;
                }
                State::Answer => {
                    if !self.held.is_empty() {
                        out.push(Split::Content(std::mem::take(&mut self.held)));
                    }
                    break;
                }
            }
        }
        out
    }

    /// What is still held when the text ends.
    pub fn finish(&mut self) -> Vec<Split> {
        let held = std::mem::take(&mut self.held);
        match self.state {
            State::Inside | State::Opened => {
                // Held text follows thinking already given out: only its end is trimmed.
                let t = held.trim_end();
                if t.is_empty() {
                    Vec::new()
                } else {
                    vec![Split::Thinking(t.to_string())]
                }
            }
            State::Start | State::Answer if !held.trim().is_empty() => {
                vec![Split::Content(held)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
