//! Arbitrary bytes as text through both real tokenizers: encode (with and without
//! special-token parsing), decode, and the streaming decoder must never panic, and
//! decoding must give back the text wherever the vocabulary can represent it.
#![no_main]

use std::sync::OnceLock;

use hearth::gguf::GgufFile;
use hearth::tokenizer::{StreamDecoder, Tokenizer};
use libfuzzer_sys::fuzz_target;

fn tokenizers() -> &'static [Tokenizer] {
    static T: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::var("HEARTH_TEST_MODELS").unwrap_or_else(|_| {
            format!("{}/.cache/hearth/test-models", std::env::var("HOME").unwrap_or_default())
        });
        ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]
            .iter()
            .map(|m| {
                let f = GgufFile::open(format!("{dir}/{m}").as_ref())
                    .expect("test model missing: run scripts/fetch-test-models");
                Tokenizer::from_gguf(&f).expect("tokenizer")
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for tok in tokenizers() {
        for parse_special in [false, true] {
            let ids = tok.encode(&text, false, parse_special);
            let bytes = tok.decode(&ids).expect("decode of encoded ids");
            let mut stream = StreamDecoder::new(tok);
            let mut streamed = String::new();
            for &id in &ids {
                streamed.push_str(&stream.push(id).expect("stream"));
            }
            streamed.push_str(&stream.finish());
            assert_eq!(streamed, String::from_utf8_lossy(&bytes));
        }
    }
    // Arbitrary ids decode to an error or bytes, never a panic.
    let ids: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for tok in tokenizers() {
        let _ = tok.decode(&ids);
    }
});
