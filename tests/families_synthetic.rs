//! The families beyond llama, qwen2 and gemma3 (`qwen3`, `qwen3moe`, `phi3`, `gemma2`,
//! `granite`, `granitemoe`) on their synthetic models (`tests/common/families.rs`),
//! against llama.cpp's logits on the same files (`tests/data/<arch>-synthetic.json`, made
//! by `scripts/gen-family-reference`).
//!
//! - Teacher forcing: each reference sequence goes through in one step with logits at
//!   every position; llama.cpp's top-10 logits are compared, and the argmax must equal
//!   llama.cpp's wherever its top-1 margin is at least 1.0, and at 90% of all positions.
//!   F16 and Q8_0 files are written by the generator (its Q8_0 bytes equal
//!   llama-quantize's, checked by the reference script and here by hash); Q4_K_M files are
//!   made by llama-quantize itself (`scripts/build-llamacpp --quantize`), its output
//!   checked against the reference file's hash.
//! - Batch invariance: a token's logits alone, in a prompt and beside other sequences are
//!   bit-identical, for every family (the mixture of experts included).
//! - Broken files: a required tensor missing or of the wrong shape, or a required key
//!   missing, is a clear error naming it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::families::{self as fam, Edit, Family, Spec, Variant};
use hearth::engine::{Engine, EngineOptions, Logits, StepInput};
use hearth::gguf::GgufFile;
use hearth::model::Model;
use serde_json::Value as Json;

fn reference(f: Family) -> Json {
    common::reference(&format!("{}-synthetic.json", f.arch()))
}

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn load(bytes: Vec<u8>) -> Model {
    Model::load(Arc::new(GgufFile::from_bytes(bytes).expect("parse"))).expect("bind")
}

/// The generator's file of `variant`, in memory (placeholder vocabulary: same tensors).
fn generated(f: Family, variant: Variant) -> Vec<u8> {
    fam::build(&Spec::test(f), variant, fam::placeholder())
}

/// sha256 of a GGUF image's tensor data section.
fn data_sha256(bytes: &[u8]) -> String {
    let f = GgufFile::from_bytes(bytes.to_vec()).expect("parse");
    common::sha256_hex(&bytes[f.data_offset() as usize..])
}

/// llama-quantize built by `scripts/build-llamacpp --quantize` (or `$HEARTH_LLAMA_QUANTIZE`).
/// Panics, failing the test, with the command that builds it when it is missing.
fn llama_quantize() -> PathBuf {
    let p = match std::env::var_os("HEARTH_LLAMA_QUANTIZE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/peer/quantize-build/bin/llama-quantize"),
    };
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-llamacpp --quantize (or set HEARTH_LLAMA_QUANTIZE)",
        p.display()
    );
    p
}

/// The Q4_K_M file llama-quantize makes from the F32 master (with the SmolLM2 vocabulary,
/// as the reference's), checked against the reference's hash.
fn q4_k_m(f: Family, r: &Json) -> Vec<u8> {
    let dir = common::server::TempDir::new(&format!("q4km-{}", f.arch()));
    let master = dir.0.join("master.gguf");
    let out = dir.0.join("q4_k_m.gguf");
    let tok = fam::tokenizer_from_gguf(&common::test_model(common::SMOLLM2)).expect("tokenizer");
    std::fs::write(&master, fam::build(&Spec::test(f), Variant::F32, tok)).expect("write");
    let status = Command::new(llama_quantize())
        .args([&master, &out])
        .args(["Q4_K_M", "2"])
        .output()
        .expect("run llama-quantize");
    assert!(
        status.status.success(),
        "llama-quantize failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let bytes = std::fs::read(&out).expect("read");
    let want = r["files"]["q4_k_m"]["data_sha256"].as_str().unwrap();
    assert_eq!(
        data_sha256(&bytes),
        want,
        "{}: llama-quantize made other Q4_K_M bytes than the reference's (another llama.cpp version or build flags?)",
        f.arch()
    );
    bytes
}

/// Teacher-forced logits of `model` against llama.cpp's for `variant` at every context
/// size the reference has. Returns (positions, |difference| over the listed top entries).
fn teacher_forced(f: Family, model_bytes: Vec<u8>, variant: &str, r: &Json) -> (usize, Vec<f64>) {
    let name = format!("{} {variant}", f.arch());
    let by_ctx = r["references"][variant]
        .as_object()
        .unwrap_or_else(|| panic!("{name}: no reference"));
    let (mut diffs, mut positions, mut agree) = (Vec::new(), 0usize, 0usize);
    for (ctx, seqs) in by_ctx {
        let num_ctx: usize = ctx.parse().unwrap();
        let mut e = Engine::new(
            load(model_bytes.clone()),
            EngineOptions {
                num_ctx,
                ..Default::default()
            },
        );
        for sref in seqs.as_array().unwrap() {
            let ids = common::ids(&sref["input_ids"]);
            let seq = e.add_sequence();
            e.step(&[StepInput {
                seq,
                tokens: &ids,
                logits: Logits::All,
            }])
            .unwrap();
            for (i, pos) in sref["positions"].as_array().unwrap().iter().enumerate() {
                let logits = e.logits(i);
                let top = pos["top10"].as_array().unwrap();
                for item in top {
                    let id = item[0].as_u64().unwrap() as usize;
                    diffs.push((logits[id] as f64 - item[1].as_f64().unwrap()).abs());
                }
                let want = top[0][0].as_u64().unwrap() as u32;
                let margin = pos["margin"].as_f64().unwrap();
                let got = argmax(logits);
                assert!(
                    got == want || margin < 1.0,
                    "{name} n_ctx {num_ctx} seq {} position {i}: argmax {got}, llama.cpp {want} with margin {margin}",
                    sref["seq"]
                );
                agree += usize::from(got == want);
                positions += 1;
            }
            e.remove_sequence(seq);
        }
    }
    let share = agree as f64 / positions as f64;
    let max = diffs.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "{name}: {positions} positions, argmax agrees at {:.1}%; |hearth - llama.cpp| over the top 10: median {:.4}, max {:.4}",
        100.0 * share,
        median(diffs.clone()),
        max
    );
    assert!(
        share >= 0.9,
        "{name}: argmax agrees at only {share:.3} of positions"
    );
    (positions, diffs)
}

/// How far llama.cpp's own logits for `variant` are from its logits for the F16 file
/// (median and maximum over the top-10 ids both list): the noise of quantization, the
/// yardstick for hearth's differences from llama.cpp on the same file.
fn llama_cpp_spread(r: &Json, variant: &str) -> (f64, f64) {
    let mut d = Vec::new();
    let refs = &r["references"];
    for (ctx, seqs) in refs["f16"].as_object().unwrap() {
        let other = refs[variant][ctx].as_array().unwrap();
        for (a, b) in seqs.as_array().unwrap().iter().zip(other) {
            let (pa, pb) = (
                a["positions"].as_array().unwrap(),
                b["positions"].as_array().unwrap(),
            );
            for (x, y) in pa.iter().zip(pb) {
                for i in x["top10"].as_array().unwrap() {
                    let j = y["top10"].as_array().unwrap().iter().find(|j| j[0] == i[0]);
                    if let Some(j) = j {
                        d.push((i[1].as_f64().unwrap() - j[1].as_f64().unwrap()).abs());
                    }
                }
            }
        }
    }
    (median(d.clone()), d.iter().cloned().fold(0.0, f64::max))
}

/// Every family and quantization against llama.cpp. Bounds on the logit differences:
/// F16: median 0.05, max 0.5 (llama.cpp rounds activations to f16 for F16 weights, hearth
/// keeps f32). Quantized files: both sides quantize activations to 8 bits, and any
/// difference upstream flips some roundings, so hearth's distance from llama.cpp on the
/// same file is held to llama.cpp's own spread between its Q8_0 and F16 logits (median
/// at most that spread's, max at most 1.5 times its); for Q4_K_M, whose 4-bit weights
/// move llama.cpp's logits much further from F16, to half of that spread's median.
fn check_family(f: Family) {
    let r = reference(f);
    let q8 = llama_cpp_spread(&r, "q8_0");
    let q4 = llama_cpp_spread(&r, "q4_k_m");
    let cases = [
        ("f16", generated(f, Variant::F16), (0.05, 0.5)),
        ("q8_0", generated(f, Variant::Q8_0), (q8.0, 1.5 * q8.1)),
        ("q4_k_m", q4_k_m(f, &r), (0.5 * q4.0, q4.1)),
    ];
    for (variant, bytes, (med, max)) in cases {
        if variant == "q8_0" {
            // The generator's Q8_0 tensors are llama-quantize's (the script compared them).
            assert_eq!(
                data_sha256(&bytes),
                r["files"]["q8_0"]["data_sha256"].as_str().unwrap(),
                "{}: the generator's Q8_0 data changed",
                f.arch()
            );
        }
        let (_, d) = teacher_forced(f, bytes, variant, &r);
        let got = (median(d.clone()), d.iter().cloned().fold(0.0, f64::max));
        eprintln!(
            "{} {variant}: bounds median {med:.4}, max {max:.4} (llama.cpp's own spread from F16: Q8_0 {:.4}/{:.4}, Q4_K_M {:.4}/{:.4})",
            f.arch(),
            q8.0,
            q8.1,
            q4.0,
            q4.1
        );
        assert!(
            got.0 <= med && got.1 <= max,
            "{} {variant}: |hearth - llama.cpp| median {:.4} max {:.4} (bounds {med:.4}, {max:.4})",
            f.arch(),
            got.0,
            got.1
        );
    }
}

#[test]
fn qwen3_matches_llama_cpp() {
    check_family(Family::Qwen3);
}

#[test]
fn qwen3moe_matches_llama_cpp() {
    check_family(Family::Qwen3Moe);
}

#[test]
fn phi3_matches_llama_cpp() {
    check_family(Family::Phi3);
}

#[test]
fn gemma2_matches_llama_cpp() {
    check_family(Family::Gemma2);
}

#[test]
fn granite_matches_llama_cpp() {
    check_family(Family::Granite);
}

#[test]
fn granitemoe_matches_llama_cpp() {
    check_family(Family::GraniteMoe);
}

/// A prompt fed token by token, in one batch, and beside another sequence in the same
/// step, gives bit-identical logits, for every family.
#[test]
fn batching_does_not_change_results() {
    let prompt = fam_prompt();
    for f in Family::ALL {
        let mut e = Engine::new(load(generated(f, Variant::Q8_0)), EngineOptions::default());
        common::assert_batch_invariant(&mut e, &prompt, 3..9, &format!("{f:?}"));
    }
}

/// 20 tokens (past Gemma 2's window of 8), from the reference sequence formula.
fn fam_prompt() -> Vec<u32> {
    common::qwen2_synthetic::reference_sequence(7, 20)
}

/// Broken files fail to load with an error that names what is wrong; nothing panics.
#[test]
fn broken_files_are_named() {
    let cases: [(Family, Edit, &str); 10] = [
        (
            Family::Qwen3,
            Edit {
                drop_tensor: Some("blk.1.attn_k_norm.weight"),
                ..Default::default()
            },
            "blk.1.attn_k_norm.weight",
        ),
        (
            Family::Qwen3Moe,
            Edit {
                drop_tensor: Some("blk.2.ffn_down_exps.weight"),
                ..Default::default()
            },
            "blk.2.ffn_down_exps.weight",
        ),
        (
            Family::Qwen3Moe,
            Edit {
                reshape: Some(("blk.0.ffn_up_exps.weight", vec![256, 256, 7])),
                ..Default::default()
            },
            "blk.0.ffn_up_exps.weight",
        ),
        (
            Family::Qwen3Moe,
            Edit {
                drop_key: Some("expert_used_count"),
                ..Default::default()
            },
            "qwen3moe.expert_used_count",
        ),
        (
            Family::Phi3,
            Edit {
                reshape: Some(("blk.0.attn_qkv.weight", vec![256, 256])),
                ..Default::default()
            },
            "blk.0.attn_qkv.weight",
        ),
        (
            Family::Phi3,
            Edit {
                drop_tensor: Some("rope_factors_short.weight"),
                ..Default::default()
            },
            "rope_factors_short.weight",
        ),
        (
            Family::Gemma2,
            Edit {
                drop_tensor: Some("blk.0.post_ffw_norm.weight"),
                ..Default::default()
            },
            "blk.0.post_ffw_norm.weight",
        ),
        (
            Family::GraniteMoe,
            Edit {
                drop_tensor: Some("blk.1.ffn_up_shexp.weight"),
                ..Default::default()
            },
            "blk.1.ffn_up_shexp.weight",
        ),
        (
            Family::Granite,
            Edit {
                drop_key: Some("logit_scale"),
                ..Default::default()
            },
            "granite.logit_scale",
        ),
        (
            Family::Granite,
            Edit {
                reshape: Some(("blk.2.ffn_up.weight", vec![256, 512])),
                ..Default::default()
            },
            "blk.2.ffn_up.weight",
        ),
    ];
    for (f, edit, name) in cases {
        let (bytes, _) =
            fam::writer_edited(&Spec::test(f), Variant::Q8_0, fam::placeholder(), &edit).build();
        let file = GgufFile::from_bytes(bytes).expect("the container itself is valid");
        match Model::load(Arc::new(file)) {
            Ok(_) => panic!("{f:?}: a broken file ({name}) loaded"),
            Err(e) => assert!(
                e.to_string().contains(name),
                "{f:?}: {e} does not name {name}"
            ),
        }
    }
}

/// Phi-3's rope factors follow the context size: the long ones above the original
/// context (1024), so the same tokens give other logits at n_ctx 2048 than at 512.
#[test]
fn phi3_long_factors_follow_the_context_size() {
    let bytes = generated(Family::Phi3, Variant::Q8_0);
    let run = |num_ctx| {
        let mut e = Engine::new(
            load(bytes.clone()),
            EngineOptions {
                num_ctx,
                ..Default::default()
            },
        );
        let s = e.add_sequence();
        let p = fam_prompt();
        e.step(&[StepInput {
            seq: s,
            tokens: &p,
            logits: Logits::Last,
        }])
        .unwrap();
        e.logits(0).to_vec()
    };
    let (short, short2, long) = (run(512), run(1024), run(2048));
    assert_eq!(
        short, short2,
        "up to the original context the short factors apply"
    );
    assert_ne!(short, long);
}
