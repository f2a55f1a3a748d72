//! Several models in one `hearth serve`: the count limit (`HEARTH_MAX_LOADED_MODELS`),
//! the memory budget (`HEARTH_MAX_MEMORY`), least-recently-used eviction, a model too
//! large for the budget, two models streaming at once, and a busy model that is never
//! evicted under another's request.

mod common;

use std::time::{Duration, Instant};

use common::server::{Server, QWEN};
use serde_json::{json, Value};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A short greedy generation; returns the parsed reply.
fn generate(s: &Server, model: &str, n: usize) -> Value {
    let body = json!({"model": model, "prompt": "Hello", "raw": true, "stream": false,
                      "options": {"temperature": 0, "num_predict": n}});
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 200, "{model}: {text}\n{}", s.log());
    parse(&text)
}

/// The names `/api/ps` lists, sorted.
fn loaded(s: &Server) -> Vec<String> {
    let (status, body) = s.get("/api/ps");
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = parse(&body)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|n| format!("{n}:latest")).collect();
    v.sort();
    v
}

#[test]
fn the_count_limit_switches_models_and_evicts_the_least_recently_used() {
    let s = Server::start(
        &[
            ("smol", common::SMOLLM2),
            ("gemma", common::GEMMA3),
            ("a", common::SMOLLM2),
            ("b", common::SMOLLM2),
            ("c", common::SMOLLM2),
        ],
        &[("HEARTH_MAX_LOADED_MODELS", "1")],
    );
    // Alternating requests: each switches the loaded model.
    let t0 = Instant::now();
    for model in ["smol", "gemma", "smol", "gemma"] {
        let v = generate(&s, model, 4);
        assert_eq!(v["eval_count"], 4, "{v}");
        assert_eq!(loaded(&s), names(&[model]));
    }
    assert_eq!(s.metric("hearth_model_loads_total"), 4.0, "{}", s.log());
    eprintln!(
        "4 alternating requests with one model loaded at a time: {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    drop(s);

    // Three models, room for two: the least recently used idle one goes.
    let s = Server::start(
        &[
            ("a", common::SMOLLM2),
            ("b", common::SMOLLM2),
            ("c", common::SMOLLM2),
        ],
        &[("HEARTH_MAX_LOADED_MODELS", "2")],
    );
    generate(&s, "a", 1);
    generate(&s, "b", 1);
    assert_eq!(loaded(&s), names(&["a", "b"]));
    generate(&s, "a", 1); // b is now the least recently used
    generate(&s, "c", 1);
    assert_eq!(loaded(&s), names(&["a", "c"]));
    generate(&s, "b", 1); // a is now the least recently used
    assert_eq!(loaded(&s), names(&["b", "c"]));
}

#[test]
fn the_memory_budget_evicts_and_refuses_what_can_never_fit() {
    let env = [
        ("HEARTH_CONTEXT_LENGTH", "512"),
        ("HEARTH_NUM_PARALLEL", "1"),
    ];
    // What one SmolLM2 is planned to take, from a server without a budget.
    let planned = {
        let s = Server::start(&[("a", common::SMOLLM2)], &env);
        generate(&s, "a", 1);
        let (_, body) = s.get("/api/ps");
        parse(&body)["models"][0]["size"].as_u64().unwrap()
    };
    assert!(planned > 80 << 20 && planned < 400 << 20, "{planned}");
    // Room for one and a half: the second model evicts the first.
    let budget = (planned * 3 / 2).to_string();
    let mut env2 = env.to_vec();
    env2.push(("HEARTH_MAX_MEMORY", &budget));
    let s = Server::start(
        &[
            ("a", common::SMOLLM2),
            ("b", common::SMOLLM2),
            ("qwen", QWEN),
        ],
        &env2,
    );
    generate(&s, "a", 2);
    assert_eq!(loaded(&s), names(&["a"]));
    generate(&s, "b", 2);
    assert_eq!(loaded(&s), names(&["b"]));
    // Qwen's weights alone exceed the budget: refused at once, nothing evicted.
    let body = json!({"model": "qwen", "prompt": "hi", "stream": false});
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 500, "{text}");
    let msg = parse(&text)["error"].as_str().unwrap().to_string();
    assert!(
        msg.contains("model requires more memory") && msg.contains("than is available"),
        "{msg}"
    );
    assert_eq!(loaded(&s), names(&["b"]));
    // And the server keeps serving.
    generate(&s, "a", 2);
    assert_eq!(loaded(&s), names(&["a"]));
}

/// Streams a generation in a thread; returns (time of each text line, time done).
fn stream_in_thread(
    url: String,
    model: &'static str,
    n: usize,
) -> std::thread::JoinHandle<(Vec<Duration>, Duration, Instant)> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let t0 = Instant::now();
        let body = json!({"model": model, "prompt": "Once upon a time", "raw": true,
                          "options": {"temperature": 0, "num_predict": n}});
        let resp = ureq::post(&format!("{url}/api/generate"))
            .timeout(Duration::from_secs(300))
            .send_string(&body.to_string())
            .unwrap();
        let mut times = Vec::new();
        let mut done = None;
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
            assert!(v.get("error").is_none(), "{model}: {v}");
            if v["done"] == true {
                assert_eq!(v["eval_count"], n as u64, "{v}");
                done = Some(t0.elapsed());
            } else {
                times.push(t0.elapsed());
            }
        }
        (times, done.expect("no final object"), t0)
    })
}

#[test]
fn two_loaded_models_stream_at_once() {
    let s = Server::start(
        &[("smol", common::SMOLLM2), ("gemma", common::GEMMA3)],
        &[("HEARTH_MAX_LOADED_MODELS", "2")],
    );
    // Both loaded first, so that the streams overlap from their start.
    generate(&s, "smol", 1);
    generate(&s, "gemma", 1);
    let a = stream_in_thread(s.url.clone(), "smol", 48);
    let b = stream_in_thread(s.url.clone(), "gemma", 48);
    let (ta, done_a, t0a) = a.join().unwrap();
    let (tb, done_b, t0b) = b.join().unwrap();
    // On one clock: each stream's first token came before the other one ended.
    let abs = |t0: Instant, d: Duration| t0 + d;
    assert!(
        abs(t0a, ta[0]) < abs(t0b, done_b),
        "smol waited for gemma to finish"
    );
    assert!(
        abs(t0b, tb[0]) < abs(t0a, done_a),
        "gemma waited for smol to finish"
    );
    assert_eq!(loaded(&s), names(&["gemma", "smol"]));
}

#[test]
fn a_busy_model_is_not_evicted_for_another() {
    let s = Server::start(
        &[("smol", common::SMOLLM2), ("gemma", common::GEMMA3)],
        &[("HEARTH_MAX_LOADED_MODELS", "1")],
    );
    generate(&s, "smol", 1);
    let running = stream_in_thread(s.url.clone(), "smol", 96);
    // Let the stream start, then ask for the other model: it waits for the stream.
    std::thread::sleep(Duration::from_millis(300));
    let t_ask = Instant::now();
    let v = generate(&s, "gemma", 2);
    let answered = Instant::now();
    assert_eq!(v["eval_count"], 2);
    let (times, done, t0) = running.join().unwrap();
    assert!(!times.is_empty(), "the running stream sent no text");
    assert!(
        t0 + done <= answered,
        "gemma answered before smol's stream ended"
    );
    assert!(
        t_ask < t0 + done,
        "the stream ended before the other request"
    );
    assert_eq!(loaded(&s), names(&["gemma"]));
}
