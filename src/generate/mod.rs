//! Generation: everything between a loaded model and text, shared by `hearth run` and
//! `hearth serve`.
//!
//! - [`load`]: a model as a client names it (a file, or a store name with its template,
//!   system, parameter and message layers), the option precedence (defaults, then the
//!   model's parameters, then the request), and [`Loaded`]: engine, tokenizer, template.
//! - [`sequence`]: [`Generation`], one generation as a state machine (next input ids;
//!   logits in, text events and a done reason out). `run` steps one; the server's
//!   scheduler steps many in one engine step.
//! - [`embed`]: an embedding model's inputs fitted to its context, and its vectors
//!   finished (cut to `dimensions`, normalised).
//! - [`Session`] (here): one engine sequence that remembers which tokens its KV cache
//!   holds, so the next prompt of a conversation (the whole conversation rendered again)
//!   only prefills what differs from the cache: usually just the new turn.

pub mod embed;
pub mod load;
pub mod logprobs;
pub mod output;
pub mod sequence;
pub mod thinking;
pub mod tools;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::{Engine, EngineError, Logits, SeqId, StepInput};
use crate::sampler::SamplerOptions;
use crate::tokenizer::Tokenizer;

pub use load::{open_model, LoadOptions, Loaded, ModelSource};
pub use sequence::{Accepted, Generation};

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
        turn: Turn,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> Result<Outcome, GenerateError> {
        let prompt = turn.prompt;
        let cached = common_prefix(&self.cached, prompt);
        let num_ctx = engine.sequence_ctx(self.seq);
        let mut g = Generation::new(
            prompt.to_vec(),
            cached,
            turn.sampling,
            engine.n_vocab(),
            num_ctx,
        )?;
        if let Some(c) = turn.constraint {
            g = g.with_constraint(c);
        }
        engine.truncate(self.seq, g.keep());
        self.cached.truncate(g.keep());
        let mut logits = vec![0.0f32; engine.n_vocab()];
        let emit = |text: &str, on_text: &mut dyn FnMut(&str) -> std::io::Result<()>| {
            if text.is_empty() {
                Ok(())
            } else {
                on_text(text).map_err(GenerateError::Output)
            }
        };
        let done_reason = loop {
            // The whole prompt in one step (the engine splits it into micro-batches).
            let input = g.next_input(usize::MAX);
            let n = input.len();
            let want = g.wants_logits(n);
            if let Err(e) = engine.step(&[StepInput {
                seq: self.seq,
                tokens: input,
                logits: if want { Logits::Last } else { Logits::None },
            }]) {
                // The engine validated before changing anything.
                return Err(e.into());
            }
            self.cached.extend_from_slice(input);
            g.fed(n);
            if cancel.load(Ordering::Relaxed) {
                emit(&g.cancel(), on_text)?;
                break DoneReason::Cancelled;
            }
            logits.copy_from_slice(engine.logits(0));
            let out = g.accept(&mut logits, tok);
            emit(&out.text, on_text)?;
            if let Some(reason) = out.done {
                break reason;
            }
        };
        Ok(Outcome {
            done_reason,
            stats: g.stats(),
            tokens: g.tokens().to_vec(),
        })
    }
}

/// What one [`Session::generate`] answers: the prompt's ids (BOS included if wanted),
/// the sampling options, and the structured output's matcher if any.
pub struct Turn<'a> {
    pub prompt: &'a [u32],
    pub sampling: &'a SamplerOptions,
    pub constraint: Option<crate::constrain::Constraint>,
}

impl<'a> Turn<'a> {
    /// Free text.
    pub fn new(prompt: &'a [u32], sampling: &'a SamplerOptions) -> Turn<'a> {
        Turn {
            prompt,
            sampling,
            constraint: None,
        }
    }
}

/// How many leading tokens two sequences share.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
