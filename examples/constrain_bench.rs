//! The cost of structured output per token, on each real test model's vocabulary:
//! building the vocabulary's trie and parser factory (once per model), compiling a
//! schema (once per request), checking one sampled token (every step) and computing
//! the full mask (only the steps whose first draw was inadmissible).
//!
//!     cargo run --release --example constrain_bench
//!
//! A fixed JSON document valid against a nested schema is tokenized with the model's
//! tokenizer and fed token by token; at each step the full mask and a one-token check
//! are timed. Models are looked up in $HEARTH_TEST_MODELS (default
//! ~/.cache/hearth/test-models).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth::constrain::{Format, Grammars};
use hearth::gguf::GgufFile;
use hearth::model::Model;
use hearth::tokenizer::Tokenizer;

const SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 40},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "email": {"type": "string", "format": "email"},
    "role": {"enum": ["admin", "user", "guest"]},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 5},
    "address": {
      "type": "object",
      "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
      "required": ["city", "zip"],
      "additionalProperties": false
    }
  },
  "required": ["name", "age", "email", "role", "tags", "address"],
  "additionalProperties": false
}"#;

const DOCUMENT: &str = r#"{"name": "Ada Lovelace, the first programmer", "age": 36, "email": "ada@example.org", "role": "admin", "tags": ["math", "engines", "poetry"], "address": {"city": "London", "zip": "12345"}}"#;

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|&d| us(d)).sum::<f64>() / v.len() as f64;
    format!(
        "median {:>7.1} µs, mean {:>7.1} µs, p90 {:>7.1} µs, max {:>7.1} µs",
        us(v[v.len() / 2]),
        mean,
        us(v[v.len() * 9 / 10]),
        us(v[v.len() - 1])
    )
}

fn main() {
    let dir = std::env::var_os("HEARTH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth/test-models")
        });
    let schema = Format::schema(serde_json::from_str(SCHEMA).expect("schema")).expect("subset");
    for file in [
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ] {
        let path = dir.join(file);
        let gguf = GgufFile::open(&path).expect("model file (scripts/fetch-test-models)");
        let tok = Arc::new(Tokenizer::from_gguf(&gguf).expect("tokenizer"));
        let n_vocab = Model::open(&path).expect("model").config.n_vocab;
        let grammars = Grammars::new(Arc::clone(&tok), n_vocab);

        let t = Instant::now();
        grammars.constraint(&Format::Json).expect("json");
        let build = t.elapsed();
        let t = Instant::now();
        let mut c = grammars.constraint(&schema).expect("schema compiles");
        let compile = t.elapsed();

        let ids = tok.encode(DOCUMENT, false, false);
        let (mut masks, mut checks) = (Vec::new(), Vec::new());
        let mut admissible = 0usize;
        for &id in &ids {
            let t = Instant::now();
            admissible += c.admissible().expect("mask");
            masks.push(t.elapsed());
            let t = Instant::now();
            let ok = c.force(id).expect("advance");
            checks.push(t.elapsed());
            assert!(ok, "the document's token {id} was refused");
        }
        println!(
            "{file}: vocabulary {n_vocab}; trie + factory {:.0} ms (once per model); schema compiled in {:.1} ms",
            build.as_secs_f64() * 1e3,
            compile.as_secs_f64() * 1e3
        );
        println!(
            "  {} tokens; admissible per step on average {}",
            ids.len(),
            admissible / ids.len()
        );
        println!("  full mask:          {}", stats(masks));
        println!("  check + advance:    {}", stats(checks));
    }
}
