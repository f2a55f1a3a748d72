//! The command line: clap definitions and dispatch, one file per subcommand.
//!
//! Exit codes: 0 success, 1 an error (printed to stderr as one `Error: …` chain),
//! 2 a usage error (clap's own).

mod bench;
mod client;
mod cp;
mod create;
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
mod stop;
mod tokenize;
mod wrap;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

/// Parses the process arguments, runs the command, and maps errors to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
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
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
