//! Jinja chat templates (Hugging Face `chat_template`), rendered with `minijinja` in the way
//! HF `transformers` and llama.cpp render them.
//!
//! - Whitespace: `trim_blocks` and `lstrip_blocks` on, as HF and llama.cpp render chat templates.
//! - Variables: `messages`, `add_generation_prompt`, `bos_token`, `eos_token`.
//! - Helpers: `raise_exception(msg)`, `strftime_now(fmt)` (UTC), a `tojson` filter like HF's
//!   (`json.dumps` with `ensure_ascii=False`, optional `indent`, `sort_keys`), and Python string,
//!   list and dict methods (`.strip()`, `.startswith()`, `.split()`, `.items()`, ...).
//! - Bounds: templates come from untrusted files, so rendering has an instruction budget
//!   (fuel), minijinja's recursion limit and an output cap; hitting one is an error, never a panic.

use std::fmt::Write as _;
use std::io;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, ValueKind};
use minijinja::{context, Environment, Error, ErrorKind, Value};

use super::{Message, TemplateError};

const NAME: &str = "chat_template";
/// Instructions one render may execute; a long chat with a complex template needs well under 1M.
const FUEL: u64 = 20_000_000;
/// Maximum rendered size (bytes); far beyond any context window.
const MAX_OUTPUT: usize = 32 << 20;
/// Nesting depth `tojson` will follow.
const MAX_JSON_DEPTH: usize = 128;

/// A parsed Jinja chat template with its environment.
pub(crate) struct JinjaTemplate {
    env: Environment<'static>,
    source: String,
}

impl std::fmt::Debug for JinjaTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JinjaTemplate")
            .field("source", &self.source)
            .finish()
    }
}

/// The payload of a `raise_exception` error, found again when the render error is mapped.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl JinjaTemplate {
    pub(crate) fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError::Syntax(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_global("bos_token", bos_token);
        env.add_global("eos_token", eos_token);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        Ok(JinjaTemplate {
            env,
            source: source.to_string(),
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn render(
        &self,
        messages: &[Message],
        tools: &[serde_json::Value],
        think: Option<(bool, &str)>,
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let tmpl = self.env.get_template(NAME).map_err(|e| map_error(&e))?;
        // No tools: `tools` is undefined, as templates test it (`{% if tools %}`); so
        // are `enable_thinking` and `reasoning_effort` when the request did not set them.
        let tools = (!tools.is_empty()).then(|| Value::from(Serde(tools)));
        let enable_thinking = think.map(|(on, _)| on);
        let reasoning_effort = think.and_then(|(_, l)| (!l.is_empty()).then(|| l.to_string()));
        let ctx = context! {
            messages => Value::from(Serde(messages)),
            tools => tools,
            enable_thinking => enable_thinking,
            reasoning_effort => reasoning_effort,
            add_generation_prompt => add_generation_prompt,
        };
        let mut out = Bounded(Vec::new());
        tmpl.render_captured_to(ctx, &mut out)
            .map_err(|e| map_error(&e))?;
        Ok(String::from_utf8(out.0)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// An output sink that refuses to grow past [`MAX_OUTPUT`].
struct Bounded(Vec<u8>);

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len().saturating_add(buf.len()) > MAX_OUTPUT {
            return Err(io::Error::other(format!(
                "output exceeds {MAX_OUTPUT} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let _ = write!(s, ": {inner}");
        src = inner.source();
    }
    s
}

fn map_error(e: &Error) -> TemplateError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cur) = src {
        if let Some(r) = cur.downcast_ref::<Raised>() {
            return TemplateError::Raised(r.0.clone());
        }
        src = cur.source();
    }
    match e.kind() {
        ErrorKind::OutOfFuel => TemplateError::Limit("instruction budget exhausted".into()),
        ErrorKind::WriteFailure => TemplateError::Limit(describe(e)),
        ErrorKind::SyntaxError => TemplateError::Syntax(describe(e)),
        _ if e.to_string().contains("recursion") => TemplateError::Limit(describe(e)),
        _ => TemplateError::Render(describe(e)),
    }
}

fn raise_exception(msg: Value) -> Result<Value, Error> {
    let msg = msg
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| msg.to_string());
    Err(Error::new(ErrorKind::InvalidOperation, "raise_exception").with_source(Raised(msg)))
}

fn strftime_now(fmt: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime(&fmt, secs)
}

/// A C-like `strftime` of a Unix time in UTC, for the conversions templates use.
/// Unknown conversions are copied through.
fn strftime(fmt: &str, unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let days = unix.div_euclid(86_400);
    let sod = unix.rem_euclid(86_400);
    let (y, m, d) = crate::civil::civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    let wday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - crate::civil::days_from_civil(y, 1, 1) + 1;
    let month = MONTHS[(m - 1) as usize];
    let day = DAYS[wday];
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = it.next() else {
            out.push('%');
            break;
        };
        let _ = match spec {
            'Y' => write!(out, "{y}"),
            'y' => write!(out, "{:02}", y.rem_euclid(100)),
            'm' => write!(out, "{m:02}"),
            'd' => write!(out, "{d:02}"),
            'e' => write!(out, "{d:2}"),
            'H' => write!(out, "{hh:02}"),
            'I' => write!(out, "{:02}", if hh % 12 == 0 { 12 } else { hh % 12 }),
            'p' => write!(out, "{}", if hh < 12 { "AM" } else { "PM" }),
            'M' => write!(out, "{mm:02}"),
            'S' => write!(out, "{ss:02}"),
            'j' => write!(out, "{yday:03}"),
            'B' => write!(out, "{month}"),
            'b' | 'h' => write!(out, "{}", &month[..3]),
            'A' => write!(out, "{day}"),
            'a' => write!(out, "{}", &day[..3]),
            'F' => write!(out, "{y}-{m:02}-{d:02}"),
            'T' => write!(out, "{hh:02}:{mm:02}:{ss:02}"),
            'Z' => write!(out, "UTC"),
            'z' => write!(out, "+0000"),
            '%' => write!(out, "%"),
            other => write!(out, "%{other}"),
        };
    }
    out
}

/// Options of the `tojson` filter.
struct JsonStyle {
    indent: Option<String>,
    ensure_ascii: bool,
    sort_keys: bool,
}

/// HF's `tojson`: `json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys)`.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => match (v.as_i64(), v.as_str()) {
            (Some(n), _) => Some(" ".repeat(n.clamp(0, 64) as usize)),
            (None, Some(s)) => Some(s.to_string()),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                ))
            }
        },
    };
    let style = JsonStyle {
        indent,
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(out: &mut String, v: &Value, style: &JsonStyle, depth: usize) -> Result<(), Error> {
    if depth > MAX_JSON_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                out.push_str(&py_float(f));
            }
        }
        ValueKind::String => json_string(out, v.as_str().unwrap_or(""), style.ensure_ascii),
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if style.sort_keys {
                keys.sort();
            }
            let items = keys
                .into_iter()
                .map(|k| v.get_item(&k).map(|val| (k, val)))
                .collect::<Result<Vec<_>, _>>()?;
            write_container(out, style, depth, '{', '}', &items, |out, (k, val)| {
                match k.as_str() {
                    Some(s) => json_string(out, s, style.ensure_ascii),
                    None => json_string(out, &k.to_string(), style.ensure_ascii),
                }
                out.push_str(": ");
                write_json(out, val, style, depth + 1)
            })?;
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            write_container(out, style, depth, '[', ']', &items, |out, item| {
                write_json(out, item, style, depth + 1)
            })?;
        }
        ValueKind::Invalid => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "tojson: invalid value",
            ))
        }
        _ => json_string(out, &v.to_string(), style.ensure_ascii),
    }
    Ok(())
}

/// Writes `open item, item close` in Python's layout: `, ` inline, or one item per line with
/// `,` line ends when indenting.
fn write_container<T>(
    out: &mut String,
    style: &JsonStyle,
    depth: usize,
    open: char,
    close: char,
    items: &[T],
    mut each: impl FnMut(&mut String, &T) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        match &style.indent {
            Some(ind) => {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                for _ in 0..=depth {
                    out.push_str(ind);
                }
            }
            None if i > 0 => out.push_str(", "),
            None => {}
        }
        each(out, item)?;
    }
    if let Some(ind) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
    out.push(close);
    Ok(())
}

fn json_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !c.is_ascii()) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it (`1.0`, `0.5`, `1e+20`, `1e-05`, `NaN`, `Infinity`).
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, msgs: &[Message]) -> Result<String, TemplateError> {
        JinjaTemplate::new(src, "<s>", "</s>")?.render(msgs, &[], None, true)
    }

    #[test]
    fn strftime_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %j %H:%M:%S %I%p %y %%", t),
            "Thursday February 060 13:05:09 01PM 24 %"
        );
        assert_eq!(strftime("%F %T", 0), "1970-01-01 00:00:00");
        assert_eq!(strftime("%a %Q", 0), "Thu %Q");
    }

    #[test]
    fn tojson_like_python() {
        let src = "{{ {'b': [1, 2.5, none, true], 'a': 'é\"\\n'} | tojson }}|{{ {'x': [1], 'y': {}} | tojson(indent=2) }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}";
        assert_eq!(
            render(src, &[]).unwrap(),
            "{\"b\": [1, 2.5, null, true], \"a\": \"é\\\"\\n\"}|{\n  \"x\": [\n    1\n  ],\n  \"y\": {}\n}|\"\\u00e9\"|{\"a\": 2, \"b\": 1}"
        );
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(3.0), "3.0");
    }

    #[test]
    fn python_methods_and_whitespace_control() {
        let src = "{% for m in messages %}\n  {% if m.content.strip().startswith('x') %}\n{{ m.role.upper() }}:{{ m.content.strip().split(' ')[1] }}\n  {% endif %}\n{% endfor %}";
        let msgs = [Message::new("user", "  x y  "), Message::new("user", "no")];
        assert_eq!(render(src, &msgs).unwrap(), "USER:y\n");
    }

    #[test]
    fn namespace_loop_and_tokens() {
        let src = "{{ bos_token }}{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% if loop.last %}{{ ns.n }}{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}!{% endif %}";
        let msgs = [Message::new("user", "a"), Message::new("assistant", "b")];
        assert_eq!(render(src, &msgs).unwrap(), "<s>2</s>!");
    }

    #[test]
    fn runaway_templates_are_bounded() {
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, TemplateError::Limit(_)), "{e:?}");
        let e = render(
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(e, TemplateError::Limit(_) | TemplateError::Render(_)),
            "{e:?}"
        );
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(JinjaTemplate::new(&deep, "", "").is_err());
        let nested = "{% if true %}".repeat(50_000) + &"{% endif %}".repeat(50_000);
        assert!(JinjaTemplate::new(&nested, "", "").is_err());
        let e = render(
            "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}",
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, TemplateError::Limit(_)), "{e:?}");
    }
}
