//! The per-sequence generation state machine on a real model (SmolLM2): prefix reuse,
//! stop sequences held back and never emitted, num_predict, cancel, a full context,
//! end-of-generation, and several generations stepped in one batch equal each alone.

mod common;

use std::sync::atomic::AtomicBool;

use hearth::engine::{Engine, EngineOptions, Logits, SeqId, StepInput};
use hearth::generate::{DoneReason, Generation, Session, Turn};
use hearth::model::Model;
use hearth::sampler::SamplerOptions;
use hearth::tokenizer::Tokenizer;

fn load(num_ctx: usize) -> (Engine, Tokenizer) {
    let m = Model::open(&common::test_model(common::SMOLLM2)).unwrap();
    let tok = Tokenizer::from_gguf(m.file()).unwrap();
    let e = Engine::new(
        m,
        EngineOptions {
            num_ctx,
            ..EngineOptions::default()
        },
    );
    (e, tok)
}

fn greedy(n: i32) -> SamplerOptions {
    SamplerOptions {
        temperature: 0.0,
        num_predict: n,
        ..SamplerOptions::default()
    }
}

/// Drives one generation to its end alone; returns the emitted chunks and the reason.
fn drive(
    e: &mut Engine,
    tok: &Tokenizer,
    seq: SeqId,
    g: &mut Generation,
) -> (Vec<String>, DoneReason) {
    e.truncate(seq, g.keep());
    let mut chunks = Vec::new();
    let mut logits = vec![0.0; e.n_vocab()];
    loop {
        let input = g.next_input(64).to_vec();
        let want = g.wants_logits(input.len());
        e.step(&[StepInput {
            seq,
            tokens: &input,
            logits: if want { Logits::Last } else { Logits::None },
        }])
        .unwrap();
        g.fed(input.len());
        if !want {
            continue;
        }
        logits.copy_from_slice(e.logits(0));
        let out = g.accept(&mut logits, tok);
        if !out.text.is_empty() {
            chunks.push(out.text);
        }
        if let Some(r) = out.done {
            return (chunks, r);
        }
    }
}

const PROMPT: &str = "1, 2, 3, 4, 5,";

#[test]
fn num_predict_and_text() {
    let (mut e, tok) = load(512);
    let ids = tok.encode(PROMPT, true, true);
    let seq = e.add_sequence();
    let mut g = Generation::new(ids, 0, &greedy(12), e.n_vocab(), 512).unwrap();
    let (chunks, reason) = drive(&mut e, &tok, seq, &mut g);
    assert_eq!(reason, DoneReason::Length);
    assert_eq!(g.tokens().len(), 12);
    assert_eq!(chunks.concat(), " 6, 7, 8, 9,");
    let st = g.stats();
    assert_eq!(st.eval_count, 12);
    assert_eq!(st.prompt_eval_count, tok.encode(PROMPT, true, true).len());
}

#[test]
fn stop_sequences_are_held_back_and_never_emitted() {
    let (mut e, tok) = load(512);
    let ids = tok.encode(PROMPT, true, true);
    let seq = e.add_sequence();
    let mut opts = greedy(40);
    opts.stop = vec![" 9,".into(), "never appears".into()];
    let mut g = Generation::new(ids, 0, &opts, e.n_vocab(), 512).unwrap();
    let (chunks, reason) = drive(&mut e, &tok, seq, &mut g);
    assert_eq!(reason, DoneReason::Stop);
    assert_eq!(chunks.concat(), " 6, 7, 8,");
    // No chunk ever carried the stop text or a piece of it past what was emitted.
    assert!(chunks.iter().all(|c| !c.contains('9')), "{chunks:?}");
}

#[test]
fn cancel_flushes_and_ends() {
    let (mut e, tok) = load(512);
    let ids = tok.encode(PROMPT, true, true);
    let seq = e.add_sequence();
    let mut opts = greedy(40);
    opts.stop = vec![", 8".into()];
    let mut g = Generation::new(ids, 0, &opts, e.n_vocab(), 512).unwrap();
    e.truncate(seq, g.keep());
    let mut logits = vec![0.0; e.n_vocab()];
    let mut text = String::new();
    // Up to " 6, 7" (the "," after 7 could start ", 8": held back), then cancel.
    while !text.ends_with('7') {
        let input = g.next_input(512).to_vec();
        e.step(&[StepInput {
            seq,
            tokens: &input,
            logits: Logits::Last,
        }])
        .unwrap();
        g.fed(input.len());
        logits.copy_from_slice(e.logits(0));
        text.push_str(&g.accept(&mut logits, &tok).text);
    }
    let input = g.next_input(1).to_vec();
    e.step(&[StepInput {
        seq,
        tokens: &input,
        logits: Logits::Last,
    }])
    .unwrap();
    g.fed(1);
    logits.copy_from_slice(e.logits(0));
    let held = g.accept(&mut logits, &tok).text;
    assert_eq!(held, "", "',' may begin the stop ', 8': held back");
    assert_eq!(g.cancel(), ",");
    assert_eq!(g.done(), Some(DoneReason::Cancelled));
    assert!(g.next_input(8).is_empty());
    assert_eq!(g.accept(&mut logits, &tok).text, "");
}

#[test]
fn a_full_context_ends_with_length() {
    let (mut e, tok) = load(32);
    let ids = tok.encode(PROMPT, true, true);
    let n_prompt = ids.len();
    let seq = e.add_sequence_with_ctx(24);
    let mut g = Generation::new(ids.clone(), 0, &greedy(-1), e.n_vocab(), 24).unwrap();
    let (_, reason) = drive(&mut e, &tok, seq, &mut g);
    assert_eq!(reason, DoneReason::Length);
    assert_eq!(n_prompt + g.tokens().len(), 24);
    assert_eq!(e.sequence_len(seq), 23);
    // A prompt that leaves no room is refused before anything runs.
    let long: Vec<u32> = ids.iter().cycle().take(24).copied().collect();
    assert!(Generation::new(long, 0, &greedy(4), e.n_vocab(), 24).is_err());
    assert!(Generation::new(Vec::new(), 0, &greedy(4), e.n_vocab(), 24).is_err());
}

#[test]
fn end_of_generation_stops_without_text() {
    let (mut e, tok) = load(512);
    // SmolLM2 ends its turn at once after this raw question.
    let ids = tok.encode("Why is the sky blue?", true, true);
    let seq = e.add_sequence();
    let mut g = Generation::new(ids, 0, &greedy(16), e.n_vocab(), 512).unwrap();
    let (chunks, reason) = drive(&mut e, &tok, seq, &mut g);
    assert_eq!(reason, DoneReason::Stop);
    assert!(g.tokens().is_empty() && chunks.is_empty());
}

#[test]
fn a_session_reuses_its_cached_prefix() {
    let (mut e, tok) = load(512);
    let cancel = AtomicBool::new(false);
    let first = tok.encode("The capital of France is", true, true);
    let mut s = Session::new(&mut e);
    let mut text = String::new();
    let o1 = s
        .generate(
            &mut e,
            &tok,
            Turn::new(&first, &greedy(6)),
            &cancel,
            &mut |t| {
                text.push_str(t);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(o1.stats.prompt_eval_count, first.len());
    // The next prompt continues the first and its answer.
    let mut next = first.clone();
    next.extend_from_slice(&o1.tokens[..5]);
    let more = tok.encode(" And Italy's is", false, true);
    next.extend_from_slice(&more);
    let mut t2 = String::new();
    let o2 = s
        .generate(
            &mut e,
            &tok,
            Turn::new(&next, &greedy(6)),
            &cancel,
            &mut |t| {
                t2.push_str(t);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(o2.stats.prompt_eval_count, more.len());
    // Same text as a fresh session computing everything.
    let mut fresh = Session::new(&mut e);
    let mut t3 = String::new();
    let o3 = fresh
        .generate(
            &mut e,
            &tok,
            Turn::new(&next, &greedy(6)),
            &cancel,
            &mut |t| {
                t3.push_str(t);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(o3.stats.prompt_eval_count, next.len());
    assert_eq!((o2.tokens, t2), (o3.tokens, t3));
}

#[test]
fn generations_stepped_together_equal_each_alone() {
    let prompts = [
        "The capital of France is",
        "def fib(n):",
        PROMPT,
        "Once upon a time",
    ];
    let (mut e, tok) = load(256);
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let seq = e.add_sequence();
            let mut g =
                Generation::new(tok.encode(p, true, true), 0, &greedy(16), e.n_vocab(), 256)
                    .unwrap();
            drive(&mut e, &tok, seq, &mut g);
            e.remove_sequence(seq);
            g.tokens().to_vec()
        })
        .collect();
    // All four in every step, prompts in chunks of 3 tokens.
    let seqs: Vec<SeqId> = prompts.iter().map(|_| e.add_sequence()).collect();
    let mut gens: Vec<Generation> = prompts
        .iter()
        .map(|p| {
            Generation::new(tok.encode(p, true, true), 0, &greedy(16), e.n_vocab(), 256).unwrap()
        })
        .collect();
    let mut logits = vec![0.0; e.n_vocab()];
    while gens.iter().any(|g| g.done().is_none()) {
        let plan: Vec<(usize, Vec<u32>, bool)> = gens
            .iter()
            .enumerate()
            .filter(|(_, g)| g.done().is_none())
            .map(|(i, g)| {
                let input = g.next_input(3).to_vec();
                let want = g.wants_logits(input.len());
                (i, input, want)
            })
            .collect();
        let inputs: Vec<StepInput<'_>> = plan
            .iter()
            .map(|(i, input, want)| StepInput {
                seq: seqs[*i],
                tokens: input,
                logits: if *want { Logits::Last } else { Logits::None },
            })
            .collect();
        e.step(&inputs).unwrap();
        let mut row = 0;
        for (i, input, want) in &plan {
            gens[*i].fed(input.len());
            if *want {
                logits.copy_from_slice(e.logits(row));
                row += 1;
                gens[*i].accept(&mut logits, &tok);
            }
        }
    }
    for (i, g) in gens.iter().enumerate() {
        assert_eq!(g.tokens(), &alone[i][..], "prompt {i} differs when batched");
    }
}
