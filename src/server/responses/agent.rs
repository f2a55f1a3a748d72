//! Tool use and reasoning in the Responses API's shapes: function `tools` (flat:
//! `{"type": "function", "name", "description", "parameters"}`) and `tool_choice` in,
//! `reasoning.effort`; the answer out as output items — a `reasoning` item, a `message`
//! item, `function_call` items — each streamed from `response.output_item.added` to
//! `response.output_item.done`, with `output_index` counting the items.

use axum::body::Bytes;
use serde_json::{json, Value};

use super::super::error::ApiError;
use super::super::event_stream::{named_event, unique_id};
use super::super::sections::{Kind, Sink};
use crate::generate::output::Whole;
use crate::generate::thinking::Think;
use crate::generate::tools::ToolChoice;
use crate::template::ToolCall;

/// The function tools in the shape templates take (chat completions'); built-in tools
/// (web search, file search, …) are a 400.
pub(super) fn tools(tools: &Option<Vec<Value>>) -> Result<Vec<Value>, ApiError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| match t.get("type").and_then(Value::as_str) {
            Some("function") => match t.get("name").and_then(Value::as_str) {
                Some(name) => Ok(json!({"type": "function", "function": {
                    "name": name,
                    "description": t.get("description").cloned().unwrap_or(json!("")),
                    "parameters": t.get("parameters").cloned()
                        .unwrap_or(json!({"type": "object"})),
                }})),
                None => Err(ApiError::bad_request(format!(
                    "tools[{i}].name: a function tool needs a name"
                ))),
            },
            other => Err(ApiError::bad_request(format!(
                "tools[{i}]: tool type {other:?} is not supported: hearth runs function tools only"
            ))),
        })
        .collect()
}

/// `tool_choice`: `none`, `auto`, `required`, or `{"type": "function", "name"}`.
pub(super) fn tool_choice(v: &Option<Value>) -> Result<ToolChoice, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(ApiError::bad_request(format!(
                "tool_choice: want none, auto, required or a function, got {other:?}"
            ))),
        },
        Some(o) => match (
            o.get("type").and_then(Value::as_str),
            o.get("name").and_then(Value::as_str),
        ) {
            (Some("function"), Some(name)) => Ok(ToolChoice::Function(name.to_string())),
            _ => Err(ApiError::bad_request(
                "tool_choice: want {\"type\": \"function\", \"name\": …}",
            )),
        },
    }
}

/// `reasoning.effort`.
pub(super) fn think(reasoning: &Option<Value>) -> Result<Option<Think>, ApiError> {
    let effort = reasoning
        .as_ref()
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str);
    Think::from_effort(effort).map_err(ApiError::bad_request)
}

pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn reasoning_text(text: &str) -> Value {
    json!({"type": "reasoning_text", "text": text})
}

fn message_item(id: &str, status: &str, content: Value) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
           "content": content})
}

fn reasoning_item(id: &str, status: &str, content: Value) -> Value {
    json!({"id": id, "type": "reasoning", "status": status, "summary": [],
           "content": content})
}

fn call_item(id: &str, status: &str, c: &ToolCall, call_id: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
           "name": c.name, "arguments": arguments})
}

/// The output items of a whole answer with status `status`.
pub(super) fn output(w: &Whole, status: &str) -> Value {
    let mut items = Vec::new();
    if !w.thinking.is_empty() {
        let content = json!([reasoning_text(&w.thinking)]);
        items.push(reasoning_item(&unique_id("rs"), status, content));
    }
    if !w.text.trim().is_empty() || w.calls.is_empty() {
        let content = json!([output_text(&w.text)]);
        items.push(message_item(&unique_id("msg"), status, content));
    }
    for c in &w.calls {
        let args = c.arguments.to_string();
        items.push(call_item(
            &unique_id("fc"),
            "completed",
            c,
            &unique_id("call"),
            &args,
        ));
    }
    Value::Array(items)
}

/// A stream's output items: the finished ones, the one open, and the events'
/// sequence numbers.
pub(super) struct Items {
    pub(super) sequence: u64,
    pub(super) done: Vec<Value>,
    /// The open item's id and text.
    open: Option<(String, String)>,
}

impl Items {
    pub(super) fn new() -> Items {
        Items {
            sequence: 0,
            done: Vec::new(),
            open: None,
        }
    }

    /// One event: its `type` and `sequence_number` set.
    pub(super) fn event(&mut self, name: &str, mut data: Value) -> Bytes {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        named_event(name, &data)
    }

    /// The items so far, the open one included (as it stands, `incomplete`).
    pub(super) fn snapshot(&self) -> Value {
        let mut items = self.done.clone();
        if let Some((id, text)) = &self.open {
            items.push(message_item(id, "incomplete", json!([output_text(text)])));
        }
        Value::Array(items)
    }

    fn index(&self) -> usize {
        self.done.len()
    }
}

impl Sink for Items {
    fn open(&mut self, kind: Kind) -> Vec<Bytes> {
        let (id, item, part) = match kind {
            Kind::Thinking => {
                let id = unique_id("rs");
                let item = reasoning_item(&id, "in_progress", json!([]));
                (id, item, reasoning_text(""))
            }
            Kind::Text => {
                let id = unique_id("msg");
                let item = message_item(&id, "in_progress", json!([]));
                (id, item, output_text(""))
            }
        };
        let index = self.index();
        self.open = Some((id.clone(), String::new()));
        vec![
            self.event(
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            ),
            self.event(
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                       "part": part}),
            ),
        ]
    }

    fn delta(&mut self, kind: Kind, text: &str) -> Vec<Bytes> {
        let index = self.index();
        let Some((id, so_far)) = &mut self.open else {
            return Vec::new();
        };
        so_far.push_str(text);
        let id = id.clone();
        let (name, extra) = match kind {
            Kind::Thinking => ("response.reasoning_text.delta", Value::Null),
            Kind::Text => ("response.output_text.delta", json!([])),
        };
        let mut data =
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text});
        if !extra.is_null() {
            data["logprobs"] = extra;
        }
        vec![self.event(name, data)]
    }

    fn close(&mut self, kind: Kind) -> Vec<Bytes> {
        let index = self.index();
        let Some((id, text)) = self.open.take() else {
            return Vec::new();
        };
        let (done_name, part, item) = match kind {
            Kind::Thinking => (
                "response.reasoning_text.done",
                reasoning_text(&text),
                reasoning_item(&id, "completed", json!([reasoning_text(&text)])),
            ),
            Kind::Text => (
                "response.output_text.done",
                output_text(&text),
                message_item(&id, "completed", json!([output_text(&text)])),
            ),
        };
        let mut done = json!({"item_id": id, "output_index": index, "content_index": 0,
                              "text": text});
        if kind == Kind::Text {
            done["logprobs"] = json!([]);
        }
        let out = vec![
            self.event(done_name, done),
            self.event(
                "response.content_part.done",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                       "part": part}),
            ),
            self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ),
        ];
        self.done.push(item);
        out
    }

    fn call(&mut self, c: &ToolCall) -> Vec<Bytes> {
        let index = self.index();
        let (id, call_id) = (unique_id("fc"), unique_id("call"));
        let args = c.arguments.to_string();
        let added = call_item(&id, "in_progress", c, &call_id, "");
        let item = call_item(&id, "completed", c, &call_id, &args);
        let out = vec![
            self.event(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            ),
            self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": args}),
            ),
            self.event(
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": index, "name": c.name,
                       "arguments": args}),
            ),
            self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ),
        ];
        self.done.push(item);
        out
    }
}
