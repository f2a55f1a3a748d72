//! The registry client: Docker/OCI distribution API v2 as Ollama speaks it, synchronous
//! over `ureq` (rustls). [`Client::pull`] fetches a manifest and its blobs into the
//! [`Store`] (parallel Range parts, resumable across restarts, retried with backoff,
//! verified before commit); [`Client::push`] uploads them (HEAD, mount, PATCH, PUT).
//!
//! Plain `http` is used only with `insecure` (Ollama's `--insecure`) or for a loopback
//! registry (`127.0.0.1`, `localhost`, `[::1]`); otherwise `https`.

mod http;
pub mod progress;
mod pull;
mod push;

use std::time::Duration;

use thiserror::Error;

use crate::store::{Name, NameError, Store, StoreError};
pub use progress::Progress;

/// What can go wrong talking to a registry.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("pull model manifest: file does not exist")]
    ManifestNotFound,
    #[error("{code}: {body}")]
    Status {
        code: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("unauthorized: access denied")]
    Unauthorized,
    #[error("insecure protocol http: use --insecure to allow it")]
    InsecureProtocol,
    #[error("{0}")]
    Network(String),
    /// The host name does not resolve: retrying would only make the user wait.
    #[error("{0} (is the registry host right, and is this machine online?)")]
    Unreachable(String),
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NameError> for RegistryError {
    fn from(e: NameError) -> Self {
        RegistryError::Store(StoreError::Name(e))
    }
}

impl RegistryError {
    /// Worth another try: network trouble, 5xx, 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Network(_) => true,
            RegistryError::Status { code, .. } => *code >= 500 || *code == 429,
            _ => false,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Tuning knobs (the defaults suit real registries; tests shrink them).
#[derive(Clone, Debug)]
pub struct Options {
    /// Allow plain http (and use it for every registry).
    pub insecure: bool,
    /// Tries per request or part after the first.
    pub retries: u32,
    /// First backoff delay; doubled on each retry.
    pub backoff: Duration,
    /// Longest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
    /// No byte for this long: the connection is dropped and the part retried.
    pub stall_timeout: Duration,
    pub connect_timeout: Duration,
    /// Range parts are total/16 clamped to these bounds.
    pub min_part_size: u64,
    pub max_part_size: u64,
    /// Parts downloaded at once.
    pub max_parallel: usize,
    /// Push: bytes per PATCH request.
    pub upload_chunk: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: false,
            retries: 6,
            backoff: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            min_part_size: 16 << 20,
            max_part_size: 1 << 30,
            max_parallel: 8,
            upload_chunk: 64 << 20,
        }
    }
}

/// A registry client over a store.
pub struct Client {
    store: Store,
    opts: Options,
    progress: Box<dyn Progress>,
    http: http::Http,
}

impl Client {
    pub fn new(store: Store, opts: Options, progress: Box<dyn Progress>) -> Client {
        let http = http::Http::new(&opts);
        Client {
            store,
            opts,
            progress,
            http,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `scheme://host` of the registry serving a name.
    fn base_url(&self, name: &Name) -> Result<String> {
        if name.plain_http() && !self.opts.insecure {
            return Err(RegistryError::InsecureProtocol);
        }
        let host = name.host();
        let h = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = matches!(h, "127.0.0.1" | "localhost" | "[::1]");
        let scheme = if self.opts.insecure || loopback {
            "http"
        } else {
            "https"
        };
        Ok(format!("{scheme}://{host}"))
    }
}

/// Ollama's human size: decimal units, one decimal below 10 (`91 MB`, `4.7 GB`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "KB"),
    ];
    for (div, unit) in UNITS {
        if b >= div {
            let v = b as f64 / div as f64;
            return if v < 10.0 && v.fract() != 0.0 {
                format!("{v:.1} {unit}")
            } else {
                format!("{} {unit}", v as u64)
            };
        }
    }
    format!("{b} B")
}
