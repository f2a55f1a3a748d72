//! `hearth push NAME`: upload a model from the store to its registry.

use anyhow::Result;
use clap::Args;

use crate::registry::{progress, Client, Options};
use crate::store::{Name, Store};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The model name, e.g. 127.0.0.1:5000/ns/model:tag
    #[arg(value_name = "NAME")]
    name: String,
    /// Allow plain http to the registry
    #[arg(long)]
    insecure: bool,
}

pub fn run(args: PushArgs) -> Result<()> {
    let name = Name::parse(&args.name)?;
    let opts = Options {
        insecure: args.insecure,
        ..Options::default()
    };
    Client::new(Store::open(), opts, progress::for_stderr()).push(&name)?;
    Ok(())
}
