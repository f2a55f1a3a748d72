//! Pull against a fault-injecting registry on loopback: drops, 500s, 429, stalls, a
//! wrong byte, Bearer auth, a cross-host redirect, resume across client instances,
//! a full disk, and hostile names and digests.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fault::FaultServer;
use hearth::registry::{progress::Silent, Client, Options, RegistryError};
use hearth::store::{Digest, Name, Store, StoreError};

struct Fixture {
    server: FaultServer,
    blob: Vec<u8>,
    digest: Digest,
    config_digest: Digest,
    name: Name,
    dir: PathBuf,
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hearth-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fixture(tag: &str, size: usize) -> Fixture {
    let blob = bytes(size, size as u64 + 7);
    let config = br#"{"model_format":"gguf","architecture":"amd64","os":"linux"}"#.to_vec();
    let digest = Digest::of_bytes(&blob);
    let config_digest = Digest::of_bytes(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"{digest}","size":{}}}]}}"#,
        config.len(),
        blob.len()
    );
    let mut manifests = HashMap::new();
    manifests.insert("t/m:x".to_string(), manifest.into_bytes());
    let hostile = r#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:../../../../tmp/evil","size":1},"layers":[]}"#;
    manifests.insert("t/m:evil".to_string(), hostile.as_bytes().to_vec());
    let mut blobs = HashMap::new();
    blobs.insert(digest.to_string(), blob.clone());
    blobs.insert(config_digest.to_string(), config);
    let server = FaultServer::start(manifests, blobs);
    let name = Name::parse(&format!("127.0.0.1:{}/t/m:x", server.port)).unwrap();
    Fixture {
        server,
        blob,
        digest,
        config_digest,
        name,
        dir: tempdir(tag),
    }
}

fn opts() -> Options {
    Options {
        retries: 4,
        backoff: Duration::from_millis(10),
        stall_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(5),
        min_part_size: 256 << 10,
        max_part_size: 256 << 10,
        max_parallel: 4,
        ..Options::default()
    }
}

fn client(dir: &Path, o: Options) -> Client {
    Client::new(Store::at(dir), o, Box::new(Silent))
}

/// Every file under a directory (relative paths, sorted), with its size.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, u64)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn assert_pulled(fx: &Fixture) {
    let s = Store::at(&fx.dir);
    assert_eq!(
        std::fs::read(s.model_path(&fx.name).unwrap()).unwrap(),
        fx.blob
    );
    assert!(s.has_blob(&fx.config_digest));
    let leftovers: Vec<_> = files(&fx.dir)
        .into_iter()
        .filter(|(f, _)| f.contains("partial") || f.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "left over: {leftovers:?}");
}

#[test]
fn plain_pull_then_nothing_new() {
    let fx = fixture("plain", 1 << 20);
    client(&fx.dir, opts()).pull(&fx.name).unwrap();
    assert_pulled(&fx);
    let first = fx.server.served();
    assert!(first >= fx.blob.len() as u64);
    client(&fx.dir, opts()).pull(&fx.name).unwrap();
    assert_eq!(
        fx.server.served(),
        first,
        "a second pull downloaded blob bytes"
    );
    let l = Store::at(&fx.dir).list().unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name, fx.name);
}

#[test]
fn dropped_connection_resumes_within_the_process() {
    let fx = fixture("drop", 1 << 20);
    fx.server.set(|f| {
        f.drop_after = 100_000;
        f.drop_count = 3;
    });
    client(&fx.dir, opts()).pull(&fx.name).unwrap();
    assert_pulled(&fx);
    let served = fx.server.served();
    let total = (fx.blob.len() + 60) as u64;
    assert!(
        served <= total + 100,
        "served {served} of {total}: refetched data"
    );
}

#[test]
fn resume_across_a_restart() {
    let fx = fixture("restart", 1 << 20);
    // One part; the connection drops after 600 kB and this client gives up at once.
    let one_part = Options {
        min_part_size: 4 << 20,
        max_part_size: 4 << 20,
        retries: 0,
        ..opts()
    };
    fx.server.set(|f| {
        f.drop_after = 600_000;
        f.drop_count = 1;
    });
    let e = client(&fx.dir, one_part.clone())
        .pull(&fx.name)
        .unwrap_err();
    assert!(matches!(e, RegistryError::Network(_)), "{e}");
    assert!(
        Store::at(&fx.dir).resolve(&fx.name).is_err(),
        "manifest written"
    );
    let before = fx.server.served();
    // A new client (as after a process restart) fetches only the rest.
    client(&fx.dir, one_part).pull(&fx.name).unwrap();
    assert_pulled(&fx);
    let again = fx.server.served() - before;
    eprintln!(
        "resume: first run {before} bytes, second run {again} bytes, blob {}",
        fx.blob.len()
    );
    assert!(again < fx.blob.len() as u64 - 500_000, "refetched {again}");
}

#[test]
fn server_errors_and_rate_limits_are_retried() {
    let fx = fixture("500", 300 << 10);
    fx.server.set(|f| {
        f.fail_500 = 2;
        f.fail_429 = 1;
    });
    let t = Instant::now();
    client(&fx.dir, opts()).pull(&fx.name).unwrap();
    assert_pulled(&fx);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "Retry-After ignored"
    );
}

#[test]
fn too_many_server_errors_fail() {
    let fx = fixture("500s", 100 << 10);
    fx.server.set(|f| f.fail_500 = 100);
    let e = client(&fx.dir, opts()).pull(&fx.name).unwrap_err();
    assert!(e.to_string().starts_with("500:"), "{e}");
    assert!(Store::at(&fx.dir).resolve(&fx.name).is_err());
}

#[test]
fn stalls_are_retried() {
    let fx = fixture("stall", 600 << 10);
    fx.server.set(|f| f.stall = 2);
    let t = Instant::now();
    client(&fx.dir, opts()).pull(&fx.name).unwrap();
    assert_pulled(&fx);
    assert!(t.elapsed() < Duration::from_secs(3), "stall not detected");
}

#[test]
fn a_wrong_byte_is_refused() {
    let fx = fixture("corrupt", 300 << 10);
    fx.server.set(|f| f.corrupt = true);
    let e = client(&fx.dir, opts()).pull(&fx.name).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "digest mismatch, file must be downloaded again: want {}, got sha256:",
            fx.config_digest
        )) || msg.starts_with(&format!(
            "digest mismatch, file must be downloaded again: want {}, got sha256:",
            fx.digest
        )),
        "{msg}"
    );
    let left: Vec<_> = files(&fx.dir)
        .into_iter()
        .filter(|(f, _)| !f.ends_with(".gc.lock"))
        .collect();
    // Nothing committed for the corrupted blob, no partial data, no manifest.
    assert!(
        left.iter()
            .all(|(f, _)| !f.contains("partial") && !f.starts_with("manifests")),
        "{left:?}"
    );
    assert!(!Store::at(&fx.dir).has_blob(&fx.digest));
}

#[test]
fn bearer_auth_and_redirect_to_another_host() {
    let fx = fixture("auth", 600 << 10);
    fx.server.set(|f| {
        f.auth = true;
        f.redirect = true;
    });
    client(&fx.dir, opts()).pull(&fx.name).unwrap();
    assert_pulled(&fx);
    let log = fx.server.log.lock().unwrap().clone();
    assert!(log.iter().any(|l| l.starts_with("GET /token")), "{log:?}");
    assert!(log
        .iter()
        .any(|l| l.contains("/manifests/") && l.ends_with("Bearer tok123")));
    // The CDN host got the Range requests, and no credentials.
    let cdn: Vec<_> = log.iter().filter(|l| l.contains(" /cdn/")).collect();
    assert!(!cdn.is_empty(), "{log:?}");
    assert!(cdn.iter().all(|l| l.ends_with(" -")), "{cdn:?}");
}

#[test]
fn missing_model_uses_ollamas_words() {
    let fx = fixture("missing", 1000);
    let n = Name::parse(&format!("127.0.0.1:{}/t/m:nope", fx.server.port)).unwrap();
    let e = client(&fx.dir, opts()).pull(&n).unwrap_err();
    assert_eq!(e.to_string(), "pull model manifest: file does not exist");
}

#[test]
fn hostile_digest_in_a_remote_manifest_is_refused() {
    let fx = fixture("evil", 1000);
    let n = Name::parse(&format!("127.0.0.1:{}/t/m:evil", fx.server.port)).unwrap();
    let e = client(&fx.dir, opts()).pull(&n).unwrap_err();
    assert!(e.to_string().contains("invalid digest format"), "{e}");
    assert!(files(&fx.dir).is_empty(), "{:?}", files(&fx.dir));
}

#[test]
fn hostile_names_never_touch_the_file_system() {
    let dir = tempdir("hostile").join("store");
    for s in [
        "../../etc/passwd",
        "/abs/path:tag",
        "a/../../b",
        "m:../../t",
        "h/n/m/x",
        "a\0b",
        "a\\..\\b",
        "ns.x/model",
        "",
        ":tag",
    ] {
        assert!(Name::parse(s).is_err(), "{s:?} accepted");
        if s.contains('\0') {
            continue; // not passable as a process argument
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["rm", s])
            .env("HEARTH_MODELS", &dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid model name"), "{s:?}: {err}");
    }
    for d in [
        "sha256:../../../../../../etc/passwd",
        &format!("sha256:{}", "A".repeat(64)),
        &format!("sha256:{}", "a".repeat(65)),
        &format!("sha512:{}", "a".repeat(64)),
    ] {
        assert!(Digest::parse(d).is_err(), "{d}");
    }
    assert!(!dir.exists(), "the store was touched");
}

/// The store on a full tmpfs: a clear error, and the store exactly as it was.
#[test]
fn full_disk() {
    let fx = fixture("enospc", 12 << 20);
    let small = fixture("enospc-small", 100 << 10);
    let mnt = tempdir("enospc-mnt");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("NOTE: full_disk was NOT run: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    // Something already in the store, which must survive untouched.
    client(&mnt, opts()).pull(&small.name).unwrap();
    let before = files(&mnt);
    let e = client(&mnt, opts()).pull(&fx.name).unwrap_err();
    assert!(
        matches!(e, RegistryError::Store(StoreError::NoSpace(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("no space left"), "{e}");
    assert_eq!(files(&mnt), before);
    assert!(Store::at(&mnt).resolve(&fx.name).is_err());
}
