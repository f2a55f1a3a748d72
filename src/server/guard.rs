//! Who may talk to the server, checked before routing, in this order:
//!
//! 1. **Host** (DNS rebinding): when the server listens on a loopback address, a request
//!    must name a loopback host (`localhost`, `*.localhost`, a loopback or unspecified IP
//!    literal, any port) or none; anything else is a 403. A page on `evil.example` whose
//!    name an attacker re-points at 127.0.0.1 still sends `Host: evil.example`. On any
//!    other address there is no check (as Ollama: the owner chose to be reachable).
//! 2. **Origin** (CORS): a request with an `Origin` header must come from an allowed
//!    origin ([`crate::config::origins`]) or from the server's own origin; anything else
//!    is a 403 without CORS headers. Allowed origins are echoed in
//!    `Access-Control-Allow-Origin`.
//! 3. `OPTIONS` is answered here with 204 (a CORS preflight, with its headers when the
//!    origin is allowed); it never needs a key, since browsers send no credentials on it.
//! 4. **API key**: when keys are configured, every request but `GET`/`HEAD /` and the
//!    chat page itself (`GET`/`HEAD /ui`: a static file with no data in it; a browser
//!    cannot send a key when it navigates, and the page sends the key it is given with
//!    each API call) must carry `Authorization: Bearer KEY` (or `x-api-key: KEY` on
//!    `/v1/messages*`, Anthropic's header); otherwise a 401 in the shape of the path's API.
//!
//! Refusals are logged and counted like other requests; keys are never logged.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::metrics::Metrics;

/// The methods a preflight is told are allowed.
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";

/// The headers a preflight is told are allowed when it names none.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, User-Agent, Accept, \
                             X-Requested-With, OpenAI-Beta, x-api-key, anthropic-version";

/// How long a browser may cache a preflight's answer (Ollama's 12 hours).
const MAX_AGE: &str = "43200";

/// The exposure rules of one server.
pub struct Guard {
    /// Lowercased origin patterns (`*` matches any run of characters).
    origins: Vec<String>,
    /// `*` was among the origins.
    any_origin: bool,
    /// The server listens on loopback: the Host header is checked.
    check_host: bool,
    /// SHA-256 of each key: compared in constant time, and equal in length whatever
    /// the key's, so a comparison reveals neither a key's bytes nor its length.
    keys: Vec<[u8; 32]>,
}

impl Guard {
    /// The rules for a server bound to `bound`, with these origins and keys.
    pub fn new(bound: SocketAddr, origins: Vec<String>, keys: &[String]) -> Guard {
        let origins: Vec<String> = origins.iter().map(|o| o.to_ascii_lowercase()).collect();
        Guard {
            any_origin: origins.iter().any(|o| o == "*"),
            origins,
            check_host: bound.ip().to_canonical().is_loopback(),
            keys: keys.iter().map(|k| digest(k.as_bytes())).collect(),
        }
    }

    /// The rules from the environment ([`crate::config::origins`], [`crate::config::api_keys`]).
    pub fn from_env(bound: SocketAddr) -> Result<Guard, String> {
        let keys = crate::config::api_keys()?;
        Ok(Guard::new(bound, crate::config::origins(), &keys))
    }

    /// Whether API keys are required.
    pub fn keyed(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether the Host header (`host[:port]`, or empty) is acceptable.
    fn host_allowed(&self, host: &str) -> bool {
        !self.check_host || loopback_host(host)
    }

    /// Whether a request whose `Host` is `host` may come from `origin`.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        // The server's own origin is not a cross-origin request.
        let own = !host.is_empty()
            && (origin.strip_prefix("http://") == Some(host)
                || origin.strip_prefix("https://") == Some(host));
        own || self.any_origin || self.origins.iter().any(|p| glob(p, &origin))
    }

    /// Whether the request carries one of the keys (always true without keys).
    fn authorized(&self, path: &str, headers: &HeaderMap) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let x_api_key = path
            .starts_with("/v1/messages")
            .then(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .flatten()
            .map(str::trim);
        [bearer, x_api_key]
            .into_iter()
            .flatten()
            .any(|presented| self.key_matches(presented))
    }

    /// Compares `presented` with every key, without stopping at a match, in time that
    /// depends on neither.
    fn key_matches(&self, presented: &str) -> bool {
        let d = digest(presented.as_bytes());
        let mut found = 0u8;
        for k in &self.keys {
            let diff = k.iter().zip(&d).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found |= u8::from(diff == 0);
        }
        std::hint::black_box(found) == 1
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Whether `host[:port]` names this machine's loopback interface: `localhost`,
/// `*.localhost` (RFC 6761 reserves them for loopback), an IP literal that is
/// loopback or unspecified (an IP literal involves no DNS, so it cannot be rebound),
/// or nothing (HTTP/1.0; browsers always send a Host).
pub fn loopback_host(host: &str) -> bool {
    let host = host.trim();
    if host.is_empty() {
        return true;
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || valid_port(port) => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if valid_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        return ip.is_loopback() || ip.is_unspecified();
    }
    // One trailing dot is the same name, fully qualified.
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || (name.ends_with(".localhost") && !name.starts_with('.'))
}

/// `:port`'s digits (a port over 65535 is not a port).
fn valid_port(p: &str) -> bool {
    let p = p.strip_prefix(':').unwrap_or(p);
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

/// Whether `text` matches `pattern`, in which `*` matches any run of characters (none
/// included). Linear in practice: each literal piece is found once, left to right.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    // `split` yields at least one piece.
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// What the middleware shares.
#[derive(Clone)]
pub struct GuardState {
    pub guard: Arc<Guard>,
    pub metrics: Arc<Metrics>,
}

/// The Host a request names: its header, else its URI's authority (absolute-form).
fn request_host(req: &Request) -> Result<String, ()> {
    match req.headers().get(header::HOST) {
        Some(v) => v.to_str().map(str::to_string).map_err(|_| ()),
        None => Ok(req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default()),
    }
}

/// The middleware: see the module's documentation for the rules.
pub async fn check(State(gs): State<GuardState>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let g = &gs.guard;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let refuse = |e: ApiError| {
        let status = e.status;
        let mut resp = e.for_path(&path);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        log(&gs.metrics, t0, &method, &path, status);
        resp
    };

    let host = match request_host(&req) {
        Ok(h) if g.host_allowed(&h) => h,
        Ok(h) => {
            return refuse(ApiError::forbidden(format!(
                "host '{}' is not allowed: this server listens on loopback and answers only \
                 requests for localhost, 127.0.0.1 or [::1] (a guard against DNS rebinding)",
                h.escape_debug()
            )))
        }
        Err(()) => return refuse(ApiError::forbidden("the Host header is not valid text")),
    };

    // The origin to echo, when the request has one and it is allowed.
    let origin = match req.headers().get(header::ORIGIN) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(o) if g.origin_allowed(o, &host) => Some(v.clone()),
            Ok(o) => {
                return refuse(ApiError::forbidden(format!(
                    "origin '{}' is not allowed (add it to HEARTH_ORIGINS to allow it)",
                    o.escape_debug()
                )))
            }
            Err(_) => return refuse(ApiError::forbidden("the Origin header is not valid text")),
        },
    };

    let mut resp = if method == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if origin.is_some() {
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            // An allowed origin may send any header it asks for.
            let asked = req
                .headers()
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
                .unwrap_or(HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            );
        }
        log(&gs.metrics, t0, &method, &path, StatusCode::NO_CONTENT);
        resp
    } else if g.authorized(&path, req.headers()) || open_without_key(&method, &path) {
        next.run(req).await
    } else {
        let presented = req.headers().contains_key(header::AUTHORIZATION)
            || (path.starts_with("/v1/messages") && req.headers().contains_key("x-api-key"));
        refuse(ApiError::unauthorized(if presented {
            "unauthorized: invalid API key"
        } else {
            "unauthorized: this server requires an API key: send Authorization: Bearer <key>"
        }))
    };

    if let Some(o) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

/// What every client may read without a key: `GET`/`HEAD` of `/` (clients probe it)
/// and of the chat page (a static file; a browser cannot send a key when it navigates).
fn open_without_key(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && matches!(path, "/" | "/ui")
}

/// The log line and count of a request answered here (the router logs the rest).
fn log(metrics: &Metrics, t0: Instant, method: &Method, path: &str, status: StatusCode) {
    // A fixed label: the path of a refused request is the client's choice, and the
    // metrics keep one series per label.
    metrics.request("guard", status.as_u16());
    super::log_request(status, Some(t0.elapsed()), method, path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "",
            "localhost",
            "LOCALHOST:11434",
            "localhost.",
            "app.localhost:80",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:11434",
            "[::ffff:127.0.0.1]:5",
            "0.0.0.0:11434",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:11434",
            "localhost.evil.example",
            "localhostx",
            ".localhost",
            "192.168.1.2",
            "[2001:db8::1]:80",
            "localhost:99999",
            "localhost:",
            "localhost:80:80",
            "[::1]x",
            "127.0.0.1:80@evil",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    #[test]
    fn host_checked_only_on_loopback() {
        let on = |addr: &str| Guard::new(addr.parse().unwrap(), Vec::new(), &[]);
        assert!(!on("127.0.0.1:11434").host_allowed("evil.example"));
        assert!(!on("[::1]:11434").host_allowed("evil.example"));
        // Bound beyond loopback (as Ollama): the owner chose to be reachable by name.
        assert!(on("0.0.0.0:11434").host_allowed("evil.example"));
        assert!(on("192.168.1.2:11434").host_allowed("my-server.lan:11434"));
    }

    #[test]
    fn globs() {
        assert!(glob("http://localhost:*", "http://localhost:3000"));
        assert!(glob("app://*", "app://"));
        assert!(glob("vscode-webview://*", "vscode-webview://abc"));
        assert!(glob("*", "anything"));
        assert!(glob("https://*.example.com", "https://a.example.com"));
        assert!(glob("a*b*c", "abc"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("http://localhost", "http://localhost:3000"));
        assert!(!glob("http://localhost:*", "http://evil.example"));
        assert!(!glob("ab*ba", "aba"));
    }

    fn guard(origins: &[&str], keys: &[&str]) -> Guard {
        let mut o: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        o.extend(["http://localhost:*".to_string()]);
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        Guard::new("127.0.0.1:11434".parse().unwrap(), o, &keys)
    }

    #[test]
    fn origins() {
        let g = guard(&[], &[]);
        assert!(g.origin_allowed("http://localhost:3000", "127.0.0.1:1"));
        assert!(g.origin_allowed("HTTP://LOCALHOST:3000", "127.0.0.1:1"));
        assert!(!g.origin_allowed("http://evil.example", "127.0.0.1:1"));
        // Its own origin.
        assert!(g.origin_allowed("http://127.0.0.1:1", "127.0.0.1:1"));
        assert!(!g.origin_allowed("http://", ""));
        assert!(guard(&["*"], &[]).origin_allowed("http://evil.example", "h"));
    }

    #[test]
    fn keys() {
        let g = guard(&[], &["k1", "k2"]);
        let with = |name: &str, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
            h
        };
        assert!(g.authorized("/api/tags", &with("authorization", "Bearer k2")));
        assert!(g.authorized("/api/tags", &with("authorization", "bearer  k1 ")));
        assert!(!g.authorized("/api/tags", &with("authorization", "Bearer k3")));
        assert!(!g.authorized("/api/tags", &with("authorization", "Basic k1")));
        assert!(!g.authorized("/api/tags", &with("authorization", "k1")));
        assert!(!g.authorized("/api/tags", &HeaderMap::new()));
        assert!(!g.authorized("/api/tags", &with("x-api-key", "k1")));
        assert!(g.authorized("/v1/messages", &with("x-api-key", "k1")));
        assert!(!g.authorized("/v1/messages", &with("x-api-key", "k")));
        assert!(guard(&[], &[]).authorized("/api/tags", &HeaderMap::new()));
    }
}
