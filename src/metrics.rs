//! Counters, gauges and histograms of the server, rendered in Prometheus' text format
//! for `GET /metrics`. The scheduler and the HTTP layer both record into one
//! [`Metrics`]; recording takes a short lock on one histogram or an atomic add, never
//! anything held across an engine step.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// A cumulative histogram with fixed upper bounds.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const SEQUENCES: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0];

/// Every metric of the server.
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    pub queue_depth: AtomicU64,
    pub active_sequences: AtomicU64,
    pub prompt_tokens_computed: AtomicU64,
    pub prompt_tokens_reused: AtomicU64,
    pub tokens_generated: AtomicU64,
    pub embeddings: AtomicU64,
    pub steps: AtomicU64,
    pub model_loads: AtomicU64,
    pub model_unloads: AtomicU64,
    pub rejected_busy: AtomicU64,
    sequences_per_step: Mutex<Histogram>,
    time_to_first_token: Mutex<Histogram>,
    time_between_tokens: Mutex<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            queue_depth: AtomicU64::new(0),
            active_sequences: AtomicU64::new(0),
            prompt_tokens_computed: AtomicU64::new(0),
            prompt_tokens_reused: AtomicU64::new(0),
            tokens_generated: AtomicU64::new(0),
            embeddings: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            model_loads: AtomicU64::new(0),
            model_unloads: AtomicU64::new(0),
            rejected_busy: AtomicU64::new(0),
            sequences_per_step: Mutex::new(Histogram::new(SEQUENCES)),
            time_to_first_token: Mutex::new(Histogram::new(SECONDS)),
            time_between_tokens: Mutex::new(Histogram::new(SECONDS)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// One finished HTTP request (`endpoint` is the route pattern, not the raw path).
    pub fn request(&self, endpoint: &str, status: u16) {
        *lock(&self.requests)
            .entry((endpoint.to_string(), status))
            .or_default() += 1;
    }

    /// One engine step that carried `n` sequences.
    pub fn step(&self, n: usize) {
        self.steps.fetch_add(1, Relaxed);
        lock(&self.sequences_per_step).observe(n as f64);
    }

    pub fn first_token(&self, secs: f64) {
        lock(&self.time_to_first_token).observe(secs);
    }

    pub fn between_tokens(&self, secs: f64) {
        lock(&self.time_between_tokens).observe(secs);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hearth_requests_total HTTP requests by endpoint and status."
        );
        let _ = writeln!(out, "# TYPE hearth_requests_total counter");
        for ((ep, status), n) in lock(&self.requests).iter() {
            let ep = ep.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "hearth_requests_total{{endpoint=\"{ep}\",status=\"{status}\"}} {n}"
            );
        }
        let scalar = |out: &mut String, name: &str, kind: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", v.load(Relaxed));
        };
        scalar(
            &mut out,
            "hearth_queue_depth",
            "gauge",
            "Requests waiting for a model or a slot.",
            &self.queue_depth,
        );
        scalar(
            &mut out,
            "hearth_active_sequences",
            "gauge",
            "Sequences being generated.",
            &self.active_sequences,
        );
        scalar(
            &mut out,
            "hearth_prompt_tokens_computed_total",
            "counter",
            "Prompt tokens evaluated.",
            &self.prompt_tokens_computed,
        );
        scalar(
            &mut out,
            "hearth_prompt_tokens_reused_total",
            "counter",
            "Prompt tokens taken from a cached prefix instead of evaluated.",
            &self.prompt_tokens_reused,
        );
        scalar(
            &mut out,
            "hearth_tokens_generated_total",
            "counter",
            "Tokens generated.",
            &self.tokens_generated,
        );
        scalar(
            &mut out,
            "hearth_embeddings_total",
            "counter",
            "Inputs embedded.",
            &self.embeddings,
        );
        scalar(
            &mut out,
            "hearth_steps_total",
            "counter",
            "Engine steps.",
            &self.steps,
        );
        scalar(
            &mut out,
            "hearth_model_loads_total",
            "counter",
            "Models loaded.",
            &self.model_loads,
        );
        scalar(
            &mut out,
            "hearth_model_unloads_total",
            "counter",
            "Models unloaded.",
            &self.model_unloads,
        );
        scalar(
            &mut out,
            "hearth_rejected_busy_total",
            "counter",
            "Requests refused because the queue was full.",
            &self.rejected_busy,
        );
        lock(&self.sequences_per_step).render(
            &mut out,
            "hearth_sequences_per_step",
            "Sequences carried by one engine step.",
        );
        lock(&self.time_to_first_token).render(
            &mut out,
            "hearth_time_to_first_token_seconds",
            "From a request's arrival to its first generated token.",
        );
        lock(&self.time_between_tokens).render(
            &mut out,
            "hearth_time_between_tokens_seconds",
            "Between consecutive tokens of one sequence.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("/api/chat", 200);
        m.request("/api/chat", 200);
        m.step(3);
        m.first_token(0.2);
        let t = m.render();
        assert!(t.contains("hearth_requests_total{endpoint=\"/api/chat\",status=\"200\"} 2"));
        assert!(t.contains("hearth_sequences_per_step_bucket{le=\"2\"} 0"));
        assert!(t.contains("hearth_sequences_per_step_bucket{le=\"3\"} 1"));
        assert!(t.contains("hearth_time_to_first_token_seconds_count 1"));
        assert!(t.contains("hearth_steps_total 1"));
    }
}
