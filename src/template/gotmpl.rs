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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use thiserror::Error;

use super::Message;

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

// ---------------------------------------------------------------------------------------------
// Values

/// A value the evaluator walks: Go's dynamic values, reduced to what Ollama's data holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// A slice; `true` when it prints as JSON (a Go type with a JSON `String` method).
    List(Arc<Vec<Value>>, bool),
    /// A map (ranged and printed in key order); `true` when it prints as JSON.
    Map(Arc<BTreeMap<String, Value>>, bool),
    Struct(Arc<Struct>),
}

/// A Go struct: fields in declaration order, with their JSON names.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    pub fields: Vec<Field>,
    /// Printing it gives its JSON (Ollama's template types have such `String` methods).
    pub json_display: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    /// JSON key; `None` uses the Go name.
    pub json: Option<&'static str>,
    pub omitempty: bool,
    pub value: Value,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l, _) => !l.is_empty(),
            Value::Map(m, _) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(..) => "slice",
            Value::Map(..) => "map",
            Value::Struct(_) => "struct",
        }
    }

    /// Converts JSON (tool-call arguments, free-form values) to Go's `map[string]any` world.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => {
                Value::List(Arc::new(a.iter().map(Value::from_json).collect()), false)
            }
            serde_json::Value::Object(o) => Value::Map(
                Arc::new(
                    o.iter()
                        .map(|(k, v)| (k.clone(), Value::from_json(v)))
                        .collect(),
                ),
                false,
            ),
        }
    }

    /// Go's `json.Marshal` (with its HTML escaping of `<`, `>`, `&`).
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&fmt_float(*f)),
            Value::Str(s) => json_string(s, out),
            Value::List(l, _) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Map(m, _) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            Value::Struct(st) => {
                out.push('{');
                let mut first = true;
                for f in &st.fields {
                    if f.omitempty && !f.value.truth() && !matches!(f.value, Value::Struct(_)) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    json_string(f.json.unwrap_or(f.name), out);
                    out.push(':');
                    f.value.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// What `{{ . }}` prints: Go's `fmt` `%v`, or JSON for types with a JSON `String` method.
    fn display(&self, out: &mut String, top: bool) {
        match self {
            Value::Nil if top => out.push_str("<no value>"),
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&fmt_float(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(_, true) | Value::Map(_, true) => self.write_json(out),
            Value::Struct(st) if st.json_display => self.write_json(out),
            Value::List(l, false) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.display(out, false);
                }
                out.push(']');
            }
            Value::Map(m, false) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.display(out, false);
                }
                out.push(']');
            }
            Value::Struct(st) => {
                out.push('{');
                for (i, f) in st.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    f.value.display(out, false);
                }
                out.push('}');
            }
        }
    }

    fn field(&self, name: &str) -> Result<Value> {
        match self {
            Value::Map(m, _) => Ok(m.get(name).cloned().unwrap_or(Value::Nil)),
            Value::Struct(st) => match st.fields.iter().find(|f| f.name == name) {
                Some(f) => Ok(f.value.clone()),
                None => exec(format!("can't evaluate field {name} in type struct")),
            },
            Value::Nil => exec(format!("nil pointer evaluating interface {{}}.{name}")),
            other => exec(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }
}

fn fmt_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    /// `if`, `with` and `range`; an `else if` is an `If` alone in `else_list`.
    Branch {
        kind: BranchKind,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BranchKind {
    If,
    With,
    Range,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    /// `=` (assign to existing variables) rather than `:=`.
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root)
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    /// `(pipe).A.B`
    Paren(Box<Pipe>, Vec<String>),
}

// ---------------------------------------------------------------------------------------------
// Lexer: template text → text and action items

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    /// `.A.B` (without the leading dot)
    Field(String),
    /// `.A` right after `)`
    Chain(String),
    /// `$x.A.B`
    Var(String),
    Ident(String),
    Str(String),
    Num(Value),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

enum Item {
    Text(String),
    Action { toks: Vec<Tok>, line: usize },
}

fn perr<T>(line: usize, msg: impl Into<String>) -> Result<T> {
    Err(GoTemplateError::Parse {
        line,
        msg: msg.into(),
    })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (text, after) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let mut text = text;
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(after) = after else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            break;
        };
        line += rest[..rest.len() - after.len()].matches('\n').count();
        let mut body = after;
        // `{{- ` trims the text before.
        if let Some(b) = body.strip_prefix('-') {
            if b.starts_with(is_space) {
                text = text.trim_end_matches(is_space);
                body = b;
            }
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let start_line = line;
        let (toks, consumed, trim) = lex_action(body, start_line)?;
        line += body[..consumed].matches('\n').count();
        trim_next = trim;
        rest = &body[consumed..];
        if let Some(toks) = toks {
            items.push(Item::Action {
                toks,
                line: start_line,
            });
        }
    }
    Ok(items)
}

/// Lexes one action body (after `{{` and any `-`), returning its tokens (`None` for a comment),
/// the bytes consumed including `}}`, and whether it ends with ` -}}`.
fn lex_action(body: &str, line: usize) -> Result<(Option<Vec<Tok>>, usize, bool)> {
    let close = |s: &str, at: usize| -> Option<(usize, bool)> {
        let r = &s[at..];
        if r.starts_with("}}") {
            return Some((at + 2, false));
        }
        if r.starts_with(" -}}")
            || r.starts_with("\t-}}")
            || r.starts_with("\n-}}")
            || r.starts_with("\r-}}")
        {
            return Some((at + 4, true));
        }
        None
    };
    let trimmed = body.trim_start_matches(is_space);
    if let Some(c) = trimmed.strip_prefix("/*") {
        let Some(end) = c.find("*/") else {
            return perr(line, "unclosed comment");
        };
        let at = body.len() - c.len() + end + 2;
        // Go allows only `*/}}` or `*/ -}}` right after the comment.
        if let Some((n, t)) = close(body, at) {
            return Ok((None, n, t));
        }
        return perr(line, "comment ends before closing delimiter");
    }
    let b = body.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    loop {
        if let Some((n, t)) = close(body, i) {
            return Ok((Some(toks), n, t));
        }
        let Some(c) = body[i..].chars().next() else {
            return perr(line, "unclosed action");
        };
        let ident_end = |from: usize| {
            from + body[from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(body.len() - from)
        };
        // `.A.B.C` from just after the first dot: idents joined by adjacent dots.
        let path_end = |from: usize| {
            let mut end = ident_end(from);
            while end > from && b.get(end) == Some(&b'.') && ident_end(end + 1) > end + 1 {
                end = ident_end(end + 1);
            }
            end
        };
        match c {
            c if is_space(c) => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1
            }
            '.' if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let (tok, n) = lex_number(&body[i..], line)?;
                toks.push(tok);
                i += n;
            }
            '.' => {
                let end = path_end(i + 1);
                if end == i + 1 {
                    toks.push(Tok::Dot);
                } else if toks.last() == Some(&Tok::RParen) && !body[..i].ends_with(is_space) {
                    toks.push(Tok::Chain(body[i + 1..end].to_string()));
                } else {
                    toks.push(Tok::Field(body[i + 1..end].to_string()));
                }
                i = end;
            }
            '$' => {
                let mut end = ident_end(i + 1);
                while b.get(end) == Some(&b'.') && ident_end(end + 1) > end + 1 {
                    end = ident_end(end + 1);
                }
                toks.push(Tok::Var(body[i..end].to_string()));
                i = end;
            }
            '"' => {
                let mut s = String::new();
                let mut chars = body[i + 1..].char_indices();
                let mut end = None;
                while let Some((j, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = Some(i + 1 + j + 1);
                            break;
                        }
                        '\n' => return perr(line, "unterminated quoted string"),
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('\\') => s.push('\\'),
                            Some('"') => s.push('"'),
                            Some('\'') => s.push('\''),
                            Some('a') => s.push('\u{7}'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some('v') => s.push('\u{b}'),
                            Some(c @ ('x' | 'u' | 'U')) => {
                                let n = match c {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let hex: String = (0..n)
                                    .filter_map(|_| chars.next().map(|(_, c)| c))
                                    .collect();
                                let ch = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| hex.len() == n)
                                    .and_then(char::from_u32);
                                match ch {
                                    Some(ch) => s.push(ch),
                                    None => return perr(line, "invalid escape in string"),
                                }
                            }
                            _ => return perr(line, "invalid escape in string"),
                        },
                        c => s.push(c),
                    }
                }
                let Some(end) = end else {
                    return perr(line, "unterminated quoted string");
                };
                toks.push(Tok::Str(s));
                i = end;
            }
            '`' => {
                let Some(j) = body[i + 1..].find('`') else {
                    return perr(line, "unterminated raw quoted string");
                };
                toks.push(Tok::Str(body[i + 1..i + 1 + j].to_string()));
                i += j + 2;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && b.get(i + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == b'.')) =>
            {
                let (tok, n) = lex_number(&body[i..], line)?;
                toks.push(tok);
                i += n;
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = ident_end(i);
                toks.push(Tok::Ident(body[i..end].to_string()));
                i = end;
            }
            c => return perr(line, format!("unexpected {c:?} in command")),
        }
    }
}

fn lex_number(s: &str, line: usize) -> Result<(Tok, usize)> {
    let end = s
        .char_indices()
        .skip(1)
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    let text = &s[..end];
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = clean.parse::<i64>() {
        return Ok((Tok::Num(Value::Int(i)), end));
    }
    let hex = clean.trim_start_matches(['-', '+']);
    if let Some(h) = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X")) {
        if let Ok(v) = i64::from_str_radix(h, 16) {
            let v = if clean.starts_with('-') { -v } else { v };
            return Ok((Tok::Num(Value::Int(v)), end));
        }
    }
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() && !clean.contains(['i', 'n', 'I', 'N']) => {
            Ok((Tok::Num(Value::Float(f)), end))
        }
        _ => perr(line, format!("bad number syntax: {text:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Parser: items → nodes

struct Parser {
    items: std::vec::IntoIter<Item>,
    depth: usize,
}

enum Stop {
    Eof,
    End,
    Else(Vec<Tok>, usize),
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, line) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action { toks, line } => (toks, line),
            };
            let kw = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                None => return perr(line, "missing value for command"),
                _ => "",
            };
            match kw {
                "end" => {
                    if toks.len() > 1 {
                        return perr(line, "unexpected tokens after end");
                    }
                    return Ok((nodes, Stop::End));
                }
                "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec(), line))),
                "if" | "with" | "range" => {
                    let kind = match kw {
                        "if" => BranchKind::If,
                        "with" => BranchKind::With,
                        _ => BranchKind::Range,
                    };
                    nodes.push(self.branch(kind, &toks[1..], line)?);
                }
                "break" | "continue" => {
                    if toks.len() > 1 {
                        return perr(line, format!("unexpected tokens after {kw}"));
                    }
                    // Go checks these are inside a range; the evaluator does (see `Flow`).
                    nodes.push(if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" | "template" | "block" => {
                    return perr(line, format!("{{{{{kw}}}}} is not supported"))
                }
                _ => nodes.push(Node::Action(parse_pipe(&toks, line, true)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn branch(&mut self, kind: BranchKind, toks: &[Tok], line: usize) -> Result<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return perr(line, "control structures nested too deeply");
        }
        let pipe = parse_pipe(toks, line, true)?;
        if pipe.cmds.is_empty() {
            return perr(line, "missing value for command");
        }
        let (list, stop) = self.list()?;
        let else_list = match stop {
            Stop::Eof => return perr(line, "unexpected EOF: missing {{end}}"),
            Stop::End => None,
            Stop::Else(rest, eline) if rest.is_empty() => {
                let (l, stop) = self.list()?;
                match stop {
                    Stop::End => Some(l),
                    Stop::Eof => return perr(line, "unexpected EOF: missing {{end}}"),
                    Stop::Else(..) => return perr(eline, "expected end; found else"),
                }
            }
            Stop::Else(rest, eline) => {
                // `else if` / `else with`: a nested branch that shares this `end`.
                let k = match rest.first() {
                    Some(Tok::Ident(k)) if k == "if" && kind != BranchKind::With => BranchKind::If,
                    Some(Tok::Ident(k)) if k == "with" && kind == BranchKind::With => {
                        BranchKind::With
                    }
                    _ => return perr(eline, "unexpected tokens after else"),
                };
                Some(vec![self.branch(k, &rest[1..], eline)?])
            }
        };
        self.depth -= 1;
        Ok(Node::Branch {
            kind,
            pipe,
            list,
            else_list,
        })
    }
}

fn parse_pipe(toks: &[Tok], line: usize, allow_decl: bool) -> Result<Pipe> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    // `$a :=`, `$a =`, `$a, $b :=`
    if allow_decl {
        if let Some(Tok::Var(v)) = toks.first() {
            match toks.get(1) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = toks[1] == Tok::Assign;
                    decl.push(v.clone());
                    rest = &toks[2..];
                }
                Some(Tok::Comma) => {
                    if let (Some(Tok::Var(w)), Some(t @ (Tok::Declare | Tok::Assign))) =
                        (toks.get(2), toks.get(3))
                    {
                        assign = *t == Tok::Assign;
                        decl.push(v.clone());
                        decl.push(w.clone());
                        rest = &toks[4..];
                    } else {
                        return perr(line, "too many declarations in command");
                    }
                }
                _ => {}
            }
        }
    }
    let mut pos = 0;
    let cmds = parse_cmds(rest, &mut pos, line, 0)?;
    if pos != rest.len() {
        return perr(line, format!("unexpected {:?} in operand", rest[pos]));
    }
    if cmds.is_empty() && !decl.is_empty() {
        return perr(line, "missing value for declaration");
    }
    Ok(Pipe { decl, assign, cmds })
}

fn parse_cmds(toks: &[Tok], pos: &mut usize, line: usize, depth: usize) -> Result<Vec<Vec<Arg>>> {
    if depth > MAX_DEPTH {
        return perr(line, "parentheses nested too deeply");
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        let arg = match t {
            Tok::RParen => {
                *pos -= 1;
                break;
            }
            Tok::Pipe => {
                if args.is_empty() {
                    return perr(line, "missing command before |");
                }
                cmds.push(std::mem::take(&mut args));
                continue;
            }
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => Arg::Field(f.split('.').map(str::to_string).collect()),
            Tok::Var(v) => {
                let mut parts = v.split('.').map(str::to_string);
                let name = parts.next().unwrap_or_default();
                Arg::Var(name, parts.collect())
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Nil),
                _ => Arg::Ident(id.clone()),
            },
            Tok::Str(s) => Arg::Lit(Value::str(s)),
            Tok::Num(n) => Arg::Lit(n.clone()),
            Tok::LParen => {
                let inner = parse_cmds(toks, pos, line, depth + 1)?;
                if toks.get(*pos) != Some(&Tok::RParen) {
                    return perr(line, "unclosed left paren");
                }
                *pos += 1;
                if inner.is_empty() {
                    return perr(line, "missing value in parentheses");
                }
                let mut path = Vec::new();
                if let Some(Tok::Chain(f)) = toks.get(*pos) {
                    path.extend(f.split('.').map(str::to_string));
                    *pos += 1;
                }
                Arg::Paren(
                    Box::new(Pipe {
                        decl: vec![],
                        assign: false,
                        cmds: inner,
                    }),
                    path,
                )
            }
            other => return perr(line, format!("unexpected {other:?} in operand")),
        };
        args.push(arg);
    }
    if !args.is_empty() {
        cmds.push(args);
    } else if !cmds.is_empty() {
        return perr(line, "missing command after |");
    }
    Ok(cmds)
}

// ---------------------------------------------------------------------------------------------
// Evaluator

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
    steps: u64,
    today: (i64, u32, u32),
}

impl Exec {
    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(GoTemplateError::Limit(format!(
                "more than {MAX_STEPS} evaluation steps"
            )));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(GoTemplateError::Limit(format!(
                "output larger than {MAX_OUTPUT} bytes"
            )));
        }
        Ok(())
    }

    fn list(&mut self, nodes: &[Node], dot: &Value, in_range: bool) -> Result<Flow> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        v.display(&mut self.out, true);
                    }
                }
                Node::Break | Node::Continue if !in_range => {
                    return exec("{{break}} or {{continue}} outside {{range}}")
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Branch {
                    kind,
                    pipe,
                    list,
                    else_list,
                } => {
                    let mark = self.vars.len();
                    let flow = self.branch(*kind, pipe, list, else_list.as_deref(), dot, in_range);
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn branch(
        &mut self,
        kind: BranchKind,
        pipe: &Pipe,
        list: &[Node],
        else_list: Option<&[Node]>,
        dot: &Value,
        in_range: bool,
    ) -> Result<Flow> {
        if kind == BranchKind::Range {
            let mut bare = pipe.clone();
            bare.decl.clear();
            let v = self.pipe(&bare, dot)?;
            let items: Vec<(Value, Value)> = match &v {
                Value::List(l, _) => l
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                    .collect(),
                Value::Map(m, _) => m.iter().map(|(k, x)| (Value::str(k), x.clone())).collect(),
                Value::Int(n) => {
                    if *n > MAX_STEPS as i64 {
                        return Err(GoTemplateError::Limit("range over a huge integer".into()));
                    }
                    (0..(*n).max(0))
                        .map(|i| (Value::Int(i), Value::Int(i)))
                        .collect()
                }
                Value::Nil => vec![],
                other => return exec(format!("range can't iterate over {}", other.type_name())),
            };
            if items.is_empty() {
                return match else_list {
                    Some(l) => self.list(l, dot, in_range),
                    None => Ok(Flow::Normal),
                };
            }
            let mark = self.vars.len();
            for (k, x) in items {
                self.step()?;
                self.vars.truncate(mark);
                match pipe.decl.as_slice() {
                    [] => {}
                    [a] => self.vars.push((a.clone(), x.clone())),
                    [a, b, ..] => {
                        self.vars.push((a.clone(), k));
                        self.vars.push((b.clone(), x.clone()));
                    }
                }
                match self.list(list, &x, true)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                }
            }
            return Ok(Flow::Normal);
        }
        let v = self.pipe(pipe, dot)?;
        if v.truth() {
            let d = if kind == BranchKind::With {
                v
            } else {
                dot.clone()
            };
            self.list(list, &d, in_range)
        } else if let Some(l) = else_list {
            self.list(l, dot, in_range)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut v: Option<Value> = None;
        for cmd in &p.cmds {
            self.step()?;
            v = Some(self.command(cmd, dot, v)?);
        }
        let v = v.unwrap_or(Value::Nil);
        if p.assign {
            for name in &p.decl {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return exec(format!("undefined variable: {name}")),
                }
            }
        } else if let Some(name) = p.decl.first() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn var(&self, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => exec(format!("undefined variable: {name}")),
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value> {
        let walk = |mut v: Value, path: &[String]| -> Result<Value> {
            for f in path {
                v = v.field(f)?;
            }
            Ok(v)
        };
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(path) => walk(dot.clone(), path),
            Arg::Var(name, path) => walk(self.var(name)?, path),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Paren(p, path) => {
                let v = self.pipe(p, dot)?;
                walk(v, path)
            }
            Arg::Ident(name) => {
                if KNOWN_FUNCS.contains(&name.as_str()) {
                    self.call(name, vec![])
                } else {
                    exec(format!("function {name:?} not defined"))
                }
            }
        }
    }

    fn command(&mut self, args: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value> {
        if let Arg::Ident(name) = &args[0] {
            if !KNOWN_FUNCS.contains(&name.as_str()) {
                return exec(format!("function {name:?} not defined"));
            }
            // `and`/`or` short-circuit like Go 1.18+.
            if name == "and" || name == "or" {
                let total = args.len() - 1 + usize::from(piped.is_some());
                if total == 0 {
                    return exec(format!(
                        "wrong number of args for {name}: want at least 1 got 0"
                    ));
                }
                let mut last = Value::Nil;
                for a in &args[1..] {
                    last = self.arg(a, dot)?;
                    if last.truth() != (name == "and") {
                        return Ok(last);
                    }
                }
                if let Some(p) = piped {
                    last = p;
                }
                return Ok(last);
            }
            let mut vals = Vec::with_capacity(args.len());
            for a in &args[1..] {
                vals.push(self.arg(a, dot)?);
            }
            vals.extend(piped);
            return self.call(name, vals);
        }
        if args.len() > 1 || piped.is_some() {
            return exec("can't give argument to non-function");
        }
        self.arg(&args[0], dot)
    }

    fn call(&mut self, name: &str, a: Vec<Value>) -> Result<Value> {
        let want = |n: usize| -> Result<()> {
            if a.len() == n {
                Ok(())
            } else {
                exec(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    a.len()
                ))
            }
        };
        Ok(match name {
            "not" => {
                want(1)?;
                Value::Bool(!a[0].truth())
            }
            "eq" => {
                if a.len() < 2 {
                    return exec("missing argument for comparison");
                }
                let mut r = false;
                for b in &a[1..] {
                    r |= compare(&a[0], b)? == std::cmp::Ordering::Equal;
                }
                Value::Bool(r)
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let o = compare(&a[0], &a[1])?;
                if name != "ne" && matches!((&a[0], &a[1]), (Value::Bool(_), _) | (Value::Nil, _)) {
                    return exec(format!("invalid type for comparison in {name}"));
                }
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "ne" => o != Equal,
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                })
            }
            "len" => {
                want(1)?;
                Value::Int(match &a[0] {
                    Value::Str(s) => s.len(),
                    Value::List(l, _) => l.len(),
                    Value::Map(m, _) => m.len(),
                    other => return exec(format!("len of type {}", other.type_name())),
                } as i64)
            }
            "index" => {
                if a.is_empty() {
                    return exec("wrong number of args for index: want at least 1 got 0");
                }
                let mut v = a[0].clone();
                for k in &a[1..] {
                    v = match (&v, k) {
                        (Value::List(l, _), Value::Int(i)) => match l.get(*i as usize) {
                            Some(x) if *i >= 0 => x.clone(),
                            _ => {
                                return exec(format!(
                                    "error calling index: index out of range: {i}"
                                ))
                            }
                        },
                        (Value::Str(s), Value::Int(i)) => match s.as_bytes().get(*i as usize) {
                            Some(b) if *i >= 0 => Value::Int(*b as i64),
                            _ => {
                                return exec(format!(
                                    "error calling index: index out of range: {i}"
                                ))
                            }
                        },
                        (Value::Map(m, _), Value::Str(key)) => {
                            m.get(&**key).cloned().unwrap_or(Value::Nil)
                        }
                        (Value::Nil, _) => {
                            return exec("error calling index: index of untyped nil")
                        }
                        (x, _) => {
                            return exec(format!(
                                "error calling index: can't index item of type {}",
                                x.type_name()
                            ))
                        }
                    };
                }
                v
            }
            "slice" => {
                if a.is_empty() || a.len() > 4 {
                    return exec("wrong number of args for slice");
                }
                let mut idx = Vec::new();
                for x in &a[1..] {
                    match x {
                        Value::Int(i) if *i >= 0 => idx.push(*i as usize),
                        _ => return exec("error calling slice: invalid slice index"),
                    }
                }
                let len = match &a[0] {
                    Value::List(l, _) => l.len(),
                    Value::Str(s) => s.len(),
                    other => {
                        return exec(format!(
                            "error calling slice: can't slice item of type {}",
                            other.type_name()
                        ))
                    }
                };
                let lo = idx.first().copied().unwrap_or(0);
                let hi = idx.get(1).copied().unwrap_or(len);
                if lo > hi || hi > len || (idx.len() == 3 && (idx[2] < hi || idx[2] > len)) {
                    return exec(format!(
                        "error calling slice: index out of range: {lo}:{hi}"
                    ));
                }
                match &a[0] {
                    Value::List(l, j) => Value::List(Arc::new(l[lo..hi].to_vec()), *j),
                    Value::Str(s) => match s.get(lo..hi) {
                        Some(sub) => Value::str(sub),
                        None => Value::str(&String::from_utf8_lossy(&s.as_bytes()[lo..hi])),
                    },
                    _ => Value::Nil,
                }
            }
            "print" | "println" => {
                let mut s = String::new();
                for (i, v) in a.iter().enumerate() {
                    let both_non_str =
                        i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_));
                    if i > 0 && (name == "println" || both_non_str) {
                        s.push(' ');
                    }
                    v.display(&mut s, false);
                }
                if name == "println" {
                    s.push('\n');
                }
                Value::str(&s)
            }
            "printf" => {
                let Some(Value::Str(f)) = a.first() else {
                    return exec("printf needs a format string");
                };
                Value::str(&printf(f, &a[1..]))
            }
            "json" => {
                want(1)?;
                Value::str(&a[0].to_json())
            }
            "currentDate" | "yesterdayDate" => {
                let (y, m, d) = self.today;
                let days = days_from_civil(y, m, d) - i64::from(name == "yesterdayDate");
                let (y, m, d) = civil_from_days(days);
                Value::str(&format!("{y:04}-{m:02}-{d:02}"))
            }
            "toTypeScriptType" => {
                want(1)?;
                Value::str(&ts_type(&a[0]))
            }
            _ => return exec(format!("function {name:?} not defined")),
        })
    }
}

const KNOWN_FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "json",
    "currentDate",
    "yesterdayDate",
    "toTypeScriptType",
];

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    use Value::*;
    Ok(match (a, b) {
        (Nil, Nil) => std::cmp::Ordering::Equal,
        (Nil, _) | (_, Nil) => std::cmp::Ordering::Less,
        (Bool(x), Bool(y)) => x.cmp(y),
        (Int(x), Int(y)) => x.cmp(y),
        (Float(x), Float(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Less),
        (Int(x), Float(y)) => (*x as f64)
            .partial_cmp(y)
            .unwrap_or(std::cmp::Ordering::Less),
        (Float(x), Int(y)) => x
            .partial_cmp(&(*y as f64))
            .unwrap_or(std::cmp::Ordering::Less),
        (Str(x), Str(y)) => x.cmp(y),
        (x, y) if x.type_name() != y.type_name() => {
            return exec(format!(
                "error calling eq: incompatible types for comparison: {} and {}",
                x.type_name(),
                y.type_name()
            ))
        }
        (x, _) => {
            return exec(format!(
                "error calling eq: non-comparable type: {}",
                x.type_name()
            ))
        }
    })
}

fn printf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb) => match it.next() {
                Some(v) => match verb {
                    'q' => json_string(
                        &{
                            let mut s = String::new();
                            v.display(&mut s, false);
                            s
                        },
                        &mut out,
                    ),
                    _ => v.display(&mut out, false),
                },
                None => {
                    let _ = write!(out, "%!{verb}(MISSING)");
                }
            },
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

/// Ollama's `ToolProperty.ToTypeScriptType`, simplified: `anyOf` joined with ` | `, JSON
/// schema types mapped (`integer`→`number`, `array`→`T[]` or `any[]`, `object`→`Record<string, any>`),
/// several types joined with ` | `, anything else `any`.
fn ts_type(v: &Value) -> String {
    // A `ToolProperty` struct, or a plain JSON map (`items` is free-form in Ollama).
    let get = |go: &str, key: &str| -> Value {
        match v {
            Value::Map(..) => v.field(key).unwrap_or(Value::Nil),
            _ => v.field(go).unwrap_or(Value::Nil),
        }
    };
    let one = |t: &str| -> String {
        match t {
            "string" => "string".into(),
            "number" | "integer" => "number".into(),
            "boolean" => "boolean".into(),
            "null" => "null".into(),
            "array" => match Some(get("Items", "items")).filter(Value::truth) {
                Some(items) => format!("{}[]", ts_type(&items)),
                None => "any[]".into(),
            },
            "object" => "Record<string, any>".into(),
            _ => "any".into(),
        }
    };
    if let Value::List(any, _) = get("AnyOf", "anyOf") {
        if !any.is_empty() {
            return any.iter().map(ts_type).collect::<Vec<_>>().join(" | ");
        }
    }
    match get("Type", "type") {
        Value::Str(t) => one(&t),
        Value::List(ts, _) if !ts.is_empty() => ts
            .iter()
            .map(|t| match t {
                Value::Str(t) => one(t),
                _ => "any".into(),
            })
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".into(),
    }
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian, days since 1970-01-01).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn today_utc() -> (i64, u32, u32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    civil_from_days(secs.div_euclid(86_400))
}

// ---------------------------------------------------------------------------------------------
// Template analysis (Ollama's `Vars`) and the legacy-mode cut

fn idents(nodes: &[Node], out: &mut Vec<String>) {
    fn pipe(p: &Pipe, out: &mut Vec<String>) {
        for cmd in &p.cmds {
            for a in cmd {
                match a {
                    Arg::Field(path) => out.extend(path.iter().cloned()),
                    Arg::Var(v, path) => {
                        out.push(v.clone());
                        out.extend(path.iter().cloned());
                    }
                    // Go walks a parenthesised pipeline but not a chain `(...).Field`.
                    Arg::Paren(p, path) if path.is_empty() => pipe(p, out),
                    _ => {}
                }
            }
        }
    }
    for n in nodes {
        match n {
            Node::Action(p) => pipe(p, out),
            Node::Branch {
                pipe: p,
                list,
                else_list,
                ..
            } => {
                pipe(p, out);
                idents(list, out);
                if let Some(l) = else_list {
                    idents(l, out);
                }
            }
            _ => {}
        }
    }
}

/// Ollama's `deleteNode` pass for the last legacy turn: keep everything up to and including the
/// first `.Response` field (in walk order; `if` conditions are not walked), drop all after it.
fn cut_after_response(nodes: &[Node], cut: &mut bool) -> Vec<Node> {
    fn pipe(p: &Pipe, cut: &mut bool) -> Option<Pipe> {
        let mut cmds = Vec::new();
        for cmd in &p.cmds {
            let mut args = Vec::new();
            for a in cmd {
                if *cut {
                    continue;
                }
                match a {
                    Arg::Field(path) if path.iter().any(|f| f == "Response") => {
                        *cut = true;
                        args.push(a.clone());
                    }
                    Arg::Paren(inner, path) if path.is_empty() => {
                        if let Some(q) = pipe(inner, cut) {
                            args.push(Arg::Paren(Box::new(q), vec![]));
                        }
                    }
                    _ => args.push(a.clone()),
                }
            }
            if args.is_empty() {
                return None;
            }
            cmds.push(args);
        }
        (!cmds.is_empty()).then(|| Pipe {
            decl: p.decl.clone(),
            assign: p.assign,
            cmds,
        })
    }
    let mut out = Vec::new();
    for n in nodes {
        if *cut {
            break;
        }
        match n {
            Node::Action(p) => {
                if let Some(q) = pipe(p, cut) {
                    out.push(Node::Action(q));
                }
            }
            Node::Branch {
                kind,
                pipe: p,
                list,
                else_list,
            } => {
                let list = cut_after_response(list, cut);
                let else_list = else_list.as_ref().map(|l| cut_after_response(l, cut));
                out.push(Node::Branch {
                    kind: *kind,
                    pipe: p.clone(),
                    list,
                    else_list,
                });
            }
            other => out.push(other.clone()),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Public API

/// A parsed Go template, with Ollama's `{{ .Response }}` touch-up applied.
#[derive(Debug, Clone)]
pub struct GoTemplate {
    nodes: Vec<Node>,
    vars: Vec<String>,
    raw: String,
}

/// A tool call on an assistant message (`.ToolCalls[].Function.{Name,Arguments,Index}`, `.ID`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub index: i64,
    pub name: String,
    /// A JSON object.
    pub arguments: serde_json::Value,
}

/// One message as Ollama's templates see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    pub thinking: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_name: String,
    pub tool_call_id: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }
}

/// The inputs of Ollama's `Template.Execute` (`template.Values`).
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub messages: Vec<ChatMessage>,
    /// OpenAI-style tools: `{"type":"function","function":{"name","description","parameters"}}`.
    pub tools: Vec<serde_json::Value>,
    /// Only for the suffix (fill-in-the-middle) mode, with `suffix`.
    pub prompt: String,
    pub suffix: String,
    pub think: bool,
    pub think_level: String,
    pub is_think_set: bool,
    /// The date `currentDate` returns (year, month, day); `None` = today (UTC).
    pub today: Option<(i64, u32, u32)>,
}

fn st(fields: Vec<Field>, json_display: bool) -> Value {
    Value::Struct(Arc::new(Struct {
        fields,
        json_display,
    }))
}

fn f(name: &'static str, json: Option<&'static str>, omitempty: bool, value: Value) -> Field {
    Field {
        name,
        json,
        omitempty,
        value,
    }
}

fn jget<'a>(v: &'a serde_json::Value, k: &str) -> &'a serde_json::Value {
    v.get(k).unwrap_or(&serde_json::Value::Null)
}

fn jstr(v: &serde_json::Value, k: &str) -> Value {
    Value::str(jget(v, k).as_str().unwrap_or(""))
}

/// `api.ToolProperty`: fields in Go order, unknown keys dropped (as Ollama's decoding does).
fn tool_property(p: &serde_json::Value) -> Value {
    let list = |k: &str, conv: &dyn Fn(&serde_json::Value) -> Value| -> Value {
        match p.get(k).and_then(|v| v.as_array()) {
            Some(a) => Value::List(Arc::new(a.iter().map(conv).collect()), false),
            None => Value::Nil,
        }
    };
    let props = match p.get("properties").and_then(|v| v.as_object()) {
        Some(o) => Value::Map(
            Arc::new(
                o.iter()
                    .map(|(k, v)| (k.clone(), tool_property(v)))
                    .collect(),
            ),
            true,
        ),
        None => Value::Nil,
    };
    st(
        vec![
            f("AnyOf", Some("anyOf"), true, list("anyOf", &tool_property)),
            f(
                "Type",
                Some("type"),
                true,
                Value::from_json(jget(p, "type")),
            ),
            f(
                "Items",
                Some("items"),
                true,
                Value::from_json(jget(p, "items")),
            ),
            f(
                "Description",
                Some("description"),
                true,
                jstr(p, "description"),
            ),
            f("Enum", Some("enum"), true, list("enum", &Value::from_json)),
            f("Properties", Some("properties"), true, props),
            f(
                "Required",
                Some("required"),
                true,
                list("required", &Value::from_json),
            ),
        ],
        false,
    )
}

/// Ollama's `templateTool` for one OpenAI-style tool definition.
pub fn tool_value(t: &serde_json::Value) -> Value {
    let func = jget(t, "function");
    let params = jget(func, "parameters");
    let props = Value::Map(
        Arc::new(
            params
                .get("properties")
                .and_then(|v| v.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), tool_property(v)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        true,
    );
    let required = match params.get("required").and_then(|v| v.as_array()) {
        Some(a) => Value::List(Arc::new(a.iter().map(Value::from_json).collect()), false),
        None => Value::Nil,
    };
    let parameters = st(
        vec![
            f("Type", Some("type"), false, jstr(params, "type")),
            f(
                "Defs",
                Some("$defs"),
                true,
                Value::from_json(jget(params, "$defs")),
            ),
            f(
                "Items",
                Some("items"),
                true,
                Value::from_json(jget(params, "items")),
            ),
            f("Required", Some("required"), true, required),
            f("Properties", Some("properties"), false, props),
        ],
        false,
    );
    let function = st(
        vec![
            f("Name", Some("name"), false, jstr(func, "name")),
            f(
                "Description",
                Some("description"),
                false,
                jstr(func, "description"),
            ),
            f("Parameters", Some("parameters"), false, parameters),
        ],
        // Ollama HEAD's `templateToolFunction` lost the JSON `String` method `api.ToolFunction`
        // had, so `{{ .Function }}` prints Go's `{name desc {...}}` there; the registry templates
        // were written for JSON, which hearth keeps.
        true,
    );
    st(
        vec![
            f("Type", Some("type"), false, jstr(t, "type")),
            f(
                "Items",
                Some("items"),
                true,
                Value::from_json(jget(t, "items")),
            ),
            f("Function", Some("function"), false, function),
        ],
        true,
    )
}

fn message_value(m: &ChatMessage) -> Value {
    let calls: Vec<Value> = m
        .tool_calls
        .iter()
        .map(|c| {
            let args = match Value::from_json(&c.arguments) {
                Value::Map(m, _) => Value::Map(m, true),
                _ => Value::Map(Arc::new(BTreeMap::new()), true),
            };
            st(
                vec![
                    f("ID", None, false, Value::str(&c.id)),
                    f(
                        "Function",
                        None,
                        false,
                        st(
                            vec![
                                f("Index", None, false, Value::Int(c.index)),
                                f("Name", None, false, Value::str(&c.name)),
                                f("Arguments", None, false, args),
                            ],
                            false,
                        ),
                    ),
                ],
                false,
            )
        })
        .collect();
    st(
        vec![
            f("Role", None, false, Value::str(&m.role)),
            f("Content", None, false, Value::str(&m.content)),
            f("Thinking", None, false, Value::str(&m.thinking)),
            f("Images", None, false, Value::Nil),
            f(
                "ToolCalls",
                None,
                false,
                if calls.is_empty() {
                    Value::Nil
                } else {
                    Value::List(Arc::new(calls), false)
                },
            ),
            f("ToolName", None, false, Value::str(&m.tool_name)),
            f("ToolCallID", None, false, Value::str(&m.tool_call_id)),
        ],
        false,
    )
}

/// Ollama's `collate`: all system contents joined with `\n\n`, and consecutive same-role
/// messages (except `tool`) merged with `\n\n`.
pub fn collate(msgs: &[ChatMessage]) -> (String, Vec<ChatMessage>) {
    let mut system = Vec::new();
    let mut out: Vec<ChatMessage> = Vec::new();
    for m in msgs {
        if m.role == "system" {
            system.push(m.content.as_str());
        }
        match out.last_mut() {
            Some(last) if last.role == m.role && m.role != "tool" => {
                last.content.push_str("\n\n");
                last.content.push_str(&m.content);
            }
            _ => out.push(m.clone()),
        }
    }
    (system.join("\n\n"), out)
}

impl GoTemplate {
    /// Parses `src`; a template that mentions neither `.Messages` nor `.Response` (as fields or
    /// `$.` variables, any case) gets `{{ .Response }}` appended, as Ollama does.
    pub fn parse(src: &str) -> std::result::Result<GoTemplate, GoTemplateError> {
        let items = lex(src)?;
        let mut p = Parser {
            items: items.into_iter(),
            depth: 0,
        };
        let (mut nodes, stop) = p.list()?;
        match stop {
            Stop::Eof => {}
            Stop::End => return perr(0, "unexpected {{end}}"),
            Stop::Else(_, line) => return perr(line, "unexpected {{else}}"),
        }
        let mut ids = Vec::new();
        idents(&nodes, &mut ids);
        let mut vars: Vec<String> = ids.iter().map(|s| s.to_lowercase()).collect();
        vars.sort();
        vars.dedup();
        if !vars.iter().any(|v| v == "messages" || v == "response") {
            nodes.push(Node::Action(Pipe {
                decl: vec![],
                assign: false,
                cmds: vec![vec![Arg::Field(vec!["Response".into()])]],
            }));
        }
        Ok(GoTemplate {
            nodes,
            vars,
            raw: src.to_string(),
        })
    }

    /// Ollama's default template, `{{ .Prompt }}` (plus the appended `{{ .Response }}`).
    pub fn default_template() -> GoTemplate {
        GoTemplate::parse("{{ .Prompt }}").expect("the default template parses")
    }

    /// The source text as given.
    pub fn source(&self) -> &str {
        &self.raw
    }

    /// Lower-cased identifiers the template mentions (Ollama's `Vars`).
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    /// Whether the template uses `.Messages` (Ollama's messages mode).
    pub fn uses_messages(&self) -> bool {
        self.vars.iter().any(|v| v == "messages")
    }

    /// Executes the template against `root` (the `.` and `$` of the template).
    pub fn execute(&self, root: &Value) -> std::result::Result<String, GoTemplateError> {
        self.execute_nodes(&self.nodes, root, today_utc())
    }

    fn execute_nodes(
        &self,
        nodes: &[Node],
        root: &Value,
        today: (i64, u32, u32),
    ) -> Result<String> {
        let mut ex = Exec {
            vars: vec![("$".into(), root.clone())],
            out: String::new(),
            steps: 0,
            today,
        };
        ex.list(nodes, root, false)?;
        if ex.out.len() > MAX_OUTPUT {
            return Err(GoTemplateError::Limit(format!(
                "output larger than {MAX_OUTPUT} bytes"
            )));
        }
        Ok(ex.out)
    }

    /// Ollama's `Template.Execute`: suffix mode, messages mode, or legacy per-turn mode.
    pub fn render(&self, data: &TemplateData) -> std::result::Result<String, GoTemplateError> {
        let today = data.today.unwrap_or_else(today_utc);
        let (system, messages) = collate(&data.messages);
        let think = |m: &mut BTreeMap<String, Value>| {
            m.insert("Think".into(), Value::Bool(data.think));
            m.insert("ThinkLevel".into(), Value::str(&data.think_level));
            m.insert("IsThinkSet".into(), Value::Bool(data.is_think_set));
        };
        let root = |m: BTreeMap<String, Value>| Value::Map(Arc::new(m), false);
        if !data.prompt.is_empty() && !data.suffix.is_empty() {
            let mut m = BTreeMap::new();
            m.insert("Prompt".into(), Value::str(&data.prompt));
            m.insert("Suffix".into(), Value::str(&data.suffix));
            m.insert("Response".into(), Value::str(""));
            think(&mut m);
            return self.execute_nodes(&self.nodes, &root(m), today);
        }
        if self.uses_messages() {
            let mut m = BTreeMap::new();
            m.insert("System".into(), Value::str(&system));
            m.insert(
                "Messages".into(),
                Value::List(
                    Arc::new(messages.iter().map(message_value).collect()),
                    false,
                ),
            );
            m.insert(
                "Tools".into(),
                if data.tools.is_empty() {
                    Value::Nil
                } else {
                    Value::List(Arc::new(data.tools.iter().map(tool_value).collect()), true)
                },
            );
            m.insert("Response".into(), Value::str(""));
            think(&mut m);
            return self.execute_nodes(&self.nodes, &root(m), today);
        }
        // Legacy: one execution per system/user/assistant group; the last is cut after
        // `.Response`. Tool messages are ignored.
        let mut out = String::new();
        let (mut sys, mut prompt, mut response) = (String::new(), String::new(), String::new());
        let vals = |s: &str, p: &str, r: &str| {
            let mut m = BTreeMap::new();
            m.insert("System".into(), Value::str(s));
            m.insert("Prompt".into(), Value::str(p));
            m.insert("Response".into(), Value::str(r));
            think(&mut m);
            root(m)
        };
        for msg in &messages {
            let flush = match msg.role.as_str() {
                "system" => !prompt.is_empty() || !response.is_empty(),
                "user" => !response.is_empty(),
                _ => false,
            };
            if flush {
                out.push_str(&self.execute_nodes(
                    &self.nodes,
                    &vals(&sys, &prompt, &response),
                    today,
                )?);
                sys.clear();
                prompt.clear();
                response.clear();
            }
            match msg.role.as_str() {
                "system" => sys = msg.content.clone(),
                "user" => prompt = msg.content.clone(),
                "assistant" => response = msg.content.clone(),
                _ => {}
            }
            if out.len() > MAX_OUTPUT {
                return Err(GoTemplateError::Limit("output too large".into()));
            }
        }
        let mut cut = false;
        let last = cut_after_response(&self.nodes, &mut cut);
        out.push_str(&self.execute_nodes(&last, &vals(&sys, &prompt, &response), today)?);
        Ok(out)
    }
}

/// Renders a plain conversation the way Ollama's chat endpoint does (no tools, think unset).
/// `add_generation_prompt` has no Ollama equivalent: Go templates decide themselves (they open
/// an assistant turn unless the last message is from the assistant; legacy templates stop right
/// after `.Response`, so a trailing assistant message is continued). It is accepted for parity
/// with [`super::ChatTemplate`] and ignored.
pub fn render_chat(
    tmpl: &GoTemplate,
    messages: &[Message],
    add_generation_prompt: bool,
) -> std::result::Result<String, GoTemplateError> {
    let _ = add_generation_prompt;
    let data = TemplateData {
        messages: messages
            .iter()
            .map(|m| ChatMessage::new(&m.role, &m.content))
            .collect(),
        ..Default::default()
    };
    tmpl.render(&data)
}
