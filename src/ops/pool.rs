//! A persistent worker pool for the forward pass's data-parallel loops.
//!
//! Why not rayon: a decode step of a small model is ~250 parallel loops of a few
//! microseconds each, and rayon's fork/join costs 5-50 µs per loop here (measured on
//! this 2-vCPU machine), more than the work. This pool keeps its workers hot between
//! loops (a short spin, then `yield_now`, then parking on a condvar), hands out task
//! indices with one atomic counter, and never makes the caller wait for a worker that
//! has not started: a worker that was descheduled by a competing process simply finds
//! the loop finished when it wakes. So a busy second core slows hearth down in proportion
//! instead of collapsing it, which spinning barriers do.
//!
//! The protocol (all atomics `SeqCst`):
//! - The caller publishes a job (a pointer to a closure and a task counter on its stack)
//!   in `job`, bumps `epoch`, wakes sleepers, and takes tasks itself.
//! - A worker that sees a new epoch increments `active` and only then reads `job`; if
//!   the pointer is non-null it takes tasks until none are left, then decrements `active`.
//! - The caller, out of tasks, sets `job` to null and waits until `active` is 0.
//!
//! Invariant: a worker dereferences the job only if its read of `job` came before the
//! caller's null store in the total order; its `active` increment came before that read,
//! so the caller's later read of `active` sees it, and the caller (whose stack holds the
//! job) does not return until the worker is done.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// One parallel loop: `f(i)` for every `i < n`.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
}

impl Job<'_> {
    fn run(&self) {
        loop {
            let i = self.next.fetch_add(1, SeqCst);
            if i >= self.n {
                return;
            }
            (self.f)(i);
        }
    }
}

struct Shared {
    /// The current job (type-erased `*const Job<'_>`), null when none.
    job: AtomicPtr<()>,
    epoch: AtomicUsize,
    active: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// The pool. [`Pool::global`] is sized from `HEARTH_NUM_THREADS` or the CPU count.
pub struct Pool {
    shared: Arc<Shared>,
    threads: usize,
}

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// Spins (with a pause hint) this many times before yielding, while waiting.
const SPIN: u32 = 2_000;
/// Yields this many times before parking.
const YIELDS: u32 = 200;

impl Pool {
    /// A pool running loops on `threads` threads (the caller plus `threads - 1` workers).
    pub fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        for i in 1..threads {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("hearth-worker-{i}"))
                .spawn(move || worker(&s));
            if spawned.is_err() {
                // Fewer workers only means less parallelism; loops still complete.
                break;
            }
        }
        Pool { shared, threads }
    }

    /// Sizes the process-wide pool before its first use; `false` if it already exists
    /// with another size.
    pub fn init_global(threads: usize) -> bool {
        GLOBAL.get_or_init(|| Pool::new(threads)).threads == threads.max(1)
    }

    /// The process-wide pool (sized by [`init_global`](Self::init_global), else by
    /// `HEARTH_NUM_THREADS`, else one thread per CPU).
    pub fn global() -> &'static Pool {
        GLOBAL.get_or_init(|| {
            let n = match crate::config::num_threads() {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            Pool::new(n)
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Calls `f(i)` for every `i < n`, spread over the pool; returns when all are done.
    pub fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n == 0 {
            return;
        }
        if n == 1 || self.threads == 1 {
            (0..n).for_each(f);
            return;
        }
        let job = Job {
            f,
            n,
            next: AtomicUsize::new(0),
        };
        let s = &*self.shared;
        s.job.store(&job as *const Job<'_> as *mut (), SeqCst);
        s.epoch.fetch_add(1, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        job.run();
        s.job.store(std::ptr::null_mut(), SeqCst);
        wait_until(|| s.active.load(SeqCst) == 0);
    }

    /// Splits each buffer of `bufs` into chunks of `chunk[b]` elements (the last may be
    /// shorter) and calls `f(b, c, chunk)` for every chunk `c` of every buffer `b`, in
    /// parallel. Each chunk is handed to exactly one call.
    pub fn for_each_chunk_mut<T: Send>(
        &self,
        bufs: &mut [&mut [T]],
        chunk: &[usize],
        f: &(dyn Fn(usize, usize, &mut [T]) + Sync),
    ) {
        // Task t belongs to buffer b where starts[b] <= t < starts[b + 1]; at most 8
        // buffers, so the table lives on the stack.
        const MAX: usize = 8;
        assert!(bufs.len() <= MAX && chunk.len() == bufs.len());
        let mut starts = [0usize; MAX + 1];
        let mut ptrs = [(0usize, 0usize); MAX];
        for (b, buf) in bufs.iter_mut().enumerate() {
            let c = chunk[b].max(1);
            starts[b + 1] = starts[b] + buf.len().div_ceil(c);
            ptrs[b] = (buf.as_mut_ptr() as usize, buf.len());
        }
        let nb = bufs.len();
        let total = starts[nb];
        let task = |t: usize| {
            let b = (0..nb).find(|&b| t < starts[b + 1]).unwrap_or(0);
            let c = t - starts[b];
            let size = chunk[b].max(1);
            let (base, len) = ptrs[b];
            let lo = c * size;
            let n = size.min(len - lo);
            // `base..base+len` is buffer b, exclusively borrowed by this call for its
            // whole duration; chunk c covers `lo..lo+n`, inside the buffer, and every
            // task index t is executed exactly once (Job::run's counter), so no two live
            // slices overlap. T: Send allows handing them to other threads.
            // SAFETY: in bounds and disjoint from every other live chunk (above).
            let part = unsafe { std::slice::from_raw_parts_mut((base as *mut T).add(lo), n) };
            f(b, c, part);
        };
        self.for_each(total, &task);
    }
}

fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < SPIN {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        spins = spins.saturating_add(1);
    }
}

fn worker(s: &Shared) {
    let mut seen = s.epoch.load(SeqCst);
    loop {
        // Wait for a new epoch: spin, then yield, then park.
        let mut round = 0u32;
        loop {
            if s.epoch.load(SeqCst) != seen {
                break;
            }
            if round < SPIN {
                std::hint::spin_loop();
            } else if round < SPIN + YIELDS {
                std::thread::yield_now();
            } else {
                let g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, SeqCst);
                let mut g = g;
                while s.epoch.load(SeqCst) == seen {
                    g = match s.wake.wait_timeout(g, Duration::from_millis(100)) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    };
                }
                s.sleepers.fetch_sub(1, SeqCst);
                break;
            }
            round += 1;
        }
        seen = s.epoch.load(SeqCst);
        s.active.fetch_add(1, SeqCst);
        let p = s.job.load(SeqCst) as *const Job<'_>;
        if !p.is_null() {
            // The module invariant: `active` was raised before this read of a non-null
            // `job`, so the caller that owns the job (on its stack) waits for `active` to
            // drop before returning.
            // SAFETY: the job outlives this use (above).
            let job = unsafe { &*p };
            job.run();
        }
        s.active.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_once() {
        let pool = Pool::new(3);
        for n in [0usize, 1, 2, 7, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                pool.for_each(n, &|i| {
                    hits[i].fetch_add(1, SeqCst);
                });
            }
            assert!(hits.iter().all(|h| h.load(SeqCst) == 50));
        }
    }

    #[test]
    fn chunks_cover_each_buffer_once() {
        let pool = Pool::new(2);
        let mut a = vec![0u32; 37];
        let mut b = vec![0u32; 5];
        {
            let mut bufs: [&mut [u32]; 2] = [&mut a, &mut b];
            pool.for_each_chunk_mut(&mut bufs, &[8, 2], &|buf, c, part| {
                for (j, x) in part.iter_mut().enumerate() {
                    *x += (buf * 1000 + c * 10 + j) as u32 + 1;
                }
            });
        }
        for (i, &x) in a.iter().enumerate() {
            assert_eq!(x as usize, (i / 8) * 10 + i % 8 + 1);
        }
        for (i, &x) in b.iter().enumerate() {
            assert_eq!(x as usize, 1000 + (i / 2) * 10 + i % 2 + 1);
        }
    }
}
