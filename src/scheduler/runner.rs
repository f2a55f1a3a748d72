//! One loaded model on the stepping thread: its engine, slots, queued and running
//! generations, embedding requests, and what the scheduler needs to place and expire it.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::embed::{EmbedJob, EmbedQueue};
use super::events::EventSender;
use super::slots::Slots;
use super::{Done, Event, Job, ModelInfo, Ticket};
use crate::engine::{Logits, MemoryEstimate, SeqId, StepInput};
use crate::generate::{Generation, Loaded};
use crate::metrics::Metrics;

/// Fewest prompt tokens a step takes while others decode (progress for the prompt).
const MIN_CHUNK: usize = 32;
/// Most prompt tokens in one step.
const MAX_CHUNK: usize = 512;

pub(super) struct Queued {
    pub job: Job,
    pub ticket: Ticket,
    pub events: EventSender,
}

struct Active {
    gen: Generation,
    slot: usize,
    seq: SeqId,
    events: EventSender,
    arrived: Instant,
    last_token: Option<Instant>,
}

pub(super) struct Runner {
    /// Unique for the server's life: leases name their model by it.
    pub id: u64,
    pub loaded: Loaded,
    pub info: Arc<ModelInfo>,
    /// What it was planned to take (its context grows it when a request asks for more).
    pub estimate: MemoryEstimate,
    /// The context length it was planned for.
    pub num_ctx: usize,
    /// Leases held (requests being prepared, queued or running).
    pub refs: usize,
    /// The last request's keep-alive (`None`: forever).
    pub keep_alive: Option<Duration>,
    /// When to unload, once idle.
    pub expires: Option<Instant>,
    /// Unload as soon as idle (`hearth stop`, deleted or replaced in the store).
    pub stopping: bool,
    /// Another model waits for its memory: it takes no new lease and goes when idle.
    pub draining: bool,
    pub last_used: Instant,
    slots: Slots,
    queued: VecDeque<Queued>,
    active: Vec<Active>,
    embeds: EmbedQueue,
    /// Measured seconds per decoding sequence in a step without prompt tokens, and the
    /// extra seconds one prompt token adds to a step (moving averages).
    decode_secs: f64,
    prompt_secs: f64,
    logits: Vec<f32>,
}

impl Runner {
    pub fn new(
        id: u64,
        loaded: Loaded,
        info: Arc<ModelInfo>,
        estimate: MemoryEstimate,
        num_ctx: usize,
        num_parallel: usize,
        keep_alive: Option<Duration>,
    ) -> Runner {
        let n_vocab = info.n_vocab;
        Runner {
            id,
            loaded,
            info,
            estimate,
            num_ctx,
            refs: 0,
            keep_alive,
            expires: None,
            stopping: false,
            draining: false,
            last_used: Instant::now(),
            slots: Slots::new(num_parallel),
            queued: VecDeque::new(),
            active: Vec::new(),
            embeds: EmbedQueue::default(),
            decode_secs: 0.01,
            prompt_secs: 0.005,
            logits: vec![0.0; n_vocab],
        }
    }

    /// Sequences to step now.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Work is running (sequences or embeddings).
    pub fn busy(&self) -> bool {
        !self.active.is_empty() || !self.embeds.is_empty()
    }

    /// Nothing holds or uses it: it may be unloaded.
    pub fn idle(&self) -> bool {
        self.refs == 0 && !self.busy() && self.queued.is_empty()
    }

    pub fn push_job(&mut self, q: Queued) {
        self.queued.push_back(q);
    }

    pub fn push_embed(&mut self, job: EmbedJob) {
        self.embeds.push(job);
    }

    /// One encoder pass over queued embedding inputs, if any; false when there were none.
    pub fn embed_step(&mut self, metrics: &Metrics) -> bool {
        if self.embeds.is_empty() {
            return false;
        }
        self.embeds.step(&mut self.loaded.engine, metrics);
        true
    }

    /// Starts queued generations in free slots, in arrival order.
    pub fn admit_jobs(&mut self, metrics: &Metrics) {
        while self.slots.any_free() {
            let Some(mut q) = self.queued.pop_front() else {
                break;
            };
            if q.events.is_closed() {
                continue;
            }
            let engine = &mut self.loaded.engine;
            let Some((slot, seq, cached)) = self.slots.take(engine, &q.job.ids, q.job.num_ctx)
            else {
                self.queued.push_front(q);
                break;
            };
            let gen = Generation::new(
                std::mem::take(&mut q.job.ids),
                cached,
                &q.job.sampling,
                engine.n_vocab(),
                q.job.num_ctx,
            )
            .map(|g| match q.job.constraint.take() {
                Some(c) => g.with_constraint(c),
                None => g,
            })
            .map(|g| match q.job.logprobs {
                Some(top) => g.with_logprobs(top),
                None => g,
            });
            q.ticket.release();
            match gen {
                Ok(gen) => {
                    engine.truncate(seq, gen.keep());
                    self.slots.set_prompt(slot, gen.prompt());
                    let m = metrics;
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
                    self.slots.free(slot, Vec::new());
                    let _ = q.events.send(Event::Error(e.to_string()));
                }
            }
        }
    }

    /// Ends the generations whose client has gone.
    pub fn drop_cancelled(&mut self, metrics: &Metrics) {
        let mut i = 0;
        while i < self.active.len() {
            if self.active[i].events.is_closed() {
                let mut a = self.active.swap_remove(i);
                a.gen.cancel();
                self.finish(a, metrics);
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, a: Active, metrics: &Metrics) {
        metrics.active_sequences.fetch_sub(1, Relaxed);
        self.slots.free(a.slot, a.gen.cached_tokens());
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
    /// One engine step over every active sequence that can go; false when none could
    /// (all paused for their slow clients).
    pub fn step(&mut self, metrics: &Arc<Metrics>, prefill_slice: Duration) -> bool {
        // Arrival order: decoding sequences first (one token each), then prompt chunks.
        self.active.sort_by_key(|a| (a.gen.in_prompt(), a.arrived));
        let decoding = self.active.iter().filter(|a| !a.gen.in_prompt()).count();
        let waiting = self.active.len() - decoding;
        let mut budget = if decoding > 0 && decoding >= waiting {
            // As many prompt tokens as the measured cost per prompt token fits in one
            // slice: a stream's gap stays below one decode step plus one slice. (When
            // more requests wait for their first token than streams decode, the waiting
            // ones go first: a burst of new requests is not trickled in.)
            let t = prefill_slice.as_secs_f64();
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
            } else if a.events.backed_up() {
                // Paused: its client has not read what it was sent (see events.rs).
                continue;
            } else {
                a.gen.next_input(1).len()
            };
            if n > 0 {
                plan.push((i, n, a.gen.wants_logits(n)));
            }
        }
        if plan.is_empty() {
            return false;
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
        let result = self.loaded.engine.step(&inputs);
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
        let m = Arc::clone(metrics);
        m.step(plan.len());
        if let Err(e) = result {
            // The engine validated before changing anything: fail these sequences.
            let msg = e.to_string();
            let mut failed: Vec<usize> = plan.iter().map(|p| p.0).collect();
            failed.sort_unstable_by(|a, b| b.cmp(a));
            for i in failed {
                let a = self.active.swap_remove(i);
                let _ = a.events.send(Event::Error(msg.clone()));
                self.finish(a, &m);
            }
            return true;
        }
        let tok = Arc::clone(&self.info.tokenizer);
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
            self.logits.copy_from_slice(self.loaded.engine.logits(row));
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
            if let Some(lp) = out.logprob {
                let _ = a.events.send(Event::Logprob(lp));
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
            self.finish(a, &m);
        }
        true
    }
}
