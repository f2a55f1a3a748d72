//! The JSON Schema subset hearth enforces, checked before anything is compiled: every
//! keyword outside the list is refused by name (never silently ignored), `$ref` must
//! point into the same document and must not recurse, and `format` and `pattern` are
//! limited to what the matcher implements exactly.
//!
//! Supported (the list): `type` (one or a list), `properties`, `required`,
//! `additionalProperties` (`false`, `true` or a schema), `enum`, `const`, `items`,
//! `minItems`/`maxItems`, `anyOf`/`oneOf` (`oneOf` alternatives are generated as
//! `anyOf`: the output matches at least one), `$ref`/`$defs` (and `definitions`),
//! `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`, `minLength`/`maxLength`,
//! `pattern`, `format` (`date`, `date-time`, `time`, `email`, `uuid`). Annotations
//! that do not constrain are accepted: `title`, `description`, `default`, `examples`,
//! `$schema`, `$id`, `$comment`, `deprecated`, `readOnly`, `writeOnly`.
//!
//! `pattern` is a regular expression in the syntax of Rust's `regex` crate without
//! look-around or back-references (which that syntax lacks), matched against the
//! whole string: JSON Schema patterns are unanchored, so `"ab"` means "contains ab";
//! leading `^` and trailing `$` anchor as usual.

use serde_json::{Map, Value};

use super::ConstrainError;

/// Nesting deeper than this is refused (each level is a recursion of the checker and
/// of the compiler).
const MAX_DEPTH: usize = 48;

const CONSTRAINING: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "items",
    "minItems",
    "maxItems",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "definitions",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
];

const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
];

const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "integer", "string",
];

/// The `format` values the matcher generates exactly.
pub const FORMATS: &[&str] = &["date", "date-time", "time", "email", "uuid"];

/// Checks `schema` against the supported subset.
pub fn check(schema: &Value) -> Result<(), ConstrainError> {
    let mut c = Checker {
        root: schema,
        resolving: Vec::new(),
    };
    c.schema(schema, "#", 0)
}

struct Checker<'a> {
    root: &'a Value,
    /// The `$ref` targets being followed (a target met again is recursion).
    resolving: Vec<String>,
}

fn bad(path: &str, msg: impl std::fmt::Display) -> ConstrainError {
    ConstrainError::Schema(format!("{msg} (at {path})"))
}

impl<'a> Checker<'a> {
    fn schema(&mut self, s: &'a Value, path: &str, depth: usize) -> Result<(), ConstrainError> {
        if depth > MAX_DEPTH {
            return Err(bad(path, format!("schema nested deeper than {MAX_DEPTH}")));
        }
        let obj = match s {
            Value::Bool(_) => return Ok(()),
            Value::Object(o) => o,
            _ => return Err(bad(path, "a schema must be an object or a boolean")),
        };
        for key in obj.keys() {
            if !CONSTRAINING.contains(&key.as_str()) && !ANNOTATIONS.contains(&key.as_str()) {
                return Err(ConstrainError::Unsupported {
                    keyword: key.clone(),
                    path: path.to_string(),
                });
            }
        }
        let at = |k: &str| format!("{path}/{k}");
        if let Some(t) = obj.get("type") {
            check_type(t, &at("type"))?;
        }
        if let Some(p) = obj.get("properties") {
            let p = p
                .as_object()
                .ok_or_else(|| bad(&at("properties"), "properties must be an object"))?;
            for (k, v) in p {
                self.schema(v, &format!("{path}/properties/{k}"), depth + 1)?;
            }
        }
        if let Some(r) = obj.get("required") {
            let ok = r.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(bad(&at("required"), "required must be a list of names"));
            }
        }
        if let Some(a) = obj.get("additionalProperties") {
            self.schema(a, &at("additionalProperties"), depth + 1)?;
        }
        if let Some(e) = obj.get("enum") {
            if e.as_array().is_none_or(|a| a.is_empty()) {
                return Err(bad(&at("enum"), "enum must be a non-empty list"));
            }
        }
        if let Some(i) = obj.get("items") {
            if i.is_array() {
                return Err(ConstrainError::Unsupported {
                    keyword: "items (a list of schemas: tuple validation)".into(),
                    path: path.to_string(),
                });
            }
            self.schema(i, &at("items"), depth + 1)?;
        }
        for k in ["anyOf", "oneOf"] {
            if let Some(list) = obj.get(k) {
                let list = list
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad(&at(k), format!("{k} must be a non-empty list")))?;
                for (n, v) in list.iter().enumerate() {
                    self.schema(v, &format!("{path}/{k}/{n}"), depth + 1)?;
                }
            }
        }
        for k in ["$defs", "definitions"] {
            if let Some(defs) = obj.get(k) {
                let defs = defs
                    .as_object()
                    .ok_or_else(|| bad(&at(k), format!("{k} must be an object")))?;
                for (name, v) in defs {
                    self.schema(v, &format!("{path}/{k}/{name}"), depth + 1)?;
                }
            }
        }
        for k in ["minItems", "maxItems", "minLength", "maxLength"] {
            if let Some(v) = obj.get(k) {
                if v.as_u64().is_none_or(|n| n > u32::MAX as u64) {
                    return Err(bad(&at(k), format!("{k} must be a non-negative integer")));
                }
            }
        }
        for k in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
            if let Some(v) = obj.get(k) {
                if !v.is_number() {
                    return Err(bad(&at(k), format!("{k} must be a number")));
                }
            }
        }
        if let Some(p) = obj.get("pattern") {
            let p = p
                .as_str()
                .ok_or_else(|| bad(&at("pattern"), "pattern must be a string"))?;
            check_pattern(p).map_err(|e| bad(&at("pattern"), e))?;
        }
        if let Some(f) = obj.get("format") {
            match f.as_str() {
                Some(f) if FORMATS.contains(&f) => {}
                Some(f) => {
                    return Err(ConstrainError::Unsupported {
                        keyword: format!("format \"{f}\" (supported: {})", FORMATS.join(", ")),
                        path: path.to_string(),
                    })
                }
                None => return Err(bad(&at("format"), "format must be a string")),
            }
        }
        if let Some(r) = obj.get("$ref") {
            let r = r
                .as_str()
                .ok_or_else(|| bad(&at("$ref"), "$ref must be a string"))?;
            self.follow(r, path, depth)?;
        }
        Ok(())
    }

    /// Checks the target of a `$ref`, refusing references that leave the document or
    /// lead back to themselves.
    fn follow(&mut self, r: &str, path: &str, depth: usize) -> Result<(), ConstrainError> {
        let target = resolve(self.root, r).ok_or_else(|| {
            bad(
                path,
                format!("$ref \"{r}\" does not name a definition in this schema (only \"#/$defs/NAME\"-style references are supported)"),
            )
        })?;
        if self.resolving.iter().any(|x| x == r) {
            return Err(ConstrainError::Unsupported {
                keyword: format!("recursive $ref \"{r}\""),
                path: path.to_string(),
            });
        }
        self.resolving.push(r.to_string());
        let out = self.schema(target, r, depth + 1);
        self.resolving.pop();
        out
    }
}

/// The value a local JSON pointer (`#`, `#/a/b`, with `~0`/`~1` escapes) names.
fn resolve<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    let rest = r.strip_prefix('#')?;
    if rest.is_empty() {
        return Some(root);
    }
    root.pointer(rest).or_else(|| {
        let unescaped = rest.replace("~1", "/").replace("~0", "~");
        (unescaped != rest)
            .then(|| root.pointer(&unescaped))
            .flatten()
    })
}

fn check_type(t: &Value, path: &str) -> Result<(), ConstrainError> {
    let one = |v: &Value| match v.as_str() {
        Some(s) if TYPES.contains(&s) => Ok(()),
        _ => Err(bad(
            path,
            format!(
                "type must be one of {} (or a list of them)",
                TYPES.join(", ")
            ),
        )),
    };
    match t {
        Value::Array(a) if !a.is_empty() => a.iter().try_for_each(one),
        Value::Array(_) => Err(bad(path, "type must not be an empty list")),
        other => one(other),
    }
}

/// Parses a `pattern` with the syntax the matcher compiles.
fn check_pattern(p: &str) -> Result<(), String> {
    // The lexer's regular expressions are built from this parser's output.
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(p)
        .map(|_| ())
        .map_err(|e| {
            let first = e.to_string();
            let last = first.lines().last().unwrap_or("").trim().to_string();
            format!("invalid pattern {p:?}: {last}")
        })
}

/// The schema of OpenAI's `json_object` and Ollama's `"json"`: any JSON object.
pub fn any_object() -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::String("object".into()));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unsupported(s: Value) -> String {
        match check(&s) {
            Err(ConstrainError::Unsupported { keyword, .. }) => keyword,
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn supported_keywords_pass() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "title": "A person",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[A-Z][a-z]+$"},
                "age": {"type": "integer", "minimum": 0, "maximum": 150},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 3},
                "when": {"type": "string", "format": "date"},
                "kind": {"anyOf": [{"const": 1}, {"type": "null"}]},
                "pet": {"$ref": "#/$defs/pet"}
            },
            "required": ["name"],
            "additionalProperties": false,
            "$defs": {"pet": {"type": "object", "properties": {"n": {"type": ["string", "null"]}}}}
        });
        check(&s).unwrap();
        check(&json!(true)).unwrap();
        check(&json!({})).unwrap();
    }

    #[test]
    fn unknown_keywords_are_named() {
        assert_eq!(
            unsupported(json!({"type": "number", "multipleOf": 2})),
            "multipleOf"
        );
        assert_eq!(
            unsupported(json!({"properties": {"a": {"uniqueItems": true}}})),
            "uniqueItems"
        );
        assert!(unsupported(json!({"type": "string", "format": "ipv4"})).contains("ipv4"));
        assert!(unsupported(json!({"items": [{"type": "string"}]})).contains("tuple"));
        assert_eq!(unsupported(json!({"x-guidance": {}})), "x-guidance");
    }

    #[test]
    fn recursion_and_foreign_refs_are_refused() {
        let rec = json!({"$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}},
                         "$ref": "#/$defs/n"});
        assert!(unsupported(rec).contains("recursive"));
        let foreign = json!({"$ref": "https://example.com/s.json"});
        assert!(matches!(check(&foreign), Err(ConstrainError::Schema(_))));
        let missing = json!({"$ref": "#/$defs/nope"});
        assert!(matches!(check(&missing), Err(ConstrainError::Schema(_))));
    }

    #[test]
    fn malformed_values_are_refused() {
        for s in [
            json!({"type": "str"}),
            json!({"type": []}),
            json!({"required": "a"}),
            json!({"minLength": -1}),
            json!({"maximum": "3"}),
            json!({"pattern": "(?<=a)b"}),
            json!({"pattern": "(unclosed"}),
            json!({"enum": []}),
            json!(3),
        ] {
            assert!(matches!(check(&s), Err(ConstrainError::Schema(_))), "{s}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut s = json!({"type": "string"});
        for _ in 0..200 {
            s = json!({"type": "array", "items": s});
        }
        assert!(check(&s).is_err());
    }
}
