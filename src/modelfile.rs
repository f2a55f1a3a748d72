//! Ollama's Modelfile language: parse it, print it back (`hearth show --modelfile`), and type
//! its `PARAMETER` lines like Ollama's `api.FormatParams`.
//!
//! The syntax follows Ollama's `parser/parser.go` state machine:
//! - Instructions are case-insensitive: `FROM` (required), `PARAMETER name value`, `TEMPLATE`,
//!   `SYSTEM`, `ADAPTER`, `LICENSE` (repeatable), `MESSAGE role text`, `REQUIRES semver`, and the
//!   newer `DRAFT`, `RENDERER`, `PARSER`.
//! - `#` starts a comment only where an instruction could start (so `FROM x # y` has the value
//!   `x # y`).
//! - A value is bare (trimmed), `"…"` or `"""…"""`. There are **no escapes**: Ollama strips the
//!   outer quotes and keeps everything in between byte for byte (backslashes included). A value
//!   runs on over newlines until a line ends where the text read so far is "balanced": it does not
//!   start with a quote, or it starts with `"` and ends with `"`, or starts and ends with `"""`.
//! - Like Go's `strconv.IsPrint` filter, non-printable characters other than space, tab, CR and LF
//!   are dropped (approximated here: control characters, unusual spaces, zero-width and
//!   private-use characters).
//! - A leading BOM is ignored. `MESSAGE` roles are `system`, `user` or `assistant`
//!   (case-sensitive, as in Ollama).
//!
//! Deliberate differences from Ollama: error messages carry the line (and column) of the offending
//! instruction rather than the line after it; CRLF counts as one line break (Go counts two);
//! extra blanks between `PARAMETER`/`MESSAGE` and the name are accepted (Ollama takes an empty
//! name); an instruction without a value gets a specific message.

use serde_json::{Map, Value};
use thiserror::Error;

/// A parsed Modelfile. Instructions that Ollama keeps once hold the last value given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modelfile {
    /// The first `FROM`: a model name or a path.
    pub from: String,
    /// Further `FROM` lines (`ollama show` prints a vision projector this way).
    pub extra_from: Vec<String>,
    /// `PARAMETER name value` lines in file order, values as written (see [`format_params`]).
    pub parameters: Vec<(String, String)>,
    pub template: Option<String>,
    pub system: Option<String>,
    pub adapters: Vec<String>,
    pub draft: Option<String>,
    pub renderer: Option<String>,
    pub parser: Option<String>,
    pub license: Vec<String>,
    /// `MESSAGE role text` lines: (role, content).
    pub messages: Vec<(String, String)>,
    /// `REQUIRES`, normalised without a leading `v`.
    pub requires: Option<String>,
}

/// Why a Modelfile does not parse, or its parameters do not type-check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelfileError {
    #[error("line {line}, column {column}: unknown instruction \"{name}\" (must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\")")]
    UnknownInstruction {
        line: usize,
        column: usize,
        name: String,
    },
    #[error("line {line}: {instruction} needs a value")]
    MissingValue { line: usize, instruction: String },
    #[error("line {line}, column {column}: invalid parameter name \"{name}\" (letters, digits and '_' only, then a blank and the value)")]
    InvalidParameterName {
        line: usize,
        column: usize,
        name: String,
    },
    #[error("line {line}: message role must be one of \"system\", \"user\", or \"assistant\", not \"{role}\"")]
    InvalidMessageRole { line: usize, role: String },
    #[error("line {line}: unterminated quoted value (started here, reached the end of the file)")]
    UnterminatedQuote { line: usize },
    #[error("line {line}: requires must be a valid semver (e.g. 0.14.0), not \"{value}\"")]
    InvalidRequires { line: usize, value: String },
    #[error("no FROM line")]
    MissingFrom,
    #[error("unknown parameter '{0}'")]
    UnknownParameter(String),
    #[error("invalid {kind} value {value:?} for parameter '{name}'")]
    InvalidParameterValue {
        name: String,
        kind: &'static str,
        value: String,
    },
}

/// The kinds of value Ollama's `Options` fields take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Int,
    Float,
    Bool,
    StringList,
}

/// Ollama's option names (json tags of `api.Options` and `api.Runner`) and their types.
pub const KNOWN_PARAMETERS: &[(&str, ParamKind)] = &[
    ("num_ctx", ParamKind::Int),
    ("num_batch", ParamKind::Int),
    ("num_gpu", ParamKind::Int),
    ("main_gpu", ParamKind::Int),
    ("use_mmap", ParamKind::Bool),
    ("num_thread", ParamKind::Int),
    ("draft_num_predict", ParamKind::Int),
    ("num_keep", ParamKind::Int),
    ("seed", ParamKind::Int),
    ("num_predict", ParamKind::Int),
    ("top_k", ParamKind::Int),
    ("top_p", ParamKind::Float),
    ("min_p", ParamKind::Float),
    ("typical_p", ParamKind::Float),
    ("repeat_last_n", ParamKind::Int),
    ("temperature", ParamKind::Float),
    ("repeat_penalty", ParamKind::Float),
    ("presence_penalty", ParamKind::Float),
    ("frequency_penalty", ParamKind::Float),
    ("stop", ParamKind::StringList),
];

/// Parameters Ollama accepts in a Modelfile but drops with a warning.
pub const DEPRECATED_PARAMETERS: &[&str] = &[
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

/// The type of a known parameter, `None` for an unknown one.
pub fn parameter_kind(name: &str) -> Option<ParamKind> {
    KNOWN_PARAMETERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
}

/// Types `PARAMETER` pairs like Ollama's `CreateRequest` + `api.FormatParams`: ints, float32s
/// (printed with float32 precision, so `0.7` stays `0.7`), Go `ParseBool` booleans, `stop`
/// accumulating into a list; later scalar values win. Deprecated names are skipped and returned
/// in the second element (Ollama prints a warning). Unknown names → `unknown parameter 'x'`.
pub fn format_params(
    params: &[(String, String)],
) -> Result<(Map<String, Value>, Vec<String>), ModelfileError> {
    let mut out = Map::new();
    let mut deprecated = Vec::new();
    for (name, raw) in params {
        if DEPRECATED_PARAMETERS.contains(&name.as_str()) {
            deprecated.push(name.clone());
            continue;
        }
        let kind =
            parameter_kind(name).ok_or_else(|| ModelfileError::UnknownParameter(name.clone()))?;
        let bad = |kind: &'static str| ModelfileError::InvalidParameterValue {
            name: name.clone(),
            kind,
            value: raw.clone(),
        };
        let value = match kind {
            ParamKind::Int => Value::from(parse_go_int(raw).ok_or_else(|| bad("int"))?),
            ParamKind::Float => {
                let f = parse_go_float32(raw).ok_or_else(|| bad("float"))?;
                // Shortest float32 text, read back as f64: what Go's json prints for a float32.
                let f64v: f64 = format!("{f}").parse().unwrap_or(f as f64);
                // Go's json prints whole floats without a fraction (`0`, not `0.0`).
                if f64v.fract() == 0.0 && f64v.abs() < 1e15 {
                    out.insert(name.clone(), Value::from(f64v as i64));
                    continue;
                }
                serde_json::Number::from_f64(f64v)
                    .map(Value::Number)
                    .ok_or_else(|| bad("float"))?
            }
            ParamKind::Bool => Value::Bool(parse_go_bool(raw).ok_or_else(|| bad("bool"))?),
            ParamKind::StringList => {
                match out.get_mut(name) {
                    Some(Value::Array(list)) => list.push(Value::String(raw.clone())),
                    _ => {
                        out.insert(name.clone(), Value::Array(vec![Value::String(raw.clone())]));
                    }
                }
                continue;
            }
        };
        out.insert(name.clone(), value);
    }
    Ok((out, deprecated))
}

fn parse_go_int(s: &str) -> Option<i64> {
    // strconv.ParseInt(s, 10, 64): optional sign, decimal digits (underscores only with base 0).
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_go_float32(s: &str) -> Option<f32> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("inf") || lower.starts_with("nan") || lower.starts_with("0x") {
        return None; // not representable in JSON (inf, nan) or not worth supporting (hex)
    }
    let f: f32 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Modelfile {
    /// [`format_params`] over this file's `PARAMETER` lines.
    pub fn typed_parameters(&self) -> Result<(Map<String, Value>, Vec<String>), ModelfileError> {
        format_params(&self.parameters)
    }

    /// The text `hearth show --modelfile` prints (without a model name in the header).
    pub fn render(&self) -> String {
        self.render_named(None)
    }

    /// The `show --modelfile` text. Order as Ollama's `Model.String`: FROM, ADAPTER, DRAFT, extra
    /// FROM, TEMPLATE, SYSTEM, RENDERER, PARSER, PARAMETER, LICENSE, MESSAGE (then REQUIRES).
    /// Each value is printed bare, `"…"` or `"""…"""`, whichever reads back exactly; see
    /// [`is_representable`] for the values no form can carry.
    pub fn render_named(&self, name: Option<&str>) -> String {
        let mut s = String::from("# Modelfile generated by \"hearth show\"\n");
        if let Some(name) = name {
            s.push_str("# To build a new Modelfile based on this, replace FROM with:\n");
            s.push_str(&format!("# FROM {name}\n"));
        }
        s.push('\n');
        let mut line = |head: &str, value: &str, long: bool| {
            s.push_str(head);
            s.push(' ');
            s.push_str(&quote(value, long));
            s.push('\n');
        };
        line("FROM", &self.from, false);
        for a in &self.adapters {
            line("ADAPTER", a, false);
        }
        if let Some(d) = &self.draft {
            line("DRAFT", d, false);
        }
        for f in &self.extra_from {
            line("FROM", f, false);
        }
        if let Some(t) = &self.template {
            line("TEMPLATE", t, true);
        }
        if let Some(t) = &self.system {
            line("SYSTEM", t, true);
        }
        if let Some(t) = &self.renderer {
            line("RENDERER", t, false);
        }
        if let Some(t) = &self.parser {
            line("PARSER", t, false);
        }
        for (k, v) in &self.parameters {
            line(&format!("PARAMETER {k}"), v, false);
        }
        for l in &self.license {
            line("LICENSE", l, true);
        }
        for (role, content) in &self.messages {
            line(&format!("MESSAGE {role}"), content, false);
        }
        if let Some(r) = &self.requires {
            line("REQUIRES", r, false);
        }
        s
    }
}

/// Whether some quoting of `value` reads back as exactly `value`. The format has no escapes, so
/// some values have no form: those with characters the parser drops (controls other than
/// tab/CR/LF, zero-width and similar), and multi-line values where every form closes early,
/// notably any value with a line break preceded (blanks aside) by `"""` — that line end closes
/// both `"…"` and `"""…"""`. [`Modelfile::render`] then falls back to `"""…"""`, which reads
/// back differently (a parse error or a cut value).
pub fn is_representable(value: &str) -> bool {
    candidates(value, true)
        .into_iter()
        .any(|c| reads_back(&c, value))
}

fn candidates(value: &str, long: bool) -> Vec<String> {
    let bare = value.to_string();
    let single = format!("\"{value}\"");
    let triple = format!("\"\"\"{value}\"\"\"");
    if value.is_empty() {
        vec![single, triple]
    } else if long && (value.contains('\n') || value.contains('"')) {
        vec![triple, single, bare]
    } else {
        vec![bare, single, triple]
    }
}

fn reads_back(candidate: &str, value: &str) -> bool {
    let text = format!("{candidate}\n");
    let mut sc = Scanner::new(&text);
    matches!(sc.value(), Ok(v) if v == value) && sc.peek().is_none()
}

fn quote(value: &str, long: bool) -> String {
    let cands = candidates(value, long);
    for c in &cands {
        if reads_back(c, value) {
            return c.clone();
        }
    }
    format!("\"\"\"{value}\"\"\"")
}

const INSTRUCTIONS: &[&str] = &[
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
];

/// Parses a Modelfile. Never panics; every error but `no FROM line` names a line.
pub fn parse(text: &str) -> Result<Modelfile, ModelfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sc = Scanner::new(text);
    let mut mf = Modelfile::default();
    let mut have_from = false;
    loop {
        sc.skip(|c| is_blank(c) || is_newline(c));
        let Some(c) = sc.peek() else { break };
        if c == '#' {
            sc.skip(|c| !is_newline(c));
            continue;
        }
        let (line, column) = (sc.line, sc.column);
        let name = sc.take(|c| c.is_ascii_alphabetic());
        let lower = name.to_ascii_lowercase();
        match sc.peek() {
            Some(c) if is_blank(c) => {}
            Some(c) if is_newline(c) && INSTRUCTIONS.contains(&lower.as_str()) => {
                return Err(ModelfileError::MissingValue {
                    line,
                    instruction: name.to_ascii_uppercase(),
                })
            }
            None if INSTRUCTIONS.contains(&lower.as_str()) => {
                return Err(ModelfileError::MissingValue {
                    line,
                    instruction: name.to_ascii_uppercase(),
                })
            }
            _ => {
                let rest = sc.take(|c| !is_blank(c) && !is_newline(c));
                return Err(ModelfileError::UnknownInstruction {
                    line,
                    column,
                    name: format!("{name}{rest}"),
                });
            }
        }
        if !INSTRUCTIONS.contains(&lower.as_str()) {
            return Err(ModelfileError::UnknownInstruction { line, column, name });
        }
        sc.bump(); // the blank after the instruction
        match lower.as_str() {
            "parameter" => {
                sc.skip(is_blank);
                let column = sc.column;
                let pname = sc.take(|c| c.is_ascii_alphanumeric() || c == '_');
                if pname.is_empty() || !sc.peek().is_some_and(is_blank) {
                    let rest = sc.take(|c| !is_blank(c) && !is_newline(c));
                    return Err(ModelfileError::InvalidParameterName {
                        line: sc.line,
                        column,
                        name: format!("{pname}{rest}"),
                    });
                }
                sc.bump();
                let value = sc.value_at(line)?;
                mf.parameters.push((pname, value));
            }
            "message" => {
                sc.skip(is_blank);
                let role = sc.take(|c| c.is_ascii_alphabetic());
                if !sc.peek().is_some_and(is_blank) {
                    let rest = sc.take(|c| !is_blank(c) && !is_newline(c));
                    return Err(ModelfileError::InvalidMessageRole {
                        line,
                        role: format!("{role}{rest}"),
                    });
                }
                if !matches!(role.as_str(), "system" | "user" | "assistant") {
                    return Err(ModelfileError::InvalidMessageRole { line, role });
                }
                sc.bump();
                let value = sc.value_at(line)?;
                mf.messages.push((role, value));
            }
            other => {
                let value = sc.value_at(line)?;
                match other {
                    "from" if have_from => mf.extra_from.push(value),
                    "from" => {
                        mf.from = value;
                        have_from = true;
                    }
                    "license" => mf.license.push(value),
                    "template" => mf.template = Some(value),
                    "system" => mf.system = Some(value),
                    "adapter" => mf.adapters.push(value),
                    "draft" => mf.draft = Some(value),
                    "renderer" => mf.renderer = Some(value),
                    "parser" => mf.parser = Some(value),
                    _ => {
                        let v = value.strip_prefix('v').unwrap_or(&value);
                        if !is_semver(v) {
                            return Err(ModelfileError::InvalidRequires { line, value });
                        }
                        mf.requires = Some(v.to_string());
                    }
                }
            }
        }
    }
    if !have_from {
        return Err(ModelfileError::MissingFrom);
    }
    Ok(mf)
}

/// `golang.org/x/mod/semver.IsValid` without the `v`: `1`, `1.2`, `1.2.3`, the last optionally
/// with `-prerelease` and `+build`.
fn is_semver(v: &str) -> bool {
    fn num(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    }
    fn idents(s: &str, numeric_rule: bool) -> bool {
        !s.is_empty()
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && (!numeric_rule || !p.bytes().all(|b| b.is_ascii_digit()) || num(p))
            })
    }
    let (core, build) = match v.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| num(p)) {
        return false;
    }
    if (pre.is_some() || build.is_some()) && parts.len() != 3 {
        return false;
    }
    pre.is_none_or(|p| idents(p, true)) && build.is_none_or(|b| idents(b, false))
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Approximates the complement of Go's `strconv.IsPrint` (what Ollama drops from values).
fn is_dropped(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{a0}' | '\u{ad}' | '\u{1680}' | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}'
            | '\u{205f}'..='\u{2064}' | '\u{3000}' | '\u{feff}' | '\u{e000}'..='\u{f8ff}')
}

/// Ollama's `unquote`: strip `"""…"""` or `"…"`; `None` while the quote is still open.
fn unquote(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix("\"\"\"") {
        return (s.len() >= 6 && rest.ends_with("\"\"\"")).then(|| &s[3..s.len() - 3]);
    }
    if s.starts_with('"') {
        return (s.len() >= 2 && s.ends_with('"')).then(|| &s[1..s.len() - 1]);
    }
    Some(s)
}

struct Scanner<'a> {
    rest: std::str::Chars<'a>,
    line: usize,
    column: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            rest: text.chars(),
            line: 1,
            column: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.rest.clone().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        match c {
            '\n' => {
                self.line += 1;
                self.column = 1;
            }
            // CRLF is one line break; a lone CR is one too.
            '\r' if self.peek() != Some('\n') => {
                self.line += 1;
                self.column = 1;
            }
            _ => self.column += 1,
        }
        Some(c)
    }

    fn skip(&mut self, f: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&f) {
            self.bump();
        }
    }

    fn take(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    fn value_at(&mut self, line: usize) -> Result<String, ModelfileError> {
        self.value()
            .map_err(|()| ModelfileError::UnterminatedQuote { line })
    }

    /// A value up to the first line break where it is balanced (see the module docs).
    fn value(&mut self) -> Result<String, ()> {
        let mut buf = String::new();
        loop {
            match self.bump() {
                None => return unquote(buf.trim()).map(str::to_string).ok_or(()),
                Some(c) if is_newline(c) => {
                    if let Some(v) = unquote(buf.trim()) {
                        return Ok(v.to_string());
                    }
                    buf.push(c);
                }
                Some(c) if is_blank(c) => buf.push(c),
                Some(c) if is_dropped(c) => {}
                Some(c) => buf.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Modelfile {
        parse(s).unwrap_or_else(|e| panic!("{e}\n{s}"))
    }

    #[test]
    fn full_file() {
        let m = p(r#"# a comment
FROM llama3.2
  from ./mmproj.gguf
ADAPTER ./lora.gguf
PARAMETER temperature 0.7
PARAMETER stop "<|eot_id|>"
parameter stop <|start_header_id|>
PARAMETER num_ctx   4096
TEMPLATE """{{ if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>{{ end }}{{ .Prompt }}"""
SYSTEM You are "Mario" # not a comment
LICENSE """MIT
text"""
LICENSE second
MESSAGE user Hi there
MESSAGE assistant "  spaced  "
REQUIRES v0.14.0
"#);
        assert_eq!(m.from, "llama3.2");
        assert_eq!(m.extra_from, vec!["./mmproj.gguf"]);
        assert_eq!(m.adapters, vec!["./lora.gguf"]);
        assert_eq!(
            m.parameters,
            vec![
                ("temperature".into(), "0.7".into()),
                ("stop".into(), "<|eot_id|>".into()),
                ("stop".into(), "<|start_header_id|>".into()),
                ("num_ctx".into(), "4096".into()),
            ]
        );
        assert_eq!(
            m.template.as_deref(),
            Some("{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ .Prompt }}")
        );
        assert_eq!(
            m.system.as_deref(),
            Some("You are \"Mario\" # not a comment")
        );
        assert_eq!(m.license, vec!["MIT\ntext", "second"]);
        assert_eq!(
            m.messages,
            vec![
                ("user".into(), "Hi there".into()),
                ("assistant".into(), "  spaced  ".into())
            ]
        );
        assert_eq!(m.requires.as_deref(), Some("0.14.0"));
        let (typed, dep) = m.typed_parameters().unwrap();
        assert!(dep.is_empty());
        assert_eq!(
            Value::Object(typed),
            json!({"temperature": 0.7, "stop": ["<|eot_id|>", "<|start_header_id|>"], "num_ctx": 4096})
        );
    }

    #[test]
    fn quoting_rules_match_ollama() {
        // No escapes: backslashes stay.
        assert_eq!(
            p("FROM x\nSYSTEM \"a\\nb\\\"\"").system.unwrap(),
            "a\\nb\\\""
        );
        // Quoted values keep inner blanks; bare ones are trimmed.
        assert_eq!(
            p("FROM x\nSYSTEM   bare value  \t").system.unwrap(),
            "bare value"
        );
        assert_eq!(p("FROM x\nSYSTEM \"  q  \"").system.unwrap(), "  q  ");
        // A `"` value runs on until a line ends in `"`.
        assert_eq!(p("FROM x\nSYSTEM \"a\nb\"").system.unwrap(), "a\nb");
        assert_eq!(p("FROM x\nSYSTEM \"a\"b\nc\"").system.unwrap(), "a\"b\nc");
        // `"""` inside a `"""` value, mid-line.
        assert_eq!(
            p("FROM x\nSYSTEM \"\"\"a\"\"\"b\"\"\"").system.unwrap(),
            "a\"\"\"b"
        );
        // Ollama's test: empty triple quotes, and quotes galore.
        assert_eq!(p("FROM x\nSYSTEM \"\"\"\"\"\"").system.unwrap(), "");
        assert_eq!(p("FROM x\nSYSTEM \"\"").system.unwrap(), "");
        assert_eq!(
            p("FROM x\nSYSTEM \"\"\"''\"'\"\"'\"\"'\"'''''\"\"'\"\"'\"\"\"")
                .system
                .unwrap(),
            "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'"
        );
        // Tabs and CRLF inside a quoted value are kept; CRLF ends a bare one.
        assert_eq!(
            p("FROM x\r\nSYSTEM \"\"\"a\r\n\tb\"\"\"\r\n")
                .system
                .unwrap(),
            "a\r\n\tb"
        );
        assert_eq!(p("FROM x\r\nSYSTEM a\r\n").system.unwrap(), "a");
        // Control characters are dropped, like Go's strconv.IsPrint filter.
        assert_eq!(p("FROM x\nSYSTEM a\u{1}b\u{200d}c").system.unwrap(), "abc");
        // BOM, comments, blank lines, case-insensitive instructions.
        let m = p("\u{feff}# c\n\n   # indented comment\nfRoM x\nsystem y\n");
        assert_eq!((m.from.as_str(), m.system.as_deref()), ("x", Some("y")));
        // Last TEMPLATE/SYSTEM wins.
        assert_eq!(p("FROM x\nSYSTEM a\nSYSTEM b").system.unwrap(), "b");
        // Empty bare value.
        assert_eq!(p("FROM x\nSYSTEM \nPARAMETER seed 1").system.unwrap(), "");
    }

    #[test]
    fn errors_name_the_line() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert!(e("FROM x\n\nFOO bar").starts_with("line 3, column 1: unknown instruction \"FOO\""));
        assert!(
            e("FROM x\n  FROM2 y").starts_with("line 2, column 3: unknown instruction \"FROM2\"")
        );
        assert_eq!(e("SYSTEM x"), "no FROM line");
        assert_eq!(e(""), "no FROM line");
        assert_eq!(e("# only\n"), "no FROM line");
        assert_eq!(e("FROM x\nSYSTEM\n"), "line 2: SYSTEM needs a value");
        assert_eq!(e("FROM"), "line 1: FROM needs a value");
        assert!(e("FROM x\nMESSAGE badguy hi").starts_with("line 2: message role must be one of"));
        assert!(e("FROM x\nMESSAGE tool hi").contains("\"tool\""));
        assert!(e("FROM x\nMESSAGE User hi").contains("\"User\""));
        assert!(e("FROM x\nMESSAGE system\n").starts_with("line 2: message role"));
        assert!(e("FROM x\nPARAMETER temp-x 1")
            .starts_with("line 2, column 11: invalid parameter name \"temp-x\""));
        assert!(e("FROM x\nPARAMETER temperature\n").contains("invalid parameter name"));
        assert_eq!(
            e("FROM x\nSYSTEM \"\"\"open\nstill open"),
            "line 2: unterminated quoted value (started here, reached the end of the file)"
        );
        assert!(e("FROM x\nSYSTEM \"abc\" def").starts_with("line 2: unterminated"));
        assert!(e("FROM x\nREQUIRES latest").starts_with("line 2: requires must be a valid semver"));
        for ok in ["0.14.0", "v1", "1.2", "1.2.3-rc.1+build.5"] {
            assert!(parse(&format!("FROM x\nREQUIRES {ok}")).is_ok(), "{ok}");
        }
        for bad in ["01.2.3", "1.2.3.4", "1.2-rc", "", "1.2.3-01"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn parameter_typing() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let (m, dep) = format_params(&pairs(&[
            ("seed", "-42"),
            ("top_p", "0.9"),
            ("temperature", "1"),
            ("temperature", "0.5"),
            ("use_mmap", "F"),
            ("mirostat", "2"),
            ("stop", "a"),
            ("stop", "b"),
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"seed": -42, "top_p": 0.9, "temperature": 0.5, "use_mmap": false, "stop": ["a", "b"]})
        );
        assert_eq!(dep, vec!["mirostat"]);
        let err = |k: &str, v: &str| format_params(&pairs(&[(k, v)])).unwrap_err().to_string();
        assert_eq!(err("x", "1"), "unknown parameter 'x'");
        assert_eq!(
            err("num_ctx", "4k"),
            "invalid int value \"4k\" for parameter 'num_ctx'"
        );
        assert_eq!(
            err("num_ctx", "1.0"),
            "invalid int value \"1.0\" for parameter 'num_ctx'"
        );
        assert!(err("temperature", "hot").contains("invalid float"));
        assert!(err("temperature", "NaN").contains("invalid float"));
        assert!(err("use_mmap", "yes").contains("invalid bool"));
    }

    fn sample_values() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "plain",
            "two words",
            " leading",
            "trailing ",
            "\"quoted\"",
            "\"",
            "\"\"",
            "a\"b",
            "multi\nline",
            "multi\nline \"with\" quotes",
            "ends with quote\"\nnext",
            "has \"\"\" inside",
            "\"\"\"",
            "line1\n\"\"\"mid\"\"\" line",
            "# hash",
            "tab\there",
            "\ttab first",
            "back\\slash \\n",
            "unicode ✓ ünï",
            "{{ .Prompt }}\n",
            "\n\nlead newlines",
            "cr\r\nlf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Deterministic pseudo-random strings over the awkward characters.
        let alphabet = ['a', ' ', '"', '\n', '\t', '#', 'x', '\\', '\r'];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let len = (state % 12) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.push(s);
        }
        v
    }

    #[test]
    fn round_trip() {
        let mut representable = 0;
        let values = sample_values();
        for v in &values {
            if !is_representable(v) {
                continue;
            }
            representable += 1;
            let m = Modelfile {
                from: if v.is_empty() { "m".into() } else { v.clone() },
                extra_from: vec![v.clone()],
                parameters: vec![("stop".into(), v.clone()), ("num_ctx".into(), "8".into())],
                template: Some(v.clone()),
                system: Some(v.clone()),
                adapters: vec![v.clone()],
                draft: Some(v.clone()),
                renderer: Some(v.clone()),
                parser: Some(v.clone()),
                license: vec![v.clone(), "MIT".into()],
                messages: vec![
                    ("user".into(), v.clone()),
                    ("assistant".into(), "ok".into()),
                ],
                requires: Some("0.1.2".into()),
            };
            let text = m.render_named(Some("library/m:latest"));
            assert_eq!(parse(&text).as_ref(), Ok(&m), "value {v:?}\n{text}");
        }
        // Everything without a line break closed by `"""`, and `\r` kept aside, has a form.
        assert!(
            representable * 10 > values.len() * 7,
            "{representable}/{}",
            values.len()
        );
        for v in [
            "",
            "a\"b",
            "multi\nline \"with\" quotes",
            "has \"\"\" inside",
            "\"\"\"",
        ] {
            assert!(is_representable(v), "{v:?}");
        }
    }

    #[test]
    fn render_forms() {
        let m = Modelfile {
            from: "/blobs/sha256-abc".into(),
            template: Some("{{ .Prompt }}".into()),
            system: Some("Be \"nice\".\nAlways.".into()),
            parameters: vec![
                ("stop".into(), "<|im_end|>".into()),
                ("temperature".into(), "0.7".into()),
            ],
            license: vec!["Apache 2.0\n...".into()],
            messages: vec![("user".into(), " hi ".into())],
            ..Default::default()
        };
        assert_eq!(
            m.render_named(Some("qwen2.5:latest")),
            "# Modelfile generated by \"hearth show\"\n\
             # To build a new Modelfile based on this, replace FROM with:\n\
             # FROM qwen2.5:latest\n\n\
             FROM /blobs/sha256-abc\n\
             TEMPLATE {{ .Prompt }}\n\
             SYSTEM \"\"\"Be \"nice\".\nAlways.\"\"\"\n\
             PARAMETER stop <|im_end|>\n\
             PARAMETER temperature 0.7\n\
             LICENSE \"\"\"Apache 2.0\n...\"\"\"\n\
             MESSAGE user \" hi \"\n"
        );
    }

    #[test]
    fn unrepresentable_values_fall_back_to_triple_quotes() {
        // A line ending in `"""` closes both quote styles: no form carries it.
        let v = "first\"\"\"\nsecond";
        assert!(!is_representable(v));
        let m = Modelfile {
            from: "x".into(),
            system: Some(v.into()),
            ..Default::default()
        };
        let text = m.render();
        assert!(text.contains("SYSTEM \"\"\"first\"\"\"\nsecond\"\"\"\n"));
        // Read back, the value is cut at the first closing line and the rest is garbage.
        assert!(parse(&text).is_err());
        // Dropped characters cannot survive either.
        assert!(!is_representable("bell\u{7}"));
    }

    #[test]
    fn never_panics_on_junk() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let pieces = [
            "FROM ",
            "PARAMETER ",
            "MESSAGE ",
            "user ",
            "\"",
            "\"\"\"",
            "\n",
            "\r",
            " ",
            "\t",
            "#",
            "x",
            "stop",
            "\u{feff}",
            "é",
            "\u{0}",
            "SYSTEM",
            "REQUIRES v1",
        ];
        for _ in 0..20000 {
            let mut s = String::new();
            for _ in 0..(state % 16) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let _ = parse(&s);
            if let Ok(m) = parse(&s) {
                let _ = m.render();
                let _ = m.typed_parameters();
            }
        }
    }

    #[test]
    fn whole_floats_print_like_go() {
        let p = |v: &str| vec![("temperature".to_string(), v.to_string())];
        let (m, _) = format_params(&p("0")).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"temperature":0}"#);
        let (m, _) = format_params(&p("1.0")).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"temperature":1}"#);
        let (m, _) = format_params(&p("0.7")).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"temperature":0.7}"#);
    }
}
