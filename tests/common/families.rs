//! Synthetic models of the families hearth reads beyond llama, qwen2 and gemma3: `qwen3`,
//! `qwen3moe`, `phi3`, `gemma2`, `granite` and `granitemoe` (with a shared expert). No real file of these families can be
//! fetched here, so each is a small GGUF whose every weight is defined by an integer
//! formula, regenerated at test time (never committed) and checked against llama.cpp's
//! logits on the same file (`tests/data/<family>-synthetic.json`, made by
//! `scripts/gen-family-reference`).
//!
//! Specification (enough to reimplement the generator in any language):
//! - Weights: the qwen2-synthetic formula (`tests/common/qwen2_synthetic.rs`): `seed =
//!   FNV-1a 64` of the tensor name's bytes; weight `i` (GGUF memory order, `ne0` fastest)
//!   takes SplitMix64 output number `i` from that seed, keeps its top 16 bits `k`, and is
//!   `w = C + S * (k - 32768) / 32768`, exact in f32. `(C, S)` per family and tensor kind:
//!   [`rule`]. Two refinements ([`master_values`]): in the output matrix (`output.weight`,
//!   or `token_embd.weight` where tied) every 1024th row has `S` four times larger, so
//!   that the top logits stand clear of the rest (as frequent tokens' do in a real model)
//!   and an argmax comparison is not decided by rounding; and the experts of a mixture
//!   share most of their weights (`w = S * (7/8 u_shared + 1/8 u_own)`, `u_shared` taken at
//!   the element's index within its expert), so that a routing decision taken within
//!   rounding of a tie changes a token's output by a little, not by a whole expert.
//! - Shapes: [`Spec::test`] (vocabulary 49152, 256 wide, 3 layers, 4 query heads and 2 KV
//!   heads) with each family's own parts; [`tensor_list`] gives names, shapes and order.
//! - Metadata: [`writer`]: the `general.*` keys, the family's hyper-parameters (the values
//!   are chosen so that each family-specific operation changes the logits clearly: Gemma 2's
//!   window is 8 tokens and its attention soft-cap 4, Granite's multipliers are far from 1,
//!   Phi-3's rotary part is half the head with long/short factors), then the tokenizer keys
//!   copied from SmolLM2-135M-Instruct (or the placeholder vocabulary of
//!   `qwen2_synthetic`, which gives the same tensor data).
//! - Types: `F32` (the master file `llama-quantize` starts from), `F16` (every tensor of
//!   two or more dimensions F16, vectors F32) and `Q8_0` (the same tensors Q8_0 with
//!   ggml's reference rule, except the MoE router, which llama-quantize leaves F32). The
//!   Q8_0 bytes equal `llama-quantize master.gguf out.gguf Q8_0`'s (checked by the
//!   reference script; the JSON records the tensor hashes).
#![allow(dead_code)]

use std::path::Path;

use anyhow::Result;
use half::f16;
use hearth::gguf::write::{Value, Writer};
use hearth::quant::GgmlType;

use super::qwen2_synthetic::{
    copy_tokenizer, fnv1a64, placeholder_tokenizer, q8_0_rows, weight_k, TensorSpec,
};

/// The families made here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Qwen3,
    Qwen3Moe,
    Phi3,
    Gemma2,
    Granite,
    GraniteMoe,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Qwen3,
        Family::Qwen3Moe,
        Family::Phi3,
        Family::Gemma2,
        Family::Granite,
        Family::GraniteMoe,
    ];

    /// The GGUF architecture name.
    pub fn arch(self) -> &'static str {
        match self {
            Family::Qwen3 => "qwen3",
            Family::Qwen3Moe => "qwen3moe",
            Family::Phi3 => "phi3",
            Family::Gemma2 => "gemma2",
            Family::Granite => "granite",
            Family::GraniteMoe => "granitemoe",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.arch() == s)
    }
}

/// Which file to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    F32,
    F16,
    Q8_0,
}

impl Variant {
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "f32" => Some(Variant::F32),
            "f16" => Some(Variant::F16),
            "q8_0" => Some(Variant::Q8_0),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::F32 => "f32",
            Variant::F16 => "f16",
            Variant::Q8_0 => "q8_0",
        }
    }

    fn file_type(self) -> u32 {
        match self {
            Variant::F32 => 0,
            Variant::F16 => 1,
            Variant::Q8_0 => 7,
        }
    }
}

/// Shapes of one synthetic model. [`Spec::test`] is the tested file; the benchmarks make
/// larger ones by changing fields.
#[derive(Clone, Debug)]
pub struct Spec {
    pub family: Family,
    pub n_vocab: u64,
    pub n_embd: u64,
    pub n_layer: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub head_dim: u64,
    pub n_ff: u64,
    /// Mixture of experts: experts per layer, experts used per token, each expert's width.
    pub n_expert: u64,
    pub n_expert_used: u64,
    pub n_ff_exp: u64,
    /// The shared expert's width (Granite-MoE; 0: none).
    pub n_ff_shexp: u64,
}

impl Spec {
    pub fn test(family: Family) -> Spec {
        let mut s = Spec {
            family,
            n_vocab: 49152,
            n_embd: 256,
            n_layer: 3,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            n_ff: 768,
            n_expert: 0,
            n_expert_used: 0,
            n_ff_exp: 0,
            n_ff_shexp: 0,
        };
        match family {
            // Qwen3's heads are wider than n_embd / n_head (0.6B: 16 x 128 over 1024).
            Family::Qwen3 => s.head_dim = 128,
            Family::Qwen3Moe => {
                s.n_expert = 8;
                s.n_expert_used = 2;
                s.n_ff_exp = 256;
            }
            Family::GraniteMoe => {
                s.n_expert = 8;
                s.n_expert_used = 2;
                s.n_ff_exp = 256;
                s.n_ff_shexp = 128;
            }
            _ => {}
        }
        s
    }

    pub fn q_dim(&self) -> u64 {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> u64 {
        self.n_head_kv * self.head_dim
    }

    /// Phi-3's rotary dimensions (half the head); the whole head elsewhere.
    pub fn n_rot(&self) -> u64 {
        match self.family {
            Family::Phi3 => self.head_dim / 2,
            _ => self.head_dim,
        }
    }
}

/// `(C, S)` of a tensor of `family`: `w = C + S * u`, `u` in `[-1, 1)`.
pub fn rule(family: Family, name: &str) -> (f32, f32) {
    let kind = match name.strip_prefix("blk.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, k)| k),
        None => name,
    };
    // The output matrix (`output.weight`, or the tied `token_embd.weight`) gives logits
    // of std about 2.3, and 9.2 for its every 1024th row (`master_values`): top logits
    // about 20, as a real model's. Gemma 2 multiplies the embeddings by sqrt(n_embd) = 16
    // and Granite by 12: smaller embeddings keep the layers' share of the residual stream
    // (else the input token is always the top logit), and a larger output norm gives
    // their tied logits the same spread.
    let small_embd = matches!(
        family,
        Family::Gemma2 | Family::Granite | Family::GraniteMoe
    );
    match kind {
        "token_embd.weight" if small_embd => (0.0, 1.0 / 16.0),
        "output_norm.weight" if small_embd => (4.0, 0.25),
        "token_embd.weight" if family == Family::Qwen3 => (0.0, 1.0),
        "token_embd.weight" | "output.weight" => (0.0, 0.25),
        "attn_norm.weight"
        | "ffn_norm.weight"
        | "output_norm.weight"
        | "post_attention_norm.weight"
        | "post_ffw_norm.weight"
        | "attn_q_norm.weight"
        | "attn_k_norm.weight" => (1.0, 0.125),
        "attn_q.weight" | "attn_k.weight" | "attn_v.weight" | "attn_qkv.weight" => (0.0, 0.125),
        "attn_output.weight" | "ffn_down.weight" => (0.0, 0.25),
        "ffn_gate.weight" | "ffn_up.weight" | "ffn_gate_shexp.weight" | "ffn_up_shexp.weight" => {
            (0.0, 0.125)
        }
        "ffn_down_shexp.weight" => (0.0, 0.25),
        // The router's logits spread (std about 4.6) so that a few experts win clearly.
        "ffn_gate_inp.weight" => (0.0, 0.5),
        "ffn_gate_exps.weight" | "ffn_up_exps.weight" => (0.0, 0.125),
        // Two experts of 256 stand in for one FFN of 768: a larger output scale keeps the
        // FFN's share of the residual stream like the dense models'.
        "ffn_down_exps.weight" => (0.0, 0.5),
        // Phi-3's factors divide the rotary frequencies: long ones stretch them (1 to 3),
        // short ones stay near 1.
        "rope_factors_long.weight" => (2.0, 1.0),
        "rope_factors_short.weight" => (1.0, 0.125),
        _ => panic!("the synthetic families have no tensor {name:?}"),
    }
}

/// The stored type of tensor `t` in `variant`: vectors stay F32, and so does the MoE
/// router (llama-quantize never quantizes `ffn_gate_inp`).
pub fn stored_type(t: &TensorSpec, variant: Variant) -> GgmlType {
    if t.ne.len() < 2 || t.name.ends_with("ffn_gate_inp.weight") {
        return GgmlType::F32;
    }
    match variant {
        Variant::F32 => GgmlType::F32,
        Variant::F16 => GgmlType::F16,
        Variant::Q8_0 => GgmlType::Q8_0,
    }
}

/// The tensors of `spec`, in file order.
pub fn tensor_list(spec: &Spec) -> Vec<TensorSpec> {
    let t = |name: String, ne: &[u64]| TensorSpec {
        name,
        ne: ne.to_vec(),
    };
    let s = spec;
    let (d, q, kv) = (s.n_embd, s.q_dim(), s.kv_dim());
    let mut out = vec![t("token_embd.weight".into(), &[d, s.n_vocab])];
    if s.family == Family::Phi3 {
        // One copy for the whole model (llama.cpp reads layer 0's for every layer).
        out.push(t("rope_factors_long.weight".into(), &[s.n_rot() / 2]));
        out.push(t("rope_factors_short.weight".into(), &[s.n_rot() / 2]));
    }
    for l in 0..s.n_layer {
        let p = |kind: &str| format!("blk.{l}.{kind}");
        out.push(t(p("attn_norm.weight"), &[d]));
        if s.family == Family::Phi3 {
            out.push(t(p("attn_qkv.weight"), &[d, q + 2 * kv]));
        } else {
            out.push(t(p("attn_q.weight"), &[d, q]));
            out.push(t(p("attn_k.weight"), &[d, kv]));
            out.push(t(p("attn_v.weight"), &[d, kv]));
        }
        if matches!(s.family, Family::Qwen3 | Family::Qwen3Moe) {
            out.push(t(p("attn_q_norm.weight"), &[s.head_dim]));
            out.push(t(p("attn_k_norm.weight"), &[s.head_dim]));
        }
        out.push(t(p("attn_output.weight"), &[q, d]));
        if s.family == Family::Gemma2 {
            out.push(t(p("post_attention_norm.weight"), &[d]));
        }
        out.push(t(p("ffn_norm.weight"), &[d]));
        match s.family {
            Family::Qwen3Moe | Family::GraniteMoe => {
                let (e, f) = (s.n_expert, s.n_ff_exp);
                out.push(t(p("ffn_gate_inp.weight"), &[d, e]));
                out.push(t(p("ffn_gate_exps.weight"), &[d, f, e]));
                out.push(t(p("ffn_up_exps.weight"), &[d, f, e]));
                out.push(t(p("ffn_down_exps.weight"), &[f, d, e]));
                if s.n_ff_shexp > 0 {
                    let f = s.n_ff_shexp;
                    out.push(t(p("ffn_gate_shexp.weight"), &[d, f]));
                    out.push(t(p("ffn_up_shexp.weight"), &[d, f]));
                    out.push(t(p("ffn_down_shexp.weight"), &[f, d]));
                }
            }
            Family::Phi3 => {
                // Gate and up fused: rows 0..n_ff are the gate, n_ff..2n_ff the up.
                out.push(t(p("ffn_up.weight"), &[d, 2 * s.n_ff]));
                out.push(t(p("ffn_down.weight"), &[s.n_ff, d]));
            }
            _ => {
                out.push(t(p("ffn_gate.weight"), &[d, s.n_ff]));
                out.push(t(p("ffn_up.weight"), &[d, s.n_ff]));
                out.push(t(p("ffn_down.weight"), &[s.n_ff, d]));
            }
        }
        if s.family == Family::Gemma2 {
            out.push(t(p("post_ffw_norm.weight"), &[d]));
        }
    }
    out.push(t("output_norm.weight".into(), &[d]));
    if s.family == Family::Qwen3 {
        // Qwen3 from 4B up has its own output matrix (the smaller ones tie it).
        out.push(t("output.weight".into(), &[d, s.n_vocab]));
    }
    out
}

/// The exact weights of tensor `t` of `family`, in memory order.
pub fn master_values(family: Family, t: &TensorSpec) -> Vec<f32> {
    let name = t.name.as_str();
    let (c, s) = rule(family, name);
    let seed = fnv1a64(name.as_bytes());
    let u = |i: u64| (weight_k(seed, i) as i32 - 32768) as f32 / 32768.0;
    let row_len = t.ne[0];
    let is_output =
        name == "output.weight" || (name == "token_embd.weight" && family != Family::Qwen3);
    let per_expert = if name.contains("_exps.") {
        t.ne[0] * t.ne[1]
    } else {
        0
    };
    (0..t.n_elements())
        .map(|i| {
            if per_expert > 0 {
                // 7/8 u_shared + 1/8 u_own: at most 19 significant bits, exact in f32.
                return c + s * (0.875 * u(i % per_expert) + 0.125 * u(i));
            }
            let s = if is_output && (i / row_len).is_multiple_of(1024) {
                4.0 * s
            } else {
                s
            };
            c + s * u(i)
        })
        .collect()
}

/// The stored bytes of one tensor in `variant`.
pub fn tensor_bytes(family: Family, t: &TensorSpec, variant: Variant) -> Vec<u8> {
    let w = master_values(family, t);
    match stored_type(t, variant) {
        GgmlType::Q8_0 => q8_0_rows(&w, t.ne[0]),
        GgmlType::F16 => w
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect(),
        _ => w.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// The tokenizer keys of SmolLM2-135M-Instruct, copied with their types and bytes
/// (`pre` kept: "smollm").
pub fn tokenizer_from_gguf(path: &Path) -> Result<Vec<(String, Value)>> {
    copy_tokenizer(path, None)
}

/// The placeholder vocabulary (same tensor data, different file hash).
pub fn placeholder() -> Vec<(String, Value)> {
    placeholder_tokenizer()
}

/// The family's hyper-parameter keys (without the architecture prefix), after the common
/// ones.
fn family_keys(spec: &Spec) -> Vec<(&'static str, Value)> {
    let s = spec;
    let mut v = vec![("context_length", Value::U32(4096))];
    v.push(("embedding_length", Value::U32(s.n_embd as u32)));
    // Granite-MoE's experts are feed_forward_length wide (it has no expert width key).
    let ff = if s.family == Family::GraniteMoe {
        s.n_ff_exp
    } else {
        s.n_ff
    };
    v.push(("feed_forward_length", Value::U32(ff as u32)));
    v.push(("block_count", Value::U32(s.n_layer as u32)));
    v.push(("attention.head_count", Value::U32(s.n_head as u32)));
    v.push(("attention.head_count_kv", Value::U32(s.n_head_kv as u32)));
    v.push(("attention.layer_norm_rms_epsilon", Value::F32(1e-6)));
    match s.family {
        Family::Qwen3 | Family::Qwen3Moe => {
            v.push(("rope.freq_base", Value::F32(1_000_000.0)));
            v.push(("attention.key_length", Value::U32(s.head_dim as u32)));
            v.push(("attention.value_length", Value::U32(s.head_dim as u32)));
            if s.family == Family::Qwen3Moe {
                v.push(("expert_count", Value::U32(s.n_expert as u32)));
                v.push(("expert_used_count", Value::U32(s.n_expert_used as u32)));
                v.push(("expert_feed_forward_length", Value::U32(s.n_ff_exp as u32)));
            }
        }
        Family::Phi3 => {
            v.push(("rope.freq_base", Value::F32(10000.0)));
            v.push(("rope.dimension_count", Value::U32(s.n_rot() as u32)));
            // The long factors apply when the context exceeds this (llama.cpp: n_ctx_seq >
            // n_ctx_orig_yarn); Phi-4-mini's attention factor.
            v.push(("rope.scaling.original_context_length", Value::U32(1024)));
            v.push(("rope.scaling.attn_factor", Value::F32(1.190_238)));
            // llama.cpp disables Phi-3's sliding window (ggml-org/llama.cpp#13676); present
            // here so a reader that applied it would disagree.
            v.push(("attention.sliding_window", Value::U32(6)));
        }
        Family::Gemma2 => {
            v.push(("rope.freq_base", Value::F32(10000.0)));
            v.push(("attention.key_length", Value::U32(s.head_dim as u32)));
            v.push(("attention.value_length", Value::U32(s.head_dim as u32)));
            v.push(("attention.sliding_window", Value::U32(8)));
            v.push(("attn_logit_softcapping", Value::F32(4.0)));
            // Gemma 2's own value: it bends the top logits (about 20) without flattening
            // their differences.
            v.push(("final_logit_softcapping", Value::F32(30.0)));
        }
        Family::Granite | Family::GraniteMoe => {
            if s.family == Family::GraniteMoe {
                v.push(("expert_count", Value::U32(s.n_expert as u32)));
                v.push(("expert_used_count", Value::U32(s.n_expert_used as u32)));
                v.push((
                    "expert_shared_feed_forward_length",
                    Value::U32(s.n_ff_shexp as u32),
                ));
            }
            v.push(("rope.freq_base", Value::F32(10000.0)));
            v.push(("embedding_scale", Value::F32(12.0)));
            v.push(("residual_scale", Value::F32(0.25)));
            v.push(("attention.scale", Value::F32(0.03125)));
            v.push(("logit_scale", Value::F32(2.0)));
        }
    }
    v
}

/// The writer holding the whole model.
pub fn writer(spec: &Spec, variant: Variant, tokenizer: Vec<(String, Value)>) -> Writer {
    writer_edited(spec, variant, tokenizer, &Edit::default())
}

/// Changes to a model for the broken-file tests: keys and tensors left out, tensors given
/// another shape (their data follow the new shape).
#[derive(Default)]
pub struct Edit<'a> {
    pub drop_key: Option<&'a str>,
    pub drop_tensor: Option<&'a str>,
    pub reshape: Option<(&'a str, Vec<u64>)>,
}

pub fn writer_edited(
    spec: &Spec,
    variant: Variant,
    tokenizer: Vec<(String, Value)>,
    edit: &Edit<'_>,
) -> Writer {
    let arch = spec.family.arch();
    let name = match spec.family {
        Family::Phi3 => "phi-synthetic".to_string(),
        _ => format!("{arch}-synthetic"),
    };
    let mut w = Writer::new();
    w.kv("general.architecture", Value::str(arch))
        // Not "phi3-...": llama.cpp patches the vocabulary of models whose name contains
        // "phi3" (it looks up "<s>", "</s>", "<unk>", which SmolLM2's lacks).
        .kv("general.name", Value::str(&name))
        .kv("general.file_type", Value::U32(variant.file_type()))
        .kv("general.quantization_version", Value::U32(2));
    for (k, v) in family_keys(spec) {
        if edit.drop_key != Some(k) {
            w.kv(&format!("{arch}.{k}"), v);
        }
    }
    for (k, v) in tokenizer {
        w.kv(&k, v);
    }
    for mut t in tensor_list(spec) {
        if edit.drop_tensor == Some(t.name.as_str()) {
            continue;
        }
        if let Some((name, ne)) = &edit.reshape {
            if *name == t.name {
                t.ne = ne.clone();
            }
        }
        let data = tensor_bytes(spec.family, &t, variant);
        w.tensor(&t.name, &t.ne, stored_type(&t, variant), data);
    }
    w
}

/// The GGUF file image.
pub fn build(spec: &Spec, variant: Variant, tokenizer: Vec<(String, Value)>) -> Vec<u8> {
    writer(spec, variant, tokenizer).build().0
}
