//! Log probabilities (`logprobs`, `top_logprobs`) on `/api/generate`, `/api/chat` and
//! `/v1/chat/completions` through the official clients on SmolLM2, and their refusals.

mod common;

use common::server::{run_client, Server};
use serde_json::json;

#[test]
fn clients_get_logprobs_smollm2() {
    let s = Server::start(&[("m", common::SMOLLM2)], &[]);
    let out = run_client(&s, "logprobs_client.py", &["m"]);
    assert!(out.trim_end().ends_with("ok 4"), "{out}");
}

#[test]
fn refusals() {
    let s = Server::start(&[("m", common::SMOLLM2)], &[]);
    let user = json!([{"role": "user", "content": "hi"}]);
    for (path, body, want) in [
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": user, "logprobs": true, "top_logprobs": 21}),
            "top_logprobs",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": user, "top_logprobs": 2}),
            "needs logprobs",
        ),
        (
            "/v1/completions",
            json!({"model": "m", "prompt": "hi", "logprobs": 2}),
            "/v1/completions",
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": user, "logprobs": true, "top_logprobs": -1}),
            "top_logprobs",
        ),
    ] {
        let (status, text) = s.post(path, &body.to_string());
        assert_eq!(status, 400, "{path} {body}: {text}");
        assert!(text.contains(want), "{path} {body}: {text}");
    }
}
