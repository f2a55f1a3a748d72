//! Embedding requests on the stepping thread: queued whole, computed in encoder passes of
//! up to [`PASS_TOKENS`] tokens drawn from the queue in arrival order (a request's inputs
//! may span passes, and one pass may carry several requests), answered when their last
//! input is done.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::oneshot;

use super::Ticket;
use crate::engine::Engine;
use crate::metrics::Metrics;

/// Most tokens in one encoder pass (one input longer than this has a pass of its own).
/// Large enough that the matrix products run at full speed, small enough that the
/// pass's scratch stays tens of MB and the thread returns to other work often.
const PASS_TOKENS: usize = 2048;

/// What an embedding request gets back: one vector per input, not normalised.
pub type EmbedReply = Result<Vec<Vec<f32>>, String>;

pub(super) struct EmbedJob {
    pub inputs: Vec<Vec<u32>>,
    pub ticket: Ticket,
    pub reply: oneshot::Sender<EmbedReply>,
    done: Vec<Vec<f32>>,
}

impl EmbedJob {
    pub fn new(inputs: Vec<Vec<u32>>, ticket: Ticket, reply: oneshot::Sender<EmbedReply>) -> Self {
        EmbedJob {
            inputs,
            ticket,
            reply,
            done: Vec::new(),
        }
    }
}

#[derive(Default)]
pub(super) struct EmbedQueue {
    jobs: VecDeque<EmbedJob>,
    out: Vec<Vec<f32>>,
}

impl EmbedQueue {
    pub fn push(&mut self, job: EmbedJob) {
        self.jobs.push_back(job);
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// One pass over the next inputs in the queue.
    pub fn step(&mut self, engine: &mut Engine, metrics: &Metrics) {
        self.jobs.retain(|j| !j.reply.is_closed());
        // (job, first input, inputs) per job in the pass.
        let mut plan: Vec<(usize, usize, usize)> = Vec::new();
        let mut tokens = 0;
        'jobs: for (j, job) in self.jobs.iter().enumerate() {
            let first = job.done.len();
            let mut n = 0;
            for input in &job.inputs[first..] {
                if tokens > 0 && tokens + input.len() > PASS_TOKENS {
                    if n > 0 {
                        plan.push((j, first, n));
                    }
                    break 'jobs;
                }
                tokens += input.len();
                n += 1;
            }
            if n > 0 {
                plan.push((j, first, n));
            }
        }
        if plan.is_empty() {
            // Requests with no inputs: nothing to compute.
            while let Some(j) = self.jobs.pop_front() {
                let _ = j.reply.send(Ok(Vec::new()));
            }
            return;
        }
        let inputs: Vec<&[u32]> = plan
            .iter()
            .flat_map(|&(j, first, n)| self.jobs[j].inputs[first..first + n].iter())
            .map(Vec::as_slice)
            .collect();
        let result = engine.embed(&inputs, &mut self.out);
        drop(inputs);
        metrics.step(plan.len());
        match result {
            Ok(()) => {
                metrics
                    .prompt_tokens_computed
                    .fetch_add(tokens as u64, Relaxed);
                let mut vecs = self.out.drain(..);
                for &(j, _, n) in &plan {
                    let job = &mut self.jobs[j];
                    job.ticket.release();
                    job.done.extend(vecs.by_ref().take(n));
                }
            }
            Err(e) => {
                // Validated before computing: fail the requests of this pass.
                let msg = e.to_string();
                for &(j, _, _) in plan.iter().rev() {
                    if let Some(job) = self.jobs.remove(j) {
                        let _ = job.reply.send(Err(msg.clone()));
                    }
                }
                return;
            }
        }
        while self
            .jobs
            .front()
            .is_some_and(|j| j.done.len() == j.inputs.len())
        {
            if let Some(mut j) = self.jobs.pop_front() {
                metrics.embeddings.fetch_add(j.inputs.len() as u64, Relaxed);
                let _ = j.reply.send(Ok(std::mem::take(&mut j.done)));
            }
        }
    }
}
