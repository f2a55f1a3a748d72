//! OpenAI's Responses API over the shared generation path: `POST /v1/responses`,
//! stateless as Ollama has it (nothing is stored: the whole conversation comes in
//! `input` each time).
//!
//! `input` is a string (one user message) or a list of items: messages (`role` user,
//! system, developer or assistant; `content` a string or `input_text`/`output_text`
//! parts) and, rendered into the conversation as text for now, `function_call` and
//! `function_call_output` items. `instructions` is the system message;
//! `max_output_tokens` becomes `num_predict`; `temperature` and `top_p` are 1.0 when
//! unset (OpenAI's defaults, over the model's own parameters); `truncation: "auto"` drops
//! the oldest messages of a prompt longer than the context (the default, `disabled`,
//! refuses it). As extensions, `keep_alive` and an `options` object of Ollama options
//! are honoured (under the body's fields). `text.format` (`json_object`, `json_schema`)
//! constrains the output as `response_format` does on `/v1/chat/completions`; `tools` and
//! `tool_choice` are carried and echoed, and not used yet; `reasoning`, `include`, `store`,
//! `metadata` (echoed), `user` and `service_tier` are accepted. What cannot work
//! statelessly or on a text-only model (`previous_response_id`, `conversation`,
//! `background`, stored `prompt`s, `item_reference`s, images, files, log probabilities)
//! is a 400 that says so.
//!
//! Errors have OpenAI's shape; a failure after a stream began is an `error` event
//! followed by `response.failed`.

use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::event_stream::{named_event, relay_sse, unique_id, Relay};
use super::infer::{self, GenRequest, Prompt, Started};
use super::{ollama, openai, read_body, AppState};
use crate::civil::unix_seconds;
use crate::constrain::Format;
use crate::generate::DoneReason;
use crate::scheduler::Done;
use crate::template::Message;

#[derive(Deserialize)]
struct ResponsesRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    max_output_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    truncation: Option<String>,
    // TODO(issue 13 tools): `tools` (function tools) and `tool_choice` (none, auto,
    // required, a named function) are carried and echoed here; not used yet.
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", …}, "verbosity"}`.
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    top_logprobs: Option<i64>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    conversation: Option<Value>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default)]
    prompt: Option<Value>,
    /// Extension: how long the model stays loaded (Ollama's `keep_alive`).
    #[serde(default)]
    keep_alive: Option<Value>,
    /// Extension: Ollama's options, under the body's own fields.
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

/// Why a request's input could not be used.
enum InputError {
    /// An image or audio part: the models hearth runs are text-only.
    Media(&'static str),
    Invalid(String),
}

fn invalid(m: String) -> InputError {
    InputError::Invalid(m)
}

/// A message's content: a string or text parts, joined by newlines.
fn content_text(content: Option<&Value>, at: &str) -> Result<String, InputError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(invalid(format!(
                "{at}: want a string or an array of content parts"
            )))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}[{j}]");
        let field = |name: &str| {
            p.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{at}: a part of this type needs a string {name}")))
        };
        match p.get("type").and_then(Value::as_str).unwrap_or("") {
            "input_text" | "output_text" | "text" => out.push(field("text")?),
            "refusal" => out.push(field("refusal")?),
            "input_image" => return Err(InputError::Media("images")),
            "input_audio" => return Err(InputError::Media("audio")),
            "input_file" => {
                return Err(invalid(format!("{at}: input_file parts are not supported")))
            }
            other => {
                return Err(invalid(format!(
                    "{at}: unsupported content part type {other:?}"
                )))
            }
        }
    }
    Ok(out.join("\n"))
}

/// Appends a message; text from a function item joins the message before it when the
/// roles match, so that a call and its result never make two turns in a row.
fn push(out: &mut Vec<Message>, role: &str, text: String, merge: bool) {
    match out.last_mut() {
        Some(last) if merge && last.role == role => {
            if !last.content.is_empty() {
                last.content.push('\n');
            }
            last.content.push_str(&text);
        }
        _ => out.push(Message::new(role, text)),
    }
}

/// The conversation as the template takes it: `instructions` as the system message,
/// then `input`.
fn conversation(
    instructions: Option<&str>,
    input: &Option<Value>,
) -> Result<Vec<Message>, InputError> {
    let mut out = Vec::new();
    if let Some(s) = instructions.filter(|s| !s.is_empty()) {
        out.push(Message::new("system", s));
    }
    let items = match input {
        None | Some(Value::Null) => return Err(invalid("input is required".into())),
        Some(Value::String(s)) => {
            out.push(Message::new("user", s.as_str()));
            return Ok(out);
        }
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(invalid("input: at least one item is required".into()))
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(invalid(
                "input: want a string or an array of input items".into(),
            ))
        }
    };
    // Whether the last message holds text from a function item.
    let mut last_from_function = false;
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        if !item.is_object() {
            return Err(invalid(format!("{at}: want an object")));
        }
        let str_field = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
        let kind = match item.get("type").and_then(Value::as_str) {
            Some(k) => k,
            None if item.get("role").is_some() => "message",
            None => return Err(invalid(format!("{at}: an input item needs a type"))),
        };
        match kind {
            "message" => {
                let role = match str_field("role") {
                    "developer" => "system",
                    r @ ("system" | "user" | "assistant") => r,
                    other => {
                        return Err(invalid(format!(
                            "{at}.role: want user, system, developer or assistant, got {other:?}"
                        )))
                    }
                };
                let text = content_text(item.get("content"), &format!("{at}.content"))?;
                push(&mut out, role, text, last_from_function);
                last_from_function = false;
            }
            // TODO(issue 13 tools): function_call items go to the template as the
            // assistant's tool calls and function_call_output items as tool messages;
            // until then, text the model can read.
            "function_call" => {
                let text = format!(
                    "[tool call {}] {}({})",
                    str_field("call_id"),
                    str_field("name"),
                    str_field("arguments")
                );
                push(&mut out, "assistant", text, true);
                last_from_function = true;
            }
            "function_call_output" => {
                let output = content_text(item.get("output"), &format!("{at}.output"))?;
                let text = format!("[tool result {}] {output}", str_field("call_id"));
                push(&mut out, "user", text, true);
                last_from_function = true;
            }
            // TODO(issue 13 thinking): earlier reasoning goes back through the template.
            "reasoning" => {}
            "item_reference" => {
                return Err(invalid(format!(
                    "{at}: item_reference is not supported: hearth stores no responses, \
                     send the items themselves"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "{at}: unsupported input item type {other:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// `text.format`: the format as the response echoes it (`{"type": "text"}` when unset)
/// and the output's [`Format`] (`json_object`, or `json_schema` with a supported schema;
/// anything else is a 400).
fn text_format(text: &Option<Value>) -> Result<(Value, Option<Format>), ApiError> {
    let format = match text {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => t.get("format").filter(|f| !f.is_null()),
        Some(_) => return Err(ApiError::bad_request("text: want an object")),
    };
    match format {
        None => Ok((json!({"type": "text"}), None)),
        Some(f) => Ok((f.clone(), openai::output_format(Some(f), false)?)),
    }
}

/// The request fields the API cannot honour statelessly or at all.
fn check_unsupported(req: &ResponsesRequest) -> Result<(), ApiError> {
    if req.model.trim().is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    if req.previous_response_id.is_some() {
        return Err(ApiError::bad_request(
            "previous_response_id is not supported: hearth stores no responses, send the \
             whole conversation in input",
        ));
    }
    if req.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(ApiError::bad_request(
            "conversation is not supported: hearth stores no conversations, send the whole \
             conversation in input",
        ));
    }
    if req.background == Some(true) {
        return Err(ApiError::bad_request("background is not supported"));
    }
    if req.prompt.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(ApiError::bad_request(
            "prompt (a stored prompt template) is not supported",
        ));
    }
    if req.top_logprobs.is_some_and(|n| n > 0) {
        return Err(ApiError::bad_request("logprobs are not supported"));
    }
    if let Some(n) = req.max_output_tokens.filter(|&n| n < 1) {
        return Err(ApiError::bad_request(format!(
            "max_output_tokens must be at least 1, got {n}"
        )));
    }
    Ok(())
}

/// Whether the oldest messages may be dropped (`truncation`).
fn truncation(v: &Option<String>) -> Result<bool, ApiError> {
    match v.as_deref() {
        None | Some("disabled") => Ok(false),
        Some("auto") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid truncation {other:?}: want auto or disabled"
        ))),
    }
}

/// Ollama's options: OpenAI's defaults, then `options`, then the body's fields.
fn generation_options(req: &ResponsesRequest) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("temperature".into(), json!(1.0));
    o.insert("top_p".into(), json!(1.0));
    if let Some(extra) = &req.options {
        o.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(t) = req.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        o.insert("top_p".into(), json!(p));
    }
    if let Some(n) = req.max_output_tokens {
        o.insert("num_predict".into(), json!(n));
    }
    o
}

/// One reply: the fields every response object repeats, and a stream's progress.
struct Reply {
    /// The response object without its per-moment fields (status, output, usage, …).
    base: Map<String, Value>,
    item_id: String,
    /// The text so far (a stream's closing events repeat it whole).
    text: String,
    sequence: u64,
}

fn usage(d: &Done) -> Value {
    json!({
        "input_tokens": d.prompt_len,
        "input_tokens_details": {"cached_tokens": d.reused},
        "output_tokens": d.stats.eval_count,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": d.prompt_len + d.stats.eval_count,
    })
}

/// `completed`, or `incomplete` when cut by `max_output_tokens` (or the context).
fn status_of(d: &Done) -> &'static str {
    match d.reason {
        DoneReason::Length => "incomplete",
        DoneReason::Stop | DoneReason::Cancelled => "completed",
    }
}

impl Reply {
    fn new(req: &ResponsesRequest, format: Value, temperature: f64, top_p: f64) -> Reply {
        let base = json!({
            "id": unique_id("resp"),
            "object": "response",
            "created_at": unix_seconds(SystemTime::now()),
            "model": req.model,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": req.metadata.clone().unwrap_or(json!({})),
            "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "service_tier": "default",
            "store": false,
            "background": false,
            "temperature": temperature,
            "top_p": top_p,
            "top_logprobs": 0,
            "text": {"format": format},
            "tool_choice": req.tool_choice.clone().unwrap_or(json!("auto")),
            "tools": req.tools.clone().unwrap_or_default(),
            "truncation": req.truncation.as_deref().unwrap_or("disabled"),
            "user": null,
        });
        Reply {
            base: match base {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            item_id: unique_id("msg"),
            text: String::new(),
            sequence: 0,
        }
    }

    /// The response object at a moment.
    fn object(&self, status: &str, output: Value, d: Option<&Done>, error: Value) -> Value {
        let mut v = self.base.clone();
        let incomplete = match d {
            Some(d) if d.reason == DoneReason::Length => json!({"reason": "max_output_tokens"}),
            _ => Value::Null,
        };
        let completed_at = match d {
            Some(_) => json!(unix_seconds(SystemTime::now())),
            None => Value::Null,
        };
        v.insert("status".into(), json!(status));
        v.insert("completed_at".into(), completed_at);
        v.insert("output".into(), output);
        v.insert("incomplete_details".into(), incomplete);
        v.insert("error".into(), error);
        v.insert("usage".into(), d.map_or(Value::Null, usage));
        Value::Object(v)
    }

    fn part(text: &str) -> Value {
        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    }

    fn item(&self, status: &str, content: Value) -> Value {
        json!({"id": self.item_id, "type": "message", "status": status, "role": "assistant",
               "content": content})
    }

    /// The whole answer (not streamed).
    fn whole(&self, text: &str, d: &Done) -> Value {
        let status = status_of(d);
        let item = self.item(status, json!([Reply::part(text)]));
        self.object(status, json!([item]), Some(d), Value::Null)
    }

    /// One event: its `type` and `sequence_number` set.
    fn event(&mut self, name: &str, mut data: Value) -> Bytes {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        named_event(name, &data)
    }

    /// From `response.created` to the empty text part.
    fn opening(&mut self) -> Vec<Bytes> {
        let pending = self.object("in_progress", json!([]), None, Value::Null);
        let item = self.item("in_progress", json!([]));
        let (id, part) = (self.item_id.clone(), Reply::part(""));
        vec![
            self.event("response.created", json!({"response": pending})),
            self.event("response.in_progress", json!({"response": pending})),
            self.event(
                "response.output_item.added",
                json!({"output_index": 0, "item": item}),
            ),
            self.event(
                "response.content_part.added",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "part": part}),
            ),
        ]
    }
}

impl Relay for Reply {
    fn text(&mut self, text: &str) -> Vec<Bytes> {
        self.text.push_str(text);
        let id = self.item_id.clone();
        vec![self.event(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": 0, "content_index": 0, "delta": text,
                   "logprobs": []}),
        )]
    }

    fn done(&mut self, d: &Done) -> Vec<Bytes> {
        let status = status_of(d);
        let text = std::mem::take(&mut self.text);
        let id = self.item_id.clone();
        let part = Reply::part(&text);
        let item = self.item(status, json!([part]));
        let whole = self.object(status, json!([item]), Some(d), Value::Null);
        let last = match status {
            "incomplete" => "response.incomplete",
            _ => "response.completed",
        };
        vec![
            self.event(
                "response.output_text.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text,
                       "logprobs": []}),
            ),
            self.event(
                "response.content_part.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "part": part}),
            ),
            self.event(
                "response.output_item.done",
                json!({"output_index": 0, "item": item}),
            ),
            self.event(last, json!({"response": whole})),
        ]
    }

    fn error(&mut self, message: &str) -> Vec<Bytes> {
        let item = self.item("incomplete", json!([Reply::part(&self.text)]));
        let error = json!({"code": "server_error", "message": message});
        let failed = self.object("failed", json!([item]), None, error);
        vec![
            self.event(
                "error",
                json!({"code": "server_error", "message": message, "param": null}),
            ),
            self.event("response.failed", json!({"response": failed})),
        ]
    }
}

/// `POST /v1/responses`
pub async fn create(State(state): State<AppState>, body: Body) -> Response {
    respond(state, body).await.unwrap_or_else(ApiError::openai)
}

async fn respond(state: AppState, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: ResponsesRequest = parse_body(&body)?;
    check_unsupported(&req)?;
    let truncate = truncation(&req.truncation)?;
    let (echoed_format, format) = text_format(&req.text)?;
    let keep_alive = ollama::keep_alive(&req.keep_alive)?;
    let messages = match conversation(req.instructions.as_deref(), &req.input) {
        Ok(m) => m,
        Err(InputError::Invalid(m)) => return Err(ApiError::bad_request(m)),
        Err(InputError::Media(kind)) => {
            // An unknown model is a 404 before the input is refused.
            infer::resolve(&req.model).await?;
            return Err(ApiError::bad_request(format!(
                "\"{}\" does not support {kind}: it is a text-only model",
                req.model
            )));
        }
    };
    let options = generation_options(&req);
    let echo = |k: &str| options.get(k).and_then(Value::as_f64).unwrap_or(1.0);
    let mut reply = Reply::new(&req, echoed_format, echo("temperature"), echo("top_p"));
    let started = infer::start(
        &state,
        GenRequest {
            model: req.model.clone(),
            prompt: Prompt::Chat(messages),
            system: None,
            options,
            keep_alive,
            truncate,
            format,
        },
    )
    .await?;
    let Started {
        lease, mut events, ..
    } = started;
    if !req.stream.unwrap_or(false) {
        let (text, d) = infer::collect(&mut events).await?;
        return Ok(Json(reply.whole(&text, &d)).into_response());
    }
    let opening = reply.opening();
    Ok(relay_sse(events, lease, opening, reply))
}

#[cfg(test)]
mod tests;
