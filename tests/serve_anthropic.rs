//! Anthropic's Messages API on `hearth serve` over loopback: `/v1/messages` (whole and
//! streamed, in Anthropic's event sequence) and `/v1/messages/count_tokens` against
//! `hearth run`, errors in Anthropic's shape, a disconnect and a full queue, and the
//! official `anthropic` Python client against SmolLM2 and Qwen2.5-Coder.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::server::{run_chat_greedy, run_client, Server, QWEN};
use serde_json::{json, Value};

const QUESTION: &str = "What is the capital of France?";

/// POSTs JSON with Anthropic's headers; returns (status, content type, body).
fn post(s: &Server, path: &str, body: &str) -> (u16, String, String) {
    let r = ureq::post(&format!("{}{path}", s.url))
        .set("Content-Type", "application/json")
        .set("x-api-key", "any-key-is-fine-without-HEARTH_API_KEY")
        .set("anthropic-version", "2023-06-01")
        .timeout(Duration::from_secs(300))
        .send_string(body);
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let kind = resp.content_type().to_string();
    (resp.status(), kind, resp.into_string().unwrap_or_default())
}

/// The (name, data) of each event of a body of named server-sent events; asserts the
/// framing (`event: NAME`, `data: JSON`, a blank line) and that `type` repeats the name.
fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"), "{body}");
    body.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').unwrap_or_else(|| panic!("{block}"));
            let name = event
                .strip_prefix("event: ")
                .unwrap_or_else(|| panic!("{block}"));
            let data = data
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("{block}"));
            let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
            assert_eq!(v["type"], name, "{block}");
            (name.to_string(), v)
        })
        .collect()
}

/// Asserts Anthropic's error shape with `kind` and returns the message.
fn anthropic_error(got: (u16, String, String), status: u16, kind: &str) -> String {
    let (st, content_type, body) = got;
    assert_eq!(st, status, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["type"], "error", "{body}");
    assert_eq!(v["error"]["type"], kind, "{body}");
    v["error"]["message"].as_str().unwrap().to_string()
}

fn ask(extra: Value) -> Value {
    let mut body = json!({"model": "smol", "max_tokens": 12, "temperature": 0,
                          "messages": [{"role": "user", "content": QUESTION}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn messages_over_http() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let want = run_chat_greedy(&common::test_model(common::SMOLLM2), QUESTION, 12);

    // Whole, the question as a text block: `hearth run`'s answer.
    let body = ask(json!({"messages": [{"role": "user",
                                        "content": [{"type": "text", "text": QUESTION}]}],
                          "metadata": {"user_id": "u"}}));
    let (st, _, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "smol");
    assert_eq!(v["content"], json!([{"type": "text", "text": want}]));
    let reason = v["stop_reason"].as_str().unwrap();
    assert!(reason == "end_turn" || reason == "max_tokens", "{v}");
    assert!(v["stop_sequence"].is_null(), "{v}");
    let input_tokens = v["usage"]["input_tokens"].as_u64().unwrap();
    let output_tokens = v["usage"]["output_tokens"].as_u64().unwrap();
    assert!(input_tokens > 0 && output_tokens > 0, "{v}");

    // Streamed: Anthropic's exact event sequence, the same text and counts.
    let body = ask(json!({"stream": true}));
    let (st, content_type, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 200, "{text}");
    assert_eq!(content_type, "text/event-stream");
    let events = named_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let n = names.len();
    assert!(n > 7, "{names:?}");
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[n - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(names[3..n - 3].iter().all(|&n| n == "content_block_delta"));
    let start = &events[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_ne!(start["id"], v["id"]);
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_eq!(start["usage"]["input_tokens"], input_tokens);
    assert_eq!(
        events[1].1,
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}})
    );
    let streamed: String = events[3..n - 3]
        .iter()
        .map(|(_, e)| {
            assert_eq!(e["index"], 0);
            assert_eq!(e["delta"]["type"], "text_delta");
            e["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(streamed, want);
    let delta = &events[n - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], reason);
    assert!(delta["delta"]["stop_sequence"].is_null());
    assert_eq!(delta["usage"]["output_tokens"], output_tokens);
    assert_eq!(events[n - 3].1["index"], 0);

    // A stop sequence from the answer: cut before it, and named.
    let stop = format!(" {}", want.split_whitespace().nth(2).unwrap());
    let body = ask(json!({"stop_sequences": ["zzz-never", stop]}));
    let (st, _, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["stop_reason"], "stop_sequence", "{v}");
    assert_eq!(v["stop_sequence"], stop.as_str(), "{v}");
    assert_eq!(v["content"][0]["text"], want[..want.find(&stop).unwrap()]);

    // count_tokens: the prompt a generation would have, system included.
    let count = |body: Value| {
        let (st, _, text) = post(&s, "/v1/messages/count_tokens", &body.to_string());
        assert_eq!(st, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        v["input_tokens"].as_u64().unwrap()
    };
    let msgs = json!([{"role": "user", "content": QUESTION}]);
    assert_eq!(
        count(json!({"model": "smol", "messages": msgs})),
        input_tokens
    );
    let system = json!([{"type": "text", "text": "Answer in French."}]);
    let with_system = count(json!({"model": "smol", "messages": msgs, "system": system}));
    let body = ask(json!({"system": system, "max_tokens": 1}));
    let (st, _, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["input_tokens"], with_system, "{v}");
    assert_ne!(with_system, input_tokens);

    // Earlier turns with tool blocks go through the template (SmolLM2's shows no tools,
    // so tools cannot be offered to it: a 400); the answer is generated.
    let turns = json!([
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me add."},
            {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "4"}]}]},
    ]);
    let tools = json!([{"name": "add", "description": "Adds.",
                        "input_schema": {"type": "object", "properties": {}}}]);
    let body = ask(
        json!({"messages": turns, "tools": tools, "tool_choice": {"type": "auto"},
                          "max_tokens": 4}),
    );
    let (st, _, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("does not support tools"), "{text}");
    let body = ask(json!({"messages": turns, "max_tokens": 4}));
    let (st, _, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["output_tokens"], 4, "{v}");

    // output_config.format: the output follows the schema.
    let schema = json!({"type": "object", "additionalProperties": false,
                        "required": ["answer"],
                        "properties": {"answer": {"enum": ["yes", "no"]}}});
    let body = ask(json!({"max_tokens": 40,
                          "messages": [{"role": "user", "content": "Is Paris in France?"}],
                          "output_config": {"format": {"type": "json_schema", "schema": schema}}}));
    let (st, _, text) = post(&s, "/v1/messages", &body.to_string());
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
    let answer: Value = serde_json::from_str(v["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(
        answer == json!({"answer": "yes"}) || answer == json!({"answer": "no"}),
        "{v}"
    );
}

#[test]
fn errors_in_anthropic_shape() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let bad =
        |body: &str| anthropic_error(post(&s, "/v1/messages", body), 400, "invalid_request_error");
    let bad_json = |body: Value| bad(&body.to_string());

    bad("");
    bad("{\"model\": \"smol\", ");
    bad("[1, 2]");
    assert_eq!(
        bad_json(json!({"model": "smol", "messages": msgs})),
        "max_tokens: Field required"
    );
    bad_json(json!({"model": "smol", "messages": msgs, "max_tokens": 0}));
    bad_json(json!({"model": "smol", "messages": msgs, "max_tokens": "ten"}));
    assert_eq!(
        bad_json(json!({"messages": msgs, "max_tokens": 5})),
        "model: Field required"
    );
    bad_json(json!({"model": "smol", "max_tokens": 5}));
    bad_json(json!({"model": "smol", "max_tokens": 5, "messages": []}));
    bad_json(json!({"model": "smol", "max_tokens": 5, "messages": "hi"}));
    bad_json(json!({"model": "smol", "max_tokens": 5,
                    "messages": [{"role": "system", "content": "x"}]}));
    bad_json(json!({"model": "smol", "max_tokens": 5,
                    "messages": [{"role": "user", "content": 5}]}));
    bad_json(json!({"model": "smol", "max_tokens": 5,
                    "messages": [{"role": "user", "content": [{"type": "video"}]}]}));
    bad_json(json!({"model": "smol", "max_tokens": 5, "messages": msgs, "system": 3}));
    bad_json(json!({"model": "smol", "max_tokens": 5, "messages": msgs, "temperature": "hot"}));
    bad_json(json!({"model": "smol", "max_tokens": 5, "messages": msgs, "stop_sequences": "x"}));
    bad_json(json!({"model": "smol", "max_tokens": 5, "messages": msgs,
                    "output_config": {"format": {"type": "json_schema"}}}));
    let m = bad_json(json!({"model": "smol", "max_tokens": 5, "messages": msgs,
                            "output_config": {"format": {"type": "json_schema",
                                              "schema": {"type": "object", "not": {}}}}}));
    assert!(m.contains("not"), "{m}");
    let image = json!([{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}},
        {"type": "text", "text": "what is this?"}]}]);
    assert!(
        bad_json(json!({"model": "smol", "max_tokens": 5, "messages": image}))
            .contains("text-only")
    );
    // A prompt longer than the context is refused, not cut.
    let long = "the quick brown fox jumps over the lazy dog ".repeat(20);
    let m = bad_json(
        json!({"model": "smol", "max_tokens": 5, "options": {"num_ctx": 64},
                            "messages": [{"role": "user", "content": long}]}),
    );
    assert!(m.contains("context length"), "{m}");

    // An unknown model: 404, also when streaming (before the stream begins), when the
    // input has an image, and when counting.
    let nope = json!({"model": "nope", "max_tokens": 5, "messages": msgs});
    for body in [
        nope.clone(),
        json!({"model": "nope", "max_tokens": 5, "messages": msgs, "stream": true}),
        json!({"model": "nope", "max_tokens": 5, "messages": image}),
    ] {
        let m = anthropic_error(
            post(&s, "/v1/messages", &body.to_string()),
            404,
            "not_found_error",
        );
        assert!(m.contains("'nope' not found"), "{m}");
    }
    anthropic_error(
        post(&s, "/v1/messages/count_tokens", &nope.to_string()),
        404,
        "not_found_error",
    );
    anthropic_error(
        post(&s, "/v1/messages/count_tokens", "{\"model\": \"smol\"}"),
        400,
        "invalid_request_error",
    );
    anthropic_error(
        post(&s, "/v1/messages/count_tokens", "nope"),
        400,
        "invalid_request_error",
    );
}

/// Reads a named-event stream until `keep_reading` says stop, then drops the connection.
fn read_events_then_drop(
    s: &Server,
    path: &str,
    body: &Value,
    mut keep_reading: impl FnMut(&str) -> bool,
) {
    let resp = ureq::post(&format!("{}{path}", s.url))
        .timeout(Duration::from_secs(300))
        .send_string(&body.to_string())
        .unwrap();
    for line in BufReader::new(resp.into_reader()).lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            if !keep_reading(name) {
                return;
            }
        }
    }
    panic!("the stream ended before it was dropped");
}

#[test]
fn a_disconnect_mid_stream_frees_the_slot() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_NUM_PARALLEL", "1")],
    );
    let body = json!({"model": "smol", "max_tokens": 4000, "stream": true,
                      "messages": [{"role": "user", "content": "Tell me a very long story."}]});
    let mut deltas = 0;
    read_events_then_drop(&s, "/v1/messages", &body, |name| {
        deltas += usize::from(name == "content_block_delta");
        deltas < 5
    });
    let t0 = Instant::now();
    let (st, _, text) = post(
        &s,
        "/v1/messages",
        &ask(json!({"max_tokens": 2})).to_string(),
    );
    assert_eq!(st, 200, "{text}");
    let waited = t0.elapsed().as_secs_f64();
    assert!(
        waited < 3.0,
        "the next request waited {waited:.2} s for the slot"
    );
    assert_eq!(s.metric("hearth_active_sequences"), 0.0);
}

#[test]
fn a_full_queue_is_overloaded() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_NUM_PARALLEL", "1"), ("HEARTH_MAX_QUEUE", "2")],
    );
    let body = ask(json!({"max_tokens": 48})).to_string();
    let results: Vec<(u16, String, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| post(&s, "/v1/messages", &body)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut busy = 0;
    for r in results {
        if r.0 == 503 {
            let m = anthropic_error(r, 503, "overloaded_error");
            assert!(m.contains("server busy"), "{m}");
            busy += 1;
        } else {
            assert_eq!(r.0, 200, "{}", r.2);
        }
    }
    assert!((1..=6).contains(&busy), "{busy} busy");
}

/// The official client against both models; greedy answers equal `hearth run`'s.
#[test]
fn official_anthropic_client() {
    let s = Server::start(&[("smol", common::SMOLLM2), ("qwen", QWEN)], &[]);
    for (model, file) in [("smol", common::SMOLLM2), ("qwen:latest", QWEN)] {
        let out = run_client(&s, "anthropic_client.py", &[model]);
        let r: Value = serde_json::from_str(out.lines().last().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {out}"));
        eprintln!("{file}: {r}");
        // The script's prompt and length.
        let want = run_chat_greedy(
            &common::test_model(file),
            "Why is the sky blue? Answer in one sentence.",
            24,
        );
        for k in ["text", "streamed", "helper"] {
            assert_eq!(r[k].as_str().unwrap(), want, "{file} {k}");
        }
        assert_eq!(r["counted"], r["input_tokens"], "{file}");
    }
}
