//! BERT-family encoders (`bert`: all-MiniLM, bge; `nomic-bert`: nomic-embed-text): the
//! parts that differ from the decoders, bound from the file.
//!
//! The shape (llama.cpp's BERT graph): token embedding + token-type row 0 (+ a learned
//! position row for `bert`), LayerNorm; then per layer, post-norm: `x = LN(x + attn(x))`,
//! `x = LN(x + ffn(x))`, attention over the whole input (not causal), NEOX rope for
//! `nomic-bert`; the feed-forward is GELU with biases (`bert`) or SwiGLU (`nomic-bert`).
//! The last hidden states are pooled as `*.pooling_type` says.

use super::{Binder, Keys, Mat, ModelError};

/// How token states become one vector per input (`*.pooling_type`, llama.cpp's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// 0: none (per-token states; not an embedding).
    None,
    /// 1: the mean over the input's tokens.
    Mean,
    /// 2: the first token's state (`[CLS]`).
    Cls,
    /// 3: the last token's state.
    Last,
}

impl Pooling {
    fn from_gguf(v: usize) -> Result<Pooling, ModelError> {
        Ok(match v {
            0 => Pooling::None,
            1 => Pooling::Mean,
            2 => Pooling::Cls,
            3 => Pooling::Last,
            4 => return Err(ModelError::Unsupported("rank pooling (rerankers)".into())),
            n => return Err(ModelError::Invalid(format!("pooling type {n}"))),
        })
    }
}

/// A LayerNorm's scale and shift.
#[derive(Debug)]
pub struct LayerNorm {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// The feed-forward block.
#[derive(Debug)]
pub enum EncoderFfn {
    /// `down(gelu(up x + up_b)) + down_b` (`bert`).
    Gelu {
        up: Mat,
        up_b: Option<Vec<f32>>,
        down: Mat,
        down_b: Option<Vec<f32>>,
    },
    /// `down(silu(gate x) * up x)` (`nomic-bert`).
    SwiGlu { gate: Mat, up: Mat, down: Mat },
}

#[derive(Debug)]
pub struct EncoderLayer {
    pub wq: Mat,
    pub wk: Mat,
    pub wv: Mat,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub wo: Mat,
    pub bo: Option<Vec<f32>>,
    /// Applied to `x + attn(x)`.
    pub attn_norm: LayerNorm,
    pub ffn: EncoderFfn,
    /// Applied to `x + ffn(x)`.
    pub out_norm: LayerNorm,
}

/// An encoder's own parts (its token embeddings are the model's `tok_embd`).
#[derive(Debug)]
pub struct Encoder {
    /// Rotary positions (`nomic-bert`); otherwise `pos_embd` is present.
    pub rope: bool,
    /// Learned position embeddings, one row per position up to the trained context.
    pub pos_embd: Option<Mat>,
    /// Row 0 of the token-type embeddings (every token is "sentence A").
    pub type_row: Option<Vec<f32>>,
    pub embd_norm: LayerNorm,
    pub layers: Vec<EncoderLayer>,
    pub pooling: Pooling,
    pub norm_eps: f32,
}

/// Whether `arch` is an encoder family this module binds.
pub(super) fn is_encoder(arch: &str) -> bool {
    matches!(arch, "bert" | "nomic-bert")
}

/// Reads the encoder's hyper-parameters that the shared config does not hold.
pub(super) fn read_keys(keys: &Keys<'_>) -> Result<(Pooling, f32), ModelError> {
    if keys.f.get_bool(&keys.key("attention.causal"))? == Some(true) {
        return Err(ModelError::Unsupported(format!(
            "a causal {} encoder",
            keys.arch
        )));
    }
    let pooling = Pooling::from_gguf(keys.opt_u32("pooling_type")?.unwrap_or(0))?;
    let eps = keys
        .opt_f32("attention.layer_norm_epsilon")?
        .unwrap_or(1e-12);
    Ok((pooling, eps))
}

/// A projection's matrix and optional bias.
type Projection = (Mat, Option<Vec<f32>>);

impl Binder<'_> {
    fn layer_norm(&self, name: &str, n: usize) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            w: self.vector(&format!("{name}.weight"), n)?,
            b: self.vector(&format!("{name}.bias"), n)?,
        })
    }

    /// Q, K and V: separate tensors, or one fused `attn_qkv` whose rows are Q's, then
    /// K's, then V's (each a contiguous run of rows, so each is a matrix of its own).
    fn qkv(&self, i: usize) -> Result<[Projection; 3], ModelError> {
        let d = self.c.n_embd;
        let n = |s: &str| format!("blk.{i}.{s}");
        if self.f.tensor(&n("attn_qkv.weight")).is_some() {
            let fused = self.mat(&n("attn_qkv.weight"), d, 3 * d)?;
            let bias = self.opt_vector(&n("attn_qkv.bias"), 3 * d)?;
            let part = |p: usize| {
                let m = fused.rows_range(p * d, d);
                (m, bias.as_ref().map(|b| b[p * d..(p + 1) * d].to_vec()))
            };
            return Ok([part(0), part(1), part(2)]);
        }
        let one = |s: &str| -> Result<Projection, ModelError> {
            Ok((
                self.mat(&n(&format!("attn_{s}.weight")), d, d)?,
                self.opt_vector(&n(&format!("attn_{s}.bias")), d)?,
            ))
        };
        Ok([one("q")?, one("k")?, one("v")?])
    }

    fn encoder_layer(&self, i: usize, swiglu: bool) -> Result<EncoderLayer, ModelError> {
        let (d, ff) = (self.c.n_embd, self.c.n_ff);
        let n = |s: &str| format!("blk.{i}.{s}");
        let [(wq, bq), (wk, bk), (wv, bv)] = self.qkv(i)?;
        let ffn = if swiglu {
            EncoderFfn::SwiGlu {
                gate: self.mat(&n("ffn_gate.weight"), d, ff)?,
                up: self.mat(&n("ffn_up.weight"), d, ff)?,
                down: self.mat(&n("ffn_down.weight"), ff, d)?,
            }
        } else {
            EncoderFfn::Gelu {
                up: self.mat(&n("ffn_up.weight"), d, ff)?,
                up_b: self.opt_vector(&n("ffn_up.bias"), ff)?,
                down: self.mat(&n("ffn_down.weight"), ff, d)?,
                down_b: self.opt_vector(&n("ffn_down.bias"), d)?,
            }
        };
        Ok(EncoderLayer {
            wq,
            wk,
            wv,
            bq,
            bk,
            bv,
            wo: self.mat(&n("attn_output.weight"), d, d)?,
            bo: self.opt_vector(&n("attn_output.bias"), d)?,
            attn_norm: self.layer_norm(&n("attn_output_norm"), d)?,
            ffn,
            out_norm: self.layer_norm(&n("layer_output_norm"), d)?,
        })
    }

    /// Binds an encoder's parts (`tok_embd` is bound by the caller).
    pub(super) fn encoder(&self, pooling: Pooling, norm_eps: f32) -> Result<Encoder, ModelError> {
        let c = self.c;
        let d = c.n_embd;
        let nomic = c.arch == "nomic-bert";
        let pos_embd = if nomic {
            None
        } else {
            let t = self.tensor("position_embd.weight")?;
            let rows = t.dims.get(1).copied().unwrap_or(0) as usize;
            if rows == 0 {
                return Err(ModelError::Invalid("no position embeddings".into()));
            }
            Some(self.mat("position_embd.weight", d, rows)?)
        };
        let type_row = match self.f.tensor("token_types.weight") {
            Some(t) => {
                let types = t.dims.get(1).copied().unwrap_or(1).max(1) as usize;
                let all = self.vector_2d("token_types.weight", d, types)?;
                Some(all[..d].to_vec())
            }
            None => None,
        };
        Ok(Encoder {
            rope: nomic,
            pos_embd,
            type_row,
            embd_norm: self.layer_norm("token_embd_norm", d)?,
            layers: (0..c.n_layer)
                .map(|i| self.encoder_layer(i, nomic))
                .collect::<Result<_, _>>()?,
            pooling,
            norm_eps,
        })
    }
}
