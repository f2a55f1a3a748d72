//! Chat templates: turn a conversation into the one prompt string a model was trained on.
//!
//! A [`ChatTemplate`] is either a Jinja template (a GGUF's `tokenizer.chat_template`, rendered
//! like Hugging Face and llama.cpp do; the private `jinja` module) or one of the [`Builtin`] formats
//! (ChatML, Gemma turns) that llama.cpp falls back to for files without a template.
//! [`ChatTemplate::from_gguf`] makes that choice for a model file.

mod builtin;
pub mod gotmpl;
mod jinja;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gguf::{GgufError, GgufFile};

pub use builtin::Builtin;

/// One turn of a conversation, as the templates see it (`message['role']`, `message['content']`,
/// and for tool use `message['tool_calls']`, `message['name']`, `message['tool_call_id']`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` (or `tool`, ... for templates that know them).
    pub role: String,
    pub content: String,
    /// The calls an assistant turn made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On a `tool` turn: the function whose result this is.
    #[serde(default, rename = "name", skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// On a `tool` turn: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// An assistant turn's thinking (Jinja templates read `reasoning_content`, Go
    /// templates `.Thinking`).
    #[serde(
        default,
        rename = "reasoning_content",
        skip_serializing_if = "String::is_empty"
    )]
    pub thinking: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            ..Message::default()
        }
    }
}

/// A function call made by the model, as templates see it: OpenAI's shape
/// (`{"id", "type": "function", "function": {"name", "arguments"}}`) with the arguments
/// as a JSON object, which is what chat templates (`tool_call.arguments | tojson`) expect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// A JSON object.
    pub arguments: serde_json::Value,
}

impl Serialize for ToolCall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        })
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolCall {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ToolCall, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let f = v.get("function").unwrap_or(&v);
        Ok(ToolCall {
            id: v.get("id").and_then(|x| x.as_str()).unwrap_or("").into(),
            name: f.get("name").and_then(|x| x.as_str()).unwrap_or("").into(),
            arguments: f.get("arguments").cloned().unwrap_or_default(),
        })
    }
}

/// Why a template could not be built or rendered.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The template source does not parse.
    #[error("invalid chat template: {0}")]
    Syntax(String),
    /// The template failed while rendering (type error, unknown filter, ...).
    #[error("chat template failed: {0}")]
    Render(String),
    /// The template called `raise_exception(message)`.
    #[error("chat template raised an exception: {0}")]
    Raised(String),
    /// Rendering hit a resource bound (instruction budget, output size, recursion).
    #[error("chat template exceeded its limits: {0}")]
    Limit(String),
    /// `builtin` was given a name it does not know.
    #[error("unknown built-in chat template '{0}' (known: chatml, gemma)")]
    UnknownBuiltin(String),
    /// The GGUF metadata could not be read.
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// A chat template ready to render conversations.
#[derive(Debug)]
pub struct ChatTemplate {
    kind: Kind,
    /// When set, a rendered prompt that starts with this text loses it: the tokenizer adds BOS
    /// itself (llama.cpp does the same, so a template's `{{ bos_token }}` does not double it).
    strip_bos: Option<String>,
}

#[derive(Debug)]
enum Kind {
    Builtin(Builtin),
    Jinja(Box<jinja::JinjaTemplate>),
    /// An Ollama (Go text/template) template, from a model's template layer.
    Go(Box<gotmpl::GoTemplate>),
}

impl ChatTemplate {
    /// A built-in format by name: `chatml` or `gemma`.
    pub fn builtin(name: &str) -> Result<ChatTemplate, TemplateError> {
        let b =
            Builtin::from_name(name).ok_or_else(|| TemplateError::UnknownBuiltin(name.into()))?;
        Ok(ChatTemplate {
            kind: Kind::Builtin(b),
            strip_bos: None,
        })
    }

    /// A Jinja template with the texts of the model's BOS and EOS tokens (its `bos_token` and
    /// `eos_token` variables). Fails on a syntax error.
    pub fn jinja(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, TemplateError> {
        Ok(ChatTemplate {
            kind: Kind::Jinja(Box::new(jinja::JinjaTemplate::new(
                source, bos_token, eos_token,
            )?)),
            strip_bos: None,
        })
    }

    /// An Ollama Go template (a model's `TEMPLATE`), rendered like Ollama's chat endpoint.
    pub fn go(source: &str) -> Result<ChatTemplate, TemplateError> {
        let t =
            gotmpl::GoTemplate::parse(source).map_err(|e| TemplateError::Syntax(e.to_string()))?;
        Ok(ChatTemplate {
            kind: Kind::Go(Box::new(t)),
            strip_bos: None,
        })
    }

    /// Replaces the template by an Ollama Go template, keeping the model's BOS handling.
    pub fn set_go(&mut self, source: &str) -> Result<(), TemplateError> {
        let t = ChatTemplate::go(source)?;
        self.kind = t.kind;
        Ok(())
    }

    /// The template a model file asks for, like llama.cpp chooses it: `tokenizer.chat_template`
    /// when present; else a built-in by `general.architecture` (Gemma turns for gemma*), with a
    /// notice; else ChatML, with a warning. The second value is that notice or warning, for stderr.
    pub fn from_gguf(f: &GgufFile) -> Result<(ChatTemplate, Option<String>), TemplateError> {
        let add_bos = f.get_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
        let bos = token_text(f, "tokenizer.ggml.bos_token_id")?;
        let eos = token_text(f, "tokenizer.ggml.eos_token_id")?;
        let strip_bos = if add_bos {
            bos.clone().filter(|b| !b.is_empty())
        } else {
            None
        };

        if let Some(src) = f.get_str("tokenizer.chat_template")? {
            let mut t = ChatTemplate::jinja(
                src,
                bos.as_deref().unwrap_or(""),
                eos.as_deref().unwrap_or(""),
            )?;
            t.strip_bos = strip_bos;
            return Ok((t, None));
        }
        let arch = f.architecture()?.unwrap_or("");
        let (builtin, note) = match Builtin::for_architecture(arch) {
            Some(b) => (
                b,
                format!(
                    "note: the model has no chat template; using the built-in '{}' template for architecture '{arch}'",
                    b.name()
                ),
            ),
            None => (
                Builtin::ChatMl,
                format!(
                    "warning: the model has no chat template and architecture '{arch}' has no built-in one; falling back to ChatML, which may not be what the model expects"
                ),
            ),
        };
        Ok((
            ChatTemplate {
                kind: Kind::Builtin(builtin),
                strip_bos,
            },
            Some(note),
        ))
    }

    /// `jinja`, or the built-in's name (`chatml`, `gemma`).
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Builtin(b) => b.name(),
            Kind::Jinja(_) => "jinja",
            Kind::Go(_) => "go",
        }
    }

    /// The source text, for a Jinja or Go template.
    pub fn source(&self) -> Option<&str> {
        match &self.kind {
            Kind::Builtin(_) => None,
            Kind::Jinja(j) => Some(j.source()),
            Kind::Go(g) => Some(g.source()),
        }
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends with the opening of the
    /// assistant's turn, ready for generation.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        self.render_with_tools(messages, &[], add_generation_prompt)
    }

    /// Whether the template shows the model a list of tools (Jinja `tools`, Go `.Tools`):
    /// without that a model cannot be offered tools.
    pub fn supports_tools(&self) -> bool {
        match &self.kind {
            Kind::Builtin(_) => false,
            Kind::Jinja(j) => j.source().contains("tools"),
            Kind::Go(g) => g.source().contains(".Tools"),
        }
    }

    /// [`render`](Self::render) with the tools the model may call (OpenAI's shape:
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`).
    pub fn render_with_tools(
        &self,
        messages: &[Message],
        tools: &[serde_json::Value],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        self.render_for(messages, tools, None, add_generation_prompt)
    }

    /// [`render_with_tools`](Self::render_with_tools) with the request's `think`, when
    /// set: whether the model should think, and the level (`""` for none). Jinja
    /// templates see `enable_thinking` and `reasoning_effort`, Go templates `.Think`,
    /// `.ThinkLevel` and `.IsThinkSet`.
    pub fn render_for(
        &self,
        messages: &[Message],
        tools: &[serde_json::Value],
        think: Option<(bool, &str)>,
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let out = match &self.kind {
            Kind::Builtin(b) => b.render(messages, add_generation_prompt),
            Kind::Jinja(j) => j.render(messages, tools, think, add_generation_prompt)?,
            Kind::Go(g) => gotmpl::render_chat(g, messages, tools, think, add_generation_prompt)
                .map_err(|e| match e {
                    gotmpl::GoTemplateError::Limit(m) => TemplateError::Limit(m),
                    e => TemplateError::Render(e.to_string()),
                })?,
        };
        match &self.strip_bos {
            Some(bos) if out.starts_with(bos.as_str()) => Ok(out[bos.len()..].to_string()),
            _ => Ok(out),
        }
    }
}

/// The vocabulary text of the token whose id is stored under `id_key`, if both exist.
fn token_text(f: &GgufFile, id_key: &str) -> Result<Option<String>, TemplateError> {
    let Some(id) = f.get_u32(id_key)? else {
        return Ok(None);
    };
    let Some(tokens) = f.get_str_array("tokenizer.ggml.tokens")? else {
        return Ok(None);
    };
    Ok(tokens
        .iter()
        .nth(id as usize)
        .map(|b| String::from_utf8_lossy(b).into_owned()))
}
