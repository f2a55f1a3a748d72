//! `HEARTH_MLOCK=1` or `--mlock` (on `serve`, `run` and `bench`): a loaded model's
//! weights are locked in memory (the server's `VmLck` covers the file), and a
//! locked-memory limit too low for them is one clear error that says the limit and
//! which limit to raise.

mod common;

use std::process::Command;

use common::server::{hearth, Server, TempDir};

/// A field of /proc/PID/status, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Loads SmolLM2 in a server started with `args` and `env`, checks that `VmLck` covers
/// the weights, unloads it and checks that they are unlocked.
fn server_locks_loaded_weights(args: &[&str], env: &[(&str, &str)]) {
    let s = Server::start_with_args(&[("smol", common::SMOLLM2)], args, env);
    assert_eq!(status_bytes(s.pid(), "VmLck:"), 0);
    let (status, body) = s.post(
        "/api/generate",
        r#"{"model":"smol","prompt":"Hi","stream":false,"options":{"num_predict":2}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let file = std::fs::metadata(common::test_model(common::SMOLLM2))
        .unwrap()
        .len();
    let locked = status_bytes(s.pid(), "VmLck:");
    assert!(locked >= file, "VmLck {locked} < file {file}");
    // Unloading unlocks (the mapping goes).
    let (status, _) = s.post("/api/generate", r#"{"model":"smol","keep_alive":0}"#);
    assert_eq!(status, 200);
    let t0 = std::time::Instant::now();
    while status_bytes(s.pid(), "VmLck:") != 0 {
        assert!(t0.elapsed().as_secs() < 30, "still locked after unload");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_server_locks_loaded_weights() {
    server_locks_loaded_weights(&[], &[("HEARTH_MLOCK", "1")]);
}

#[test]
fn serve_mlock_locks_loaded_weights() {
    // The flag alone, whatever the environment says.
    server_locks_loaded_weights(&["--mlock"], &[("HEARTH_MLOCK", "0")]);
}

#[test]
fn without_mlock_nothing_is_locked() {
    let s = Server::start(&[("smol", common::SMOLLM2)], &[("HEARTH_MLOCK", "0")]);
    let (status, body) = s.post(
        "/api/generate",
        r#"{"model":"smol","prompt":"Hi","stream":false,"options":{"num_predict":2}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_bytes(s.pid(), "VmLck:"), 0);
}

/// Runs `hearth COMMAND` (with `{model}` for the model's path) under a 64 KiB
/// locked-memory limit, as an unprivileged user, and checks the one-line error.
fn a_low_limit_is_one_clear_error(env: &str, command: &str) {
    // The model and a home where an unprivileged user can read them: root would pass
    // mlock whatever the limit (CAP_IPC_LOCK), so as root the command runs as nobody.
    let dir = TempDir::new("mlock");
    let model = dir.0.join("model.gguf");
    std::fs::copy(common::test_model(common::SMOLLM2), &model).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(&dir.0)
        .status()
        .unwrap();
    let root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        == "0";
    let command = command.replace("{model}", &format!("'{}'", model.display()));
    let script = format!(
        "ulimit -l 64 && {env} HEARTH_HOME='{}' exec '{}' {command}",
        dir.0.display(),
        hearth(),
    );
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ]);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c");
        c
    };
    let out = cmd.arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot lock the 94 MiB of model weights in memory")
            && stderr.contains("the limit is 64 KiB")
            && stderr.contains("ulimit -l")
            && stderr.contains("--mlock")
            && stderr.contains("HEARTH_MLOCK"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_low_limit_is_one_clear_error_with_the_variable() {
    a_low_limit_is_one_clear_error("HEARTH_MLOCK=1", "run -o num_predict=2 {model} hi");
}

#[test]
fn a_low_limit_is_one_clear_error_with_the_flag() {
    a_low_limit_is_one_clear_error("HEARTH_MLOCK=0", "run --mlock -o num_predict=2 {model} hi");
}

#[test]
fn bench_mlock_too() {
    a_low_limit_is_one_clear_error("HEARTH_MLOCK=0", "bench --mlock -p 0 -n 1 -r 1 {model}");
}
