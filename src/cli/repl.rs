//! The interactive chat of `hearth run`: a rustyline prompt with history, Ollama's slash
//! commands, `"""` multi-line input, and a conversation whose KV cache is kept between
//! turns (a new turn prefills only its own tokens).
//!
//! Ctrl-C stops the answer being written and returns to the prompt; at the prompt it
//! only reminds how to leave. Ctrl-D or `/bye` exits. An answer ends at `num_predict`
//! tokens or when the context is full; when a new turn would not leave a quarter of the
//! context for its answer, the oldest turns are dropped (with a note on stderr).
//!
//! Answers are word-wrapped at the terminal's width, read again for every piece so that
//! a resize applies from the next word on; rustyline redraws the prompt line itself.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use super::run::{answer, print_stats};
use crate::generate::load::set_option;
use crate::generate::output::Thinking;
use crate::generate::{DoneReason, Session};
use crate::generate::{LoadOptions, Loaded};
use crate::sampler::SamplerOptions;
use crate::template::Message;

pub struct Settings {
    pub sampling: SamplerOptions,
    pub load: LoadOptions,
    pub system: Option<String>,
    /// The model's `MESSAGE`s, before the chat's own.
    pub history: Vec<Message>,
    pub verbose: bool,
    pub wordwrap: bool,
    /// `--format`: every answer is JSON (of this schema).
    pub format: Option<crate::constrain::Format>,
    /// `--think`, `--hidethinking`.
    pub think: super::think::ThinkSetting,
}

/// Raised by the Ctrl-C handler while an answer is being generated.
static CANCEL: AtomicBool = AtomicBool::new(false);

const HELP: &str = "Available Commands:
  /set parameter NAME VALUE   Set a model option (temperature, top_k, num_predict, stop, …)
  /set system TEXT            Set the system message
  /show info                  Show model information
  /clear                      Clear session context
  /bye                        Exit
  /?, /help                   Help for a command

Use \"\"\" to begin a multi-line message.
";

pub fn run(mut loaded: Loaded, mut s: Settings) -> Result<()> {
    // Ctrl-C during an answer cancels it; installing fails only if a handler exists.
    let _ = ctrlc::set_handler(|| CANCEL.store(true, Ordering::Relaxed));
    let mut rl = DefaultEditor::new()?;
    let history = crate::config::history_file();
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = rl.load_history(&history);
    let wrap = s.wordwrap && std::io::stdout().is_terminal();

    let mut session = Session::new(&mut loaded.engine);
    let mut messages: Vec<Message> = Vec::new();
    loop {
        let line = match rl.readline(">>> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                println!("Use Ctrl + d or /bye to exit.");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let input = match read_multiline(&mut rl, &line)? {
            Some(i) => i,
            None => break,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(input.as_str());
        if trimmed.starts_with('/') {
            match command(trimmed, &mut loaded, &mut s, &mut session, &mut messages) {
                Flow::Continue => continue,
                Flow::Exit => break,
            }
        }

        let (ids, thinking) = match fit_prompt(&loaded, &s, &mut messages, &input) {
            Ok((ids, thinking, 0)) => (ids, thinking),
            Ok((ids, thinking, dropped)) => {
                eprintln!(
                    "(the oldest {dropped} messages were dropped to fit the context of {} tokens)",
                    loaded.engine.num_ctx()
                );
                (ids, thinking)
            }
            Err(e) => {
                eprintln!("Error: {e:#}");
                continue;
            }
        };
        CANCEL.store(false, Ordering::Relaxed);
        let t0 = Instant::now();
        let request = super::run::Request {
            ids: &ids,
            sampling: &s.sampling,
            format: s.format.as_ref(),
            thinking,
        };
        match answer(&mut loaded, &mut session, &request, &CANCEL, wrap) {
            Ok((outcome, text)) => {
                println!();
                if outcome.done_reason == DoneReason::Cancelled {
                    println!();
                }
                println!();
                messages.push(Message::new("user", input.as_str()));
                messages.push(Message::new("assistant", text));
                if s.verbose {
                    print_stats(&outcome, std::time::Duration::ZERO, t0.elapsed());
                }
            }
            Err(e) => eprintln!("Error: {e:#}"),
        }
    }
    let _ = rl.save_history(&history);
    Ok(())
}

/// The prompt of the conversation with `input` as its next turn. While it would leave
/// less than a quarter of the context for the answer, the oldest turns of the chat are
/// dropped (from `messages` too), as Ollama drops them; the system message and the
/// model's `MESSAGE`s stay. Returns the ids and how many messages were dropped.
fn fit_prompt(
    loaded: &Loaded,
    s: &Settings,
    messages: &mut Vec<Message>,
    input: &str,
) -> Result<(Vec<u32>, Option<Thinking>, usize)> {
    let budget = loaded.engine.num_ctx() / 4 * 3;
    let mut dropped = 0;
    loop {
        let mut convo = Vec::with_capacity(s.history.len() + messages.len() + 2);
        if let Some(sys) = &s.system {
            convo.push(Message::new("system", sys.as_str()));
        }
        convo.extend(s.history.iter().cloned());
        convo.extend(messages.iter().cloned());
        convo.push(Message::new("user", input));
        let (ids, thinking) = s.think.prompt(loaded, &convo)?;
        if ids.len() <= budget || messages.is_empty() {
            return Ok((ids, thinking, dropped));
        }
        // A user message and its answer.
        let n = messages.len().min(2);
        messages.drain(..n);
        dropped += n;
    }
}

/// The whole input: a line, or the lines between `"""` and `"""`. `None` on Ctrl-D.
fn read_multiline(rl: &mut DefaultEditor, first: &str) -> Result<Option<String>> {
    let Some(rest) = first.trim_start().strip_prefix("\"\"\"") else {
        return Ok(Some(first.to_string()));
    };
    if let Some(body) = rest.strip_suffix("\"\"\"") {
        return Ok(Some(body.to_string()));
    }
    let mut text = rest.to_string();
    loop {
        match rl.readline("... ") {
            Ok(l) => {
                if let Some(body) = l.trim_end().strip_suffix("\"\"\"") {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(body);
                    return Ok(Some(text));
                }
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&l);
            }
            Err(ReadlineError::Interrupted) => return Ok(Some(String::new())),
            Err(ReadlineError::Eof) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

enum Flow {
    Continue,
    Exit,
}

fn command(
    line: &str,
    loaded: &mut Loaded,
    s: &mut Settings,
    session: &mut Session,
    messages: &mut Vec<Message>,
) -> Flow {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    match cmd {
        "/bye" | "/exit" => return Flow::Exit,
        "/?" | "/help" => print!("{HELP}"),
        "/clear" => {
            messages.clear();
            session.reset(&mut loaded.engine);
            println!("Cleared session context");
        }
        "/set" => match words.next() {
            Some("parameter") => match (words.next(), words.collect::<Vec<_>>()) {
                (Some(name), value) if !value.is_empty() => {
                    let value = value.join(" ");
                    match set_option(&mut s.load, &mut s.sampling, name, &value) {
                        Ok(()) if matches!(name, "num_ctx" | "num_thread") => {
                            println!("'{name}' applies when the model is next loaded")
                        }
                        Ok(()) => println!("Set parameter '{name}' to '{value}'"),
                        Err(e) => println!("Couldn't set parameter: {e}"),
                    }
                }
                _ => println!("Usage: /set parameter NAME VALUE"),
            },
            Some("system") => {
                let text = line
                    .trim_start_matches("/set")
                    .trim_start()
                    .trim_start_matches("system")
                    .trim();
                let text = text.trim_matches('"');
                if text.is_empty() {
                    s.system = None;
                    println!("Cleared system message.");
                } else {
                    s.system = Some(text.to_string());
                    println!("Set system message.");
                }
            }
            Some("verbose") => {
                s.verbose = true;
                println!("Set 'verbose' mode.");
            }
            Some("quiet") => {
                s.verbose = false;
                println!("Set 'quiet' mode.");
            }
            _ => println!(
                "Usage: /set parameter NAME VALUE | /set system TEXT | /set verbose | /set quiet"
            ),
        },
        "/show" => match words.next() {
            Some("info") | None => match super::show::render(loaded.engine.model().file(), false) {
                Ok(text) => print!("{text}"),
                Err(e) => println!("Error: {e:#}"),
            },
            Some("parameters") => match serde_json::to_string_pretty(&s.sampling) {
                Ok(j) => println!("{j}"),
                Err(e) => println!("Error: {e}"),
            },
            Some("system") => println!(
                "{}",
                s.system
                    .as_deref()
                    .unwrap_or("No system message was specified for this model.")
            ),
            Some(other) => println!("Unknown show command '{other}'. Try /show info"),
        },
        other => println!("Unknown command '{other}'. Type /? for help"),
    }
    Flow::Continue
}
