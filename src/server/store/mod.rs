//! The store over HTTP, as Ollama's API has it: `POST /api/pull`, `POST /api/push`
//! ([`transfer`]), `HEAD`/`POST /api/blobs/{digest}` ([`blobs`]), `POST /api/create`
//! ([`create`]), `POST /api/copy` and `DELETE /api/delete` (here). The work is the CLI's:
//! [`crate::registry::Client`], [`crate::store::create::create`] and [`Store`], run on
//! tokio's blocking threads.
//!
//! Pull, push and create answer with a stream of status objects (NDJSON, `stream`
//! defaults to true); an error once streaming has begun is a final `{"error": "…"}` line
//! (the HTTP status stays 200), and with `stream: false` the reply is the last object
//! alone, or the error with its status. A client that goes away does not stop the work:
//! it finishes (or fails) on its own, and the store, which writes every file to a
//! temporary name and renames it into place, is never left half-written.
//!
//! A model that is deleted (or replaced by a create, copy or pull) while it is loaded
//! keeps serving the requests already running on it: they read its weights through a
//! memory mapping, and Linux keeps an unlinked file alive while it is mapped. The
//! scheduler is asked to unload it ([`crate::scheduler::Scheduler::unload`]), which it
//! does once it is idle; new requests resolve the name in the store again and get a 404
//! (or the new model).
//!
//! Known gap, shared with Ollama: an uploaded blob is not referenced by any manifest
//! until the create that uses it, so a delete (which collects unreferenced blobs) in
//! between removes it; the create then fails with `blob … not found` and the client
//! must upload it again.

mod blobs;
mod create;
mod transfer;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub use blobs::{blob_head, blob_upload};
pub use create::create;
pub use transfer::{pull, push};

use super::error::{parse_body, ApiError};
use super::models::{blocking, model_field, parse_name, store_error};
use super::stream::ndjson;
use super::{read_body, AppState};
use crate::scheduler::Scheduler;
use crate::store::{Name, Store, StoreError};

/// Sends status objects from a blocking task to the HTTP response.
#[derive(Clone)]
pub(super) struct Emit(mpsc::UnboundedSender<Value>);

impl Emit {
    /// A send fails only when the response is gone (the client left); the work goes on.
    pub(super) fn send(&self, v: Value) {
        let _ = self.0.send(v);
    }

    pub(super) fn status(&self, line: &str) {
        self.send(json!({ "status": line }));
    }
}

/// Runs `work` on a blocking thread and answers with the status objects it emits: all
/// of them as NDJSON when `stream`, else the last one (or the error with its status).
/// `work` emits its own final `success`.
pub(super) async fn status_response(
    stream: bool,
    work: impl FnOnce(&Emit) -> Result<(), ApiError> + Send + 'static,
) -> Response {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let emit = Emit(tx);
    let task = tokio::task::spawn_blocking({
        let emit = emit.clone();
        move || work(&emit)
    });
    if stream {
        // The error line is sent by a task of its own so that the response ends when the
        // work does, panics included: the channel closes once both senders are dropped.
        tokio::spawn(async move {
            let err = match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.message),
                Err(e) => Some(format!("the store task failed: {e}")),
            };
            if let Some(m) = err {
                emit.send(json!({ "error": m }));
            }
        });
        let s =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|v| (v, rx)) },
            );
        return ndjson(s.boxed());
    }
    drop(emit);
    let result = match task.await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(format!("the store task failed: {e}"))),
    };
    match result {
        Ok(()) => {
            let mut last = json!({ "status": "success" });
            while let Ok(v) = rx.try_recv() {
                last = v;
            }
            Json(last).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Asks the scheduler to unload a model whose store entry changed or went away, from a
/// blocking thread (the store tasks run on those; `block_on` is allowed there).
pub(super) fn unload_blocking(scheduler: &Scheduler, name: &Name) {
    let handle = tokio::runtime::Handle::current();
    handle.block_on(scheduler.unload(&name.to_string()));
}

#[derive(Deserialize)]
struct CopyRequest {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
}

/// `POST /api/copy`: the source's manifest under another name; an empty 200.
pub async fn copy(State(state): State<AppState>, body: Body) -> Result<StatusCode, ApiError> {
    let body = read_body(body).await?;
    let req: CopyRequest = parse_body(&body)?;
    if req.source.trim().is_empty() || req.destination.trim().is_empty() {
        return Err(ApiError::bad_request("source and destination are required"));
    }
    let src = parse_name(&req.source)?;
    let dst = parse_name(&req.destination)?;
    let shown = req.source;
    let dst2 = dst.clone();
    let replaced = blocking(move || {
        let store = Store::open();
        let replaced = store.manifest_path(&dst2).is_file();
        store.copy(&src, &dst2).map_err(|e| match e {
            // Ollama's copy quotes the name with double quotes.
            StoreError::NotFound(_) => ApiError::not_found(format!("model \"{shown}\" not found")),
            e => ApiError::internal(e.to_string()),
        })?;
        Ok(replaced)
    })
    .await?;
    if replaced {
        state.scheduler.unload(&dst.to_string()).await;
    }
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
struct DeleteRequest {
    #[serde(default)]
    model: Option<String>,
    /// The older name of `model`.
    #[serde(default)]
    name: Option<String>,
}

/// `DELETE /api/delete`: the model's manifest, then the blobs nothing uses; an empty 200.
/// A loaded model is unloaded once idle (see the module header).
pub async fn delete(State(state): State<AppState>, body: Body) -> Result<StatusCode, ApiError> {
    let body = read_body(body).await?;
    let req: DeleteRequest = parse_body(&body)?;
    let shown = model_field(&req.model, &req.name)?;
    let name = parse_name(&shown)?;
    let n = name.clone();
    blocking(move || Store::open().remove(&n).map_err(|e| store_error(&shown, e))).await?;
    state.scheduler.unload(&name.to_string()).await;
    Ok(StatusCode::OK)
}
