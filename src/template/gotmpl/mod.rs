//! Go `text/template`, as Ollama uses it for the template layers of registry models.
//!
//! An own lexer, parser and evaluator (no crate: `gtmpl` lacks `break`/`continue`, `:=`/`=`
//! scoping as Go has it, `missingkey=zero`, and bounded execution). Covered: text with
//! `{{- -}}` trimming, comments, `if`/`else if`/`else`/`end`, `range` (lists, maps in key order,
//! integers; `$i, $v :=`; `else`; `break`/`continue`), `with`/`else with`, variables (`$`,
//! `$x :=`, `$x =`), fields and chains (`.A.B`, `$x.A`, `(pipe).A`), pipelines `a | f b`,
//! string/raw-string/number/bool/nil literals, and the functions `eq ne lt le gt ge and or not
//! len index slice print printf println` plus Ollama's `json currentDate yesterdayDate
//! toTypeScriptType`. Not covered: `define`/`template`/`block`, `call`, `html`/`js`/`urlquery`,
//! char literals, complex numbers, method calls.
//!
//! On top sits Ollama's prompt assembly ([`GoTemplate::render`], from `template/template.go`):
//! the messages mode (`.Messages` in the template), the legacy `.System/.Prompt/.Response` mode
//! (one execution per turn, the last cut after `.Response`), the suffix mode, and the rule that a
//! template mentioning neither `.Messages` nor `.Response` gets `{{ .Response }}` appended.

mod chat;
mod exec;
mod funcs;
mod parse;
mod prompt;
mod value;

pub use chat::{collate, render_chat, tool_value, ChatMessage, TemplateData, ToolCall};
pub use prompt::GoTemplate;
pub use value::{Field, Struct, Value};

use thiserror::Error;

/// Output cap (bytes) for one render.
pub const MAX_OUTPUT: usize = 16 << 20;
/// Evaluation steps (nodes, commands, loop iterations) per render.
pub const MAX_STEPS: u64 = 10_000_000;
/// Nesting depth of control structures and parentheses.
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GoTemplateError {
    #[error("template: line {line}: {msg}")]
    Parse { line: usize, msg: String },
    #[error("template: executing: {0}")]
    Exec(String),
    #[error("template: exceeded its limits: {0}")]
    Limit(String),
}

type Result<T> = std::result::Result<T, GoTemplateError>;

fn exec<T>(msg: impl Into<String>) -> Result<T> {
    Err(GoTemplateError::Exec(msg.into()))
}
