//! Debug helper: print the ids and pieces of a text (`cargo run --example tokdebug -- MODEL TEXT`).
use hearth::gguf::GgufFile;
use hearth::tokenizer::Tokenizer;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let f = GgufFile::open(std::path::Path::new(&args[1])).expect("open");
    let t = Tokenizer::from_gguf(&f).expect("tokenizer");
    let text = args[2].replace("\\n", "\n");
    let ids = t.encode(&text, false, true);
    for id in &ids {
        let raw = t.token_text(*id).unwrap_or_default();
        println!(
            "{id}\t{:?}\t{:?}",
            String::from_utf8_lossy(raw),
            t.token_piece(*id)
        );
    }
}
