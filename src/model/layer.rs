//! A decoder block's weights and how they are bound: attention (separate or fused Q/K/V),
//! and a feed-forward part that is either one gated FFN (separate or fused gate/up) or a
//! mixture of experts.

use super::{Binder, Mat, ModelError};

/// One transformer block's weights.
#[derive(Debug)]
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Mat,
    pub wk: Mat,
    pub wv: Mat,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub wo: Mat,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub ffn: FeedForward,
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// The feed-forward part of a block.
#[derive(Debug)]
pub enum FeedForward {
    /// `down(act(gate x) * up x)`.
    Dense { gate: Mat, up: Mat, down: Mat },
    /// A mixture of experts.
    Experts(Moe),
}

/// A mixture-of-experts FFN (Qwen3-MoE, Granite-MoE): a router picks `n_used` of the
/// experts per token by softmax probability; their gated FFN outputs are summed, weighted
/// by the chosen probabilities (renormalised to sum to 1 when `norm_weights`), plus the
/// shared expert's output, which every token gets unweighted (Granite-MoE "shared").
#[derive(Debug)]
pub struct Moe {
    /// `[n_embd] -> [n_expert]` router logits.
    pub router: Mat,
    /// Each expert's gate, up and down matrices: views into the 3-D tensors.
    pub experts: Vec<Expert>,
    pub shared: Option<Expert>,
    pub n_used: usize,
    pub norm_weights: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct Expert {
    pub gate: Mat,
    pub up: Mat,
    pub down: Mat,
}

/// Mixture-of-experts sizes, from the metadata.
#[derive(Clone, Copy, Debug)]
pub struct MoeConfig {
    pub n_expert: usize,
    pub n_used: usize,
    /// Each expert's FFN width.
    pub n_ff: usize,
    /// The shared expert's width (0: none).
    pub n_ff_shared: usize,
}

impl Binder<'_> {
    /// Q, K and V: three tensors, or one fused `attn_qkv` whose rows are Q's, then K's,
    /// then V's (each a contiguous run of rows, so each is a matrix of its own).
    fn attn_qkv(&self, i: usize) -> Result<[Mat; 3], ModelError> {
        let (d, q, kv) = (self.c.n_embd, self.c.q_dim(), self.c.kv_dim());
        let n = |s: &str| format!("blk.{i}.{s}");
        if self.f.tensor(&n("attn_qkv.weight")).is_some() {
            let fused = self.mat(&n("attn_qkv.weight"), d, q + 2 * kv)?;
            return Ok([
                fused.rows_range(0, q),
                fused.rows_range(q, kv),
                fused.rows_range(q + kv, kv),
            ]);
        }
        Ok([
            self.mat(&n("attn_q.weight"), d, q)?,
            self.mat(&n("attn_k.weight"), d, kv)?,
            self.mat(&n("attn_v.weight"), d, kv)?,
        ])
    }

    fn ffn(&self, i: usize) -> Result<FeedForward, ModelError> {
        let c = self.c;
        let (d, ff) = (c.n_embd, c.n_ff);
        let n = |s: &str| format!("blk.{i}.{s}");
        if let Some(moe) = c.moe {
            return self.moe(i, moe).map(FeedForward::Experts);
        }
        let (gate, up) = if c.features.fused_gate_up {
            // Phi-3: one [n_embd, 2 n_ff] matrix, the gate's rows first (ggml_swiglu).
            let fused = self.mat(&n("ffn_up.weight"), d, 2 * ff)?;
            (fused.rows_range(0, ff), fused.rows_range(ff, ff))
        } else {
            (
                self.mat(&n("ffn_gate.weight"), d, ff)?,
                self.mat(&n("ffn_up.weight"), d, ff)?,
            )
        };
        Ok(FeedForward::Dense {
            gate,
            up,
            down: self.mat(&n("ffn_down.weight"), ff, d)?,
        })
    }

    fn moe(&self, i: usize, m: MoeConfig) -> Result<Moe, ModelError> {
        let d = self.c.n_embd;
        let n = |s: &str| format!("blk.{i}.{s}");
        let router = self.mat(&n("ffn_gate_inp.weight"), d, m.n_expert)?;
        // A [cols, rows, n_expert] tensor is n_expert matrices of `rows` rows, one after
        // the other.
        let stacked = |s: &str, cols: usize, rows: usize| -> Result<Vec<Mat>, ModelError> {
            let all = self.mat_3d(&n(s), cols, rows, m.n_expert)?;
            Ok((0..m.n_expert)
                .map(|e| all.rows_range(e * rows, rows))
                .collect())
        };
        let gate = stacked("ffn_gate_exps.weight", d, m.n_ff)?;
        let up = stacked("ffn_up_exps.weight", d, m.n_ff)?;
        let down = stacked("ffn_down_exps.weight", m.n_ff, d)?;
        let sh = m.n_ff_shared;
        let shared = if sh > 0 {
            Some(Expert {
                gate: self.mat(&n("ffn_gate_shexp.weight"), d, sh)?,
                up: self.mat(&n("ffn_up_shexp.weight"), d, sh)?,
                down: self.mat(&n("ffn_down_shexp.weight"), sh, d)?,
            })
        } else {
            None
        };
        Ok(Moe {
            router,
            shared,
            experts: (0..m.n_expert)
                .map(|e| Expert {
                    gate: gate[e],
                    up: up[e],
                    down: down[e],
                })
                .collect(),
            n_used: m.n_used,
            norm_weights: true,
        })
    }

    pub(super) fn layer(&self, i: usize) -> Result<Layer, ModelError> {
        let c = self.c;
        let ft = &c.features;
        let n = |s: &str| format!("blk.{i}.{s}");
        let (d, q, kv) = (c.n_embd, c.q_dim(), c.kv_dim());
        let bias = |s: &str, len: usize| -> Result<Option<Vec<f32>>, ModelError> {
            let v = self.opt_vector(&n(s), len)?;
            if v.is_none() && ft.qkv_bias_required {
                return Err(ModelError::MissingTensor(n(s)));
            }
            Ok(v)
        };
        let norm_if = |on: bool, s: &str, len: usize| -> Result<Option<Vec<f32>>, ModelError> {
            if on {
                self.vector(&n(s), len).map(Some)
            } else {
                Ok(None)
            }
        };
        let [wq, wk, wv] = self.attn_qkv(i)?;
        Ok(Layer {
            attn_norm: self.vector(&n("attn_norm.weight"), d)?,
            wq,
            wk,
            wv,
            bq: bias("attn_q.bias", q)?,
            bk: bias("attn_k.bias", kv)?,
            bv: bias("attn_v.bias", kv)?,
            q_norm: norm_if(ft.qk_norm, "attn_q_norm.weight", c.head_dim)?,
            k_norm: norm_if(ft.qk_norm, "attn_k_norm.weight", c.head_dim)?,
            wo: self.mat(&n("attn_output.weight"), q, d)?,
            post_attn_norm: norm_if(ft.post_norms, "post_attention_norm.weight", d)?,
            ffn_norm: self.vector(&n("ffn_norm.weight"), d)?,
            ffn: self.ffn(i)?,
            post_ffn_norm: norm_if(ft.post_norms, "post_ffw_norm.weight", d)?,
        })
    }
}
