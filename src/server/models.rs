//! Ollama's model-information endpoints: `GET`/`HEAD /api/tags` (the store),
//! `POST /api/show` (one model) and `GET /api/ps` (the loaded models).
//!
//! Where Ollama's code and documentation disagree, hearth follows the documentation:
//! - `/api/show` `model_info`: arrays longer than 5 items come back as `[]` unless
//!   `verbose` is set (Ollama's code sends `null` for every non-empty array; its
//!   documentation, and clients written against it, expect `[]`).
//! - `/api/show` `tensors`: only with `verbose`.
//!
//! Empty strings and lists in `/api/show` (`license`, `system`, `messages`…) are left
//! out, as Ollama's `omitempty` does. Store reads run on tokio's blocking threads.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{parse_body, ApiError};
use super::{read_body, AppState};
use crate::civil::rfc3339;
use crate::gguf::GgufFile;
use crate::store::create::{CreateError, ModelLayers};
use crate::store::info::{capabilities, parameter_lines, Details};
use crate::store::{Name, Store, StoreError};

/// Arrays longer than this are returned empty by a `show` that is not verbose.
const SHOWN_ARRAY: usize = 5;

/// Runs store work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the store task failed: {e}")))?
}

/// A store error for the model the client named as `shown`.
pub(super) fn store_error(shown: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::model_not_found(shown),
        e => ApiError::internal(e.to_string()),
    }
}

/// `GET /api/tags`: every model in the store, most recently modified first.
pub async fn tags() -> Result<Json<Value>, ApiError> {
    let models = blocking(|| {
        let store = Store::open();
        let entries = store
            .list()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let name = e.name.to_string();
                json!({
                    "name": name,
                    "model": name,
                    "modified_at": rfc3339(e.modified),
                    "size": e.size,
                    "digest": e.digest.hex(),
                    "details": store.details(&e.manifest),
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "models": models })))
}

#[derive(Deserialize)]
struct ShowRequest {
    #[serde(default)]
    model: Option<String>,
    /// The older name of `model`.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    verbose: Option<bool>,
    /// Replaces the model's system message in the answer.
    #[serde(default)]
    system: Option<String>,
}

/// The first non-blank of a request's `model` and its older name `name`, or Ollama's
/// 400.
pub(super) fn model_field(
    model: &Option<String>,
    name: &Option<String>,
) -> Result<String, ApiError> {
    [model, name]
        .into_iter()
        .flatten()
        .find(|m| !m.trim().is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("model is required"))
}

/// A model name from a request, or a 400 naming what is wrong with it.
pub(super) fn parse_name(s: &str) -> Result<Name, ApiError> {
    Name::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `POST /api/show`: a model's Modelfile, parameters, template, details, metadata and
/// capabilities.
pub async fn show(body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_body(body).await?;
    let req: ShowRequest = parse_body(&body)?;
    let model = model_field(&req.model, &req.name)?;
    let name = parse_name(&model)?;
    let verbose = req.verbose.unwrap_or(false);
    let v = blocking(move || show_model(&model, &name, verbose, req.system)).await?;
    Ok(Json(v))
}

fn show_model(
    shown: &str,
    name: &Name,
    verbose: bool,
    system: Option<String>,
) -> Result<Value, ApiError> {
    let store = Store::open();
    let m = store.resolve(name).map_err(|e| store_error(shown, e))?;
    let layers = ModelLayers::read(&store, &m).map_err(|e| match e {
        CreateError::Store(e) => store_error(shown, e),
        e => ApiError::internal(e.to_string()),
    })?;
    let path = store.model_path(name).map_err(|e| store_error(shown, e))?;
    let modified = store.modified(name).map_err(|e| store_error(shown, e))?;
    let file = GgufFile::open(&path)
        .map_err(|e| ApiError::internal(format!("cannot read {}: {e}", path.display())))?;
    let template = layers.template_text(&file);
    let max_array = (!verbose).then_some(SHOWN_ARRAY);
    let model_info = file.metadata_json(&["general.name", "tokenizer.chat_template"], max_array);

    let mut out = Map::new();
    let mut text = |key: &str, s: String| {
        if !s.is_empty() {
            out.insert(key.into(), Value::String(s));
        }
    };
    text("license", layers.license.join("\n"));
    text(
        "modelfile",
        layers
            .modelfile(&path.display().to_string())
            .render_named(Some(&name.to_string())),
    );
    text(
        "parameters",
        parameter_lines(&layers.params, "").trim_end().to_string(),
    );
    text("template", template.clone().unwrap_or_default());
    text(
        "system",
        system.or(layers.system.clone()).unwrap_or_default(),
    );
    out.insert("details".into(), json!(store.details(&m)));
    if !layers.messages.is_empty() {
        let msgs: Vec<Value> = layers
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        out.insert("messages".into(), Value::Array(msgs));
    }
    out.insert("model_info".into(), Value::Object(model_info));
    if verbose {
        let tensors: Vec<Value> = file
            .tensors()
            .iter()
            .map(|t| json!({"name": t.name, "type": t.ty.name(), "shape": t.dims}))
            .collect();
        out.insert("tensors".into(), Value::Array(tensors));
    }
    out.insert(
        "capabilities".into(),
        json!(capabilities(template.as_deref(), is_embedding(&file))),
    );
    out.insert("modified_at".into(), json!(rfc3339(modified)));
    Ok(Value::Object(out))
}

/// Whether the file is an embedding model (it names a pooling type, as Ollama decides).
fn is_embedding(file: &GgufFile) -> bool {
    let Ok(Some(arch)) = file.architecture() else {
        return false;
    };
    file.get_u32(&format!("{arch}.pooling_type"))
        .ok()
        .flatten()
        .is_some()
}

/// What `expires_at` says of a model kept loaded forever: as far ahead as Ollama's
/// (the largest Go duration from now, in the year 2318 or so).
fn forever() -> SystemTime {
    let now = SystemTime::now();
    now.checked_add(Duration::from_nanos(i64::MAX as u64))
        .unwrap_or(now)
}

/// `GET /api/ps`: the loaded models, most recently loaded first (as Ollama lists them).
pub async fn ps(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let resident = state.scheduler.resident();
    let names: Vec<String> = resident.iter().map(|r| r.name.clone()).collect();
    let details = blocking(move || {
        let store = Store::open();
        Ok(names
            .iter()
            .map(|name| {
                Name::parse(name)
                    .ok()
                    .and_then(|n| store.resolve(&n).ok())
                    .map(|m| store.details(&m))
                    .unwrap_or_default()
            })
            .collect::<Vec<Details>>())
    })
    .await?;
    let keep_alive = state.scheduler.config().keep_alive;
    let models: Vec<Value> = resident
        .into_iter()
        .zip(details)
        .rev()
        .map(|(r, mut details)| {
            let expires_at = match r.expires_at {
                _ if r.forever => forever(),
                Some(t) => t,
                // In use: it expires a keep-alive after the last request ends.
                None => match keep_alive {
                    Some(d) => SystemTime::now() + d,
                    None => forever(),
                },
            };
            if details.family.is_empty() {
                details.family = r.architecture.clone();
                details.families = Some(vec![r.architecture.clone()]);
            }
            json!({
                "name": r.name,
                "model": r.name,
                "size": r.size,
                "digest": r.digest.unwrap_or_default(),
                "details": details,
                "expires_at": rfc3339(expires_at),
                "size_vram": 0,
                "context_length": r.context_length,
            })
        })
        .collect();
    Ok(Json(json!({ "models": models })))
}
