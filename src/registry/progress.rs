//! Progress reporting for pull and push: Ollama's status lines, with one indicatif bar
//! per layer on a terminal and plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Receives the progress of a pull or a push. `key` identifies a layer (its digest).
pub trait Progress: Send + Sync {
    /// A status line such as `pulling manifest` or `success`.
    fn status(&self, line: &str);
    /// A layer transfer begins (`label` is e.g. `pulling 1a2b3c4d5e6f`).
    fn start(&self, key: &str, label: &str, total: u64, completed: u64);
    /// Bytes done so far for a layer.
    fn update(&self, key: &str, completed: u64);
    /// The layer is done.
    fn finish(&self, key: &str);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn status(&self, _: &str) {}
    fn start(&self, _: &str, _: &str, _: u64, _: u64) {}
    fn update(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str) {}
}

/// One line per status and per layer on stderr.
pub struct Plain;

impl Progress for Plain {
    fn status(&self, line: &str) {
        eprintln!("{line}");
    }
    fn start(&self, _: &str, label: &str, total: u64, _: u64) {
        eprintln!("{label} {}", crate::registry::human_bytes(total));
    }
    fn update(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str) {}
}

/// Bars on a terminal.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn status(&self, line: &str) {
        let _ = self.multi.println(line);
    }
    fn start(&self, key: &str, label: &str, total: u64, completed: u64) {
        let style = ProgressStyle::with_template(
            "{msg}: {percent:>3}% ▕{wide_bar}▏ {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let pb = self.multi.add(ProgressBar::new(total));
        pb.set_style(style.progress_chars("█▌ "));
        pb.set_message(label.to_string());
        pb.set_position(completed);
        self.bars.lock().unwrap().insert(key.to_string(), pb);
    }
    fn update(&self, key: &str, completed: u64) {
        if let Some(pb) = self.bars.lock().unwrap().get(key) {
            pb.set_position(completed);
        }
    }
    fn finish(&self, key: &str) {
        if let Some(pb) = self.bars.lock().unwrap().get(key) {
            pb.finish();
        }
    }
}

/// Bars when stderr is a terminal, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Box::new(Plain)
    }
}
