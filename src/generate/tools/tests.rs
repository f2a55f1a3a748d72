//! The parsers on fixed model outputs, fed whole and one character at a time.

use super::*;

fn qwen() -> CallSyntax {
    CallSyntax::Tagged {
        open: "<tool_call>".into(),
        close: "</tool_call>".into(),
    }
}

/// Feeds `text` in pieces of `step` characters, then finishes; merges adjacent text.
fn parse(syntax: CallSyntax, text: &str, step: usize) -> Vec<Piece> {
    let mut p = ToolParser::new(syntax);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    for chunk in chars.chunks(step.max(1)) {
        out.extend(p.push(&chunk.iter().collect::<String>()));
    }
    out.extend(p.finish());
    merge_text(out)
}

fn call(name: &str, args: Value) -> Piece {
    Piece::Call(ToolCall {
        id: String::new(),
        name: name.into(),
        arguments: args,
    })
}

fn both(syntax: CallSyntax, text: &str, want: &[Piece]) {
    for step in [1, 3, 1000] {
        assert_eq!(
            parse(syntax.clone(), text, step),
            want,
            "step {step}: {text:?}"
        );
    }
}

#[test]
fn qwen_one_call() {
    both(
        qwen(),
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        &[call("get_weather", json!({"city": "Paris"}))],
    );
}

#[test]
fn qwen_text_then_two_calls() {
    both(
        qwen(),
        "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>",
        &[
            Piece::Text("Let me check.\n".into()),
            call("a", json!({})),
            call("b", json!({"x": [1, 2]})),
        ],
    );
}

#[test]
fn qwen_unclosed_call_at_the_end_is_read() {
    both(
        qwen(),
        "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"</tool\"}}",
        &[call("a", json!({"q": "</tool"}))],
    );
}

#[test]
fn qwen_broken_call_is_given_back_as_text() {
    let text = "<tool_call>\n{\"name\": \"a\", \"argu\n</tool_call> and more";
    both(qwen(), text, &[Piece::Text(text.into())]);
    let unclosed = "<tool_call>\n{\"name\": ";
    both(qwen(), unclosed, &[Piece::Text(unclosed.into())]);
}

#[test]
fn qwen_plain_text_and_lookalikes_pass_through() {
    for t in [
        "Hello there",
        "a < b and <tool",
        "<tool_cal>x",
        "emoji 🙂 <",
    ] {
        both(qwen(), t, &[Piece::Text(t.into())]);
    }
}

#[test]
fn qwen_call_without_tags_at_the_start_is_read() {
    both(
        qwen(),
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}",
        &[call("get_weather", json!({"city": "Paris"}))],
    );
    // Not at the start: text.
    let t = "Use {\"name\": \"a\", \"arguments\": {}}";
    both(qwen(), t, &[Piece::Text(t.into())]);
    // A leading object that is no call is text, and what follows still parses.
    both(
        qwen(),
        "{\"x\": 1} then <tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>",
        &[Piece::Text("{\"x\": 1} then ".into()), call("a", json!({}))],
    );
}

#[test]
fn arguments_written_as_a_string_are_decoded() {
    both(
        qwen(),
        "<tool_call>{\"name\": \"a\", \"arguments\": \"{\\\"n\\\": 1}\"}</tool_call>",
        &[call("a", json!({"n": 1}))],
    );
}

#[test]
fn llama_bare_object() {
    both(
        CallSyntax::Bare,
        " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris {x}\"}}",
        &[call("get_weather", json!({"city": "Paris {x}"}))],
    );
    both(
        CallSyntax::Bare,
        "The weather is nice.",
        &[Piece::Text("The weather is nice.".into())],
    );
    // An object that is not a call is text.
    both(
        CallSyntax::Bare,
        "{\"answer\": 42}",
        &[Piece::Text("{\"answer\": 42}".into())],
    );
}

#[test]
fn forced_grammars_name_the_tools() {
    let tools = vec![
        json!({"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}),
        json!({"type": "function", "function": {"name": "now"}}),
    ];
    assert!(forced(&qwen(), &tools, &ToolChoice::Auto).is_none());
    assert!(forced(&qwen(), &tools, &ToolChoice::None).is_none());
    let Some(Format::Grammar(g)) = forced(&qwen(), &tools, &ToolChoice::Required) else {
        panic!()
    };
    assert!(
        g.contains("get_weather") && g.contains("now") && g.contains("anyOf"),
        "{g}"
    );
    let Some(Format::Grammar(g)) = forced(&qwen(), &tools, &ToolChoice::Function("now".into()))
    else {
        panic!()
    };
    assert!(
        !g.contains("get_weather") && g.starts_with("start: call\n"),
        "{g}"
    );
    let Some(Format::Grammar(g)) = forced(&CallSyntax::Bare, &tools, &ToolChoice::Required) else {
        panic!()
    };
    assert!(g.contains("\"parameters\""), "{g}");
}

#[test]
fn check_refuses_bad_tools_and_choices() {
    let t = vec![json!({"type": "function", "function": {"name": "f",
        "parameters": {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 3}}}}})];
    match check(&t, &ToolChoice::Auto) {
        Err(ConstrainError::Unsupported { keyword, path }) => {
            assert_eq!(keyword, "multipleOf");
            assert!(path.contains("tool f"), "{path}");
        }
        other => panic!("{other:?}"),
    }
    let ok = vec![json!({"type": "function", "function": {"name": "f"}})];
    assert!(check(&ok, &ToolChoice::Function("g".into())).is_err());
    assert!(check(&[], &ToolChoice::Required).is_err());
    assert!(check(&[json!({"type": "function"})], &ToolChoice::Auto).is_err());
    assert!(check(&ok, &ToolChoice::Required).is_ok());
}
