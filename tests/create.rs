//! `hearth create` end to end: a Modelfile with a Go template, system message and
//! parameters imported into a temporary store, listed, run by name, shown and re-created.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory (the store lives in `store/` under it).
fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hearth-create-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn hearth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .current_dir(dir)
        .env("HEARTH_MODELS", dir.join("store"))
        .env("HEARTH_HOME", dir.join("home"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> (String, String) {
    let o = hearth(dir, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "hearth {args:?} failed:\n{err}");
    (out, err)
}

const CHATML: &str = r#"{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"#;

/// Writes a Modelfile importing SmolLM2 (copied next to it, FROM a relative path).
fn write_modelfile(dir: &Path) -> PathBuf {
    let gguf = common::test_model(common::SMOLLM2);
    std::os::unix::fs::symlink(&gguf, dir.join("smol.gguf")).unwrap();
    let mf = dir.join("Modelfile");
    std::fs::write(
        &mf,
        format!(
            "FROM ./smol.gguf\nTEMPLATE \"\"\"{CHATML}\"\"\"\nSYSTEM You are a helpful assistant.\n\
             PARAMETER temperature 0\nPARAMETER stop <|im_end|>\nPARAMETER num_predict 8\n"
        ),
    )
    .unwrap();
    mf
}

fn manifest(dir: &Path, name: &str) -> serde_json::Value {
    let p = dir
        .join("store/manifests/registry.ollama.ai/library")
        .join(name)
        .join("latest");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn layer_digests(m: &serde_json::Value) -> Vec<(String, String)> {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn create_list_run_show_roundtrip() {
    let dir = temp_dir();
    write_modelfile(&dir);
    // The default -f is ./Modelfile.
    let (_, err) = ok(&dir, &["create", "smol"]);
    assert!(err.contains("parsing GGUF"), "{err}");
    assert!(err.contains("creating new layer sha256:"), "{err}");
    assert!(
        err.contains("writing manifest") && err.trim_end().ends_with("success"),
        "{err}"
    );

    let m = manifest(&dir, "smol");
    let types: Vec<String> = layer_digests(&m).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            "application/vnd.ollama.image.model",
            "application/vnd.ollama.image.template",
            "application/vnd.ollama.image.system",
            "application/vnd.ollama.image.params",
        ]
    );
    let cfg_digest = m["config"]["digest"].as_str().unwrap().replace(':', "-");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("store/blobs").join(cfg_digest)).unwrap())
            .unwrap();
    assert_eq!(cfg["model_format"], "gguf");
    assert_eq!(cfg["model_family"], "llama");
    assert_eq!(cfg["file_type"], "Q4_1");

    let (list, _) = ok(&dir, &["list"]);
    assert!(list.contains("smol:latest"), "{list}");

    let (a, _) = ok(&dir, &["run", "smol", "What is 2+2?"]);
    assert!(!a.trim().is_empty());
    let (b, _) = ok(&dir, &["run", "smol", "What is 2+2?"]);
    assert_eq!(a, b, "temperature 0 from the params layer");
    // num_predict 8 from the params layer; -o overrides it.
    let (_, stats) = ok(&dir, &["run", "--verbose", "smol", "Count from 1 to 50."]);
    let evals: usize = stats
        .lines()
        .find_map(|l| l.strip_prefix("eval count:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(evals <= 8, "{stats}");

    let (params, _) = ok(&dir, &["show", "smol", "--parameters"]);
    assert!(
        params.contains("stop") && params.contains("\"<|im_end|>\""),
        "{params}"
    );
    let (system, _) = ok(&dir, &["show", "smol", "--system"]);
    assert_eq!(system.trim(), "You are a helpful assistant.");
    let (template, _) = ok(&dir, &["show", "smol", "--template"]);
    assert_eq!(template.trim_end(), CHATML.trim_end());
    let (summary, _) = ok(&dir, &["show", "smol"]);
    assert!(
        summary.contains("  Parameters") && summary.contains("  System"),
        "{summary}"
    );

    // show --modelfile reads back into the same layers.
    let (mf, _) = ok(&dir, &["show", "smol", "--modelfile"]);
    assert!(
        mf.contains("FROM ") && mf.contains("/blobs/sha256-"),
        "{mf}"
    );
    std::fs::write(dir.join("Modelfile2"), mf).unwrap();
    let (_, err) = ok(&dir, &["create", "other", "-f", "Modelfile2"]);
    assert!(!err.contains("creating new layer"), "{err}");
    assert_eq!(
        layer_digests(&manifest(&dir, "other")),
        layer_digests(&manifest(&dir, "smol"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn from_name_and_reuse() {
    let dir = temp_dir();
    write_modelfile(&dir);
    ok(&dir, &["create", "base", "-f", "Modelfile"]);
    // Creating again reuses the model blob.
    let (_, err) = ok(&dir, &["create", "base2", "-f", "Modelfile"]);
    let model = &layer_digests(&manifest(&dir, "base"))[0].1;
    assert!(
        err.contains(&format!("using existing layer {model}")),
        "{err}"
    );

    // FROM an existing name keeps its layers; a new SYSTEM replaces the old one.
    std::fs::write(
        dir.join("Derived"),
        "FROM base\nSYSTEM Answer in one word.\nPARAMETER num_predict 4\n",
    )
    .unwrap();
    ok(&dir, &["create", "derived", "-f", "Derived"]);
    let base = layer_digests(&manifest(&dir, "base"));
    let derived = layer_digests(&manifest(&dir, "derived"));
    assert_eq!(derived[0], base[0]);
    assert_eq!(derived[1], base[1], "template kept");
    assert_ne!(derived[2], base[2], "system replaced");
    let (system, _) = ok(&dir, &["show", "derived", "--system"]);
    assert_eq!(system.trim(), "Answer in one word.");
    let (params, _) = ok(&dir, &["show", "derived", "--parameters"]);
    assert!(
        params.contains("num_predict                    4"),
        "{params}"
    );
    assert!(params.contains("temperature"), "merged: {params}");
    let (out, _) = ok(&dir, &["run", "derived", "Hi"]);
    assert!(!out.trim().is_empty());

    // Replacing a model drops the layers only the old version used.
    let old_system = derived[2].1.replace(':', "-");
    assert!(dir.join("store/blobs").join(&old_system).is_file());
    std::fs::write(dir.join("Derived"), "FROM base\nSYSTEM Be brief.\n").unwrap();
    ok(&dir, &["create", "derived", "-f", "Derived"]);
    assert!(!dir.join("store/blobs").join(&old_system).exists());
    assert!(dir
        .join("store/blobs")
        .join(base[0].1.replace(':', "-"))
        .is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn modelfile_errors() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("Bad"),
        "FROM x\n\nPARAMETER temperature 0\nBOGUS y\n",
    )
    .unwrap();
    let o = hearth(&dir, &["create", "bad", "-f", "Bad"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 4"), "{err}");

    std::fs::write(dir.join("Bad2"), "FROM ./missing.gguf\n").unwrap();
    let o = hearth(&dir, &["create", "bad", "-f", "Bad2"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing.gguf"), "{err}");

    std::fs::write(dir.join("Bad3"), "FROM nosuchmodel\n").unwrap();
    let o = hearth(&dir, &["create", "bad", "-f", "Bad3"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
