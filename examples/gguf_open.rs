//! Open-and-parse time of GGUF files (mmap, header and metadata walked, no data read).
//!
//!     cargo run --release --example gguf_open -- FILE.gguf [FILE.gguf …]

use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let mut times = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            let f = hearth::gguf::GgufFile::open(path.as_ref()).expect("open");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(&f);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{path}: open+parse median {:.3} ms (min {:.3}, max {:.3}, 21 runs)",
            times[10], times[0], times[20]
        );
    }
}
