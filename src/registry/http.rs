//! HTTP plumbing shared by pull and push: one request with redirects followed by hand
//! (the Authorization header never leaves the registry's host), Bearer token auth on a
//! 401 challenge, and retries with exponential backoff (honouring `Retry-After`).

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use super::{Options, RegistryError, Result};

/// The client's identity, in Ollama's form.
fn user_agent() -> String {
    format!(
        "hearth/{} ({} {})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

pub(crate) struct Http {
    agent: ureq::Agent,
    /// The Bearer token and the `host:port` it was issued for.
    token: Mutex<Option<(String, String)>>,
    retries: u32,
    backoff: Duration,
    max_retry_after: Duration,
}

/// `host:port` of a URL.
pub(crate) fn authority(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => String::new(),
    }
}

fn host_only(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Parses `Bearer realm="…",service="…",scope="…"` into its pairs.
fn parse_challenge(h: &str) -> Option<Vec<(String, String)>> {
    let rest = h.trim().strip_prefix("Bearer ")?;
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), val));
    }
    Some(out)
}

impl Http {
    pub(crate) fn new(o: &Options) -> Http {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(o.connect_timeout)
            .timeout_read(o.stall_timeout)
            .timeout_write(o.stall_timeout)
            .user_agent(&user_agent())
            .build();
        Http {
            agent,
            token: Mutex::new(None),
            retries: o.retries,
            backoff: o.backoff,
            max_retry_after: o.max_retry_after,
        }
    }

    /// One request (no retries): follows redirects, answers one auth challenge, and
    /// turns a status >= 400 into an error. `body` is sent when `Some`.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<ureq::Response> {
        let origin = authority(url);
        let mut url = url.to_string();
        let mut challenged = false;
        for _ in 0..10 {
            let same_host = authority(&url) == origin;
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if same_host {
                if let Some((h, t)) = self.token.lock().unwrap().as_ref() {
                    if *h == origin {
                        req = req.set("Authorization", &format!("Bearer {t}"));
                    }
                }
            }
            let res = match body {
                Some(b) => req.send_bytes(b),
                None => req.call(),
            };
            match res {
                Ok(r) if (300..400).contains(&r.status()) => {
                    let loc = r.header("Location").ok_or_else(|| {
                        RegistryError::Protocol(format!("redirect without Location from {url}"))
                    })?;
                    let next = url::Url::parse(&url)
                        .and_then(|u| u.join(loc))
                        .map_err(|e| RegistryError::Protocol(format!("bad redirect {loc}: {e}")))?;
                    url = next.to_string();
                }
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if same_host && !challenged => {
                    let chal = r
                        .header("WWW-Authenticate")
                        .and_then(parse_challenge)
                        .ok_or(RegistryError::Unauthorized)?;
                    self.fetch_token(&url, &origin, &chal)?;
                    challenged = true;
                }
                Err(ureq::Error::Status(401, _)) => return Err(RegistryError::Unauthorized),
                Err(ureq::Error::Status(code, r)) => {
                    let retry_after = r
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let mut body = String::new();
                    let _ = r.into_reader().take(4096).read_to_string(&mut body);
                    return Err(RegistryError::Status {
                        code,
                        body: body.trim().to_string(),
                        retry_after,
                    });
                }
                Err(ureq::Error::Transport(t)) if t.kind() == ureq::ErrorKind::Dns => {
                    return Err(RegistryError::Unreachable(format!(
                        "cannot resolve the registry host {}",
                        authority(&url)
                    )))
                }
                // ureq's text repeats the URL; the cause alone reads better. Still a
                // Network error: a refused connection is retried like any other.
                Err(ureq::Error::Transport(t)) if t.kind() == ureq::ErrorKind::ConnectionFailed => {
                    let cause = std::error::Error::source(&t)
                        .map_or_else(|| t.to_string(), |s| s.to_string());
                    let cause = cause.split(" (os error").next().unwrap_or_default();
                    return Err(RegistryError::Network(format!(
                        "cannot connect to the registry at {}: {cause} (is it running, \
                         and is the host right?)",
                        authority(&url)
                    )));
                }
                Err(e) => return Err(RegistryError::Network(format!("{method} {url}: {e}"))),
            }
        }
        Err(RegistryError::Protocol(format!(
            "too many redirects from {url}"
        )))
    }

    /// Gets a token from the challenge's realm (which must be on the registry's host).
    fn fetch_token(&self, url: &str, origin: &str, chal: &[(String, String)]) -> Result<()> {
        let get = |k: &str| chal.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        let realm = get("realm").ok_or(RegistryError::Unauthorized)?;
        if host_only(realm) != host_only(url) {
            return Err(RegistryError::Protocol(format!(
                "refusing token realm {realm}: not on the registry's host"
            )));
        }
        let mut u = url::Url::parse(realm)
            .map_err(|e| RegistryError::Protocol(format!("bad token realm {realm}: {e}")))?;
        {
            let mut q = u.query_pairs_mut();
            for k in ["service", "scope"] {
                if let Some(v) = get(k) {
                    q.append_pair(k, v);
                }
            }
        }
        let r = self
            .agent
            .get(u.as_str())
            .call()
            .map_err(|_| RegistryError::Unauthorized)?;
        let mut body = Vec::new();
        r.into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|e| RegistryError::Network(format!("reading the token: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("bad token reply: {e}")))?;
        let tok = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or(RegistryError::Unauthorized)?;
        *self.token.lock().unwrap() = Some((origin.to_string(), tok.to_string()));
        Ok(())
    }

    /// Runs `f` until it succeeds, fails for good, or the retries are spent.
    pub(crate) fn retry<T>(&self, mut f: impl FnMut(u32) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f(attempt) {
                Err(e) if e.is_retryable() && attempt < self.retries => {
                    std::thread::sleep(self.delay(&e, attempt));
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// How long to wait before retry number `attempt + 1`.
    pub(crate) fn delay(&self, e: &RegistryError, attempt: u32) -> Duration {
        match e {
            RegistryError::Status {
                retry_after: Some(d),
                ..
            } => (*d).min(self.max_retry_after),
            _ => self.backoff * 2u32.saturating_pow(attempt.min(10)),
        }
    }

    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c[0], ("realm".into(), "http://127.0.0.1:1/token".into()));
        assert_eq!(c[2], ("scope".into(), "repository:a/b:pull,push".into()));
    }
}
