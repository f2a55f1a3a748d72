//! A `hearth serve` process for a test: its own store (with the named test models created
//! in it), port 0 on loopback, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Qwen2.5-Coder-0.5B-Instruct test model.
pub const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub store: PathBuf,
    /// Everything the server wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
    _dir: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "hearth-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn hearth() -> &'static str {
    env!("CARGO_BIN_EXE_hearth")
}

/// Creates `name` in `store` from a GGUF file with extra Modelfile lines.
pub fn create_model(store: &Path, name: &str, gguf: &Path, extra: &str) {
    let mf = store.join(format!("Modelfile.{}", name.replace([':', '/'], "_")));
    std::fs::write(&mf, format!("FROM {}\n{extra}", gguf.display())).unwrap();
    let out = Command::new(hearth())
        .args(["create", name, "-f"])
        .arg(&mf)
        .env("HEARTH_MODELS", store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth create {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// Starts a server whose store holds `models` (store name, test model file name)
    /// with `env` set (e.g. `HEARTH_NUM_PARALLEL`).
    pub fn start(models: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("serve");
        let store = dir.0.join("models");
        std::fs::create_dir_all(&store).unwrap();
        for (name, file) in models {
            create_model(&store, name, &super::test_model(file), "");
        }
        Server::start_in(dir, store, env)
    }

    /// Starts a server with `hearth serve ARGS` (e.g. `--mlock`).
    pub fn start_with_args(models: &[(&str, &str)], args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("serve");
        let store = dir.0.join("models");
        std::fs::create_dir_all(&store).unwrap();
        for (name, file) in models {
            create_model(&store, name, &super::test_model(file), "");
        }
        Server::spawn(dir, store, args, env)
    }

    /// Starts a server over an existing store.
    pub fn start_in(dir: TempDir, store: PathBuf, env: &[(&str, &str)]) -> Server {
        Server::spawn(dir, store, &[], env)
    }

    fn spawn(dir: TempDir, store: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(hearth());
        cmd.arg("serve")
            .args(args)
            .env("HEARTH_HOST", "127.0.0.1:0")
            .env("HEARTH_MODELS", &store)
            .env("HEARTH_HOME", &dir.0)
            .env_remove("OLLAMA_HOST")
            // The exposure settings of whoever runs the tests stay out of them.
            .env_remove("HEARTH_ORIGINS")
            .env_remove("OLLAMA_ORIGINS")
            .env_remove("HEARTH_API_KEY")
            .env_remove("HEARTH_API_KEY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start hearth serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("hearth serve did not say where it listens");
        Server {
            child,
            url: format!("http://{addr}"),
            store,
            log,
            _dir: dir,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port`
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until the server's log holds `text`: a request's log line is
    /// written after its response, and read from the server's stderr by another thread.
    pub fn log_contains(&self, text: &str) -> bool {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// POSTs JSON; returns (status, body).
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        request(
            ureq::post(&format!("{}{path}", self.url)).set("Content-Type", "application/json"),
            Some(body),
        )
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        request(ureq::get(&format!("{}{path}", self.url)), None)
    }

    /// POSTs JSON and reads the NDJSON stream, calling `f(i, object, elapsed)` per line
    /// until it returns false (then the connection is dropped).
    pub fn stream_lines(
        &self,
        path: &str,
        body: &serde_json::Value,
        mut f: impl FnMut(usize, &serde_json::Value, Duration) -> bool,
    ) {
        let t0 = std::time::Instant::now();
        let resp = ureq::post(&format!("{}{path}", self.url))
            .timeout(Duration::from_secs(300))
            .send_string(&body.to_string())
            .unwrap();
        for (i, line) in BufReader::new(resp.into_reader()).lines().enumerate() {
            let line = line.unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if !f(i, &v, t0.elapsed()) {
                return;
            }
        }
    }

    /// The value of a metric line `name` (exact, labels included) in `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

fn request(req: ureq::Request, body: Option<&str>) -> (u16, String) {
    let req = req.timeout(Duration::from_secs(300));
    let r = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
        Err(e) => panic!("request failed: {e}"),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with the official clients (`scripts/python-env`, exported by scripts/test as
/// `HEARTH_TEST_PYTHON`). Panics, failing the test, when it is not set.
pub fn python() -> String {
    std::env::var("HEARTH_TEST_PYTHON").expect(
        "HEARTH_TEST_PYTHON is not set: run the tests with scripts/test, which makes the \
         virtual environment with the ollama, openai and anthropic clients",
    )
}

/// Runs `tests/clients/<script>` with the server's URL as its first argument and `args`
/// after; panics with its output unless it exits 0. Returns its stdout.
pub fn run_client(server: &Server, script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = Command::new(python())
        .arg(&path)
        .arg(&server.url)
        .args(args)
        .output()
        .expect("cannot run the Python client script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    stdout
}

/// `hearth run` greedy output of `prompt` with `num_predict` tokens: `--raw` sends the
/// prompt as it is, else the model's chat template is applied over one user message.
pub fn run_greedy(gguf: &Path, prompt: &str, num_predict: usize, raw: bool) -> String {
    let mut cmd = Command::new(hearth());
    cmd.arg("run");
    if raw {
        cmd.arg("--raw");
    }
    let out = cmd
        .args(["-o", "temperature=0", "-o"])
        .arg(format!("num_predict={num_predict}"))
        .arg(gguf)
        .arg(prompt)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `hearth run --raw` greedy output.
pub fn run_raw_greedy(gguf: &Path, prompt: &str, num_predict: usize) -> String {
    run_greedy(gguf, prompt, num_predict, true)
}

/// `hearth run` greedy output, the chat template applied.
pub fn run_chat_greedy(gguf: &Path, prompt: &str, num_predict: usize) -> String {
    run_greedy(gguf, prompt, num_predict, false)
}
