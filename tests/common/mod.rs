//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The real test models' cache (`$HEARTH_TEST_MODELS`, default `~/.cache/hearth/test-models`).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("HEARTH_TEST_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/test-models"),
    }
}

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";
pub const NOMIC: &str = "nomic-embed-text-v1.5.f16.gguf";

/// The path of a real test model. Panics (failing the test, never skipping it) with the
/// command that fetches the models when the file is missing.
pub fn test_model(name: &str) -> PathBuf {
    let p = models_dir().join(name);
    assert!(
        p.is_file(),
        "test model {} is missing: run scripts/fetch-test-models (set HEARTH_TEST_MODELS to use another cache)",
        p.display()
    );
    p
}

/// Path of a file under tests/data.
pub fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub mod bert_synthetic;
pub mod families;
pub mod fault;
pub mod qwen2_synthetic;
pub mod registry;

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A reference file of tests/data, parsed.
pub fn reference(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data_file(name)).unwrap()).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}
pub mod server;

/// Batch invariance: `prompt` in one step (logits at every position), then token by token
/// in a sequence of its own, then token by token beside a new sequence taking
/// `prompt[side]` in the same step, must give bit-identical logits. When `side` starts at
/// 0 the side sequence's last logits are checked too. Returns the one-step logits and
/// the token-by-token sequence (for callers that go on with it).
pub fn assert_batch_invariant(
    e: &mut hearth::engine::Engine,
    prompt: &[u32],
    side: std::ops::Range<usize>,
    label: &str,
) -> (Vec<Vec<f32>>, hearth::engine::SeqId) {
    use hearth::engine::{Logits, StepInput};
    let step = |seq, tokens, logits| StepInput {
        seq,
        tokens,
        logits,
    };
    let a = e.add_sequence();
    e.step(&[step(a, prompt, Logits::All)]).unwrap();
    let batch: Vec<Vec<f32>> = (0..prompt.len()).map(|i| e.logits(i).to_vec()).collect();
    let (b, c) = (e.add_sequence(), e.add_sequence());
    for (i, t) in prompt.iter().enumerate() {
        // b advances alone; c advances with a new sequence d beside it.
        e.step(&[step(b, std::slice::from_ref(t), Logits::Last)])
            .unwrap();
        assert_eq!(
            e.logits(0),
            &batch[i][..],
            "{label}: token by token, position {i}"
        );
        let d = e.add_sequence();
        e.step(&[
            step(d, &prompt[side.clone()], Logits::Last),
            step(c, std::slice::from_ref(t), Logits::Last),
        ])
        .unwrap();
        if side.start == 0 {
            assert_eq!(
                e.logits(0),
                &batch[side.end - 1][..],
                "{label}: d in a mixed batch"
            );
        }
        assert_eq!(
            e.logits(1),
            &batch[i][..],
            "{label}: c in a mixed batch, position {i}"
        );
        e.remove_sequence(d);
    }
    (batch, b)
}

/// Cosine similarity of two vectors, accumulated in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
