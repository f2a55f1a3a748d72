//! Model names and blob digests, parsed and validated the way Ollama does it.
//!
//! A name is `[scheme://][host/][namespace/]model[:tag]` with the defaults
//! `registry.ollama.ai`, `library` and `latest`. The tag is split off only when the last
//! `:` comes after the last `/`, so `127.0.0.1:5000/ns/model` keeps its port. Every part
//! must start with an ASCII letter, digit or `_`; the host may then hold `-_.:`
//! (at most 350 bytes), the namespace `-_` (80), the model and the tag `-_.` (80). So
//! no part can be empty, be `..`, hold a path separator or a NUL: a valid name can only
//! ever denote a path inside the store. Names compare case-insensitively, and the store
//! keeps their lower-case form on disk.
//!
//! A digest is `sha256:` followed by exactly 64 lower-case hex digits; nothing else is
//! accepted, so a digest taken from a remote manifest cannot name a file outside
//! `blobs/` (the class of bug behind CVE-2024-37032).

use std::fmt;

use thiserror::Error;

/// The registry used when a name has no host.
pub const DEFAULT_HOST: &str = "registry.ollama.ai";
/// The namespace used when a name has none.
pub const DEFAULT_NAMESPACE: &str = "library";
/// The tag used when a name has none.
pub const DEFAULT_TAG: &str = "latest";

/// A name or digest that was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid model name '{name}': {reason}")]
    Name { name: String, reason: String },
    #[error("invalid digest format '{digest}': {reason}")]
    Digest { digest: String, reason: String },
}

/// A fully qualified model name.
#[derive(Clone, Debug)]
pub struct Name {
    host: String,
    namespace: String,
    model: String,
    tag: String,
    /// The name was written with `http://`.
    plain_http: bool,
}

#[derive(Clone, Copy)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

impl Part {
    fn label(self) -> &'static str {
        match self {
            Part::Host => "host",
            Part::Namespace => "namespace",
            Part::Model => "model",
            Part::Tag => "tag",
        }
    }
    fn max_len(self) -> usize {
        match self {
            Part::Host => 350,
            _ => 80,
        }
    }
    fn allows(self, c: char) -> bool {
        c.is_ascii_alphanumeric()
            || c == '_'
            || c == '-'
            || match self {
                Part::Host => c == '.' || c == ':',
                Part::Namespace => false,
                Part::Model | Part::Tag => c == '.',
            }
    }
}

fn check_part(name: &str, part: Part, s: &str) -> Result<(), NameError> {
    let err = |reason: String| NameError::Name {
        name: name.to_string(),
        reason,
    };
    let label = part.label();
    let Some(first) = s.chars().next() else {
        return Err(err(format!("the {label} is empty")));
    };
    if s.len() > part.max_len() {
        return Err(err(format!(
            "the {label} is longer than {} characters",
            part.max_len()
        )));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(err(format!(
            "the {label} must start with a letter, a digit or '_'"
        )));
    }
    if let Some(c) = s.chars().find(|&c| !part.allows(c)) {
        return Err(err(format!("the {label} may not contain {c:?}")));
    }
    Ok(())
}

impl Name {
    /// Parses a name, filling in the defaults. Refuses anything outside Ollama's rules.
    pub fn parse(s: &str) -> Result<Name, NameError> {
        let err = |reason: &str| NameError::Name {
            name: s.to_string(),
            reason: reason.to_string(),
        };
        let (rest, plain_http) = if let Some(r) = s.strip_prefix("http://") {
            (r, true)
        } else if let Some(r) = s.strip_prefix("https://") {
            (r, false)
        } else {
            (s, false)
        };
        if rest.is_empty() {
            return Err(err("the name is empty"));
        }
        let (path, tag) = match (rest.rfind(':'), rest.rfind('/')) {
            (Some(c), Some(sl)) if c > sl => (&rest[..c], Some(&rest[c + 1..])),
            (Some(c), None) => (&rest[..c], Some(&rest[c + 1..])),
            _ => (rest, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [m] => (DEFAULT_HOST, DEFAULT_NAMESPACE, *m),
            [n, m] => (DEFAULT_HOST, *n, *m),
            [h, n, m] => (*h, *n, *m),
            _ => return Err(err("too many '/'-separated parts")),
        };
        let tag = tag.unwrap_or(DEFAULT_TAG);
        check_part(s, Part::Host, host)?;
        check_part(s, Part::Namespace, namespace)?;
        check_part(s, Part::Model, model)?;
        check_part(s, Part::Tag, tag)?;
        Ok(Name {
            host: host.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            tag: tag.to_string(),
            plain_http,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn model(&self) -> &str {
        &self.model
    }
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// Whether the name was written with `http://`.
    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    /// The repository path on the registry: `<namespace>/<model>`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.namespace, self.model)
    }

    /// The four path components under `manifests/`, lower-cased.
    pub fn path_parts(&self) -> [String; 4] {
        [
            self.host.to_ascii_lowercase(),
            self.namespace.to_ascii_lowercase(),
            self.model.to_ascii_lowercase(),
            self.tag.to_ascii_lowercase(),
        ]
    }

    /// The fully qualified form `host/namespace/model:tag`.
    pub fn full(&self) -> String {
        format!(
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )
    }
}

/// Case-insensitive equality, as Ollama matches names.
impl PartialEq for Name {
    fn eq(&self, o: &Name) -> bool {
        self.path_parts() == o.path_parts()
    }
}
impl Eq for Name {}

/// The short form: default host and namespace dropped, the tag always shown.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            write!(f, "{}/{}/", self.host, self.namespace)?;
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            write!(f, "{}/", self.namespace)?;
        }
        write!(f, "{}:{}", self.model, self.tag)
    }
}

/// A validated `sha256:<64 lower-case hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Digest, NameError> {
        let err = |reason: &str| NameError::Digest {
            digest: s.escape_debug().to_string(),
            reason: reason.to_string(),
        };
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| err("it must start with 'sha256:'"))?;
        Self::from_hex(hex).map_err(|_| err("want 64 lower-case hex digits after 'sha256:'"))
    }

    /// Parses a blob file name `sha256-<hex>`.
    pub fn from_file_name(s: &str) -> Option<Digest> {
        Self::from_hex(s.strip_prefix("sha256-")?).ok()
    }

    /// Builds a digest from 64 lower-case hex digits.
    pub fn from_hex(hex: &str) -> Result<Digest, NameError> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Digest {
                hex: hex.to_string(),
            })
        } else {
            Err(NameError::Digest {
                digest: hex.escape_debug().to_string(),
                reason: "want 64 lower-case hex digits".into(),
            })
        }
    }

    /// The digest of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest {
            hex: hex(&sha2::Sha256::digest(bytes)),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
    /// The blob's file name in the store: `sha256-<hex>`.
    pub fn file_name(&self) -> String {
        format!("sha256-{}", self.hex)
    }
    /// The first 12 hex digits, as progress lines and `list` show them.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_display() {
        let n = Name::parse("llama3").unwrap();
        assert_eq!(n.full(), "registry.ollama.ai/library/llama3:latest");
        assert_eq!(n.to_string(), "llama3:latest");
        let n = Name::parse("me/m:q4").unwrap();
        assert_eq!(n.to_string(), "me/m:q4");
        let n = Name::parse("127.0.0.1:5000/test/smollm2:q4").unwrap();
        assert_eq!(n.host(), "127.0.0.1:5000");
        assert_eq!(n.tag(), "q4");
        assert_eq!(n.to_string(), "127.0.0.1:5000/test/smollm2:q4");
        let n = Name::parse("localhost:5000/a/b").unwrap();
        assert_eq!(n.tag(), "latest");
        assert_eq!(
            Name::parse("LLama3:Q4").unwrap(),
            Name::parse("llama3:q4").unwrap()
        );
    }

    #[test]
    fn hostile() {
        for s in [
            "",
            "..",
            "../x",
            "a/../b",
            "/etc/passwd",
            "a//b",
            "a/b/c/d",
            "x:",
            ":x",
            "a\0b",
            "a\\b",
            "ns.dot/m",
            "h/n/m:../t",
            "m:t/x",
            "-x",
            ".x",
            "a b",
        ] {
            assert!(Name::parse(s).is_err(), "{s:?} accepted");
        }
        assert!(Name::parse(&"a".repeat(81)).is_err());
    }

    #[test]
    fn digests() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(Digest::parse(&good).is_ok());
        for s in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256-{}", "a".repeat(64)),
            "sha256:../../etc/passwd".into(),
            format!("sha256:../{}", "a".repeat(61)),
        ] {
            assert!(Digest::parse(&s).is_err(), "{s} accepted");
        }
    }
}
