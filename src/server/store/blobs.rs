//! `HEAD /api/blobs/{digest}` (200 when the store has the blob, else 404) and
//! `POST /api/blobs/{digest}` (the request body becomes the blob).
//!
//! An upload is streamed to disk, never held in memory and not bound by
//! [`crate::server::MAX_BODY`] (model files are hundreds of megabytes): the body's chunks
//! go through a small bounded channel to [`Store::write_blob`] on a blocking thread,
//! which hashes while it writes to a temporary file and gives it the blob's name only
//! when the sha256 matches. Any failure (a mismatch, a full disk, a client gone) deletes
//! the temporary file, so nothing partial is left.

use std::io::{self, Read};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::StatusCode;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::server::error::ApiError;
use crate::server::models::blocking;
use crate::store::{Digest, Store, StoreError};

/// Chunks in flight between the request body and the file: bounds the memory an upload
/// takes whatever the disk's speed.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A blob digest from a URL: `sha256:` or `sha256-` then 64 lower-case hex digits.
/// Anything else is refused here, before the store (the file system) sees it.
fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("sha256-"))
        .and_then(|hex| Digest::from_hex(hex).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid digest format '{}': want sha256: and 64 lower-case hex digits",
                s.escape_debug()
            ))
        })
}

/// `HEAD /api/blobs/{digest}`.
pub async fn blob_head(Path(digest): Path<String>) -> Result<StatusCode, ApiError> {
    let d = parse_digest(&digest)?;
    let found = blocking(move || Ok(Store::open().has_blob(&d))).await?;
    Ok(if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// A [`Read`] over the chunks of a request body sent from the async side.
struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(e),
                // The sender is dropped only after the body's last chunk (or its error).
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// `POST /api/blobs/{digest}`: 201 when stored, 200 when the store already had it (as
/// Ollama; the body is then not read), 400 on a digest mismatch (nothing stored).
pub async fn blob_upload(Path(digest): Path<String>, body: Body) -> Result<StatusCode, ApiError> {
    let d = parse_digest(&digest)?;
    let store = Store::open();
    let (s, d2) = (store.clone(), d.clone());
    if blocking(move || Ok(s.has_blob(&d2))).await? {
        return Ok(StatusCode::OK);
    }
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let want = d.clone();
    let writer = tokio::task::spawn_blocking(move || {
        store.write_blob(
            BodyReader {
                rx,
                chunk: Bytes::new(),
            },
            &want,
        )
    });
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| io::Error::other(format!("the request body: {e}")));
        let failed = chunk.is_err();
        // A closed channel means the writer stopped (an I/O error): its result says why.
        if tx.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| ApiError::internal(format!("the blob task failed: {e}")))?;
    match written {
        Ok(_) => Ok(StatusCode::CREATED),
        Err(StoreError::DigestMismatch { want, got }) => Err(ApiError::bad_request(format!(
            "digest mismatch, expected \"{want}\", got \"{got}\""
        ))),
        Err(e @ StoreError::NoSpace(_)) => Err(ApiError::internal(format!(
            "cannot store blob {d}: {e}; nothing was kept"
        ))),
        Err(e) => Err(ApiError::internal(format!("cannot store blob {d}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_urls() {
        let hex = "a".repeat(64);
        assert_eq!(parse_digest(&format!("sha256:{hex}")).unwrap().hex(), hex);
        assert_eq!(parse_digest(&format!("sha256-{hex}")).unwrap().hex(), hex);
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{hex}"),
            format!("sha256:../{}", "a".repeat(61)),
            String::new(),
        ] {
            assert_eq!(parse_digest(&bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
