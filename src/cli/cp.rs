//! `hearth cp SRC DST`: give a model another name (the blobs are shared).

use anyhow::Result;
use clap::Args;

use crate::store::{Name, Store};

#[derive(Debug, Args)]
pub struct CpArgs {
    #[arg(value_name = "SRC")]
    src: String,
    #[arg(value_name = "DST")]
    dst: String,
}

pub fn run(args: CpArgs) -> Result<()> {
    let src = Name::parse(&args.src)?;
    let dst = Name::parse(&args.dst)?;
    Store::open().copy(&src, &dst)?;
    println!("copied '{}' to '{}'", args.src, args.dst);
    Ok(())
}
