//! push → rm → pull against a real registry: Debian's `docker-registry` (CNCF
//! distribution) started on 127.0.0.1 with its storage in a temp dir, driving the
//! `hearth` binary with the SmolLM2 test model.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::registry::start_registry;

use hearth::store::manifest::{MEDIA_CONFIG, MEDIA_MODEL};
use hearth::store::{Layer, Manifest, Name, Store};

fn hearth(store: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("HEARTH_MODELS", store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn push_rm_pull_round_trip() {
    let gguf = common::test_model(common::SMOLLM2);
    let base = std::env::temp_dir().join(format!("hearth-roundtrip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let reg = start_registry(base.join("registry"));
    let store_dir = base.join("store");
    let store = Store::at(&store_dir);

    // What `create` would write: the GGUF blob, a config blob and a manifest.
    let (md, ms) = store.write_blob_from_file(&gguf).unwrap();
    let config = br#"{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"135M","file_type":"Q4_1","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (cd, cs) = store.write_blob_bytes(config).unwrap();
    let m = Manifest::new(
        Layer {
            media_type: MEDIA_CONFIG.into(),
            digest: cd.to_string(),
            size: cs,
            from: None,
        },
        vec![Layer {
            media_type: MEDIA_MODEL.into(),
            digest: md.to_string(),
            size: ms,
            from: None,
        }],
    );
    let name_s = format!("127.0.0.1:{}/test/smollm2:q4", reg.port);
    let name = Name::parse(&name_s).unwrap();
    store
        .write_manifest(&name, &serde_json::to_vec(&m).unwrap())
        .unwrap();

    let out = hearth(&store_dir, &["push", "--insecure", &name_s]);
    for s in [
        "retrieving manifest",
        &format!("pushing {}", md.short()),
        "pushing manifest",
        "success",
    ] {
        assert!(out.contains(s), "push output lacks {s:?}:\n{out}");
    }
    // A second push finds every blob there.
    hearth(&store_dir, &["push", "--insecure", &name_s]);

    let out = hearth(&store_dir, &["rm", &name_s]);
    assert!(out.contains(&format!("deleted '{name_s}'")), "{out}");
    assert!(!store.has_blob(&md), "rm left the blob");

    let t = Instant::now();
    let out = hearth(&store_dir, &["pull", "--insecure", &name_s]);
    let secs = t.elapsed().as_secs_f64();
    for s in [
        "pulling manifest",
        &format!("pulling {}", md.short()),
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ] {
        assert!(out.contains(s), "pull output lacks {s:?}:\n{out}");
    }
    eprintln!(
        "pull of {} bytes from docker-registry: {:.2} s, {:.0} MB/s",
        ms,
        secs,
        ms as f64 / secs / 1e6
    );
    assert_eq!(
        std::fs::read(store.model_path(&name).unwrap()).unwrap(),
        std::fs::read(&gguf).unwrap()
    );
    assert_eq!(std::fs::read(store.blob_path(&cd)).unwrap(), config);

    let out = hearth(&store_dir, &["list"]);
    let line = out.lines().nth(1).unwrap_or("");
    assert!(out.starts_with("NAME"), "{out}");
    assert!(line.starts_with(&name_s), "{out}");
    assert!(line.contains("ago"), "{out}");

    // show and cp by name.
    let out = hearth(&store_dir, &["show", &name_s]);
    assert!(out.contains("llama"), "{out}");
    hearth(&store_dir, &["cp", &name_s, "mine:copy"]);
    let out = hearth(&store_dir, &["ls"]);
    assert!(out.contains("mine:copy"), "{out}");
    let _ = std::fs::remove_dir_all(&base);
}
