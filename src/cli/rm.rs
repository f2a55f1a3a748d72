//! `hearth rm NAME…`: delete models (their manifests, then the blobs nothing uses).

use anyhow::Result;
use clap::Args;

use crate::store::{Name, Store, StoreError};

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The models to delete
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

pub fn run(args: RmArgs) -> Result<()> {
    let store = Store::open();
    for n in &args.names {
        let name = Name::parse(n)?;
        match store.remove(&name) {
            Err(StoreError::NotFound(_)) => return Err(super::model_ref::not_in_store(n)),
            r => r?,
        }
        println!("deleted '{n}'");
    }
    Ok(())
}
