//! `hearth create NAME [-f Modelfile]`: import a GGUF file (or build on a stored model) with
//! the layers a Modelfile describes. The work is [`crate::store::create`]; this prints
//! Ollama's status lines on stderr, with a bar while the GGUF file is hashed and copied
//! (plain lines when stderr is not a terminal or `NO_COLOR` is set: see
//! [`crate::registry::progress`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::modelfile::{self, Modelfile};
use crate::registry::progress;
use crate::store::create::{create_reporting, resolve_from, CreateRequest};
use crate::store::{Name, Store};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The name of the new model
    #[arg(value_name = "MODEL")]
    model: String,
    /// The Modelfile (default ./Modelfile; without one, FROM the current directory)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
}

pub fn run(args: CreateArgs) -> Result<()> {
    let name = Name::parse(&args.model)?;
    let default = PathBuf::from("Modelfile");
    let (mf, path) = match &args.file {
        Some(p) => (read_modelfile(p)?, p.clone()),
        None if default.is_file() => (read_modelfile(&default)?, default),
        // Like Ollama: no Modelfile means `FROM .`.
        None => (
            Modelfile {
                from: ".".into(),
                ..Modelfile::default()
            },
            default,
        ),
    };
    let base_dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (req, deprecated) = CreateRequest::from_modelfile(&mf)
        .with_context(|| format!("invalid Modelfile {}", path.display()))?;
    for d in deprecated {
        eprintln!("warning: parameter {d} is deprecated and ignored");
    }
    let source = resolve_from(&mf.from, &base_dir)?;
    let store = Store::open();
    let progress = progress::for_stderr();
    let mut started = false;
    create_reporting(
        &store,
        &name,
        &source,
        &req,
        &mut |s| progress.status(s),
        &mut |done, total| {
            if !started {
                progress.start("copy", "copying file", total, done);
                started = true;
            }
            progress.update("copy", done);
            if done >= total {
                progress.finish("copy");
            }
        },
    )?;
    Ok(())
}

fn read_modelfile(p: &Path) -> Result<Modelfile> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    modelfile::parse(&text).with_context(|| format!("invalid Modelfile {}", p.display()))
}
