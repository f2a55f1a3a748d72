//! `POST /api/pull` and `POST /api/push`: [`Client::pull`] and [`Client::push`] with a
//! [`Progress`] that turns their status lines and layer progress into Ollama's objects:
//! `{"status":"pulling manifest"}`, `{"status":"pulling 1a2b3c4d5e6f","digest":"sha256:…",
//! "total":N,"completed":M}` (at most every [`EVERY`] per layer, plus its last), …,
//! `{"status":"success"}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{status_response, unload_blocking, Emit};
use crate::registry::{Client, Options, Progress, RegistryError};
use crate::server::error::{parse_body, ApiError};
use crate::server::models::{blocking, store_error};
use crate::server::models::{model_field, parse_name};
use crate::server::{read_body, AppState};
use crate::store::{Name, Store, StoreError};

/// The shortest time between two progress objects of one layer.
const EVERY: Duration = Duration::from_millis(100);

/// The line that ends a successful transfer: held back by [`ChannelProgress`] and sent
/// by the handler once its own after-work (an unload) is done.
const SUCCESS: &str = "success";

#[derive(Deserialize)]
struct TransferRequest {
    #[serde(default)]
    model: Option<String>,
    /// The older name of `model`.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    insecure: Option<bool>,
    #[serde(default)]
    stream: Option<bool>,
}

/// One layer's progress as last reported.
struct Layer {
    label: String,
    total: u64,
    completed: u64,
    /// When an object was last sent, and with what `completed`.
    sent_at: Instant,
    sent: u64,
}

/// Sends a transfer's progress as Ollama's status objects.
struct ChannelProgress {
    emit: Emit,
    layers: Mutex<HashMap<String, Layer>>,
}

impl ChannelProgress {
    fn new(emit: Emit) -> ChannelProgress {
        ChannelProgress {
            emit,
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// Ollama's `ProgressResponse`: zero `total`/`completed` are left out (`omitempty`).
    fn send(&self, key: &str, l: &Layer) {
        let mut v = Map::new();
        v.insert("status".into(), l.label.clone().into());
        v.insert("digest".into(), key.into());
        if l.total > 0 {
            v.insert("total".into(), l.total.into());
        }
        if l.completed > 0 {
            v.insert("completed".into(), l.completed.into());
        }
        self.emit.send(Value::Object(v));
    }

    fn layers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Layer>> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: usable.
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Progress for ChannelProgress {
    fn status(&self, line: &str) {
        if line != SUCCESS {
            self.emit.status(line);
        }
    }

    fn start(&self, key: &str, label: &str, total: u64, completed: u64) {
        let l = Layer {
            label: label.to_string(),
            total,
            completed,
            sent_at: Instant::now(),
            sent: completed,
        };
        self.send(key, &l);
        self.layers().insert(key.to_string(), l);
    }

    fn update(&self, key: &str, completed: u64) {
        let mut layers = self.layers();
        let Some(l) = layers.get_mut(key) else { return };
        l.completed = completed;
        if l.sent_at.elapsed() >= EVERY && completed != l.sent {
            l.sent_at = Instant::now();
            l.sent = completed;
            self.send(key, l);
        }
    }

    fn finish(&self, key: &str) {
        let mut layers = self.layers();
        let Some(l) = layers.get_mut(key) else { return };
        // The last update may have been held back by the throttle.
        if l.completed != l.sent {
            l.sent = l.completed;
            self.send(key, l);
        }
    }
}

/// A registry error as Ollama's status: a model the registry does not have is a 404.
fn registry_error(shown: &str, e: RegistryError) -> ApiError {
    match e {
        RegistryError::ManifestNotFound => ApiError::not_found(e.to_string()),
        RegistryError::Store(e) => store_error(shown, e),
        RegistryError::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
        RegistryError::InsecureProtocol => ApiError::bad_request(e.to_string()),
        e => ApiError::internal(e.to_string()),
    }
}

/// The request's name (parsed), stream flag and registry options.
async fn transfer_request(body: Body) -> Result<(String, Name, bool, Options), ApiError> {
    let body = read_body(body).await?;
    let req: TransferRequest = parse_body(&body)?;
    let shown = model_field(&req.model, &req.name)?;
    let name = parse_name(&shown)?;
    let opts = Options {
        insecure: req.insecure.unwrap_or(false),
        ..Options::default()
    };
    Ok((shown, name, req.stream.unwrap_or(true), opts))
}

/// `POST /api/pull`: the model from its registry into the store.
pub async fn pull(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let (shown, name, stream, opts) = transfer_request(body).await?;
    let scheduler = state.scheduler.clone();
    Ok(status_response(stream, move |emit| {
        let store = Store::open();
        let before = store.manifest_bytes(&name).ok();
        let progress = Box::new(ChannelProgress::new(emit.clone()));
        Client::new(store.clone(), opts, progress)
            .pull(&name)
            .map_err(|e| registry_error(&shown, e))?;
        // A pull that changed a stored model: the loaded one is outdated.
        if before.is_some_and(|b| store.manifest_bytes(&name).ok() != Some(b)) {
            unload_blocking(&scheduler, &name);
        }
        emit.status(SUCCESS);
        Ok(())
    })
    .await)
}

/// `POST /api/push`: the model from the store to its registry.
pub async fn push(body: Body) -> Result<Response, ApiError> {
    let (shown, name, stream, opts) = transfer_request(body).await?;
    // A model not in the store is a 404 before anything is streamed.
    let (n, s) = (name.clone(), shown.clone());
    blocking(move || {
        Store::open()
            .manifest_bytes(&n)
            .map(drop)
            .map_err(|e| match e {
                StoreError::NotFound(_) => ApiError::model_not_found(&s),
                e => ApiError::internal(e.to_string()),
            })
    })
    .await?;
    Ok(status_response(stream, move |emit| {
        let progress = Box::new(ChannelProgress::new(emit.clone()));
        Client::new(Store::open(), opts, progress)
            .push(&name)
            .map_err(|e| registry_error(&shown, e))?;
        emit.status(SUCCESS);
        Ok(())
    })
    .await)
}
