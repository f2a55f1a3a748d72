//! `hearth bench MODEL`: prompt-processing and generation throughput, measured like
//! llama-bench (pp: one batch of N prompt tokens; tg: N single-token decode steps from
//! an empty context; tg@bB: B sequences decoded together, aggregate tokens/s).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use crate::engine::{Engine, EngineOptions, Logits, SeqId, StepInput};
use crate::model::Model;
use crate::ops::pool::Pool;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model (a name in the store or a path to a .gguf file)
    #[arg(value_name = "MODEL")]
    model: String,
    /// Prompt tokens per pp test (0 to skip)
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Generated tokens per tg test (0 to skip)
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Repetitions of each test
    #[arg(short = 'r', long = "repetitions", default_value_t = 3)]
    reps: usize,
    /// Threads (default: HEARTH_NUM_THREADS or one per CPU)
    #[arg(short = 't', long = "threads")]
    threads: Option<usize>,
    /// Sequences decoded together, comma-separated (e.g. 1,2,4,8)
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch: Vec<usize>,
    /// Print one JSON array instead of a table
    #[arg(long)]
    json: bool,
    /// Lock the model's weights in memory first (as HEARTH_MLOCK=1)
    #[arg(long)]
    mlock: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    model: String,
    test: String,
    threads: usize,
    batch: usize,
    tokens_per_s_median: f64,
    tokens_per_s_min: f64,
    tokens_per_s_max: f64,
    runs: usize,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.reps == 0 {
        bail!("--repetitions must be at least 1");
    }
    if args.batch.contains(&0) {
        bail!("--batch sizes must be at least 1");
    }
    if let Some(t) = args.threads {
        if !Pool::init_global(t) {
            bail!("the thread pool was already started");
        }
    }
    let threads = Pool::global().threads();
    let path = super::model_ref::gguf_path(&args.model, false, false)?;
    let model = Model::open(&path).with_context(|| format!("cannot load {}", path.display()))?;
    if args.mlock || crate::config::mlock() {
        model
            .file()
            .lock_memory()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot load {}", path.display()))?;
    }
    let name = match super::model_ref::is_path(&args.model) {
        true => path
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned()),
        false => args.model.clone(),
    };
    let max_batch = args.batch.iter().copied().max().unwrap_or(1);
    let num_ctx = (args.n_prompt.max(args.n_gen) + 1).max(16);
    let mut engine = Engine::new(
        model,
        EngineOptions {
            num_ctx,
            batch: args.n_prompt.clamp(1, 512).max(max_batch),
        },
    );
    let n_vocab = engine.n_vocab() as u32;
    // Arbitrary ordinary tokens (ids past the special tokens at the start).
    let token = |i: usize| (1000 + (i as u32 * 7919) % (n_vocab - 1000).max(1)).min(n_vocab - 1);

    let mut rows = Vec::new();
    let mut measure =
        |test: String, batch: usize, f: &mut dyn FnMut(&mut Engine) -> Result<f64>| -> Result<()> {
            f(&mut engine)?; // warm-up: pages of the map, caches, threads
            let mut rates = Vec::with_capacity(args.reps);
            for _ in 0..args.reps {
                rates.push(f(&mut engine)?);
            }
            rates.sort_by(f64::total_cmp);
            let row = Row {
                model: name.clone(),
                test,
                threads,
                batch,
                tokens_per_s_median: rates[rates.len() / 2],
                tokens_per_s_min: rates[0],
                tokens_per_s_max: rates[rates.len() - 1],
                runs: args.reps,
            };
            if !args.json {
                eprintln!(
                    "{:<12} {:>8.2} tokens/s (min {:.2}, max {:.2})",
                    row.test, row.tokens_per_s_median, row.tokens_per_s_min, row.tokens_per_s_max
                );
            }
            rows.push(row);
            Ok(())
        };

    if args.n_prompt > 0 {
        let prompt: Vec<u32> = (0..args.n_prompt).map(token).collect();
        measure(format!("pp{}", args.n_prompt), 1, &mut |e| {
            let seq = e.add_sequence();
            let t = Instant::now();
            e.step(&[StepInput {
                seq,
                tokens: &prompt,
                logits: Logits::Last,
            }])?;
            let rate = prompt.len() as f64 / t.elapsed().as_secs_f64();
            e.remove_sequence(seq);
            Ok(rate)
        })?;
    }
    if args.n_gen > 0 {
        for &b in &args.batch {
            let test = if b == 1 {
                format!("tg{}", args.n_gen)
            } else {
                format!("tg{}@b{b}", args.n_gen)
            };
            let n_gen = args.n_gen;
            measure(test, b, &mut |e| {
                let seqs: Vec<SeqId> = (0..b).map(|_| e.add_sequence()).collect();
                let t = Instant::now();
                for i in 0..n_gen {
                    let toks: Vec<[u32; 1]> = (0..b).map(|s| [token(i + s)]).collect();
                    let inputs: Vec<StepInput<'_>> = seqs
                        .iter()
                        .zip(&toks)
                        .map(|(&seq, tok)| StepInput {
                            seq,
                            tokens: tok,
                            logits: Logits::Last,
                        })
                        .collect();
                    e.step(&inputs)?;
                }
                let rate = (n_gen * b) as f64 / t.elapsed().as_secs_f64();
                for s in seqs {
                    e.remove_sequence(s);
                }
                Ok(rate)
            })?;
        }
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("| model | threads | test | t/s (median) | min | max |");
        println!("|---|---:|---|---:|---:|---:|");
        for r in &rows {
            println!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                r.model,
                r.threads,
                r.test,
                r.tokens_per_s_median,
                r.tokens_per_s_min,
                r.tokens_per_s_max
            );
        }
    }
    Ok(())
}
