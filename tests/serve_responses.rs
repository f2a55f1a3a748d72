//! OpenAI's Responses API on `hearth serve` over loopback: `/v1/responses` whole and
//! streamed (the `response.*` events with their sequence numbers) against `hearth run`,
//! input items, truncation, errors in OpenAI's shape, a disconnect, and the official
//! `openai` Python client's `responses` methods against SmolLM2 and Qwen2.5-Coder.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::server::{run_chat_greedy, run_client, Server, QWEN};
use serde_json::{json, Value};

const QUESTION: &str = "What is the capital of France?";

/// The (name, data) of each event of a body of named server-sent events; asserts the
/// framing (`event: NAME`, `data: JSON`, a blank line), that `type` repeats the name and
/// that the sequence numbers count from 0.
fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"), "{body}");
    let events: Vec<(String, Value)> = body
        .split_terminator("\n\n")
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
        .collect();
    for (i, (_, v)) in events.iter().enumerate() {
        assert_eq!(v["sequence_number"], i, "{v}");
    }
    events
}

/// Asserts OpenAI's error shape and returns the message.
fn openai_error(got: (u16, String), status: u16) -> String {
    let (st, body) = got;
    assert_eq!(st, status, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let kind = match status {
        404 => "not_found_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    assert_eq!(v["error"]["type"], kind, "{body}");
    v["error"]["message"].as_str().unwrap().to_string()
}

fn ask(extra: Value) -> Value {
    let mut body = json!({"model": "smol", "input": QUESTION, "temperature": 0,
                          "max_output_tokens": 12});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The text of a response object's one message, asserting its shape and status.
fn output_text(v: &Value) -> &str {
    let output = v["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{v}");
    let item = &output[0];
    assert_eq!(item["type"], "message", "{v}");
    assert_eq!(item["role"], "assistant", "{v}");
    assert_eq!(item["status"], v["status"], "{v}");
    assert!(item["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    let content = item["content"].as_array().unwrap();
    assert_eq!(content.len(), 1, "{v}");
    assert_eq!(content[0]["type"], "output_text");
    assert_eq!(content[0]["annotations"], json!([]));
    content[0]["text"].as_str().unwrap()
}

#[test]
fn responses_over_http() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let want = run_chat_greedy(&common::test_model(common::SMOLLM2), QUESTION, 12);
    let post = |body: Value| s.post("/v1/responses", &body.to_string());

    // Whole: `hearth run`'s answer, cut at max_output_tokens.
    let (st, text) = post(ask(json!({"metadata": {"k": "v"}, "store": true})));
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    assert_eq!(v["object"], "response");
    assert_eq!(v["model"], "smol");
    assert!(v["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert!(v["error"].is_null());
    assert_eq!(output_text(&v), want);
    let u = &v["usage"];
    let (input, output) = (
        u["input_tokens"].as_u64().unwrap(),
        u["output_tokens"].as_u64().unwrap(),
    );
    assert_eq!(u["total_tokens"], input + output);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);
    if v["status"] == "incomplete" {
        assert_eq!(
            v["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(output, 12);
    } else {
        assert_eq!(v["status"], "completed", "{v}");
        assert!(v["incomplete_details"].is_null());
    }
    // Echoed: what was asked, and the defaults; nothing is stored.
    assert_eq!(v["metadata"], json!({"k": "v"}));
    assert_eq!(v["store"], false);
    assert_eq!(v["max_output_tokens"], 12);
    assert_eq!(v["temperature"], 0.0);
    assert_eq!(v["top_p"], 1.0);
    assert_eq!(v["tools"], json!([]));
    assert_eq!(v["tool_choice"], "auto");
    assert_eq!(v["text"], json!({"format": {"type": "text"}}));
    assert_eq!(v["truncation"], "disabled");
    assert!(v["previous_response_id"].is_null() && v["instructions"].is_null());

    // Streamed: the event sequence, one item, the same text and counts.
    let (st, text) = post(ask(json!({"stream": true})));
    assert_eq!(st, 200, "{text}");
    let events = named_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let n = names.len();
    let last = if v["status"] == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    assert_eq!(
        names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        names[n - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            last
        ]
    );
    assert!(names[4..n - 4]
        .iter()
        .all(|&n| n == "response.output_text.delta"));
    let created = &events[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert!(created["usage"].is_null());
    let item_id = events[2].1["item"]["id"].as_str().unwrap();
    assert_eq!(events[2].1["item"]["status"], "in_progress");
    let streamed: String = events[4..n - 4]
        .iter()
        .map(|(_, e)| {
            assert_eq!(e["item_id"], item_id);
            assert_eq!(
                (&e["output_index"], &e["content_index"]),
                (&json!(0), &json!(0))
            );
            e["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(streamed, want);
    assert_eq!(events[n - 4].1["text"], want.as_str());
    assert_eq!(events[n - 3].1["part"]["text"], want.as_str());
    assert_eq!(events[n - 2].1["item"]["id"], item_id);
    let done = &events[n - 1].1["response"];
    assert_eq!(done["id"], created["id"]);
    assert_eq!(output_text(done), want);
    assert_eq!(done["usage"]["output_tokens"], output);
    assert_eq!(done["usage"]["input_tokens"], input);

    // Items: instructions and a developer message are system messages; a function call
    // and its output are rendered as text; tools and text.format are carried.
    let items = json!([
        {"role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "2+2?"}]},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{\"a\":2,\"b\":2}"},
        {"type": "function_call_output", "call_id": "c1", "output": "4"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
        {"role": "user", "content": "3+3?"},
    ]);
    let tools = json!([{"type": "function", "name": "add", "parameters": {"type": "object"}}]);
    let (st, text) = post(ask(json!({"input": items, "instructions": "You add.",
                                     "tools": tools, "tool_choice": "none",
                                     "max_output_tokens": 3})));
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["output_tokens"], 3, "{v}");
    assert_eq!(v["instructions"], "You add.");
    assert_eq!(v["tools"], tools);
    assert_eq!(v["tool_choice"], "none");

    // text.format: the output follows the schema, and the format is echoed.
    let format = json!({"type": "json_schema", "name": "verdict", "strict": true,
                        "schema": {"type": "object", "additionalProperties": false,
                                   "required": ["answer"],
                                   "properties": {"answer": {"enum": ["yes", "no"]}}}});
    let (st, text) = post(ask(
        json!({"input": "Is Paris in France?", "max_output_tokens": 40,
                                     "text": {"format": format}}),
    ));
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["text"]["format"], format);
    let answer: Value = serde_json::from_str(output_text(&v)).unwrap();
    assert!(
        answer == json!({"answer": "yes"}) || answer == json!({"answer": "no"}),
        "{v}"
    );

    // A conversation longer than the context: refused by default, its oldest messages
    // dropped with truncation "auto".
    let filler = "the quick brown fox jumps over the lazy dog ".repeat(6);
    let long = json!([{"role": "user", "content": filler}, {"role": "assistant", "content": filler},
                      {"role": "user", "content": filler}, {"role": "assistant", "content": filler},
                      {"role": "user", "content": "Say hi."}]);
    let body = ask(json!({"input": long, "options": {"num_ctx": 128}, "max_output_tokens": 2}));
    assert!(openai_error(post(body.clone()), 400).contains("context length"));
    let mut body = body;
    body["truncation"] = json!("auto");
    let (st, text) = post(body);
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() < 128, "{v}");
    assert_eq!(v["truncation"], "auto");
}

#[test]
fn errors_in_openai_shape() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let post = |body: &str| s.post("/v1/responses", body);
    let bad = |body: Value| openai_error(post(&body.to_string()), 400);

    openai_error(post(""), 400);
    openai_error(post("{\"model\": "), 400);
    assert_eq!(bad(json!({"input": "hi"})), "model is required");
    assert_eq!(bad(json!({"model": "smol"})), "input is required");
    bad(json!({"model": "smol", "input": []}));
    bad(json!({"model": "smol", "input": 7}));
    bad(json!({"model": "smol", "input": [{"role": "tool", "content": "x"}]}));
    bad(json!({"model": "smol", "input": [{"type": "item_reference", "id": "msg_1"}]}));
    bad(json!({"model": "smol", "input": [{"role": "user", "content": [{"type": "input_file"}]}]}));
    bad(json!({"model": "smol", "input": "hi", "max_output_tokens": 0}));
    bad(json!({"model": "smol", "input": "hi", "temperature": "hot"}));
    bad(json!({"model": "smol", "input": "hi", "truncation": "sometimes"}));
    bad(json!({"model": "smol", "input": "hi", "text": {"format": {"type": "xml"}}}));
    bad(json!({"model": "smol", "input": "hi", "text": {"format": {"type": "json_schema"}}}));
    let m = bad(json!({"model": "smol", "input": "hi", "text": {"format": {
        "type": "json_schema", "name": "n", "schema": {"type": "object", "not": {}}}}}));
    assert!(m.contains("not"), "{m}");
    bad(json!({"model": "smol", "input": "hi", "top_logprobs": 2}));
    bad(json!({"model": "smol", "input": "hi", "background": true}));
    bad(json!({"model": "smol", "input": "hi", "conversation": "conv_1"}));
    bad(json!({"model": "smol", "input": "hi", "prompt": {"id": "pmpt_1"}}));
    assert!(
        bad(json!({"model": "smol", "input": "hi", "previous_response_id": "resp_1"}))
            .contains("stores no responses")
    );
    let image = json!([{"role": "user", "content": [
        {"type": "input_text", "text": "what is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}]);
    assert!(bad(json!({"model": "smol", "input": image})).contains("text-only"));
    // An unknown model: 404, also streamed (before the stream begins) or with an image.
    for body in [
        json!({"model": "nope", "input": "hi"}),
        json!({"model": "nope", "input": "hi", "stream": true}),
        json!({"model": "nope", "input": image}),
    ] {
        let m = openai_error(post(&body.to_string()), 404);
        assert!(m.contains("'nope' not found"), "{m}");
    }
}

#[test]
fn a_disconnect_mid_stream_frees_the_slot() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_NUM_PARALLEL", "1")],
    );
    let body = json!({"model": "smol", "input": "Tell me a very long story.", "stream": true,
                      "max_output_tokens": 4000});
    let resp = ureq::post(&format!("{}/v1/responses", s.url))
        .timeout(Duration::from_secs(300))
        .send_string(&body.to_string())
        .unwrap();
    let mut deltas = 0;
    for line in BufReader::new(resp.into_reader()).lines() {
        if line.unwrap() == "event: response.output_text.delta" {
            deltas += 1;
            if deltas == 5 {
                break;
            }
        }
    }
    assert_eq!(deltas, 5);
    let t0 = Instant::now();
    let (st, text) = s.post(
        "/v1/responses",
        &ask(json!({"max_output_tokens": 2})).to_string(),
    );
    assert_eq!(st, 200, "{text}");
    let waited = t0.elapsed().as_secs_f64();
    assert!(
        waited < 3.0,
        "the next request waited {waited:.2} s for the slot"
    );
    assert_eq!(s.metric("hearth_active_sequences"), 0.0);
}

/// The official client against both models; greedy answers equal `hearth run`'s.
#[test]
fn official_openai_client_responses() {
    let s = Server::start(&[("smol", common::SMOLLM2), ("qwen", QWEN)], &[]);
    for (model, file) in [("smol", common::SMOLLM2), ("qwen:latest", QWEN)] {
        let out = run_client(&s, "responses_client.py", &[model]);
        let r: Value = serde_json::from_str(out.lines().last().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {out}"));
        eprintln!("{file}: {r}");
        let gguf = common::test_model(file);
        // The script's prompts and lengths.
        let want = run_chat_greedy(&gguf, "Why is the sky blue? Answer in one sentence.", 24);
        assert_eq!(r["text"].as_str().unwrap(), want, "{file}");
        assert_eq!(r["streamed"].as_str().unwrap(), want, "{file}");
        let short = run_chat_greedy(&gguf, "Say hello.", 200);
        assert_eq!(r["short"].as_str().unwrap(), short, "{file}");
        assert_eq!(r["short_helper"].as_str().unwrap(), short, "{file}");
    }
}
