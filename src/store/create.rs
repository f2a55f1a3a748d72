//! Creating a model in the store from a Modelfile (`hearth create`) or `/api/create`,
//! and reading a stored model's small layers back ([`ModelLayers`]).
//!
//! Layers are written with Ollama's media types, in Ollama's order: the model (GGUF) layer,
//! then `template`, `system`, `license`…, `params`, `messages`; then a ConfigV2-like config
//! blob and the manifest. `FROM` an existing model reuses its layers: a new `TEMPLATE`/`SYSTEM`/
//! `LICENSE`/`MESSAGE` replaces the old layer(s), parameters are merged (new values win).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

use super::manifest::{self, Layer, Manifest};
use super::{Digest, Name, Store, StoreError};
use crate::gguf::GgufFile;
use crate::modelfile::{Modelfile, ModelfileError};
use crate::template::Message;

/// Why a model could not be created.
#[derive(Debug, Error)]
pub enum CreateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Modelfile(#[from] ModelfileError),
    #[error(transparent)]
    Name(#[from] super::NameError),
    #[error("{0}")]
    From(String),
    #[error("invalid GGUF {path}: {reason}")]
    Gguf { path: PathBuf, reason: String },
    #[error("invalid {what} layer {digest}: {reason}")]
    BadLayer {
        what: &'static str,
        digest: String,
        reason: String,
    },
}

pub type Result<T, E = CreateError> = std::result::Result<T, E>;

/// Where a model's weights come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A GGUF file on disk.
    Gguf(PathBuf),
    /// A model already in the store.
    Model(Name),
    /// A GGUF file already in the blob store (uploaded through `/api/blobs`): it becomes
    /// the model layer as it is, without a second copy.
    Blob(Digest),
}

/// What to create: the typed content of a Modelfile.
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub template: Option<String>,
    pub system: Option<String>,
    /// Typed options ([`crate::modelfile::format_params`]).
    pub parameters: Map<String, Value>,
    pub messages: Vec<Message>,
    pub license: Vec<String>,
}

impl CreateRequest {
    /// The request a parsed Modelfile describes; the second value lists the deprecated
    /// parameters that were dropped (Ollama warns about them).
    pub fn from_modelfile(mf: &Modelfile) -> Result<(CreateRequest, Vec<String>)> {
        let (parameters, deprecated) = mf.typed_parameters()?;
        Ok((
            CreateRequest {
                template: mf.template.clone(),
                system: mf.system.clone(),
                parameters,
                messages: mf
                    .messages
                    .iter()
                    .map(|(r, c)| Message::new(r.as_str(), c.as_str()))
                    .collect(),
                license: mf.license.clone(),
            },
            deprecated,
        ))
    }
}

/// Resolves a Modelfile's `FROM` like Ollama: an existing path (relative to `base_dir`, `~`
/// expanded) is a GGUF file or a directory holding exactly one `.gguf`; anything else is a
/// model name.
pub fn resolve_from(from: &str, base_dir: &Path) -> Result<Source> {
    let expanded = match from.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| PathBuf::from(from)),
        None => PathBuf::from(from),
    };
    let path = if expanded.is_absolute() {
        expanded
    } else {
        base_dir.join(expanded)
    };
    if path.is_file() {
        return Ok(Source::Gguf(path));
    }
    if path.is_dir() {
        let rd = fs::read_dir(&path).map_err(|e| {
            CreateError::From(format!("cannot read directory {}: {e}", path.display()))
        })?;
        let mut ggufs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
            })
            .collect();
        ggufs.sort();
        return match ggufs.len() {
            1 => Ok(Source::Gguf(ggufs.remove(0))),
            0 => Err(CreateError::From(format!(
                "no .gguf file in directory {}",
                path.display()
            ))),
            n => Err(CreateError::From(format!(
                "{n} .gguf files in directory {}; name one in FROM",
                path.display()
            ))),
        };
    }
    let looks_like_path = from.starts_with('.')
        || from.starts_with('/')
        || from.starts_with('~')
        || from.to_ascii_lowercase().ends_with(".gguf");
    match Name::parse(from) {
        Ok(n) => Ok(Source::Model(n)),
        Err(_) if looks_like_path => Err(CreateError::From(format!(
            "FROM {from}: no such file or directory ({})",
            path.display()
        ))),
        Err(e) => Err(CreateError::From(format!("FROM {from}: {e}"))),
    }
}

/// The small layers of a stored model, read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelLayers {
    pub template: Option<String>,
    pub system: Option<String>,
    pub params: Map<String, Value>,
    pub messages: Vec<Message>,
    pub license: Vec<String>,
}

impl ModelLayers {
    /// Reads the template, system, params, messages and license layers of a manifest.
    pub fn read(store: &Store, m: &Manifest) -> Result<ModelLayers> {
        let text = |l: &Layer| -> Result<String> {
            let p = store.blob_path(&l.digest()?);
            fs::read_to_string(&p).map_err(|e| super::io_err("cannot read", &p)(e).into())
        };
        let mut out = ModelLayers::default();
        for l in &m.layers {
            match l.media_type.as_str() {
                manifest::MEDIA_TEMPLATE => out.template = Some(text(l)?),
                manifest::MEDIA_SYSTEM => out.system = Some(text(l)?),
                manifest::MEDIA_LICENSE => out.license.push(text(l)?),
                manifest::MEDIA_PARAMS => {
                    out.params =
                        serde_json::from_str(&text(l)?).map_err(|e| CreateError::BadLayer {
                            what: "params",
                            digest: l.digest.clone(),
                            reason: e.to_string(),
                        })?
                }
                manifest::MEDIA_MESSAGES => {
                    out.messages =
                        serde_json::from_str(&text(l)?).map_err(|e| CreateError::BadLayer {
                            what: "messages",
                            digest: l.digest.clone(),
                            reason: e.to_string(),
                        })?
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The params as Modelfile `PARAMETER` pairs (a list gives one pair per item).
    pub fn parameter_pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, v) in &self.params {
            match v {
                Value::Array(items) => {
                    for i in items {
                        out.push((k.clone(), plain(i)));
                    }
                }
                v => out.push((k.clone(), plain(v))),
            }
        }
        out
    }
}

/// A JSON value as Modelfile text: strings bare, the rest as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Ollama's `format.HumanNumber` for parameter counts: 134.52M, 8.0B, 7B, 512K.
pub fn model_type(n: u64) -> String {
    let f = n as f64;
    if n >= 1_000_000_000 {
        let x = f / 1e9;
        if x == x.floor() {
            format!("{x:.0}B")
        } else {
            format!("{x:.1}B")
        }
    } else if n >= 1_000_000 {
        let x = f / 1e6;
        if x == x.floor() {
            format!("{x:.0}M")
        } else {
            format!("{x:.2}M")
        }
    } else if n >= 1_000 {
        format!("{:.0}K", f / 1e3)
    } else {
        n.to_string()
    }
}

/// The ConfigV2 facts of a GGUF file.
fn gguf_config(path: &Path) -> Result<Map<String, Value>> {
    let bad = |reason: String| CreateError::Gguf {
        path: path.to_path_buf(),
        reason,
    };
    let f = GgufFile::open(path).map_err(|e| bad(e.to_string()))?;
    let arch = f
        .architecture()
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no general.architecture".into()))?
        .to_string();
    let params = match f.get_u64("general.parameter_count") {
        Ok(Some(n)) => n,
        _ => f.tensors().iter().map(|t| t.n_elements()).sum(),
    };
    let file_type = match f.get_u32("general.file_type").ok().flatten() {
        Some(ft) => crate::gguf::file_type_name(ft)
            .map_or_else(|| format!("unknown ({ft})"), str::to_string),
        None => String::new(),
    };
    let mut c = Map::new();
    c.insert("model_format".into(), "gguf".into());
    c.insert("model_family".into(), arch.clone().into());
    c.insert("model_families".into(), Value::Array(vec![arch.into()]));
    c.insert("model_type".into(), model_type(params).into());
    c.insert("file_type".into(), file_type.into());
    Ok(c)
}

/// Creates (or replaces) model `name` from `source` plus the request's layers, reporting
/// Ollama's status lines through `status`. Returns the manifest written.
pub fn create(
    store: &Store,
    name: &Name,
    source: &Source,
    req: &CreateRequest,
    status: &mut dyn FnMut(&str),
) -> Result<Manifest> {
    create_reporting(store, name, source, req, status, &mut |_, _| {})
}

/// [`create`], also calling `copying(done, total)` while a GGUF file is hashed and copied
/// into the store: first with `done` 0, last with `done == total`.
pub fn create_reporting(
    store: &Store,
    name: &Name,
    source: &Source,
    req: &CreateRequest,
    status: &mut dyn FnMut(&str),
    copying: &mut dyn FnMut(u64, u64),
) -> Result<Manifest> {
    let guard = store.write_guard()?;
    let mut layers: Vec<Layer> = Vec::new();
    let mut config: Map<String, Value>;
    let mut base = ModelLayers::default();
    match source {
        Source::Gguf(path) => {
            status("parsing GGUF");
            config = gguf_config(path)?;
            let total = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            copying(0, total);
            let (d, size, existed) =
                store.import_file_reporting(path, &mut |n| copying(n, total.max(n)))?;
            copying(size, size);
            status(&layer_status(&d, existed));
            layers.push(layer(manifest::MEDIA_MODEL, &d, size));
        }
        Source::Blob(d) => {
            // Checked under the write guard: GC cannot remove the blob from here on.
            let path = store.blob_path(d);
            let size = fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())
                .ok_or_else(|| StoreError::MissingBlob(d.to_string()))?
                .len();
            status("parsing GGUF");
            config = gguf_config(&path)?;
            status(&layer_status(d, true));
            layers.push(layer(manifest::MEDIA_MODEL, d, size));
        }
        Source::Model(base_name) => {
            let m = store.resolve(base_name)?;
            let cfg_path = store.blob_path(&m.config.digest()?);
            config = fs::read(&cfg_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            base = ModelLayers::read(store, &m)?;
            for l in &m.layers {
                let keep = !matches!(
                    l.media_type.as_str(),
                    manifest::MEDIA_TEMPLATE
                        | manifest::MEDIA_SYSTEM
                        | manifest::MEDIA_LICENSE
                        | manifest::MEDIA_PARAMS
                        | manifest::MEDIA_MESSAGES
                );
                if keep {
                    let d = l.digest()?;
                    if !store.has_blob(&d) {
                        return Err(StoreError::MissingBlob(l.digest.clone()).into());
                    }
                    status(&layer_status(&d, true));
                    layers.push(l.clone());
                }
            }
        }
    }
    let mut text_layer = |media: &str, text: &str, layers: &mut Vec<Layer>| -> Result<()> {
        let d = Digest::of_bytes(text.as_bytes());
        let existed = store.has_blob(&d);
        let (d, size) = store.write_blob_bytes(text.as_bytes())?;
        status(&layer_status(&d, existed));
        layers.push(layer(media, &d, size));
        Ok(())
    };
    if let Some(t) = req.template.as_ref().or(base.template.as_ref()) {
        text_layer(manifest::MEDIA_TEMPLATE, t, &mut layers)?;
    }
    if let Some(s) = req.system.as_ref().or(base.system.as_ref()) {
        text_layer(manifest::MEDIA_SYSTEM, s, &mut layers)?;
    }
    let licenses = if req.license.is_empty() {
        &base.license
    } else {
        &req.license
    };
    for l in licenses {
        text_layer(manifest::MEDIA_LICENSE, l, &mut layers)?;
    }
    let mut params = base.params.clone();
    for (k, v) in &req.parameters {
        params.insert(k.clone(), v.clone());
    }
    if !params.is_empty() {
        let json = serde_json::to_string(&params).expect("JSON values serialize");
        text_layer(manifest::MEDIA_PARAMS, &json, &mut layers)?;
    }
    let messages = if req.messages.is_empty() {
        &base.messages
    } else {
        &req.messages
    };
    if !messages.is_empty() {
        let json = serde_json::to_string(messages).expect("messages serialize");
        text_layer(manifest::MEDIA_MESSAGES, &json, &mut layers)?;
    }

    config.insert("architecture".into(), "amd64".into());
    config.insert("os".into(), "linux".into());
    let config_json = serde_json::to_vec(&config).expect("JSON values serialize");
    let (cd, csize) = store.write_blob_bytes(&config_json)?;
    let m = Manifest::new(layer(manifest::MEDIA_CONFIG, &cd, csize), layers);
    status("writing manifest");
    let replaced = store.manifest_path(name).is_file();
    store.write_manifest(name, &serde_json::to_vec(&m).expect("manifest serializes"))?;
    drop(guard);
    if replaced {
        // Like Ollama, drop the layers only the replaced manifest used.
        let _ = store.gc();
    }
    status("success");
    Ok(m)
}

fn layer(media_type: &str, d: &Digest, size: u64) -> Layer {
    Layer {
        media_type: media_type.into(),
        digest: d.to_string(),
        size,
        from: None,
    }
}

fn layer_status(d: &Digest, existed: bool) -> String {
    if existed {
        format!("using existing layer {d}")
    } else {
        format!("creating new layer {d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_type_like_ollama() {
        assert_eq!(model_type(134_515_008), "134.52M");
        assert_eq!(model_type(8_030_261_248), "8.0B");
        assert_eq!(model_type(7_000_000_000), "7B");
        assert_eq!(model_type(512_300), "512K");
        assert_eq!(model_type(999), "999");
    }
}
