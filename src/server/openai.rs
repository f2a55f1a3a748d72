//! OpenAI's API over the shared generation path: `POST /v1/chat/completions`,
//! `POST /v1/completions`, `GET /v1/models` and `GET /v1/models/{model}`.
//!
//! Field mapping follows Ollama's compatibility layer: `max_tokens` (and
//! `max_completion_tokens`) become `num_predict`, `temperature` and `top_p` are 1.0
//! when unset (OpenAI's defaults, over the model's own parameters), `stop`, `seed` and
//! the penalties pass through. As extensions, `num_ctx`, `keep_alive` and an `options`
//! object of Ollama options are honoured; the precedence is OpenAI's defaults, then
//! `options`, then the body's own fields. `response_format` constrains the output
//! (constrained decoding); `tools` reach the template and `tool_choice` is enforced
//! (`openai/tools.rs`); `reasoning_effort` reaches a thinking model's template and its
//! thinking comes back as `reasoning_content`; `logprobs`/`top_logprobs` on chat
//! completions. `user`, `logit_bias` and `parallel_tool_calls` are accepted and
//! ignored. What hearth cannot do (several choices, images, `suffix`, `echo`, log
//! probabilities on `/v1/completions`) is a 400 that says so, never a silently
//! different answer.
//!
//! Every error has OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::infer::{self, GenRequest, Prompt};
use super::{ollama, read_body, AppState};
use crate::civil::unix_seconds;
use crate::constrain::Format;
use crate::generate::thinking::Think;
use crate::generate::tools::ToolChoice;
use crate::store::{Entry, Name, Store};
use crate::template::Message;

mod reply;
mod tools;

use reply::{respond, Kind, Reply};

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
        Ok(())
    }

    /// `logprobs` (a bool) and `top_logprobs` (0 to 20, only with `logprobs`), for
    /// chat completions: `Some(top)` when log probabilities are wanted. `/v1/completions`
    /// (`logprobs` an integer there) has none: a 400.
    fn logprobs(&self, chat: bool) -> Result<Option<usize>, ApiError> {
        let wants = match &self.logprobs {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) if !chat => n.as_f64() != Some(0.0),
            Some(Value::Bool(true)) => true,
            Some(_) if chat => {
                return Err(ApiError::bad_request("logprobs: want a boolean"));
            }
            Some(_) => true,
        };
        if !chat && (wants || self.top_logprobs.is_some_and(|n| n > 0)) {
            return Err(ApiError::bad_request(
                "logprobs are not supported on /v1/completions (use /v1/chat/completions)",
            ));
        }
        let top = infer::top_logprobs(self.top_logprobs)?;
        if top > 0 && !wants {
            return Err(ApiError::bad_request(
                "top_logprobs needs logprobs set to true",
            ));
        }
        Ok(wants.then_some(top))
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
    let logprobs = c.logprobs(true)?;
    let keep_alive = ollama::keep_alive(&c.keep_alive)?;
    let max_tokens = req.max_completion_tokens.or(c.max_tokens);
    let options = c.ollama_options(max_tokens, None)?;
    let messages = conversation(&c.model, req.messages).await?;
    let stream = c.stream.unwrap_or(false);
    let mut reply = Reply::new(Kind::Chat, &c.model, stream && c.include_usage());
    reply.logprobs = logprobs.is_some();
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
            logprobs,
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
    c.logprobs(false)?;
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
            logprobs: None,
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
