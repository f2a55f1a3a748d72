//! Streamed response bodies: NDJSON (Ollama, one JSON object per line) and server-sent
//! events (OpenAI, `data: …` blocks ending with `data: [DONE]`), plus the timestamps
//! both put in their objects.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::Value;

/// An NDJSON response from a stream of JSON objects.
pub fn ndjson(s: impl Stream<Item = Value> + Send + 'static) -> Response {
    use futures_util::StreamExt;
    let body = Body::from_stream(s.map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    }));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// One server-sent event's bytes.
pub fn sse_event(v: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The closing event of an OpenAI stream.
pub fn sse_done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// A `text/event-stream` response from a stream of already-framed events.
pub fn sse(s: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures_util::StreamExt;
    let body = Body::from_stream(s.map(Ok::<_, Infallible>));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
