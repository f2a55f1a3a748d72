//! `hearth stop MODEL`: unloads a model from the running server, as `ollama stop` does
//! (`/api/generate` with `keep_alive: 0`; a model that is not loaded is left alone).

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::client::Client;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The model to unload
    #[arg(value_name = "MODEL")]
    model: String,
}

pub fn run(args: StopArgs) -> Result<()> {
    Client::from_env().post(
        "/api/generate",
        &json!({"model": args.model, "keep_alive": 0}),
    )?;
    Ok(())
}
