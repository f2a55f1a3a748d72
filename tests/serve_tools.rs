//! Tool calls and thinking through `hearth serve`: the official clients on Qwen2.5-Coder
//! (whose template has tools) with `tool_choice` enforced in every API, streamed calls
//! reassembled and full round trips; the refusals (a model without tools or thinking,
//! an unknown function); and thinking split out in every API's own field, on SmolLM2
//! given a thinking template (a Go template that opens `<think>` for the model, as
//! DeepSeek-R1's does, or closes it when `think` is false, as Qwen 3's does).

mod common;

use common::server::{create_model, run_client, Server, TempDir, QWEN};
use serde_json::{json, Value};

#[test]
fn clients_call_tools_qwen() {
    let s = Server::start(&[("m", QWEN)], &[]);
    let out = run_client(&s, "tools_client.py", &["m"]);
    let last = out.trim_end().lines().last().unwrap_or("");
    let n: usize = last
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(n >= 20, "{out}");
}

fn error_message(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{text}"));
    match &v["error"] {
        Value::String(s) => s.clone(),
        e => e["message"].as_str().unwrap_or_default().to_string(),
    }
}

const WEATHER: &str = r#"{"type": "object", "properties": {"city": {"type": "string"}}}"#;

#[test]
fn refusals_name_the_cause() {
    let s = Server::start(&[("smol", common::SMOLLM2), ("qwen", QWEN)], &[]);
    let schema: Value = serde_json::from_str(WEATHER).unwrap();
    let chat_tools = json!([{"type": "function", "function": {"name": "w", "parameters": schema}}]);
    let user = json!([{"role": "user", "content": "hi"}]);
    // SmolLM2's template shows no tools: every API says so.
    let bodies = [
        (
            "/api/chat",
            json!({"model": "smol", "messages": user, "tools": chat_tools, "stream": false}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "smol", "messages": user, "tools": chat_tools}),
        ),
        (
            "/v1/responses",
            json!({"model": "smol", "input": "hi",
                   "tools": [{"type": "function", "name": "w", "parameters": schema}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "smol", "max_tokens": 5, "messages": user,
                   "tools": [{"name": "w", "input_schema": schema}]}),
        ),
    ];
    for (path, body) in &bodies {
        let (status, text) = s.post(path, &body.to_string());
        assert_eq!(status, 400, "{path}: {text}");
        assert!(
            error_message(&text).contains("does not support tools"),
            "{path}: {text}"
        );
    }
    // A choice naming a function that was not offered, or a malformed choice or tool.
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "qwen", "messages": user, "tools": chat_tools,
                   "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "nope",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen", "messages": user, "tools": chat_tools,
                   "tool_choice": "sometimes"}),
            "sometimes",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen", "messages": user, "tool_choice": "required"}),
            "tool",
        ),
        (
            "/v1/messages",
            json!({"model": "qwen", "max_tokens": 5, "messages": user,
                   "tools": [{"name": "w", "input_schema": schema}],
                   "tool_choice": {"type": "tool", "name": "nope"}}),
            "nope",
        ),
        (
            "/v1/messages",
            json!({"model": "qwen", "max_tokens": 5, "messages": user,
                   "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            "web_search",
        ),
        (
            "/v1/responses",
            json!({"model": "qwen", "input": "hi", "tools": [{"type": "file_search"}]}),
            "file_search",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen", "messages": user, "tools": [{"type": "function",
                   "function": {"name": "w", "parameters": {"type": "object", "not": {}}}}]}),
            "not",
        ),
        // Neither model's template thinks.
        (
            "/api/chat",
            json!({"model": "qwen", "messages": user, "think": true, "stream": false}),
            "does not support thinking",
        ),
        (
            "/api/generate",
            json!({"model": "smol", "prompt": "hi", "think": "high", "stream": false}),
            "does not support thinking",
        ),
        (
            "/api/chat",
            json!({"model": "qwen", "messages": user, "think": "very"}),
            "invalid think value",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen", "messages": user, "reasoning_effort": "high"}),
            "does not support thinking",
        ),
        (
            "/v1/messages",
            json!({"model": "qwen", "max_tokens": 5, "messages": user,
                   "thinking": {"type": "enabled", "budget_tokens": 1024}}),
            "does not support thinking",
        ),
    ];
    for (path, body, want) in cases {
        let (status, text) = s.post(path, &body.to_string());
        assert_eq!(status, 400, "{path} {body}: {text}");
        assert!(error_message(&text).contains(want), "{path} {body}: {text}");
    }
    // Turning thinking off, or tools with tool_choice none, is fine on any model.
    let body = json!({"model": "smol", "messages": user, "think": false, "stream": false,
                      "options": {"num_predict": 3}});
    assert_eq!(s.post("/api/chat", &body.to_string()).0, 200);
    let body = json!({"model": "smol", "messages": user, "tools": chat_tools,
                      "tool_choice": "none", "max_tokens": 3});
    assert_eq!(s.post("/v1/chat/completions", &body.to_string()).0, 200);
}

/// SmolLM2 with a thinking template: with `think` unset or true the prompt ends inside
/// `<think>` (so everything the model writes in a few tokens is thinking); with `think`
/// false the block is closed in the prompt and the model answers.
const THINKING_TEMPLATE: &str = r#"TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if and .IsThinkSet (not .Think) }}<think>

</think>

{{ else }}<think>
{{ end }}"""
PARAMETER temperature 0
"#;

#[test]
fn thinking_reaches_every_api() {
    let dir = TempDir::new("think");
    let store = dir.0.join("models");
    std::fs::create_dir_all(&store).unwrap();
    let gguf = common::test_model(common::SMOLLM2);
    create_model(&store, "thinker", &gguf, THINKING_TEMPLATE);
    let s = Server::start_in(dir, store, &[]);
    let user = json!([{"role": "user", "content": "What is 2 + 2?"}]);

    // Ollama: message.thinking (whole and streamed), nothing in content.
    let body = json!({"model": "thinker", "messages": user, "think": true, "stream": false,
                      "options": {"num_predict": 8}});
    let (status, text) = s.post("/api/chat", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let thinking = v["message"]["thinking"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!thinking.is_empty(), "{text}");
    assert_eq!(v["message"]["content"], "", "{text}");
    let mut streamed = String::new();
    s.stream_lines(
        "/api/chat",
        &json!({"model": "thinker", "messages": user, "options": {"num_predict": 8}}),
        |_, l, _| {
            streamed.push_str(l["message"]["thinking"].as_str().unwrap_or_default());
            true
        },
    );
    assert_eq!(streamed, thinking);
    // generate: `thinking` beside `response`.
    let body = json!({"model": "thinker", "prompt": "What is 2 + 2?", "stream": false,
                      "options": {"num_predict": 8}});
    let v: Value = serde_json::from_str(&s.post("/api/generate", &body.to_string()).1).unwrap();
    assert_eq!(v["thinking"].as_str(), Some(thinking.as_str()), "{v}");
    assert_eq!(v["response"], "");
    // think: false closes the block in the prompt: an answer, no thinking.
    let body = json!({"model": "thinker", "messages": user, "think": false, "stream": false,
                      "options": {"num_predict": 8}});
    let v: Value = serde_json::from_str(&s.post("/api/chat", &body.to_string()).1).unwrap();
    assert!(v["message"].get("thinking").is_none(), "{v}");
    assert!(!v["message"]["content"].as_str().unwrap().is_empty(), "{v}");

    // OpenAI chat: reasoning_content.
    let body = json!({"model": "thinker", "messages": user, "max_tokens": 8,
                      "temperature": 0, "reasoning_effort": "low"});
    let v: Value =
        serde_json::from_str(&s.post("/v1/chat/completions", &body.to_string()).1).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"].as_str(),
        Some(thinking.as_str()),
        "{v}"
    );
    // Responses: a reasoning item.
    let body = json!({"model": "thinker", "input": "What is 2 + 2?", "max_output_tokens": 8,
                      "temperature": 0});
    let v: Value = serde_json::from_str(&s.post("/v1/responses", &body.to_string()).1).unwrap();
    assert_eq!(v["output"][0]["type"], "reasoning", "{v}");
    assert_eq!(
        v["output"][0]["content"][0]["text"].as_str(),
        Some(thinking.as_str())
    );
    // Anthropic: a thinking block.
    let body = json!({"model": "thinker", "max_tokens": 8, "messages": user, "temperature": 0,
                      "thinking": {"type": "enabled", "budget_tokens": 1024}});
    let v: Value = serde_json::from_str(&s.post("/v1/messages", &body.to_string()).1).unwrap();
    assert_eq!(v["content"][0]["type"], "thinking", "{v}");
    assert_eq!(
        v["content"][0]["thinking"].as_str(),
        Some(thinking.as_str())
    );
}

/// `hearth run --think`/`--hidethinking` on the thinking template: the thinking between
/// Ollama's markers or hidden, `--think=false` an answer, and a model that cannot think
/// refusing `--think`.
#[test]
fn run_shows_or_hides_thinking() {
    let dir = TempDir::new("think-run");
    let store = dir.0.join("models");
    std::fs::create_dir_all(&store).unwrap();
    create_model(
        &store,
        "thinker",
        &common::test_model(common::SMOLLM2),
        THINKING_TEMPLATE,
    );
    create_model(&store, "plain", &common::test_model(common::SMOLLM2), "");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::server::hearth())
            .arg("run")
            .args(args)
            .args(["-o", "num_predict=10"])
            .env("HEARTH_MODELS", &store)
            .env("HEARTH_HOME", &dir.0)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, shown, err) = run(&["thinker", "What is 2+2?"]);
    assert!(ok, "{err}");
    assert!(shown.starts_with("Thinking...\n"), "{shown}");
    assert!(shown.trim_end().ends_with("...done thinking."), "{shown}");
    let (ok, hidden, err) = run(&["thinker", "--hidethinking", "What is 2+2?"]);
    assert!(ok, "{err}");
    assert_eq!(hidden.trim(), "", "{hidden}");
    let (ok, answer, err) = run(&["thinker", "--think=false", "What is 2+2?"]);
    assert!(ok, "{err}");
    assert!(
        !answer.trim().is_empty() && !answer.contains("Thinking..."),
        "{answer}"
    );
    let (ok, _, err) = run(&["plain", "--think", "hi"]);
    assert!(!ok);
    assert!(err.contains("does not support thinking"), "{err}");
    let (ok, _, err) = run(&["plain", "--think=maybe", "hi"]);
    assert!(!ok);
    assert!(err.contains("invalid think value"), "{err}");
}
