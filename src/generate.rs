//! Generation on one engine sequence: prefill a prompt, then sample, stream whole UTF-8
//! text, and stop at end-of-generation tokens, stop sequences, `num_predict`, a full
//! context, or cancellation.
//!
//! A [`Session`] remembers which tokens its sequence's KV cache holds, so the next
//! prompt of a conversation (the whole conversation rendered again) only prefills what
//! differs from the cache: usually just the new turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineError, Logits, SeqId, StepInput};
use crate::sampler::StopMatcher;
use crate::sampler::{Sampler, SamplerOptions};
use crate::tokenizer::Tokenizer;

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoneReason {
    /// An end-of-generation token or a stop sequence.
    Stop,
    /// `num_predict` tokens, or the context is full.
    Length,
    /// The caller's cancel flag was raised.
    Cancelled,
}

impl DoneReason {
    /// Ollama's `done_reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            DoneReason::Stop => "stop",
            DoneReason::Length => "length",
            DoneReason::Cancelled => "cancelled",
        }
    }
}

/// Counts and timings, as Ollama reports them.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub prompt_eval_count: usize,
    pub prompt_eval_duration: Duration,
    pub eval_count: usize,
    pub eval_duration: Duration,
}

/// The result of one generation.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub done_reason: DoneReason,
    pub stats: Stats,
    /// The sampled tokens (an end-of-generation token not included).
    pub tokens: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the prompt has {prompt} tokens, more than the context length {num_ctx} (set num_ctx higher)")]
    PromptTooLong { prompt: usize, num_ctx: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// A sequence and the tokens its cache holds.
pub struct Session {
    seq: SeqId,
    cached: Vec<u32>,
}

impl Session {
    pub fn new(engine: &mut Engine) -> Session {
        Session {
            seq: engine.add_sequence(),
            cached: Vec::new(),
        }
    }

    /// Forgets everything in the cache.
    pub fn reset(&mut self, engine: &mut Engine) {
        engine.truncate(self.seq, 0);
        self.cached.clear();
    }

    /// Tokens the cache holds.
    pub fn len(&self) -> usize {
        self.cached.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cached.is_empty()
    }

    /// Frees the sequence.
    pub fn close(self, engine: &mut Engine) {
        engine.remove_sequence(self.seq);
    }

    /// Generates a continuation of `prompt` (token ids, BOS included if wanted), calling
    /// `on_text` with each piece of text as soon as it is whole and cannot be part of a
    /// stop sequence.
    pub fn generate(
        &mut self,
        engine: &mut Engine,
        tok: &Tokenizer,
        prompt: &[u32],
        opts: &SamplerOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> Result<Outcome, GenerateError> {
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        let num_ctx = engine.num_ctx();
        if prompt.len() >= num_ctx {
            return Err(GenerateError::PromptTooLong {
                prompt: prompt.len(),
                num_ctx,
            });
        }
        // Reuse the cached prefix; at least the last prompt token is evaluated again so
        // there are logits to sample from.
        let mut keep = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        keep = keep.min(prompt.len() - 1);
        engine.truncate(self.seq, keep);
        self.cached.truncate(keep);

        let mut stats = Stats::default();
        let t0 = Instant::now();
        let fresh = &prompt[keep..];
        let step = engine.step(&[StepInput {
            seq: self.seq,
            tokens: fresh,
            logits: Logits::Last,
        }]);
        if let Err(e) = step {
            // The engine validated before changing anything; the cache is as truncated.
            return Err(e.into());
        }
        self.cached.extend_from_slice(fresh);
        stats.prompt_eval_count = fresh.len();
        stats.prompt_eval_duration = t0.elapsed();

        let n_vocab = engine.n_vocab();
        let mut sampler = Sampler::new(opts, n_vocab);
        for &t in prompt {
            sampler.accept(t);
        }
        let mut logits = vec![0.0f32; n_vocab];
        let mut decoder = tok.stream();
        let mut stops = StopMatcher::new(&opts.stop);
        let emit = |text: &str, on_text: &mut dyn FnMut(&str) -> std::io::Result<()>| {
            if text.is_empty() {
                Ok(())
            } else {
                on_text(text).map_err(GenerateError::Output)
            }
        };
        let limit = usize::try_from(opts.num_predict).ok();
        let mut tokens = Vec::new();
        let t1 = Instant::now();
        let done_reason = loop {
            if cancel.load(Ordering::Relaxed) {
                break DoneReason::Cancelled;
            }
            logits.copy_from_slice(engine.logits(0));
            let next = sampler.sample(&mut logits);
            if tok.is_eog(next) {
                break DoneReason::Stop;
            }
            sampler.accept(next);
            tokens.push(next);
            let text = decoder.push(next).unwrap_or_default();
            let (out, stopped) = stops.push(&text);
            emit(&out, on_text)?;
            if stopped {
                break DoneReason::Stop;
            }
            if limit.is_some_and(|n| tokens.len() >= n) || self.cached.len() + 1 >= num_ctx {
                break DoneReason::Length;
            }
            engine.step(&[StepInput {
                seq: self.seq,
                tokens: &[next],
                logits: Logits::Last,
            }])?;
            self.cached.push(next);
        };
        stats.eval_count = tokens.len();
        stats.eval_duration = t1.elapsed();
        if done_reason != DoneReason::Stop || !stops.stopped() {
            let rest = decoder.finish();
            let (out, _) = stops.push(&rest);
            emit(&out, on_text)?;
            if !stops.stopped() {
                emit(&stops.finish(), on_text)?;
            }
        }
        Ok(Outcome {
            done_reason,
            stats,
            tokens,
        })
    }
}
