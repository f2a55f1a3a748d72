//! `hearth serve` over HTTP on loopback: Ollama's generate and chat against `hearth run`,
//! streaming, preload and unload, and bad input.

mod common;

use common::server::{run_raw_greedy, Server};
use serde_json::{json, Value};

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn generate_equals_run_streamed_and_not() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let prompt = "The three primary colors are";
    let want = run_raw_greedy(&common::test_model(common::SMOLLM2), prompt, 24);
    let body = json!({"model": "smol", "prompt": prompt, "raw": true,
                      "options": {"temperature": 0, "num_predict": 24}});
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let objs = lines(&text);
    let got: String = objs.iter().filter_map(|o| o["response"].as_str()).collect();
    assert_eq!(got, want);
    let last = objs.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 24);
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 0);
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[k].is_u64(), "{k} in {last}");
    }
    assert!(last["context"].as_array().unwrap().len() > 24);
    assert!(objs[..objs.len() - 1].iter().all(|o| o["done"] == false));

    let mut body = body;
    body["stream"] = json!(false);
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"].as_str().unwrap(), want);
    assert_eq!(v["done"], true);
}

/// Greedy text of a raw generate request, with the response's final object.
fn generate(s: &Server, prompt: &str, n: usize, extra: Value) -> (String, Value) {
    let mut body = json!({"model": "smol", "prompt": prompt, "raw": true, "stream": false,
                          "options": {"temperature": 0, "num_predict": n}});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    (v["response"].as_str().unwrap().to_string(), v)
}

const PROMPTS: [&str; 8] = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three laws of thermodynamics are",
    "Water boils at",
    "My favourite recipe for bread is",
    "1, 2, 3, 4, 5,",
    "The quick brown fox",
];

#[test]
fn eight_concurrent_requests_equal_each_alone_and_share_steps() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_NUM_PARALLEL", "8")],
    );
    let alone: Vec<String> = PROMPTS
        .iter()
        .map(|p| generate(&s, p, 32, json!({})).0)
        .collect();
    let steps_before = s.metric("hearth_sequences_per_step_bucket{le=\"1\"}");
    let together: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = PROMPTS
            .iter()
            .map(|p| sc.spawn(|| generate(&s, p, 32, json!({})).0))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a, t, "prompt {i} ({:?}) differs when batched", PROMPTS[i]);
    }
    let single = s.metric("hearth_sequences_per_step_bucket{le=\"1\"}") - steps_before;
    let all = s.metric("hearth_sequences_per_step_count");
    let multi = all - s.metric("hearth_sequences_per_step_bucket{le=\"1\"}");
    assert!(
        multi > 0.0,
        "no step carried more than one sequence ({single} single)"
    );
    // 8 x 32 tokens: batched, far fewer steps than tokens.
    assert!(
        s.metric("hearth_sequences_per_step_bucket{le=\"4\"}") < all,
        "never more than 4 at once"
    );
}

#[test]
fn a_full_queue_answers_503_and_the_rest_complete() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_NUM_PARALLEL", "1"), ("HEARTH_MAX_QUEUE", "2")],
    );
    let want = generate(&s, PROMPTS[2], 48, json!({})).0;
    let results: Vec<(u16, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    let body = json!({"model": "smol", "prompt": PROMPTS[2], "raw": true, "stream": false,
                                      "options": {"temperature": 0, "num_predict": 48}});
                    s.post("/api/generate", &body.to_string())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ok = 0;
    let mut busy = 0;
    for (status, text) in &results {
        match status {
            200 => {
                let v: Value = serde_json::from_str(text).unwrap();
                assert_eq!(v["response"].as_str().unwrap(), want);
                ok += 1;
            }
            503 => {
                assert_eq!(
                    text,
                    r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#
                );
                busy += 1;
            }
            _ => panic!("unexpected {status}: {text}"),
        }
    }
    assert!(
        ok >= 2 && busy >= 1 && ok + busy == 8,
        "{ok} ok, {busy} busy"
    );
    // Nothing is left waiting.
    assert_eq!(s.metric("hearth_queue_depth"), 0.0);
    assert_eq!(generate(&s, PROMPTS[0], 4, json!({})).1["done"], true);
}

#[test]
fn a_disconnect_frees_the_slot_at_once() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_NUM_PARALLEL", "1")],
    );
    let body = json!({"model": "smol", "prompt": "Tell me a very long story.",
                      "options": {"temperature": 0, "num_predict": 4000}});
    // Read five chunks, then drop the connection.
    s.stream_lines("/api/generate", &body, |i, _, _| i < 5);
    let t0 = std::time::Instant::now();
    let mut first = None;
    let body = json!({"model": "smol", "prompt": "Hi", "options": {"num_predict": 3}});
    s.stream_lines("/api/generate", &body, |_, _, _| {
        first.get_or_insert(t0.elapsed());
        true
    });
    let first = first.unwrap().as_secs_f64();
    assert!(
        first < 2.0,
        "the next request waited {first:.2} s for the slot"
    );
    assert_eq!(s.metric("hearth_active_sequences"), 0.0);
}

#[test]
fn a_second_chat_turn_computes_only_its_new_tokens() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let system = "You are a helpful assistant. ".repeat(30);
    let chat = |messages: &Value| {
        let body = json!({"model": "smol", "messages": messages, "stream": false,
                          "options": {"temperature": 0, "num_predict": 12}});
        let (status, text) = s.post("/api/chat", &body.to_string());
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let mut messages = json!([{"role": "system", "content": system},
                              {"role": "user", "content": "What is the capital of France?"}]);
    let first = chat(&messages);
    let n1 = first["prompt_eval_count"].as_u64().unwrap();
    messages
        .as_array_mut()
        .unwrap()
        .push(first["message"].clone());
    messages
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "user", "content": "And of Italy?"}));
    let second = chat(&messages);
    let n2 = second["prompt_eval_count"].as_u64().unwrap();
    assert!(n1 > 150, "first turn computed {n1}");
    assert!(
        n2 < 40,
        "second turn computed {n2} tokens, not just its own"
    );
    assert!(s.metric("hearth_prompt_tokens_reused_total") >= (n1 - 1) as f64);
}

#[test]
fn a_shared_system_prompt_is_copied_from_a_busy_slot() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let system = "You are a helpful assistant who answers in full sentences. ".repeat(12);
    let body = |q: &str, n: usize, stream: bool| {
        json!({"model": "smol", "stream": stream,
               "messages": [{"role": "system", "content": system}, {"role": "user", "content": q}],
               "options": {"temperature": 0, "num_predict": n}})
    };
    let mut first_eval = 0;
    let mut second = Value::Null;
    s.stream_lines(
        "/api/chat",
        &body("Tell me a long story.", 300, true),
        |i, v, _| {
            if i == 3 {
                // The first request is decoding in its slot; this one takes another slot.
                let (status, text) =
                    s.post("/api/chat", &body("What is 2+2?", 4, false).to_string());
                assert_eq!(status, 200, "{text}");
                second = serde_json::from_str(&text).unwrap();
            }
            if v["done"] == true {
                first_eval = v["prompt_eval_count"].as_u64().unwrap();
            }
            true
        },
    );
    let n2 = second["prompt_eval_count"].as_u64().unwrap();
    assert!(first_eval > 150, "first computed {first_eval}");
    assert!(
        n2 < 40,
        "the second request computed {n2} tokens: the system prompt was not copied"
    );
    // The copy changes nothing: the same answer as computed from scratch.
    let s2 = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let (_, text) = s2.post("/api/chat", &body("What is 2+2?", 4, false).to_string());
    let alone: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(alone["message"]["content"], second["message"]["content"]);
    assert!(alone["prompt_eval_count"].as_u64().unwrap() > 150);
}

#[test]
fn preload_unload_and_per_request_context() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let (status, text) = s.post("/api/generate", r#"{"model":"smol"}"#);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["done_reason"], "load");
    assert_eq!(s.metric("hearth_model_loads_total"), 1.0);
    // Different num_ctx per request: no reload.
    for ctx in [256, 2048, 512] {
        let (_, v) = generate(
            &s,
            "Hello",
            2,
            json!({"options": {"num_ctx": ctx, "num_predict": 2}}),
        );
        assert_eq!(v["done"], true);
    }
    assert_eq!(s.metric("hearth_model_loads_total"), 1.0);
    let (status, text) = s.post(
        "/api/chat",
        r#"{"model":"smol","messages":[],"keep_alive":0}"#,
    );
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["done_reason"], "unload");
    // keep_alive 0 on a real request: unloaded once it ends.
    let (_, v) = generate(&s, "Hello", 2, json!({"keep_alive": 0}));
    assert_eq!(v["done"], true);
    let t0 = std::time::Instant::now();
    while s.metric("hearth_model_unloads_total") < 2.0 {
        assert!(t0.elapsed().as_secs() < 10, "not unloaded");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(s.metric("hearth_model_loads_total"), 2.0);
}

#[test]
fn context_overflow_is_never_silent() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let long = "Tell me about the history of the Roman empire in great detail. ".repeat(6);
    let mut messages = Vec::new();
    for i in 0..8 {
        messages.push(json!({"role": "user", "content": format!("{i}: {long}")}));
        messages.push(json!({"role": "assistant", "content": "I see."}));
    }
    messages.push(json!({"role": "user", "content": "Summarise."}));
    let body = json!({"model": "smol", "messages": messages, "stream": false,
                      "options": {"num_ctx": 400, "num_predict": 4}});
    let (status, text) = s.post("/api/chat", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let dropped = v["truncated"]["messages"].as_u64().unwrap();
    assert!(dropped >= 8, "{v}");
    assert!(v["truncated"]["tokens"].as_u64().unwrap() > 400);
    assert!(v["prompt_eval_count"].as_u64().unwrap() < 400);
    assert!(s.log_contains("prompt truncated"));

    let mut body = body;
    body["truncate"] = json!(false);
    let (status, text) = s.post("/api/chat", &body.to_string());
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("context length is 400") && text.contains("tokens"),
        "{text}"
    );

    let body = json!({"model": "smol", "prompt": long.repeat(3), "options": {"num_ctx": 64}});
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("context length is 64"), "{text}");
}

#[test]
fn bad_input_gets_a_clear_4xx_and_the_server_keeps_serving() {
    // A budget that holds SmolLM2 with small contexts (about 160 MiB planned at
    // num_ctx 512) but not the cache of num_ctx 8192.
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_MAX_MEMORY", "200MiB")],
    );
    // Loaded first at a small context, so that the num_ctx 8192 case below reaches the
    // per-request cache check (a load planned at 8192 is refused by placement instead).
    let (_, v) = generate(
        &s,
        "Hello",
        1,
        json!({"options": {"num_predict": 1, "num_ctx": 512}}),
    );
    assert_eq!(v["eval_count"], 1);
    let cases: &[(&str, &str, u16, &str)] = &[
        ("/api/generate", "{not json", 400, ""),
        ("/api/generate", "", 400, "missing request body"),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":5}"#,
            400,
            "invalid type",
        ),
        (
            "/api/generate",
            r#"{"prompt":"hi"}"#,
            400,
            "model is required",
        ),
        (
            "/api/generate",
            r#"{"model":"nope","prompt":"hi"}"#,
            404,
            "model 'nope' not found",
        ),
        (
            "/api/chat",
            r#"{"model":"nope","messages":[]}"#,
            404,
            "model 'nope' not found",
        ),
        (
            "/api/chat",
            r#"{"model":"smol","messages":"hi"}"#,
            400,
            "invalid type",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","context":[1,99999999],"options":{"num_ctx":512}}"#,
            400,
            "outside the vocabulary",
        ),
        (
            "/api/generate",
            r#"{"model":"Bad Name!","prompt":"hi"}"#,
            400,
            "",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","options":{"temperature":"hot"}}"#,
            400,
            "temperature",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","options":{"num_predict":1.5}}"#,
            400,
            "num_predict",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","keep_alive":"soon"}"#,
            400,
            "keep_alive",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","images":["aGk="]}"#,
            400,
            "does not support images",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","raw":true,"system":"x"}"#,
            400,
            "raw mode",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","format":5}"#,
            400,
            "format",
        ),
        (
            "/api/generate",
            r#"{"model":"smol","prompt":"hi","options":{"num_ctx":8192}}"#,
            400,
            "MiB",
        ),
    ];
    for (path, body, want, needle) in cases {
        let (status, text) = s.post(path, body);
        assert_eq!(status, *want, "{path} {body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {text}"));
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // A body over the limit is refused from its declared length, before it is read (the
    // client sends only the head: writing 33 MiB into a closing connection races).
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
        write!(
            c,
            "POST /api/generate HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            s.addr(),
            33u64 << 20
        )
        .unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut head = [0u8; 64];
        let n = c.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    let (status, _) = s.get("/api/nothing");
    assert_eq!(status, 404);
    // Unknown options are ignored, as Ollama does; a small num_ctx fits the memory cap.
    let (_, v) = generate(
        &s,
        "Hello",
        3,
        json!({"options": {"num_predict": 3, "mirostat": 2, "num_ctx": 512}}),
    );
    assert_eq!(v["eval_count"], 3);
}
