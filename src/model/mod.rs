//! Models: hyper-parameters read from GGUF metadata, and weights bound as views into
//! the file's memory map (norm vectors and biases, a few KB, are the only copies).
//!
//! One decoder-only transformer shape covers the supported families; each family's file
//! (`llama.rs`, `qwen2.rs`, `qwen3.rs`, `phi3.rs`, `gemma2.rs`, `gemma3.rs`, `granite.rs`)
//! says which of its optional parts a model has ([`Features`]) and reads its
//! family-specific keys; `layer.rs` binds a block (fused tensors and mixtures of experts
//! included). The engine runs the one forward pass over that description. Encoders (BERT family, `encoder.rs`) share the embeddings
//! and config but have their own blocks ([`Model::encoder`]), run by `Engine::embed`.

mod describe;
mod encoder;
mod gemma2;
mod gemma3;
mod granite;
mod layer;
mod llama;
mod phi3;
mod qwen2;
mod qwen3;

use std::path::Path;
use std::sync::Arc;

use crate::gguf::{GgufError, GgufFile, TensorInfo};
use crate::ops::matmul::MatrixError;
use crate::ops::QMatrix;
use crate::quant::{dequantize_row, GgmlType};

pub use encoder::{Encoder, EncoderFfn, EncoderLayer, LayerNorm, Pooling};
pub use layer::{Expert, FeedForward, Layer, Moe, MoeConfig};

/// The decoder architectures hearth runs (`general.architecture`).
pub const DECODERS: [&str; 9] = [
    "llama",
    "qwen2",
    "qwen3",
    "qwen3moe",
    "phi3",
    "gemma2",
    "gemma3",
    "granite",
    "granitemoe",
];

/// What can go wrong binding a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(
        "architecture '{0}' is not supported by hearth (supported: llama, qwen2, qwen3, qwen3moe, phi3, gemma2, gemma3, granite, granitemoe, bert, nomic-bert)"
    )]
    UnknownArchitecture(String),
    #[error("the file has no general.architecture")]
    NoArchitecture,
    #[error("metadata key '{0}' is missing")]
    MissingKey(String),
    #[error("tensor '{0}' is missing")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {got:?}, expected {expected:?}")]
    Shape {
        name: String,
        got: Vec<u64>,
        expected: Vec<u64>,
    },
    #[error("tensor '{name}': {source}")]
    Matrix {
        name: String,
        #[source]
        source: MatrixError,
    },
    #[error("tensor '{name}' has type {ty}, which hearth cannot compute with")]
    UnsupportedType { name: String, ty: GgmlType },
    #[error("invalid hyper-parameters: {0}")]
    Invalid(String),
    #[error("{0} is not supported yet")]
    Unsupported(String),
}

/// Which activation the gated feed-forward block uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: `silu(gate) * up`.
    Silu,
    /// GeGLU with the tanh approximation: `gelu(gate) * up`.
    GeluTanh,
}

/// The optional parts of the transformer, chosen per family.
#[derive(Clone, Debug)]
pub struct Features {
    /// NEOX rope pairing (`x[i], x[i + n/2]`) instead of the normal one (`x[2i], x[2i+1]`).
    pub rope_neox: bool,
    pub activation: Activation,
    /// Token embeddings are multiplied by this (Gemma: `sqrt(n_embd)`).
    pub embed_scale: Option<f32>,
    /// Per-head RMSNorm of Q and K before rope (Gemma 3).
    pub qk_norm: bool,
    /// RMSNorm of the attention and FFN outputs before the residual add (Gemma 2/3).
    pub post_norms: bool,
    /// Q/K/V biases must be present (Qwen2). They are used when present in any family.
    pub qkv_bias_required: bool,
    /// Gate and up are one `ffn_up` matrix of `2 n_ff` rows, the gate's first (Phi-3).
    pub fused_gate_up: bool,
    /// Multiplies q·k.
    pub attn_scale: f32,
    /// `score = cap * tanh(score / cap)` on the scaled attention scores (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// Sliding-window attention: the window and which layers use it.
    pub swa: Option<SlidingWindow>,
    /// Rope base of sliding-window layers (Gemma 3: 10000).
    pub rope_base_swa: Option<f32>,
    /// Multiplies the rotated values (Phi-3's longrope `attn_factor`; 1 elsewhere).
    pub rope_attn_factor: f32,
    /// Multiplies each sublayer's output before the residual add (Granite).
    pub residual_scale: Option<f32>,
    /// `logits = cap * tanh(logits / cap)`.
    pub final_softcap: Option<f32>,
    /// Divides the logits (Granite).
    pub logit_scale: Option<f32>,
}

#[derive(Clone, Debug)]
pub struct SlidingWindow {
    pub window: usize,
    /// `layers[l]`: layer l attends only within the window (and uses the SWA rope base).
    pub layers: Vec<bool>,
}

/// Hyper-parameters.
#[derive(Clone, Debug)]
pub struct Config {
    pub arch: String,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    pub rope_scale: f32,
    pub n_rot: usize,
    pub features: Features,
    /// Mixture-of-experts sizes (Qwen3-MoE); `None` for dense models.
    pub moe: Option<MoeConfig>,
}

impl Config {
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}

/// A matrix's place in the file (bound once; sliced on use).
#[derive(Clone, Copy, Debug)]
pub struct Mat {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    start: usize,
    len: usize,
}

impl Mat {
    /// Rows `first..first + n` of this matrix, itself a matrix (rows are contiguous).
    /// The caller keeps the range within `rows`.
    pub(crate) fn rows_range(&self, first: usize, n: usize) -> Mat {
        debug_assert!(first + n <= self.rows);
        let row_bytes = self.len / self.rows.max(1);
        Mat {
            rows: n,
            start: self.start + first * row_bytes,
            len: n * row_bytes,
            ..*self
        }
    }
}

/// Phi-3's long and short rope factors and the context length that chooses between them.
#[derive(Clone, Debug)]
pub struct RopeFactors {
    pub long: Vec<f32>,
    pub short: Vec<f32>,
    /// `rope.scaling.original_context_length`: contexts longer than this use `long`.
    pub n_ctx_orig: usize,
}

/// A loaded model: the mapped file, its hyper-parameters and bound weights.
pub struct Model {
    file: Arc<GgufFile>,
    pub config: Config,
    pub tok_embd: Mat,
    pub output: Mat,
    pub output_norm: Vec<f32>,
    pub rope_freqs: Option<Vec<f32>>,
    /// Long/short rope factors (Phi-3); see [`Model::rope_freqs_for`].
    pub rope_factors: Option<RopeFactors>,
    /// Decoder blocks (empty for an encoder).
    pub layers: Vec<Layer>,
    /// An encoder's blocks; `None` for the decoders (which generate).
    pub encoder: Option<Encoder>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .finish()
    }
}

/// Reads hyper-parameter keys under the architecture's prefix.
pub(crate) struct Keys<'f> {
    pub f: &'f GgufFile,
    pub arch: &'f str,
}

impl Keys<'_> {
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }
    pub fn opt_u32(&self, k: &str) -> Result<Option<usize>, ModelError> {
        Ok(self.f.get_u32(&self.key(k))?.map(|v| v as usize))
    }
    pub fn u32(&self, k: &str) -> Result<usize, ModelError> {
        self.opt_u32(k)?
            .ok_or_else(|| ModelError::MissingKey(self.key(k)))
    }
    pub fn opt_f32(&self, k: &str) -> Result<Option<f32>, ModelError> {
        Ok(self.f.get_f32(&self.key(k))?)
    }
}

impl Model {
    /// Maps and binds the model at `path`.
    pub fn open(path: &Path) -> Result<Model, ModelError> {
        Model::load(Arc::new(GgufFile::open(path)?))
    }

    /// Binds an opened file.
    pub fn load(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let arch = file
            .architecture()?
            .ok_or(ModelError::NoArchitecture)?
            .to_string();
        if !DECODERS.contains(&arch.as_str()) && !encoder::is_encoder(&arch) {
            return Err(ModelError::UnknownArchitecture(arch));
        }
        let keys = Keys {
            f: &file,
            arch: &arch,
        };
        let n_embd = keys.u32("embedding_length")?;
        let n_layer = keys.u32("block_count")?;
        let n_head = keys.u32("attention.head_count")?;
        let n_head_kv = keys.opt_u32("attention.head_count_kv")?.unwrap_or(n_head);
        if n_embd == 0 || n_layer == 0 || n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(ModelError::Invalid(format!(
                "embedding {n_embd}, layers {n_layer}, heads {n_head}, kv heads {n_head_kv}"
            )));
        }
        let head_dim = keys
            .opt_u32("attention.key_length")?
            .unwrap_or(n_embd / n_head);
        let v_dim = keys.opt_u32("attention.value_length")?.unwrap_or(head_dim);
        if v_dim != head_dim || head_dim == 0 || head_dim > 1024 {
            return Err(ModelError::Unsupported(format!(
                "key length {head_dim} with value length {v_dim}"
            )));
        }
        let n_rot = keys.opt_u32("rope.dimension_count")?.unwrap_or(head_dim);
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(ModelError::Invalid(format!(
                "rope dimension {n_rot} for heads of {head_dim}"
            )));
        }
        let rope_scale = match file.get_str(&keys.key("rope.scaling.type"))? {
            None | Some("none") => 1.0,
            Some("linear") => {
                let factor = keys.opt_f32("rope.scaling.factor")?.unwrap_or(1.0);
                if factor.is_nan() || factor <= 0.0 {
                    return Err(ModelError::Invalid(format!("rope scaling factor {factor}")));
                }
                1.0 / factor
            }
            // Llama 3.x's scaling reaches GGUF as the rope_freqs tensor, Phi-3's as the
            // rope_factors_long/short tensors (read below).
            Some("llama3") | Some("longrope") => 1.0,
            Some(other) => return Err(ModelError::Unsupported(format!("rope scaling '{other}'"))),
        };
        let mut encoder_keys = None;
        let features = match arch.as_str() {
            "bert" | "nomic-bert" => {
                encoder_keys = Some(encoder::read_keys(&keys)?);
                // Only the rope pairing applies (NEOX for the BERT family, as llama.cpp).
                Features {
                    rope_neox: true,
                    ..llama::features(head_dim)
                }
            }
            "llama" => llama::features(head_dim),
            "qwen2" => qwen2::features(head_dim),
            "qwen3" | "qwen3moe" => qwen3::features(head_dim),
            "phi3" => phi3::features(&keys, head_dim)?,
            "gemma2" => gemma2::features(&keys, n_layer, n_embd, n_head, head_dim)?,
            "gemma3" => gemma3::features(&keys, n_layer, n_embd, n_head, head_dim)?,
            "granite" | "granitemoe" => granite::features(&keys, head_dim)?,
            _ => return Err(ModelError::UnknownArchitecture(arch)),
        };
        let tok_embd = file
            .tensor("token_embd.weight")
            .ok_or_else(|| ModelError::MissingTensor("token_embd.weight".into()))?;
        let n_vocab = tok_embd.n_rows() as usize;
        let moe = match arch.as_str() {
            "qwen3moe" | "granitemoe" => Some(read_moe(&keys)?),
            _ => None,
        };
        // A mixture's FFN width is each expert's (the dense key, if any, goes unused).
        let n_ff = match moe {
            Some(m) => m.n_ff,
            None => keys.u32("feed_forward_length")?,
        };
        if n_ff == 0 || n_ff > 1 << 20 {
            return Err(ModelError::Invalid(format!("feed-forward length {n_ff}")));
        }
        let n_ctx_orig = keys.opt_u32("rope.scaling.original_context_length")?;
        let config = Config {
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_ctx_train: keys.opt_u32("context_length")?.unwrap_or(2048),
            rms_eps: keys
                .opt_f32("attention.layer_norm_rms_epsilon")?
                .unwrap_or(1e-5),
            rope_base: keys.opt_f32("rope.freq_base")?.unwrap_or(10000.0),
            rope_scale,
            n_rot,
            features,
            moe,
            arch,
        };
        let b = Binder {
            f: &file,
            c: &config,
        };
        let tok_embd = b.mat("token_embd.weight", n_embd, n_vocab)?;
        if let Some((pooling, eps)) = encoder_keys {
            let encoder = b.encoder(pooling, eps)?;
            return Ok(Model {
                config,
                tok_embd,
                output: tok_embd,
                output_norm: Vec::new(),
                rope_freqs: None,
                rope_factors: None,
                layers: Vec::new(),
                encoder: Some(encoder),
                file,
            });
        }
        let output = match file.tensor("output.weight") {
            Some(_) => b.mat("output.weight", n_embd, n_vocab)?,
            None => tok_embd,
        };
        let output_norm = b.vector("output_norm.weight", n_embd)?;
        let rope_freqs = b.opt_vector("rope_freqs.weight", n_rot / 2)?;
        let rope_factors = match (
            b.opt_vector("rope_factors_long.weight", n_rot / 2)?,
            b.opt_vector("rope_factors_short.weight", n_rot / 2)?,
        ) {
            (Some(long), Some(short)) => Some(RopeFactors {
                long,
                short,
                n_ctx_orig: n_ctx_orig.unwrap_or(config.n_ctx_train),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ModelError::MissingTensor(
                    "rope_factors_short.weight".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ModelError::MissingTensor("rope_factors_long.weight".into()))
            }
        };
        let layers = (0..n_layer)
            .map(|i| b.layer(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Model {
            config,
            tok_embd,
            output,
            output_norm,
            rope_freqs,
            rope_factors,
            layers,
            encoder: None,
            file,
        })
    }

    /// The matrix's bytes, viewed in the map.
    pub fn matrix(&self, m: &Mat) -> QMatrix<'_> {
        QMatrix {
            ty: m.ty,
            rows: m.rows,
            cols: m.cols,
            data: &self.file.bytes()[m.start..m.start + m.len],
        }
    }

    /// The rope frequency factors for contexts of `num_ctx` positions: `rope_freqs`
    /// (Llama 3.x), or Phi-3's long factors when `num_ctx` exceeds the original context
    /// and its short ones otherwise (llama.cpp's choice, by context size).
    pub fn rope_freqs_for(&self, num_ctx: usize) -> Option<&[f32]> {
        if let Some(f) = &self.rope_freqs {
            return Some(f);
        }
        self.rope_factors.as_ref().map(|r| {
            if num_ctx > r.n_ctx_orig {
                &r.long[..]
            } else {
                &r.short[..]
            }
        })
    }

    /// The GGUF file the model was bound from.
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// Writes the embedding of `token` (unscaled) into `out` (`n_embd` values).
    pub fn embed(&self, token: u32, out: &mut [f32]) {
        let m = self.matrix(&self.tok_embd);
        // Token ids are checked against n_vocab by the engine; row() is in bounds.
        let _ = dequantize_row(m.ty, m.row(token as usize), out);
    }
}

/// Binds tensors by name, checking shapes and types.
struct Binder<'a> {
    f: &'a GgufFile,
    c: &'a Config,
}

impl Binder<'_> {
    fn tensor(&self, name: &str) -> Result<&TensorInfo, ModelError> {
        self.f
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    fn check_dims(t: &TensorInfo, expected: &[u64]) -> Result<(), ModelError> {
        // Trailing 1s are insignificant (a [n, 1] tensor is a vector).
        let trim = |d: &[u64]| {
            let mut v = d.to_vec();
            while v.len() > 1 && v.last() == Some(&1) {
                v.pop();
            }
            v
        };
        if trim(&t.dims) != trim(expected) {
            return Err(ModelError::Shape {
                name: t.name.clone(),
                got: t.dims.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }

    /// A matrix of `rows` outputs over `cols` inputs (ggml dims `[cols, rows]`).
    fn mat(&self, name: &str, cols: usize, rows: usize) -> Result<Mat, ModelError> {
        let t = self.tensor(name)?;
        Self::check_dims(t, &[cols as u64, rows as u64])?;
        let data = self.f.tensor_data(t);
        QMatrix::new(t.ty, rows, cols, data).map_err(|source| ModelError::Matrix {
            name: name.to_string(),
            source,
        })?;
        Ok(Mat {
            ty: t.ty,
            rows,
            cols,
            start: (self.f.data_offset() + t.offset) as usize,
            len: data.len(),
        })
    }

    /// `n` matrices of `rows` x `cols` stacked in one 3-D tensor (ggml dims
    /// `[cols, rows, n]`), as one matrix of `n * rows` rows.
    fn mat_3d(&self, name: &str, cols: usize, rows: usize, n: usize) -> Result<Mat, ModelError> {
        let t = self.tensor(name)?;
        Self::check_dims(t, &[cols as u64, rows as u64, n as u64])?;
        let all = rows
            .checked_mul(n)
            .ok_or_else(|| ModelError::Invalid(format!("{name}: too large")))?;
        let data = self.f.tensor_data(t);
        QMatrix::new(t.ty, all, cols, data).map_err(|source| ModelError::Matrix {
            name: name.to_string(),
            source,
        })?;
        Ok(Mat {
            ty: t.ty,
            rows: all,
            cols,
            start: (self.f.data_offset() + t.offset) as usize,
            len: data.len(),
        })
    }

    /// A vector (norm weight, bias), copied out as f32.
    fn vector(&self, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
        self.table(name, &[n as u64])
    }

    /// A `[n, rows]` table (e.g. token types), copied out as f32, row after row.
    fn vector_2d(&self, name: &str, n: usize, rows: usize) -> Result<Vec<f32>, ModelError> {
        self.table(name, &[n as u64, rows as u64])
    }

    /// A small tensor of shape `dims`, checked and copied out as f32.
    fn table(&self, name: &str, dims: &[u64]) -> Result<Vec<f32>, ModelError> {
        let t = self.tensor(name)?;
        Self::check_dims(t, dims)?;
        let mut out = vec![0.0; dims.iter().product::<u64>() as usize];
        dequantize_row(t.ty, self.f.tensor_data(t), &mut out).map_err(|_| {
            ModelError::UnsupportedType {
                name: name.to_string(),
                ty: t.ty,
            }
        })?;
        Ok(out)
    }

    fn opt_vector(&self, name: &str, n: usize) -> Result<Option<Vec<f32>>, ModelError> {
        match self.f.tensor(name) {
            Some(_) => self.vector(name, n).map(Some),
            None => Ok(None),
        }
    }
}

/// The mixture-of-experts keys, checked: `expert_count`, `expert_used_count`, each
/// expert's width (Qwen3-MoE: `expert_feed_forward_length`, else `feed_forward_length /
/// expert_used_count`; Granite-MoE: `feed_forward_length`, as llama.cpp reads them) and a
/// shared expert's (`expert_shared_feed_forward_length`, 0 or absent: none).
fn read_moe(keys: &Keys<'_>) -> Result<MoeConfig, ModelError> {
    let n_expert = keys.u32("expert_count")?;
    let n_used = keys.u32("expert_used_count")?;
    if n_expert == 0 || n_expert > 1024 || n_used == 0 || n_used > n_expert {
        return Err(ModelError::Invalid(format!(
            "{n_used} of {n_expert} experts per token"
        )));
    }
    let n_ff = match (keys.arch, keys.opt_u32("expert_feed_forward_length")?) {
        ("qwen3moe", Some(n)) => n,
        ("qwen3moe", None) => keys.u32("feed_forward_length")? / n_used,
        _ => keys.u32("feed_forward_length")?,
    };
    let n_ff_shared = keys
        .opt_u32("expert_shared_feed_forward_length")?
        .unwrap_or(0);
    if n_ff == 0 || n_ff > 1 << 20 || n_ff_shared > 1 << 20 {
        return Err(ModelError::Invalid(format!(
            "expert width {n_ff}, shared expert width {n_ff_shared}"
        )));
    }
    Ok(MoeConfig {
        n_expert,
        n_used,
        n_ff,
        n_ff_shared,
    })
}
