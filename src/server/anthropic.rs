//! Anthropic's Messages API over the shared generation path: `POST /v1/messages` and
//! `POST /v1/messages/count_tokens`.
//!
//! Field mapping follows Ollama's compatibility layer: `system` (a string or text blocks)
//! becomes the conversation's system message, `max_tokens` (required, as Anthropic has
//! it) becomes `num_predict`, `stop_sequences` become `stop` (replacing the model's),
//! `temperature`, `top_p` and `top_k` pass through; `temperature` is 1.0 when unset
//! (Anthropic's default, over the model's own parameters). As extensions, `keep_alive`
//! and an `options` object of Ollama options are honoured (under the body's fields).
//! `output_config.format` (a JSON Schema) constrains the output as `response_format` does
//! on `/v1/chat/completions`. Client `tools` reach the template and `tool_choice` (`auto`,
//! `any`, `tool`, `none`) is enforced; `tool_use` and `tool_result` blocks of earlier turns
//! go back through the template as the assistant's calls and `tool` turns; `thinking` and
//! `output_config.effort` reach a thinking model's template, and the answer comes back as
//! `thinking`, `text` and `tool_use` blocks (`anthropic/agent.rs`). `metadata` is ignored.
//! Text only: an `image` or `document` block is a 400.
//! `count_tokens` counts the prompt as the model's template renders it (the model is
//! loaded to read its tokenizer, as a generation would).
//!
//! Every error has Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`);
//! a failure after a stream began is an `error` event.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::event_stream::{named_event, relay_sse, stop_sequence_hit, unique_id, Relay};
use super::infer::{self, GenRequest, Prompt, Started};
use super::sections::{Kind, Sections, Sink};
use super::{ollama, read_body, AppState};
use crate::constrain::Format;
use crate::generate::output::{OutputSpec, Whole};
use crate::generate::DoneReason;
use crate::scheduler::Done;
use crate::template::{Message, ToolCall};
use crate::tokenizer::Tokenizer;

mod agent;

/// The body of `/v1/messages` (and, without `max_tokens`, of `count_tokens`).
#[derive(Deserialize)]
struct MessagesRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    messages: Option<Vec<InputMessage>>,
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    stream: Option<bool>,
    /// Client tools (`name`, `description`, `input_schema`).
    #[serde(default)]
    tools: Option<Vec<Value>>,
    /// `auto`, `any`, `tool` (with `name`) or `none`.
    #[serde(default)]
    tool_choice: Option<Value>,
    /// `{"type": "enabled", "budget_tokens"}`, `adaptive` or `disabled`.
    #[serde(default)]
    thinking: Option<Value>,
    /// `{"effort", "format": {"type": "json_schema", "schema"}}` (structured output).
    #[serde(default)]
    output_config: Option<Value>,
    /// Extension: how long the model stays loaded (Ollama's `keep_alive`).
    #[serde(default)]
    keep_alive: Option<Value>,
    /// Extension: Ollama's options, under the body's own fields.
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct InputMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Value,
}

/// Why a request's content could not be used.
enum ContentError {
    /// An image or a document: the models hearth runs are text-only.
    Media(&'static str),
    Invalid(String),
}

impl ContentError {
    /// The 400 (after a 404 for an unknown model, which wins over a refused image).
    async fn into_api_error(self, model: &str) -> ApiError {
        match self {
            ContentError::Invalid(m) => ApiError::bad_request(m),
            ContentError::Media(kind) => {
                if let Err(e) = infer::resolve(model).await {
                    return e;
                }
                ApiError::bad_request(format!(
                    "\"{model}\" does not support {kind} blocks: it is a text-only model"
                ))
            }
        }
    }
}

fn invalid(m: String) -> ContentError {
    ContentError::Invalid(m)
}

/// The text of a `text` block.
fn block_text<'a>(block: &'a Value, at: &str) -> Result<&'a str, ContentError> {
    block
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}: a text block needs a string text")))
}

/// `tool_result` content: a string or text blocks.
fn tool_result_text(content: Option<&Value>, at: &str) -> Result<String, ContentError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let at = format!("{at}.content.{j}");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(block_text(b, &at)?.to_string()),
                    Some("image") => return Err(ContentError::Media("image")),
                    Some("document") => return Err(ContentError::Media("document")),
                    other => {
                        return Err(invalid(format!(
                            "{at}: unsupported block type {other:?} in a tool_result"
                        )))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        Some(_) => Err(invalid(format!(
            "{at}.content: want a string or an array of blocks"
        ))),
    }
}

/// One input message as the template takes it: the tool results it carries (each a
/// `tool` turn, before the message's own text), then the message itself (its text, the
/// calls of an assistant turn, and its thinking).
fn turns(
    i: usize,
    role: &str,
    content: &Value,
    out: &mut Vec<Message>,
) -> Result<(), ContentError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(Message::new(role, s.as_str()));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        Value::Null => return Err(invalid(format!("messages.{i}.content: Field required"))),
        _ => {
            return Err(invalid(format!(
                "messages.{i}.content: want a string or an array of content blocks"
            )))
        }
    };
    let mut message = Message::new(role, "");
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages.{i}.content.{j}");
        let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
        let field = |name: &str| {
            b.get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match kind {
            "text" => parts.push(block_text(b, &at)?.to_string()),
            "image" => return Err(ContentError::Media("image")),
            "document" => return Err(ContentError::Media("document")),
            "tool_use" => message.tool_calls.push(ToolCall {
                id: field("id"),
                name: field("name"),
                arguments: b.get("input").cloned().unwrap_or(json!({})),
            }),
            "tool_result" => {
                let id = field("tool_use_id");
                let mut text = tool_result_text(b.get("content"), &at)?;
                if b.get("is_error") == Some(&Value::Bool(true)) {
                    text = format!("error: {text}");
                }
                // The function's name, from the call this answers.
                let name = out
                    .iter()
                    .flat_map(|m| m.tool_calls.iter())
                    .find(|c| c.id == id)
                    .map(|c| c.name.clone());
                out.push(Message {
                    tool_name: name,
                    tool_call_id: Some(id),
                    ..Message::new("tool", text)
                });
            }
            "thinking" => message.thinking.push_str(&field("thinking")),
            "redacted_thinking" => {}
            "" => return Err(invalid(format!("{at}: a content block needs a type"))),
            other => {
                return Err(invalid(format!(
                    "{at}: unsupported content block type {other:?}"
                )))
            }
        }
    }
    message.content = parts.join("\n");
    // A user turn that only carried tool results adds no empty user message.
    if !(role == "user"
        && message.content.is_empty()
        && out.last().is_some_and(|m| m.role == "tool"))
    {
        out.push(message);
    }
    Ok(())
}

/// `system`: a string or text blocks (joined by newlines); `None` when empty.
fn system_text(v: &Option<Value>) -> Result<Option<String>, ContentError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let at = format!("system.{j}");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(block_text(b, &at)?),
                    other => {
                        return Err(invalid(format!(
                            "{at}: system blocks must be text, not {other:?}"
                        )))
                    }
                }
            }
            out.join("\n")
        }
        Some(_) => {
            return Err(invalid(
                "system: want a string or an array of text blocks".into(),
            ))
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// The conversation as the template takes it: the system message first, then the turns.
fn conversation(req: &MessagesRequest) -> Result<Vec<Message>, ContentError> {
    let messages = match &req.messages {
        None => return Err(invalid("messages: Field required".into())),
        Some(m) if m.is_empty() => {
            return Err(invalid("messages: at least one message is required".into()))
        }
        Some(m) => m,
    };
    let mut out = Vec::with_capacity(messages.len() + 1);
    if let Some(s) = system_text(&req.system)? {
        out.push(Message::new("system", s));
    }
    for (i, m) in messages.iter().enumerate() {
        if m.role != "user" && m.role != "assistant" {
            return Err(invalid(format!(
                "messages.{i}.role: want \"user\" or \"assistant\", got {:?}",
                m.role
            )));
        }
        turns(i, &m.role, &m.content, &mut out)?;
    }
    Ok(out)
}

/// The checked model name and conversation of a request.
async fn checked(req: &MessagesRequest) -> Result<Vec<Message>, ApiError> {
    if req.model.trim().is_empty() {
        return Err(ApiError::bad_request("model: Field required"));
    }
    match conversation(req) {
        Ok(m) => Ok(m),
        Err(e) => Err(e.into_api_error(&req.model).await),
    }
}

/// `output_config.format`: none, or `{"type": "json_schema", "schema": {…}}` as the
/// output's [`Format`] (a schema outside the supported subset is a 400 naming why).
fn output_format(config: &Option<Value>) -> Result<Option<Format>, ApiError> {
    let format = match config {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(c)) => match c.get("format") {
            None | Some(Value::Null) => return Ok(None),
            Some(f) => f,
        },
        Some(_) => return Err(ApiError::bad_request("output_config: want an object")),
    };
    match (
        format.get("type").and_then(Value::as_str),
        format.get("schema"),
    ) {
        (Some("json_schema"), Some(schema @ Value::Object(_))) => Format::schema(schema.clone())
            .map(Some)
            .map_err(infer::format_error),
        _ => Err(ApiError::bad_request(
            "output_config.format: want {\"type\": \"json_schema\", \"schema\": {…}}",
        )),
    }
}

/// Ollama's options for a generation: Anthropic's default temperature, then `options`,
/// then the body's fields.
fn generation_options(req: &MessagesRequest, max_tokens: i64) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("temperature".into(), json!(1.0));
    if let Some(extra) = &req.options {
        o.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.to_string(), v);
        }
    };
    set("temperature", req.temperature.map(|v| json!(v)));
    set("top_p", req.top_p.map(|v| json!(v)));
    set("top_k", req.top_k.map(|v| json!(v)));
    o.insert("num_predict".into(), json!(max_tokens));
    if let Some(stops) = req.stop_sequences.as_ref().filter(|s| !s.is_empty()) {
        o.insert("stop".into(), json!(stops));
    }
    o
}

/// `stop_reason` and `stop_sequence` (`tool_use` when the model called tools).
fn stop_reason(tok: &Tokenizer, d: &Done, stops: &[String], calls: usize) -> (&'static str, Value) {
    if d.reason == DoneReason::Length {
        return ("max_tokens", Value::Null);
    }
    if calls > 0 {
        return ("tool_use", Value::Null);
    }
    match stop_sequence_hit(tok, d, stops) {
        Some(s) => ("stop_sequence", json!(s)),
        None => ("end_turn", Value::Null),
    }
}

/// What every event and the whole answer of one reply share.
struct Reply {
    id: String,
    model: String,
    stops: Vec<String>,
    tokenizer: Arc<Tokenizer>,
    input_tokens: usize,
    /// How thinking and tool calls are read out of the text.
    output: OutputSpec,
    /// A stream's sections and content blocks.
    sections: Sections,
    blocks: agent::Blocks,
}

impl Reply {
    fn message(&self, content: Value, stop: (&str, Value), usage: Value) -> Value {
        let (reason, sequence) = stop;
        let reason = if reason.is_empty() {
            Value::Null
        } else {
            json!(reason)
        };
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": usage,
        })
    }

    /// The whole answer (not streamed).
    fn whole(&self, text: String, d: &Done) -> Value {
        let w = Whole::of(self.output.parser().as_mut(), text);
        self.message(
            agent::content(&w),
            stop_reason(&self.tokenizer, d, &self.stops, w.calls.len()),
            json!({"input_tokens": d.prompt_len, "output_tokens": d.stats.eval_count}),
        )
    }

    /// `message_start` (the content blocks open as the answer comes).
    fn opening(&self) -> Vec<Bytes> {
        let start = self.message(
            json!([]),
            ("", Value::Null),
            json!({"input_tokens": self.input_tokens, "output_tokens": 0}),
        );
        vec![named_event(
            "message_start",
            &json!({"type": "message_start", "message": start}),
        )]
    }
}

impl Relay for Reply {
    fn text(&mut self, text: &str) -> Vec<Bytes> {
        self.sections.push(&mut self.blocks, text)
    }

    fn done(&mut self, d: &Done) -> Vec<Bytes> {
        let mut out = self.sections.finish(&mut self.blocks);
        if !self.sections.any() {
            // An empty answer is one empty text block.
            out.extend(self.blocks.open(Kind::Text));
            out.extend(self.blocks.close(Kind::Text));
        }
        let calls = self.sections.calls();
        let (reason, sequence) = stop_reason(&self.tokenizer, d, &self.stops, calls);
        out.extend([
            named_event(
                "message_delta",
                &json!({"type": "message_delta",
                        "delta": {"stop_reason": reason, "stop_sequence": sequence},
                        "usage": {"input_tokens": d.prompt_len,
                                  "output_tokens": d.stats.eval_count}}),
            ),
            named_event("message_stop", &json!({"type": "message_stop"})),
        ]);
        out
    }

    fn error(&mut self, message: &str) -> Vec<Bytes> {
        vec![stream_error(message)]
    }
}

/// A failure after the stream began, as Anthropic's clients raise it.
fn stream_error(message: &str) -> Bytes {
    named_event(
        "error",
        &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
    )
}

/// `POST /v1/messages`
pub async fn messages(State(state): State<AppState>, body: Body) -> Response {
    create(state, body)
        .await
        .unwrap_or_else(ApiError::anthropic)
}

async fn create(state: AppState, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: MessagesRequest = parse_body(&body)?;
    let max_tokens = match req.max_tokens {
        None => return Err(ApiError::bad_request("max_tokens: Field required")),
        Some(n) if n < 1 => {
            return Err(ApiError::bad_request(format!(
                "max_tokens: must be at least 1, got {n}"
            )))
        }
        Some(n) => n,
    };
    let keep_alive = ollama::keep_alive(&req.keep_alive)?;
    let format = output_format(&req.output_config)?;
    let tools = agent::tools(&req.tools)?;
    let tool_choice = agent::tool_choice(&req.tool_choice)?;
    let think = agent::think(&req.thinking, &req.output_config)?;
    let messages = checked(&req).await?;
    let options = generation_options(&req, max_tokens);
    let started = infer::start(
        &state,
        GenRequest {
            model: req.model.clone(),
            prompt: Prompt::Chat(messages),
            system: None,
            options,
            keep_alive,
            // Anthropic refuses a prompt longer than the context; so does hearth.
            truncate: false,
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
        prompt_ids,
        output,
        ..
    } = started;
    let reply = Reply {
        id: unique_id("msg"),
        model: req.model,
        stops: req.stop_sequences.unwrap_or_default(),
        tokenizer: Arc::clone(&lease.info().tokenizer),
        input_tokens: prompt_ids.len(),
        sections: Sections::new(output.parser()),
        output,
        blocks: agent::Blocks::default(),
    };
    if !req.stream.unwrap_or(false) {
        let (text, d) = infer::collect(&mut events).await?;
        return Ok(Json(reply.whole(text, &d)).into_response());
    }
    let opening = reply.opening();
    Ok(relay_sse(events, lease, opening, reply))
}

/// `POST /v1/messages/count_tokens`
pub async fn count_tokens(State(state): State<AppState>, body: Body) -> Response {
    count(state, body).await.unwrap_or_else(ApiError::anthropic)
}

async fn count(state: AppState, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: MessagesRequest = parse_body(&body)?;
    let keep_alive = ollama::keep_alive(&req.keep_alive)?;
    let tools = agent::tools(&req.tools)?;
    let messages = checked(&req).await?;
    let (lease, _ticket, _) = infer::lease(&state, &req.model, keep_alive).await?;
    let info = Arc::clone(lease.info());
    drop(lease);
    if info.embedding {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support chat",
            req.model
        )));
    }
    let system = info.source.layers.system.clone();
    let ids = tokio::task::spawn_blocking(move || {
        let extras = infer::Extras {
            tools: &tools,
            think: None,
        };
        infer::build_prompt(
            &info,
            Prompt::Chat(messages),
            &extras,
            system,
            usize::MAX,
            false,
        )
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??
    .ids;
    Ok(Json(json!({"input_tokens": ids.len()})).into_response())
}

#[cfg(test)]
mod tests;
