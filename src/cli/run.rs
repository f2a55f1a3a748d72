//! `hearth run MODEL [PROMPT]`: one answer to a prompt given as arguments or on stdin,
//! or an interactive chat when stdin is a terminal.
//!
//! With a prompt argument or piped stdin, stdout carries exactly the generated text;
//! notices and `--verbose` statistics go to stderr.

use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::repl;
use super::spinner::{self, Delayed};
use super::think::{ThinkPrinter, ThinkSetting};
use super::wrap::WordWrap;
use crate::constrain::Format;
use crate::generate::load::{apply_options, apply_params};
use crate::generate::output::Thinking;
use crate::generate::{LoadOptions, Loaded, ModelSource, Outcome, Session, Turn};
use crate::sampler::SamplerOptions;
use crate::template::Message;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model: a store name (pulled first when missing) or a path to a .gguf file
    #[arg(value_name = "MODEL")]
    model: String,
    /// The prompt (its words are joined by spaces); without it, stdin or a chat
    #[arg(value_name = "PROMPT", trailing_var_arg = true)]
    prompt: Vec<String>,
    /// Set a model option, e.g. -o temperature=0 -o num_predict=32 (repeatable)
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// Send the prompt as it is, without the chat template
    #[arg(long)]
    raw: bool,
    /// A system message for the conversation
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Print timings and token rates to stderr after each answer
    #[arg(long)]
    verbose: bool,
    /// Do not wrap words on a terminal
    #[arg(long)]
    nowordwrap: bool,
    /// Allow plain http when the model must be pulled
    #[arg(long)]
    insecure: bool,
    /// Lock the model's weights in memory, never paged out (as HEARTH_MLOCK=1)
    #[arg(long)]
    mlock: bool,
    /// Answer in JSON: `json` for any JSON object, or a file holding a JSON Schema
    #[arg(long, value_name = "json|FILE")]
    format: Option<String>,
    /// Let a reasoning model think first (true, false, or a level: low, medium, high)
    #[arg(long, value_name = "true|false|low|medium|high", num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    think: Option<String>,
    /// Do not show what a reasoning model thinks (only its answer)
    #[arg(long)]
    hidethinking: bool,
}

/// `--format`: `json`, or the path of a JSON Schema file (checked before loading).
fn output_format(arg: Option<&str>) -> Result<Option<Format>> {
    let Some(arg) = arg else { return Ok(None) };
    if arg == "json" {
        return Ok(Some(Format::Json));
    }
    let text = std::fs::read_to_string(arg)
        .with_context(|| format!("cannot read the schema file {arg}"))?;
    let schema: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{arg} is not valid JSON"))?;
    Ok(Some(Format::schema(schema).with_context(|| {
        format!("cannot use the schema in {arg}")
    })?))
}

pub fn run(args: RunArgs) -> Result<()> {
    let t_start = Instant::now();
    if args.mlock {
        crate::config::force_mlock();
    }
    // Like Ollama: piped stdin comes first, then the prompt arguments
    // (`cat notes.txt | hearth run m "Summarize:"`); a terminal on stdin means a chat
    // unless there are prompt arguments.
    let mut parts = Vec::new();
    if !std::io::stdin().is_terminal() {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        let text = String::from_utf8(buf).context("stdin is not valid UTF-8")?;
        if !text.is_empty() {
            parts.push(text);
        }
    }
    parts.extend(args.prompt.iter().cloned());
    let interactive = parts.is_empty() && std::io::stdin().is_terminal();
    let prompt = (!interactive).then(|| parts.join(" "));
    let format = output_format(args.format.as_deref())?;
    let source: ModelSource = super::model_ref::resolve(&args.model, true, args.insecure)?;
    let layers = source.layers.clone();
    // Ollama's precedence: defaults, then the model's params layer, then the command line.
    let mut load_opts = LoadOptions::default();
    let mut sampling = SamplerOptions::default();
    apply_params(&mut load_opts, &mut sampling, &layers.params)?;
    apply_options(&mut load_opts, &mut sampling, &args.options)?;
    let system = args.system.clone().or(layers.system.clone());
    if load_opts.num_thread > 0 && !crate::ops::pool::Pool::init_global(load_opts.num_thread) {
        eprintln!("note: num_thread applies when the model is next loaded");
    }
    let mut loaded = {
        // Loading is quick through mmap; a big model on a slow disk gets a spinner.
        let _spinner = Delayed::start("loading model", spinner::DELAY);
        Loaded::open(&source, &load_opts)?
    };
    if loaded.engine.is_encoder() {
        return embed(&mut loaded, &args.model, prompt);
    }
    if let (Some(note), false) = (&loaded.template_notice, args.raw) {
        eprintln!("{note}");
    }
    let think = ThinkSetting::new(
        args.think.as_deref(),
        args.hidethinking,
        &loaded,
        &args.model,
        args.raw,
    )?;
    let Some(prompt) = prompt else {
        return repl::run(
            loaded,
            repl::Settings {
                sampling,
                load: load_opts,
                system,
                history: layers.messages,
                verbose: args.verbose,
                wordwrap: !args.nowordwrap,
                format,
                think,
            },
        );
    };
    if prompt.trim().is_empty() && !args.raw {
        bail!("the prompt is empty");
    }
    let mut messages = Vec::new();
    if let Some(s) = &system {
        messages.push(Message::new("system", s.as_str()));
    }
    messages.extend(layers.messages.iter().cloned());
    messages.push(Message::new("user", prompt.as_str()));
    let (ids, thinking) = if args.raw {
        (loaded.prompt_ids(&messages, Some(prompt.as_str()))?, None)
    } else {
        think.prompt(&loaded, &messages)?
    };
    let wrap = !args.nowordwrap && std::io::stdout().is_terminal();
    let cancel = AtomicBool::new(false);
    let mut session = Session::new(&mut loaded.engine);
    let request = Request {
        ids: &ids,
        sampling: &sampling,
        format: format.as_ref(),
        thinking,
    };
    let (outcome, _) = answer(&mut loaded, &mut session, &request, &cancel, wrap)?;
    if std::io::stdout().is_terminal() {
        println!();
    }
    if args.verbose {
        print_stats(&outcome, loaded.load_duration, t_start.elapsed());
    }
    Ok(())
}

/// An embedding model: the text's embedding as a JSON array on stdout, as Ollama prints it.
fn embed(loaded: &mut Loaded, model: &str, text: Option<String>) -> Result<()> {
    use crate::generate::embed::{finish, input_ids};
    let Some(text) = text else {
        bail!("{model} is an embedding model: give the text to embed as an argument or on stdin");
    };
    let max = loaded.engine.embed_max_tokens();
    let input = input_ids(&loaded.tokenizer, &text, max, true)?;
    if input.truncated > 0 {
        eprintln!(
            "note: the input was cut to the context length of {max} tokens ({} dropped)",
            input.truncated
        );
    }
    let mut out = Vec::new();
    loaded.engine.embed(&[&input.ids], &mut out)?;
    let mut v = out.pop().unwrap_or_default();
    finish(&mut v, None)?;
    println!("{}", serde_json::to_string(&v)?);
    Ok(())
}

/// What to answer: the prompt's ids, the sampling options, the output's format, and
/// whether the answer begins with thinking.
pub struct Request<'a> {
    pub ids: &'a [u32],
    pub sampling: &'a SamplerOptions,
    pub format: Option<&'a Format>,
    pub thinking: Option<Thinking>,
}

/// Streams one answer to stdout; returns the outcome and the text printed.
pub fn answer(
    loaded: &mut Loaded,
    session: &mut Session,
    req: &Request,
    cancel: &AtomicBool,
    wrap: bool,
) -> Result<(Outcome, String)> {
    let constraint = match req.format {
        Some(f) => Some(loaded.grammars.constraint(f)?),
        None => None,
    };
    let stdout = std::io::stdout();
    let mut wrapper = WordWrap::new(stdout.lock(), wrap_width());
    let mut text = String::new();
    // A long prompt on a big model may take a while before the first word.
    let mut waiting = stdout
        .is_terminal()
        .then(|| Delayed::start("", spinner::DELAY));
    let mut thinking = req.thinking.map(ThinkPrinter::new);
    let result = {
        let mut plain = stdout.lock();
        let mut show = |t: &str| -> std::io::Result<()> {
            text.push_str(t);
            if wrap {
                // The terminal may have been resized since the last piece.
                wrapper.set_width(wrap_width());
                wrapper.write_str(t)
            } else {
                plain.write_all(t.as_bytes())?;
                plain.flush()
            }
        };
        let mut on_text = |t: &str| -> std::io::Result<()> {
            if let Some(mut s) = waiting.take() {
                s.stop();
            }
            match &mut thinking {
                Some(p) => p.push(t, &mut std::io::stdout(), &mut show),
                None => show(t),
            }
        };
        let r = session.generate(
            &mut loaded.engine,
            &loaded.tokenizer,
            Turn {
                prompt: req.ids,
                sampling: req.sampling,
                constraint,
            },
            cancel,
            &mut on_text,
        );
        match (r, &mut thinking) {
            (Ok(o), Some(p)) => p
                .finish(&mut std::io::stdout(), &mut show)
                .map(|_| o)
                .map_err(crate::generate::GenerateError::Output),
            (r, _) => r,
        }
    };
    drop(waiting);
    if wrap {
        wrapper.finish()?;
    }
    match result {
        Ok(o) => Ok((o, text)),
        // A closed pipe (`hearth run m x | head -1`) ends the answer quietly.
        Err(crate::generate::GenerateError::Output(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            std::process::exit(0)
        }
        Err(e) => Err(e.into()),
    }
}

/// The column to wrap answers at: one less than the terminal's width, so that a full line
/// never leaves the cursor in the terminal's pending-wrap state.
fn wrap_width() -> usize {
    terminal_size::terminal_size()
        .map_or(80, |(w, _)| w.0 as usize)
        .saturating_sub(1)
}

/// Ollama's `--verbose` block, on stderr.
pub fn print_stats(o: &Outcome, load: Duration, total: Duration) {
    let s = &o.stats;
    let rate = |n: usize, d: Duration| {
        if d.as_secs_f64() > 0.0 {
            n as f64 / d.as_secs_f64()
        } else {
            0.0
        }
    };
    eprintln!("total duration:       {total:?}");
    eprintln!("load duration:        {load:?}");
    eprintln!("prompt eval count:    {} token(s)", s.prompt_eval_count);
    eprintln!("prompt eval duration: {:?}", s.prompt_eval_duration);
    eprintln!(
        "prompt eval rate:     {:.2} tokens/s",
        rate(s.prompt_eval_count, s.prompt_eval_duration)
    );
    eprintln!("eval count:           {} token(s)", s.eval_count);
    eprintln!("eval duration:        {:?}", s.eval_duration);
    eprintln!(
        "eval rate:            {:.2} tokens/s",
        rate(s.eval_count, s.eval_duration)
    );
    if let Some(c) = &o.constraint {
        // The format's matcher: its share of the eval time, per token.
        let per = |d: Duration| d.as_secs_f64() * 1e6 / c.tokens.max(1) as f64;
        eprintln!(
            "format matcher:       {:.1} µs/token ({} of {} token(s) needed the full mask, {:.1} µs/token)",
            per(c.total_time),
            c.masks,
            c.tokens,
            per(c.mask_time)
        );
    }
}
