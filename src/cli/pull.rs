//! `hearth pull NAME`: download a model from its registry into the store.

use anyhow::Result;
use clap::Args;

use crate::registry::{progress, Client, Options};
use crate::store::{Name, Store};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The model name, e.g. llama3.2:1b or 127.0.0.1:5000/ns/model:tag
    #[arg(value_name = "NAME")]
    name: String,
    /// Allow plain http to the registry
    #[arg(long)]
    insecure: bool,
}

pub fn run(args: PullArgs) -> Result<()> {
    let name = Name::parse(&args.name)?;
    let opts = Options {
        insecure: args.insecure,
        ..Options::default()
    };
    Client::new(Store::open(), opts, progress::for_stderr()).pull(&name)?;
    Ok(())
}
