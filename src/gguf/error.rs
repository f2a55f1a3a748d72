//! What can be wrong with a GGUF file. Format errors name the byte offset at which
//! the reader found the problem.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GgufError {
    /// The file could not be opened or mapped (callers add the path as context).
    #[error("{err}")]
    Io { err: std::io::Error },

    /// The file is not well-formed GGUF.
    #[error("invalid GGUF at byte {offset}: {what}")]
    Format { offset: u64, what: String },

    #[error("metadata key '{key}' holds {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },

    #[error("metadata key '{key}' holds a string that is not valid UTF-8")]
    NotUtf8 { key: String },
}

impl GgufError {
    pub(crate) fn format(offset: usize, what: impl Into<String>) -> GgufError {
        GgufError::Format {
            offset: offset as u64,
            what: what.into(),
        }
    }
}
