//! `hearth tokenize`: text to token ids (and back with `--decode`), exactly as the
//! model's tokenizer does it; used by scripts and by checks against llama.cpp.

use std::io::Read;

use anyhow::{Context, Result};
use clap::Args;

use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// The model (a name in the store or a path to a .gguf file)
    #[arg(value_name = "MODEL")]
    model: String,
    /// The text to tokenize (read from stdin when absent); with --decode, a JSON array of ids
    #[arg(value_name = "TEXT")]
    text: Option<String>,
    /// Do not add the BOS token the model would add
    #[arg(long)]
    no_bos: bool,
    /// Decode a JSON array of token ids to text instead
    #[arg(long)]
    decode: bool,
}

pub fn run(args: TokenizeArgs) -> Result<()> {
    let path = super::model_ref::gguf_path(&args.model, false, false)?;
    let file = GgufFile::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let tok = Tokenizer::from_gguf(&file)
        .with_context(|| format!("cannot build the tokenizer of {}", path.display()))?;
    let input = match args.text {
        Some(t) => t,
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read stdin")?;
            String::from_utf8(buf).context("stdin is not valid UTF-8")?
        }
    };
    if args.decode {
        let ids: Vec<u32> = serde_json::from_str(input.trim())
            .context("--decode takes a JSON array of token ids, like [1, 2, 3]")?;
        let bytes = tok.decode(&ids)?;
        print!("{}", String::from_utf8_lossy(&bytes));
        return Ok(());
    }
    let ids = tok.encode(&input, !args.no_bos, true);
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
