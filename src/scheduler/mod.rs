//! The scheduler: a bounded queue of requests, the model they need loaded, slots over
//! that model's sequences, and one stepping thread that computes every active
//! sequence's next tokens in one engine step (continuous batching).
//!
//! A request goes through three stages, each driven from the async side:
//! 1. [`Scheduler::ticket`] counts it against `max_queue` (or refuses it at once: the
//!    bound covers every waiting request, loaded model or not).
//! 2. [`Scheduler::acquire`] waits until its model is loaded and returns a [`Lease`]
//!    (the model is not unloaded while a lease lives). The lease carries the tokenizer
//!    and template, so the prompt is rendered and tokenized off the stepping thread.
//! 3. [`Lease::generate`] hands the token ids to the stepping thread, which starts the
//!    sequence in a free slot (reusing the longest cached prefix) at its next step and
//!    streams [`Event`]s back. Dropping the receiver cancels the sequence within a step.
//!
//! Several models stay loaded at once, up to `max_loaded` and to what memory allows
//! ([`memory::capacity`] against each model's [`crate::engine::MemoryEstimate`]); placement and
//! eviction are in `placement.rs` and `worker.rs`.

mod embed;
mod events;
pub mod memory;
mod placement;
mod runner;
mod slots;
mod worker;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::generate::{DoneReason, ModelSource, Stats};
use crate::metrics::Metrics;
use crate::sampler::SamplerOptions;
use crate::template::ChatTemplate;
use crate::tokenizer::Tokenizer;

pub use embed::EmbedReply;
pub use events::{Events, MAX_BACKLOG};

/// Scheduler settings (from the environment in `hearth serve`, explicit in tests).
#[derive(Clone, Debug)]
pub struct Config {
    /// Sequences stepped together per model.
    pub num_parallel: usize,
    /// Models loaded at once.
    pub max_loaded: usize,
    /// Requests that may wait at once.
    pub max_queue: usize,
    /// How long an idle model stays loaded (`None`: forever).
    pub keep_alive: Option<Duration>,
    /// The context length of a request that names none.
    pub num_ctx: usize,
    /// Wall time of prompt work allowed in a step while other sequences are decoding:
    /// bounds the gap between a running stream's tokens while a long prompt is ingested.
    pub prefill_slice: Duration,
}

impl Config {
    pub fn from_env() -> Config {
        Config {
            num_parallel: crate::config::num_parallel(),
            max_loaded: crate::config::max_loaded_models(),
            max_queue: crate::config::max_queue(),
            keep_alive: crate::config::keep_alive(),
            num_ctx: crate::config::context_length(),
            prefill_slice: Duration::from_millis(250),
        }
    }
}

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// The queue is full (Ollama's message, two spaces included).
    #[error("server busy, please try again.  maximum pending requests exceeded")]
    Busy,
    #[error("{0}")]
    Load(String),
    #[error("the scheduler has stopped")]
    Closed,
}

/// A model as the stepping thread loaded it: what the async side needs to build prompts.
pub struct ModelInfo {
    pub source: ModelSource,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Arc<ChatTemplate>,
    pub architecture: String,
    pub n_ctx_train: usize,
    pub n_vocab: usize,
    /// An embedding model (an encoder: it embeds, it does not generate).
    pub embedding: bool,
    /// Values in one embedding.
    pub n_embd: usize,
    /// Most tokens one input to embed may have.
    pub embed_max_tokens: usize,
    /// KV-cache bytes per position of one sequence.
    pub kv_bytes_per_token: u64,
    /// Bytes of the weights file.
    pub file_size: u64,
    pub load_duration: Duration,
    /// The vocabulary prepared for structured output (built on first use).
    pub grammars: Arc<crate::constrain::Grammars>,
}

/// The context length of a sequence: as requested (else `default`), capped at the
/// model's trained length and at least 4, like Ollama.
pub fn context_length(requested: usize, default: usize, n_ctx_train: usize) -> usize {
    let n = if requested == 0 { default } else { requested };
    n.min(n_ctx_train.max(4)).max(4)
}

/// How long a model stays loaded after a request: `None` is the server's default.
pub type KeepAlive = Option<Option<Duration>>;

/// A loaded model as `/api/ps` shows it.
#[derive(Clone, Debug)]
pub struct Resident {
    pub name: String,
    pub digest: Option<String>,
    pub architecture: String,
    pub size: u64,
    pub context_length: usize,
    /// `None` while in use or when kept forever (see `forever`).
    pub expires_at: Option<SystemTime>,
    pub forever: bool,
}

/// What a generation sends back.
#[derive(Debug)]
pub enum Event {
    /// Text that became safe to show.
    Text(String),
    /// A sampled token's log probability (sent before the text it completes, only when
    /// the job asked for them).
    Logprob(crate::generate::logprobs::TokenLogprob),
    /// The end.
    Done(Done),
    /// The generation failed.
    Error(String),
}

/// The end of a generation.
#[derive(Debug, Clone)]
pub struct Done {
    pub reason: DoneReason,
    pub stats: Stats,
    /// Prompt tokens taken from a cached prefix.
    pub reused: usize,
    /// Prompt tokens.
    pub prompt_len: usize,
    /// Generated tokens (end-of-generation excluded).
    pub tokens: Vec<u32>,
}

/// A generation to start.
pub struct Job {
    pub ids: Vec<u32>,
    pub sampling: SamplerOptions,
    /// Structured output: what the tokens must form.
    pub constraint: Option<crate::constrain::Constraint>,
    /// This sequence's context length.
    pub num_ctx: usize,
    /// `Some(top)`: report each token's log probability with `top` alternatives.
    pub logprobs: Option<usize>,
    /// When the request arrived (time to first token counts from here).
    pub arrived: Instant,
}

enum Command {
    Acquire {
        source: ModelSource,
        num_ctx: usize,
        reply: oneshot::Sender<Result<(u64, Arc<ModelInfo>), SchedError>>,
    },
    Release {
        id: u64,
        keep_alive: KeepAlive,
    },
    Start {
        id: u64,
        job: Job,
        ticket: Ticket,
        events: events::EventSender,
    },
    Unload {
        name: String,
        reply: oneshot::Sender<bool>,
    },
    Embed {
        id: u64,
        inputs: Vec<Vec<u32>>,
        ticket: Ticket,
        reply: oneshot::Sender<EmbedReply>,
    },
}

struct Shared {
    tx: Mutex<mpsc::Sender<Command>>,
    pending: AtomicUsize,
    config: Config,
    metrics: Arc<Metrics>,
    resident: Mutex<Vec<Resident>>,
}

impl Shared {
    fn send(&self, c: Command) -> bool {
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(c)
            .is_ok()
    }
}

/// The handle the server holds (cheap to clone).
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// A request's place in the queue; it stops counting once its sequence starts (or it
/// is dropped).
pub struct Ticket {
    shared: Arc<Shared>,
    counted: bool,
}

impl Ticket {
    fn release(&mut self) {
        if std::mem::take(&mut self.counted) {
            let n = self.shared.pending.fetch_sub(1, Ordering::SeqCst) - 1;
            self.shared
                .metrics
                .queue_depth
                .store(n as u64, Ordering::Relaxed);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.release();
    }
}

/// A model held loaded for one request.
pub struct Lease {
    /// The loaded model's id on the stepping thread.
    id: u64,
    info: Arc<ModelInfo>,
    shared: Arc<Shared>,
    keep_alive: KeepAlive,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared.send(Command::Release {
            id: self.id,
            keep_alive: self.keep_alive,
        });
    }
}

impl Lease {
    pub fn info(&self) -> &Arc<ModelInfo> {
        &self.info
    }

    /// Starts a generation at the stepping thread's next step; the ticket stops counting
    /// against the queue once the sequence has a slot.
    pub fn generate(&self, job: Job, ticket: Ticket) -> Events {
        let (tx, rx) = events::channel();
        if !self.shared.send(Command::Start {
            id: self.id,
            job,
            ticket,
            events: tx.clone(),
        }) {
            tx.send(Event::Error(SchedError::Closed.to_string()));
        }
        rx
    }

    /// Embeds inputs (token ids) with the leased encoder at the stepping thread's next
    /// passes; the ticket stops counting once its first inputs are computed.
    pub async fn embed(&self, inputs: Vec<Vec<u32>>, ticket: Ticket) -> EmbedReply {
        let (reply, rx) = oneshot::channel();
        if !self.shared.send(Command::Embed {
            id: self.id,
            inputs,
            ticket,
            reply,
        }) {
            return Err(SchedError::Closed.to_string());
        }
        rx.await
            .unwrap_or_else(|_| Err(SchedError::Closed.to_string()))
    }
}

impl Scheduler {
    /// Starts the stepping thread.
    pub fn start(config: Config, metrics: Arc<Metrics>) -> Scheduler {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            tx: Mutex::new(tx),
            pending: AtomicUsize::new(0),
            config,
            metrics,
            resident: Mutex::new(Vec::new()),
        });
        let worker = worker::Worker::new(Arc::clone(&shared), rx);
        std::thread::Builder::new()
            .name("hearth-step".into())
            .spawn(move || worker.run())
            .expect("cannot start the stepping thread");
        Scheduler { shared }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// A place in the queue, or `Busy` when `max_queue` requests are already waiting.
    pub fn ticket(&self) -> Result<Ticket, SchedError> {
        let max = self.shared.config.max_queue;
        let r = self
            .shared
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            });
        match r {
            Ok(n) => {
                self.shared
                    .metrics
                    .queue_depth
                    .store(n as u64 + 1, Ordering::Relaxed);
                Ok(Ticket {
                    shared: Arc::clone(&self.shared),
                    counted: true,
                })
            }
            Err(_) => {
                self.shared
                    .metrics
                    .rejected_busy
                    .fetch_add(1, Ordering::Relaxed);
                Err(SchedError::Busy)
            }
        }
    }

    /// Waits until `source` is loaded (planned for context `num_ctx`, 0: the default)
    /// and holds it.
    pub async fn acquire(
        &self,
        source: ModelSource,
        num_ctx: usize,
        keep_alive: KeepAlive,
    ) -> Result<Lease, SchedError> {
        let (reply, rx) = oneshot::channel();
        if !self.shared.send(Command::Acquire {
            source,
            num_ctx,
            reply,
        }) {
            return Err(SchedError::Closed);
        }
        let (id, info) = rx.await.map_err(|_| SchedError::Closed)??;
        Ok(Lease {
            id,
            info,
            shared: Arc::clone(&self.shared),
            keep_alive,
        })
    }

    /// The loaded models, in the order they were loaded.
    pub fn resident(&self) -> Vec<Resident> {
        self.shared
            .resident
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Unloads the models called `name` once idle; false when none is loaded.
    pub async fn unload(&self, name: &str) -> bool {
        let (reply, rx) = oneshot::channel();
        if !self.shared.send(Command::Unload {
            name: name.to_string(),
            reply,
        }) {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
