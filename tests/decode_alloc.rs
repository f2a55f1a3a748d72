//! A decode step allocates nothing once the engine has warmed up: every buffer it needs
//! (scratch, matmul and attention buffers, the pool's job) is sized by the first steps
//! and reused. Checked with a counting global allocator over real decode steps of both
//! test models, at a context long enough for attention to split over several chunks.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hearth::engine::{Engine, EngineOptions, Logits, StepInput};
use hearth::model::Model;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn check(name: &str) {
    let mut e = Engine::new(
        Model::open(&common::test_model(name)).unwrap(),
        EngineOptions {
            num_ctx: 1024,
            ..EngineOptions::default()
        },
    );
    let seq = e.add_sequence();
    // A 600-token prompt: decode then attends over three 256-key chunks.
    let prompt: Vec<u32> = (0..600).map(|i| 100 + (i * 7) % 500).collect();
    e.step(&[StepInput {
        seq,
        tokens: &prompt,
        logits: Logits::Last,
    }])
    .unwrap();
    let mut decode = |tok: u32| {
        e.step(&[StepInput {
            seq,
            tokens: &[tok],
            logits: Logits::Last,
        }])
        .unwrap();
    };
    // Warm-up: the first decode steps size the single-token buffers.
    for t in 0..3 {
        decode(200 + t);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for t in 0..20 {
        decode(300 + t);
    }
    let during = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        during, 0,
        "{name}: 20 decode steps allocated {during} times"
    );
}

#[test]
fn decode_steps_do_not_allocate() {
    check(common::SMOLLM2);
    check(common::GEMMA3);
}
