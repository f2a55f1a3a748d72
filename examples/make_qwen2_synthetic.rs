//! Writes the synthetic qwen2 test model (see `tests/common/qwen2_synthetic.rs`) and prints
//! its sha256.
//!
//!     cargo run --release --example make_qwen2_synthetic -- OUT.gguf [--variant q8_0|f32]
//!         [--tokenizer-from SmolLM2-135M-Instruct.Q4_1.gguf | --placeholder-tokenizer]
//!
//! The tokenizer is copied from the SmolLM2 test model (`--tokenizer-from`, default: the
//! test-model cache, `$HEARTH_TEST_MODELS` or `~/.cache/hearth/test-models`), which gives
//! the reference file byte for byte. `--placeholder-tokenizer` writes a stand-in
//! 49152-token vocabulary instead: same tensor data, different file hash.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

#[path = "../tests/common/qwen2_synthetic.rs"]
mod qwen2_synthetic;

use qwen2_synthetic::{build, placeholder_tokenizer, tokenizer_from_gguf, Variant};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn default_tokenizer_source() -> PathBuf {
    let dir = match std::env::var_os("HEARTH_TEST_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/test-models"),
    };
    dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn main() -> Result<()> {
    let mut out = None;
    let mut variant = Variant::Q8_0;
    let mut tok_from = None;
    let mut placeholder = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--variant" => {
                let v = args.next().context("--variant needs a value")?;
                variant = Variant::parse(&v)
                    .with_context(|| format!("unknown variant {v:?} (q8_0 or f32)"))?;
            }
            "--tokenizer-from" => {
                tok_from = Some(PathBuf::from(
                    args.next().context("--tokenizer-from needs a path")?,
                ))
            }
            "--placeholder-tokenizer" => placeholder = true,
            "-h" | "--help" => {
                println!(
                    "usage: make_qwen2_synthetic OUT.gguf [--variant q8_0|f32] \
                     [--tokenizer-from SMOLLM2.gguf | --placeholder-tokenizer]"
                );
                return Ok(());
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s if out.is_none() => out = Some(PathBuf::from(s)),
            s => bail!("unexpected argument {s}"),
        }
    }
    let out = out.context("usage: make_qwen2_synthetic OUT.gguf [--variant q8_0|f32]")?;

    let t = Instant::now();
    let tokenizer = if placeholder {
        placeholder_tokenizer()
    } else {
        let src = tok_from.unwrap_or_else(default_tokenizer_source);
        tokenizer_from_gguf(&src)
            .with_context(|| "copying the tokenizer (or pass --placeholder-tokenizer)")?
    };
    let (bytes, data_offset) = build(variant, tokenizer);
    let elapsed = t.elapsed();
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("file        {}", out.display());
    println!(
        "variant     {}  {} bytes  data offset {data_offset}  built in {:.2} s",
        variant.name(),
        bytes.len(),
        elapsed.as_secs_f64()
    );
    println!("sha256 file {}", hex(&bytes));
    println!("sha256 data {}", hex(&bytes[data_offset..]));
    Ok(())
}
