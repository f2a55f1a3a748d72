//! The embedding endpoints: Ollama's `POST /api/embed` and legacy `POST /api/embeddings`,
//! and OpenAI's `POST /v1/embeddings`.
//!
//! All three go one way: the model leased within the queue's bound, every input tokenized
//! and fitted to the context off the async threads, the inputs handed to the stepping
//! thread (which computes them in as few encoder passes as its token budget allows), the
//! vectors cut to `dimensions` and normalised. `/api/embeddings` returns them unnormalised,
//! as Ollama's legacy endpoint does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::infer;
use super::{ollama, read_body, AppState};
use crate::generate::embed::{finish, fit, input_ids, EmbedError, EmbedInput};
use crate::scheduler::{KeepAlive, ModelInfo};

/// The most inputs one embedding request may carry (OpenAI's limit): with the body
/// limit, it bounds the vectors one request makes the server hold (2048 of them).
pub const MAX_INPUTS: usize = 2048;

/// One input as a client sends it.
enum Input {
    Text(String),
    /// Token ids (OpenAI's array-of-integers form).
    Ids(Vec<u32>),
}

/// What an embedding request asks for, whichever endpoint it came through.
struct EmbedRequest {
    model: String,
    inputs: Vec<Input>,
    truncate: bool,
    dimensions: Option<usize>,
    normalize: bool,
    keep_alive: KeepAlive,
    options: Map<String, Value>,
}

/// The vectors and what they cost.
struct Embedded {
    vectors: Vec<Vec<f32>>,
    prompt_tokens: usize,
    load_duration: Duration,
    total_duration: Duration,
}

fn embed_error(e: EmbedError, index: Option<usize>) -> ApiError {
    match index {
        Some(i) => ApiError::bad_request(format!("input {i}: {e}")),
        None => ApiError::bad_request(e.to_string()),
    }
}

/// What a generative model asked to embed answers: as Ollama since v0.30, a 501 (it runs
/// such models without llama-server's `--embeddings`, which then refuses).
fn not_embedding(model: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_IMPLEMENTED,
        format!("\"{model}\" does not support embeddings: it is a generative model"),
    )
}

async fn embed(state: &AppState, req: EmbedRequest) -> Result<Embedded, ApiError> {
    let arrived = Instant::now();
    if req.inputs.len() > MAX_INPUTS {
        return Err(ApiError::bad_request(format!(
            "too many inputs: {} (the limit is {MAX_INPUTS} per request)",
            req.inputs.len()
        )));
    }
    let ticket = state.scheduler.ticket()?;
    let source = infer::resolve(&req.model).await?;
    let (_, requested_ctx) = infer::options(&source, &req.options)?;
    let lease = state
        .scheduler
        .acquire(source, requested_ctx, req.keep_alive)
        .await?;
    let load_duration = arrived.elapsed();
    let info: Arc<ModelInfo> = Arc::clone(lease.info());
    if !info.embedding {
        return Err(not_embedding(&req.model));
    }
    let max = match requested_ctx {
        0 => info.embed_max_tokens,
        n => n.min(info.embed_max_tokens),
    };
    let (truncate, name, inputs) = (req.truncate, req.model.clone(), req.inputs);
    let tok_info = Arc::clone(&info);
    let fitted: Vec<EmbedInput> = tokio::task::spawn_blocking(move || {
        let tok = &tok_info.tokenizer;
        let many = inputs.len() > 1;
        inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                let r = match input {
                    Input::Text(t) => input_ids(tok, &t, max, truncate),
                    Input::Ids(ids) => {
                        if let Some(&id) = ids.iter().find(|&&t| t as usize >= tok_info.n_vocab) {
                            return Err(ApiError::bad_request(format!(
                                "input {i}: token id {id} is outside the vocabulary ({})",
                                tok_info.n_vocab
                            )));
                        }
                        fit(ids, max, truncate, |id| tok.is_control(id))
                    }
                };
                r.map_err(|e| embed_error(e, many.then_some(i)))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let cut: usize = fitted.iter().map(|f| f.truncated).sum();
    if cut > 0 {
        eprintln!(
            "hearth: {name}: embedding inputs truncated to {max} tokens: dropped {cut} token(s)"
        );
    }
    let prompt_tokens = fitted.iter().map(|f| f.ids.len()).sum();
    let ids = fitted.into_iter().map(|f| f.ids).collect();
    let mut vectors = lease.embed(ids, ticket).await.map_err(ApiError::internal)?;
    // (The legacy endpoint neither normalises nor takes `dimensions`.)
    if req.normalize {
        for v in &mut vectors {
            finish(v, req.dimensions).map_err(|e| embed_error(e, None))?;
        }
    }
    Ok(Embedded {
        vectors,
        prompt_tokens,
        load_duration,
        total_duration: arrived.elapsed(),
    })
}

fn dimensions(v: Option<i64>) -> Result<Option<usize>, ApiError> {
    match v {
        None => Ok(None),
        Some(d) if d >= 1 => Ok(Some(d as usize)),
        Some(d) => Err(ApiError::bad_request(format!(
            "invalid dimensions {d}: want a positive number"
        ))),
    }
}

#[derive(Deserialize)]
struct OllamaEmbedRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    dimensions: Option<i64>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

/// `input` as `/api/embed` takes it: a string or an array of strings.
fn ollama_inputs(v: Value) -> Result<Vec<Input>, ApiError> {
    let bad = || ApiError::bad_request("invalid input type: want a string or an array of strings");
    match v {
        Value::String(s) => Ok(vec![Input::Text(s)]),
        Value::Array(items) if items.is_empty() => Err(ApiError::bad_request(
            "input is an empty list: give at least one text (or leave input out to only load the model)",
        )),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(Input::Text(s)),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// `POST /api/embed`.
pub async fn api_embed(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: OllamaEmbedRequest = parse_body(&body)?;
    if req.model.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let keep_alive = ollama::keep_alive(&req.keep_alive)?;
    let dimensions = dimensions(req.dimensions)?;
    let Some(input) = req.input.filter(|v| !v.is_null()) else {
        // No input: load the model (or unload it with keep_alive 0) and return.
        let t0 = Instant::now();
        ollama::load_or_unload(&state, &req.model, keep_alive).await?;
        let d = nanos(t0.elapsed());
        return Ok(Json(json!({
            "model": req.model,
            "embeddings": [],
            "total_duration": d,
            "load_duration": d,
            "prompt_eval_count": 0,
        }))
        .into_response());
    };
    let inputs = ollama_inputs(input)?;
    let e = embed(
        &state,
        EmbedRequest {
            model: req.model.clone(),
            inputs,
            truncate: req.truncate.unwrap_or(true),
            dimensions,
            normalize: true,
            keep_alive,
            options: req.options.unwrap_or_default(),
        },
    )
    .await?;
    Ok(Json(EmbedResponse {
        model: req.model,
        embeddings: e.vectors,
        total_duration: nanos(e.total_duration),
        load_duration: nanos(e.load_duration),
        prompt_eval_count: e.prompt_tokens,
    })
    .into_response())
}

/// `/api/embed`'s answer. Typed, so the vectors are written as f32 (shortest round-trip
/// digits, as Ollama's float32), not widened to f64 digits.
#[derive(Serialize)]
struct EmbedResponse {
    model: String,
    embeddings: Vec<Vec<f32>>,
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: usize,
}

/// One item of `/v1/embeddings`' `data`.
#[derive(Serialize)]
struct EmbeddingObject {
    object: &'static str,
    embedding: EmbeddingData,
    index: usize,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingData {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Deserialize)]
struct LegacyEmbedRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

/// `POST /api/embeddings` (Ollama's legacy endpoint: one `prompt`, one `embedding`, not
/// normalised; an empty prompt only loads the model).
pub async fn api_embeddings(
    State(state): State<AppState>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: LegacyEmbedRequest = parse_body(&body)?;
    if req.model.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let keep_alive = ollama::keep_alive(&req.keep_alive)?;
    if req.prompt.is_empty() {
        ollama::load_or_unload(&state, &req.model, keep_alive).await?;
        return Ok(Json(json!({"embedding": []})).into_response());
    }
    let mut e = embed(
        &state,
        EmbedRequest {
            model: req.model,
            inputs: vec![Input::Text(req.prompt)],
            truncate: true,
            dimensions: None,
            normalize: false,
            keep_alive,
            options: req.options.unwrap_or_default(),
        },
    )
    .await?;
    #[derive(Serialize)]
    struct Legacy {
        embedding: Vec<f32>,
    }
    let embedding = e.vectors.pop().unwrap_or_default();
    Ok(Json(Legacy { embedding }).into_response())
}

#[derive(Deserialize)]
struct OpenAiEmbedRequest {
    #[serde(default)]
    model: String,
    input: Option<Value>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<i64>,
    /// Extensions (Ollama ignores them on `/v1`; hearth honours them).
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

/// `input` as OpenAI takes it: a string, an array of strings, an array of token ids, or
/// an array of arrays of token ids.
fn openai_inputs(v: Value) -> Result<Vec<Input>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid input: want a string, an array of strings, or an array of token arrays",
        )
    };
    let ids = |items: &[Value]| -> Option<Vec<u32>> {
        items
            .iter()
            .map(|t| t.as_u64().and_then(|n| u32::try_from(n).ok()))
            .collect()
    };
    let empty = || ApiError::bad_request("input is empty");
    match v {
        Value::String(s) if s.is_empty() => Err(empty()),
        Value::String(s) => Ok(vec![Input::Text(s)]),
        Value::Array(items) if items.is_empty() => Err(empty()),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Ok(vec![Input::Ids(ids(&items).ok_or_else(bad)?)])
        }
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(Input::Text(s)),
                Value::Array(t) => Ok(Input::Ids(ids(&t).ok_or_else(bad)?)),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// `POST /v1/embeddings`.
pub async fn v1_embeddings(State(state): State<AppState>, body: Body) -> Response {
    v1(state, body).await.unwrap_or_else(ApiError::openai)
}

async fn v1(state: AppState, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: OpenAiEmbedRequest = parse_body(&body)?;
    if req.model.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid encoding_format \"{other}\": want \"float\" or \"base64\""
            )))
        }
    };
    let inputs = openai_inputs(req.input.unwrap_or(Value::Null))?;
    let e = embed(
        &state,
        EmbedRequest {
            model: req.model.clone(),
            inputs,
            truncate: req.truncate.unwrap_or(true),
            dimensions: dimensions(req.dimensions)?,
            normalize: true,
            keep_alive: ollama::keep_alive(&req.keep_alive)?,
            options: req.options.unwrap_or_default(),
        },
    )
    .await?;
    let data: Vec<EmbeddingObject> = e
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingObject {
            object: "embedding",
            embedding: if base64 {
                EmbeddingData::Base64(base64_f32(&v))
            } else {
                EmbeddingData::Float(v)
            },
            index,
        })
        .collect();
    #[derive(Serialize)]
    struct List {
        object: &'static str,
        data: Vec<EmbeddingObject>,
        model: String,
        usage: Value,
    }
    Ok(Json(List {
        object: "list",
        data,
        model: req.model,
        usage: json!({"prompt_tokens": e.prompt_tokens, "total_tokens": e.prompt_tokens}),
    })
    .into_response())
}

/// The little-endian bytes of `v` in standard base64 (what OpenAI's `encoding_format:
/// "base64"` returns and its client decodes).
fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        // 1.0f32 = 00 00 80 3f; 2.0 = 00 00 00 40.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(base64_f32(&[]), "");
    }

    #[test]
    fn openai_inputs_take_every_form() {
        let n = |v: Value| openai_inputs(v).map(|i| i.len());
        assert_eq!(n(json!("a")).unwrap(), 1);
        assert_eq!(n(json!(["a", "b"])).unwrap(), 2);
        assert_eq!(n(json!([1, 2, 3])).unwrap(), 1);
        assert_eq!(n(json!([[1, 2], [3]])).unwrap(), 2);
        assert!(n(json!([])).is_err());
        assert!(n(json!("")).is_err());
        assert!(n(json!([1, -2])).is_err());
        assert!(n(json!({"a": 1})).is_err());
        assert!(n(Value::Null).is_err());
    }
}
