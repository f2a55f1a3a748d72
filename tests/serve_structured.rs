//! Structured output (constrained decoding): schema answers that parse and validate for
//! 20 prompts per model through the official clients, `json` answers that are objects,
//! the subset's refusals as 400s naming the keyword, and `hearth run --format`.

mod common;

use std::process::{Command, Stdio};

use common::server::{hearth, run_client, Server, TempDir, QWEN};
use serde_json::{json, Value};

#[test]
fn clients_get_valid_documents_smollm2() {
    let s = Server::start(&[("m", common::SMOLLM2)], &[]);
    let out = run_client(&s, "structured_client.py", &["m"]);
    assert!(out.trim_end().ends_with("ok 20"), "{out}");
}

#[test]
fn clients_get_valid_documents_qwen() {
    let s = Server::start(&[("m", QWEN)], &[]);
    let out = run_client(&s, "structured_client.py", &["m"]);
    assert!(out.trim_end().ends_with("ok 20"), "{out}");
}

#[test]
fn refusals_name_the_cause() {
    let s = Server::start(&[("m", common::SMOLLM2)], &[]);
    let cases = [
        (json!({"type": "string", "format": "ipv4"}), "ipv4"),
        (json!({"type": "array", "uniqueItems": true}), "uniqueItems"),
        (
            json!({"$defs": {"n": {"properties": {"n": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}),
            "recursive $ref",
        ),
        (json!({"$ref": "http://example.com/x.json"}), "$ref"),
        (json!({"type": "strin"}), "type must be one of"),
        (json!({"pattern": "(?=x)"}), "invalid pattern"),
        (json!(false), "invalid format"),
        (json!(7), "invalid format"),
        (json!("yaml"), "invalid format"),
    ];
    for (format, want) in cases {
        for path in ["/api/generate", "/api/chat"] {
            let body = json!({"model": "m", "prompt": "hi", "messages": [{"role": "user", "content": "hi"}],
                              "format": format, "stream": false});
            let (status, text) = s.post(path, &body.to_string());
            assert_eq!(status, 400, "{path} {format}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let msg = v["error"].as_str().unwrap();
            assert!(msg.contains(want), "{path} {format}: {msg}");
        }
    }
    // OpenAI's shape, and a json_schema without a schema.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x",
            "schema": {"type": "number", "multipleOf": 2}}}});
    let (status, text) = s.post("/v1/chat/completions", &body.to_string());
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multipleOf"),
        "{text}"
    );
    // The server still answers.
    let (status, _) = s.post(
        "/api/generate",
        r#"{"model":"m","prompt":"hi","stream":false,"options":{"num_predict":2}}"#,
    );
    assert_eq!(status, 200);
}

/// A schema every answer of `hearth run --format FILE` must satisfy (checked here by
/// hand: the required keys with their types and bounds, nothing else).
fn check_person(doc: &Value) {
    let o = doc.as_object().expect("an object");
    assert_eq!(o.len(), 3, "{doc}");
    let name = o["name"].as_str().expect("name is a string");
    assert!((1..=16).contains(&name.chars().count()), "{doc}");
    let age = o["age"].as_i64().expect("age is an integer");
    assert!((0..=99).contains(&age), "{doc}");
    assert!(
        ["red", "green", "blue"].contains(&o["color"].as_str().unwrap()),
        "{doc}"
    );
}

#[test]
fn run_format_file_and_json() {
    let dir = TempDir::new("run-format");
    let schema = dir.0.join("person.json");
    std::fs::write(
        &schema,
        json!({"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 16},
            "age": {"type": "integer", "minimum": 0, "maximum": 99},
            "color": {"enum": ["red", "green", "blue"]}},
            "required": ["name", "age", "color"], "additionalProperties": false})
        .to_string(),
    )
    .unwrap();
    let run = |format: &str, prompt: &str| {
        Command::new(hearth())
            .args([
                "run",
                "--format",
                format,
                "-o",
                "num_predict=200",
                "-o",
                "seed=3",
            ])
            .arg(common::test_model(common::SMOLLM2))
            .arg(prompt)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for prompt in [
        "Describe a person.",
        "Who painted the Mona Lisa?",
        "Say hi.",
    ] {
        let out = run(schema.to_str().unwrap(), prompt);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        });
        check_person(&doc);
    }
    let out = run(
        "json",
        "Give the capital of France as a JSON object with the key capital.",
    );
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.is_object(), "{doc}");

    // Refusals: one line naming the cause, exit status 1, nothing on stdout.
    let bad = dir.0.join("bad.json");
    std::fs::write(&bad, r#"{"type": "string", "format": "hostname"}"#).unwrap();
    for (arg, want) in [
        (bad.to_str().unwrap(), "hostname"),
        ("/nonexistent/schema.json", "cannot read the schema file"),
    ] {
        let out = run(arg, "x");
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want) && err.lines().count() == 1, "{err}");
    }
}
