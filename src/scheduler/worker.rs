//! The stepping thread: owns every loaded model ([`Runner`]), places and loads models
//! for waiting requests, unloads idle ones when they expire or their memory is needed,
//! and steps every model with running sequences once per turn, so that no model starves
//! another.
//!
//! Requests for a loaded model are granted at once (unless it is being drained for
//! another model). Loads go in arrival order: the first request whose model cannot load
//! yet (it must wait for busy models to finish) holds back later loads, so a stream of
//! requests to loaded models cannot starve it; the models it waits for take no new
//! requests meanwhile (they are drained), and requests for them wait and reload later.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::embed::EmbedJob;
use super::placement::{plan, Placed, Plan};
use super::runner::{Queued, Runner};
use super::{
    context_length, memory, Command, Event, KeepAlive, ModelInfo, Resident, SchedError, Shared,
};
use crate::engine::MemoryEstimate;
use crate::generate::{open_model, LoadOptions, Loaded, ModelSource};
use crate::model::Model;
use crate::registry::human_bytes;

/// How often paused sequences are looked at again while nothing else can run.
const PAUSED_POLL: Duration = Duration::from_millis(5);

struct Waiter {
    source: ModelSource,
    /// The context length the request asked for (0: the server's default).
    num_ctx: usize,
    reply: oneshot::Sender<Result<(u64, Arc<ModelInfo>), SchedError>>,
    /// The model, opened (mapped, not read) to estimate its memory, kept while the
    /// request waits for room.
    opened: Option<Opened>,
}

/// A model opened for placement: what it will take at the context it is planned for.
struct Opened {
    model: Model,
    estimate: MemoryEstimate,
    num_ctx: usize,
}

/// What became of a load attempt.
enum Attempt {
    Loaded,
    Wait,
    Failed(String),
}

pub(super) struct Worker {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Command>,
    waiters: VecDeque<Waiter>,
    runners: Vec<Runner>,
    next_id: u64,
    closed: bool,
    /// The last turn had work but none of it could go.
    stalled: bool,
}

fn same_model(a: &ModelSource, b: &ModelSource) -> bool {
    a.name == b.name && a.path == b.path && a.digest == b.digest
}

impl Worker {
    pub(super) fn new(shared: Arc<Shared>, rx: mpsc::Receiver<Command>) -> Worker {
        Worker {
            shared,
            rx,
            waiters: VecDeque::new(),
            runners: Vec::new(),
            next_id: 1,
            closed: false,
            stalled: false,
        }
    }

    pub(super) fn run(mut self) {
        while !self.closed || self.busy() {
            self.receive();
            // Expired and stopped models go before placement, so that a request waiting
            // for their room (or to reload a stopped model) is placed in this turn.
            self.expire();
            self.admit_models();
            let m = Arc::clone(&self.shared.metrics);
            for r in &mut self.runners {
                r.admit_jobs(&m);
                r.drop_cancelled(&m);
            }
            self.expire();
            let slice = self.shared.config.prefill_slice;
            // One step per model with work, in turn.
            let mut progressed = false;
            for r in &mut self.runners {
                if r.has_active() {
                    progressed |= r.step(&m, slice);
                }
                progressed |= r.embed_step(&m);
            }
            // Work that could not go (every sequence paused for a slow client): wait a
            // little for commands instead of spinning.
            self.stalled = !progressed && self.busy();
        }
        let ids: Vec<u64> = self.runners.iter().map(|r| r.id).collect();
        for id in ids {
            self.unload(id);
        }
    }

    /// Whether any model has work running.
    fn busy(&self) -> bool {
        self.runners.iter().any(Runner::busy)
    }

    /// Takes commands: without blocking while work runs, else waiting for one (or for
    /// the next expiry, or briefly when all work is paused).
    fn receive(&mut self) {
        if !self.busy() || self.stalled {
            let now = Instant::now();
            let wait = self
                .runners
                .iter()
                .filter_map(|r| r.expires)
                .min()
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(3600))
                .max(Duration::from_millis(1));
            // Paused sequences resume as their clients read: look again soon.
            let wait = if self.stalled {
                wait.min(PAUSED_POLL)
            } else {
                wait
            };
            match self.rx.recv_timeout(wait) {
                Ok(c) => self.handle(c),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
        loop {
            match self.rx.try_recv() {
                Ok(c) => self.handle(c),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
    }

    fn runner(&mut self, id: u64) -> Option<&mut Runner> {
        self.runners.iter_mut().find(|r| r.id == id)
    }

    fn handle(&mut self, c: Command) {
        match c {
            Command::Acquire {
                source,
                num_ctx,
                reply,
            } => self.waiters.push_back(Waiter {
                source,
                num_ctx,
                reply,
                opened: None,
            }),
            Command::Release { id, keep_alive } => self.release(id, keep_alive),
            Command::Start {
                id,
                job,
                ticket,
                events,
            } => match self.runner(id) {
                Some(r) => r.push_job(Queued {
                    job,
                    ticket,
                    events,
                }),
                None => {
                    let _ = events.send(Event::Error(SchedError::Closed.to_string()));
                }
            },
            Command::Embed {
                id,
                inputs,
                ticket,
                reply,
            } => match self.runner(id) {
                Some(r) => r.push_embed(EmbedJob::new(inputs, ticket, reply)),
                None => {
                    let _ = reply.send(Err(SchedError::Closed.to_string()));
                }
            },
            Command::Unload { name, reply } => {
                let mut hit = false;
                for r in self
                    .runners
                    .iter_mut()
                    .filter(|r| r.info.source.name == name)
                {
                    r.stopping = true;
                    hit = true;
                }
                self.expire();
                let _ = reply.send(hit);
            }
        }
    }

    fn release(&mut self, id: u64, keep_alive: KeepAlive) {
        let default = self.shared.config.keep_alive;
        if let Some(r) = self.runner(id) {
            r.refs = r.refs.saturating_sub(1);
            r.keep_alive = keep_alive.unwrap_or(default);
            r.last_used = Instant::now();
            if r.refs == 0 {
                r.expires = r.keep_alive.map(|d| Instant::now() + d);
            }
        }
        self.publish();
    }

    /// Grants waiting requests their model: at once when it is loaded, else by loading
    /// it (in arrival order) when it fits, unloading idle models if need be.
    fn admit_models(&mut self) {
        for r in &mut self.runners {
            r.draining = false;
        }
        let mut load_blocked = false;
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].reply.is_closed() {
                self.waiters.remove(i);
                continue;
            }
            let w = &self.waiters[i];
            // A loaded model of that name that is no longer what the store holds
            // (replaced since): it goes once idle.
            for r in &mut self.runners {
                if r.info.source.name == w.source.name && !same_model(&r.info.source, &w.source) {
                    r.stopping = true;
                }
            }
            let ctx_req = w.num_ctx;
            if let Some(r) = self
                .runners
                .iter_mut()
                .find(|r| same_model(&r.info.source, &w.source))
            {
                if r.stopping || r.draining {
                    // It goes first; the request loads it again afterwards.
                    i += 1;
                    continue;
                }
                let Some(w) = self.waiters.remove(i) else {
                    break;
                };
                r.refs += 1;
                r.expires = None;
                r.last_used = Instant::now();
                let ctx = context_length(ctx_req, self.shared.config.num_ctx, r.info.n_ctx_train);
                if ctx > r.num_ctx {
                    // A longer context than planned: its cache may grow that far.
                    r.estimate.kv =
                        r.info.kv_bytes_per_token * (ctx * self.shared.config.num_parallel) as u64;
                    r.num_ctx = ctx;
                }
                if w.reply.send(Ok((r.id, Arc::clone(&r.info)))).is_err() {
                    r.refs -= 1;
                }
                continue;
            }
            if load_blocked {
                i += 1;
                continue;
            }
            match self.try_load(i) {
                // Granted on the next turn of the loop.
                Attempt::Loaded => {}
                Attempt::Wait => {
                    load_blocked = true;
                    i += 1;
                }
                Attempt::Failed(e) => {
                    if let Some(w) = self.waiters.remove(i) {
                        let _ = w.reply.send(Err(SchedError::Load(e)));
                    }
                }
            }
        }
        self.publish();
    }

    /// Places waiter `i`'s model: loads it (after unloading idle models when needed),
    /// or says it must wait, or why it cannot load.
    fn try_load(&mut self, i: usize) -> Attempt {
        let t0 = Instant::now();
        let opened = match self.waiters[i].opened.take() {
            Some(o) => o,
            None => match self.open(&self.waiters[i]) {
                Ok(o) => o,
                Err(e) => return Attempt::Failed(e),
            },
        };
        let est = opened.estimate;
        let placed: Vec<Placed> = self
            .runners
            .iter()
            .map(|r| Placed {
                id: r.id,
                bytes: r.estimate.total(),
                idle: r.idle(),
                last_used: r.last_used,
            })
            .collect();
        match plan(
            &placed,
            est.total(),
            self.shared.config.max_loaded,
            memory::capacity(),
        ) {
            Plan::Refuse { need, capacity } => Attempt::Failed(format!(
                "model requires more memory ({}: weights {}, KV cache {}, buffers {}) than is \
                 available to hearth ({}; see HEARTH_MAX_MEMORY, or lower num_ctx or \
                 HEARTH_NUM_PARALLEL)",
                human_bytes(need),
                human_bytes(est.weights),
                human_bytes(est.kv),
                human_bytes(est.compute),
                human_bytes(capacity),
            )),
            Plan::Wait { drain } => {
                for r in &mut self.runners {
                    if drain.contains(&r.id) {
                        r.draining = true;
                    }
                }
                self.waiters[i].opened = Some(opened);
                Attempt::Wait
            }
            Plan::Load { evict } => {
                for id in evict {
                    self.unload(id);
                }
                let source = self.waiters[i].source.clone();
                match self.load(&source, opened, t0) {
                    Ok(()) => Attempt::Loaded,
                    Err(e) => Attempt::Failed(e),
                }
            }
        }
    }

    /// Opens a waiter's model and estimates what it will take.
    fn open(&self, w: &Waiter) -> Result<Opened, String> {
        let model = open_model(&w.source).map_err(|e| format!("{e:#}"))?;
        let file_bytes = std::fs::metadata(&w.source.path).map_or(0, |m| m.len());
        let num_ctx = context_length(
            w.num_ctx,
            self.shared.config.num_ctx,
            model.config.n_ctx_train,
        );
        let estimate =
            MemoryEstimate::new(&model, file_bytes, num_ctx, self.shared.config.num_parallel);
        Ok(Opened {
            model,
            estimate,
            num_ctx,
        })
    }

    fn load(&mut self, source: &ModelSource, opened: Opened, t0: Instant) -> Result<(), String> {
        let Opened {
            model,
            estimate,
            num_ctx,
        } = opened;
        let loaded = Loaded::from_model(source, model, &LoadOptions::default(), t0)
            .map_err(|e| format!("{e:#}"))?;
        let c = &loaded.engine.model().config;
        let info = Arc::new(ModelInfo {
            source: source.clone(),
            tokenizer: Arc::clone(&loaded.tokenizer),
            template: Arc::clone(&loaded.template),
            architecture: loaded
                .engine
                .model()
                .file()
                .architecture()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_string(),
            n_ctx_train: c.n_ctx_train,
            n_vocab: c.n_vocab,
            embedding: loaded.engine.is_encoder(),
            n_embd: c.n_embd,
            embed_max_tokens: loaded.engine.embed_max_tokens(),
            // An encoder keeps no cache between requests.
            kv_bytes_per_token: if loaded.engine.is_encoder() {
                0
            } else {
                loaded.engine.kv_bytes(1)
            },
            file_size: estimate.weights,
            load_duration: loaded.load_duration,
            grammars: Arc::clone(&loaded.grammars),
        });
        self.shared.metrics.model_loads.fetch_add(1, Relaxed);
        eprintln!(
            "hearth: loaded {} ({}) in {:.0} ms, planned {} (weights {}, KV cache {} at num_ctx {} x {}, buffers {})",
            source.name,
            source.path.display(),
            t0.elapsed().as_secs_f64() * 1e3,
            human_bytes(estimate.total()),
            human_bytes(estimate.weights),
            human_bytes(estimate.kv),
            num_ctx,
            self.shared.config.num_parallel,
            human_bytes(estimate.compute),
        );
        let id = self.next_id;
        self.next_id += 1;
        self.runners.push(Runner::new(
            id,
            loaded,
            info,
            estimate,
            num_ctx,
            self.shared.config.num_parallel,
            self.shared.config.keep_alive,
        ));
        // Shown before any waiter hears of the load (a client's next `/api/ps` sees it).
        self.publish();
        Ok(())
    }

    fn unload(&mut self, id: u64) {
        if let Some(i) = self.runners.iter().position(|r| r.id == id) {
            let t0 = Instant::now();
            let r = self.runners.remove(i);
            let name = r.info.source.name.clone();
            drop(r);
            self.shared.metrics.model_unloads.fetch_add(1, Relaxed);
            eprintln!(
                "hearth: unloaded {name} in {:.0} ms",
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        self.publish();
    }

    /// Unloads the idle models whose keep-alive has passed (or that were stopped).
    fn expire(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .runners
            .iter()
            .filter(|r| r.idle() && (r.stopping || r.expires.is_some_and(|t| t <= now)))
            .map(|r| r.id)
            .collect();
        for id in due {
            self.unload(id);
        }
    }

    /// What `/api/ps` shows.
    fn publish(&self) {
        let now = Instant::now();
        let list = self
            .runners
            .iter()
            .map(|r| Resident {
                name: r.info.source.name.clone(),
                digest: r.info.source.digest.clone(),
                architecture: r.info.architecture.clone(),
                size: r.estimate.total(),
                context_length: r.num_ctx,
                expires_at: r
                    .expires
                    .map(|t| SystemTime::now() + t.saturating_duration_since(now)),
                forever: r.keep_alive.is_none() && r.refs == 0,
            })
            .collect();
        *self
            .shared
            .resident
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = list;
    }
}
