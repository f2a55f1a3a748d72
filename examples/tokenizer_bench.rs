//! Encode throughput on ~1 MB of mixed text (English prose, code, CJK, emoji, numbers, chat
//! markup), for each real test model:
//!
//!     cargo run --release --example tokenizer_bench
//!
//! Models are looked up in $HEARTH_TEST_MODELS (default ~/.cache/hearth/test-models).
use std::path::PathBuf;
use std::time::Instant;

use hearth::gguf::GgufFile;
use hearth::tokenizer::{Tokenizer, TokenizerConfig};

fn corpus() -> String {
    let parts = [
        "The quick brown fox jumps over the lazy dog. It's 3.14159 o'clock, isn't it? ",
        "fn main() {\n    let x: Vec<u32> = (0..1024).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n",
        "日本の首都は東京です。今日はいい天気ですね。",
        "Émigré naïve café — «quote» ¿qué? 🙂👍🏽 ",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
        "    indented line\twith tabs\r\n\n\n",
        "1234567890 + 0987654321 = 2222222211; ",
    ];
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 1_000_000 {
        s.push_str(parts[i % parts.len()]);
        if i % 5 == 0 {
            s.push_str(parts[(i * 3 + 1) % parts.len()]);
        }
        i += 1;
    }
    s
}

fn main() {
    let dir = std::env::var_os("HEARTH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/hearth/test-models")
        });
    let text = corpus();
    let mb = text.len() as f64 / 1e6;
    for (name, pre) in [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", None),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", Some("qwen2")),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", Some("llama-bpe")),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", Some("gpt-4o")),
        ("gemma-3-270m-q4_k_m.gguf", None),
    ] {
        let f = match GgufFile::open(&dir.join(name)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{name}: {e} (run scripts/fetch-test-models)");
                continue;
            }
        };
        let t0 = Instant::now();
        let mut cfg = TokenizerConfig::from_gguf(&f).expect("metadata");
        if let Some(p) = pre {
            cfg.pre = Some(p.to_string());
        }
        let tok = Tokenizer::new(cfg).expect("tokenizer");
        let load = t0.elapsed();
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..3 {
            let t = Instant::now();
            n = tok.encode(&text, true, true).len();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name} pre={}: load {:.0} ms; {:.2} MB -> {n} tokens in {:.0} ms: {:.2} M tokens/s, {:.1} MB/s",
            tok.pre_name().unwrap_or("-"),
            load.as_secs_f64() * 1e3,
            mb,
            best * 1e3,
            n as f64 / best / 1e6,
            mb / best
        );
    }
}
