//! `hearth show`: what a model file is (architecture, size, quantization, tokenizer),
//! laid out like Ollama's `show`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};

use crate::gguf::{GgufFile, MetaValue, ValueType};
use crate::quant::GgmlType;
use crate::store::create::ModelLayers;
use crate::store::info::parameter_lines;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("part").args(["modelfile", "template", "parameters", "system", "license"])))]
pub struct ShowArgs {
    /// The model: a store name or a path to a .gguf file
    #[arg(value_name = "MODEL", required_unless_present = "file")]
    model: Option<String>,
    /// Read this .gguf file
    #[arg(long, value_name = "PATH", conflicts_with = "model")]
    file: Option<PathBuf>,
    /// Also list all metadata and tensors
    #[arg(short, long)]
    verbose: bool,
    /// Print the model's Modelfile
    #[arg(long)]
    modelfile: bool,
    /// Print the model's template
    #[arg(long)]
    template: bool,
    /// Print the model's parameters
    #[arg(long)]
    parameters: bool,
    /// Print the model's system message
    #[arg(long)]
    system: bool,
    /// Print the model's license
    #[arg(long)]
    license: bool,
}

pub fn run(args: ShowArgs) -> Result<()> {
    let (path, layers, name) = match (&args.file, &args.model) {
        (Some(f), _) => (f.clone(), None, None),
        (None, Some(m)) => {
            let src = super::model_ref::resolve(m, false, false)?;
            let name = src.digest.is_some().then(|| m.clone());
            (src.path, Some(src.layers), name)
        }
        (None, None) => bail!("name a model or a --file"),
    };
    let layers = layers.unwrap_or_default();
    let file = std::sync::Arc::new(
        GgufFile::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    if args.modelfile {
        let mf = layers.modelfile(&path.display().to_string());
        print!("{}", mf.render_named(name.as_deref()));
    } else if args.template {
        if let Some(t) = layers.template_text(&file) {
            println!("{t}");
        }
    } else if args.parameters {
        print!("{}", parameter_lines(&layers.params, ""));
    } else if args.system {
        if let Some(s) = &layers.system {
            println!("{s}");
        }
    } else if args.license {
        if !layers.license.is_empty() {
            println!("{}", layers.license.join("\n"));
        }
    } else {
        print!("{}", render(&file, args.verbose)?);
        print!("{}", render_layers(&layers));
    }
    Ok(())
}

/// The Parameters, System and License sections of the summary, when the model has them.
pub fn render_layers(l: &ModelLayers) -> String {
    let mut out = String::new();
    if !l.params.is_empty() {
        out.push_str("  Parameters\n");
        out.push_str(&parameter_lines(&l.params, "    "));
        out.push('\n');
    }
    let mut text = |title: &str, t: &str, max_lines: usize| {
        let _ = writeln!(out, "  {title}");
        let lines: Vec<&str> = t.trim().lines().collect();
        for line in lines.iter().take(max_lines) {
            let _ = writeln!(out, "    {line}");
        }
        if lines.len() > max_lines {
            out.push_str("    ...\n");
        }
        out.push('\n');
    };
    if let Some(s) = &l.system {
        text("System", s, usize::MAX);
    }
    for lic in &l.license {
        text("License", lic, 2);
    }
    out
}

/// The whole `show` text for one file.
pub fn render(f: &std::sync::Arc<GgufFile>, verbose: bool) -> Result<String> {
    let s = Summary::of(f)?;
    let mut out = String::new();
    let row = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "    {k:<20}{v}");
    };
    out.push_str("  Model\n");
    row(&mut out, "architecture", &s.architecture);
    row(&mut out, "parameters", &human_number(s.parameters));
    if let Some(c) = s.context_length {
        row(&mut out, "context length", &c.to_string());
    }
    if let Some(e) = s.embedding_length {
        row(&mut out, "embedding length", &e.to_string());
    }
    row(&mut out, "quantization", &s.file_type);
    out.push('\n');

    // How hearth reads the architecture: its hyper-parameters, or why it cannot run it.
    out.push_str("  Architecture\n");
    match crate::model::Model::load(f.clone()) {
        Ok(m) => {
            for (k, v) in m.describe() {
                row(&mut out, k, &v);
            }
        }
        Err(e) => row(&mut out, "not runnable", &e.to_string()),
    }
    out.push('\n');

    out.push_str("  Tensors by type\n");
    for (ty, (count, bytes)) in &s.by_type {
        row(
            &mut out,
            ty.name(),
            &format!("{count:>4} tensors  {:>10}", human_bytes(*bytes)),
        );
    }
    out.push('\n');

    out.push_str("  Tokenizer\n");
    row(
        &mut out,
        "model",
        s.tokenizer_model.as_deref().unwrap_or("none"),
    );
    if let Some(p) = &s.tokenizer_pre {
        row(&mut out, "pre-tokenizer", p);
    }
    if let Some(n) = s.vocab_size {
        row(&mut out, "vocabulary", &n.to_string());
    }
    row(
        &mut out,
        "chat template",
        if s.chat_template { "present" } else { "none" },
    );
    out.push('\n');

    if verbose {
        out.push_str("  Metadata\n");
        let width = f.metadata().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in f.metadata() {
            let _ = writeln!(out, "    {k:<width$}  {}", display_value(f, v));
        }
        out.push('\n');
        out.push_str("  Tensors\n");
        for t in f.tensors() {
            let dims: Vec<String> = t.dims.iter().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                "    {:<40}{:<8}[{}]",
                t.name,
                t.ty.name(),
                dims.join(", ")
            );
        }
        out.push('\n');
    }
    Ok(out)
}

/// The facts `show` prints, gathered once.
pub struct Summary {
    pub architecture: String,
    pub parameters: u64,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub file_type: String,
    pub by_type: BTreeMap<GgmlType, (usize, u64)>,
    pub tokenizer_model: Option<String>,
    pub tokenizer_pre: Option<String>,
    pub vocab_size: Option<usize>,
    pub chat_template: bool,
}

impl Summary {
    pub fn of(f: &GgufFile) -> Result<Summary> {
        let architecture = f
            .architecture()?
            .context("the file has no general.architecture")?
            .to_string();
        let key = |k: &str| format!("{architecture}.{k}");
        let mut by_type: BTreeMap<GgmlType, (usize, u64)> = BTreeMap::new();
        for t in f.tensors() {
            let e = by_type.entry(t.ty).or_default();
            e.0 += 1;
            e.1 += t.size;
        }
        let parameters = match f.get_u64("general.parameter_count") {
            Ok(Some(n)) => n,
            _ => f.tensors().iter().map(|t| t.n_elements()).sum(),
        };
        let file_type = match f.get_u32("general.file_type")? {
            Some(ft) => crate::gguf::file_type_name(ft)
                .map_or_else(|| format!("unknown ({ft})"), str::to_string),
            // No declared type: name the type holding most bytes.
            None => by_type
                .iter()
                .max_by_key(|(_, (_, b))| *b)
                .map_or("none".into(), |(t, _)| t.name().to_string()),
        };
        Ok(Summary {
            parameters,
            context_length: f.get_u64(&key("context_length"))?,
            embedding_length: f.get_u64(&key("embedding_length"))?,
            file_type,
            by_type,
            tokenizer_model: f.get_str("tokenizer.ggml.model")?.map(str::to_string),
            tokenizer_pre: f.get_str("tokenizer.ggml.pre")?.map(str::to_string),
            vocab_size: f.get_str_array("tokenizer.ggml.tokens")?.map(|a| a.len()),
            chat_template: f.get("tokenizer.chat_template").is_some(),
            architecture,
        })
    }
}

/// 134.52M, 1.2B, 512K: Ollama's way of printing parameter counts.
pub fn human_number(n: u64) -> String {
    let f = n as f64;
    if n >= 1_000_000_000 {
        format!("{:.1}B", f / 1e9)
    } else if n >= 1_000_000 {
        format!("{:.2}M", f / 1e6)
    } else if n >= 1_000 {
        format!("{:.2}K", f / 1e3)
    } else {
        n.to_string()
    }
}

/// Bytes in decimal units, as Ollama prints sizes.
pub fn human_bytes(n: u64) -> String {
    let f = n as f64;
    if n >= 1_000_000_000 {
        format!("{:.1} GB", f / 1e9)
    } else if n >= 1_000_000 {
        format!("{:.1} MB", f / 1e6)
    } else if n >= 1_000 {
        format!("{:.1} KB", f / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A metadata value for display; arrays longer than a few items are abbreviated.
fn display_value(f: &GgufFile, v: &MetaValue) -> String {
    const SHOWN: usize = 8;
    const MAX_STRING: usize = 120;
    match v {
        MetaValue::String(_) => {
            let s = f.string_lossy(v).unwrap_or_default();
            let mut t: String = s.chars().take(MAX_STRING).collect();
            if t.len() < s.len() {
                t.push('…');
            }
            format!("{t:?}")
        }
        MetaValue::Array(a) => {
            let items = if a.elem == ValueType::String || a.elem.fixed_size().is_some() {
                // Decode only the head of a long array.
                let head = crate::gguf::ArrayValue {
                    len: a.len.min(SHOWN as u64),
                    ..*a
                };
                f.array_items(&head)
            } else {
                Vec::new()
            };
            let mut parts: Vec<String> = items.iter().map(|x| display_value(f, x)).collect();
            if a.len as usize > parts.len() {
                parts.push(format!("… ({} items)", a.len));
            }
            format!("[{}]", parts.join(", "))
        }
        v => v.to_string(),
    }
}
