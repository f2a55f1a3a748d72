//! The terminal experience in a real terminal: `hearth` runs in a detached tmux pane
//! (80×24), driven with `send-keys` and read back with `capture-pane` (the screen as a
//! user sees it) and `pipe-pane` (the raw bytes the program wrote).
//!
//! - `hearth create`: a progress bar that redraws in place on a terminal; plain lines with
//!   no escape byte when `NO_COLOR` is set or stderr is a pipe.
//! - `hearth run`'s REPL: the prompt, a long input line, an answer wrapped at the pane's
//!   width, a resize mid-answer (what follows wraps at the new width, the prompt comes back
//!   clean), Ctrl+C stopping a runaway answer with the REPL going on, `num_predict`
//!   bounding an answer, `/bye` exiting.
//!
//! Every wait polls the pane with a bound; the model is SmolLM2 from the test-model cache
//! (scripts/fetch-test-models), imported into a throwaway store. tmux is installed by
//! scripts/test and .ci/run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test (its store, home and tmux socket), removed on drop
/// (declare it before the [`Pane`] that uses it, so that the pane goes first).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "hearth-term-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A word for `sh`, single-quoted.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A directory with a Modelfile importing SmolLM2 (through a symlink next to it).
fn model_dir() -> TempDir {
    let dir = TempDir::new();
    let gguf = common::test_model(common::SMOLLM2);
    std::os::unix::fs::symlink(&gguf, dir.join("smol.gguf")).unwrap();
    std::fs::write(dir.join("Modelfile"), "FROM ./smol.gguf\n").unwrap();
    dir
}

/// The `env` words that give `hearth` the test's store and home, and no `NO_COLOR` from
/// the caller's environment unless `no_color` sets one.
fn env_words(dir: &Path, no_color: Option<&str>) -> String {
    let mut w = format!(
        "env -u NO_COLOR HEARTH_MODELS={} HEARTH_HOME={}",
        quote(dir.join("store").to_str().unwrap()),
        quote(dir.join("home").to_str().unwrap()),
    );
    if let Some(v) = no_color {
        w.push_str(&format!(" NO_COLOR={}", quote(v)));
    }
    w
}

/// A tmux server of its own (a socket in the test's directory) with one pane.
struct Pane {
    socket: PathBuf,
    raw: PathBuf,
}

impl Pane {
    /// Starts `command` (a shell command line) in a `width`×`height` pane once the raw
    /// output is being recorded; the pane stays after the command exits.
    fn start(dir: &Path, width: u16, height: u16, command: &str) -> Pane {
        let pane = Pane {
            socket: dir.join("tmux.sock"),
            raw: dir.join("pane.raw"),
        };
        // The command waits for a line first, so that pipe-pane sees all it writes; its
        // exit status is printed after it (tmux 3.3's #{pane_dead_status} may be empty).
        // The shell traps SIGINT (Ctrl+C reaches the whole foreground group) so that it
        // outlives the command; a trap, unlike an ignored signal, is not inherited.
        let script = format!("trap : INT; read _; {command}; echo \"[exit $?]\"");
        pane.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "sh",
            "-c",
            &script,
        ]);
        pane.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
        pane.tmux(&["set-option", "-g", "history-limit", "5000"]);
        let cat = format!("cat > {}", quote(pane.raw.to_str().unwrap()));
        pane.tmux(&["pipe-pane", "-o", &cat]);
        pane.tmux(&["send-keys", "Enter"]);
        pane
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux is missing: apt-get install tmux (scripts/test installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The visible screen, one string per row (trailing spaces trimmed by tmux).
    fn screen(&self) -> Vec<String> {
        let out = self.tmux(&["capture-pane", "-p"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The scrollback and the screen.
    fn history(&self) -> Vec<String> {
        let out = self.tmux(&["capture-pane", "-p", "-S", "-"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Polls the screen until `ok` holds, for at most `secs` seconds.
    fn wait(&self, what: &str, secs: u64, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "waited {secs} s for {what}; the screen:\n{}",
                s.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types `text` literally, then Enter.
    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
        self.keys(&["Enter"]);
    }

    /// The exit status once the command has exited (waits at most `secs` seconds).
    fn exit_status(&self, secs: u64) -> i32 {
        let t0 = Instant::now();
        loop {
            let out = self.tmux(&["display-message", "-p", "#{pane_dead}"]);
            if String::from_utf8_lossy(&out.stdout).trim() == "1" {
                let code = self.history().iter().rev().find_map(|r| {
                    r.strip_prefix("[exit ")
                        .and_then(|c| c.strip_suffix(']'))
                        .and_then(|c| c.parse().ok())
                });
                return code.unwrap_or(-1);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "the command did not exit within {secs} s; the screen:\n{}",
                self.screen().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The bytes written to the pane so far.
    fn raw(&self) -> Vec<u8> {
        std::fs::read(&self.raw).unwrap_or_default()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// `hearth create smol` in the directory, as a shell command line.
fn create_command(dir: &Path, no_color: Option<&str>) -> String {
    format!(
        "sh -c {}",
        quote(&format!(
            "cd {} && exec {} {} create smol",
            quote(dir.to_str().unwrap()),
            env_words(dir, no_color),
            quote(env!("CARGO_BIN_EXE_hearth")),
        ))
    )
}

/// The rows of `screen` that hold text, in order.
fn text_rows(screen: &[String]) -> Vec<&str> {
    screen
        .iter()
        .map(|r| r.trim_end())
        .filter(|r| !r.is_empty() && !r.starts_with("Pane is dead") && !r.starts_with("[exit "))
        .collect()
}

fn assert_create_lines(rows: &[&str], copying: &str) {
    let find = |prefix: &str| {
        let hits: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].starts_with(prefix))
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "one {prefix:?} line in:\n{}",
            rows.join("\n")
        );
        hits[0]
    };
    let order = [
        find("parsing GGUF"),
        find(copying),
        find("creating new layer sha256:"),
        find("writing manifest"),
        find("success"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "lines out of order:\n{}",
        rows.join("\n")
    );
}

/// `hearth create` on a terminal draws a bar that redraws in place and leaves one finished
/// line; with `NO_COLOR` (on a terminal) and with stderr piped it writes plain lines
/// without a single escape byte.
#[test]
fn create_progress_on_a_terminal_and_plain() {
    // A terminal; NO_COLOR set but empty does not count (no-color.org).
    let dir = model_dir();
    let pane = Pane::start(&dir, 80, 24, &create_command(&dir, Some("")));
    assert_eq!(pane.exit_status(30), 0, "{}", pane.screen().join("\n"));
    let screen = pane.screen();
    let rows = text_rows(&screen);
    assert_create_lines(&rows, "copying file: 100% ▕");
    let raw = pane.raw();
    assert!(
        raw.contains(&0x1b),
        "the bar redraws with escape codes on a terminal"
    );
    // Redrawn in place: the bar's intermediate states are gone from the screen.
    let bars = rows.iter().filter(|r| r.contains('▕')).count();
    assert_eq!(bars, 1, "one bar line:\n{}", rows.join("\n"));
    drop(pane);

    // A terminal with NO_COLOR=1: plain lines.
    let dir = model_dir();
    let pane = Pane::start(&dir, 80, 24, &create_command(&dir, Some("1")));
    assert_eq!(pane.exit_status(30), 0, "{}", pane.screen().join("\n"));
    let screen = pane.screen();
    assert_create_lines(&text_rows(&screen), "copying file 98 MB");
    let raw = pane.raw();
    assert!(
        !raw.contains(&0x1b),
        "NO_COLOR: no escape byte, got {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert!(!screen.iter().any(|r| r.contains('▕')));
    drop(pane);

    // stderr piped: plain lines.
    let dir = model_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["create", "smol"])
        .current_dir(&*dir)
        .env_remove("NO_COLOR")
        .env("HEARTH_MODELS", dir.join("store"))
        .env("HEARTH_HOME", dir.join("home"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!out.stderr.contains(&0x1b), "piped: no escape byte");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_create_lines(&err.lines().collect::<Vec<_>>(), "copying file 98 MB");
}

/// Rows of the answer area that a terminal wrapped by itself (as wide as the pane).
fn overflowing(rows: &[String], width: usize) -> Vec<&String> {
    rows.iter().filter(|r| r.chars().count() >= width).collect()
}

/// The REPL on a terminal: prompt, long input, wrapped answer, resize mid-answer, Ctrl+C,
/// `num_predict`, /bye.
#[test]
fn repl_wraps_resizes_and_stops() {
    let dir = model_dir();
    let created = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["create", "smol"])
        .current_dir(&*dir)
        .env("HEARTH_MODELS", dir.join("store"))
        .env("HEARTH_HOME", dir.join("home"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(created.status.success());
    let command = format!(
        "{} {} run smol -o temperature=0 -o num_predict=4000",
        env_words(&dir, None),
        quote(env!("CARGO_BIN_EXE_hearth"))
    );
    let pane = Pane::start(&dir, 80, 24, &command);
    let at_prompt = |s: &[String]| text_rows(s).last() == Some(&">>>");
    pane.wait("the prompt", 30, at_prompt);

    // Ctrl+C at the prompt only says how to leave.
    pane.keys(&["C-c"]);
    pane.wait("the reminder", 10, |s| {
        s.iter().any(|r| r == "Use Ctrl + d or /bye to exit.") && at_prompt(s)
    });

    // An input longer than the pane; greedy SmolLM2 answers it with a story that repeats
    // itself without end (a runaway, only num_predict would end it).
    let prompt = "Write a very long story about a dragon named Zorath who lives high up in \
                  the mountains and guards a treasure.";
    assert!(prompt.len() > 80);
    pane.line(prompt);
    let screen = pane.wait("the answer to fill lines", 60, |s| {
        let i = s.iter().position(|r| r.starts_with(">>> Write"));
        i.is_some_and(|i| text_rows(&s[i..]).len() >= 8)
    });
    let start = screen
        .iter()
        .position(|r| r.starts_with(">>> Write"))
        .unwrap();
    // The input wrapped onto a second row, as typed.
    let typed = format!("{}{}", screen[start], screen[start + 1]);
    assert!(
        typed.starts_with(&format!(">>> {}", &prompt[..60])),
        "{typed:?}"
    );
    // The answer wraps at words, short of the pane's width (a row as wide as the pane
    // would be the terminal's own wrap, cutting a word).
    let answer: Vec<String> = screen[start + 2..]
        .iter()
        .filter(|r| !r.is_empty())
        .cloned()
        .collect();
    assert!(
        overflowing(&answer, 80).is_empty(),
        "rows as wide as the pane:\n{}",
        answer.join("\n")
    );
    assert!(
        answer.iter().any(|r| r.chars().count() > 60),
        "the answer uses the width:\n{}",
        answer.join("\n")
    );

    // Narrower mid-answer: what follows wraps at the new width.
    pane.tmux(&["resize-window", "-x", "50", "-y", "24"]);
    let before = pane.history().iter().filter(|r| !r.is_empty()).count();
    pane.wait("the answer to go on after the resize", 60, |_| {
        pane.history().iter().filter(|r| !r.is_empty()).count() >= before + 12
    });
    // Stop it.
    pane.keys(&["C-c"]);
    let screen = pane.wait("the prompt after Ctrl+C", 20, at_prompt);
    let rows = text_rows(&screen);
    // The rows written after the resize (the last before the prompt) fit in 49 columns;
    // those written before were reflowed by tmux and may be 50 wide.
    let tail: Vec<String> = rows[rows.len() - 9..rows.len() - 1]
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert!(
        overflowing(&tail, 50).is_empty(),
        "rows written after the resize overflow:\n{}",
        rows.join("\n")
    );
    assert!(
        rows.iter().any(|r| r.contains("^C")),
        "Ctrl+C reached the answer:\n{}",
        rows.join("\n")
    );
    // Stopped: nothing more arrives; the prompt stays the last line.
    std::thread::sleep(Duration::from_millis(500));
    assert!(at_prompt(&pane.screen()), "{}", pane.screen().join("\n"));

    // The REPL goes on, at the new width; num_predict bounds the next answer.
    pane.line("/set parameter num_predict 8");
    pane.wait("the parameter", 10, |s| {
        s.iter().any(|r| r == "Set parameter 'num_predict' to '8'") && at_prompt(s)
    });
    pane.line("What is the capital of France?");
    // (The question's row starts with ">>> ", so a last row of ">>>" comes after it.)
    let screen = pane.wait("a short answer", 30, |s| {
        s.iter().any(|r| r.starts_with(">>> What is the capital")) && at_prompt(s)
    });
    let i = screen
        .iter()
        .position(|r| r.starts_with(">>> What is the capital"))
        .unwrap();
    let short: Vec<&str> = text_rows(&screen[i + 1..]);
    let words: usize = short[..short.len() - 1]
        .iter()
        .map(|r| r.split_whitespace().count())
        .sum();
    assert!(
        (1..=8).contains(&words),
        "8 tokens make at most 8 words:\n{}",
        short.join("\n")
    );
    assert!(
        short.iter().all(|r| r.chars().count() < 50),
        "{}",
        short.join("\n")
    );

    pane.line("/bye");
    assert_eq!(pane.exit_status(10), 0, "{}", pane.screen().join("\n"));
}
