//! `hearth serve`'s store endpoints over HTTP on loopback: pull, push, create, blobs,
//! copy and delete, through the official `ollama` Python client against Debian's
//! `docker-registry`, and raw HTTP for the refusals; and a delete while the model is
//! generating.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::registry::start_registry;
use common::server::{run_client, Server, TempDir};
use serde_json::{json, Value};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn status_body(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn delete(s: &Server, body: &Value) -> (u16, String) {
    status_body(ureq::delete(&format!("{}/api/delete", s.url)).send_string(&body.to_string()))
}

fn upload(s: &Server, digest: &str, data: &[u8]) -> (u16, String) {
    status_body(
        ureq::post(&format!("{}/api/blobs/{digest}", s.url))
            .timeout(Duration::from_secs(300))
            .send_bytes(data),
    )
}

fn head(s: &Server, digest: &str) -> u16 {
    match ureq::head(&format!("{}/api/blobs/{digest}", s.url)).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("HEAD failed: {e}"),
    }
}

/// The names in a directory (sorted), none if it does not exist.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn tag_names(s: &Server) -> Vec<String> {
    let (status, body) = s.get("/api/tags");
    assert_eq!(status, 200, "{body}");
    parse(&body)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn official_client_push_pull_create_copy_delete() {
    let gguf = common::test_model(common::SMOLLM2);
    let dir = TempDir::new("serve-store-reg");
    let reg = start_registry(dir.0.join("registry"));
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let out = run_client(
        &s,
        "ollama_store.py",
        &[&reg.port.to_string(), &gguf.display().to_string()],
    );
    let v = parse(out.trim());
    eprintln!("{v}");

    // What the client created and replaced, seen raw: the system message and the typed
    // parameters (kept from the first create).
    let (status, body) = s.post("/api/show", r#"{"model":"mine"}"#);
    assert_eq!(status, 200, "{body}");
    let shown = parse(&body);
    assert_eq!(shown["system"], "Be brief.", "{shown}");
    let params = shown["parameters"].as_str().unwrap();
    assert!(
        params.contains("temperature") && params.contains("0.25"),
        "{params}"
    );

    // The uploaded GGUF is the model layer itself (not a second copy), and nothing
    // temporary or partial is left in the blob store.
    let blobs = names_in(&s.store.join("blobs"));
    let want = format!(
        "sha256-{}",
        common::sha256_hex(&std::fs::read(&gguf).unwrap())
    );
    assert!(blobs.contains(&want), "{blobs:?}");
    assert!(
        blobs
            .iter()
            .all(|b| b.starts_with("sha256-") && !b.contains("partial")),
        "{blobs:?}"
    );
    let pulled = s.store.join(format!(
        "manifests/127.0.0.1:{}/library/smol/latest",
        reg.port
    ));
    assert!(!pulled.exists(), "the pulled copy was deleted");
}

#[test]
fn blobs_and_refusals_over_raw_http() {
    let s = Server::start(&[], &[]);
    let blobs = s.store.join("blobs");
    let data = b"not a model, just some bytes".to_vec();
    let hex = common::sha256_hex(&data);
    let good = format!("sha256:{hex}");

    // Malformed digests are refused before the store is touched: no blobs directory.
    for bad in [
        "sha256:xyz".to_string(),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", &hex[..63]),
        format!("sha512:{hex}"),
        "sha256:..%2F..%2Fetc%2Fpasswd".to_string(),
    ] {
        let (status, body) = upload(&s, &bad, &data);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(parse(&body)["error"]
            .as_str()
            .unwrap()
            .contains("invalid digest"));
        assert_eq!(head(&s, &bad), 400, "{bad}");
    }
    assert!(
        !blobs.exists(),
        "a malformed digest reached the file system"
    );

    // A wrong digest stores nothing and leaves no temporary file.
    assert_eq!(head(&s, &good), 404);
    let other = format!("sha256:{}", common::sha256_hex(b"something else"));
    let (status, body) = upload(&s, &other, &data);
    assert_eq!(status, 400, "{body}");
    let msg = parse(&body)["error"].as_str().unwrap().to_string();
    assert!(msg.contains(&other) && msg.contains(&good), "{msg}");
    assert_eq!(names_in(&blobs), Vec::<String>::new());
    assert_eq!(head(&s, &other), 404);

    // The right digest: 201, then HEAD finds it; again: 200 (Ollama's "already there").
    let (status, body) = upload(&s, &good, &data);
    assert_eq!(status, 201, "{body}");
    assert_eq!(head(&s, &good), 200);
    assert_eq!(head(&s, &format!("sha256-{hex}")), 200);
    assert_eq!(
        std::fs::read(blobs.join(format!("sha256-{hex}"))).unwrap(),
        data
    );
    let (status, body) = upload(&s, &good, b"");
    assert_eq!(status, 200, "{body}");

    // An upload larger than the JSON body limit is streamed to disk.
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let big_hex = common::sha256_hex(&big);
    let (status, body) = upload(&s, &format!("sha256:{big_hex}"), &big);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        std::fs::metadata(blobs.join(format!("sha256-{big_hex}")))
            .unwrap()
            .len(),
        big.len() as u64
    );
    drop(big);
    assert!(names_in(&blobs).iter().all(|b| b.starts_with("sha256-")));

    // Create: refusals with their statuses, before anything is streamed.
    let create = |body: Value| {
        let (status, text) = s.post("/api/create", &body.to_string());
        let err = parse(&text)["error"].as_str().unwrap_or("").to_string();
        (status, err)
    };
    let files = json!({"m.gguf": good});
    let cases = [
        (
            json!({"model": "x", "files": files, "quantize": "q4_K_M"}),
            400,
            "quantize is not supported",
        ),
        (
            json!({"model": "x", "files": files, "adapters": {"a.gguf": good}}),
            400,
            "adapters are not supported",
        ),
        (json!({"model": "x"}), 400, "neither"),
        (json!({"model": "x", "files": {}}), 400, "neither"),
        (json!({"files": files}), 400, "model is required"),
        (
            json!({"model": "x", "files": {"m.gguf": good, "config.json": good}}),
            400,
            "config.json",
        ),
        (
            json!({"model": "x", "files": {"m.gguf": other}}),
            400,
            other.as_str(),
        ),
        (
            json!({"model": "x", "files": {"m.gguf": "sha256:nope"}}),
            400,
            "invalid digest",
        ),
        (
            json!({"model": "x", "from": "nosuch"}),
            404,
            "model \"nosuch\" not found",
        ),
        (
            json!({"model": "x", "files": files, "parameters": {"bogus": 1}}),
            400,
            "unknown parameter 'bogus'",
        ),
        (
            json!({"model": "x", "files": files, "parameters": {"num_predict": "many"}}),
            400,
            "num_predict",
        ),
        (
            json!({"model": "x", "files": files, "license": 3}),
            400,
            "license",
        ),
        (
            json!({"model": "bad name!", "files": files}),
            400,
            "invalid model name",
        ),
        // The upload is not a GGUF: found while working, so with stream:false a 400.
        (
            json!({"model": "x", "files": files, "stream": false}),
            400,
            "GGUF",
        ),
    ];
    for (body, want_status, want_msg) in cases {
        let (status, err) = create(body.clone());
        assert_eq!(status, want_status, "{body}: {err}");
        assert!(err.contains(want_msg), "{body}: {err}");
    }
    // Streamed, the same failure is the last line of a 200 stream.
    let (status, text) = s.post(
        "/api/create",
        &json!({"model": "x", "files": files}).to_string(),
    );
    assert_eq!(status, 200, "{text}");
    let last = parse(text.lines().last().unwrap());
    assert!(last["error"].as_str().unwrap().contains("GGUF"), "{text}");
    assert!(tag_names(&s).is_empty());

    // Copy and delete refusals.
    let (status, body) = s.post("/api/copy", r#"{"source":"nosuch","destination":"y"}"#);
    assert_eq!(status, 404, "{body}");
    assert_eq!(parse(&body)["error"], "model \"nosuch\" not found");
    let (status, body) = s.post("/api/copy", r#"{"source":"a b","destination":"y"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = s.post("/api/copy", r#"{"source":"a"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = delete(&s, &json!({"model": "nosuch"}));
    assert_eq!(status, 404, "{body}");
    assert_eq!(parse(&body)["error"], "model 'nosuch' not found");
    let (status, body) = delete(&s, &json!({"model": "../x"}));
    assert_eq!(status, 400, "{body}");

    // Pull of a model the registry does not have: 404 with stream:false, a final error
    // line when streamed. Push of a model the store does not have: 404.
    let dir = TempDir::new("serve-store-reg");
    let reg = start_registry(dir.0.join("registry"));
    let missing = format!("127.0.0.1:{}/library/nosuch:latest", reg.port);
    let (status, body) = s.post(
        "/api/pull",
        &json!({"model": missing, "insecure": true, "stream": false}).to_string(),
    );
    assert_eq!(status, 404, "{body}");
    assert!(parse(&body)["error"]
        .as_str()
        .unwrap()
        .contains("file does not exist"));
    let (status, body) = s.post("/api/pull", &json!({"model": missing}).to_string());
    assert_eq!(status, 200, "{body}");
    let lines: Vec<Value> = body.lines().map(parse).collect();
    assert_eq!(lines[0], json!({"status": "pulling manifest"}), "{body}");
    assert!(lines.last().unwrap()["error"].is_string(), "{body}");
    let (status, body) = s.post("/api/push", &json!({"model": missing}).to_string());
    assert_eq!(status, 404, "{body}");
    let (status, body) = s.post("/api/pull", r#"{"model":"no good"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(tag_names(&s).is_empty());
}

#[test]
fn delete_while_generating() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    // Each line of the stream with the moment it arrived.
    let (tx, rx) = mpsc::channel::<(Value, Instant)>();
    let url = s.url.clone();
    let reader = std::thread::spawn(move || {
        let body = json!({"model": "smol", "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": true,
                          "options": {"temperature": 0, "num_predict": 200}});
        let resp = ureq::post(&format!("{url}/api/generate"))
            .timeout(Duration::from_secs(300))
            .send_string(&body.to_string())
            .unwrap();
        for l in BufReader::new(resp.into_reader()).lines() {
            let v = serde_json::from_str::<Value>(&l.unwrap()).unwrap();
            tx.send((v, Instant::now())).unwrap();
        }
    });
    let (first, _) = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert_eq!(first["done"], false, "{first}");
    let (status, body) = delete(&s, &json!({"model": "smol"}));
    assert_eq!(status, 200, "{body}");
    let deleted = Instant::now();
    let rest: Vec<(Value, Instant)> = rx.iter().collect();
    reader.join().unwrap();
    // The running request ends normally, or with a final error line, after the delete.
    let (last, at) = rest.last().expect("the stream ended early");
    assert!(
        last["done"] == true || last["error"].is_string(),
        "the stream did not end cleanly: {last}"
    );
    assert!(
        *at > deleted,
        "the request ended before the delete: the test proves nothing ({last})"
    );
    assert!(rest.len() > 2, "{last}");

    // The model is gone for everyone else; the server goes on serving.
    assert!(tag_names(&s).is_empty());
    let (status, body) = s.post(
        "/api/generate",
        r#"{"model":"smol","prompt":"hi","stream":false}"#,
    );
    assert_eq!(status, 404, "{body}");
    let (status, _) = s.get("/api/version");
    assert_eq!(status, 200);
    // And it is unloaded once idle.
    let t = Instant::now();
    loop {
        let (_, body) = s.get("/api/ps");
        if parse(&body)["models"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still loaded: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        names_in(&s.store.join("blobs")).is_empty(),
        "blobs left behind"
    );
}
