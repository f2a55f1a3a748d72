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
    for k in ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] {
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
