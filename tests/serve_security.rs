//! `hearth serve`'s exposure rules on loopback: CORS from an allow-list, the Host check
//! against DNS rebinding, optional API keys (with the official Python clients), and the
//! limits a request cannot raise. Requests are written by hand over a TcpStream, so
//! that every header (Host included) is the test's choice.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{hearth, run_client, Server, TempDir};
use serde_json::{json, Value};

/// A response: status, headers (names lowercased), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: not JSON: {:?}", self.body))
    }
}

/// Sends one HTTP/1.1 request to `s` with exactly these headers (plus Host, unless
/// `headers` names one, and Connection: close) and reads the whole answer.
fn raw(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {}\r\n", s.addr()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    let mut conn = TcpStream::connect(s.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    conn.write_all(req.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    raw(s, "GET", path, headers, "")
}

#[test]
fn cors_allows_the_default_origins_and_refuses_others() {
    let s = Server::start(&[], &[]);
    for origin in [
        "http://localhost:3000",
        "http://127.0.0.1:8080",
        "https://localhost",
        "vscode-webview://abc",
        "app://obsidian.md",
        "tauri://localhost",
    ] {
        let r = get(&s, "/api/version", &[("Origin", origin)]);
        assert_eq!(r.status, 200, "{origin}: {}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert!(r.header("vary").is_some_and(|v| v.contains("Origin")));

        let r = raw(
            &s,
            "OPTIONS",
            "/api/chat",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "content-type,authorization",
                ),
            ],
            "",
        );
        assert_eq!(r.status, 204, "{origin}: {}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        let methods = r.header("access-control-allow-methods").unwrap_or("");
        assert!(methods.contains("POST"), "{methods}");
        let allowed = r.header("access-control-allow-headers").unwrap_or("");
        assert!(allowed.contains("authorization"), "{allowed}");
    }
    // No Origin: not a CORS request, no CORS headers.
    let r = get(&s, "/api/version", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    for origin in [
        "http://evil.example",
        "http://localhost.evil.example",
        "null",
    ] {
        let r = get(&s, "/api/version", &[("Origin", origin)]);
        assert_eq!(r.status, 403, "{origin}: {}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("HEARTH_ORIGINS"));
        let r = raw(
            &s,
            "OPTIONS",
            "/api/chat",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
            ],
            "",
        );
        assert_eq!(r.status, 403, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    // The refusal is logged.
    assert!(s.log_contains("| 403 |"), "{}", s.log());
}

#[test]
fn origins_from_the_environment_are_added() {
    for var in ["HEARTH_ORIGINS", "OLLAMA_ORIGINS"] {
        let s = Server::start(
            &[],
            &[(var, "http://evil.example, https://*.trusted.example")],
        );
        for origin in ["http://evil.example", "https://app.trusted.example"] {
            let r = get(&s, "/api/version", &[("Origin", origin)]);
            assert_eq!(r.status, 200, "{var} {origin}: {}", r.body);
            assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        }
        // The defaults still hold, and others are still refused.
        let r = get(&s, "/api/version", &[("Origin", "http://localhost:5173")]);
        assert_eq!(r.status, 200);
        let r = get(&s, "/api/version", &[("Origin", "http://other.example")]);
        assert_eq!(r.status, 403);
    }
    let s = Server::start(&[], &[("HEARTH_ORIGINS", "*")]);
    let r = get(&s, "/api/version", &[("Origin", "http://anything.example")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://anything.example")
    );
}

#[test]
fn host_check_refuses_names_that_are_not_loopback() {
    let s = Server::start(&[], &[]);
    let port = s.addr().rsplit_once(':').unwrap().1.to_string();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "192.168.1.10",
    ] {
        let r = get(&s, "/api/version", &[("Host", host)]);
        assert_eq!(r.status, 403, "{host}: {}", r.body);
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.contains("DNS rebinding") && msg.contains("host"),
            "{msg}"
        );
        // An allowed origin does not help.
        let r = get(
            &s,
            "/api/version",
            &[("Host", host), ("Origin", "http://localhost")],
        );
        assert_eq!(r.status, 403);
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    // On /v1, OpenAI's error shape.
    let r = get(&s, "/v1/models", &[("Host", "evil.example")]);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]["message"].is_string(), "{}", r.body);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_string(),
        format!("app.localhost:{port}"),
    ] {
        let r = get(&s, "/api/version", &[("Host", &host)]);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    // The test helper's own requests (ureq, Host 127.0.0.1:PORT) keep working.
    assert_eq!(s.get("/api/tags").0, 200);
}

/// Keys distinctive enough that the log can be searched for them.
const K1: &str = "hearth-test-key-one";
const K2: &str = "hearth-test-key-two";

/// Every refusal of a request without the right key, with each API's shape.
fn assert_keyed(s: &Server, key: &str) {
    let bearer_good = format!("Bearer {key}");
    let generate = json!({"model": "smol", "prompt": "Hi", "stream": false,
                          "options": {"num_predict": 1}})
    .to_string();
    let chat = json!({"model": "smol", "messages": [{"role": "user", "content": "Hi"}],
                      "max_tokens": 1})
    .to_string();
    let cases: [(&str, &str, &str); 4] = [
        ("GET", "/api/tags", ""),
        ("POST", "/api/generate", &generate),
        ("GET", "/v1/models", ""),
        ("POST", "/v1/chat/completions", &chat),
    ];
    for (method, path, body) in cases {
        // No key, a wrong one, and the right one without its scheme.
        for auth in [None, Some("Bearer wrong-key"), Some(key)] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            let r = raw(s, method, path, &headers, body);
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {}", r.body);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            let v = r.json();
            if path.starts_with("/v1/") {
                assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
                assert_eq!(v["error"]["code"], "invalid_api_key", "{v}");
                assert!(v["error"]["message"].is_string(), "{v}");
            } else {
                let msg = v["error"].as_str().unwrap();
                assert!(msg.starts_with("unauthorized"), "{msg}");
            }
        }
        let r = raw(s, method, path, &[("Authorization", &bearer_good)], body);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
    // `GET /` and `HEAD /` need no key; everything else does, unknown paths included.
    assert_eq!(get(s, "/", &[]).status, 200);
    assert_eq!(raw(s, "HEAD", "/", &[], "").status, 200);
    assert_eq!(get(s, "/api/version", &[]).status, 401);
    assert_eq!(get(s, "/metrics", &[]).status, 401);
    assert_eq!(get(s, "/no/such/path", &[]).status, 401);
    // A CORS preflight needs none.
    let r = raw(
        s,
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", "http://localhost:3000"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        "",
    );
    assert_eq!(r.status, 204);
    // A 401 to an allowed origin carries CORS headers, so that the page can read it.
    let r = get(s, "/api/tags", &[("Origin", "http://localhost:3000")]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    // Anthropic's header counts on /v1/messages only, and its refusal has its shape.
    let r = raw(s, "POST", "/v1/messages", &[], "{}");
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    let r = raw(s, "POST", "/v1/messages", &[("x-api-key", key)], "{}");
    assert_ne!(r.status, 401, "{}", r.body);
    assert_eq!(get(s, "/api/tags", &[("x-api-key", key)]).status, 401);
}

#[test]
fn api_keys_from_the_environment() {
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_API_KEY", &format!("{K1}, {K2}"))],
    );
    // Each key is accepted.
    assert_keyed(&s, K2);
    let r = get(
        &s,
        "/api/tags",
        &[("Authorization", &format!("Bearer {K1}"))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["models"].as_array().is_some());

    // The chat page loads without a key (its API calls need one).
    let r = get(&s, "/ui", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(&s, "/api/tags", &[]).status, 401);

    // The official clients pass the key through their usual settings.
    let out = run_client(&s, "auth_client.py", &["smol", K1, "wrong-key"]);
    assert!(out.contains("ok"), "{out}");

    // `hearth ps` sends HEARTH_API_KEY.
    let ps = |key: Option<&str>| {
        let mut cmd = Command::new(hearth());
        cmd.arg("ps")
            .env("HEARTH_HOST", s.addr())
            .env_remove("OLLAMA_HOST")
            .env_remove("HEARTH_API_KEY_FILE")
            .env_remove("HEARTH_API_KEY");
        if let Some(k) = key {
            cmd.env("HEARTH_API_KEY", k);
        }
        cmd.output().unwrap()
    };
    let out = ps(Some(&format!("{K2},{K1}")));
    assert!(
        out.status.success(),
        "hearth ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("NAME"));
    let out = ps(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("API key"), "{err}");

    // No key reaches the log.
    let log = s.log();
    assert!(!log.contains(K1) && !log.contains(K2), "{log}");
    assert!(log.contains("API key required"), "{log}");
}

#[test]
fn api_keys_from_a_file() {
    let dir = TempDir::new("keys");
    let file = dir.0.join("keys");
    std::fs::write(
        &file,
        format!("# hearth keys\n\n  {K1}  \n# {K2}\n{K2}-file\n"),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[("HEARTH_API_KEY_FILE", path)],
    );
    assert_keyed(&s, &format!("{K2}-file"));
    let ok = |key: &str| {
        get(
            &s,
            "/api/tags",
            &[("Authorization", &format!("Bearer {key}"))],
        )
        .status
    };
    assert_eq!(ok(K1), 200);
    // A comment is not a key.
    assert_eq!(ok(&format!("# {K2}")), 401);
    assert_eq!(ok(K2), 401);
    drop(s);

    // A file that cannot be read, or holds no key, stops the server before it listens.
    let empty = dir.0.join("empty");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    for (var, value, want) in [
        (
            "HEARTH_API_KEY_FILE",
            dir.0.join("missing").to_str().unwrap().to_string(),
            "cannot read",
        ),
        (
            "HEARTH_API_KEY_FILE",
            empty.to_str().unwrap().to_string(),
            "holds no key",
        ),
        ("HEARTH_API_KEY", " , ".to_string(), "holds no key"),
    ] {
        let mut child = Command::new(hearth())
            .arg("serve")
            .env("HEARTH_HOST", "127.0.0.1:0")
            .env("HEARTH_MODELS", dir.0.join("models"))
            .env("HEARTH_HOME", &dir.0)
            .env_remove("HEARTH_API_KEY")
            .env_remove("HEARTH_API_KEY_FILE")
            .env(var, &value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("hearth serve with {var}={value:?} did not stop");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!status.success(), "{var}={value:?}: {err}");
        assert!(err.contains(want) && !err.contains("listening on"), "{err}");
    }
}

#[test]
fn limits_a_request_cannot_raise() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    // Too many embedding inputs, on both endpoints, with each API's shape.
    let inputs: Vec<&str> = vec!["a"; 2049];
    let body = json!({"model": "smol", "input": inputs}).to_string();
    let (status, text) = s.post("/api/embed", &body);
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["error"].as_str().unwrap().contains("2048"), "{v}");
    let (status, text) = s.post("/v1/embeddings", &body);
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("2048"),
        "{v}"
    );

    // The largest num_predict is capped by the context: the answer ends, "length",
    // when the context is full.
    let body = json!({"model": "smol", "prompt": "Count: 1, 2, 3,", "raw": true,
                      "stream": false,
                      "options": {"temperature": 0, "num_predict": i32::MAX, "num_ctx": 48}});
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["done_reason"], "length", "{v}");
    let used = v["prompt_eval_count"].as_u64().unwrap() + v["eval_count"].as_u64().unwrap();
    assert!(used <= 48, "{v}");
    // Past i32::MAX it is not a num_predict: a 400 naming it.
    let mut body = body;
    body["options"]["num_predict"] = json!(1u64 << 40);
    let (status, text) = s.post("/api/generate", &body.to_string());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("num_predict"), "{text}");
    let chat = json!({"model": "smol", "messages": [{"role": "user", "content": "Hi"}],
                      "max_tokens": 1u64 << 40});
    let (status, text) = s.post("/v1/chat/completions", &chat.to_string());
    assert_eq!(status, 400, "{text}");

    // A declared body over 32 MiB is refused before it is read.
    let mut conn = TcpStream::connect(s.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        conn,
        "POST /api/generate HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{{",
        s.addr(),
        (32 << 20) + 1
    )
    .unwrap();
    let mut bytes = Vec::new();
    let _ = conn.read_to_end(&mut bytes);
    let r = parse(&bytes);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("32 MiB"));
}
