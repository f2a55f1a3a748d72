//! One generation as a state machine, independent of who drives the engine: `hearth run`
//! steps one alone ([`super::Session`]), the server's scheduler steps many in one batch.
//!
//! The driver asks [`Generation::next_input`] for the tokens to feed (a chunk of the
//! prompt, or the token sampled last), runs them through `Engine::step` with logits for
//! the last one when [`Generation::wants_logits`] says so, reports it with
//! [`Generation::fed`], and hands the logits to [`Generation::accept`], which samples and
//! returns the text that became safe to show and, at the end, why it ended.
//!
//! Invariant: text is emitted only when it is whole UTF-8 and cannot be the start of a
//! stop sequence; a stop sequence itself is never emitted.

use std::time::{Duration, Instant};

use super::{DoneReason, GenerateError, Stats};
use crate::constrain::{Constraint, ConstraintStats};
use crate::sampler::{Sampler, SamplerOptions, StopMatcher};
use crate::tokenizer::{TextDecoder, Tokenizer};

/// What one call of [`Generation::accept`] produced.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Text to show now (possibly empty).
    pub text: String,
    /// The sampled token, unless it was an end-of-generation token.
    pub token: Option<u32>,
    /// Set when the generation has ended.
    pub done: Option<DoneReason>,
    /// The sampled token's log probability, when asked for (not for end-of-generation).
    pub logprob: Option<super::logprobs::TokenLogprob>,
}

/// A generation in progress.
pub struct Generation {
    prompt: Vec<u32>,
    /// Positions of this generation's sequence that hold its tokens (prompt, then output).
    fed: usize,
    /// Prompt tokens that were already in the cache when it started.
    reused: usize,
    num_ctx: usize,
    limit: Option<usize>,
    sampler: Sampler,
    /// Structured output: the matcher that masks what cannot continue the document.
    constraint: Option<Constraint>,
    /// `Some(top)`: report log probabilities with `top` alternatives.
    logprobs: Option<usize>,
    stops: StopMatcher,
    decoder: TextDecoder,
    /// Sampled tokens (end-of-generation excluded).
    tokens: Vec<u32>,
    /// The token sampled last and not yet fed.
    next: Option<u32>,
    done: Option<DoneReason>,
    started: Option<Instant>,
    prompt_done: Option<Instant>,
    ended: Option<Instant>,
}

impl Generation {
    /// A generation continuing `prompt`, of which the first `cached` tokens are already in
    /// the sequence's cache (at most `prompt.len() - 1` are reused: the last prompt token is
    /// always evaluated so there are logits to sample from). `num_ctx` is the sequence's
    /// context length.
    pub fn new(
        prompt: Vec<u32>,
        cached: usize,
        opts: &SamplerOptions,
        n_vocab: usize,
        num_ctx: usize,
    ) -> Result<Generation, GenerateError> {
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        if prompt.len() >= num_ctx {
            return Err(GenerateError::PromptTooLong {
                prompt: prompt.len(),
                num_ctx,
            });
        }
        let reused = cached.min(prompt.len() - 1);
        let mut sampler = Sampler::new(opts, n_vocab);
        for &t in &prompt {
            sampler.accept(t);
        }
        Ok(Generation {
            prompt,
            fed: reused,
            reused,
            num_ctx,
            limit: usize::try_from(opts.num_predict).ok(),
            sampler,
            constraint: None,
            logprobs: None,
            stops: StopMatcher::new(&opts.stop),
            decoder: TextDecoder::new(),
            tokens: Vec::new(),
            next: None,
            done: None,
            // Prompt evaluation is timed from here: drivers step right after creating it.
            started: Some(Instant::now()),
            prompt_done: None,
            ended: None,
        })
    }

    /// Constrains the output (a JSON document, a schema): the generation ends when the
    /// document is complete.
    pub fn with_constraint(mut self, c: Constraint) -> Generation {
        self.constraint = Some(c);
        self
    }

    /// Reports each sampled token's log probability with the `top` most likely tokens.
    pub fn with_logprobs(mut self, top: usize) -> Generation {
        self.logprobs = Some(top);
        self
    }

    /// What the constraint cost, if there is one.
    pub fn constraint_stats(&self) -> Option<ConstraintStats> {
        self.constraint.as_ref().map(|c| c.stats())
    }

    /// How many positions of the sequence to keep before the first step (the reused prefix).
    pub fn keep(&self) -> usize {
        self.reused
    }

    /// Whether the prompt is still being evaluated.
    pub fn in_prompt(&self) -> bool {
        self.fed < self.prompt.len()
    }

    /// The tokens to feed next: up to `max` (at least 1) of the prompt, or the last sampled
    /// token. Empty when the generation is done.
    pub fn next_input(&self, max: usize) -> &[u32] {
        if self.done.is_some() {
            return &[];
        }
        if self.in_prompt() {
            let end = self.prompt.len().min(self.fed.saturating_add(max.max(1)));
            return &self.prompt[self.fed..end];
        }
        match &self.next {
            Some(t) => std::slice::from_ref(t),
            None => &[],
        }
    }

    /// Whether feeding `n` tokens of [`next_input`](Self::next_input) ends at a position
    /// whose logits must be sampled.
    pub fn wants_logits(&self, n: usize) -> bool {
        !self.in_prompt() || self.fed + n == self.prompt.len()
    }

    /// Records that the first `n` tokens of `next_input` were appended to the sequence.
    pub fn fed(&mut self, n: usize) {
        if self.in_prompt() {
            self.fed += n;
            if !self.in_prompt() {
                self.prompt_done = Some(Instant::now());
            }
        } else if n > 0 && self.next.take().is_some() {
            self.fed += 1;
        }
    }

    /// Samples from the logits of the last fed token and advances. After the end, returns
    /// nothing more.
    pub fn accept(&mut self, logits: &mut [f32], tok: &Tokenizer) -> Accepted {
        let mut out = Accepted::default();
        if self.done.is_some() || self.in_prompt() || self.next.is_some() {
            return out;
        }
        // Sampling rewrites the logits (penalties, temperature, a format's mask): the
        // model's own distribution is kept when log probabilities are wanted.
        let raw = self.logprobs.map(|_| logits.to_vec());
        let next = match &mut self.constraint {
            None => self.sampler.sample(logits),
            Some(c) => match c.sample(&mut self.sampler, logits, tok) {
                Ok(t) => t,
                Err(e) => {
                    // Not reachable from a schema that compiled; end rather than leave it.
                    eprintln!("hearth: structured output stopped: {e}");
                    self.finish(DoneReason::Stop, &mut out);
                    return out;
                }
            },
        };
        if tok.is_eog(next) {
            self.finish(DoneReason::Stop, &mut out);
            return out;
        }
        self.sampler.accept(next);
        self.tokens.push(next);
        out.token = Some(next);
        if let (Some(top), Some(raw)) = (self.logprobs, raw) {
            out.logprob = Some(super::logprobs::measure(&raw, next, top, tok));
        }
        let text = self.decoder.push(tok, next).unwrap_or_default();
        let (emit, stopped) = self.stops.push(&text);
        out.text = emit;
        let complete = self.constraint.as_ref().is_some_and(|c| c.finished());
        if stopped || complete {
            self.finish(DoneReason::Stop, &mut out);
        } else if self.limit.is_some_and(|n| self.tokens.len() >= n) || self.fed + 1 >= self.num_ctx
        {
            self.finish(DoneReason::Length, &mut out);
        } else {
            self.next = Some(next);
        }
        out
    }

    /// Ends the generation at the caller's request; returns the text held back.
    pub fn cancel(&mut self) -> String {
        let mut out = Accepted::default();
        if self.done.is_none() {
            self.finish(DoneReason::Cancelled, &mut out);
        }
        out.text
    }

    fn finish(&mut self, reason: DoneReason, out: &mut Accepted) {
        self.done = Some(reason);
        self.next = None;
        self.ended = Some(Instant::now());
        if reason != DoneReason::Stop || !self.stops.stopped() {
            let rest = self.decoder.finish();
            let (emit, _) = self.stops.push(&rest);
            out.text.push_str(&emit);
            if !self.stops.stopped() {
                out.text.push_str(&self.stops.finish());
            }
        }
        out.done = Some(reason);
    }

    /// Why it ended, once it has.
    pub fn done(&self) -> Option<DoneReason> {
        self.done
    }

    /// The sampled tokens so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The prompt.
    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }

    /// Prompt tokens reused from the cache.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// The tokens the sequence's cache holds now, in order (the prompt prefix fed so far,
    /// then every generated token that was fed back).
    pub fn cached_tokens(&self) -> Vec<u32> {
        let p = self.fed.min(self.prompt.len());
        let mut v = self.prompt[..p].to_vec();
        v.extend_from_slice(&self.tokens[..self.fed - p]);
        v
    }

    /// Counts and timings as Ollama reports them (`prompt_eval_count` is what was computed).
    pub fn stats(&self) -> Stats {
        let now = Instant::now();
        let since = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), b) => b.unwrap_or(now).saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        Stats {
            prompt_eval_count: self.fed.min(self.prompt.len()) - self.reused,
            prompt_eval_duration: since(self.started, self.prompt_done),
            eval_count: self.tokens.len(),
            eval_duration: since(self.prompt_done, self.ended),
        }
    }
}
