//! The chat page at `/ui`: served from the binary with a policy that forbids other
//! origins, `/` unchanged for API clients, and the page driven end to end in headless
//! Chromium (Debian's `chromium`, through Playwright from the tests' Python environment).

mod common;

use common::server::{run_client, Server};

#[test]
fn the_chat_page_streams_stops_and_remembers() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    let resp = ureq::get(&format!("{}/ui", s.url)).call().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = resp
        .header("content-security-policy")
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let body = resp.into_string().unwrap();
    assert!(body.starts_with("<!doctype html>"), "{}", &body[..40]);
    // API clients still get Ollama's answer at `/`.
    let (status, text) = s.get("/");
    assert_eq!((status, text.as_str()), (200, "Ollama is running"));

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-page.png");
    let out = run_client(&s, "ui_chat.py", &["smol:latest", shot.to_str().unwrap()]);
    eprintln!("{out}");
    let png = std::fs::read(&shot).expect("no screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
}
