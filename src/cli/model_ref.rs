//! MODEL arguments: a path to a GGUF file (when it exists on disk or ends in `.gguf`),
//! or a model name looked up in the store (pulled first where Ollama would).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::generate::ModelSource;
use crate::registry::{progress, Client, Options};
use crate::store::{Name, Store, StoreError};

/// Whether a MODEL argument means a file rather than a store name.
pub fn is_path(arg: &str) -> bool {
    Path::new(arg).exists() || arg.to_ascii_lowercase().ends_with(".gguf")
}

/// The GGUF file a MODEL argument denotes and, for a store model, its small layers
/// (template, system, params, messages, license).
pub fn resolve(arg: &str, pull: bool, insecure: bool) -> Result<ModelSource> {
    let path = gguf_path(arg, pull, insecure)?;
    if is_path(arg) {
        return Ok(ModelSource::file(&path));
    }
    let store = Store::open();
    let name = Name::parse(arg)?;
    ModelSource::from_store(&store, &name).with_context(|| format!("cannot use model '{arg}'"))
}

/// The GGUF file a MODEL argument denotes; a missing store model is pulled first
/// when `pull` is set.
pub fn gguf_path(arg: &str, pull: bool, insecure: bool) -> Result<PathBuf> {
    if is_path(arg) {
        return Ok(PathBuf::from(arg));
    }
    let name = Name::parse(arg)?;
    let store = Store::open();
    match store.model_path(&name) {
        Err(StoreError::NotFound(_)) if pull => {
            let client = Client::new(
                store.clone(),
                Options {
                    insecure,
                    ..Options::default()
                },
                progress::for_stderr(),
            );
            client.pull(&name)?;
            Ok(store.model_path(&name)?)
        }
        Err(StoreError::NotFound(_)) => Err(not_found(arg)),
        r => r.with_context(|| format!("cannot use model '{arg}'")),
    }
}

/// The error of a model name that is not in the store, with the command that gets it.
pub fn not_found(arg: &str) -> anyhow::Error {
    anyhow!("model \"{arg}\" not found, try: hearth pull {arg}")
}

/// The error of a model name that is not in the store, for commands where pulling it
/// makes no sense (rm, push).
pub fn not_in_store(arg: &str) -> anyhow::Error {
    anyhow!("model \"{arg}\" not found, see: hearth list")
}
