//! Constrained decoding: output that always parses as JSON and, given a schema, always
//! validates against it.
//!
//! - [`Format`]: what a request asks for (any JSON object, or a JSON Schema), checked
//!   against the supported subset by [`schema::check`] (a keyword outside it is an
//!   error that names it).
//! - [`Grammars`]: per model, built once on first use: the vocabulary as a byte trie
//!   (control tokens marked so no grammar admits them) and the compiler of schemas into
//!   token-level matchers. The work is done by `llguidance` (an Earley parser over a
//!   lexer of derivative-based regular expressions, with the mask computed by walking
//!   the token trie); hearth supplies the vocabulary, the subset and the sampling.
//! - [`Constraint`]: per generation. Sampling first draws from the model's distribution
//!   and keeps the token if the grammar admits it; only when it does not is the full
//!   mask computed, every inadmissible logit set to −∞, and the token drawn again. That
//!   is rejection sampling: the result has exactly the distribution of drawing from the
//!   masked logits, and most steps cost one token check instead of a vocabulary walk.
//!
//! Whitespace between JSON tokens is bounded (`WHITESPACE`) so a model cannot loop on
//! spaces or newlines.

pub mod schema;
mod vocab;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use thiserror::Error;

use crate::sampler::Sampler;
use crate::tokenizer::Tokenizer;

/// Whitespace allowed between two JSON tokens: a space or two, or a line break or two
/// and an indent of at most 20 (llama.cpp's JSON grammars bound it alike).
const WHITESPACE: &str = r"[\x20\x09]{1,2}|[\x0A\x0D]{1,2}[\x20\x09]{0,20}";

/// Why a format could not be used.
#[derive(Debug, Error)]
pub enum ConstrainError {
    /// A keyword (or a `format` value, or a form of a keyword) outside the subset.
    #[error("unsupported JSON Schema keyword {keyword} at {path}")]
    Unsupported { keyword: String, path: String },
    /// A schema that is not well formed.
    #[error("invalid JSON Schema: {0}")]
    Schema(String),
    /// The format is neither "json" nor a schema.
    #[error("invalid format {0}: want \"json\" or a JSON schema")]
    Format(String),
    /// The compiler or the matcher failed (an unsatisfiable schema, limits).
    #[error("structured output failed: {0}")]
    Matcher(String),
}

/// What shape the output must have.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    /// Any JSON object (Ollama's `"json"`, OpenAI's `json_object`).
    Json,
    /// A document valid against this JSON Schema.
    Schema(Value),
    /// A grammar in llguidance's Lark dialect, JSON Schemas inside it (`%json {…}`) given
    /// [`with_options`]. Made by hearth (forced tool calls), never taken from a request.
    Grammar(String),
}

/// Puts hearth's matcher options (bounded whitespace; `oneOf` as `anyOf`) into a schema.
pub fn with_options(schema: &mut Value) {
    if let Value::Object(o) = schema {
        o.insert(
            "x-guidance".into(),
            serde_json::json!({
                "whitespace_pattern": WHITESPACE,
                "coerce_one_of": true,
            }),
        );
    }
}

impl Format {
    /// A checked schema.
    pub fn schema(s: Value) -> Result<Format, ConstrainError> {
        if s == Value::Bool(false) {
            return Err(ConstrainError::Schema(
                "the schema `false` admits no document".into(),
            ));
        }
        schema::check(&s)?;
        Ok(Format::Schema(s))
    }

    /// Ollama's `format` field: absent, `null` or `""` is none; `"json"`; a schema.
    pub fn from_ollama(v: Option<&Value>) -> Result<Option<Format>, ConstrainError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s == "json" => Ok(Some(Format::Json)),
            Some(s @ Value::Object(_)) => Format::schema(s.clone()).map(Some),
            Some(other) => Err(ConstrainError::Format(truncated(other))),
        }
    }

    fn to_grammar(&self) -> TopLevelGrammar {
        let mut s = match self {
            Format::Json => schema::any_object(),
            Format::Schema(s) => s.clone(),
            Format::Grammar(g) => return TopLevelGrammar::from_lark(g.clone()),
        };
        // `true`: an object for the options to go in (`false` was refused).
        if s.is_boolean() {
            s = serde_json::json!({});
        }
        with_options(&mut s);
        TopLevelGrammar::from_json_schema(s)
    }
}

fn truncated(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A model's vocabulary prepared for matching, built on first use and shared by its
/// generations.
pub struct Grammars {
    tokenizer: Arc<Tokenizer>,
    n_vocab: usize,
    factory: OnceLock<Result<Arc<ParserFactory>, String>>,
}

impl Grammars {
    /// For a model with this tokenizer and `n_vocab` logits.
    pub fn new(tokenizer: Arc<Tokenizer>, n_vocab: usize) -> Grammars {
        Grammars {
            tokenizer,
            n_vocab,
            factory: OnceLock::new(),
        }
    }

    fn factory(&self) -> Result<&Arc<ParserFactory>, ConstrainError> {
        self.factory
            .get_or_init(|| vocab::factory(&self.tokenizer, self.n_vocab).map(Arc::new))
            .as_ref()
            .map_err(|e| ConstrainError::Matcher(e.clone()))
    }

    /// A matcher for one generation (compiles the format: do it off the stepping thread).
    pub fn constraint(&self, format: &Format) -> Result<Constraint, ConstrainError> {
        let factory = self.factory()?;
        let grammar = format.to_grammar();
        let parser = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            factory.create_parser(grammar)
        }))
        .map_err(|_| ConstrainError::Matcher("the schema compiler failed".into()))?
        .map_err(|e| ConstrainError::Matcher(first_line(&e.to_string())))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(ConstrainError::Matcher(first_line(&e)));
        }
        Ok(Constraint {
            matcher: Box::new(matcher),
            stats: ConstraintStats::default(),
        })
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// How much work a constraint did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConstraintStats {
    /// Tokens chosen.
    pub tokens: usize,
    /// Of those, how many needed the full mask (the first draw was inadmissible).
    pub masks: usize,
    /// Time spent computing masks.
    pub mask_time: Duration,
    /// Time spent in the matcher in all (checks, masks, advancing).
    pub total_time: Duration,
}

/// One generation's matcher.
pub struct Constraint {
    /// Boxed: a matcher is large, and constraints travel in queued jobs.
    matcher: Box<Matcher>,
    stats: ConstraintStats,
}

impl Constraint {
    /// Chooses the next token from `logits` (penalized and, when needed, masked in
    /// place) and advances the matcher past it. An end-of-generation token is chosen
    /// only where the document may end.
    pub fn sample(
        &mut self,
        sampler: &mut Sampler,
        logits: &mut [f32],
        tok: &Tokenizer,
    ) -> Result<u32, ConstrainError> {
        let t0 = Instant::now();
        sampler.penalize(logits);
        let first = sampler.pick(logits);
        let chosen = if self.admits(first, tok)? {
            first
        } else {
            let t1 = Instant::now();
            self.mask(logits, tok)?;
            self.stats.masks += 1;
            self.stats.mask_time += t1.elapsed();
            sampler.pick(logits)
        };
        if !tok.is_eog(chosen) {
            let n = self.matcher.try_consume_tokens(&[chosen]).map_err(err)?;
            if n != 1 {
                return Err(ConstrainError::Matcher(format!(
                    "token {chosen} was chosen but not admitted"
                )));
            }
        }
        self.stats.tokens += 1;
        self.stats.total_time += t0.elapsed();
        Ok(chosen)
    }

    /// Whether the document is complete and nothing more may follow it.
    pub fn finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// What the matcher has cost so far.
    pub fn stats(&self) -> ConstraintStats {
        self.stats
    }

    /// The full mask, for measuring (`examples/constrain_bench`): the admissible tokens.
    pub fn admissible(&mut self) -> Result<usize, ConstrainError> {
        Ok(self.matcher.compute_mask().map_err(err)?.num_set())
    }

    /// Advances past `token` without sampling (for measuring and tests).
    pub fn force(&mut self, token: u32) -> Result<bool, ConstrainError> {
        Ok(self.matcher.try_consume_tokens(&[token]).map_err(err)? == 1)
    }

    fn admits(&mut self, t: u32, tok: &Tokenizer) -> Result<bool, ConstrainError> {
        if tok.is_eog(t) {
            return self.matcher.is_accepting().map_err(err);
        }
        Ok(self.matcher.validate_tokens(&[t]).map_err(err)? == 1)
    }

    /// Sets every inadmissible logit to −∞ (end-of-generation tokens are admissible
    /// exactly where the document may end). When every admissible token already had a
    /// logit of −∞, the first admissible one is given 0 so the draw cannot leave the
    /// grammar.
    fn mask(&mut self, logits: &mut [f32], tok: &Tokenizer) -> Result<(), ConstrainError> {
        let mask = self.matcher.compute_mask().map_err(err)?;
        let accepting = self.matcher.is_accepting().map_err(err)?;
        let eog: Vec<(usize, f32)> = tok
            .eog_ids()
            .into_iter()
            .filter_map(|e| logits.get(e as usize).map(|&l| (e as usize, l)))
            .collect();
        for (i, l) in logits.iter_mut().enumerate() {
            if !mask.is_allowed(i as u32) {
                *l = f32::NEG_INFINITY;
            }
        }
        for &(i, l) in &eog {
            logits[i] = if accepting { l } else { f32::NEG_INFINITY };
        }
        let admissible = |i: usize| {
            if eog.iter().any(|&(e, _)| e == i) {
                accepting
            } else {
                mask.is_allowed(i as u32)
            }
        };
        if logits.iter().any(|&l| l > f32::NEG_INFINITY) {
            return Ok(());
        }
        match (0..logits.len()).find(|&i| admissible(i)) {
            Some(i) => {
                logits[i] = 0.0;
                Ok(())
            }
            None => Err(ConstrainError::Matcher(
                "no token can continue the document".into(),
            )),
        }
    }
}

fn err(e: anyhow::Error) -> ConstrainError {
    ConstrainError::Matcher(first_line(&e.to_string()))
}
