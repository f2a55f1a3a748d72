use super::*;
use serde_json::json;

/// Thinking and answer of `text` fed whole, and fed in every two-piece split and one
/// character at a time: the result must not depend on how the text streams.
fn split(text: &str, inside: bool) -> (String, String) {
    let run = |pieces: &[&str]| {
        let mut p = ThinkParser::new(inside);
        let mut out: Vec<Split> = Vec::new();
        for piece in pieces {
            out.extend(p.push(piece));
        }
        out.extend(p.finish());
        let (mut t, mut c) = (String::new(), String::new());
        for s in out {
            match s {
                Split::Thinking(x) => t.push_str(&x),
                Split::Content(x) => c.push_str(&x),
            }
        }
        (t, c)
    };
    let whole = run(&[text]);
    for i in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        assert_eq!(
            run(&[&text[..i], &text[i..]]),
            whole,
            "split at {i} of {text:?}"
        );
    }
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(run(&refs), whole, "char by char: {text:?}");
    whole
}

#[test]
fn qwen3_format() {
    // Qwen 3 opens and closes the block itself.
    let out = "<think>\nThe user wants 2+2. That is 4.\n</think>\n\nThe answer is 4.";
    assert_eq!(
        split(out, false),
        (
            "The user wants 2+2. That is 4.".into(),
            "The answer is 4.".into()
        )
    );
    // With thinking off its template writes an empty block into the prompt; the model
    // then answers directly.
    assert_eq!(
        split("Hello there!", false),
        (String::new(), "Hello there!".into())
    );
    // An empty block the model writes itself.
    assert_eq!(
        split("<think>\n\n</think>\n\nHi.", false),
        (String::new(), "Hi.".into())
    );
}

#[test]
fn deepseek_r1_format() {
    // DeepSeek-R1's template ends the prompt with "<think>\n": the model starts inside.
    let out = "Okay, so the user asks for 2+2.\nIt is 4.\n</think>\n\n**4**";
    assert_eq!(
        split(out, true),
        (
            "Okay, so the user asks for 2+2.\nIt is 4.".into(),
            "**4**".into()
        )
    );
    // Older R1 outputs repeat the opening tag anyway... it stays thinking text.
    let (t, c) = split("<think>\nhmm\n</think>\nok", true);
    assert_eq!((t.as_str(), c.as_str()), ("<think>\nhmm", "ok"));
}

#[test]
fn unclosed_thinking_is_kept() {
    assert_eq!(
        split("<think>\nstill thinking when the tokens ran out", false),
        (
            "still thinking when the tokens ran out".into(),
            String::new()
        )
    );
    assert_eq!(
        split("no close tag </thi", true),
        ("no close tag </thi".into(), String::new())
    );
}

#[test]
fn text_that_only_looks_like_a_tag() {
    assert_eq!(
        split("<thinking> is not the tag", false),
        (String::new(), "<thinking> is not the tag".into())
    );
    assert_eq!(split("<thi", false), (String::new(), "<thi".into()));
    // A tag later in the answer is the answer's text.
    assert_eq!(
        split("Use <think> tags.", false),
        (String::new(), "Use <think> tags.".into())
    );
    // Non-ASCII around the tags.
    assert_eq!(
        split("<think>é→ü</think>ß", false),
        ("é→ü".into(), "ß".into())
    );
}

#[test]
fn think_values() {
    assert_eq!(Think::from_json(None), Ok(None));
    assert_eq!(Think::from_json(Some(&json!(true))), Ok(Some(Think::On)));
    assert_eq!(Think::from_json(Some(&json!(false))), Ok(Some(Think::Off)));
    assert_eq!(
        Think::from_json(Some(&json!("high"))),
        Ok(Some(Think::Level("high".into())))
    );
    assert!(Think::from_json(Some(&json!("max-ish")))
        .unwrap_err()
        .contains("max-ish"));
    assert!(Think::from_json(Some(&json!(3))).is_err());
    assert_eq!(Think::from_effort(Some("none")), Ok(Some(Think::Off)));
    assert_eq!(
        Think::from_effort(Some("minimal")),
        Ok(Some(Think::Level("low".into())))
    );
    assert!(Think::from_effort(Some("extreme")).is_err());
}

#[test]
fn prompt_ends_inside() {
    assert!(prompt_opens_thinking(
        "<｜User｜>hi<｜Assistant｜><think>\n"
    ));
    assert!(!prompt_opens_thinking(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ));
    assert!(!prompt_opens_thinking("<|im_start|>assistant\n"));
}
