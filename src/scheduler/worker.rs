//! The stepping thread: owns the loaded model's engine, admits requests to slots, and
//! runs one engine step at a time over every active sequence.
//!
//! A step carries the next token of every decoding sequence, then prompt chunks of
//! sequences still ingesting their prompt, in arrival order, up to a budget: while any
//! sequence is decoding, as many prompt tokens as the measured cost of a prompt token
//! (what it adds to a step, a moving average) fits in `Config::prefill_slice` (250 ms;
//! at least [`MIN_CHUNK`] tokens); with nobody decoding, or more sequences waiting for
//! their first token than decoding (a burst of new requests), up to [`MAX_CHUNK`]. A
//! decoding stream that is not outnumbered therefore waits at most about one slice of
//! prompt work between its tokens however long the arriving prompt is (llama-server
//! stalls its streams for whole `n_batch` chunks: seconds on a small CPU).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc as tmpsc, oneshot};

use super::embed::{EmbedJob, EmbedQueue};
use super::slots::Slots;
use super::{
    Command, Done, Event, Job, KeepAlive, ModelInfo, Resident, SchedError, Shared, Ticket,
};
use crate::engine::{Logits, SeqId, StepInput};
use crate::generate::{Generation, LoadOptions, Loaded, ModelSource};

/// Fewest prompt tokens a step takes while others decode (progress for the prompt).
const MIN_CHUNK: usize = 32;
/// Most prompt tokens in one step.
const MAX_CHUNK: usize = 512;

struct Waiter {
    source: ModelSource,
    reply: oneshot::Sender<Result<Arc<ModelInfo>, SchedError>>,
}

struct Queued {
    job: Job,
    ticket: Ticket,
    events: tmpsc::UnboundedSender<Event>,
}

struct Active {
    gen: Generation,
    slot: usize,
    seq: SeqId,
    events: tmpsc::UnboundedSender<Event>,
    arrived: Instant,
    last_token: Option<Instant>,
}

struct Current {
    loaded: Loaded,
    info: Arc<ModelInfo>,
    slots: Slots,
    refs: usize,
    /// The last request's keep-alive (`None`: forever).
    keep_alive: Option<Duration>,
    /// When to unload, once idle.
    expires: Option<Instant>,
    /// Unload as soon as idle (`hearth stop`).
    stopping: bool,
}

pub(super) struct Worker {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Command>,
    waiters: VecDeque<Waiter>,
    queued: VecDeque<Queued>,
    active: Vec<Active>,
    embeds: EmbedQueue,
    current: Option<Current>,
    /// Measured seconds per decoding sequence in a step without prompt tokens, and the
    /// extra seconds one prompt token adds to a step (moving averages).
    decode_secs: f64,
    prompt_secs: f64,
    logits: Vec<f32>,
    closed: bool,
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
            queued: VecDeque::new(),
            active: Vec::new(),
            embeds: EmbedQueue::default(),
            current: None,
            decode_secs: 0.01,
            prompt_secs: 0.005,
            logits: Vec::new(),
            closed: false,
        }
    }

    pub(super) fn run(mut self) {
        while !self.closed || self.busy() {
            self.receive();
            self.admit_models();
            self.admit_jobs();
            self.drop_cancelled();
            if !self.busy() {
                self.expire();
            }
            if !self.active.is_empty() {
                self.step();
            }
            if !self.embeds.is_empty() {
                if let Some(c) = &mut self.current {
                    self.embeds.step(&mut c.loaded.engine, &self.shared.metrics);
                }
            }
        }
        self.unload();
    }

    /// Whether work is running (sequences or embeddings).
    fn busy(&self) -> bool {
        !self.active.is_empty() || !self.embeds.is_empty()
    }

    /// Takes commands: without blocking while sequences are active, else waiting for
    /// one (or for the loaded model's expiry).
    fn receive(&mut self) {
        if !self.busy() && self.queued.is_empty() && self.waiters.is_empty() {
            let wait = self
                .current
                .as_ref()
                .and_then(|c| c.expires)
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600))
                .max(Duration::from_millis(1));
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

    fn handle(&mut self, c: Command) {
        match c {
            Command::Acquire { source, reply } => self.waiters.push_back(Waiter { source, reply }),
            Command::Release { keep_alive } => self.release(keep_alive),
            Command::Start {
                job,
                ticket,
                events,
            } => self.queued.push_back(Queued {
                job,
                ticket,
                events,
            }),
            Command::Embed {
                inputs,
                ticket,
                reply,
            } => self.embeds.push(EmbedJob::new(inputs, ticket, reply)),
            Command::Unload { name, reply } => {
                let hit = match &mut self.current {
                    Some(c) if c.info.source.name == name => {
                        c.stopping = true;
                        true
                    }
                    _ => false,
                };
                self.expire();
                let _ = reply.send(hit);
            }
        }
    }

    fn release(&mut self, keep_alive: KeepAlive) {
        let default = self.shared.config.keep_alive;
        if let Some(c) = &mut self.current {
            c.refs = c.refs.saturating_sub(1);
            c.keep_alive = keep_alive.unwrap_or(default);
            if c.refs == 0 {
                c.expires = c.keep_alive.map(|d| Instant::now() + d);
            }
        }
        self.publish();
    }

    /// Grants waiting requests their model, in arrival order; a request for another
    /// model waits until the loaded one is idle, and later requests wait behind it.
    fn admit_models(&mut self) {
        while let Some(w) = self.waiters.front() {
            if w.reply.is_closed() {
                self.waiters.pop_front();
                continue;
            }
            match &mut self.current {
                Some(c) if same_model(&c.info.source, &w.source) && !c.stopping => {
                    let Some(w) = self.waiters.pop_front() else {
                        break;
                    };
                    c.refs += 1;
                    c.expires = None;
                    if w.reply.send(Ok(Arc::clone(&c.info))).is_err() {
                        c.refs -= 1;
                    }
                }
                Some(c) => {
                    if c.refs == 0 && !self.busy() && self.queued.is_empty() {
                        self.unload();
                    } else {
                        break;
                    }
                }
                None => {
                    let Some(w) = self.waiters.pop_front() else {
                        break;
                    };
                    match self.load(&w.source) {
                        Ok(()) => self.waiters.push_front(w),
                        Err(e) => {
                            let _ = w.reply.send(Err(SchedError::Load(e)));
                        }
                    }
                }
            }
        }
        self.publish();
    }

    fn load(&mut self, source: &ModelSource) -> Result<(), String> {
        let t0 = Instant::now();
        let loaded = Loaded::open(source, &LoadOptions::default()).map_err(|e| format!("{e:#}"))?;
        let c = &loaded.engine.model().config;
        let file_size = std::fs::metadata(&source.path).map_or(0, |m| m.len());
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
            file_size,
            load_duration: loaded.load_duration,
        });
        self.logits.resize(c.n_vocab, 0.0);
        self.shared.metrics.model_loads.fetch_add(1, Relaxed);
        eprintln!(
            "hearth: loaded {} ({}) in {:.0} ms",
            source.name,
            source.path.display(),
            t0.elapsed().as_secs_f64() * 1e3
        );
        self.current = Some(Current {
            loaded,
            info,
            slots: Slots::new(self.shared.config.num_parallel),
            refs: 0,
            keep_alive: self.shared.config.keep_alive,
            expires: None,
            stopping: false,
        });
        // Shown before any waiter hears of the load (a client's next `/api/ps` sees it).
        self.publish();
        Ok(())
    }

    fn unload(&mut self) {
        if let Some(c) = self.current.take() {
            self.shared.metrics.model_unloads.fetch_add(1, Relaxed);
            eprintln!("hearth: unloaded {}", c.info.source.name);
        }
        self.publish();
    }

    /// Unloads the model when it is idle and its keep-alive has passed (or it was
    /// stopped, or its keep-alive is zero).
    fn expire(&mut self) {
        let Some(c) = &self.current else { return };
        if c.refs > 0 || self.busy() || !self.queued.is_empty() {
            return;
        }
        let due = c.stopping || c.expires.is_some_and(|t| t <= Instant::now());
        if due {
            self.unload();
        }
    }

    /// What `/api/ps` shows.
    fn publish(&self) {
        let r = self.current.as_ref().map(|c| {
            let ctx = self.shared.config.num_ctx.min(c.info.n_ctx_train.max(1));
            let kv = c.info.kv_bytes_per_token * (ctx * self.shared.config.num_parallel) as u64;
            let forever = c.keep_alive.is_none() && c.refs == 0;
            Resident {
                name: c.info.source.name.clone(),
                digest: c.info.source.digest.clone(),
                architecture: c.info.architecture.clone(),
                size: c.info.file_size + kv,
                context_length: ctx,
                expires_at: c
                    .expires
                    .map(|t| SystemTime::now() + t.saturating_duration_since(Instant::now())),
                forever,
            }
        });
        *self
            .shared
            .resident
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = r;
    }

    /// Starts queued generations in free slots, in arrival order.
    fn admit_jobs(&mut self) {
        let Some(c) = &mut self.current else {
            // No model: nothing can be queued for it (a lease keeps it loaded).
            for q in self.queued.drain(..) {
                let _ = q.events.send(Event::Error(SchedError::Closed.to_string()));
            }
            self.embeds.fail_all(&SchedError::Closed.to_string());
            return;
        };
        while c.slots.any_free() {
            let Some(mut q) = self.queued.pop_front() else {
                break;
            };
            if q.events.is_closed() {
                continue;
            }
            let engine = &mut c.loaded.engine;
            let Some((slot, seq, cached)) = c.slots.take(engine, &q.job.ids, q.job.num_ctx) else {
                self.queued.push_front(q);
                break;
            };
            let gen = Generation::new(
                std::mem::take(&mut q.job.ids),
                cached,
                &q.job.sampling,
                engine.n_vocab(),
                q.job.num_ctx,
            );
            q.ticket.release();
            match gen {
                Ok(gen) => {
                    engine.truncate(seq, gen.keep());
                    c.slots.set_prompt(slot, gen.prompt());
                    let m = &self.shared.metrics;
                    m.prompt_tokens_reused
                        .fetch_add(gen.reused() as u64, Relaxed);
                    m.active_sequences.fetch_add(1, Relaxed);
                    self.active.push(Active {
                        gen,
                        slot,
                        seq,
                        events: q.events,
                        arrived: q.job.arrived,
                        last_token: None,
                    });
                }
                Err(e) => {
                    c.slots.free(slot, Vec::new());
                    let _ = q.events.send(Event::Error(e.to_string()));
                }
            }
        }
    }

    /// Ends the generations whose client has gone.
    fn drop_cancelled(&mut self) {
        let mut i = 0;
        while i < self.active.len() {
            if self.active[i].events.is_closed() {
                let mut a = self.active.swap_remove(i);
                a.gen.cancel();
                self.finish(a);
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, a: Active) {
        self.shared.metrics.active_sequences.fetch_sub(1, Relaxed);
        if let Some(c) = &mut self.current {
            c.slots.free(a.slot, a.gen.cached_tokens());
        }
        if let Some(reason) = a.gen.done() {
            let _ = a.events.send(Event::Done(Done {
                reason,
                stats: a.gen.stats(),
                reused: a.gen.reused(),
                prompt_len: a.gen.prompt().len(),
                tokens: a.gen.tokens().to_vec(),
            }));
        }
    }

    /// One engine step over every active sequence.
    fn step(&mut self) {
        let Some(c) = &mut self.current else { return };
        // Arrival order: decoding sequences first (one token each), then prompt chunks.
        self.active.sort_by_key(|a| (a.gen.in_prompt(), a.arrived));
        let decoding = self.active.iter().filter(|a| !a.gen.in_prompt()).count();
        let waiting = self.active.len() - decoding;
        let mut budget = if decoding > 0 && decoding >= waiting {
            // As many prompt tokens as the measured cost per prompt token fits in one
            // slice: a stream's gap stays below one decode step plus one slice. (When
            // more requests wait for their first token than streams decode, the waiting
            // ones go first: a burst of new requests is not trickled in.)
            let t = self.shared.config.prefill_slice.as_secs_f64();
            ((t / self.prompt_secs) as usize).clamp(MIN_CHUNK, MAX_CHUNK)
        } else {
            MAX_CHUNK
        };
        // (active index, tokens fed, wants logits)
        let mut plan: Vec<(usize, usize, bool)> = Vec::with_capacity(self.active.len());
        for (i, a) in self.active.iter().enumerate() {
            let n = if a.gen.in_prompt() {
                if budget == 0 {
                    continue;
                }
                let n = a.gen.next_input(budget).len();
                budget -= n;
                n
            } else {
                a.gen.next_input(1).len()
            };
            if n > 0 {
                plan.push((i, n, a.gen.wants_logits(n)));
            }
        }
        if plan.is_empty() {
            return;
        }
        let inputs: Vec<StepInput<'_>> = plan
            .iter()
            .map(|&(i, n, want)| StepInput {
                seq: self.active[i].seq,
                tokens: &self.active[i].gen.next_input(n)[..n],
                logits: if want { Logits::Last } else { Logits::None },
            })
            .collect();
        let n_tokens: usize = plan.iter().map(|p| p.1).sum();
        let t0 = Instant::now();
        let result = c.loaded.engine.step(&inputs);
        drop(inputs);
        let secs = t0.elapsed().as_secs_f64();
        let n_decode = plan
            .iter()
            .filter(|p| !self.active[p.0].gen.in_prompt())
            .count();
        let n_prompt = n_tokens - n_decode;
        if n_prompt == 0 {
            self.decode_secs = 0.8 * self.decode_secs + 0.2 * (secs / n_decode.max(1) as f64);
        } else {
            // What the prompt tokens added to the step, beyond its decoding sequences.
            let extra = (secs - n_decode as f64 * self.decode_secs).max(secs * 0.25);
            self.prompt_secs = 0.7 * self.prompt_secs + 0.3 * (extra / n_prompt as f64);
        }
        let m = Arc::clone(&self.shared.metrics);
        m.step(plan.len());
        if let Err(e) = result {
            // The engine validated before changing anything: fail these sequences.
            let msg = e.to_string();
            let mut failed: Vec<usize> = plan.iter().map(|p| p.0).collect();
            failed.sort_unstable_by(|a, b| b.cmp(a));
            for i in failed {
                let a = self.active.swap_remove(i);
                let _ = a.events.send(Event::Error(msg.clone()));
                self.finish(a);
            }
            return;
        }
        let tok = Arc::clone(&c.info.tokenizer);
        let mut row = 0;
        let mut ended = Vec::new();
        for &(i, n, want) in &plan {
            let a = &mut self.active[i];
            let was_prompt = a.gen.in_prompt();
            a.gen.fed(n);
            if was_prompt {
                m.prompt_tokens_computed.fetch_add(n as u64, Relaxed);
            }
            if !want {
                continue;
            }
            self.logits.copy_from_slice(c.loaded.engine.logits(row));
            row += 1;
            let out = a.gen.accept(&mut self.logits, &tok);
            if out.token.is_some() {
                let now = Instant::now();
                match a.last_token {
                    None => m.first_token((now - a.arrived).as_secs_f64()),
                    Some(t) => m.between_tokens((now - t).as_secs_f64()),
                }
                a.last_token = Some(now);
                m.tokens_generated.fetch_add(1, Relaxed);
            }
            if !out.text.is_empty() {
                let _ = a.events.send(Event::Text(out.text));
            }
            if out.done.is_some() {
                ended.push(i);
            }
        }
        ended.sort_unstable_by(|a, b| b.cmp(a));
        for i in ended {
            let a = self.active.swap_remove(i);
            self.finish(a);
        }
    }
}
