//! The WordPiece (BERT) tokenizer against llama.cpp's token ids for nomic-embed-text-v1.5
//! (`tests/data/wordpiece-nomic.json`, made by scripts/gen-wordpiece-reference with the peer
//! llama.cpp's llama-tokenize).

mod common;

use std::sync::OnceLock;

use hearth::gguf::GgufFile;
use hearth::tokenizer::Tokenizer;
use serde_json::Value;

fn nomic() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let f = GgufFile::open(&common::test_model(common::NOMIC)).expect("open gguf");
        Tokenizer::from_gguf(&f).expect("tokenizer")
    })
}

fn reference() -> Value {
    let s =
        std::fs::read_to_string(common::data_file("wordpiece-nomic.json")).expect("reference json");
    serde_json::from_str(&s).expect("json")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("id")).expect("u32 id"))
        .collect()
}

#[test]
fn metadata_as_llama_cpp_reads_it() {
    let t = nomic();
    assert_eq!(t.model_name(), "bert");
    assert_eq!(t.vocab_size(), 30522);
    // [CLS] is BOS, [SEP] the separator (tokenizer.ggml.seperator_token_id), appended.
    assert_eq!(t.bos(), Some(101));
    assert_eq!(t.sep(), Some(102));
    assert!(t.add_bos());
    assert!(t.add_sep());
    assert!(!t.add_eos());
    assert_eq!(t.special_ids().unk, Some(100));
    let n = t.wordpiece_normalizer().expect("a WordPiece vocabulary");
    assert!(n.lowercase && n.strip_accents);
}

#[test]
fn ids_match_llama_cpp() {
    let t = nomic();
    let r = reference();
    let entries = r["tokenizer"].as_array().expect("tokenizer entries");
    assert!(
        entries.len() >= 25,
        "only {} reference strings",
        entries.len()
    );
    let mut failures = Vec::new();
    for e in entries {
        let text = e["text"].as_str().expect("text");
        let modes = [
            ("ids_default", true, true),
            ("ids_no_bos", false, true),
            ("ids_no_parse_special", true, false),
        ];
        for (key, add_special, parse_special) in modes {
            let want = ids(&e[key]);
            let got = t.encode(text, add_special, parse_special);
            if got != want {
                failures.push(format!("{text:?} {key}: got {got:?} want {want:?}"));
            }
        }
        let want_default = ids(&e["ids_default"]);
        assert_eq!(want_default.first(), Some(&101), "{text:?}: [CLS] first");
        assert_eq!(want_default.last(), Some(&102), "{text:?}: [SEP] last");
        let pieces = e["pieces_default"].as_array().expect("pieces");
        for (id, piece) in want_default.iter().zip(pieces) {
            let want = piece.as_str().expect("piece").as_bytes();
            let got = t.token_piece(*id).expect("piece");
            if got.as_ref() != want {
                failures.push(format!(
                    "{text:?} piece of {id}: got {:?} want {:?}",
                    String::from_utf8_lossy(&got),
                    piece
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// llama.cpp detokenizes WordPiece ids by concatenating pieces ("▁" is a space, a
/// continuation glues to the word before it, [CLS]/[SEP] render as nothing) and keeps the
/// leading space (no space prefix to remove); for lower-case ASCII words with single spaces
/// its clean-up pass changes nothing.
#[test]
fn decode_round_trip() {
    let t = nomic();
    for s in [
        "hello world",
        "the quick brown fox jumps over the lazy dog",
        "antidisestablishmentarianism tokenization",
        "a",
    ] {
        let ids = t.encode(s, true, true);
        let text = t.decode(&ids).expect("decode");
        assert_eq!(String::from_utf8(text).unwrap(), format!(" {s}"), "{ids:?}");
    }
    // Lower-casing and accents are not undone.
    let ids = t.encode("Café", true, true);
    assert_eq!(t.decode(&ids).unwrap(), b" cafe");
    assert_eq!(t.decode_with(&ids, true).unwrap(), b"[CLS] cafe[SEP]");
}
