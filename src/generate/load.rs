//! Loading a model the way Ollama does: resolve what the client named (a GGUF path, or a
//! store name with its layers), apply the option precedence (defaults, then the model's
//! `params` layer, then the command line or request), and open engine, tokenizer and
//! template together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::engine::{Engine, EngineOptions};
use crate::model::Model;
use crate::sampler::SamplerOptions;
use crate::store::create::ModelLayers;
use crate::store::{Name, Store};
use crate::template::{ChatTemplate, Message};
use crate::tokenizer::Tokenizer;

/// Options that configure loading rather than sampling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Context length (0: the default).
    pub num_ctx: usize,
    /// Worker threads (0: the default).
    pub num_thread: usize,
}

/// An option that has a bad value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

/// Sets one option by name (load options first, then the sampler's).
pub fn set_option(
    load: &mut LoadOptions,
    s: &mut SamplerOptions,
    k: &str,
    v: &str,
) -> Result<(), OptionError> {
    let int = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| OptionError(format!("invalid int value '{v}' for parameter '{k}'")))
    };
    match k {
        "num_ctx" => load.num_ctx = int(v)?,
        "num_thread" => load.num_thread = int(v)?,
        _ => s.set(k, v).map_err(OptionError)?,
    }
    Ok(())
}

/// Applies `KEY=VALUE` options (the command line's `-o`).
pub fn apply_options(
    load: &mut LoadOptions,
    sampling: &mut SamplerOptions,
    pairs: &[String],
) -> Result<(), OptionError> {
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| {
            OptionError(format!(
                "option '{p}' is not KEY=VALUE, e.g. -o temperature=0"
            ))
        })?;
        set_option(load, sampling, k.trim(), v)?;
    }
    Ok(())
}

/// The values of one JSON option as text (an array gives several, for `stop`).
fn option_texts(v: &Value) -> Vec<String> {
    let items = match v {
        Value::Array(a) => a.clone(),
        v => vec![v.clone()],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(t) => t,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// Applies a model's params layer (typed JSON options) like Ollama: over the defaults,
/// under the command line's options. Parameters hearth has no use for (`num_batch`,
/// `use_mmap`, `num_gpu`…) are ignored.
pub fn apply_params(
    load: &mut LoadOptions,
    s: &mut SamplerOptions,
    params: &Map<String, Value>,
) -> Result<(), OptionError> {
    for (k, v) in params {
        for text in option_texts(v) {
            match set_option(load, s, k, &text) {
                Ok(()) => {}
                Err(_) if crate::modelfile::parameter_kind(k).is_some() => {}
                Err(e) => {
                    return Err(OptionError(format!(
                        "invalid parameter '{k}' in the model's params: {e}"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// The options hearth uses from a request's `options` object.
const USED: &[&str] = &[
    "num_ctx",
    "num_thread",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "num_predict",
    "stop",
];

/// Applies a request's `options` over the model's: the options hearth uses must have a
/// valid value of the right JSON type (a number, or a string or strings for `stop`);
/// every other key is ignored, as Ollama ignores options it has no use for. A request's
/// `stop` replaces the model's stop list.
pub fn apply_request_options(
    load: &mut LoadOptions,
    s: &mut SamplerOptions,
    options: &Map<String, Value>,
) -> Result<(), OptionError> {
    for (k, v) in options {
        if !USED.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        let bad = || OptionError(format!("invalid value {v} for option '{k}'"));
        if k == "stop" {
            let ok = match v {
                Value::String(_) => true,
                Value::Array(a) => a.iter().all(Value::is_string),
                _ => false,
            };
            if !ok {
                return Err(bad());
            }
            s.stop.clear();
        } else if !v.is_number() {
            return Err(bad());
        }
        for text in option_texts(v) {
            if k == "stop" && text.is_empty() {
                continue;
            }
            set_option(load, s, k, &text).map_err(|e| OptionError(e.0))?;
        }
    }
    Ok(())
}

/// A model as a client names it: its GGUF file and, for a store model, its layers.
#[derive(Clone, Debug)]
pub struct ModelSource {
    /// The name as given (a store name, or the path).
    pub name: String,
    pub path: PathBuf,
    /// The manifest's digest (sha256 hex), for a store model.
    pub digest: Option<String>,
    pub layers: ModelLayers,
}

impl ModelSource {
    /// A GGUF file used directly (no layers).
    pub fn file(path: &Path) -> ModelSource {
        ModelSource {
            name: path.display().to_string(),
            path: path.to_path_buf(),
            digest: None,
            layers: ModelLayers::default(),
        }
    }

    /// A model in the store.
    pub fn from_store(store: &Store, name: &Name) -> anyhow::Result<ModelSource> {
        let m = store.resolve(name)?;
        let path = store.model_path(name)?;
        let layers = ModelLayers::read(store, &m)?;
        let digest = crate::store::Digest::of_bytes(&store.manifest_bytes(name)?);
        Ok(ModelSource {
            name: name.to_string(),
            path,
            digest: Some(digest.hex().to_string()),
            layers,
        })
    }

    /// Defaults under the model's params layer.
    pub fn defaults(&self) -> Result<(LoadOptions, SamplerOptions), OptionError> {
        let mut load = LoadOptions::default();
        let mut sampling = SamplerOptions::default();
        apply_params(&mut load, &mut sampling, &self.layers.params)?;
        Ok((load, sampling))
    }
}

/// Maps a model's weights and reads its configuration (cheap: no weight is read).
pub fn open_model(src: &ModelSource) -> anyhow::Result<Model> {
    use anyhow::Context;
    Model::open(&src.path).with_context(|| format!("cannot load {}", src.path.display()))
}

/// A model ready to chat: engine, tokenizer and template (the tokenizer and template are
/// shared, so that prompts can be rendered and tokenized away from the engine's thread).
pub struct Loaded {
    pub engine: Engine,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Arc<ChatTemplate>,
    /// Said once when the template is a fallback (the GGUF has none).
    pub template_notice: Option<String>,
    pub load_duration: Duration,
    /// The vocabulary prepared for structured output (built on first use).
    pub grammars: Arc<crate::constrain::Grammars>,
}

impl Loaded {
    /// Opens the model; a template layer (Go) wins over the GGUF's own template, as in
    /// Ollama. `opts.num_ctx` sizes the engine's default sequence.
    pub fn open(src: &ModelSource, opts: &LoadOptions) -> anyhow::Result<Loaded> {
        let t0 = Instant::now();
        let model = open_model(src)?;
        Loaded::from_model(src, model, opts, t0)
    }

    /// Finishes loading a model already opened with [`open_model`] (the scheduler opens
    /// it first to estimate its memory); `t0` is when loading began.
    pub fn from_model(
        src: &ModelSource,
        model: Model,
        opts: &LoadOptions,
        t0: Instant,
    ) -> anyhow::Result<Loaded> {
        use anyhow::Context;
        let path = &src.path;
        let tokenizer = Tokenizer::from_gguf(model.file())
            .with_context(|| format!("cannot build the tokenizer of {}", path.display()))?;
        let (mut template, mut template_notice) = ChatTemplate::from_gguf(model.file())
            .with_context(|| format!("cannot read the chat template of {}", path.display()))?;
        if let Some(go) = &src.layers.template {
            template
                .set_go(go)
                .context("cannot use the model's template layer")?;
            template_notice = None;
        }
        if crate::config::mlock() {
            model
                .file()
                .lock_memory()
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("cannot load {}", path.display()))?;
        }
        let engine = Engine::new(
            model,
            EngineOptions {
                num_ctx: opts.num_ctx,
                ..EngineOptions::default()
            },
        );
        let tokenizer = Arc::new(tokenizer);
        let grammars = Arc::new(crate::constrain::Grammars::new(
            Arc::clone(&tokenizer),
            engine.n_vocab(),
        ));
        Ok(Loaded {
            grammars,
            engine,
            tokenizer,
            template: Arc::new(template),
            template_notice,
            load_duration: t0.elapsed(),
        })
    }

    /// The token ids of a conversation rendered with the template (or of raw text).
    pub fn prompt_ids(&self, messages: &[Message], raw: Option<&str>) -> anyhow::Result<Vec<u32>> {
        prompt_ids(&self.tokenizer, &self.template, messages, raw)
    }

    /// [`prompt_ids`](Self::prompt_ids) with `think` (whether to think, and the level)
    /// passed to the template; also whether the prompt leaves the model inside a thinking
    /// block.
    pub fn thinking_prompt_ids(
        &self,
        messages: &[Message],
        think: Option<(bool, &str)>,
    ) -> anyhow::Result<(Vec<u32>, bool)> {
        let text = self.template.render_for(messages, &[], think, true)?;
        let inside = super::thinking::prompt_opens_thinking(&text);
        Ok((self.tokenizer.encode(&text, true, true), inside))
    }
}

/// The token ids of a conversation rendered with `template` (or of raw text), with the
/// special tokens the tokenizer adds (BOS) and special-token text parsed.
pub fn prompt_ids(
    tok: &Tokenizer,
    template: &ChatTemplate,
    messages: &[Message],
    raw: Option<&str>,
) -> anyhow::Result<Vec<u32>> {
    let text = match raw {
        Some(t) => t.to_string(),
        None => template.render(messages, true)?,
    };
    Ok(tok.encode(&text, true, true))
}
