//! A spinner on stderr for work that usually takes less than a second but may take more
//! (loading a model, reading a long prompt): it appears only once `after` has passed, so
//! quick work prints nothing.
//!
//! Where stderr takes redrawing progress ([`progress::fancy_stderr`]) it is an indicatif
//! spinner, cleared when the work ends; on a terminal with `NO_COLOR` set it is one plain
//! line with the message instead (none for an empty message); when stderr is not a
//! terminal, nothing.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::registry::progress;

/// The delay after which work gets a spinner.
pub const DELAY: Duration = Duration::from_secs(1);

/// A spinner that may appear after a delay; dropping it stops (and clears) it.
pub struct Delayed {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Delayed {
    /// Starts the timer; `message` is shown beside the spinner (empty: the spinner alone,
    /// as while an answer's first word is awaited).
    pub fn start(message: &'static str, after: Duration) -> Delayed {
        if !std::io::stderr().is_terminal() {
            return Delayed {
                stop: None,
                thread: None,
            };
        }
        let fancy = progress::fancy_stderr();
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("spinner".into())
            .spawn(move || {
                if rx.recv_timeout(after) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                if !fancy {
                    if !message.is_empty() {
                        eprintln!("{message}");
                    }
                    return;
                }
                let pb = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                    pb.set_style(style.tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "));
                }
                pb.set_message(message);
                pb.enable_steady_tick(Duration::from_millis(100));
                // Until the sender is dropped.
                let _ = rx.recv();
                pb.finish_and_clear();
            })
            .ok();
        Delayed {
            stop: Some(tx),
            thread,
        }
    }

    /// Stops the spinner and clears its line (also done on drop).
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Delayed {
    fn drop(&mut self) {
        self.stop();
    }
}
