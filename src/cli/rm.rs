//! `hearth rm NAME…`: delete models (their manifests, then the blobs nothing uses).

use anyhow::Result;
use clap::Args;

use crate::store::{Name, Store};

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
        store.remove(&name)?;
        println!("deleted '{n}'");
    }
    Ok(())
}
