//! `hearth serve`: Ollama's API (`/api/*`), OpenAI's (`/v1/*`, [`responses`] included) and
//! Anthropic's Messages API ([`anthropic`], `/v1/messages*`) over the scheduler, and
//! the store over HTTP ([`store`]: pull, push, create, blobs, copy, delete).
//!
//! [`serve`] takes a bound listener and a shutdown future (tests bind port 0). HTTP work,
//! JSON and tokenisation run on tokio's threads; only the scheduler's stepping thread
//! runs the engine. Each request is logged in one line (method, path, status, duration)
//! and counted in `/metrics`. Before routing, [`guard`] checks the Host header, the
//! CORS origin and the API key.

pub mod anthropic;
mod embed;
pub mod error;
mod event_stream;
pub mod guard;
pub mod infer;
pub mod models;
pub mod ollama;
pub mod openai;
pub mod responses;
mod sections;
pub mod store;
pub mod stream;
mod ui;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use error::ApiError;

/// The largest request body accepted.
pub const MAX_BODY: usize = 32 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub scheduler: Scheduler,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(config: crate::scheduler::Config) -> AppState {
        let metrics = Arc::new(Metrics::default());
        AppState {
            scheduler: Scheduler::start(config, Arc::clone(&metrics)),
            metrics,
        }
    }
}

/// Reads a request body up to [`MAX_BODY`] bytes.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    use axum::body::HttpBody;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body too large (the limit is {} MiB)",
                MAX_BODY >> 20
            ),
        )
    };
    // A declared length over the limit is refused before anything is read.
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())
}

async fn root() -> &'static str {
    "Ollama is running"
}

async fn version() -> Json<serde_json::Value> {
    Json(json!({"version": env!("CARGO_PKG_VERSION")}))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The one log line of a request: time, status, how long it took (when known), method
/// and path.
fn log_request(status: StatusCode, elapsed: Option<Duration>, method: &Method, path: &str) {
    let now = crate::civil::rfc3339(std::time::SystemTime::now());
    match elapsed {
        Some(d) => eprintln!(
            "hearth: {now} | {:>3} | {d:>10.3?} | {method} {path}",
            status.as_u16()
        ),
        None => eprintln!("hearth: {now} | {:>3} | {method} {path}", status.as_u16()),
    }
}

/// Unknown routes: Ollama's plain-text 404, logged and counted like the rest (the
/// logging layer runs only for matched routes).
async fn not_found(State(state): State<AppState>, req: Request) -> (StatusCode, &'static str) {
    state.metrics.request("unmatched", 404);
    log_request(StatusCode::NOT_FOUND, None, req.method(), req.uri().path());
    (StatusCode::NOT_FOUND, "404 page not found")
}

/// One log line per request and its count in the metrics.
async fn log_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |m| m.as_str().to_string());
    let resp = next.run(req).await;
    let status = resp.status();
    state.metrics.request(&endpoint, status.as_u16());
    if method != Method::HEAD || status != StatusCode::OK {
        log_request(status, Some(t0.elapsed()), &method, &path);
    }
    resp
}

/// Every route, behind `guard`.
pub fn router(state: AppState, guard: Arc<guard::Guard>) -> Router {
    let gs = guard::GuardState {
        guard,
        metrics: Arc::clone(&state.metrics),
    };
    Router::new()
        .route("/", get(root).head(root))
        .route("/ui", get(ui::page).head(ui::page))
        .route("/api/version", get(version).head(version))
        .route("/api/generate", post(ollama::generate))
        .route("/api/chat", post(ollama::chat))
        .route("/api/embed", post(embed::api_embed))
        .route("/api/embeddings", post(embed::api_embeddings))
        .route("/v1/embeddings", post(embed::v1_embeddings))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/responses", post(responses::create))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{*model}", get(openai::retrieve_model))
        .route("/api/tags", get(models::tags).head(models::tags))
        .route("/api/show", post(models::show))
        .route("/api/ps", get(models::ps))
        .route("/api/pull", post(store::pull))
        .route("/api/push", post(store::push))
        .route("/api/create", post(store::create))
        .route("/api/copy", post(store::copy))
        .route("/api/delete", delete(store::delete))
        .route(
            "/api/blobs/{digest}",
            post(store::blob_upload).head(store::blob_head),
        )
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), log_requests))
        // Outside the routes, so that it sees every request (unmatched paths and
        // OPTIONS included) before any handler does.
        .layer(middleware::from_fn_with_state(gs, guard::check))
        .with_state(state)
}

/// Serves until `shutdown` completes. The exposure rules ([`guard::Guard`]) come from
/// the environment and the address `listener` is bound to.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    state: AppState,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let guard = guard::Guard::from_env(bound)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let host_rule = if bound.ip().to_canonical().is_loopback() {
        "Host header checked (loopback)"
    } else if guard.keyed() {
        "reachable beyond this machine (no Host check)"
    } else {
        "reachable beyond this machine with no API key: anyone who can connect may use it"
    };
    let key_rule = if guard.keyed() {
        "API key required"
    } else {
        "no API key required"
    };
    eprintln!("hearth: {key_rule}; {host_rule}");
    axum::serve(listener, router(state, Arc::new(guard)))
        .with_graceful_shutdown(shutdown)
        .await
}
