//! Writes a synthetic model of one of the families in `tests/common/families.rs` and
//! prints its sha256.
//!
//!     cargo run --release --example make_family_synthetic -- FAMILY OUT.gguf
//!         [--variant f32|f16|q8_0] [--placeholder-tokenizer] [--tokenizer-from FILE]
//!         [--set KEY=N ...]
//!
//! FAMILY is qwen3, qwen3moe, phi3, gemma2, granite or granitemoe. The tokenizer is
//! copied from the SmolLM2 test model (default: the test-model cache). `--set` changes a
//! shape for benchmarks: n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_expert,
//! n_expert_used, n_ff_exp, n_ff_shexp (the tested files use the defaults).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

#[path = "../tests/common/qwen2_synthetic.rs"]
mod qwen2_synthetic;

#[path = "../tests/common/families.rs"]
mod families;

use families::{build, placeholder, tokenizer_from_gguf, Family, Spec, Variant};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: make_family_synthetic FAMILY OUT.gguf [--variant f32|f16|q8_0] \
                 [--placeholder-tokenizer] [--tokenizer-from FILE] [--set KEY=N ...]";
    let fam = args.next().context(usage)?;
    let family = Family::parse(&fam).with_context(|| format!("unknown family {fam:?}"))?;
    let out = PathBuf::from(args.next().context(usage)?);
    let mut spec = Spec::test(family);
    let mut variant = Variant::F32;
    let mut placeholder_tok = false;
    let mut tok_from = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--variant" => {
                let v = args.next().context("--variant needs a value")?;
                variant = Variant::parse(&v).with_context(|| format!("unknown variant {v:?}"))?;
            }
            "--placeholder-tokenizer" => placeholder_tok = true,
            "--tokenizer-from" => {
                tok_from = Some(PathBuf::from(
                    args.next().context("--tokenizer-from needs a path")?,
                ))
            }
            "--set" => {
                let kv = args.next().context("--set needs KEY=N")?;
                let (k, v) = kv.split_once('=').context("--set needs KEY=N")?;
                let v: u64 = v
                    .parse()
                    .with_context(|| format!("--set {k}: not a number"))?;
                let field = match k {
                    "n_embd" => &mut spec.n_embd,
                    "n_layer" => &mut spec.n_layer,
                    "n_head" => &mut spec.n_head,
                    "n_head_kv" => &mut spec.n_head_kv,
                    "head_dim" => &mut spec.head_dim,
                    "n_ff" => &mut spec.n_ff,
                    "n_expert" => &mut spec.n_expert,
                    "n_expert_used" => &mut spec.n_expert_used,
                    "n_ff_exp" => &mut spec.n_ff_exp,
                    "n_ff_shexp" => &mut spec.n_ff_shexp,
                    _ => bail!("--set: unknown shape {k:?}"),
                };
                *field = v;
            }
            _ => bail!("unexpected argument {a:?}\n{usage}"),
        }
    }
    let tokenizer = if placeholder_tok {
        placeholder()
    } else {
        let p = tok_from.unwrap_or_else(|| {
            let dir = match std::env::var_os("HEARTH_TEST_MODELS") {
                Some(d) => PathBuf::from(d),
                None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/hearth/test-models"),
            };
            dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")
        });
        tokenizer_from_gguf(&p)?
    };
    let bytes = build(&spec, variant, tokenizer);
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{hex}  {}", out.display());
    Ok(())
}
