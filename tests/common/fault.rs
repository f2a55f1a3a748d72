//! A tiny HTTP/1.1 registry on 127.0.0.1 serving one manifest and its blobs, with
//! faults to inject: dropped connections, 500s, 429s, stalls, a wrong byte, a Bearer
//! challenge with a token endpoint, and a redirect to another host name (`localhost`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Faults, each applied to blob GETs while its count lasts.
#[derive(Default)]
pub struct Faults {
    /// Close the connection after this many body bytes (for `drop_count` responses).
    pub drop_after: u64,
    pub drop_count: u32,
    /// Answer 500 this many times.
    pub fail_500: u32,
    /// Answer 429 with `Retry-After: 1` this many times.
    pub fail_429: u32,
    /// Send a few bytes then go silent for 3 s, this many times.
    pub stall: u32,
    /// Flip one byte of every blob body.
    pub corrupt: bool,
    /// Require `Authorization: Bearer tok123` on /v2/ paths.
    pub auth: bool,
    /// Redirect blob GETs to `http://localhost:PORT/cdn/…`.
    pub redirect: bool,
}

pub struct FaultServer {
    pub port: u16,
    pub faults: Arc<Mutex<Faults>>,
    /// Blob body bytes written.
    pub served: Arc<AtomicU64>,
    /// Request lines with their Authorization header (or "-").
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Shared {
    manifests: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    faults: Arc<Mutex<Faults>>,
    served: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl FaultServer {
    /// Serves `manifests` (`"ns/model:tag"` → bytes) and `blobs` (`"sha256:…"` → bytes).
    pub fn start(manifests: HashMap<String, Vec<u8>>, blobs: HashMap<String, Vec<u8>>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let served = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sh = Arc::new(Shared {
            manifests,
            blobs,
            faults: faults.clone(),
            served: served.clone(),
            log: log.clone(),
            port,
        });
        let st = stop.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(c) = c else { continue };
                let sh = sh.clone();
                std::thread::spawn(move || {
                    let _ = handle(c, &sh);
                });
            }
        });
        FaultServer {
            port,
            faults,
            served,
            log,
            stop,
        }
    }

    pub fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.faults.lock().unwrap());
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

fn respond(c: &mut TcpStream, code: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut h = format!(
        "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    let _ = c.write_all(h.as_bytes());
    let _ = c.write_all(body);
}

fn handle(mut c: TcpStream, sh: &Shared) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let auth = headers.get("authorization").cloned().unwrap_or("-".into());
    sh.log
        .lock()
        .unwrap()
        .push(format!("{method} {path} {auth}"));
    let (auth_on, redirect) = {
        let f = sh.faults.lock().unwrap();
        (f.auth, f.redirect)
    };
    if path.starts_with("/token") {
        respond(&mut c, 200, &[], br#"{"token":"tok123"}"#);
        return Ok(());
    }
    if auth_on && path.starts_with("/v2/") && auth != "Bearer tok123" {
        let chal = format!(
            r#"Bearer realm="http://127.0.0.1:{}/token",service="fault",scope="repository:t/m:pull""#,
            sh.port
        );
        respond(&mut c, 401, &[("WWW-Authenticate", chal)], b"{}");
        return Ok(());
    }
    if let Some(rest) = path.strip_prefix("/v2/") {
        if let Some((repo, tag)) = rest.split_once("/manifests/") {
            match sh.manifests.get(&format!("{repo}:{tag}")) {
                Some(m) => respond(
                    &mut c,
                    200,
                    &[(
                        "Content-Type",
                        "application/vnd.docker.distribution.manifest.v2+json".into(),
                    )],
                    m,
                ),
                None => respond(
                    &mut c,
                    404,
                    &[],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
                ),
            }
            return Ok(());
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            if redirect {
                let loc = format!("http://localhost:{}/cdn/{digest}", sh.port);
                respond(&mut c, 307, &[("Location", loc)], b"");
                return Ok(());
            }
            return serve_blob(&mut c, sh, &method, digest, &headers);
        }
    }
    if let Some(digest) = path.strip_prefix("/cdn/") {
        return serve_blob(&mut c, sh, &method, digest, &headers);
    }
    respond(&mut c, 404, &[], b"not found");
    Ok(())
}

fn serve_blob(
    c: &mut TcpStream,
    sh: &Shared,
    method: &str,
    digest: &str,
    headers: &HashMap<String, String>,
) -> std::io::Result<()> {
    let Some(blob) = sh.blobs.get(digest) else {
        respond(c, 404, &[], b"blob unknown");
        return Ok(());
    };
    let mut f = sh.faults.lock().unwrap();
    if f.fail_500 > 0 {
        f.fail_500 -= 1;
        respond(c, 500, &[], b"boom");
        return Ok(());
    }
    if f.fail_429 > 0 {
        f.fail_429 -= 1;
        respond(c, 429, &[("Retry-After", "1".into())], b"slow down");
        return Ok(());
    }
    let (start, end) = match headers.get("range").and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap();
            let a: usize = a.parse().unwrap();
            let b: usize = if b.is_empty() {
                blob.len() - 1
            } else {
                b.parse().unwrap()
            };
            (a, b.min(blob.len() - 1))
        }
        None => (0, blob.len() - 1),
    };
    let mut body = blob[start..=end].to_vec();
    if f.corrupt && !body.is_empty() {
        body[0] ^= 0xff;
    }
    let code = if headers.contains_key("range") {
        206
    } else {
        200
    };
    let mut h = format!(
        "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{}\r\n\r\n",
        body.len(),
        blob.len()
    );
    if method == "HEAD" {
        h = format!("HTTP/1.1 200 X\r\nContent-Length: {}\r\n\r\n", blob.len());
        c.write_all(h.as_bytes())?;
        return Ok(());
    }
    let mut limit = body.len();
    let mut stall = false;
    if f.drop_count > 0 {
        f.drop_count -= 1;
        limit = limit.min(f.drop_after as usize);
    } else if f.stall > 0 {
        f.stall -= 1;
        stall = true;
        limit = limit.min(1000);
    }
    drop(f);
    c.write_all(h.as_bytes())?;
    c.write_all(&body[..limit])?;
    sh.served.fetch_add(limit as u64, Ordering::Relaxed);
    if stall {
        std::thread::sleep(Duration::from_secs(3));
    }
    Ok(())
}
