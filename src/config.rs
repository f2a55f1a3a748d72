//! Every environment variable hearth reads, with its default and its Ollama fallback,
//! in one place (the man page lists them).

use std::path::PathBuf;

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
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
