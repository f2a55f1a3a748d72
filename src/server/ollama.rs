//! Ollama's generating endpoints: `POST /api/generate` and `POST /api/chat`, with
//! Ollama's field names, defaults, NDJSON streaming and final statistics.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::infer::{self, GenRequest, Prompt, Started};
use super::stream::ndjson;
use super::{read_body, AppState};
use crate::civil::rfc3339;
use crate::constrain::Format;
use crate::generate::logprobs::TokenLogprob;
use crate::generate::output::{OutputParser, Whole};
use crate::generate::thinking::Think;
use crate::generate::tools::{Piece, ToolChoice};
use crate::scheduler::{Done, Event, KeepAlive};
use crate::template::{Message, ToolCall};

/// `keep_alive` as Ollama takes it: seconds (a number) or a Go duration string;
/// negative means forever.
pub fn keep_alive(v: &Option<Value>) -> Result<KeepAlive, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid keep_alive: want a number of seconds or a duration like \"5m\"",
        )
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().ok_or_else(bad)?;
            crate::config::parse_duration(&secs.to_string())
                .map(Some)
                .ok_or_else(bad)
        }
        Some(Value::String(s)) => crate::config::parse_duration(s).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// `format`: `"json"` or a JSON schema, enforced by constrained decoding.
fn output_format(v: &Option<Value>) -> Result<Option<Format>, ApiError> {
    Format::from_ollama(v.as_ref()).map_err(infer::format_error)
}

/// `logprobs` and `top_logprobs` (0 to 20): `Some(top)` when log probabilities are
/// wanted (`top_logprobs` alone asks for them too, as Ollama has it).
fn logprobs_of(logprobs: Option<bool>, top: Option<i64>) -> Result<Option<usize>, ApiError> {
    let top = infer::top_logprobs(top)?;
    Ok((logprobs == Some(true) || top > 0).then_some(top))
}

/// `think`: a bool or a level (whether the model can think is checked when it loads).
fn parse_think(v: &Option<Value>) -> Result<Option<Think>, ApiError> {
    Think::from_json(v.as_ref()).map_err(ApiError::bad_request)
}

fn images_refused(model: &str) -> ApiError {
    ApiError::bad_request(format!(
        "\"{model}\" does not support images: it is a text-only model"
    ))
}

#[derive(Deserialize)]
struct GenerateRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    context: Option<Vec<u32>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    raw: bool,
    #[serde(default)]
    format: Option<Value>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    images: Option<Vec<String>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default)]
    think: Option<Value>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    shift: Option<bool>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<i64>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    images: Option<Vec<String>>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    tool_name: Option<String>,
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    format: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    think: Option<Value>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<i64>,
}

/// Loads `model`, or with `keep_alive: 0` unloads it (without loading it first when it
/// is not loaded); true when it unloaded.
pub async fn load_or_unload(
    state: &AppState,
    model: &str,
    keep: KeepAlive,
) -> Result<bool, ApiError> {
    let unload = keep == Some(Some(Duration::ZERO));
    let source = infer::resolve(model).await?;
    if unload {
        // Not loaded: nothing to do (Ollama would load it first, only to unload it).
        if state
            .scheduler
            .resident()
            .iter()
            .any(|r| r.name == source.name)
        {
            state.scheduler.unload(&source.name).await;
        }
    } else {
        let (lease, _ticket, _) = infer::lease(state, model, keep).await?;
        drop(lease);
    }
    Ok(unload)
}

/// A load-only request (empty prompt or messages): loads the model and returns, or with
/// `keep_alive: 0` unloads it (without loading it first when it is not loaded).
async fn preload(
    state: &AppState,
    model: &str,
    keep: KeepAlive,
    chat: bool,
) -> Result<Response, ApiError> {
    let unload = load_or_unload(state, model, keep).await?;
    let reason = if unload { "unload" } else { "load" };
    let mut v = json!({
        "model": model,
        "created_at": rfc3339(SystemTime::now()),
        "done": true,
        "done_reason": reason,
    });
    if chat {
        v["message"] = json!({"role": "assistant", "content": ""});
    } else {
        v["response"] = json!("");
    }
    Ok(Json(v).into_response())
}

/// The statistics of Ollama's final object.
fn final_fields(v: &mut Value, d: &Done, s: &StreamCtx) {
    let ns = |d: Duration| d.as_nanos() as u64;
    v["done"] = json!(true);
    v["done_reason"] = json!(d.reason.as_str());
    v["total_duration"] = json!(ns(s.arrived.elapsed()));
    v["load_duration"] = json!(ns(s.load_duration));
    v["prompt_eval_count"] = json!(d.stats.prompt_eval_count);
    v["prompt_eval_duration"] = json!(ns(d.stats.prompt_eval_duration));
    v["eval_count"] = json!(d.stats.eval_count);
    v["eval_duration"] = json!(ns(d.stats.eval_duration));
    if let Some(t) = s.truncation {
        v["truncated"] = json!({"messages": t.messages, "tokens": t.tokens});
    }
}

struct StreamCtx {
    model: String,
    chat: bool,
    arrived: std::time::Instant,
    load_duration: Duration,
    truncation: Option<infer::Truncation>,
    prompt_ids: Vec<u32>,
    /// Reads thinking and tool calls out of the text.
    parser: Option<OutputParser>,
    /// Whether the request asked for log probabilities, and those not yet sent.
    logprobs: bool,
    pending_logprobs: Vec<TokenLogprob>,
}

/// Ollama's `message.tool_calls`.
fn tool_calls_json(calls: &[ToolCall], first_index: usize) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"function": {"index": first_index + i, "name": c.name, "arguments": c.arguments}})
            })
            .collect(),
    )
}

impl StreamCtx {
    fn new(model: String, chat: bool, started: &Started) -> StreamCtx {
        StreamCtx {
            model,
            chat,
            arrived: started.arrived,
            load_duration: started.load_duration,
            truncation: started.truncation,
            // Only generate's final object carries the context.
            prompt_ids: if chat {
                Vec::new()
            } else {
                started.prompt_ids.clone()
            },
            parser: started.output.parser(),
            logprobs: false,
            pending_logprobs: Vec::new(),
        }
    }

    /// Streamed log probabilities go with the first object that carries text after
    /// them (or with the last object).
    fn attach_logprobs(&mut self, objects: &mut [Value]) {
        if !self.logprobs || self.pending_logprobs.is_empty() {
            return;
        }
        if let Some(v) = objects.first_mut() {
            v["logprobs"] = infer::logprobs_json(&self.pending_logprobs);
            self.pending_logprobs.clear();
        }
    }

    /// The objects for a piece of streamed text: text as it is, or, with a parser, the
    /// thinking, text and calls it is sure of.
    fn pieces(&mut self, text: &str, end: bool) -> Vec<Value> {
        let Some(parser) = &mut self.parser else {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![self.chunk(text)]
            };
        };
        let before = parser.calls();
        let mut pieces = parser.push(text);
        if end {
            pieces.extend(parser.finish());
        }
        let mut out = Vec::new();
        let mut index = before;
        for p in pieces {
            match p {
                Piece::Text(t) | Piece::Thinking(t) if t.is_empty() => {}
                Piece::Text(t) => out.push(self.chunk(&t)),
                Piece::Thinking(t) => {
                    let mut v = self.chunk("");
                    self.set_thinking(&mut v, &t);
                    out.push(v);
                }
                Piece::Call(c) => {
                    let mut v = self.chunk("");
                    v["message"]["tool_calls"] = tool_calls_json(&[c], index);
                    index += 1;
                    out.push(v);
                }
            }
        }
        out
    }

    /// The whole answer at once: its thinking, text and calls.
    fn whole(&mut self, d: &Done, text: String) -> Value {
        let w = Whole::of(self.parser.as_mut(), text);
        let mut v = self.last(d, &w.text);
        if !w.thinking.is_empty() {
            self.set_thinking(&mut v, &w.thinking);
        }
        if !w.calls.is_empty() {
            v["message"]["tool_calls"] = tool_calls_json(&w.calls, 0);
        }
        v
    }

    /// `message.thinking` (chat) or `thinking` (generate).
    fn set_thinking(&self, v: &mut Value, thinking: &str) {
        if self.chat {
            v["message"]["thinking"] = json!(thinking);
        } else {
            v["thinking"] = json!(thinking);
        }
    }

    fn chunk(&self, text: &str) -> Value {
        let mut v = json!({"model": self.model, "created_at": rfc3339(SystemTime::now())});
        if self.chat {
            v["message"] = json!({"role": "assistant", "content": text});
        } else {
            v["response"] = json!(text);
        }
        v["done"] = json!(false);
        v
    }

    fn last(&self, d: &Done, text: &str) -> Value {
        let mut v = self.chunk(text);
        final_fields(&mut v, d, self);
        if !self.chat {
            let mut ctx = self.prompt_ids.clone();
            ctx.extend_from_slice(&d.tokens);
            v["context"] = json!(ctx);
        }
        v
    }
}

/// Streams or collects a started generation as Ollama does.
async fn respond(started: Started, ctx: StreamCtx, stream: bool) -> Response {
    let Started {
        lease, mut events, ..
    } = started;
    let mut ctx = ctx;
    if !stream {
        return match infer::collect_all(&mut events).await {
            Ok((text, d, logprobs)) => {
                let mut v = ctx.whole(&d, text);
                if ctx.logprobs {
                    v["logprobs"] = infer::logprobs_json(&logprobs);
                }
                Json(v).into_response()
            }
            Err(e) => e.into_response(),
        };
    }
    // The lease lives as long as the stream; dropping the stream (a client gone)
    // drops the receiver, which cancels the sequence at the next step.
    let s = futures_util::stream::unfold(Some((events, ctx, lease)), |state| async move {
        let (mut events, mut ctx, lease) = state?;
        match events.recv().await {
            Some(Event::Logprob(l)) => {
                ctx.pending_logprobs.push(l);
                Some((Vec::new(), Some((events, ctx, lease))))
            }
            Some(Event::Text(t)) => {
                let mut v = ctx.pieces(&t, false);
                ctx.attach_logprobs(&mut v);
                Some((v, Some((events, ctx, lease))))
            }
            Some(Event::Done(d)) => {
                let mut v = ctx.pieces("", true);
                v.push(ctx.last(&d, ""));
                ctx.attach_logprobs(&mut v);
                Some((v, None))
            }
            Some(Event::Error(m)) => Some((vec![json!({"error": m})], None)),
            None => None,
        }
    })
    .flat_map(futures_util::stream::iter);
    ndjson(s.boxed())
}

pub async fn generate(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: GenerateRequest = parse_body(&body)?;
    let _ = &req.shift;
    let logprobs = logprobs_of(req.logprobs, req.top_logprobs)?;
    if req.model.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let keep = keep_alive(&req.keep_alive)?;
    let format = output_format(&req.format)?;
    let think = parse_think(&req.think)?;
    if req.images.as_ref().is_some_and(|i| !i.is_empty()) {
        infer::resolve(&req.model).await?;
        return Err(images_refused(&req.model));
    }
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        infer::resolve(&req.model).await?;
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support insert",
            req.model
        )));
    }
    if req.raw && (req.template.is_some() || req.system.is_some() || req.context.is_some()) {
        return Err(ApiError::bad_request(
            "raw mode does not support template, system, or context",
        ));
    }
    if req.prompt.is_empty() && req.context.as_ref().is_none_or(Vec::is_empty) {
        return preload(&state, &req.model, keep, false).await;
    }
    let started = infer::start(
        &state,
        GenRequest {
            model: req.model.clone(),
            prompt: Prompt::Text {
                prompt: req.prompt,
                raw: req.raw,
                template: req.template,
                context: req.context.unwrap_or_default(),
            },
            system: req.system,
            options: req.options.unwrap_or_default(),
            keep_alive: keep,
            truncate: req.truncate.unwrap_or(true),
            format,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            think,
            logprobs,
        },
    )
    .await?;
    let mut ctx = StreamCtx::new(req.model, false, &started);
    ctx.logprobs = logprobs.is_some();
    Ok(respond(started, ctx, req.stream.unwrap_or(true)).await)
}

pub async fn chat(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: ChatRequest = parse_body(&body)?;
    if req.model.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let keep = keep_alive(&req.keep_alive)?;
    let format = output_format(&req.format)?;
    let think = parse_think(&req.think)?;
    let logprobs = logprobs_of(req.logprobs, req.top_logprobs)?;
    if req.messages.is_empty() {
        return preload(&state, &req.model, keep, true).await;
    }
    if req
        .messages
        .iter()
        .any(|m| m.images.as_ref().is_some_and(|i| !i.is_empty()))
    {
        infer::resolve(&req.model).await?;
        return Err(images_refused(&req.model));
    }
    let messages = req
        .messages
        .into_iter()
        .map(|m| Message {
            tool_calls: m.tool_calls.unwrap_or_default(),
            tool_name: m.tool_name,
            thinking: m.thinking.unwrap_or_default(),
            ..Message::new(m.role, m.content.unwrap_or_default())
        })
        .collect();
    let started = infer::start(
        &state,
        GenRequest {
            model: req.model.clone(),
            prompt: Prompt::Chat(messages),
            system: None,
            options: req.options.unwrap_or_default(),
            keep_alive: keep,
            truncate: req.truncate.unwrap_or(true),
            format,
            tools: req.tools.unwrap_or_default(),
            tool_choice: ToolChoice::Auto,
            think,
            logprobs,
        },
    )
    .await?;
    let mut ctx = StreamCtx::new(req.model, true, &started);
    ctx.logprobs = logprobs.is_some();
    Ok(respond(started, ctx, req.stream.unwrap_or(true)).await)
}
