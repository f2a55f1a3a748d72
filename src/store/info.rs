//! What `hearth show` and the server's `/api/tags`, `/api/show` and `/api/ps` say about a
//! stored model: the details of its config blob, its parameters as Ollama prints them,
//! its Modelfile, its template and its capabilities.

use std::fmt::Write as _;
use std::fs;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::create::ModelLayers;
use super::{io_err, Manifest, Name, Result, Store};
use crate::gguf::GgufFile;
use crate::modelfile::Modelfile;

/// The facts of a config blob (Ollama's ConfigV2) that the API reports.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    pub model_format: String,
    pub model_family: String,
    pub model_families: Option<Vec<String>>,
    /// The parameter count, humanised ("134.52M").
    pub model_type: String,
    /// The quantization ("Q4_K_M").
    pub file_type: String,
}

/// Ollama's `details` object (`/api/tags`, `/api/show`, `/api/ps`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    pub parent_model: String,
    pub format: String,
    pub family: String,
    pub families: Option<Vec<String>>,
    pub parameter_size: String,
    pub quantization_level: String,
}

impl From<ModelConfig> for Details {
    fn from(c: ModelConfig) -> Details {
        let families = match c.model_families {
            Some(f) => Some(f),
            None if !c.model_family.is_empty() => Some(vec![c.model_family.clone()]),
            None => None,
        };
        Details {
            parent_model: String::new(),
            format: if c.model_format.is_empty() {
                "gguf".into()
            } else {
                c.model_format
            },
            family: c.model_family,
            families,
            parameter_size: c.model_type,
            quantization_level: c.file_type,
        }
    }
}

impl Store {
    /// A manifest's config blob; one that is missing or not JSON reads as empty (Ollama
    /// lists such a model without details rather than failing the whole list).
    pub fn config(&self, m: &Manifest) -> ModelConfig {
        m.config
            .digest()
            .ok()
            .and_then(|d| fs::read(self.blob_path(&d)).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The `details` of a model.
    pub fn details(&self, m: &Manifest) -> Details {
        self.config(m).into()
    }

    /// When a model's manifest was last written.
    pub fn modified(&self, n: &Name) -> Result<SystemTime> {
        let p = self.manifest_path(n);
        fs::metadata(&p)
            .and_then(|m| m.modified())
            .map_err(io_err("cannot stat", &p))
    }
}

/// `name   value` lines as Ollama prints parameters (`%-30s %#v`: strings quoted, one
/// line per item of a list), each starting with `indent` and ending with a newline.
pub fn parameter_lines(params: &Map<String, Value>, indent: &str) -> String {
    let mut out = String::new();
    for (k, v) in params {
        let items = match v {
            Value::Array(a) => a.as_slice(),
            v => std::slice::from_ref(v),
        };
        for i in items {
            let _ = writeln!(out, "{indent}{k:<30} {i}");
        }
    }
    out
}

impl ModelLayers {
    /// The Modelfile that recreates the model from the GGUF file `from`.
    pub fn modelfile(&self, from: &str) -> Modelfile {
        Modelfile {
            from: from.to_string(),
            template: self.template.clone(),
            system: self.system.clone(),
            parameters: self.parameter_pairs(),
            license: self.license.clone(),
            messages: self
                .messages
                .iter()
                .map(|m| (m.role.clone(), m.content.clone()))
                .collect(),
            ..Modelfile::default()
        }
    }

    /// The template the model is prompted with: its template layer (Go), else the GGUF
    /// file's own `tokenizer.chat_template` (Jinja).
    pub fn template_text(&self, f: &GgufFile) -> Option<String> {
        self.template.clone().or_else(|| {
            f.get_str("tokenizer.chat_template")
                .ok()
                .flatten()
                .map(str::to_string)
        })
    }
}

/// Ollama's capabilities of a model: `embedding` for an embedding model (its file names a
/// pooling type), else `completion`, plus `tools` when the template mentions tools
/// (`.Tools` in a Go template, `tools` or `tool_call` in a Jinja one).
pub fn capabilities(template: Option<&str>, embedding: bool) -> Vec<&'static str> {
    if embedding {
        return vec!["embedding"];
    }
    let mut caps = vec!["completion"];
    if template.is_some_and(|t| t.to_ascii_lowercase().contains("tools") || t.contains("tool_call"))
    {
        caps.push("tools");
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_like_ollama() {
        let p = json!({"stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0.7});
        let Value::Object(p) = p else { unreachable!() };
        assert_eq!(
            parameter_lines(&p, ""),
            "stop                           \"<|im_start|>\"\n\
             stop                           \"<|im_end|>\"\n\
             temperature                    0.7\n"
        );
    }

    #[test]
    fn details_from_config() {
        let c: ModelConfig = serde_json::from_value(json!({
            "model_format": "gguf", "model_family": "llama", "model_type": "134.52M",
            "file_type": "Q4_1", "architecture": "amd64"
        }))
        .unwrap();
        let d = Details::from(c);
        assert_eq!(d.families, Some(vec!["llama".to_string()]));
        assert_eq!(d.parameter_size, "134.52M");
        assert_eq!(Details::from(ModelConfig::default()).format, "gguf");
    }

    #[test]
    fn tools_capability() {
        assert_eq!(capabilities(None, false), ["completion"]);
        assert_eq!(capabilities(Some("{{ .Tools }}"), true), ["embedding"]);
        assert_eq!(
            capabilities(Some("{{ if .Tools }}x{{ end }}"), false),
            ["completion", "tools"]
        );
        assert_eq!(capabilities(Some("{{ .Prompt }}"), false), ["completion"]);
    }
}
