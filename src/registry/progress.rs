//! Progress reporting for pull, push and create: Ollama's status lines, with one indicatif
//! bar per layer on a terminal and plain lines otherwise.
//!
//! Bars (which redraw in place with `\r` and ANSI escapes) are drawn only when stderr is a
//! terminal, `NO_COLOR` is unset or empty (<https://no-color.org>) and `TERM` is not
//! `dumb`. Otherwise each status and each layer gets one plain line with no escape codes:
//! `NO_COLOR` turns off every ANSI sequence, not only colors.

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
    /// Each layer's bar and label.
    bars: Mutex<HashMap<String, (ProgressBar, String)>>,
}

/// The width of a finished bar's line.
const DONE_BAR: usize = 30;

impl Progress for Bars {
    fn status(&self, line: &str) {
        let _ = self.multi.println(line);
    }
    fn start(&self, key: &str, label: &str, total: u64, completed: u64) {
        let style = ProgressStyle::with_template(
            "{msg}: {percent:>3}% ▕{wide_bar}▏ {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let pb = self.multi.add(ProgressBar::new(total));
        pb.set_style(style.progress_chars("█▌ "));
        pb.set_message(label.to_string());
        pb.set_position(completed);
        let entry = (pb, label.to_string());
        self.bars.lock().unwrap().insert(key.to_string(), entry);
    }
    fn update(&self, key: &str, completed: u64) {
        if let Some((pb, _)) = self.bars.lock().unwrap().get(key) {
            pb.set_position(completed);
        }
    }
    fn finish(&self, key: &str) {
        // A finished bar is replaced by a still line printed above the bars, so the output
        // reads in order (a kept bar would stay below the status lines printed after it).
        let Some((pb, label)) = self.bars.lock().unwrap().remove(key) else {
            return;
        };
        pb.finish_and_clear();
        self.multi.remove(&pb);
        let total = pb.length().unwrap_or(pb.position());
        let _ = self.multi.println(format!(
            "{label}: 100% ▕{}▏ {}",
            "█".repeat(DONE_BAR),
            crate::registry::human_bytes(total)
        ));
    }
}

/// Whether stderr may carry redrawing progress (bars, spinners): a terminal that is not
/// `dumb`, and no `NO_COLOR`.
pub fn fancy_stderr() -> bool {
    std::io::stderr().is_terminal()
        && !crate::config::no_color()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Bars when [`fancy_stderr`], plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if fancy_stderr() {
        Box::new(Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Box::new(Plain)
    }
}
