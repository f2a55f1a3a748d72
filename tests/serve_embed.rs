//! `hearth serve`'s embedding endpoints on nomic-embed-text-v1.5: `/api/embed`,
//! `/api/embeddings` and `/v1/embeddings`, raw and through the official `ollama` and
//! `openai` Python clients, against llama.cpp's embeddings (`tests/data/nomic-embed.json`,
//! cosine at least 0.999); batching; and bad input.

mod common;

use common::bert_synthetic::{load_embedding_reference, EmbeddingRef};
use common::cosine;
use common::server::{run_client, Server};
use serde_json::{json, Value};

const MODEL: &str = "nomic-embed-text";

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn vectors(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// The reference texts the server can take (the empty text is a 400 there).
fn refs() -> Vec<EmbeddingRef> {
    load_embedding_reference("nomic-embed.json", "embedding")
        .into_iter()
        .filter(|r| !r.text.is_empty())
        .collect()
}

fn assert_close(got: &[Vec<f32>], refs: &[EmbeddingRef], label: &str) {
    assert_eq!(got.len(), refs.len(), "{label}");
    for (v, r) in got.iter().zip(refs) {
        let c = cosine(v, &r.embedding);
        assert!(c >= 0.999, "{label} {}: cosine {c}", r.name);
        assert!(
            (norm(v) - 1.0).abs() < 1e-4,
            "{label} {}: norm {}",
            r.name,
            norm(v)
        );
    }
}

fn server() -> Server {
    Server::start(&[(MODEL, common::NOMIC)], &[])
}

#[test]
fn both_apis_match_llamacpp() {
    let s = server();
    let refs = refs();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let tokens: usize = refs.iter().map(|r| r.token_ids.len()).sum();

    let (code, body) = s.post(
        "/api/embed",
        &json!({"model": MODEL, "input": texts}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["prompt_eval_count"].as_u64().unwrap() as usize, tokens);
    assert!(v["total_duration"].as_u64().unwrap() >= v["load_duration"].as_u64().unwrap());
    assert_close(&vectors(&v["embeddings"]), &refs, "/api/embed");

    // One string: one embedding.
    let (code, body) = s.post(
        "/api/embed",
        &json!({"model": MODEL, "input": texts[0]}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_close(&vectors(&v["embeddings"]), &refs[..1], "/api/embed one");

    // The legacy endpoint: not normalised (Ollama's), the same direction.
    let (code, body) = s.post(
        "/api/embeddings",
        &json!({"model": MODEL, "prompt": texts[1]}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let e = floats(&v["embedding"]);
    assert!(cosine(&e, &refs[1].embedding) >= 0.999);
    assert!(
        (norm(&e) - 1.0).abs() > 0.01,
        "legacy embedding normalised: {}",
        norm(&e)
    );

    // OpenAI: floats, base64 (the same bits), token arrays, dimensions, usage.
    let (code, body) = s.post(
        "/v1/embeddings",
        &json!({"model": MODEL, "input": texts}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["usage"]["prompt_tokens"].as_u64().unwrap() as usize,
        tokens
    );
    let data = v["data"].as_array().unwrap();
    let got: Vec<Vec<f32>> = data.iter().map(|d| floats(&d["embedding"])).collect();
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["object"], "embedding");
    }
    assert_close(&got, &refs, "/v1/embeddings");
    let ids: Vec<Vec<u32>> = refs[..3].iter().map(|r| r.token_ids.clone()).collect();
    let (code, body) = s.post(
        "/v1/embeddings",
        &json!({"model": MODEL, "input": ids}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let by_ids: Vec<Vec<f32>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| floats(&d["embedding"]))
        .collect();
    assert_eq!(by_ids, got[..3], "token arrays embed as their texts");
    let (code, body) = s.post(
        "/v1/embeddings",
        &json!({"model": MODEL, "input": texts[0], "dimensions": 64}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let d64 = floats(&v["data"][0]["embedding"]);
    assert_eq!(d64.len(), 64);
    assert!((norm(&d64) - 1.0).abs() < 1e-4);
    let mut want: Vec<f32> = got[0][..64].to_vec();
    let n = norm(&want) as f32;
    want.iter_mut().for_each(|x| *x /= n);
    assert!(cosine(&d64, &want) > 0.99999);
    assert!(s.metric("hearth_embeddings_total") >= (2 * refs.len() + 5) as f64);

    // The official clients (the openai client asks for base64 by default).
    let dir = common::server::TempDir::new("embed-texts");
    let file = dir.0.join("texts.json");
    std::fs::write(&file, serde_json::to_string(&texts).unwrap()).unwrap();
    let out = run_client(&s, "embed_client.py", &[MODEL, file.to_str().unwrap()]);
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_close(&vectors(&v["ollama"]), &refs, "ollama.embed");
    assert_close(&vectors(&v["openai"]), &refs, "openai base64");
    assert_close(&vectors(&v["openai_float"]), &refs[..2], "openai float");
    assert_eq!(
        vectors(&v["openai"]),
        vectors(&v["ollama"]),
        "base64 carries the same bits"
    );
    assert!(cosine(&floats(&v["legacy"]), &refs[0].embedding) >= 0.999);
    assert_eq!(floats(&v["openai_dims"]).len(), 64);
    assert_eq!(
        v["usage"]["prompt_tokens"].as_u64().unwrap() as usize,
        tokens
    );
    assert!(v["chat_error"]
        .as_str()
        .unwrap()
        .contains("does not support chat"));
}

#[test]
fn concurrent_requests_embed_as_alone() {
    let s = server();
    let refs = refs();
    let alone: Vec<Vec<f32>> = refs[..8]
        .iter()
        .map(|r| {
            let (code, body) = s.post(
                "/api/embed",
                &json!({"model": MODEL, "input": r.text}).to_string(),
            );
            assert_eq!(code, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            vectors(&v["embeddings"]).pop().unwrap()
        })
        .collect();
    let steps_before = s.metric("hearth_steps_total");
    let got: Vec<Vec<f32>> = std::thread::scope(|sc| {
        let handles: Vec<_> = refs[..8]
            .iter()
            .map(|r| {
                let s = &s;
                sc.spawn(move || {
                    let (code, body) = s.post(
                        "/api/embed",
                        &json!({"model": MODEL, "input": [r.text]}).to_string(),
                    );
                    assert_eq!(code, 200, "{body}");
                    let v: Value = serde_json::from_str(&body).unwrap();
                    vectors(&v["embeddings"]).pop().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        got, alone,
        "an input embeds the same bits alone or beside others"
    );
    let steps = s.metric("hearth_steps_total") - steps_before;
    assert!(
        (1.0..=8.0).contains(&steps),
        "{steps} passes for 8 requests"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let s = server();
    let post = |path: &str, body: Value| {
        let (code, text) = s.post(path, &body.to_string());
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (code, v)
    };
    let msg = |v: &Value| {
        v["error"]
            .as_str()
            .or_else(|| v["error"]["message"].as_str())
            .unwrap_or_default()
            .to_string()
    };

    // No input: the model is loaded and nothing embedded (Ollama's preload).
    let (code, v) = post("/api/embed", json!({"model": MODEL}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["embeddings"], json!([]));
    let ps = s.get("/api/ps").1;
    assert!(ps.contains(MODEL), "{ps}");

    for (body, want) in [
        (json!({"model": MODEL, "input": []}), "empty list"),
        (json!({"model": MODEL, "input": ""}), "empty"),
        (json!({"model": MODEL, "input": ["a", ""]}), "input 1"),
        (
            json!({"model": MODEL, "input": [1, 2]}),
            "invalid input type",
        ),
        (
            json!({"model": MODEL, "input": "a", "dimensions": 0}),
            "dimensions",
        ),
        (
            json!({"model": MODEL, "input": "a", "options": {"num_ctx": "x"}}),
            "num_ctx",
        ),
        (json!({"input": "a"}), "model is required"),
    ] {
        let (code, v) = post("/api/embed", body.clone());
        assert_eq!(code, 400, "{body} -> {v}");
        assert!(msg(&v).contains(want), "{body} -> {v}");
    }
    let (code, v) = post(
        "/api/embed",
        json!({"model": "no-such-model", "input": "a"}),
    );
    assert_eq!(code, 404, "{v}");
    assert_eq!(msg(&v), "model 'no-such-model' not found");
    let (code, text) = s.post("/api/embed", "{\"model\": ");
    assert_eq!(code, 400, "{text}");

    // Over the context: a 400 naming both counts without truncation, cut with it.
    let long = "word ".repeat(40);
    let (code, v) = post(
        "/api/embed",
        json!({"model": MODEL, "input": long, "truncate": false, "options": {"num_ctx": 16}}),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        msg(&v).contains("42 tokens") && msg(&v).contains("16"),
        "{v}"
    );
    let (code, v) = post(
        "/api/embed",
        json!({"model": MODEL, "input": long, "options": {"num_ctx": 16}}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["prompt_eval_count"], 16);
    assert!(s.log_contains("truncated to 16 tokens"), "{}", s.log());

    // OpenAI's shape for its errors.
    for body in [
        json!({"model": MODEL, "input": []}),
        json!({"model": MODEL, "input": ""}),
        json!({"model": MODEL}),
        json!({"model": MODEL, "input": "a", "encoding_format": "hex"}),
        json!({"model": MODEL, "input": [[1, 99999999]]}),
    ] {
        let (code, v) = post("/v1/embeddings", body.clone());
        assert_eq!(code, 400, "{body} -> {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }

    // An embedding model neither chats nor generates (Ollama's messages).
    let (code, v) = post(
        "/api/chat",
        json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(code, 400, "{v}");
    assert_eq!(msg(&v), format!("\"{MODEL}\" does not support chat"));
    let (code, v) = post("/api/generate", json!({"model": MODEL, "prompt": "hi"}));
    assert_eq!(code, 400, "{v}");
    assert_eq!(msg(&v), format!("\"{MODEL}\" does not support generate"));

    // Ollama's capabilities: an embedding model has `embedding` (not `completion`).
    let (code, v) = post("/api/show", json!({"model": MODEL}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["capabilities"], json!(["embedding"]), "{v}");

    // Still serving.
    let (code, v) = post("/api/embed", json!({"model": MODEL, "input": "still here"}));
    assert_eq!(code, 200, "{v}");
}

/// A generative model asked to embed: Ollama's current answer, a 501.
#[test]
fn generative_model_does_not_embed() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let (code, body) = s.post(
        "/api/embed",
        &json!({"model": "smol", "input": "hi"}).to_string(),
    );
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("does not support embeddings"), "{body}");
    let (code, body) = s.post(
        "/v1/embeddings",
        &json!({"model": "smol", "input": "hi"}).to_string(),
    );
    assert_eq!(code, 501, "{body}");
    // And it still generates.
    let (code, body) = s.post(
        "/api/generate",
        &json!({"model": "smol", "prompt": "Hi", "stream": false, "options": {"num_predict": 2}})
            .to_string(),
    );
    assert_eq!(code, 200, "{body}");
}
