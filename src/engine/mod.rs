//! The engine: a loaded model plus its sequences, and [`Engine::step`], the one place
//! where tokens are computed.
//!
//! A step takes a batch of (sequence, tokens) entries, so prefilling one prompt and
//! decoding one token for each of many sequences go through the same forward pass. Each
//! sequence owns its KV cache, sized for `num_ctx` positions when it is created (the
//! pages are only touched as positions fill). Scratch buffers are allocated once for
//! the largest micro-batch, so the decode loop allocates nothing per token.

mod encode;
mod forward;
mod kv;
mod moe;

use crate::model::Model;

pub use kv::Sequence;

/// Engine settings fixed at creation.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Context length per sequence (0: 4096, or the model's trained length if smaller).
    pub num_ctx: usize,
    /// Most tokens computed in one forward pass; longer steps are split.
    pub batch: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            num_ctx: 0,
            batch: 512,
        }
    }
}

/// A sequence's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqId(usize);

/// Which logits a step entry wants back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    None,
    /// After the entry's last token (what generation needs).
    Last,
    /// After every token of the entry (teacher forcing, perplexity).
    All,
}

/// One entry of a step.
#[derive(Clone, Copy, Debug)]
pub struct StepInput<'a> {
    pub seq: SeqId,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown sequence")]
    UnknownSequence,
    #[error(
        "context full: the sequence holds {len} tokens and {adding} more exceed num_ctx {num_ctx}"
    )]
    ContextFull {
        len: usize,
        adding: usize,
        num_ctx: usize,
    },
    #[error("token id {id} is outside the vocabulary ({n_vocab})")]
    BadToken { id: u32, n_vocab: usize },
    #[error("a sequence appears twice in one step")]
    DuplicateSequence,
    #[error("this model does not generate text: it is an embedding model")]
    NotGenerative,
    #[error("this model does not make embeddings (it has no pooling)")]
    NotEmbedding,
    #[error("an input to embed is empty")]
    EmptyInput,
    #[error("an input of {len} tokens exceeds the model's context of {max}")]
    InputTooLong { len: usize, max: usize },
}

/// Bytes of KV cache (keys and values, f16) for `num_ctx` positions of a model.
pub fn kv_bytes(c: &crate::model::Config, num_ctx: usize) -> u64 {
    2 * 2 * (c.n_layer as u64) * (c.kv_dim() as u64) * num_ctx as u64
}

/// What a model takes in memory once loaded and serving: the scheduler's plan for
/// placing models (compared against what the system has before a load).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The mapped weights (the whole file: every tensor is read by a forward pass).
    pub weights: u64,
    /// Keys and values of every sequence when full.
    pub kv: u64,
    /// Activation buffers at the largest micro-batch, and logits.
    pub compute: u64,
}

impl MemoryEstimate {
    /// `n_seq` sequences of `num_ctx` positions over a model whose file is `file_bytes`.
    pub fn new(model: &Model, file_bytes: u64, num_ctx: usize, n_seq: usize) -> MemoryEstimate {
        let c = &model.config;
        let f = |n: usize| 4 * n as u64;
        if model.encoder.is_some() {
            // An encoder caches nothing; its buffers grow with the longest input.
            let t = num_ctx.min(c.n_ctx_train.max(1));
            let per_token = 6 * c.n_embd + 2 * c.n_ff + c.n_head * t;
            return MemoryEstimate {
                weights: file_bytes,
                kv: 0,
                compute: f(t * per_token),
            };
        }
        let cap = EngineOptions::default().batch;
        let moe = c.moe.as_ref().map_or(0, |m| 2 * m.n_used * m.n_ff);
        // Mirrors forward::Scratch: x, xb, q, k, v, att, gate, up, two rope tables.
        let per_token = 2 * c.n_embd
            + 2 * c.q_dim().max(c.n_embd)
            + 2 * c.kv_dim()
            + 2 * c.n_ff
            + moe
            + 2 * c.n_rot;
        MemoryEstimate {
            weights: file_bytes,
            kv: kv_bytes(c, num_ctx) * n_seq as u64,
            compute: f(cap * per_token) + f(c.n_vocab * n_seq.max(1)),
        }
    }

    pub fn total(&self) -> u64 {
        self.weights + self.kv + self.compute
    }
}

/// A model with its sequences.
pub struct Engine {
    model: Model,
    num_ctx: usize,
    batch: usize,
    seqs: Vec<Option<Sequence>>,
    scratch: forward::Scratch,
    /// Logit rows of the last step, `n_vocab` each, in the order requested.
    logits: Vec<f32>,
    n_logit_rows: usize,
    /// The micro-batch being built (kept to reuse its allocation).
    ubatch: Vec<forward::Token>,
    encode: encode::EncodeScratch,
}

impl Engine {
    pub fn new(model: Model, opts: EngineOptions) -> Engine {
        let c = &model.config;
        let num_ctx = match opts.num_ctx {
            0 => 4096.min(c.n_ctx_train.max(1)),
            n => n,
        };
        let batch = opts.batch.clamp(1, 4096);
        // An encoder never runs the decoder pass: its scratch grows in `embed` instead.
        let scratch = forward::Scratch::new(
            &model,
            if model.encoder.is_some() { 1 } else { batch },
            num_ctx,
        );
        Engine {
            model,
            num_ctx,
            batch,
            seqs: Vec::new(),
            scratch,
            logits: Vec::new(),
            n_logit_rows: 0,
            ubatch: Vec::with_capacity(batch),
            encode: encode::EncodeScratch::default(),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn num_ctx(&self) -> usize {
        self.num_ctx
    }

    pub fn n_vocab(&self) -> usize {
        self.model.config.n_vocab
    }

    /// Whether the model is an encoder (embeddings only, no generation).
    pub fn is_encoder(&self) -> bool {
        self.model.encoder.is_some()
    }

    /// Most tokens one input to [`embed`](Self::embed) may have.
    pub fn embed_max_tokens(&self) -> usize {
        let c = &self.model.config;
        match self
            .model
            .encoder
            .as_ref()
            .and_then(|e| e.pos_embd.as_ref())
        {
            Some(p) => p.rows.min(self.num_ctx),
            None => self.num_ctx.min(c.n_ctx_train.max(1)),
        }
    }

    /// Embeds whole inputs in one pass (an encoder model): `out[i]` becomes input i's
    /// pooled vector, `n_embd` values, not normalised. Nothing is cached afterwards.
    pub fn embed(&mut self, inputs: &[&[u32]], out: &mut Vec<Vec<f32>>) -> Result<(), EngineError> {
        let Some(enc) = self.model.encoder.as_ref() else {
            return Err(EngineError::NotEmbedding);
        };
        if enc.pooling == crate::model::Pooling::None {
            return Err(EngineError::NotEmbedding);
        }
        let (n_vocab, max) = (self.n_vocab(), self.embed_max_tokens());
        for t in inputs {
            if t.is_empty() {
                return Err(EngineError::EmptyInput);
            }
            if t.len() > max {
                return Err(EngineError::InputTooLong { len: t.len(), max });
            }
            if let Some(&id) = t.iter().find(|&&id| id as usize >= n_vocab) {
                return Err(EngineError::BadToken { id, n_vocab });
            }
        }
        out.resize_with(inputs.len(), Vec::new);
        encode::encode(&self.model, &mut self.encode, inputs, out);
        Ok(())
    }

    /// A new, empty sequence holding up to the engine's `num_ctx` positions.
    pub fn add_sequence(&mut self) -> SeqId {
        self.add_sequence_with_ctx(self.num_ctx)
    }

    /// A new, empty sequence holding up to `num_ctx` positions (its own context length:
    /// sequences of one engine may differ).
    pub fn add_sequence_with_ctx(&mut self, num_ctx: usize) -> SeqId {
        let s = Sequence::new(&self.model.config, num_ctx.max(1));
        match self.seqs.iter().position(Option::is_none) {
            Some(i) => {
                self.seqs[i] = Some(s);
                SeqId(i)
            }
            None => {
                self.seqs.push(Some(s));
                SeqId(self.seqs.len() - 1)
            }
        }
    }

    /// Frees a sequence and its cache.
    pub fn remove_sequence(&mut self, id: SeqId) {
        if let Some(s) = self.seqs.get_mut(id.0) {
            *s = None;
        }
    }

    /// The context length of a sequence (0 for an unknown one).
    pub fn sequence_ctx(&self, id: SeqId) -> usize {
        self.seq(id).map_or(0, |s| s.cap)
    }

    /// Bytes of KV cache a sequence of `num_ctx` positions takes when full.
    pub fn kv_bytes(&self, num_ctx: usize) -> u64 {
        kv_bytes(&self.model.config, num_ctx)
    }

    /// Tokens held by a sequence (0 for an unknown one).
    pub fn sequence_len(&self, id: SeqId) -> usize {
        self.seq(id).map_or(0, |s| s.len)
    }

    /// Makes `dst` hold the first `n` positions of `src` (a shared prefix: a system
    /// prompt another sequence already computed), copying their keys and values. `n` is
    /// clamped to what `src` holds and `dst` can hold; returns the positions copied.
    pub fn copy_prefix(&mut self, src: SeqId, dst: SeqId, n: usize) -> usize {
        if src == dst {
            return n.min(self.sequence_len(src));
        }
        let Some(mut d) = self.seqs.get_mut(dst.0).and_then(Option::take) else {
            return 0;
        };
        let copied = match self.seq(src) {
            Some(s) => {
                d.copy_prefix_from(s, n);
                d.len
            }
            None => 0,
        };
        self.seqs[dst.0] = Some(d);
        copied
    }

    /// Forgets every position from `len` on (e.g. 0 to start over).
    pub fn truncate(&mut self, id: SeqId, len: usize) {
        if let Some(Some(s)) = self.seqs.get_mut(id.0) {
            s.len = s.len.min(len);
        }
    }

    fn seq(&self, id: SeqId) -> Option<&Sequence> {
        self.seqs.get(id.0).and_then(Option::as_ref)
    }

    /// Runs the model over every entry's tokens, appending them to their sequences.
    ///
    /// The whole step is validated before anything changes; afterwards
    /// [`logits`](Self::logits) returns the requested rows in entry order.
    pub fn step(&mut self, inputs: &[StepInput<'_>]) -> Result<(), EngineError> {
        if self.is_encoder() {
            return Err(EngineError::NotGenerative);
        }
        let n_vocab = self.n_vocab();
        let mut n_rows = 0;
        for (i, e) in inputs.iter().enumerate() {
            let s = self.seq(e.seq).ok_or(EngineError::UnknownSequence)?;
            if inputs[..i].iter().any(|p| p.seq == e.seq) {
                return Err(EngineError::DuplicateSequence);
            }
            if s.len + e.tokens.len() > s.cap {
                return Err(EngineError::ContextFull {
                    len: s.len,
                    adding: e.tokens.len(),
                    num_ctx: s.cap,
                });
            }
            if let Some(&id) = e.tokens.iter().find(|&&t| t as usize >= n_vocab) {
                return Err(EngineError::BadToken { id, n_vocab });
            }
            n_rows += match e.logits {
                Logits::None => 0,
                Logits::Last => usize::from(!e.tokens.is_empty()),
                Logits::All => e.tokens.len(),
            };
        }
        if self.logits.len() < n_rows * n_vocab {
            self.logits.resize(n_rows * n_vocab, 0.0);
        }
        self.n_logit_rows = n_rows;

        // Flatten into micro-batches of at most `batch` tokens.
        let mut ubatch = std::mem::take(&mut self.ubatch);
        ubatch.clear();
        let mut row = 0;
        for e in inputs {
            let base = self.seq(e.seq).map_or(0, |s| s.len);
            for (i, &t) in e.tokens.iter().enumerate() {
                let last = i + 1 == e.tokens.len();
                let want = match e.logits {
                    Logits::None => false,
                    Logits::Last => last,
                    Logits::All => true,
                };
                ubatch.push(forward::Token {
                    seq: e.seq.0,
                    pos: base + i,
                    id: t,
                    logits_row: want.then(|| {
                        row += 1;
                        row - 1
                    }),
                });
                if ubatch.len() == self.batch {
                    self.run(&ubatch);
                    ubatch.clear();
                }
            }
        }
        if !ubatch.is_empty() {
            self.run(&ubatch);
        }
        self.ubatch = ubatch;
        for e in inputs {
            if let Some(Some(s)) = self.seqs.get_mut(e.seq.0) {
                s.len += e.tokens.len();
            }
        }
        Ok(())
    }

    fn run(&mut self, tokens: &[forward::Token]) {
        forward::forward(
            &self.model,
            &mut self.seqs,
            &mut self.scratch,
            tokens,
            &mut self.logits,
        );
    }

    /// Row `i` of the logits the last step produced (`n_vocab` values).
    pub fn logits(&self, i: usize) -> &[f32] {
        let n = self.n_vocab();
        if i >= self.n_logit_rows {
            return &[];
        }
        &self.logits[i * n..(i + 1) * n]
    }

    /// How many logit rows the last step produced.
    pub fn n_logit_rows(&self) -> usize {
        self.n_logit_rows
    }
}
