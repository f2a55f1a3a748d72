//! Arbitrary bytes as a GGUF file: parsing, every accessor, and building a tokenizer
//! from whatever metadata parsed must never panic.
#![no_main]

use hearth::gguf::{GgufFile, MetaValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for t in f.tensors() {
        assert_eq!(f.tensor_data(t).len() as u64, t.size);
    }
    for (k, v) in f.metadata() {
        let _ = f.get_str(k);
        let _ = f.get_u32(k);
        let _ = f.get_f32(k);
        let _ = f.get_f32_array(k);
        let _ = f.get_i32_array(k);
        if let Ok(Some(a)) = f.get_str_array(k) {
            assert_eq!(a.iter().count(), a.len());
        }
        if let MetaValue::Array(a) = v {
            let _ = f.array_items(a);
        }
    }
    if let Ok(tok) = hearth::tokenizer::Tokenizer::from_gguf(&f) {
        let ids = tok.encode("Hello world <|im_start|> 日本", true, true);
        let _ = tok.decode(&ids);
    }
});
