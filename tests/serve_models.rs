//! `hearth serve`'s model-information endpoints over HTTP on loopback: `/api/tags`,
//! `/api/show` and `/api/ps`; `hearth ps` and `hearth stop` against the server and
//! without one; and the official `ollama` Python client's view of the same.

mod common;

use std::process::{Command, Output, Stdio};

use common::server::{hearth, run_client, Server};
use serde_json::{json, Value};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// `hearth ARGS` as a client of the server at `addr`.
fn client(addr: &str, args: &[&str]) -> Output {
    Command::new(hearth())
        .args(args)
        .env("HEARTH_HOST", addr)
        .env_remove("OLLAMA_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The sha256 of the stored manifest of `library/<model>:latest`.
fn manifest_digest(s: &Server, model: &str) -> String {
    let p = s
        .store
        .join("manifests/registry.ollama.ai/library")
        .join(model)
        .join("latest");
    common::sha256_hex(&std::fs::read(p).unwrap())
}

fn check_details(d: &Value) {
    assert_eq!(d["parent_model"], "", "{d}");
    assert_eq!(d["format"], "gguf", "{d}");
    assert_eq!(d["family"], "llama", "{d}");
    assert_eq!(d["families"], json!(["llama"]), "{d}");
    assert_eq!(d["parameter_size"], "134.52M", "{d}");
    assert_eq!(d["quantization_level"], "Q4_1", "{d}");
}

fn ps_models(s: &Server) -> Vec<Value> {
    let (status, body) = s.get("/api/ps");
    assert_eq!(status, 200, "{body}");
    parse(&body)["models"].as_array().unwrap().clone()
}

#[test]
fn tags_show_ps_and_the_cli() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);

    // /api/tags
    let (status, body) = s.get("/api/tags");
    assert_eq!(status, 200, "{body}");
    let tags = parse(&body);
    let models = tags["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{tags}");
    let m = &models[0];
    assert_eq!(m["name"], "smol:latest");
    assert_eq!(m["model"], "smol:latest");
    let digest = manifest_digest(&s, "smol");
    assert_eq!(m["digest"], digest.as_str());
    assert!(m["size"].as_u64().unwrap() > 50_000_000, "{m}");
    let modified = m["modified_at"].as_str().unwrap();
    assert!(
        modified.len() == 30 && modified.ends_with('Z') && &modified[10..11] == "T",
        "{modified}"
    );
    check_details(&m["details"]);
    let head = ureq::head(&format!("{}/api/tags", s.url)).call().unwrap();
    assert_eq!(head.status(), 200);

    // /api/show
    let (status, body) = s.post("/api/show", r#"{"model": "smol"}"#);
    assert_eq!(status, 200, "{body}");
    let show = parse(&body);
    check_details(&show["details"]);
    assert_eq!(show["capabilities"], json!(["completion"]), "{show}");
    assert_eq!(show["modified_at"], modified);
    let mf = show["modelfile"].as_str().unwrap();
    assert!(
        mf.contains("# FROM smol:latest\n") && mf.contains("\nFROM "),
        "{mf}"
    );
    assert!(
        show["template"].as_str().unwrap().contains("im_start"),
        "{show}"
    );
    let info = show["model_info"].as_object().unwrap();
    assert_eq!(info["general.architecture"], "llama");
    assert_eq!(info["llama.context_length"], 8192);
    assert_eq!(info["llama.block_count"], 30);
    assert!(
        info["llama.attention.layer_norm_rms_epsilon"]
            .as_f64()
            .unwrap()
            < 1e-4
    );
    assert_eq!(
        info["tokenizer.ggml.tokens"],
        json!([]),
        "long arrays are emptied"
    );
    assert!(!info.contains_key("general.name"));
    assert!(!info.contains_key("tokenizer.chat_template"));
    assert!(show.get("tensors").is_none(), "tensors only when verbose");
    if let Some(p) = show.get("parameters") {
        for line in p.as_str().unwrap().lines() {
            // Ollama's "%-30s %#v": the name padded to 30, a space, the value.
            assert!(line.len() > 31 && line.as_bytes()[30] == b' ', "{line:?}");
        }
    }

    let (status, body) = s.post("/api/show", r#"{"model": "smol", "verbose": true}"#);
    assert_eq!(status, 200, "{body}");
    let verbose = parse(&body);
    let tokens = verbose["model_info"]["tokenizer.ggml.tokens"]
        .as_array()
        .unwrap();
    assert_eq!(tokens.len(), 49152);
    let tensors = verbose["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 272);
    let t = tensors
        .iter()
        .find(|t| t["name"] == "token_embd.weight")
        .unwrap();
    assert_eq!(t["shape"], json!([576, 49152]), "{t}");
    assert!(t["type"].is_string(), "{t}");

    // A model with every small layer (created while the server runs: it reads the store
    // afresh on every request).
    let mf = s.store.join("Modelfile.custom");
    std::fs::write(
        &mf,
        "FROM smol\nPARAMETER stop \"<|im_end|>\"\nPARAMETER stop \"<|im_start|>\"\n\
         PARAMETER temperature 0.7\nSYSTEM You are terse.\nMESSAGE user Hi\n\
         MESSAGE assistant Hello\nLICENSE MIT\n\
         TEMPLATE \"\"\"{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}\"\"\"\n",
    )
    .unwrap();
    let out = Command::new(hearth())
        .args(["create", "custom", "-f"])
        .arg(&mf)
        .env("HEARTH_MODELS", &s.store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", utf8(&out.stderr));
    let (status, body) = s.post("/api/show", r#"{"model": "custom"}"#);
    assert_eq!(status, 200, "{body}");
    let show = parse(&body);
    assert_eq!(
        show["parameters"],
        "stop                           \"<|im_end|>\"\n\
         stop                           \"<|im_start|>\"\n\
         temperature                    0.7"
    );
    assert_eq!(show["system"], "You are terse.");
    assert_eq!(show["license"], "MIT");
    assert_eq!(
        show["messages"],
        json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    );
    assert_eq!(
        show["template"],
        "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}"
    );
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    let mf = show["modelfile"].as_str().unwrap();
    assert!(mf.contains("\nPARAMETER temperature 0.7\n"), "{mf}");
    assert!(mf.contains("\nSYSTEM You are terse.\n"), "{mf}");
    let (status, body) = s.post("/api/show", r#"{"model": "custom", "system": "Other."}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["system"], "Other.");
    let (_, body) = s.get("/api/tags");
    let names: Vec<Value> = parse(&body)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, [json!("custom:latest"), json!("smol:latest")]);

    // Errors
    for (body, status, msg) in [
        (r#"{"model": "nope"}"#, 404, "model 'nope' not found"),
        (r#"{"name": "nope:7b"}"#, 404, "model 'nope:7b' not found"),
        (r#"{}"#, 400, "model is required"),
        (r#"{"model": ""}"#, 400, "model is required"),
        ("", 400, "missing request body"),
    ] {
        let (got, text) = s.post("/api/show", body);
        assert_eq!(got, status, "{body}: {text}");
        assert_eq!(parse(&text)["error"], msg, "{body}");
    }
    let (got, text) = s.post("/api/show", r#"{"model": "../etc"}"#);
    assert_eq!(got, 400, "{text}");

    // /api/ps: empty, the model after a generate, empty after an unload.
    assert!(ps_models(&s).is_empty());
    let out = client(s.addr(), &["ps"]);
    assert!(out.status.success(), "{}", utf8(&out.stderr));
    assert_eq!(
        utf8(&out.stdout),
        "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL\n"
    );

    let gen = r#"{"model":"smol","prompt":"hi","stream":false,"options":{"num_predict":2}}"#;
    let (status, body) = s.post("/api/generate", gen);
    assert_eq!(status, 200, "{body}");
    let ps = ps_models(&s);
    assert_eq!(ps.len(), 1, "{ps:?}");
    let p = &ps[0];
    assert_eq!(p["name"], "smol:latest");
    assert_eq!(p["model"], "smol:latest");
    assert_eq!(p["digest"], digest.as_str());
    assert_eq!(p["size_vram"], 0);
    assert_eq!(p["context_length"], 4096);
    assert!(
        p["size"].as_u64().unwrap() > m["size"].as_u64().unwrap(),
        "{p}"
    );
    check_details(&p["details"]);
    let expires = p["expires_at"].as_str().unwrap();
    assert!(expires > modified, "{expires} <= {modified}");

    let out = client(s.addr(), &["ps"]);
    assert!(out.status.success(), "{}", utf8(&out.stderr));
    let lines: Vec<String> = utf8(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let cols: Vec<&str> = lines[1]
        .split("    ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cols.len(), 6, "{lines:?}");
    assert_eq!(cols[0], "smol:latest");
    assert_eq!(cols[1], &digest[..12]);
    assert!(cols[2].ends_with(" MB"), "{cols:?}");
    assert_eq!(cols[3], "100% CPU");
    assert_eq!(cols[4], "4096");
    assert!(
        cols[5] == "4 minutes from now" || cols[5] == "5 minutes from now",
        "{cols:?}"
    );
    for (head, col) in ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
        .iter()
        .zip(&cols)
    {
        assert_eq!(lines[0].find(head), lines[1].find(col), "{lines:?}");
    }

    let (status, body) = s.post("/api/generate", r#"{"model":"smol","keep_alive":0}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["done_reason"], "unload");
    assert!(ps_models(&s).is_empty());

    // hearth stop: unloads a loaded model, is quiet, refuses an unknown one.
    let (status, body) = s.post("/api/generate", gen);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ps_models(&s).len(), 1);
    let out = client(s.addr(), &["stop", "smol"]);
    assert!(out.status.success(), "{}", utf8(&out.stderr));
    assert_eq!(utf8(&out.stdout), "");
    assert_eq!(utf8(&out.stderr), "");
    assert!(ps_models(&s).is_empty());
    let out = client(s.addr(), &["stop", "smol"]);
    assert!(
        out.status.success(),
        "stopping an unloaded model: {}",
        utf8(&out.stderr)
    );
    let out = client(s.addr(), &["stop", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(utf8(&out.stderr), "Error: model 'nope' not found\n");
    // Served on 0.0.0.0 means connect to 127.0.0.1.
    let port = s.addr().rsplit(':').next().unwrap();
    let out = client(&format!("0.0.0.0:{port}"), &["ps"]);
    assert!(out.status.success(), "{}", utf8(&out.stderr));
}

#[test]
fn ps_and_stop_without_a_server() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    for args in [&["ps"][..], &["stop", "smol"]] {
        let out = client(&addr, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(utf8(&out.stdout), "");
        assert_eq!(
            utf8(&out.stderr),
            format!(
                "Error: could not connect to a hearth server at {addr}, start one with: \
                 hearth serve (or set HEARTH_HOST to its address)\n"
            ),
            "{args:?}"
        );
    }
}

#[test]
fn the_ollama_python_client() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let out = run_client(&s, "ollama_client.py", &["smol"]);
    let seen = parse(out.lines().last().unwrap_or_default());
    let (_, body) = s.get("/api/tags");
    let tags = parse(&body);
    let m = &tags["models"][0];
    assert_eq!(seen["list"]["model"], m["model"]);
    assert_eq!(seen["list"]["digest"], m["digest"]);
    assert_eq!(seen["list"]["size"], m["size"]);
    assert_eq!(seen["list"]["details"], m["details"]);
    assert_eq!(seen["ps"]["digest"], m["digest"]);
    assert_eq!(seen["ps"]["details"], m["details"]);
    assert_eq!(seen["show"]["details"], m["details"]);
    assert_eq!(seen["show"]["architecture"], "llama");
    let (_, body) = s.post("/api/show", r#"{"model": "smol"}"#);
    let show = parse(&body);
    assert_eq!(seen["show"]["template"], show["template"]);
    assert_eq!(seen["show"]["capabilities"], show["capabilities"]);
    let keys: Vec<Value> = show["model_info"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| json!(k))
        .collect();
    let mut keys = keys;
    keys.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(seen["show"]["model_info_keys"], Value::Array(keys));
}
