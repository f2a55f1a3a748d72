//! The command line: clap definitions and dispatch, one file per subcommand.
//!
//! Exit codes: 0 success, 1 an error (printed to stderr as one `Error: …` line: the
//! cause, then the fix where there is one), 2 a usage error (clap's own). `RUST_LOG=debug`
//! prints an error's whole chain, one cause a line (and a backtrace with RUST_BACKTRACE=1).

mod bench;
mod client;
mod completion;
mod cp;
mod create;
pub mod docs;
mod list;
mod model_ref;
mod ps;
mod pull;
mod push;
mod repl;
mod rm;
mod run;
mod serve;
mod show;
mod spinner;
mod stop;
mod think;
mod tokenize;
mod wrap;

pub use completion::script as completion_script;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Pull, run and serve local LLMs on an ordinary CPU.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure prompt processing and generation speed
    Bench(bench::BenchArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    Completion(completion::CompletionArgs),
    /// Copy a model under another name
    Cp(cp::CpArgs),
    /// Create a model from a Modelfile
    Create(create::CreateArgs),
    /// List the models in the store
    #[command(visible_alias = "ls")]
    List(list::ListArgs),
    /// List the models the running server has loaded
    Ps(ps::PsArgs),
    /// Pull a model from a registry
    Pull(pull::PullArgs),
    /// Push a model to a registry
    Push(push::PushArgs),
    /// Remove models
    Rm(rm::RmArgs),
    /// Run a model: answer a prompt, or chat
    Run(run::RunArgs),
    /// Start the server (Ollama and OpenAI APIs)
    #[command(visible_alias = "start", after_help = serve::environment())]
    Serve(serve::ServeArgs),
    /// Show information about a model
    Show(show::ShowArgs),
    /// Unload a model from the running server
    Stop(stop::StopArgs),
    /// Print the token ids of a text (or, with --decode, the text of token ids)
    Tokenize(tokenize::TokenizeArgs),
}

/// The hidden command the shell completions run for model names (`hearth
/// __complete-models`). Not a clap subcommand: clap_complete would list even a hidden
/// one in the zsh script's `help` completions.
const COMPLETE_MODELS: &str = "__complete-models";

/// `hearth 0.1.0 (kernels: avx2)`: the version and the kernel set this CPU gets (or
/// `HEARTH_KERNEL` forces). Set at run time only, so the generated man pages, which
/// show the bare version, do not depend on the machine that made them.
fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{} (kernels: {})",
            env!("CARGO_PKG_VERSION"),
            crate::quant::simd::kernel().name()
        )
    })
}

/// Whether `RUST_LOG` asks for details (debug or trace, for any target).
fn details_wanted() -> bool {
    std::env::var("RUST_LOG").is_ok_and(|v| v.contains("debug") || v.contains("trace"))
}

/// Parses the process arguments, runs the command, and maps errors to an exit code.
pub fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == COMPLETE_MODELS)
    {
        let _ = completion::complete_models();
        return ExitCode::SUCCESS;
    }
    let matches = Cli::command().version(version()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Completion(args) => completion::run(args),
        Command::Cp(args) => cp::run(args),
        Command::Create(args) => create::run(args),
        Command::List(args) => list::run(args),
        Command::Ps(args) => ps::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Push(args) => push::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Show(args) => show::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Tokenize(args) => tokenize::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if details_wanted() => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            // `{:#}`: the whole chain on one line, "outer: inner: root cause".
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
