//! OpenAI's Responses API over the shared generation path: `POST /v1/responses`,
//! stateless as Ollama has it (nothing is stored: the whole conversation comes in
//! `input` each time).
//!
//! `input` is a string (one user message) or a list of items: messages (`role` user,
//! system, developer or assistant; `content` a string or `input_text`/`output_text`
//! parts), `function_call` and
//! `function_call_output` items. `instructions` is the system message;
//! `max_output_tokens` becomes `num_predict`; `temperature` and `top_p` are 1.0 when
//! unset (OpenAI's defaults, over the model's own parameters); `truncation: "auto"` drops
//! the oldest messages of a prompt longer than the context (the default, `disabled`,
//! refuses it). As extensions, `keep_alive` and an `options` object of Ollama options
//! are honoured (under the body's fields). `text.format` (`json_object`, `json_schema`)
//! constrains the output as `response_format` does on `/v1/chat/completions`; function `tools`
//! reach the template and `tool_choice` is enforced; `function_call` and
//! `function_call_output` items go back as the assistant's calls and `tool` turns;
//! `reasoning.effort` reaches a thinking model's template; the answer comes back as
//! `reasoning`, `message` and `function_call` items (`responses/agent.rs`). `include`, `store`,
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
use super::event_stream::{relay_sse, unique_id, Relay};
use super::infer::{self, GenRequest, Prompt, Started};
use super::sections::{Kind, Sections, Sink};
use super::{ollama, openai, read_body, AppState};
use crate::civil::unix_seconds;
use crate::constrain::Format;
use crate::generate::output::{OutputSpec, Whole};
use crate::generate::DoneReason;
use crate::scheduler::Done;
use crate::template::{Message, ToolCall};

mod agent;

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
    /// Function tools (`{"type": "function", "name", "description", "parameters"}`).
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
    /// `{"effort": …}`: whether and how hard a reasoning model thinks.
    #[serde(default)]
    reasoning: Option<Value>,
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
                out.push(Message::new(role, text));
            }
            // A call joins the assistant turn before it (or makes one): several calls
            // in a row are one turn's calls, as the model made them.
            "function_call" => {
                let arguments = str_field("arguments");
                let call = ToolCall {
                    id: str_field("call_id").to_string(),
                    name: str_field("name").to_string(),
                    arguments: serde_json::from_str(arguments)
                        .unwrap_or_else(|_| Value::String(arguments.to_string())),
                };
                match out.last_mut() {
                    Some(m) if m.role == "assistant" => m.tool_calls.push(call),
                    _ => out.push(Message {
                        tool_calls: vec![call],
                        ..Message::new("assistant", "")
                    }),
                }
            }
            "function_call_output" => {
                let output = content_text(item.get("output"), &format!("{at}.output"))?;
                let id = str_field("call_id").to_string();
                let name = out
                    .iter()
                    .flat_map(|m| m.tool_calls.iter())
                    .find(|c| c.id == id)
                    .map(|c| c.name.clone());
                out.push(Message {
                    tool_name: name,
                    tool_call_id: Some(id),
                    ..Message::new("tool", output)
                });
            }
            // Earlier reasoning is not shown again (as chat templates drop it).
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
    /// How reasoning and tool calls are read out of the text.
    output: OutputSpec,
    sections: Sections,
    items: agent::Items,
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
            "reasoning": {
                "effort": req.reasoning.as_ref().and_then(|r| r.get("effort")).cloned(),
                "summary": null,
            },
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
            output: OutputSpec::default(),
            sections: Sections::new(None),
            items: agent::Items::new(),
        }
    }

    /// Reads the answer with `output` (tools offered, a model that thinks).
    fn reading(mut self, output: OutputSpec) -> Reply {
        self.sections = Sections::new(output.parser());
        self.output = output;
        self
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

    /// The whole answer (not streamed).
    fn whole(&self, text: String, d: &Done) -> Value {
        let status = status_of(d);
        let w = Whole::of(self.output.parser().as_mut(), text);
        self.object(status, agent::output(&w, status), Some(d), Value::Null)
    }

    /// One event: its `type` and `sequence_number` set.
    fn event(&mut self, name: &str, data: Value) -> Bytes {
        self.items.event(name, data)
    }

    /// `response.created` and `response.in_progress` (the items open as the answer
    /// comes).
    fn opening(&mut self) -> Vec<Bytes> {
        let pending = self.object("in_progress", json!([]), None, Value::Null);
        vec![
            self.event("response.created", json!({"response": pending})),
            self.event("response.in_progress", json!({"response": pending})),
        ]
    }
}

impl Relay for Reply {
    fn text(&mut self, text: &str) -> Vec<Bytes> {
        self.sections.push(&mut self.items, text)
    }

    fn done(&mut self, d: &Done) -> Vec<Bytes> {
        let mut out = self.sections.finish(&mut self.items);
        if !self.sections.any() {
            // An empty answer is one message with empty text.
            out.extend(self.items.open(Kind::Text));
            out.extend(self.items.close(Kind::Text));
        }
        let status = status_of(d);
        let mut items = std::mem::take(&mut self.items.done);
        if status == "incomplete" {
            for item in &mut items {
                item["status"] = json!("incomplete");
            }
        }
        let whole = self.object(status, Value::Array(items), Some(d), Value::Null);
        let last = match status {
            "incomplete" => "response.incomplete",
            _ => "response.completed",
        };
        out.push(self.event(last, json!({"response": whole})));
        out
    }

    fn error(&mut self, message: &str) -> Vec<Bytes> {
        let error = json!({"code": "server_error", "message": message});
        let failed = self.object("failed", self.items.snapshot(), None, error);
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
    let tools = agent::tools(&req.tools)?;
    let tool_choice = agent::tool_choice(&req.tool_choice)?;
    let think = agent::think(&req.reasoning)?;
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
    let reply = Reply::new(&req, echoed_format, echo("temperature"), echo("top_p"));
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
            tools,
            tool_choice,
            think,
            logprobs: None,
        },
    )
    .await?;
    let Started {
        lease,
        mut events,
        output,
        ..
    } = started;
    let mut reply = reply.reading(output);
    if !req.stream.unwrap_or(false) {
        let (text, d) = infer::collect(&mut events).await?;
        return Ok(Json(reply.whole(text, &d)).into_response());
    }
    let opening = reply.opening();
    Ok(relay_sse(events, lease, opening, reply))
}

#[cfg(test)]
mod tests;
