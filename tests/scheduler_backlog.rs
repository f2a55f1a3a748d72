//! A client that does not read its stream: its sequence pauses once
//! `scheduler::MAX_BACKLOG` events wait unread (bounded memory per request), other
//! sequences keep going meanwhile, and once the client reads again the sequence
//! resumes and ends with the same tokens as alone.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth::generate::ModelSource;
use hearth::metrics::Metrics;
use hearth::sampler::SamplerOptions;
use hearth::scheduler::{Config, Event, Events, Job, Lease, Scheduler, MAX_BACKLOG};

fn job(lease: &Lease, prompt: &str, n: i32) -> Job {
    let ids = lease.info().tokenizer.encode(prompt, true, true);
    Job {
        ids,
        sampling: SamplerOptions {
            temperature: 0.0,
            num_predict: n,
            ..SamplerOptions::default()
        },
        constraint: None,
        num_ctx: 2048,
        logprobs: None,
        arrived: Instant::now(),
    }
}

/// Every token of a generation, reading until its end.
async fn drain(mut ev: Events) -> Vec<u32> {
    while let Some(e) = ev.recv().await {
        match e {
            Event::Text(_) | Event::Logprob(_) => {}
            Event::Done(d) => return d.tokens,
            Event::Error(e) => panic!("{e}"),
        }
    }
    panic!("the generation ended without a result");
}

#[test]
fn an_unread_stream_pauses_without_stalling_others() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = Arc::new(Metrics::default());
    let sched = Scheduler::start(
        Config {
            num_parallel: 2,
            max_loaded: 1,
            max_queue: 8,
            keep_alive: None,
            num_ctx: 2048,
            prefill_slice: Duration::from_millis(250),
        },
        Arc::clone(&metrics),
    );
    let source = ModelSource::file(&common::test_model(common::SMOLLM2));
    let lease = rt.block_on(sched.acquire(source, 2048, None)).unwrap();
    let story = "Once upon a time, in a land far away,";
    let n = (MAX_BACKLOG + 200) as i32;

    let slow = lease.generate(job(&lease, story, n), sched.ticket().unwrap());
    // It produces about MAX_BACKLOG tokens, then stops while nobody reads.
    let t0 = Instant::now();
    while metrics.tokens_generated.load(Relaxed) < MAX_BACKLOG as u64 {
        assert!(t0.elapsed() < Duration::from_secs(120), "too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let paused_at = metrics.tokens_generated.load(Relaxed);
    assert!(
        paused_at <= MAX_BACKLOG as u64 + 2,
        "{paused_at} tokens generated for an unread stream (backlog limit {MAX_BACKLOG})"
    );

    // Another sequence runs to its end meanwhile.
    let fast = lease.generate(
        job(&lease, "The capital of France is", 16),
        sched.ticket().unwrap(),
    );
    let fast_tokens = rt.block_on(drain(fast));
    assert_eq!(fast_tokens.len(), 16);
    assert_eq!(
        metrics.tokens_generated.load(Relaxed),
        paused_at + 16,
        "the unread stream went on"
    );

    // Reading resumes it; it ends with the tokens it has alone.
    let resumed = rt.block_on(drain(slow));
    assert_eq!(resumed.len(), n as usize);
    let alone = lease.generate(job(&lease, story, n), sched.ticket().unwrap());
    assert_eq!(rt.block_on(drain(alone)), resumed);
}
