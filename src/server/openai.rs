//! OpenAI's API over the shared generation path: `POST /v1/chat/completions`,
//! `POST /v1/completions`, `GET /v1/models` and `GET /v1/models/{model}`.
//!
//! Field mapping follows Ollama's compatibility layer: `max_tokens` (and
//! `max_completion_tokens`) become `num_predict`, `temperature` and `top_p` are 1.0
//! when unset (OpenAI's defaults, over the model's own parameters), `stop`, `seed` and
//! the penalties pass through. As extensions, `num_ctx`, `keep_alive` and an `options`
//! object of Ollama options are honoured; the precedence is OpenAI's defaults, then
//! `options`, then the body's own fields. `tools`, `tool_choice`, `user`, `logit_bias`
//! and `parallel_tool_calls` are accepted and ignored; `response_format` is checked
//! and not enforced yet. What hearth cannot do (several choices, images, `suffix`,
//! `echo`, log probabilities) is a 400 that says so, never a silently different answer.
//!
//! Every error has OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::infer::{self, GenRequest, Prompt, Started, Truncation};
use super::stream::{sse, sse_done, sse_event};
use super::{ollama, read_body, AppState};
use crate::civil::unix_seconds;
use crate::constrain::Format;
use crate::generate::output::{OutputParser, Whole};
use crate::generate::thinking::Think;
use crate::generate::tools::{Piece, ToolChoice};
use crate::generate::DoneReason;
use crate::scheduler::{Done, Event, Events, Lease};
use crate::store::{Entry, Name, Store};
use crate::template::Message;

mod tools;

/// `system_fingerprint` in every response.
const FINGERPRINT: &str = "fp_hearth";

/// OpenAI's default `max_tokens` for `/v1/completions`.
const COMPLETIONS_MAX_TOKENS: i64 = 16;

/// Response ids: `chatcmpl-<n>` and `cmpl-<n>`, unique within the process.
fn next_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The fields both generating endpoints share.
#[derive(Deserialize, Default)]
struct Common {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Value>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    n: Option<i64>,
    #[serde(default)]
    logprobs: Option<Value>,
    #[serde(default)]
    top_logprobs: Option<i64>,
    /// Extension: the context length (Ollama's `num_ctx`).
    #[serde(default)]
    num_ctx: Option<u64>,
    /// Extension: how long the model stays loaded (Ollama's `keep_alive`).
    #[serde(default)]
    keep_alive: Option<Value>,
    /// Extension: Ollama's options, under the body's own fields.
    #[serde(default)]
    options: Option<Map<String, Value>>,
    /// Extension: `false` refuses a prompt that does not fit instead of dropping the
    /// oldest messages.
    #[serde(default)]
    truncate: Option<bool>,
}

#[derive(Deserialize)]
struct ChatCompletionRequest {
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh`.
    #[serde(default)]
    reasoning_effort: Option<String>,
    /// `{"effort": …}` (the newer spelling).
    #[serde(default)]
    reasoning: Option<Value>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<Value>,
    /// An assistant turn's calls.
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    /// A tool turn: the call it answers.
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Deserialize)]
struct CompletionRequest {
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    suffix: Option<Value>,
    #[serde(default)]
    echo: Option<bool>,
    #[serde(default)]
    best_of: Option<i64>,
}

impl Common {
    fn check(&self) -> Result<(), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::bad_request("model is required"));
        }
        match self.n {
            Some(n) if n > 1 => return Err(ApiError::bad_request("n > 1 is not supported")),
            Some(n) if n < 1 => return Err(ApiError::bad_request("n must be at least 1")),
            _ => {}
        }
        let wants_logprobs = match &self.logprobs {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(_) => true,
        };
        if wants_logprobs || self.top_logprobs.is_some_and(|n| n > 0) {
            return Err(ApiError::bad_request("logprobs are not supported"));
        }
        Ok(())
    }

    fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// Ollama's options for this request: OpenAI's defaults, then `options`, then the
    /// body's own fields. `max_tokens` is the already chosen limit (or none).
    fn ollama_options(
        &self,
        max_tokens: Option<i64>,
        default_max: Option<i64>,
    ) -> Result<Map<String, Value>, ApiError> {
        let mut o = Map::new();
        o.insert("temperature".into(), json!(1.0));
        o.insert("top_p".into(), json!(1.0));
        if let Some(n) = default_max {
            o.insert("num_predict".into(), json!(n));
        }
        if let Some(extra) = &self.options {
            o.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.to_string(), v);
            }
        };
        set("temperature", self.temperature.map(|v| json!(v)));
        set("top_p", self.top_p.map(|v| json!(v)));
        set("seed", self.seed.map(|v| json!(v)));
        set(
            "frequency_penalty",
            self.frequency_penalty.map(|v| json!(v)),
        );
        set("presence_penalty", self.presence_penalty.map(|v| json!(v)));
        set("num_ctx", self.num_ctx.map(|v| json!(v)));
        if let Some(n) = max_tokens {
            if n < 1 {
                return Err(ApiError::bad_request(format!(
                    "max_tokens must be at least 1, got {n}"
                )));
            }
            o.insert("num_predict".into(), json!(n));
        }
        if let Some(stop) = stop_sequences(&self.stop)? {
            o.insert("stop".into(), stop);
        }
        Ok(o)
    }
}

/// `stop`: a string or an array of strings (an empty array keeps the model's).
fn stop_sequences(v: &Option<Value>) -> Result<Option<Value>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(json!([s]))),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            Ok((!a.is_empty()).then(|| Value::Array(a.clone())))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid stop: want a string or an array of strings",
        )),
    }
}

/// `response_format` (chat completions: `{type, json_schema: {name, schema, strict}}`)
/// or the Responses API's `text.format` (`{type, name, schema, strict}`, `nested` false):
/// `text`, `json_object` or `json_schema`, as the output's [`Format`].
pub(super) fn output_format(v: Option<&Value>, nested: bool) -> Result<Option<Format>, ApiError> {
    let field = if nested {
        "response_format"
    } else {
        "text.format"
    };
    let kind = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o.get("type").and_then(Value::as_str),
        Some(_) => None,
    };
    match kind {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Format::Json)),
        Some("json_schema") => {
            let holder = if nested {
                v.and_then(|v| v.get("json_schema"))
            } else {
                v
            };
            match holder.and_then(|h| h.get("schema")) {
                Some(s) => Format::schema(s.clone())
                    .map(Some)
                    .map_err(infer::format_error),
                None if nested && holder.is_some_and(Value::is_object) => Ok(Some(Format::Json)),
                None => Err(ApiError::bad_request(format!(
                    "{field} of type json_schema needs a schema"
                ))),
            }
        }
        _ => Err(ApiError::bad_request(format!(
            "invalid {field}: want a type of text, json_object or json_schema"
        ))),
    }
}

/// Why a message could not be used.
enum ContentError {
    Image,
    Invalid(String),
}

/// A message's text: a string, or the `text` parts of an array joined by newlines.
fn message_text(i: usize, content: &Option<Value>) -> Result<String, ContentError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(ContentError::Invalid(format!(
                "invalid content in messages[{i}]: want a string or an array of content parts"
            )))
        }
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text" => match part.get("text").and_then(Value::as_str) {
                Some(t) => texts.push(t),
                None => {
                    return Err(ContentError::Invalid(format!(
                        "messages[{i}].content[{j}] of type text has no text"
                    )))
                }
            },
            "image_url" | "input_image" => return Err(ContentError::Image),
            other => {
                return Err(ContentError::Invalid(format!(
                    "unsupported content part type {other:?} in messages[{i}].content[{j}]: \
                     only text is supported"
                )))
            }
        }
    }
    Ok(texts.join("\n"))
}

/// The conversation as the template takes it (`developer` is OpenAI's newer name
/// for `system`).
async fn conversation(model: &str, messages: Vec<ChatMessage>) -> Result<Vec<Message>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad_request("[] is too short - 'messages'"));
    }
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant" | "tool") => r,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid role {other:?} in messages[{i}]: want system, developer, user, \
                     assistant or tool"
                )))
            }
        };
        let calls = tools::from_request(m.tool_calls.as_deref().unwrap_or(&[]));
        // A tool result names its function by the id of the call it answers.
        let tool_name = m.tool_call_id.as_ref().and_then(|id| {
            out.iter()
                .flat_map(|m: &Message| m.tool_calls.iter())
                .find(|c| &c.id == id)
                .map(|c| c.name.clone())
        });
        let content = match &m.content {
            // An assistant turn that only called tools has no content.
            None | Some(Value::Null) if !calls.is_empty() => Ok(String::new()),
            c => message_text(i, c),
        };
        match content {
            Ok(text) => out.push(Message {
                tool_calls: calls,
                tool_name,
                tool_call_id: m.tool_call_id,
                ..Message::new(role, text)
            }),
            Err(ContentError::Invalid(e)) => return Err(ApiError::bad_request(e)),
            Err(ContentError::Image) => {
                // An unknown model is a 404 before the image is refused.
                infer::resolve(model).await?;
                return Err(ApiError::bad_request(format!(
                    "\"{model}\" does not support images: it is a text-only model"
                )));
            }
        }
    }
    Ok(out)
}

/// `prompt`: a string or an array of exactly one string.
fn completion_prompt(v: Option<Value>) -> Result<String, ApiError> {
    match v {
        None | Some(Value::Null) => Err(ApiError::bad_request("prompt is required")),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Array(mut a)) if a.len() == 1 && a[0].is_string() => match a.pop() {
            Some(Value::String(s)) => Ok(s),
            _ => Err(ApiError::bad_request("prompt is required")),
        },
        Some(Value::Array(a)) if a.len() > 1 && a.iter().all(Value::is_string) => Err(
            ApiError::bad_request("more than one prompt is not supported: send one per request"),
        ),
        Some(_) => Err(ApiError::bad_request(
            "invalid prompt: want a string (token arrays are not supported)",
        )),
    }
}

/// Which endpoint a reply is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// What every object of one reply shares.
struct Reply {
    kind: Kind,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// What was dropped to fit the context (an extension field, `truncated`, on the
    /// whole answer and on the finish chunk).
    truncation: Option<Truncation>,
    /// Reads thinking and tool calls out of the text.
    parser: Option<OutputParser>,
}

fn finish_reason(r: DoneReason) -> &'static str {
    match r {
        DoneReason::Length => "length",
        DoneReason::Stop | DoneReason::Cancelled => "stop",
    }
}

fn usage(d: &Done) -> Value {
    json!({
        "prompt_tokens": d.prompt_len,
        "completion_tokens": d.stats.eval_count,
        "total_tokens": d.prompt_len + d.stats.eval_count,
        "prompt_tokens_details": {"cached_tokens": d.reused},
    })
}

/// A mid-stream error as OpenAI's clients read it.
fn error_event(message: &str) -> Bytes {
    sse_event(&json!({"error": {
        "message": message, "type": "api_error", "param": null, "code": null
    }}))
}

impl Reply {
    fn new(kind: Kind, model: &str, include_usage: bool) -> Reply {
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        Reply {
            kind,
            id: next_id(prefix),
            created: unix_seconds(SystemTime::now()),
            model: model.to_string(),
            include_usage,
            truncation: None,
            parser: None,
        }
    }

    /// `finish_reason`: `tool_calls` when the model called a tool.
    fn finish(&self, r: DoneReason) -> &'static str {
        match &self.parser {
            Some(p) if p.calls() > 0 && r == DoneReason::Stop => "tool_calls",
            _ => finish_reason(r),
        }
    }

    /// The deltas for a piece of streamed text (with tools: text and calls).
    fn deltas(&mut self, text: &str, end: bool) -> Vec<Bytes> {
        let Some(parser) = &mut self.parser else {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![self.chunk(json!({"content": text}), None)]
            };
        };
        let mut index = parser.calls();
        let mut pieces = parser.push(text);
        if end {
            pieces.extend(parser.finish());
        }
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Text(t) | Piece::Thinking(t) if t.is_empty() => {}
                Piece::Text(t) => out.push(self.chunk(json!({"content": t}), None)),
                // llama-server's and DeepSeek's name, and Ollama's.
                Piece::Thinking(t) => {
                    out.push(self.chunk(json!({"reasoning_content": t, "reasoning": t}), None))
                }
                Piece::Call(c) => {
                    for d in tools::deltas(&c, index) {
                        out.push(self.chunk(d, None));
                    }
                    index += 1;
                }
            }
        }
        out
    }

    fn mark_truncation(&self, v: &mut Value) {
        if let Some(t) = self.truncation {
            v["truncated"] = json!({"messages": t.messages, "tokens": t.tokens});
        }
    }

    fn object(&self, object: &str, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        })
    }

    /// The whole answer (not streamed).
    fn whole(&mut self, text: String, d: &Done) -> Value {
        let Whole {
            thinking,
            text,
            calls,
        } = Whole::of(self.parser.as_mut(), text);
        let reason = self.finish(d.reason);
        let (object, choice) = match self.kind {
            Kind::Chat => {
                let mut message = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    if text.trim().is_empty() {
                        message["content"] = Value::Null;
                    }
                    message["tool_calls"] = tools::message_calls(&calls);
                }
                if !thinking.is_empty() {
                    message["reasoning_content"] = json!(thinking);
                    message["reasoning"] = json!(thinking);
                }
                (
                    "chat.completion",
                    json!({"index": 0, "message": message, "logprobs": null,
                           "finish_reason": reason}),
                )
            }
            Kind::Completion => (
                "text_completion",
                json!({"text": text, "index": 0, "logprobs": null, "finish_reason": reason}),
            ),
        };
        let mut v = self.object(object, json!([choice]));
        v["usage"] = usage(d);
        self.mark_truncation(&mut v);
        v
    }

    /// One streamed chunk: `delta` is the chat delta (for completions, its `content`
    /// is the text).
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        sse_event(&self.chunk_object(delta, finish))
    }

    fn chunk_object(&self, delta: Value, finish: Option<&str>) -> Value {
        let (object, choice) = match self.kind {
            Kind::Chat => (
                "chat.completion.chunk",
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}),
            ),
            Kind::Completion => (
                "text_completion",
                json!({"text": delta.get("content").cloned().unwrap_or(json!("")),
                       "index": 0, "logprobs": null, "finish_reason": finish}),
            ),
        };
        let mut v = self.object(object, json!([choice]));
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    /// The events that close a stream: the finish chunk, the usage chunk when asked
    /// for, and `[DONE]`.
    fn closing(&self, d: &Done) -> Vec<Bytes> {
        let mut finish = self.chunk_object(json!({}), Some(self.finish(d.reason)));
        self.mark_truncation(&mut finish);
        let mut out = vec![sse_event(&finish)];
        if self.include_usage {
            let object = match self.kind {
                Kind::Chat => "chat.completion.chunk",
                Kind::Completion => "text_completion",
            };
            let mut v = self.object(object, json!([]));
            v["usage"] = usage(d);
            out.push(sse_event(&v));
        }
        out.push(sse_done());
        out
    }
}

/// A stream's state: events ready to send, and the generation while it runs (the
/// lease lives as long as the stream; dropping the stream cancels the sequence).
struct Streaming {
    pending: VecDeque<Bytes>,
    live: Option<(Events, Lease)>,
    reply: Reply,
}

impl Streaming {
    /// Turns the next event of the generation into SSE events.
    fn on_event(&mut self, e: Option<Event>) {
        match e {
            Some(Event::Text(t)) => {
                let deltas = self.reply.deltas(&t, false);
                self.pending.extend(deltas);
            }
            Some(Event::Done(d)) => {
                self.live = None;
                let deltas = self.reply.deltas("", true);
                self.pending.extend(deltas);
                self.pending.extend(self.reply.closing(&d));
            }
            Some(Event::Error(m)) => {
                self.live = None;
                self.pending.push_back(error_event(&m));
            }
            None => {
                self.live = None;
                self.pending
                    .push_back(error_event("the generation ended without a result"));
            }
        }
    }
}

/// Streams (server-sent events) or collects a started generation.
async fn respond(started: Started, mut reply: Reply, stream: bool) -> Response {
    let Started {
        lease,
        mut events,
        truncation,
        output,
        ..
    } = started;
    reply.truncation = truncation;
    reply.parser = output.parser();
    if !stream {
        return match infer::collect(&mut events).await {
            Ok((text, d)) => Json(reply.whole(text, &d)).into_response(),
            Err(e) => e.openai(),
        };
    }
    let mut pending = VecDeque::new();
    if reply.kind == Kind::Chat {
        pending.push_back(reply.chunk(json!({"role": "assistant", "content": ""}), None));
    }
    let state = Streaming {
        pending,
        live: Some((events, lease)),
        reply,
    };
    let s = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.pending.pop_front() {
                return Some((b, st));
            }
            let (events, _) = st.live.as_mut()?;
            let e = events.recv().await;
            st.on_event(e);
        }
    });
    sse(s.boxed())
}

/// `POST /v1/chat/completions`
pub async fn chat_completions(State(state): State<AppState>, body: Body) -> Response {
    chat(state, body).await.unwrap_or_else(ApiError::openai)
}

async fn chat(state: AppState, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: ChatCompletionRequest = parse_body(&body)?;
    let c = &req.common;
    c.check()?;
    let format = output_format(req.response_format.as_ref(), true)?;
    let tool_choice = tools::choice(req.tool_choice.as_ref())?;
    let effort = req.reasoning_effort.as_deref().or_else(|| {
        req.reasoning
            .as_ref()
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
    });
    let think = Think::from_effort(effort).map_err(ApiError::bad_request)?;
    let keep_alive = ollama::keep_alive(&c.keep_alive)?;
    let max_tokens = req.max_completion_tokens.or(c.max_tokens);
    let options = c.ollama_options(max_tokens, None)?;
    let messages = conversation(&c.model, req.messages).await?;
    let stream = c.stream.unwrap_or(false);
    let reply = Reply::new(Kind::Chat, &c.model, stream && c.include_usage());
    let started = infer::start(
        &state,
        GenRequest {
            model: c.model.clone(),
            prompt: Prompt::Chat(messages),
            system: None,
            options,
            keep_alive,
            truncate: c.truncate.unwrap_or(true),
            format,
            tools: req.tools.unwrap_or_default(),
            tool_choice,
            think,
        },
    )
    .await?;
    Ok(respond(started, reply, stream).await)
}

/// `POST /v1/completions`
pub async fn completions(State(state): State<AppState>, body: Body) -> Response {
    completion(state, body)
        .await
        .unwrap_or_else(ApiError::openai)
}

async fn completion(state: AppState, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: CompletionRequest = parse_body(&body)?;
    let c = &req.common;
    c.check()?;
    if req.best_of.is_some_and(|n| n > 1) {
        return Err(ApiError::bad_request("best_of > 1 is not supported"));
    }
    match &req.suffix {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(_) => return Err(ApiError::bad_request("suffix is not supported")),
    }
    if req.echo == Some(true) {
        return Err(ApiError::bad_request("echo is not supported"));
    }
    let keep_alive = ollama::keep_alive(&c.keep_alive)?;
    let options = c.ollama_options(c.max_tokens, Some(COMPLETIONS_MAX_TOKENS))?;
    let prompt = completion_prompt(req.prompt)?;
    let stream = c.stream.unwrap_or(false);
    let reply = Reply::new(Kind::Completion, &c.model, stream && c.include_usage());
    let started = infer::start(
        &state,
        GenRequest {
            model: c.model.clone(),
            prompt: Prompt::Text {
                prompt,
                raw: true,
                template: None,
                context: Vec::new(),
            },
            system: None,
            options,
            keep_alive,
            truncate: c.truncate.unwrap_or(true),
            format: None,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            think: None,
        },
    )
    .await?;
    Ok(respond(started, reply, stream).await)
}

/// A store model as OpenAI lists it.
fn model_object(e: &Entry) -> Value {
    json!({
        "id": e.name.to_string(),
        "object": "model",
        "created": unix_seconds(e.modified),
        "owned_by": e.name.namespace(),
    })
}

async fn store_models() -> Result<Vec<Entry>, ApiError> {
    tokio::task::spawn_blocking(|| Store::open().list())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("{e:#}")))
}

/// `GET /v1/models`
pub async fn list_models() -> Response {
    match store_models().await {
        Ok(entries) => {
            let data: Vec<Value> = entries.iter().map(model_object).collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => e.openai(),
    }
}

/// `GET /v1/models/{model}` (the name may hold `:` and `/`).
pub async fn retrieve_model(Path(model): Path<String>) -> Response {
    retrieve(&model).await.unwrap_or_else(ApiError::openai)
}

async fn retrieve(model: &str) -> Result<Response, ApiError> {
    let not_found = || ApiError::model_not_found(model);
    let name = Name::parse(model).map_err(|_| not_found())?;
    let entries = store_models().await?;
    let entry = entries
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(not_found)?;
    Ok(Json(model_object(entry)).into_response())
}

#[cfg(test)]
mod tests;
