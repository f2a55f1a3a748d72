//! `hearth serve`: the Ollama- and OpenAI-compatible server on `HEARTH_HOST`
//! (else `OLLAMA_HOST`, default 127.0.0.1:11434), until Ctrl-C or SIGTERM.

use anyhow::{Context, Result};
use clap::Args;

use crate::server::{serve, AppState};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Lock each loaded model's weights in memory, never paged out (as HEARTH_MLOCK=1)
    #[arg(long)]
    mlock: bool,
}

/// The variables `hearth serve` reads: its `--help` and its man page list these.
pub const ENVIRONMENT: &[&str] = &[
    "HEARTH_HOST",
    "HEARTH_ORIGINS",
    "HEARTH_API_KEY",
    "HEARTH_API_KEY_FILE",
    "HEARTH_MODELS",
    "HEARTH_NUM_PARALLEL",
    "HEARTH_MAX_QUEUE",
    "HEARTH_MAX_LOADED_MODELS",
    "HEARTH_KEEP_ALIVE",
    "HEARTH_CONTEXT_LENGTH",
    "HEARTH_MAX_MEMORY",
    "HEARTH_MLOCK",
    "HEARTH_NUM_THREADS",
    "HEARTH_KERNEL",
];

/// The "Environment:" paragraph of `serve --help`.
pub fn environment() -> String {
    crate::config::environment_help(ENVIRONMENT)
}

pub fn run(args: ServeArgs) -> Result<()> {
    if args.mlock {
        crate::config::force_mlock();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hearth-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        // A key file that cannot be read stops the server before it listens.
        crate::config::api_keys().map_err(anyhow::Error::msg)?;
        let addr = crate::config::host();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let config = crate::scheduler::Config::from_env();
        eprintln!(
            "hearth: listening on {local} (version {}; {} parallel sequences per model, queue of {}, {} threads, models in {})",
            env!("CARGO_PKG_VERSION"),
            config.num_parallel,
            config.max_queue,
            crate::ops::pool::Pool::global().threads(),
            crate::config::models_dir().display()
        );
        let state = AppState::new(config);
        serve(listener, shutdown_signal(), state)
            .await
            .context("the server failed")
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("hearth: shutting down");
}
