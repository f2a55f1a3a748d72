//! What a user sees after the common mistakes: one line on stderr, `Error: ` and the
//! cause (and the fix where there is one), exit status 1, no Rust debug formatting, no
//! backtrace, no panic. Also `--version`, and the model names the completions offer.
//! Nothing here touches the network: the store is an empty temporary directory, the
//! server address a closed port, and the unreachable registry a `.invalid` host (a name
//! that never resolves, RFC 6761).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    host: String,
}

impl Env {
    fn new(tag: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("hearth-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("models")).unwrap();
        // A port nothing listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Env {
            dir,
            host: format!("127.0.0.1:{port}"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(args)
            .current_dir(&self.dir)
            .env("HEARTH_MODELS", self.dir.join("models"))
            .env("HEARTH_HOME", &self.dir)
            .env("HEARTH_HOST", &self.host)
            .env_remove("OLLAMA_MODELS")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn common_mistakes_are_one_line() {
    let env = Env::new("errors");
    let host = env.host.clone();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["show", "nosuch"],
            "Error: model \"nosuch\" not found, try: hearth pull nosuch".into(),
        ),
        (
            vec!["tokenize", "nosuch:7b", "hi"],
            "Error: model \"nosuch:7b\" not found, try: hearth pull nosuch:7b".into(),
        ),
        (
            vec!["cp", "nosuch", "other"],
            "Error: model \"nosuch\" not found, try: hearth pull nosuch".into(),
        ),
        (
            vec!["rm", "nosuch"],
            "Error: model \"nosuch\" not found, see: hearth list".into(),
        ),
        (
            vec!["push", "nosuch"],
            "Error: model \"nosuch\" not found, see: hearth list".into(),
        ),
        (
            vec!["show", "bad name"],
            "Error: invalid model name 'bad name': the model may not contain ' '".into(),
        ),
        (
            vec!["run", "-o", "foo", "missing.gguf", "hi"],
            "Error: option 'foo' is not KEY=VALUE, e.g. -o temperature=0".into(),
        ),
        (
            vec!["create", "m", "-f", "NoSuchModelfile"],
            "Error: cannot read NoSuchModelfile: No such file or directory".into(),
        ),
        (
            vec!["ps"],
            format!(
                "Error: could not connect to a hearth server at {host}, start one with: \
                 hearth serve (or set HEARTH_HOST to its address)"
            ),
        ),
        (
            vec!["stop", "nosuch"],
            format!(
                "Error: could not connect to a hearth server at {host}, start one with: \
                 hearth serve (or set HEARTH_HOST to its address)"
            ),
        ),
    ];
    for (args, want) in &cases {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        // "(os error 2)" and the like may follow the cause.
        assert!(
            err.starts_with(want.as_str()),
            "{args:?}:\n{err}\nwant {want}"
        );
        assert_one_clean_line(&err);
    }
    // A missing .gguf file, and an unreadable Modelfile (a directory).
    for (args, want) in [
        (
            &["run", "missing.gguf", "hi"][..],
            "Error: cannot load missing.gguf: ",
        ),
        (&["create", "m", "-f", "."][..], "Error: cannot read .: "),
    ] {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with(want), "{args:?}: {err}");
        assert_one_clean_line(&err);
    }
}

/// A registry that cannot be reached: the progress line, then the error line.
#[test]
fn unreachable_registry() {
    let env = Env::new("registry");
    let out = env.run(&["pull", "registry.invalid/library/x:latest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "Error: cannot resolve the registry host registry.invalid:443 (is the registry host \
         right, and is this machine online?)"
    );
    assert_one_clean_line(&format!("{last}\n"));
}

/// One line, and nothing of Rust's: no `{:?}` of a struct, no backtrace, no panic.
fn assert_one_clean_line(err: &str) {
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.ends_with('\n'), "{err:?}");
    for bad in [
        "panicked",
        "backtrace",
        "Caused by",
        "Os {",
        "kind:",
        "Error {",
        "RUST_",
    ] {
        assert!(!err.contains(bad), "{bad:?} in {err}");
    }
}

#[test]
fn version_names_the_kernel_set() {
    let env = Env::new("version");
    for flag in ["--version", "-V"] {
        let out = env.run(&[flag]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let want = format!("hearth {} (kernels: ", env!("CARGO_PKG_VERSION"));
        assert!(text.starts_with(&want), "{text}");
        let kernel = text[want.len()..].trim_end().trim_end_matches(')');
        assert!(
            hearth::quant::simd::Kernel::ALL
                .iter()
                .any(|k| k.name() == kernel),
            "{text}"
        );
    }
}

/// Writes a manifest the store lists (its blobs need not exist for that).
fn fake_model(models: &Path, rel: &str) {
    let path = models.join("manifests").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let digest = format!("sha256:{}", "0".repeat(64));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.ollama.image.model",
                    "digest": digest, "size": 2}],
    });
    std::fs::write(path, manifest.to_string()).unwrap();
}

/// `hearth __complete-models` prints the store's names, and the bash completion offers
/// them where a MODEL goes (and only there).
#[test]
fn model_names_complete() {
    let env = Env::new("complete");
    let models = env.dir.join("models");
    fake_model(&models, "registry.ollama.ai/library/qwen2.5/0.5b");
    fake_model(&models, "registry.ollama.ai/library/smollm2/latest");
    let out = env.run(&["__complete-models"]);
    assert!(out.status.success());
    let mut names: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["qwen2.5:0.5b", "smollm2:latest"]);

    // The bash script, sourced in a bash whose PATH finds this hearth first.
    if Command::new("bash").arg("-c").arg("true").output().is_err() {
        eprintln!("no bash: the bash completion is not exercised");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/hearth.bash");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_hearth")).parent().unwrap();
    let complete = |line: &str| -> String {
        let prog = format!(
            "source '{}'; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             read -ra COMP_WORDS <<< \"$COMP_LINE\"; [[ \"$COMP_LINE\" == *' ' ]] && COMP_WORDS+=(''); \
             COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _hearth_models hearth \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(prog)
            .env("PATH", path)
            .env("HEARTH_MODELS", &models)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("hearth run q"), "qwen2.5:0.5b");
    assert_eq!(complete("hearth run -o temperature=0 s"), "smollm2:latest");
    assert_eq!(complete("hearth rm qwen2.5:0.5b sm"), "smollm2:latest");
    // After a colon bash's word is what follows it.
    assert_eq!(complete("hearth show qwen2.5:0"), "0.5b");
    // The prompt of run, and pull's new names, are not models in the store.
    assert!(!complete("hearth run qwen2.5:0.5b s").contains("smollm2"));
    assert!(!complete("hearth pull s").contains("smollm2"));
}
