//! Memory the GGUF reader allocates: bounded on hostile counts, and tiny for real
//! models (the data stays in the map; nothing is copied).
//!
//! One test in this binary, so the global allocation counter sees only it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hearth::gguf::write::{Value, Writer};
use hearth::gguf::GgufFile;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak bytes allocated while `f` runs, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed) - base)
}

#[test]
fn allocation_is_bounded() {
    // Hostile counts: huge tensor/metadata counts and array lengths in a tiny file.
    let mut w = Writer::new();
    w.kv("a", Value::i32s(&[1, 2, 3]));
    let (good, layout) = w.build();
    let mut cases = Vec::new();
    for (at, v) in [
        (8usize, 1u64 << 60),
        (16, 1 << 60),
        (layout.kv_type[0] + 8, 1 << 40),
    ] {
        let mut b = good.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        cases.push(b);
    }
    for b in cases {
        let len = b.len();
        let (r, peak) = peak_during(|| hearth::gguf::validate(&b));
        assert!(r.is_err());
        assert!(
            peak < 64 * 1024,
            "{peak} bytes allocated for a {len}-byte file"
        );
    }

    // Real models: opening maps the file; the reader's own allocations are a few KB
    // per tensor, not the tensor data (98 MB and 253 MB).
    for name in [common::SMOLLM2, common::GEMMA3] {
        let path = common::test_model(name);
        let (f, peak) = peak_during(|| GgufFile::open(&path).unwrap());
        assert!(peak < 512 * 1024, "{name}: opening allocated {peak} bytes");
        drop(f);
    }
}
