//! Every environment variable hearth reads, with its default and its Ollama fallback,
//! in one place (the man page lists them).

use std::path::PathBuf;

/// One environment variable, as the man page's ENVIRONMENT section lists it.
#[derive(Clone, Copy, Debug)]
pub struct EnvVar {
    pub name: &'static str,
    /// Ollama's variable, read when hearth's is unset.
    pub fallback: Option<&'static str>,
    pub help: &'static str,
}

/// Every variable hearth reads (keep in step with the functions below).
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        name: "HEARTH_HOME",
        fallback: None,
        help: "hearth's own directory (chat history); default ~/.hearth",
    },
    EnvVar {
        name: "RUST_LOG",
        fallback: None,
        help: "debug or trace: print an error's whole chain of causes, one a line (and a \
               backtrace when RUST_BACKTRACE=1 is set too)",
    },
    EnvVar {
        name: "NO_COLOR",
        fallback: None,
        help: "set and not empty (no-color.org): no ANSI escape codes; progress (pull, push, \
               create, loading a model) prints plain lines instead of bars and spinners, as it \
               does when stderr is not a terminal or TERM=dumb",
    },
    EnvVar {
        name: "HEARTH_MODELS",
        fallback: Some("OLLAMA_MODELS"),
        help: "the model store, laid out as Ollama's; default ~/.hearth/models",
    },
    EnvVar {
        name: "HEARTH_HOST",
        fallback: Some("OLLAMA_HOST"),
        help: "the address hearth serve listens on, and hearth ps and hearth stop connect to: \
               [http://]host[:port]; default 127.0.0.1:11434 (:port alone: all interfaces)",
    },
    EnvVar {
        name: "HEARTH_ORIGINS",
        fallback: Some("OLLAMA_ORIGINS"),
        help: "extra origins (comma-separated, * as a wildcard; * alone allows all) whose \
               browser pages may call the server, added to the defaults: localhost, \
               127.0.0.1 and 0.0.0.0 on any port, app://, file://, tauri://, \
               vscode-webview:// and vscode-file://; a request from any other origin is \
               refused (403)",
    },
    EnvVar {
        name: "HEARTH_API_KEY",
        fallback: None,
        help: "API keys (comma-separated): when set, every request but GET / and GET /ui \
               (the chat page) must send Authorization: Bearer KEY (401 otherwise); hearth \
               ps and hearth stop send the first",
    },
    EnvVar {
        name: "HEARTH_API_KEY_FILE",
        fallback: None,
        help: "a file of API keys, one a line (blank lines and # comments ignored), \
               required as HEARTH_API_KEY's are (the two lists are joined)",
    },
    EnvVar {
        name: "HEARTH_NUM_PARALLEL",
        fallback: Some("OLLAMA_NUM_PARALLEL"),
        help: "sequences the server computes at once per model; default 4",
    },
    EnvVar {
        name: "HEARTH_MAX_LOADED_MODELS",
        fallback: Some("OLLAMA_MAX_LOADED_MODELS"),
        help: "models the server keeps loaded at once (fewer when memory runs short; the \
               least recently used idle one is unloaded first); default 3",
    },
    EnvVar {
        name: "HEARTH_MAX_QUEUE",
        fallback: Some("OLLAMA_MAX_QUEUE"),
        help: "requests that may wait at once before the server answers 503; default 512",
    },
    EnvVar {
        name: "HEARTH_KEEP_ALIVE",
        fallback: Some("OLLAMA_KEEP_ALIVE"),
        help: "how long an idle model stays loaded in the server: seconds or a duration \
               like 5m or 1h30m, negative for ever; default 5m",
    },
    EnvVar {
        name: "HEARTH_CONTEXT_LENGTH",
        fallback: Some("OLLAMA_CONTEXT_LENGTH"),
        help: "the server's context length for requests that set no num_ctx (capped at the \
               model's trained length); default 4096",
    },
    EnvVar {
        name: "HEARTH_MAX_MEMORY",
        fallback: None,
        help: "a cap on the memory the server plans for its loaded models: weights, caches \
               and buffers (bytes, or with a unit: 512MiB, 8GiB); default what the system \
               and cgroup allow, less 512 MiB",
    },
    EnvVar {
        name: "HEARTH_MLOCK",
        fallback: None,
        help: "1 or true: lock each loaded model's weights in memory (mlock), so that they \
               are never paged out; needs a locked-memory limit (ulimit -l) as large as the \
               model",
    },
    EnvVar {
        name: "HEARTH_NUM_THREADS",
        fallback: None,
        help: "inference threads; default 0, one per CPU",
    },
    EnvVar {
        name: "HEARTH_KERNEL",
        fallback: None,
        help: "force a kernel set, for comparisons: scalar, avx2, neon or neon-nodot",
    },
];

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// An "Environment:" help paragraph listing the variables named (for `--help`).
pub fn environment_help(names: &[&str]) -> String {
    let mut out = String::from("Environment:\n");
    for v in ENVIRONMENT.iter().filter(|v| names.contains(&v.name)) {
        match v.fallback {
            Some(f) => out.push_str(&format!("  {} (else {f})\n", v.name)),
            None => out.push_str(&format!("  {}\n", v.name)),
        }
        out.push_str(&format!("          {}\n", v.help));
    }
    out
}

/// hearth's own directory (history, keys): `$HEARTH_HOME`, default `~/.hearth`.
pub fn hearth_home() -> PathBuf {
    match std::env::var_os("HEARTH_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => home_dir().join(".hearth"),
    }
}

/// The REPL's history file.
pub fn history_file() -> PathBuf {
    hearth_home().join("history")
}

/// Worker threads for inference: `$HEARTH_NUM_THREADS` (0 or unset: one per CPU).
pub fn num_threads() -> usize {
    std::env::var("HEARTH_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The model store: `$HEARTH_MODELS`, else `$OLLAMA_MODELS` (so an Ollama store can be
/// shared), else `~/.hearth/models`.
pub fn models_dir() -> PathBuf {
    for var in ["HEARTH_MODELS", "OLLAMA_MODELS"] {
        if let Some(d) = std::env::var_os(var) {
            if !d.is_empty() {
                return PathBuf::from(d);
            }
        }
    }
    home_dir().join(".hearth").join("models")
}

/// The first of `vars` that is set and not empty, trimmed of spaces and quotes (as
/// Ollama trims its variables).
fn var(vars: &[&str]) -> Option<String> {
    vars.iter().find_map(|v| {
        let s = std::env::var(v).ok()?;
        let s = s
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .trim()
            .to_string();
        (!s.is_empty()).then_some(s)
    })
}

/// The default server address.
pub const DEFAULT_HOST: &str = "127.0.0.1:11434";

/// The server's address: `$HEARTH_HOST`, else `$OLLAMA_HOST`, default `127.0.0.1:11434`.
/// Like Ollama: a scheme is optional (`http://x` alone means port 80, `https://x` 443),
/// a missing host means all interfaces (`:8080`), a missing port 11434.
pub fn host() -> String {
    normalize_host(&var(&["HEARTH_HOST", "OLLAMA_HOST"]).unwrap_or_default())
}

/// `host:port` from the forms `host()` accepts.
pub fn normalize_host(s: &str) -> String {
    let s = s.trim().trim_end_matches('/');
    if s.is_empty() {
        return DEFAULT_HOST.to_string();
    }
    let (rest, default_port) = if let Some(r) = s.strip_prefix("http://") {
        (r, "80")
    } else if let Some(r) = s.strip_prefix("https://") {
        (r, "443")
    } else {
        (s, "11434")
    };
    // "[::1]:port", "host:port", "host", ":port"
    let (h, p) = match rest.rsplit_once(':') {
        Some((h, p))
            if !h.ends_with(':') && (h.is_empty() || !h.contains(':') || h.ends_with(']')) =>
        {
            (h, p)
        }
        _ => (rest, default_port),
    };
    let h = if h.is_empty() { "0.0.0.0" } else { h };
    format!("{h}:{p}")
}

/// The address a client of the server connects to: [`host()`], with an unspecified bind
/// address (`0.0.0.0`, `[::]`) meaning this machine.
pub fn client_host() -> String {
    connect_addr(&host())
}

/// The address to connect to for a server bound to `host:port`.
pub fn connect_addr(bound: &str) -> String {
    match bound.rsplit_once(':') {
        Some(("0.0.0.0", p)) => format!("127.0.0.1:{p}"),
        Some(("[::]", p)) => format!("[::1]:{p}"),
        _ => bound.to_string(),
    }
}

/// The origins a browser page may call the server from, Ollama's defaults after
/// `$HEARTH_ORIGINS` (else `$OLLAMA_ORIGINS`, comma-separated). Patterns: `*` matches
/// any run of characters, `*` alone allows every origin.
pub fn origins() -> Vec<String> {
    let mut out: Vec<String> = var(&["HEARTH_ORIGINS", "OLLAMA_ORIGINS"])
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    for host in ["localhost", "127.0.0.1", "0.0.0.0"] {
        for scheme in ["http", "https"] {
            out.push(format!("{scheme}://{host}"));
            out.push(format!("{scheme}://{host}:*"));
        }
    }
    for scheme in ["app", "file", "tauri", "vscode-webview", "vscode-file"] {
        out.push(format!("{scheme}://*"));
    }
    out
}

/// The API keys the server requires: `$HEARTH_API_KEY` (comma-separated) and the lines
/// of `$HEARTH_API_KEY_FILE` (blank lines and `#` comments skipped). Empty when neither
/// is set. A file that cannot be read, or variables that are set but name no key, are
/// an error: the server must not start open when its owner meant it closed.
pub fn api_keys() -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut set = false;
    if let Some(v) = var(&["HEARTH_API_KEY"]) {
        set = true;
        keys.extend(
            v.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        );
    }
    if let Some(path) = var(&["HEARTH_API_KEY_FILE"]) {
        set = true;
        // The error names the file, never its contents.
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read HEARTH_API_KEY_FILE {path}: {e}"))?;
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if set && keys.is_empty() {
        return Err("HEARTH_API_KEY or HEARTH_API_KEY_FILE is set but holds no key".into());
    }
    Ok(keys)
}

/// Sequences served at once per model: `$HEARTH_NUM_PARALLEL`, else `$OLLAMA_NUM_PARALLEL`,
/// default 4.
pub fn num_parallel() -> usize {
    var(&["HEARTH_NUM_PARALLEL", "OLLAMA_NUM_PARALLEL"])
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(4)
}

/// Whether `$NO_COLOR` asks for no ANSI codes: set and not empty, as no-color.org says.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Set by `--mlock` on the command line (`run`, `serve`, `bench`).
static MLOCK_FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--mlock`: lock loaded weights in memory whatever `$HEARTH_MLOCK` says.
pub fn force_mlock() {
    MLOCK_FLAG.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether loaded weights are locked in memory: `--mlock` was given, or `$HEARTH_MLOCK`
/// is 1, true, yes or on.
pub fn mlock() -> bool {
    MLOCK_FLAG.load(std::sync::atomic::Ordering::Relaxed)
        || var(&["HEARTH_MLOCK"])
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// Models kept loaded at once: `$HEARTH_MAX_LOADED_MODELS`, else
/// `$OLLAMA_MAX_LOADED_MODELS`, default 3 (Ollama's on a machine without a GPU).
pub fn max_loaded_models() -> usize {
    var(&["HEARTH_MAX_LOADED_MODELS", "OLLAMA_MAX_LOADED_MODELS"])
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// Requests that may wait at once (for a model or a slot): `$HEARTH_MAX_QUEUE`, else
/// `$OLLAMA_MAX_QUEUE`, default 512.
pub fn max_queue() -> usize {
    var(&["HEARTH_MAX_QUEUE", "OLLAMA_MAX_QUEUE"])
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(512)
}

/// How long an idle model stays loaded: `$HEARTH_KEEP_ALIVE`, else `$OLLAMA_KEEP_ALIVE`,
/// default 5 minutes; `None` means forever (a negative value).
pub fn keep_alive() -> Option<std::time::Duration> {
    var(&["HEARTH_KEEP_ALIVE", "OLLAMA_KEEP_ALIVE"])
        .and_then(|v| parse_duration(&v))
        .unwrap_or(Some(std::time::Duration::from_secs(300)))
}

/// The default context length of a request: `$HEARTH_CONTEXT_LENGTH`, else
/// `$OLLAMA_CONTEXT_LENGTH`, default 4096 (Ollama's on a machine without a GPU); always
/// capped at the model's trained length.
pub fn context_length() -> usize {
    var(&["HEARTH_CONTEXT_LENGTH", "OLLAMA_CONTEXT_LENGTH"])
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(4096)
}

/// A cap on the memory hearth plans to use for models and their caches:
/// `$HEARTH_MAX_MEMORY` in bytes, or with a unit (`512MiB`, `8GiB`, `2GB`).
pub fn max_memory() -> Option<u64> {
    parse_bytes(&var(&["HEARTH_MAX_MEMORY"])?)
}

/// A size in bytes with an optional unit (K, M, G, T; KB/MB… powers of 1000, KiB/MiB…
/// powers of 1024; K/M/G alone are powers of 1024).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    let v = n * scale;
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

/// A keep-alive duration as Ollama takes it: a number of seconds, or a Go duration
/// (`"5m"`, `"1h30m"`, `"250ms"`, `"0"`). `Some(None)` is forever (negative),
/// `None` is not a duration.
pub fn parse_duration(s: &str) -> Option<Option<std::time::Duration>> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return duration_from_secs(secs);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    duration_from_secs(if neg { -total } else { total })
}

fn duration_from_secs(secs: f64) -> Option<Option<std::time::Duration>> {
    if !secs.is_finite() {
        return None;
    }
    if secs < 0.0 {
        return Some(None);
    }
    // Durations past ~300 years are forever too.
    Some(std::time::Duration::try_from_secs_f64(secs.min(1e10)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_ollama() {
        assert_eq!(parse_duration("5m"), Some(Some(Duration::from_secs(300))));
        assert_eq!(
            parse_duration("1h30m"),
            Some(Some(Duration::from_secs(5400)))
        );
        assert_eq!(parse_duration("0"), Some(Some(Duration::ZERO)));
        assert_eq!(parse_duration("30"), Some(Some(Duration::from_secs(30))));
        assert_eq!(
            parse_duration("250ms"),
            Some(Some(Duration::from_millis(250)))
        );
        assert_eq!(parse_duration("-1"), Some(None));
        assert_eq!(parse_duration("-1m"), Some(None));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("64MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("2GB"), Some(2_000_000_000));
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("1.5G"), Some(3 << 29));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn hosts_normalize_like_ollama() {
        assert_eq!(normalize_host(""), "127.0.0.1:11434");
        assert_eq!(normalize_host("0.0.0.0"), "0.0.0.0:11434");
        assert_eq!(normalize_host(":8080"), "0.0.0.0:8080");
        assert_eq!(normalize_host("127.0.0.1:0"), "127.0.0.1:0");
        assert_eq!(normalize_host("http://example"), "example:80");
        assert_eq!(normalize_host("https://example"), "example:443");
        assert_eq!(normalize_host("http://localhost:9000/"), "localhost:9000");
        assert_eq!(normalize_host("[::1]:9000"), "[::1]:9000");
        assert_eq!(connect_addr("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(connect_addr("[::]:8080"), "[::1]:8080");
        assert_eq!(connect_addr("localhost:9000"), "localhost:9000");
    }

    #[test]
    fn environment_lists_every_variable_read() {
        let src = include_str!("config.rs");
        let listed: Vec<&str> = ENVIRONMENT
            .iter()
            .flat_map(|v| std::iter::once(v.name).chain(v.fallback))
            .collect();
        // Every variable name this file mentions (code and docs) is in the table.
        for prefix in ["HEARTH", "OLLAMA"].map(|p| format!("{p}_")) {
            for (i, _) in src.match_indices(&prefix) {
                let name: String = src[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                assert!(
                    listed.contains(&name.as_str()),
                    "{name} is not in ENVIRONMENT"
                );
            }
        }
    }
}
