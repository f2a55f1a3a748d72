//! The GPT-4o pre-tokenizer (`tokenizer.ggml.pre = "gpt-4o"`, Phi-4-mini's) against llama.cpp
//! (`tests/data/gpt4o-pretokenizer.json`, made by scripts/gen-gpt4o-reference with the peer
//! llama.cpp):
//! - its words: llama.cpp's own `unicode_regex_split` with the GPT4O regexes, for every
//!   string. The words show every boundary; with an English vocabulary many boundaries
//!   (between a non-ASCII letter and an ASCII one, say) change no token id;
//! - its token ids: llama-tokenize on the SmolLM2 vocabulary with only the pre-tokenizer name
//!   changed, here the same vocabulary with `pre` set in memory.

mod common;

use std::sync::OnceLock;

use hearth::gguf::GgufFile;
use hearth::tokenizer::{PreTokenizer, Tokenizer, TokenizerConfig};
use serde_json::Value;

const REFERENCE: &str = "gpt4o-pretokenizer.json";

fn config(pre: &str) -> TokenizerConfig {
    let f = GgufFile::open(&common::test_model(common::SMOLLM2)).expect("open gguf");
    let mut cfg = TokenizerConfig::from_gguf(&f).expect("tokenizer metadata");
    assert_eq!(cfg.pre.as_deref(), Some("smollm"));
    cfg.pre = Some(pre.to_string());
    cfg
}

fn gpt4o() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| Tokenizer::new(config("gpt-4o")).expect("tokenizer"))
}

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| common::reference(REFERENCE))
}

/// How hearth splits `text` into words, for failure messages.
fn words(text: &str) -> Vec<&str> {
    let mut v = Vec::new();
    PreTokenizer::Gpt4o.split(text, &mut v);
    v.into_iter().map(|r| &text[r]).collect()
}

/// hearth's words for an entry against llama.cpp's `words`.
fn check_words(e: &Value, failures: &mut Vec<String>) {
    let text = e["text"].as_str().expect("text");
    let want: Vec<&str> = e["words"]
        .as_array()
        .expect("words")
        .iter()
        .map(|w| w.as_str().expect("word"))
        .collect();
    let got = words(text);
    if got != want {
        failures.push(format!("{text:?} words: got {got:?} want {want:?}"));
    }
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn metadata() {
    let t = gpt4o();
    assert_eq!(t.pre_name(), Some("gpt-4o"));
    assert_eq!(t.model_name(), "gpt2");
    // Neither BOS nor EOS: SmolLM2's add_bos_token is false, and llama.cpp's gpt-4o sets none.
    assert!(!t.add_bos());
    assert!(!t.add_eos());
}

#[test]
fn ids_match_llama_cpp() {
    let t = gpt4o();
    let entries = reference()["tokenizer"]
        .as_array()
        .expect("tokenizer entries");
    assert!(
        entries.len() >= 40,
        "only {} reference strings",
        entries.len()
    );
    let mut failures = Vec::new();
    for e in entries {
        check_words(e, &mut failures);
        let text = e["text"].as_str().expect("text");
        let modes = [
            ("ids_default", true, true),
            ("ids_no_bos", false, true),
            ("ids_no_parse_special", true, false),
        ];
        for (key, add_special, parse_special) in modes {
            let want = common::ids(&e[key]);
            let got = t.encode(text, add_special, parse_special);
            if got != want {
                failures.push(format!(
                    "{text:?} {key}: got {got:?} want {want:?} (hearth's words {:?})",
                    words(text)
                ));
            }
        }
    }
    report(&failures);
    eprintln!("gpt-4o: {} strings match llama.cpp", entries.len());
}

#[test]
fn random_strings_match_llama_cpp() {
    let t = gpt4o();
    let entries = reference()["random"].as_array().expect("random entries");
    assert!(
        entries.len() >= 500,
        "only {} random strings",
        entries.len()
    );
    let mut failures = Vec::new();
    for e in entries {
        check_words(e, &mut failures);
        let text = e["text"].as_str().expect("text");
        let want = common::ids(&e["ids_no_bos"]);
        let got = t.encode(text, false, true);
        if got != want {
            failures.push(format!(
                "{text:?}: got {got:?} want {want:?} (hearth's words {:?})",
                words(text)
            ));
        }
    }
    report(&failures);
    eprintln!("gpt-4o: {} random strings match llama.cpp", entries.len());
}

/// The other `tokenizer.ggml.pre` names llama.cpp gives the same regex (the generator checked
/// that llama-tokenize gives them the same ids).
#[test]
fn aliases_tokenize_alike() {
    let names = reference()["same_ids_for"]
        .as_array()
        .expect("same_ids_for");
    assert!(!names.is_empty());
    let text = "I'M here: ÉA ΑθήναΑθήνα 12345\n\n  x";
    let want = gpt4o().encode(text, true, true);
    for name in names {
        let name = name.as_str().expect("name");
        let t = Tokenizer::new(config(name)).expect("tokenizer");
        assert_eq!(t.encode(text, true, true), want, "{name}");
    }
}

#[test]
fn arbitrary_text_round_trips() {
    let t = gpt4o();
    let mut s = String::new();
    for cp in (0..0x110000u32).step_by(89) {
        if let Some(c) = char::from_u32(cp) {
            s.push(c);
            match cp % 13 {
                0 => s.push_str("'S "),
                1 => s.push_str("\r\n/"),
                2 => s.push_str("ABc"),
                3 => s.push('\u{301}'),
                _ => {}
            }
        }
    }
    s.push_str(&" ".repeat(5000));
    s.push_str(&"É".repeat(5000));
    s.push_str(&"A".repeat(5000));
    let ids = t.encode(&s, false, false);
    assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
    // SmolLM2 has no token for a few bytes; llama.cpp drops them, and so does hearth.
    let table = hearth::tokenizer::bpe::byte_to_char_table();
    let want: Vec<u8> = s
        .bytes()
        .filter(|&b| {
            t.token_id(table[b as usize].to_string().as_bytes())
                .is_some()
        })
        .collect();
    assert_eq!(t.decode(&ids).unwrap(), want);
}
