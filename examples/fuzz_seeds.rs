//! Writes seed inputs for the fuzz targets (scripts/fuzz calls this).
//!
//!     cargo run --example fuzz_seeds -- OUT_DIR
//!
//! gguf/: small well-formed files: every value type, tensors, and tiny GPT-2 BPE and
//! SentencePiece vocabularies (so the fuzzer reaches the tokenizer builders).
//! tokenizer/: the tricky strings of the llama.cpp reference data.

use std::path::Path;

use hearth::gguf::write::{Value, Writer};
use hearth::quant::GgmlType;

fn main() {
    let out = std::env::args().nth(1).expect("usage: fuzz_seeds OUT_DIR");
    let out = Path::new(&out);
    let gguf = out.join("gguf");
    let text = out.join("tokenizer");
    std::fs::create_dir_all(&gguf).unwrap();
    std::fs::create_dir_all(&text).unwrap();

    let mut w = Writer::new();
    w.kv("general.architecture", Value::str("llama"))
        .kv("a.u8", Value::U8(1))
        .kv("a.i16", Value::I16(-2))
        .kv("a.u64", Value::U64(3))
        .kv("a.f64", Value::F64(4.0))
        .kv("a.bool", Value::Bool(true))
        .kv("a.nested", Value::Array(9, vec![Value::i32s(&[1, 2])]))
        .kv("general.alignment", Value::U32(32));
    w.tensor("t0", &[32, 2], GgmlType::F32, vec![0; 256])
        .tensor("t1", &[256], GgmlType::Q4K, vec![0; 144]);
    std::fs::write(gguf.join("values.gguf"), w.build().0).unwrap();

    let bpe_tokens = ["<|endoftext|>", "<|im_start|>", "a", "b", "Ġ", "ab", "Ġa"];
    let mut w = Writer::new();
    w.kv("general.architecture", Value::str("llama"))
        .kv("tokenizer.ggml.model", Value::str("gpt2"))
        .kv("tokenizer.ggml.pre", Value::str("smollm"))
        .kv("tokenizer.ggml.tokens", Value::strs(&bpe_tokens))
        .kv(
            "tokenizer.ggml.token_type",
            Value::i32s(&[3, 3, 1, 1, 1, 1, 1]),
        )
        .kv("tokenizer.ggml.merges", Value::strs(&["a b", "Ġ a"]))
        .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Value::U32(0));
    std::fs::write(gguf.join("bpe.gguf"), w.build().0).unwrap();

    let spm_tokens = ["<unk>", "<s>", "</s>", "<0x0A>", "▁", "a", "▁a", "b"];
    let mut w = Writer::new();
    w.kv("general.architecture", Value::str("gemma3"))
        .kv("tokenizer.ggml.model", Value::str("llama"))
        .kv("tokenizer.ggml.tokens", Value::strs(&spm_tokens))
        .kv(
            "tokenizer.ggml.scores",
            Value::f32s(&[0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1.5, -3.0]),
        )
        .kv(
            "tokenizer.ggml.token_type",
            Value::i32s(&[2, 3, 3, 6, 1, 1, 1, 1]),
        )
        .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Value::U32(2))
        .kv("tokenizer.ggml.add_bos_token", Value::Bool(true));
    std::fs::write(gguf.join("spm.gguf"), w.build().0).unwrap();

    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut n = 0;
    for name in ["smollm2-135m-q4_1.json", "gemma3-270m-q4_k_m.json"] {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(reference.join(name)).unwrap()).unwrap();
        for entry in json["tokenizer"].as_array().into_iter().flatten() {
            if let Some(s) = entry["text"].as_str() {
                std::fs::write(text.join(format!("ref{n}")), s).unwrap();
                n += 1;
            }
        }
    }
    println!("wrote seeds to {}", out.display());
}
