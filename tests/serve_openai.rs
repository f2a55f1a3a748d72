//! OpenAI's API on `hearth serve` over loopback: completions and chat against `hearth run`,
//! server-sent event framing, errors in OpenAI's shape, the models endpoints, and the
//! official `openai` Python client against SmolLM2 and Qwen2.5-Coder.

mod common;

use common::server::{run_chat_greedy, run_client, run_raw_greedy, Server, QWEN};
use serde_json::{json, Value};

/// The JSON objects of an SSE body; asserts the framing (`data: ` blocks separated by a
/// blank line, `[DONE]` last).
fn sse_objects(body: &str) -> Vec<Value> {
    assert!(body.ends_with("data: [DONE]\n\n"), "no [DONE] last: {body}");
    let blocks: Vec<&str> = body.split_terminator("\n\n").collect();
    let (done, events) = blocks.split_last().unwrap();
    assert_eq!(*done, "data: [DONE]");
    events
        .iter()
        .map(|b| {
            let data = b
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {b:?}"));
            serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
        })
        .collect()
}

/// Asserts OpenAI's error shape and returns the message.
fn openai_error(status: u16, want_status: u16, body: &str) -> String {
    assert_eq!(status, want_status, "{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let e = &v["error"];
    let kind = match want_status {
        404 => "not_found_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    assert_eq!(e["type"], kind, "{body}");
    assert!(e["param"].is_null() && e["code"].is_null(), "{body}");
    e["message"].as_str().unwrap().to_string()
}

fn usage_of(v: &Value) -> (u64, u64, u64, u64) {
    let u = &v["usage"];
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
    )
}

#[test]
fn completions_and_chat_over_http() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let gguf = common::test_model(common::SMOLLM2);
    let prompt = "The three primary colors are";
    let want = run_raw_greedy(&gguf, prompt, 20);

    // Completions, not streamed: the text of `hearth run --raw`.
    let body = json!({"model": "smol", "prompt": prompt, "temperature": 0, "max_tokens": 20});
    let (status, text) = s.post("/v1/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"), "{v}");
    assert_eq!(v["model"], "smol");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &v["choices"][0];
    assert_eq!(choice["text"].as_str().unwrap(), want);
    assert_eq!(choice["index"], 0);
    assert!(choice["logprobs"].is_null());
    assert_eq!(choice["finish_reason"], "length");
    let (prompt_tokens, completion, total, _) = usage_of(&v);
    assert_eq!(completion, 20);
    assert_eq!(total, prompt_tokens + completion);

    // Streamed with usage: the same text, the same prompt length; its prefix is cached.
    let mut body = body;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, text) = s.post("/v1/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let objs = sse_objects(&text);
    let (usage_chunk, chunks) = objs.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    let (p2, c2, t2, cached) = usage_of(usage_chunk);
    assert_eq!((p2, c2, t2), (prompt_tokens, completion, total));
    assert!(cached > 0 && cached < p2, "{usage_chunk}");
    assert!(chunks.iter().all(|c| c["usage"].is_null()
        && c["object"] == "text_completion"
        && c["id"] == usage_chunk["id"]));
    let got: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    let (finish, rest) = chunks.split_last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(rest
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));

    // A one-string array is a prompt; max_tokens defaults to OpenAI's 16.
    let body = json!({"model": "smol", "prompt": [prompt], "temperature": 0});
    let (status, text) = s.post("/v1/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(usage_of(&v).1, 16, "{v}");
    assert!(want.starts_with(v["choices"][0]["text"].as_str().unwrap()));

    // Chat, streamed: role first, content deltas, the finish chunk, [DONE]; no usage
    // without include_usage. Its content equals the non-streamed answer and `hearth run`.
    let question = "What is the capital of France?";
    let want = run_chat_greedy(&gguf, question, 12);
    let body = json!({"model": "smol", "stream": true, "temperature": 0, "max_tokens": 12,
                      "messages": [{"role": "user", "content": question}]});
    let (status, text) = s.post("/v1/chat/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let chunks = sse_objects(&text);
    assert!(chunks.len() >= 3, "{text}");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()
        && c["object"] == "chat.completion.chunk"
        && c["system_fingerprint"] == "fp_hearth"
        && c["id"] == chunks[0]["id"]));
    assert!(chunks[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let (finish, rest) = chunks.split_last().unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let reason = finish["choices"][0]["finish_reason"].as_str().unwrap();
    assert!(reason == "stop" || reason == "length", "{finish}");
    assert!(rest
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    let streamed: String = rest
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, want);

    // Not streamed, content given as text parts (joined), with the Ollama extensions.
    let body = json!({"model": "smol", "max_completion_tokens": 12, "num_ctx": 1024,
                      "keep_alive": "1m", "options": {"temperature": 0},
                      "messages": [{"role": "user",
                                    "content": [{"type": "text", "text": question}]}]});
    let (status, text) = s.post("/v1/chat/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str().unwrap(),
        want
    );
    assert_eq!(v["choices"][0]["finish_reason"], reason);
    let (p, c, t, _) = usage_of(&v);
    assert!(p > 0 && c > 0 && t == p + c, "{v}");
    assert!(v.get("truncated").is_none(), "{v}");

    // A conversation longer than num_ctx: the oldest messages are dropped and the answer
    // says so; with `truncate: false` it is a 400.
    let filler = "the quick brown fox jumps over the lazy dog ".repeat(6);
    let long = json!([{"role": "user", "content": filler}, {"role": "assistant", "content": filler},
                      {"role": "user", "content": filler}, {"role": "assistant", "content": filler},
                      {"role": "user", "content": "Say hi."}]);
    let body = json!({"model": "smol", "messages": long, "num_ctx": 128, "max_tokens": 2});
    let (status, text) = s.post("/v1/chat/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["truncated"]["messages"].as_u64().unwrap() >= 1, "{v}");
    assert!(usage_of(&v).0 < 128, "{v}");
    let mut body = body;
    body["stream"] = json!(true);
    let (status, text) = s.post("/v1/chat/completions", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let chunks = sse_objects(&text);
    assert_eq!(
        chunks.last().unwrap()["truncated"],
        v["truncated"],
        "{text}"
    );
    body["truncate"] = json!(false);
    let (status, text) = s.post("/v1/chat/completions", &body.to_string());
    assert!(
        openai_error(status, 400, &text).contains("context length"),
        "{text}"
    );
}

#[test]
fn errors_and_models() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let chat = |body: Value| s.post("/v1/chat/completions", &body.to_string());
    let msgs = json!([{"role": "user", "content": "hi"}]);

    let (st, b) = chat(json!({"model": "smol", "messages": msgs, "n": 2}));
    assert_eq!(openai_error(st, 400, &b), "n > 1 is not supported");
    let (st, b) = chat(json!({"model": "nope", "messages": msgs}));
    assert!(
        openai_error(st, 404, &b).contains("'nope' not found"),
        "{b}"
    );
    let (st, b) = s.post("/v1/chat/completions", "{\"model\": \"smol\", ");
    openai_error(st, 400, &b);
    let (st, b) = s.post("/v1/chat/completions", "");
    openai_error(st, 400, &b);
    let (st, b) = chat(json!({"model": "smol", "messages": []}));
    openai_error(st, 400, &b);
    let (st, b) = chat(json!({"messages": msgs}));
    assert_eq!(openai_error(st, 400, &b), "model is required");
    let image = json!([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]);
    let (st, b) = chat(json!({"model": "smol", "messages": image}));
    assert!(openai_error(st, 400, &b).contains("text-only"), "{b}");
    let (st, b) = chat(json!({"model": "smol", "messages": msgs, "stop": 3}));
    openai_error(st, 400, &b);
    let (st, b) = chat(json!({"model": "smol", "messages": msgs,
                              "response_format": {"type": "xml"}}));
    openai_error(st, 400, &b);
    let (st, b) = chat(json!({"model": "smol", "messages": msgs, "temperature": "hot"}));
    openai_error(st, 400, &b);

    let completion = |body: Value| s.post("/v1/completions", &body.to_string());
    let (st, b) = completion(json!({"model": "smol", "prompt": "a", "n": 2}));
    assert_eq!(openai_error(st, 400, &b), "n > 1 is not supported");
    let (st, b) = completion(json!({"model": "smol", "prompt": ["a", "b"]}));
    openai_error(st, 400, &b);
    let (st, b) = completion(json!({"model": "smol", "prompt": "a", "suffix": "b"}));
    openai_error(st, 400, &b);
    let (st, b) = completion(json!({"model": "smol", "prompt": "a", "echo": true}));
    openai_error(st, 400, &b);
    let (st, b) = completion(json!({"model": "nope", "prompt": "a"}));
    openai_error(st, 404, &b);

    let (st, b) = s.get("/v1/models");
    assert_eq!(st, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{v}");
    let m = &data[0];
    assert_eq!(m["id"], "smol:latest");
    assert_eq!(m["object"], "model");
    assert_eq!(m["owned_by"], "library");
    assert!(m["created"].as_u64().unwrap() > 1_600_000_000, "{m}");
    for name in ["smol:latest", "smol"] {
        let (st, b) = s.get(&format!("/v1/models/{name}"));
        assert_eq!(st, 200, "{b}");
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap(), *m);
    }
    let (st, b) = s.get("/v1/models/nope:latest");
    openai_error(st, 404, &b);
    let (st, b) = s.get("/v1/models/someone/nope:latest");
    openai_error(st, 404, &b);
}

/// The official client against both models; greedy answers equal `hearth run`'s.
#[test]
fn official_openai_client() {
    let s = Server::start(&[("smol", common::SMOLLM2), ("qwen", QWEN)], &[]);
    let out = run_client(&s, "openai_client.py", &["smol", "qwen:latest"]);
    let results: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(results.len(), 2, "{out}");
    for (r, file) in results.iter().zip([common::SMOLLM2, QWEN]) {
        eprintln!("{file}: {r}");
        let gguf = common::test_model(file);
        // The script's prompts and lengths.
        let chat = run_chat_greedy(&gguf, "Why is the sky blue? Answer in one sentence.", 24);
        assert_eq!(r["chat"].as_str().unwrap(), chat, "{file}");
        assert_eq!(r["chat_streamed"].as_str().unwrap(), chat, "{file}");
        let text = run_raw_greedy(&gguf, "The three primary colors are", 20);
        assert_eq!(r["completion"].as_str().unwrap(), text, "{file}");
    }
}
