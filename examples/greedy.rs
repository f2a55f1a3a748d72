//! Greedy continuation of a raw prompt, for debugging the engine.
//!
//!     cargo run --release --example greedy -- MODEL.gguf "prompt" [N]

use hearth::engine::{Engine, EngineOptions, Logits, StepInput};
use hearth::model::Model;
use hearth::tokenizer::Tokenizer;

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = Model::open(args[1].as_ref()).expect("model");
    let tok = Tokenizer::from_gguf(model.file()).expect("tokenizer");
    let n: usize = args.get(3).map_or(16, |s| s.parse().unwrap());
    let mut e = Engine::new(model, EngineOptions::default());
    let seq = e.add_sequence();
    let ids = tok.encode(&args[2], true, true);
    println!("prompt ids {ids:?}");
    let t0 = std::time::Instant::now();
    e.step(&[StepInput {
        seq,
        tokens: &ids,
        logits: Logits::Last,
    }])
    .unwrap();
    let t1 = std::time::Instant::now();
    let mut out = Vec::new();
    let mut next = argmax(e.logits(0));
    let mut top: Vec<(usize, f32)> = e.logits(0).iter().cloned().enumerate().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("top5 {:?}", &top[..5]);
    for _ in 0..n {
        out.push(next);
        if tok.is_eog(next) {
            break;
        }
        e.step(&[StepInput {
            seq,
            tokens: &[next],
            logits: Logits::Last,
        }])
        .unwrap();
        next = argmax(e.logits(0));
    }
    let t2 = std::time::Instant::now();
    println!("ids {out:?}");
    println!("{:?}", String::from_utf8_lossy(&tok.decode(&out).unwrap()));
    println!(
        "prefill {} tok in {:.1} ms, decode {} tok at {:.1} tok/s",
        ids.len(),
        (t1 - t0).as_secs_f64() * 1e3,
        out.len(),
        out.len() as f64 / (t2 - t1).as_secs_f64()
    );
}
