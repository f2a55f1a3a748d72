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

    // SmolLM2-135M's metadata (`hearth show`): 30 layers, n_embd 576, 9 heads and 3 KV
    // heads of 64 (q_dim 576, kv_dim 192), n_ff 1536, n_rot 64, 49,152 tokens.
    let (n_layer, n_embd, q_dim, kv_dim, n_ff, n_rot, n_vocab) =
        (30u64, 576u64, 576u64, 192u64, 1536u64, 64u64, 49152u64);
    let weights = std::fs::metadata(common::test_model(common::SMOLLM2))
        .unwrap()
        .len();
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
