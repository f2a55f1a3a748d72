//! The built-in functions (`eq ne lt le gt ge and or not len index slice print printf println`
//! and Ollama's `json currentDate yesterdayDate toTypeScriptType`), with their helpers:
//! comparison, `printf` verbs, TypeScript types of tool schemas, and civil dates.

use std::fmt::Write as _;
use std::sync::Arc;

use super::exec::Exec;
use super::value::json_string;
use super::{exec, Result, Value};

impl Exec {
    pub(super) fn call(&mut self, name: &str, a: Vec<Value>) -> Result<Value> {
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
                let days = crate::civil::days_from_civil(y, m.into(), d.into())
                    - i64::from(name == "yesterdayDate");
                let (y, m, d) = crate::civil::civil_from_days(days);
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

pub(super) const KNOWN_FUNCS: &[&str] = &[
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

pub(super) fn today_utc() -> (i64, u32, u32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = crate::civil::civil_from_days(secs.div_euclid(86_400));
    // Month 1-12 and day 1-31 always fit.
    (y, m as u32, d as u32)
}
