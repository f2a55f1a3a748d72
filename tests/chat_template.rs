//! Chat templates against the llama.cpp reference renders of the real test models, plus
//! hand-checked conversations for the built-ins and error behaviour for hostile templates.

mod common;

use hearth::gguf::GgufFile;
use hearth::template::{ChatTemplate, Message, TemplateError};

fn reference(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn messages(chat: &serde_json::Value) -> Vec<Message> {
    serde_json::from_value(chat["messages"].clone()).unwrap()
}

fn conversation() -> Vec<Message> {
    vec![
        Message::new("system", "  Be brief.\n"),
        Message::new("user", "Hi"),
        Message::new("assistant", "Hello! "),
        Message::new("user", "What is 2+2?"),
    ]
}

#[test]
fn smollm2_gguf_template_matches_reference() {
    let f = GgufFile::open(&common::test_model(common::SMOLLM2)).unwrap();
    let (t, note) = ChatTemplate::from_gguf(&f).unwrap();
    assert_eq!(t.name(), "jinja");
    assert!(note.is_none(), "{note:?}");
    let r = reference("smollm2-135m-q4_1.json");
    let chat = &r["chat"];
    let out = t.render(&messages(chat), true).unwrap();
    assert_eq!(out, chat["rendered_prompt"].as_str().unwrap());
    assert_eq!(out, chat["prompt"].as_str().unwrap());

    // With a system message the template's default one is replaced.
    let out = t.render(&conversation(), false).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\n  Be brief.\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello! <|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    );
}

#[test]
fn gemma_without_template_uses_builtin_and_matches_reference() {
    let f = GgufFile::open(&common::test_model(common::GEMMA3)).unwrap();
    let (t, note) = ChatTemplate::from_gguf(&f).unwrap();
    assert_eq!(t.name(), "gemma");
    let note = note.expect("a notice that the built-in template is used");
    assert!(
        note.contains("gemma") && note.contains("no chat template"),
        "{note}"
    );
    let r = reference("gemma3-270m-q4_k_m.json");
    let chat = &r["chat"];
    let out = t.render(&messages(chat), true).unwrap();
    assert_eq!(out, chat["rendered_prompt"].as_str().unwrap());
    assert_eq!(out, chat["prompt"].as_str().unwrap());
}

#[test]
fn gemma_builtin_conversation() {
    let t = ChatTemplate::builtin("gemma").unwrap();
    assert_eq!(
        t.render(&conversation(), true).unwrap(),
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n\
         <start_of_turn>model\nHello!<end_of_turn>\n\
         <start_of_turn>user\nWhat is 2+2?<end_of_turn>\n\
         <start_of_turn>model\n"
    );
}

#[test]
fn chatml_builtin_conversation() {
    let t = ChatTemplate::builtin("chatml").unwrap();
    assert_eq!(
        t.render(&conversation(), true).unwrap(),
        "<|im_start|>system\n  Be brief.\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello! <|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(t.render(&[], false).unwrap(), "");
    assert!(matches!(
        ChatTemplate::builtin("llama9"),
        Err(TemplateError::UnknownBuiltin(_))
    ));
}

#[test]
fn raise_exception_is_an_error_with_its_message() {
    let src = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}";
    let t = ChatTemplate::jinja(src, "<s>", "</s>").unwrap();
    assert_eq!(t.render(&[Message::new("user", "ok")], true).unwrap(), "ok");
    match t.render(&conversation(), true) {
        Err(TemplateError::Raised(m)) => assert_eq!(m, "System role not supported"),
        other => panic!("expected Raised, got {other:?}"),
    }
}

#[test]
fn hf_style_template_with_whitespace_control() {
    // Shaped like the Llama 3 / Gemma HF templates: block tags on their own lines.
    let src = "{{ bos_token }}\n{% if messages[0]['role'] == 'system' %}\n    {% set sys = messages[0]['content'] | trim + '\\n\\n' %}\n    {% set rest = messages[1:] %}\n{% else %}\n    {% set sys = '' %}\n    {% set rest = messages %}\n{% endif %}\n{% for message in rest %}\n    {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n    {% endif %}\n    {% set role = 'model' if message['role'] == 'assistant' else message['role'] %}\n{{ '<start_of_turn>' + role + '\\n' + (sys if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}\n{% endfor %}\n{% if add_generation_prompt %}\n{{'<start_of_turn>model\\n'}}\n{% endif %}\n";
    let t = ChatTemplate::jinja(src, "<bos>", "<eos>").unwrap();
    // Checked against Python Jinja2 3.1 (trim_blocks, lstrip_blocks): the newline after a
    // block tag goes, the one after a `{{ }}` expression stays.
    assert_eq!(
        t.render(&conversation(), true).unwrap(),
        "<bos>\n<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n\n\
         <start_of_turn>model\nHello!<end_of_turn>\n\n\
         <start_of_turn>user\nWhat is 2+2?<end_of_turn>\n\n\
         <start_of_turn>model\n\n"
    );
    let bad = [Message::new("user", "a"), Message::new("user", "b")];
    assert!(matches!(
        t.render(&bad, true),
        Err(TemplateError::Raised(_))
    ));
}

#[test]
fn malformed_templates_are_errors_not_panics() {
    for src in [
        "{% for m in messages %}",
        "{{ messages[0 }}",
        "{% if %}",
        "{% endfor %}",
        "{{ }}",
        "{% macro %}",
    ] {
        match ChatTemplate::jinja(src, "", "") {
            Err(TemplateError::Syntax(_)) => {}
            other => panic!("{src:?}: expected a syntax error, got {other:?}"),
        }
    }
    // Valid syntax that fails at render time.
    for src in [
        "{{ messages | nosuchfilter }}",
        "{{ nosuchfunction() }}",
        "{{ messages[0].content + 1 }}",
        "{{ 1 / 0 }}",
        "{{ messages | tojson(bogus=1) }}",
    ] {
        let t = ChatTemplate::jinja(src, "", "").unwrap();
        assert!(
            t.render(&[Message::new("user", "x")], true).is_err(),
            "{src:?}"
        );
    }
}

fn synthetic_gguf(arch: &str, template: Option<&str>, add_bos: bool) -> GgufFile {
    use hearth::gguf::write::{Value, Writer};
    let mut w = Writer::new();
    w.kv("general.architecture", Value::str(arch))
        .kv(
            "tokenizer.ggml.tokens",
            Value::strs(&["<unk>", "<s>", "</s>", "a"]),
        )
        .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Value::U32(2))
        .kv("tokenizer.ggml.add_bos_token", Value::Bool(add_bos));
    if let Some(t) = template {
        w.kv("tokenizer.chat_template", Value::str(t));
    }
    GgufFile::from_bytes(w.build().0).unwrap()
}

#[test]
fn gguf_without_template_or_known_architecture_falls_back_to_chatml_with_warning() {
    let f = synthetic_gguf("llama", None, false);
    let (t, note) = ChatTemplate::from_gguf(&f).unwrap();
    assert_eq!(t.name(), "chatml");
    let note = note.unwrap();
    assert!(
        note.starts_with("warning") && note.contains("ChatML"),
        "{note}"
    );
    let out = t.render(&[Message::new("user", "hi")], true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn gguf_template_gets_vocab_bos_eos_and_bos_is_not_doubled() {
    let src = "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{{ eos_token }}{% endfor %}";
    // add_bos_token = false: the template's BOS text stays.
    let (t, _) = ChatTemplate::from_gguf(&synthetic_gguf("llama", Some(src), false)).unwrap();
    assert_eq!(t.source(), Some(src));
    assert_eq!(
        t.render(&[Message::new("user", "x")], false).unwrap(),
        "<s>[x]</s>"
    );
    // add_bos_token = true: the tokenizer adds BOS, so like llama.cpp the text loses it.
    let (t, _) = ChatTemplate::from_gguf(&synthetic_gguf("llama", Some(src), true)).unwrap();
    assert_eq!(
        t.render(&[Message::new("user", "x")], false).unwrap(),
        "[x]</s>"
    );
}

#[test]
fn broken_gguf_template_is_an_error() {
    let f = synthetic_gguf("llama", Some("{% for m in messages %}"), false);
    assert!(matches!(
        ChatTemplate::from_gguf(&f),
        Err(TemplateError::Syntax(_))
    ));
}

/// Qwen3's chat template (`tests/data/templates/qwen3.jinja`, from the Qwen3 models'
/// tokenizer_config.json) renders like Python Jinja2 3.1 with HF's settings: the
/// `<think>` block of an earlier assistant turn is dropped, the last turn's is kept, and
/// `namespace`, `messages[::-1]`, `.split()`, `.lstrip()`/`.rstrip()`/`.strip()` work.
#[test]
fn qwen3_template_with_think_blocks() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/templates/");
    let src = std::fs::read_to_string(format!("{dir}qwen3.jinja")).unwrap();
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}qwen3.expected.json")).unwrap())
            .unwrap();
    let t = ChatTemplate::jinja(&src, "", "<|im_end|>").unwrap();
    for (name, case) in cases.as_object().unwrap() {
        let msgs = messages(case);
        let gen_prompt = name != "user-assistant-thinking-last";
        assert_eq!(
            t.render(&msgs, gen_prompt).unwrap(),
            case["expected"].as_str().unwrap(),
            "{name}"
        );
    }
}

/// Qwen3's template with a request's `think`: `enable_thinking: false` closes an empty
/// thinking block in the prompt (the model answers directly); unset or true leaves the
/// block to the model; its thinking is read as a model that thinks.
#[test]
fn qwen3_template_enable_thinking() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/templates/");
    let src = std::fs::read_to_string(format!("{dir}qwen3.jinja")).unwrap();
    let t = ChatTemplate::jinja(&src, "", "<|im_end|>").unwrap();
    assert!(hearth::generate::thinking::supported(&t));
    let msgs = [Message::new("user", "hi")];
    let off = t.render_for(&msgs, &[], Some((false, "")), true).unwrap();
    assert!(
        off.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        "{off:?}"
    );
    assert!(!hearth::generate::thinking::prompt_opens_thinking(&off));
    for think in [None, Some((true, ""))] {
        let on = t.render_for(&msgs, &[], think, true).unwrap();
        assert!(on.ends_with("<|im_start|>assistant\n"), "{on:?}");
    }
}
