//! The memory formula of docs/deploy.md, which sizes deploy/kubernetes/hearth.yaml's
//! resource requests, is what the server itself plans a loaded model at (`/api/ps`
//! `size`), under the manifest's own `HEARTH_NUM_PARALLEL` and `HEARTH_CONTEXT_LENGTH`.

mod common;

use common::server::Server;

/// The value of `name` in the manifest's server container env (`- name: X` then
/// `value: "N"`).
fn manifest_env(manifest: &str, name: &str) -> u64 {
    let mut lines = manifest.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("- name: {name}") {
            let v = lines.next().unwrap().trim();
            let v = v.strip_prefix("value:").unwrap().trim().trim_matches('"');
            return v.parse().unwrap();
        }
    }
    panic!("{name} is not set in deploy/kubernetes/hearth.yaml")
}

#[test]
fn the_documented_formula_is_the_servers_estimate() {
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/hearth.yaml"),
    )
    .unwrap();
    let p = manifest_env(&manifest, "HEARTH_NUM_PARALLEL");
    let c = manifest_env(&manifest, "HEARTH_CONTEXT_LENGTH");
    let p_s = p.to_string();
    let c_s = c.to_string();
    let s = Server::start(
        &[("smol", common::SMOLLM2)],
        &[
            ("HEARTH_NUM_PARALLEL", &p_s),
            ("HEARTH_CONTEXT_LENGTH", &c_s),
        ],
    );
    let (status, body) = s.post(
        "/api/generate",
        r#"{"model":"smol","prompt":"Hi","stream":false,"options":{"num_predict":1}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (_, ps) = s.get("/api/ps");
    let ps: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let size = ps["models"][0]["size"].as_u64().unwrap();

    // The sizes, as docs/deploy.md says to find them: from `hearth show`.
    let gguf = common::test_model(common::SMOLLM2);
    let out = std::process::Command::new(common::server::hearth())
        .arg("show")
        .arg(&gguf)
        .output()
        .unwrap();
    assert!(out.status.success());
    let show = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| -> Vec<u64> {
        let line = show
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in hearth show:\n{show}"));
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect()
    };
    let n_layer = field("layers")[0];
    let n_embd = field("embedding length")[0];
    let heads = field("attention heads"); // "9 query, 3 key/value"
    let head_size = field("head size")[0];
    let n_ff = field("feed-forward length")[0];
    let n_rot = field("rope")[1]; // "normal, base 100000, 64 of 64 dims"
    let n_vocab = field("vocabulary")[0];
    let (q_dim, kv_dim) = (heads[0] * head_size, heads[1] * head_size);
    assert_eq!(
        (n_layer, n_embd, q_dim, kv_dim, n_ff, n_rot, n_vocab),
        (30, 576, 576, 192, 1536, 64, 49152),
        "SmolLM2-135M's sizes as hearth show prints them"
    );
    let weights = std::fs::metadata(&gguf).unwrap().len();
    let kv = 4 * n_layer * kv_dim * c * p;
    let buffers =
        4 * 512 * (2 * n_embd + 2 * q_dim.max(n_embd) + 2 * kv_dim + 2 * n_ff + 2 * n_rot)
            + 4 * n_vocab * p;
    assert_eq!(
        size,
        weights + kv + buffers,
        "/api/ps size vs docs/deploy.md's formula (weights {weights}, kv {kv}, buffers {buffers})"
    );
}
