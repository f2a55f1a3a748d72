//! Tool calls: how a model family writes them, reading them out of its text as it
//! streams, and the grammar that forces them when the client's `tool_choice` says so.
//!
//! The syntax is read off the chat template, as Ollama does: a template that shows
//! `<tool_call>` (Qwen 2.5, Qwen 3, Hermes) wraps each call's JSON in those tags; one
//! that asks for `"parameters"` (Llama 3.x) answers with one bare JSON object; any
//! other template that shows `tools` gets the tagged form's parser for bare objects
//! too. A template without tools cannot be offered any.
//!
//! [`ToolParser`] passes text through until a call may begin, holds back what might be
//! the start of one, and yields each call once its JSON is complete. Text that looked
//! like a call but does not parse as one is given back as text, never lost.

use serde_json::{json, Value};

use crate::constrain::{ConstrainError, Format};
use crate::template::{ChatTemplate, ToolCall};

/// How a model family writes a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallSyntax {
    /// `OPEN{"name": …, "arguments": {…}}CLOSE`, several in a row (Qwen: `<tool_call>`).
    Tagged { open: String, close: String },
    /// One JSON object with `name` and `parameters` as the whole answer (Llama 3.x).
    Bare,
}

impl CallSyntax {
    /// The syntax a template implies; `None` when it shows no tools.
    pub fn of(template: &ChatTemplate) -> Option<CallSyntax> {
        if !template.supports_tools() {
            return None;
        }
        let src = template.source().unwrap_or("");
        if src.contains("<tool_call>") {
            Some(CallSyntax::Tagged {
                open: "<tool_call>".into(),
                close: "</tool_call>".into(),
            })
        } else {
            Some(CallSyntax::Bare)
        }
    }

    /// The key the family puts the arguments under.
    fn arguments_key(&self) -> &'static str {
        match self {
            CallSyntax::Tagged { .. } => "arguments",
            CallSyntax::Bare => "parameters",
        }
    }
}

/// What the client allows (`tool_choice`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// Tools are not offered and no call is read.
    None,
    /// The model decides.
    Auto,
    /// At least one call, nothing else.
    Required,
    /// Exactly one call of this function.
    Function(String),
}

/// A function the client offers, from OpenAI's shape
/// `{"type": "function", "function": {"name", "description", "parameters"}}` (the
/// same in Ollama's API).
pub fn tool_name(tool: &Value) -> Option<&str> {
    tool.get("function")?.get("name")?.as_str()
}

/// Checks the tools (each a function with a name and an object schema in the supported
/// subset) and the choice against them.
pub fn check(tools: &[Value], choice: &ToolChoice) -> Result<(), ConstrainError> {
    for (i, t) in tools.iter().enumerate() {
        let name = tool_name(t)
            .ok_or_else(|| ConstrainError::Schema(format!("tools[{i}] needs function.name")))?;
        if let Some(p) = t.get("function").and_then(|f| f.get("parameters")) {
            crate::constrain::schema::check(p).map_err(|e| match e {
                ConstrainError::Unsupported { keyword, path } => ConstrainError::Unsupported {
                    keyword,
                    path: format!("tool {name} parameters {path}"),
                },
                e => e,
            })?;
        }
    }
    match choice {
        ToolChoice::Function(f) if !tools.iter().any(|t| tool_name(t) == Some(f)) => Err(
            ConstrainError::Schema(format!("tool_choice names {f}, which is not in tools")),
        ),
        ToolChoice::Required | ToolChoice::Function(_) if tools.is_empty() => Err(
            ConstrainError::Schema("tool_choice requires a call, but there are no tools".into()),
        ),
        _ => Ok(()),
    }
}

/// The grammar that forces calls for `required` or a named function; `None` for
/// `auto` and `none`.
pub fn forced(syntax: &CallSyntax, tools: &[Value], choice: &ToolChoice) -> Option<Format> {
    let allowed: Vec<&Value> = match choice {
        ToolChoice::None | ToolChoice::Auto => return None,
        ToolChoice::Required => tools.iter().collect(),
        ToolChoice::Function(f) => tools
            .iter()
            .filter(|t| tool_name(t) == Some(f.as_str()))
            .collect(),
    };
    let key = syntax.arguments_key();
    let calls: Vec<Value> = allowed
        .iter()
        .filter_map(|t| {
            let name = tool_name(t)?;
            let params = t
                .get("function")
                .and_then(|f| f.get("parameters"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            Some(json!({
                "type": "object",
                "properties": {"name": {"const": name}, key: params},
                "required": ["name", key],
                "additionalProperties": false,
            }))
        })
        .collect();
    let mut schema = if calls.len() == 1 {
        calls.into_iter().next()?
    } else {
        json!({"anyOf": calls})
    };
    crate::constrain::with_options(&mut schema);
    let one = format!("%json {schema}");
    let lark = match syntax {
        CallSyntax::Bare => format!("start: {one}\n"),
        CallSyntax::Tagged { open, close } => {
            let call = format!(
                "call: {} {one} {}\n",
                lark_str(&format!("{open}\n")),
                lark_str(&format!("\n{close}"))
            );
            match choice {
                ToolChoice::Function(_) => format!("start: call\n{call}"),
                _ => format!("start: call ({} call)*\n{call}", lark_str("\n")),
            }
        }
    };
    Some(Format::Grammar(lark))
}

fn lark_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// One piece of a parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// What a reasoning model thought (see `thinking`; never from [`ToolParser`]).
    Thinking(String),
    Text(String),
    Call(ToolCall),
}

/// Reads calls out of streamed text.
pub struct ToolParser {
    syntax: CallSyntax,
    /// Text held back: a possible start of a call, or a call not yet complete.
    held: String,
    /// Whether the answer's first non-space character was seen: a JSON object there is
    /// read as a call (the bare syntax's only call; models of the tagged families often
    /// drop the tags).
    started: bool,
    /// Inside a call: after an opening tag, or (`bare`) after a leading `{`.
    in_call: bool,
    bare: bool,
    calls: usize,
}

impl ToolParser {
    pub fn new(syntax: CallSyntax) -> ToolParser {
        ToolParser {
            syntax,
            held: String::new(),
            started: false,
            in_call: false,
            bare: false,
            calls: 0,
        }
    }

    /// How many calls were read.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Takes the next piece of generated text; returns what became certain.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.held.push_str(text);
        let mut out = Vec::new();
        while self.step(&mut out) {}
        merge_text(out)
    }

    /// The end of the answer: a call left open is read if its JSON is complete,
    /// anything else held back is text.
    pub fn finish(&mut self) -> Vec<Piece> {
        let held = std::mem::take(&mut self.held);
        let mut out = Vec::new();
        if self.in_call {
            self.in_call = false;
            if let Some(call) = self.parse_call(&held) {
                out.push(Piece::Call(call));
                return out;
            }
            if let (CallSyntax::Tagged { open, .. }, false) = (&self.syntax, self.bare) {
                out.push(Piece::Text(format!("{open}{held}")));
                return out;
            }
        }
        if !held.is_empty() {
            out.push(Piece::Text(held));
        }
        out
    }

    /// Makes one move; false when nothing more can be decided without more text.
    fn step(&mut self, out: &mut Vec<Piece>) -> bool {
        if !self.started {
            let t = self.held.trim_start();
            if t.is_empty() {
                return false;
            }
            self.started = true;
            if t.starts_with('{') {
                self.held = t.to_string();
                self.in_call = true;
                self.bare = true;
            }
            return true;
        }
        if self.in_call && self.bare {
            let Some(end) = json_object_end(&self.held) else {
                return false;
            };
            let body: String = self.held.drain(..end).collect();
            self.in_call = false;
            self.bare = false;
            match self.parse_call(&body) {
                Some(c) => out.push(Piece::Call(c)),
                None => out.push(Piece::Text(body)),
            }
            return !self.held.is_empty();
        }
        match self.syntax.clone() {
            CallSyntax::Bare => {
                if !self.held.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut self.held)));
                }
                false
            }
            CallSyntax::Tagged { open, close } => self.tagged(&open, &close, out),
        }
    }

    fn tagged(&mut self, open: &str, close: &str, out: &mut Vec<Piece>) -> bool {
        if self.in_call {
            let Some(end) = self.held.find(close) else {
                return false;
            };
            let body: String = self.held[..end].to_string();
            self.held.drain(..end + close.len());
            self.in_call = false;
            match self.parse_call(&body) {
                Some(c) => out.push(Piece::Call(c)),
                None => out.push(Piece::Text(format!("{open}{body}{close}"))),
            }
            return !self.held.is_empty();
        }
        if let Some(start) = self.held.find(open) {
            let text: String = self.held[..start].to_string();
            self.text(text, out);
            self.held.drain(..start + open.len());
            self.in_call = true;
            return true;
        }
        // Keep back a tail that could be the start of the tag.
        let keep = partial_suffix(&self.held, open);
        let emit = self.held.len() - keep;
        if emit > 0 {
            let text: String = self.held.drain(..emit).collect();
            self.text(text, out);
        }
        false
    }

    /// Text between calls: whitespace after a call is not content.
    fn text(&self, text: String, out: &mut Vec<Piece>) {
        if !(text.is_empty() || (self.calls > 0 && text.trim().is_empty())) {
            out.push(Piece::Text(text));
        }
    }

    fn parse_call(&mut self, body: &str) -> Option<ToolCall> {
        let v: Value = serde_json::from_str(body.trim()).ok()?;
        let name = v.get("name")?.as_str()?.to_string();
        let args = v
            .get("arguments")
            .or_else(|| v.get("parameters"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        // Some models write the arguments as a JSON string.
        let args = match args {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            a => a,
        };
        self.calls += 1;
        Some(ToolCall {
            id: String::new(),
            name,
            arguments: args,
        })
    }
}

/// The length of the longest suffix of `s` that is a proper prefix of `tag` (text held
/// back because a tag may be starting; also used by `thinking`).
pub(super) fn partial_suffix(s: &str, tag: &str) -> usize {
    (1..tag.len().min(s.len() + 1))
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && tag.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

/// Where the JSON object that `s` starts with ends (just past its closing brace).
fn json_object_end(s: &str) -> Option<usize> {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, c) in s.char_indices() {
        if in_str {
            match c {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn merge_text(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(Piece::Text(a)), Piece::Text(b)) => a.push_str(&b),
            (_, p) => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests;
