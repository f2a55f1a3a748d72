//! The official Python clients against `hearth serve`: greedy output through each API
//! equals `hearth run` for the same prompt and options, on SmolLM2 and Qwen2.5-Coder.

mod common;

use common::server::{run_chat_greedy, run_client, run_raw_greedy, Server, QWEN};
use serde_json::Value;

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
