//! The official Python clients against `hearth serve`: greedy output through each API
//! equals `hearth run` for the same prompt and options, on SmolLM2 and Qwen2.5-Coder.

mod common;

use std::process::{Command, Stdio};

use common::server::{hearth, run_client, run_raw_greedy, Server, QWEN};
use serde_json::Value;

/// `hearth run MODEL PROMPT` greedy (the chat template applied).
fn run_chat_greedy(gguf: &std::path::Path, prompt: &str, n: usize) -> String {
    let out = Command::new(hearth())
        .args(["run", "-o", "temperature=0", "-o"])
        .arg(format!("num_predict={n}"))
        .arg(gguf)
        .arg(prompt)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ollama_client_matches_run(file: &str, prompt: &str, n: usize) {
    let gguf = common::test_model(file);
    let s = Server::start(&[("m", file)], &[]);
    let out = run_client(&s, "ollama_generate.py", &["m", prompt, &n.to_string()]);
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let raw = run_raw_greedy(&gguf, prompt, n);
    let chat = run_chat_greedy(&gguf, prompt, n);
    assert_eq!(v["generate"].as_str().unwrap(), raw);
    assert_eq!(v["generate_stream"].as_str().unwrap(), raw);
    assert_eq!(v["chat"].as_str().unwrap(), chat);
    assert_eq!(v["chat_stream"].as_str().unwrap(), chat);
}

#[test]
fn ollama_client_smollm2() {
    ollama_client_matches_run(common::SMOLLM2, "The sky is blue because", 24);
}

#[test]
fn ollama_client_qwen() {
    ollama_client_matches_run(QWEN, "Write a Python function that reverses a string.", 32);
}
