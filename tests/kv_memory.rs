//! A sequence's KV cache is allocated for all of `num_ctx` but only becomes resident as
//! positions fill: the allocation must be a zeroed one the allocator serves from fresh
//! pages (an element-by-element fill would touch every page at once).
//!
//! One test in this binary, so no other test's memory shows in the process's RSS.

mod common;

use hearth::engine::{Engine, EngineOptions, Logits, StepInput};
use hearth::model::Model;

/// Anonymous resident memory of this process, bytes (Linux), else `None`.
fn rss_anon() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn kv_cache_is_resident_only_when_used() {
    let num_ctx = 8192;
    let model = Model::open(&common::test_model(common::SMOLLM2)).unwrap();
    let c = &model.config;
    // f16 keys and values for every layer and position.
    let full = 2 * c.n_layer * num_ctx * c.kv_dim() * 2;
    let mut e = Engine::new(
        model,
        EngineOptions {
            num_ctx,
            ..EngineOptions::default()
        },
    );
    let Some(before) = rss_anon() else {
        return;
    };
    let s = e.add_sequence();
    e.step(&[StepInput {
        seq: s,
        tokens: &[1, 2, 3, 4, 5, 6, 7, 8],
        logits: Logits::Last,
    }])
    .unwrap();
    let grew = rss_anon().unwrap().saturating_sub(before);
    eprintln!(
        "KV cache {} MiB allocated; anonymous RSS grew {} MiB",
        full >> 20,
        grew >> 20
    );
    assert!(full > 150 << 20);
    assert!(grew < full / 4, "{grew} bytes resident of {full}");
}
