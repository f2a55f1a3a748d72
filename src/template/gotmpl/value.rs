//! The value model: [`Value`] (Go's dynamic values, reduced to what Ollama's data holds), Go
//! structs with their JSON names, truthiness, field access, printing and JSON encoding.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::{exec, Result};

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

    pub(super) fn truth(&self) -> bool {
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

    pub(super) fn type_name(&self) -> &'static str {
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
    pub(super) fn display(&self, out: &mut String, top: bool) {
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

    pub(super) fn field(&self, name: &str) -> Result<Value> {
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

pub(super) fn json_string(s: &str, out: &mut String) {
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
