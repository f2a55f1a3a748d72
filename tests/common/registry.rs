//! Debian's `docker-registry` (CNCF distribution) on 127.0.0.1 with its storage in a
//! directory of the test's, stopped (and the directory removed) when dropped.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY: &str = "/usr/bin/docker-registry";

pub struct Registry {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a registry storing under `dir`; panics (failing the test, never skipping it)
/// when `docker-registry` is not installed or does not answer within 20 s.
pub fn start_registry(dir: PathBuf) -> Registry {
    assert!(
        Path::new(REGISTRY).exists(),
        "{REGISTRY} is missing: install it with `apt-get install -y docker-registry`"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let cfg = dir.join("config.yml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    write!(
        f,
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join("data").display()
    )
    .unwrap();
    let child = Command::new(REGISTRY)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let reg = Registry { child, port, dir };
    let t = Instant::now();
    loop {
        let ok = ureq::get(&format!("http://127.0.0.1:{port}/v2/"))
            .timeout(Duration::from_secs(1))
            .call()
            .is_ok();
        if ok {
            return reg;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "docker-registry did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
