//! The stall bound, in a test binary of its own so that no other test's server competes
//! for the two cores while gaps are measured: while one stream decodes, a ~3000-token
//! prompt arrives; the longest gap between the stream's tokens stays bounded.

mod common;

use common::server::Server;
use serde_json::{json, Value};

#[test]
fn a_long_prompt_does_not_stall_a_running_stream() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[]);
    // ~3000 tokens of varied text.
    let long: String = (0..165)
        .map(|i| {
            format!(
                "Sentence {i} talks about topic {} and number {}. ",
                i * 7 % 13,
                i * i
            )
        })
        .collect();
    let arrivals = std::sync::Mutex::new(Vec::new());
    let long_done = std::sync::Mutex::new(None);
    std::thread::scope(|sc| {
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, arrivals) = (&s, &arrivals);
        sc.spawn(move || {
            let body = json!({"model": "smol", "prompt": "Tell me a long story about a dragon.",
                "options": {"temperature": 0, "num_predict": 400, "num_ctx": 4096}});
            s.stream_lines("/api/generate", &body, |i, v, t| {
                arrivals.lock().unwrap().push(t);
                if i == 20 {
                    let _ = tx.send(());
                }
                v["done"] == false
            });
        });
        rx.recv().unwrap();
        let t0 = std::time::Instant::now();
        let body = json!({"model": "smol", "prompt": long, "raw": true, "stream": false,
            "options": {"temperature": 0, "num_predict": 1, "num_ctx": 4096}});
        let (status, text) = s.post("/api/generate", &body.to_string());
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let n = v["prompt_eval_count"].as_u64().unwrap();
        assert!(n > 2500, "the long prompt has only {n} tokens");
        *long_done.lock().unwrap() = Some((t0.elapsed(), n));
    });
    let a = arrivals.into_inner().unwrap();
    let gaps: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    let max_gap = gaps.iter().cloned().fold(0.0, f64::max);
    let (long_time, n) = long_done.into_inner().unwrap().unwrap();
    eprintln!(
        "stall: longest gap {:.3} s over {} tokens while a {n}-token prompt took {:.2} s",
        max_gap,
        a.len(),
        long_time.as_secs_f64()
    );
    // The step budget allows ~0.25 s of prompt work per step; a whole prompt at once would
    // stall the stream for the full prompt time (seconds). Generous for a loaded CI machine.
    assert!(max_gap < 1.5, "a stream stalled {max_gap:.3} s");
    assert!(max_gap < long_time.as_secs_f64() / 2.0);
}
