//! Tool use and extended thinking in Anthropic's shapes: `tools` (`name`,
//! `description`, `input_schema`) and `tool_choice` (`auto`, `any`, `tool`, `none`) in;
//! `thinking` (`enabled`, `adaptive`, `disabled`) and `output_config.effort`; the answer
//! out as `thinking`, `text` and `tool_use` content blocks, streamed one block at a time
//! (`content_block_start`, deltas — `thinking_delta`, `text_delta`, `input_json_delta` —
//! and `content_block_stop`).

use axum::body::Bytes;
use serde_json::{json, Value};

use super::super::error::ApiError;
use super::super::event_stream::{named_event, unique_id};
use super::super::sections::{Kind, Sink};
use crate::generate::output::Whole;
use crate::generate::thinking::Think;
use crate::generate::tools::ToolChoice;
use crate::template::ToolCall;

/// Anthropic's tools in the shape templates take (OpenAI's). Server tools (web search,
/// code execution, …) run at Anthropic, not here: a 400 that says so.
pub(super) fn tools(tools: &Option<Vec<Value>>) -> Result<Vec<Value>, ApiError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("custom");
            let name = t.get("name").and_then(Value::as_str);
            match (kind, name) {
                ("custom", Some(name)) => Ok(json!({
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": t.get("description").cloned().unwrap_or(json!("")),
                        "parameters": t.get("input_schema").cloned()
                            .unwrap_or(json!({"type": "object"})),
                    }
                })),
                ("custom", None) => Err(ApiError::bad_request(format!(
                    "tools.{i}.name: Field required"
                ))),
                (other, _) => Err(ApiError::bad_request(format!(
                    "tools.{i}: tool type {other:?} is not supported: hearth runs client tools \
                     (with an input_schema) only"
                ))),
            }
        })
        .collect()
}

/// `tool_choice`: `{"type": "auto" | "any" | "none"}` or `{"type": "tool", "name"}`.
pub(super) fn tool_choice(v: &Option<Value>) -> Result<ToolChoice, ApiError> {
    let Some(v) = v.as_ref().filter(|v| !v.is_null()) else {
        return Ok(ToolChoice::Auto);
    };
    match v.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(ToolChoice::Auto),
        Some("any") => Ok(ToolChoice::Required),
        Some("none") => Ok(ToolChoice::None),
        Some("tool") => match v.get("name").and_then(Value::as_str) {
            Some(n) => Ok(ToolChoice::Function(n.to_string())),
            None => Err(ApiError::bad_request("tool_choice.name: Field required")),
        },
        _ => Err(ApiError::bad_request(
            "tool_choice: want {\"type\": \"auto\" | \"any\" | \"tool\" | \"none\"}",
        )),
    }
}

/// `thinking` (`{"type": "enabled", "budget_tokens"}`, `adaptive`, `disabled`), with
/// `output_config.effort` as the level.
pub(super) fn think(
    thinking: &Option<Value>,
    output_config: &Option<Value>,
) -> Result<Option<Think>, ApiError> {
    let effort = output_config
        .as_ref()
        .and_then(|c| c.get("effort"))
        .and_then(Value::as_str);
    let level = match effort {
        None => None,
        Some(e @ ("low" | "medium" | "high")) => Some(e.to_string()),
        Some("max") => Some("high".to_string()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "output_config.effort: want low, medium, high or max, got {other:?}"
            )))
        }
    };
    let on = match thinking.as_ref().filter(|v| !v.is_null()) {
        None => return Ok(level.map(Think::Level)),
        Some(t) => match t.get("type").and_then(Value::as_str) {
            Some("enabled" | "adaptive") => true,
            Some("disabled") => false,
            _ => {
                return Err(ApiError::bad_request(
                    "thinking: want {\"type\": \"enabled\" | \"adaptive\" | \"disabled\"}",
                ))
            }
        },
    };
    Ok(Some(match (on, level) {
        (false, _) => Think::Off,
        (true, Some(l)) => Think::Level(l),
        (true, None) => Think::On,
    }))
}

/// A `tool_use` block.
fn tool_use(c: &ToolCall) -> Value {
    json!({"type": "tool_use", "id": unique_id("toolu"), "name": c.name, "input": c.arguments})
}

/// The content blocks of a whole answer.
pub(super) fn content(w: &Whole) -> Value {
    let mut blocks = Vec::new();
    if !w.thinking.is_empty() {
        blocks.push(json!({"type": "thinking", "thinking": w.thinking, "signature": ""}));
    }
    if !w.text.trim().is_empty() || w.calls.is_empty() {
        blocks.push(json!({"type": "text", "text": w.text}));
    }
    blocks.extend(w.calls.iter().map(tool_use));
    Value::Array(blocks)
}

/// A stream's content blocks: the index of the next one, and whether `ping` was sent
/// (after the first block's start, as Anthropic sends it).
#[derive(Default)]
pub(super) struct Blocks {
    index: usize,
    pinged: bool,
}

impl Blocks {
    fn start(&mut self, block: Value) -> Vec<Bytes> {
        let mut out = vec![named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        )];
        if !self.pinged {
            self.pinged = true;
            out.push(named_event("ping", &json!({"type": "ping"})));
        }
        out
    }

    fn delta(&self, delta: Value) -> Vec<Bytes> {
        vec![named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        )]
    }

    fn stop(&mut self) -> Vec<Bytes> {
        let out = named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.index}),
        );
        self.index += 1;
        vec![out]
    }
}

impl Sink for Blocks {
    fn open(&mut self, kind: Kind) -> Vec<Bytes> {
        self.start(match kind {
            Kind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Kind::Text => json!({"type": "text", "text": ""}),
        })
    }

    fn delta(&mut self, kind: Kind, text: &str) -> Vec<Bytes> {
        Blocks::delta(
            self,
            match kind {
                Kind::Thinking => json!({"type": "thinking_delta", "thinking": text}),
                Kind::Text => json!({"type": "text_delta", "text": text}),
            },
        )
    }

    fn close(&mut self, _: Kind) -> Vec<Bytes> {
        self.stop()
    }

    fn call(&mut self, c: &ToolCall) -> Vec<Bytes> {
        let mut block = tool_use(c);
        block["input"] = json!({});
        let mut out = self.start(block);
        out.extend(Blocks::delta(
            self,
            json!({"type": "input_json_delta", "partial_json": c.arguments.to_string()}),
        ));
        out.extend(self.stop());
        out
    }
}
