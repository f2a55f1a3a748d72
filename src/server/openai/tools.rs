//! Tool use in OpenAI's chat completions: `tools` and `tool_choice` in, the calls the
//! model made out as `message.tool_calls` (ids, arguments as a JSON string) with
//! `finish_reason: "tool_calls"`, and streamed as OpenAI streams them: the first delta
//! of a call carries its index, id, type and name with empty arguments, the next its
//! arguments.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::generate::tools::ToolChoice;
use crate::server::error::ApiError;
use crate::template::ToolCall;

/// `call_<n>`, unique within the process.
pub fn call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("call_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `tool_choice`: `"none"`, `"auto"`, `"required"` or
/// `{"type": "function", "function": {"name": …}}`; absent is `auto`.
pub fn choice(v: Option<&Value>) -> Result<ToolChoice, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(ApiError::bad_request(format!(
                "invalid tool_choice {other:?}: want none, auto, required or a function"
            ))),
        },
        Some(o) => match o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) => Ok(ToolChoice::Function(name.to_string())),
            None => Err(ApiError::bad_request(
                "invalid tool_choice: a function choice needs function.name",
            )),
        },
    }
}

/// An assistant message's `tool_calls` (arguments as a JSON string, as OpenAI sends
/// them back) as the template takes them (arguments as an object).
pub fn from_request(calls: &[Value]) -> Vec<ToolCall> {
    calls
        .iter()
        .map(|c| {
            let f = c.get("function").unwrap_or(&Value::Null);
            let args = match f.get("arguments") {
                Some(Value::String(s)) => {
                    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                }
                Some(v) => v.clone(),
                None => json!({}),
            };
            ToolCall {
                id: c.get("id").and_then(Value::as_str).unwrap_or("").into(),
                name: f.get("name").and_then(Value::as_str).unwrap_or("").into(),
                arguments: args,
            }
        })
        .collect()
}

/// A call's arguments as OpenAI sends them: a JSON string.
fn arguments(c: &ToolCall) -> String {
    match &c.arguments {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// `message.tool_calls` of a whole answer (ids are given here).
pub fn message_calls(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| {
                json!({"id": call_id(), "type": "function",
                       "function": {"name": c.name, "arguments": arguments(c)}})
            })
            .collect(),
    )
}

/// The two deltas that stream call number `index`.
pub fn deltas(c: &ToolCall, index: usize) -> [Value; 2] {
    [
        json!({"tool_calls": [{"index": index, "id": call_id(), "type": "function",
                               "function": {"name": c.name, "arguments": ""}}]}),
        json!({"tool_calls": [{"index": index, "function": {"arguments": arguments(c)}}]}),
    ]
}
