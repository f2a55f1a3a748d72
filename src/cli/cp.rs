//! `hearth cp SRC DST`: give a model another name (the blobs are shared).

use anyhow::Result;
use clap::Args;

use crate::store::{Name, Store, StoreError};

#[derive(Debug, Args)]
pub struct CpArgs {
    /// The model to copy
    #[arg(value_name = "SRC")]
    src: String,
    /// Its new name
    #[arg(value_name = "DST")]
    dst: String,
}

pub fn run(args: CpArgs) -> Result<()> {
    let src = Name::parse(&args.src)?;
    let dst = Name::parse(&args.dst)?;
    match Store::open().copy(&src, &dst) {
        Err(StoreError::NotFound(_)) => return Err(super::model_ref::not_found(&args.src)),
        r => r?,
    }
    println!("copied '{}' to '{}'", args.src, args.dst);
    Ok(())
}
