//! `hearth run` as a user runs it: free-running greedy generation against llama.cpp's
//! (tests/data/*.json), chat prompts, stdin, errors, and the REPL in a pseudo-terminal.

mod common;

use common::{ids, reference};

use std::io::Write;
use std::process::{Command, Output, Stdio};

use hearth::gguf::GgufFile;
use hearth::tokenizer::Tokenizer;

fn hearth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.env("HEARTH_HOME", std::env::temp_dir().join("hearth-test-home"));
    c
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = hearth();
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Greedy runs of every raw prompt: "1, 2, 3, 4, 5," in full (no step has a margin
/// below 1), the others up to llama.cpp's first step with a margin below 0.5 (matching
/// llama.cpp's ids or the exact float64 ids).
fn greedy_matches(model: &str, reference_name: &str) {
    let path = common::test_model(model);
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let r = reference(reference_name);
    for c in r["completions"].as_array().unwrap() {
        let prompt = c["prompt"].as_str().unwrap();
        let out = run(
            &[
                "run",
                "--raw",
                "-o",
                "temperature=0",
                "-o",
                "num_predict=32",
                path.to_str().unwrap(),
                prompt,
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = out.stdout;
        let llama = ids(&c["generated_token_ids"]);
        if prompt == "1, 2, 3, 4, 5," {
            assert_eq!(
                String::from_utf8_lossy(&got),
                c["generated_text"].as_str().unwrap(),
                "{model}: {prompt:?} must reproduce all of llama.cpp's tokens"
            );
            continue;
        }
        let margins = c["top1_margin_logits"].as_array().unwrap();
        let k = margins
            .iter()
            .position(|m| m.as_f64().unwrap() < 0.5)
            .unwrap_or(margins.len())
            .min(llama.len());
        let exact = ids(&c["exact_greedy_token_ids"]);
        let want_llama = tok.decode(&llama[..k]).unwrap();
        let want_exact = tok.decode(&exact[..k.min(exact.len())]).unwrap();
        assert!(
            got.starts_with(&want_llama) || got.starts_with(&want_exact),
            "{model}: {prompt:?}: got {:?}, llama.cpp's first {k} tokens {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want_llama)
        );
    }
}

#[test]
fn smollm2_greedy() {
    greedy_matches(common::SMOLLM2, "smollm2-135m-q4_1.json");
}

#[test]
fn gemma3_greedy() {
    greedy_matches(common::GEMMA3, "gemma3-270m-q4_k_m.json");
}

/// The chat prompt through the model's template (SmolLM2's Jinja, Gemma's built-in),
/// as an argument and on stdin; stdout carries exactly the answer.
#[test]
fn chat_answers_and_stdin() {
    for (model, name) in [
        (common::SMOLLM2, "smollm2-135m-q4_1.json"),
        (common::GEMMA3, "gemma3-270m-q4_k_m.json"),
    ] {
        let path = common::test_model(model);
        let r = reference(name);
        let chat = &r["chat"];
        let question = chat["messages"][0]["content"].as_str().unwrap();
        let args = [
            "run",
            "-o",
            "temperature=0",
            "-o",
            "num_predict=16",
            path.to_str().unwrap(),
        ];
        let mut with_arg = args.to_vec();
        with_arg.push(question);
        let a = run(&with_arg, None);
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        let b = run(&args, Some(question));
        assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
        assert_eq!(a.stdout, b.stdout, "{model}: argument and stdin differ");
        let margins = chat["top1_margin_logits"].as_array().unwrap();
        let k = margins
            .iter()
            .position(|m| m.as_f64().unwrap() < 0.5)
            .unwrap_or(margins.len())
            .min(16);
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        let want = tok.decode(&ids(&chat["generated_token_ids"])[..k]).unwrap();
        assert!(
            a.stdout.starts_with(&want),
            "{model}: got {:?}, want a start of {:?}",
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&want)
        );
        let stderr = String::from_utf8_lossy(&a.stderr);
        if model == common::GEMMA3 {
            assert!(
                stderr.contains("gemma"),
                "the built-in template is announced: {stderr}"
            );
        }
    }
}

#[test]
fn verbose_stats_go_to_stderr() {
    let path = common::test_model(common::SMOLLM2);
    let out = run(
        &[
            "run",
            "--verbose",
            "--raw",
            "-o",
            "temperature=0",
            "-o",
            "num_predict=4",
            path.to_str().unwrap(),
            "1, 2, 3, 4, 5,",
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), " 6, ");
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "total duration:",
        "load duration:",
        "prompt eval count:    14 token(s)",
        "prompt eval rate:",
        "eval count:           4 token(s)",
        "eval rate:",
    ] {
        assert!(err.contains(field), "missing {field:?} in {err}");
    }
}

#[test]
fn errors_are_clear() {
    let smol = common::test_model(common::SMOLLM2);
    let smol = smol.to_str().unwrap();
    for (args, want) in [
        (
            vec!["run", "/nonexistent/model.gguf", "hi"],
            "cannot load /nonexistent/model.gguf",
        ),
        (
            vec!["run", "-o", "temperature", smol, "hi"],
            "not KEY=VALUE",
        ),
        (
            vec!["run", "-o", "bogus=1", smol, "hi"],
            "unknown parameter 'bogus'",
        ),
        (
            vec!["run", "-o", "top_k=x", smol, "hi"],
            "invalid int value 'x' for parameter 'top_k'",
        ),
        (
            vec![
                "run",
                "-o",
                "num_ctx=8",
                smol,
                "a long prompt that does not fit in eight tokens of context",
            ],
            "more than the context length 8",
        ),
    ] {
        let out = run(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run(&["run", "/etc/passwd", "hi"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a GGUF file"));
}

/// The REPL in a pseudo-terminal: two turns (the second prefills only its own tokens),
/// /clear, /bye.
#[test]
fn repl_two_turns_clear_bye() {
    let path = common::test_model(common::SMOLLM2);
    let mut cmd = hearth();
    cmd.args([
        "run",
        "-o",
        "temperature=0",
        "-o",
        "num_predict=12",
        path.to_str().unwrap(),
    ]);
    let mut p = rexpect::session::spawn_command(cmd, Some(120_000)).unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("/set verbose").unwrap();
    p.exp_string("Set 'verbose' mode.").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("What is 2+2?").unwrap();
    let (_, first) = p.exp_regex(r"prompt eval count:\s+\d+").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("And 3+3?").unwrap();
    let (_, second) = p.exp_regex(r"prompt eval count:\s+\d+").unwrap();
    p.exp_string(">>> ").unwrap();
    let count = |s: &str| -> usize { s.split_whitespace().last().unwrap().parse().unwrap() };
    // The first turn includes SmolLM2's default system prompt; the second only the new
    // turn, because the conversation's KV cache is kept.
    assert!(
        count(&second) < count(&first),
        "second turn prefilled {second:?}, first {first:?}"
    );
    p.send_line("/clear").unwrap();
    p.exp_string("Cleared session context").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("/?").unwrap();
    p.exp_string("/bye").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("/bye").unwrap();
    p.exp_eof().unwrap();
}

/// Sampling with a seed is reproducible; another seed gives another answer.
#[test]
fn seeded_sampling_is_reproducible() {
    let path = common::test_model(common::SMOLLM2);
    let go = |seed: &str| {
        let seed = format!("seed={seed}");
        let out = run(
            &[
                "run",
                "--raw",
                "-o",
                "temperature=1.0",
                "-o",
                &seed,
                "-o",
                "num_predict=24",
                path.to_str().unwrap(),
                "Once upon a time",
            ],
            None,
        );
        assert!(out.status.success());
        out.stdout
    };
    let a = go("42");
    assert_eq!(a, go("42"), "same seed, same text");
    assert!(
        [go("1"), go("2"), go("3")].iter().any(|o| *o != a),
        "other seeds should give other text"
    );
}

/// Ctrl-C during an answer stops it and returns to the prompt; the session goes on.
#[test]
fn repl_ctrl_c_stops_the_answer() {
    let path = common::test_model(common::SMOLLM2);
    let mut cmd = hearth();
    cmd.args(["run", "-o", "temperature=0", path.to_str().unwrap()]);
    let mut p = rexpect::session::spawn_command(cmd, Some(120_000)).unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("Write a very long story about a dragon.")
        .unwrap();
    // Wait for the answer to start, then interrupt it. The echoed line must be consumed
    // first: a Ctrl-C sent while rustyline still holds the terminal in raw mode arrives as a
    // plain byte, not as SIGINT, and the answer would run to its end.
    p.exp_string("dragon.").unwrap();
    p.exp_regex(r"[A-Za-z]{3}").unwrap();
    p.send_control('c').unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("/bye").unwrap();
    p.exp_eof().unwrap();
}
