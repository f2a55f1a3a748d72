//! `hearth push NAME`: upload a model from the store to its registry.

use anyhow::Result;
use clap::Args;

use crate::registry::{progress, Client, Options};
use crate::store::{Name, Store, StoreError};

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
    let store = Store::open();
    // Checked before the push starts, so a missing model is the only line printed.
    if let Err(StoreError::NotFound(_)) = store.manifest_bytes(&name) {
        return Err(super::model_ref::not_in_store(&args.name));
    }
    Client::new(store, opts, progress::for_stderr()).push(&name)?;
    Ok(())
}
