//! Go templates from Ollama's registry and repository, rendered like Ollama does.

use hearth::template::gotmpl::{
    render_chat, ChatMessage, GoTemplate, GoTemplateError, TemplateData, ToolCall, Value,
};
use hearth::template::Message;
use serde_json::json;

fn load(name: &str) -> GoTemplate {
    let path = format!("{}/tests/data/templates/{name}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap();
    GoTemplate::parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn chat(t: &GoTemplate, msgs: &[(&str, &str)]) -> String {
    let msgs: Vec<Message> = msgs.iter().map(|(r, c)| Message::new(*r, *c)).collect();
    render_chat(t, &msgs, &[], true).unwrap()
}

const USER: &[(&str, &str)] = &[("user", "Hello")];
const SYS_USER: &[(&str, &str)] = &[("system", "You are terse."), ("user", "Hello")];
const MULTI: &[(&str, &str)] = &[
    ("user", "Hi"),
    ("assistant", "Hello!"),
    ("user", "How are you?"),
];

#[test]
fn ollama_repo_goldens() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("user", &[("user", "Hello, how are you?")]),
        (
            "user-assistant-user",
            &[
                ("user", "Hello, how are you?"),
                ("assistant", "I'm doing great. How can I help you today?"),
                ("user", "I'd like to show off how chat templating works!"),
            ],
        ),
        (
            "system-user-assistant-user",
            &[
                ("system", "You are a helpful assistant."),
                ("user", "Hello, how are you?"),
                ("assistant", "I'm doing great. How can I help you today?"),
                ("user", "I'd like to show off how chat templating works!"),
            ],
        ),
    ];
    for name in ["chatml", "llama3-instruct", "gemma3-instruct"] {
        let t = load(&format!("ollama-{name}.gotmpl"));
        for (case, msgs) in cases {
            let path = format!(
                "{}/tests/data/templates/ollama-{name}.{case}.expected",
                env!("CARGO_MANIFEST_DIR")
            );
            let want = std::fs::read_to_string(path).unwrap();
            assert_eq!(chat(&t, msgs), want, "{name} {case}");
        }
    }
}

#[test]
fn qwen25() {
    let t = load("qwen2.5.gotmpl");
    assert_eq!(
        chat(&t, USER),
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        chat(&t, SYS_USER),
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        chat(&t, MULTI),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n\
         <|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n"
    );
    // Consecutive user messages merge; several system messages join into .System.
    assert_eq!(
        chat(&t, &[("system", "A"), ("system", "B"), ("user", "x"), ("user", "y")]),
        "<|im_start|>system\nA\n\nB<|im_end|>\n<|im_start|>user\nx\n\ny<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn qwen25_tools() {
    let t = load("qwen2.5.gotmpl");
    let tool = json!({"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a <city> & more",
        "parameters": {"type": "object", "required": ["city"],
            "properties": {"city": {"type": "string", "description": "City name", "x-extra": 1}}}}});
    let data = TemplateData {
        messages: vec![
            ChatMessage::new("user", "Weather in Paris?"),
            ChatMessage {
                role: "assistant".into(),
                tool_calls: vec![ToolCall {
                    name: "get_weather".into(),
                    arguments: json!({"city": "Paris", "days": 2}),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ChatMessage::new("tool", "18C"),
        ],
        tools: vec![tool],
        ..Default::default()
    };
    let want = "<|im_start|>system\n\n# Tools\n\n\
You may call one or more functions to assist with the user query.\n\n\
You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n\
{\"type\": \"function\", \"function\": {\"name\":\"get_weather\",\"description\":\"Weather for a \\u003ccity\\u003e \\u0026 more\",\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{\"city\":{\"type\":\"string\",\"description\":\"City name\"}}}}}\n\
</tools>\n\n\
For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n\
<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n\
<|im_start|>user\nWeather in Paris?<|im_end|>\n\
<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\",\"days\":2}}\n</tool_call><|im_end|>\n\
<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(t.render(&data).unwrap(), want);
}

#[test]
fn gemma3() {
    let t = load("gemma3.gotmpl");
    assert_eq!(
        chat(&t, USER),
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        chat(&t, SYS_USER),
        "<start_of_turn>user\nYou are terse.<end_of_turn>\n<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        chat(&t, MULTI),
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
         <start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n"
    );
}

#[test]
fn llama31_registry() {
    let t = load("llama3.1.gotmpl");
    // The `<|eot_id|>` after the system block sits outside its `if`: emitted even without one.
    assert_eq!(
        chat(&t, USER),
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(
        chat(&t, SYS_USER),
        "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(
        chat(&t, MULTI),
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn legacy_mode_runs_per_turn_and_cuts_after_response() {
    let t = GoTemplate::parse(
        "{{ if .System }}S:{{ .System }}\n{{ end }}U:{{ .Prompt }}\nA:{{ .Response }}</s>\n",
    )
    .unwrap();
    assert!(!t.uses_messages());
    let msgs = [
        ("system", "sys"),
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "How?"),
    ];
    assert_eq!(chat(&t, &msgs), "S:sys\nU:Hi\nA:Hello</s>\nU:How?\nA:");
    // A trailing assistant message is continued (prefill).
    assert_eq!(chat(&t, &msgs[..3]), "S:sys\nU:Hi\nA:Hello");
    // No .Response and no .Messages: `{{ .Response }}` is appended.
    let d = GoTemplate::default_template();
    assert_eq!(chat(&d, &msgs), "HiHelloHow?");
    assert_eq!(chat(&d, &[("user", "x")]), "x");
}

#[test]
fn constructs() {
    let root = Value::from_json(&json!({
        "Response": "", "xs": ["a", "b", "c"], "m": {"k2": 2, "k1": 1}, "s": "str", "n": 3, "f": 0.5, "t": true
    }));
    let r = |src: &str| GoTemplate::parse(src).unwrap().execute(&root).unwrap();
    assert_eq!(
        r("{{ range $i, $x := .xs }}{{ $i }}={{ $x }};{{ end }}"),
        "0=a;1=b;2=c;"
    );
    assert_eq!(
        r("{{ range $k, $v := .m }}{{ $k }}:{{ $v }} {{ end }}"),
        "k1:1 k2:2 "
    );
    assert_eq!(
        r("{{ range .xs }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}"),
        "a"
    );
    assert_eq!(
        r("{{ range .xs }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}"),
        "ac"
    );
    assert_eq!(r("{{ range .none }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(r("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        r("{{ with .s }}[{{ . }}]{{ end }}{{ with .none }}no{{ else with .n }}{{ . }}{{ end }}"),
        "[str]3"
    );
    assert_eq!(
        r("{{ if not .t }}1{{ else if eq .n 2 }}2{{ else if eq .n 3 4 }}3{{ else }}4{{ end }}"),
        "3"
    );
    assert_eq!(
        r("{{ $x := 1 }}{{ range .xs }}{{ $x = . }}{{ end }}{{ $x }}"),
        "c"
    );
    assert_eq!(r("{{ len .xs }} {{ index .xs 1 }} {{ index .m \"k2\" }} {{ slice .s 1 3 }} {{ len (slice .xs 1) }}"), "3 b 2 tr 2");
    assert_eq!(
        r("{{ and .t .s }} {{ or .none 0 \"z\" }} {{ and .none .boom.boom }}"),
        "str z <no value>"
    );
    assert_eq!(
        r("{{ .s | printf \"%s!\" }} {{ print 1 2 }} {{ \"q\\\"\\n\" | json }}"),
        "str! 1 2 \"q\\\"\\n\""
    );
    assert_eq!(
        r("{{ lt 1 2 }} {{ ge .f 0.5 }} {{ ne .s \"x\" }} {{ gt -1 -2 }}"),
        "true true true true"
    );
    assert_eq!(
        r("{{ json .m }} {{ .xs }} {{ .m }}"),
        "{\"k1\":1,\"k2\":2} [a b c] map[k1:1 k2:2]"
    );
    assert_eq!(r("a  {{- /* c */ -}}  b{{/* x */}}c"), "abc");
    assert_eq!(
        r("{{ .missing }}|{{ if .missing }}x{{ end }}|{{ $.s }}|{{ `raw\\n` }}"),
        "<no value>||str|raw\\n"
    );
    assert_eq!(
        r("{{ (index .xs 0) }}{{ -1 }}{{ 1.5 }}{{ 0x10 }}"),
        "a-11.516"
    );
    assert_eq!(
        GoTemplate::parse("{{ currentDate }} {{ yesterdayDate }}")
            .unwrap()
            .render(&TemplateData {
                today: Some((2024, 3, 1)),
                ..Default::default()
            })
            .unwrap(),
        "2024-03-01 2024-02-29"
    );
}

#[test]
fn to_typescript_type() {
    let t = GoTemplate::parse(
        "{{ range .Messages }}{{ end }}{{ range .Tools }}{{ range $k, $p := .Function.Parameters.Properties }}{{ $k }}: {{ toTypeScriptType $p }}; {{ end }}{{ end }}",
    )
    .unwrap();
    let tool = json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "string"}},
                       "c": {"type": ["string", "null"]}, "d": {"anyOf": [{"type": "boolean"}, {"type": "object"}]}}}}});
    let out = t
        .render(&TemplateData {
            messages: vec![ChatMessage::new("user", "x")],
            tools: vec![tool],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        out,
        "a: number; b: string[]; c: string | null; d: boolean | Record<string, any>; "
    );
}

#[test]
fn errors_not_panics() {
    let parse_err = |s: &str| match GoTemplate::parse(s) {
        Err(GoTemplateError::Parse { .. }) => {}
        other => panic!("{s:?}: {other:?}"),
    };
    parse_err("{{ .Prompt ");
    parse_err("{{ if .X }}never closed");
    parse_err("{{ end }}");
    parse_err("{{ else }}");
    parse_err("{{ .X | }}");
    parse_err("{{ | .X }}");
    parse_err("{{ (.X }}");
    parse_err("{{ \"open }}");
    parse_err("{{ /* open }}");
    parse_err("{{ 1.2.3 }}");
    parse_err("{{ define \"x\" }}{{ end }}");
    parse_err("{{ if }}{{ end }}");
    parse_err("{{ range .X }}{{ else }}{{ else }}{{ end }}");
    parse_err("{{ @ }}");
    let msg = GoTemplate::parse("a\nb\n{{ .X").unwrap_err().to_string();
    assert!(msg.contains("line 3"), "{msg}");

    let exec_err = |s: &str| {
        let t = GoTemplate::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        match t.execute(&Value::from_json(&json!({"s": "x", "xs": [1]}))) {
            Err(GoTemplateError::Exec(_)) => {}
            other => panic!("{s:?}: {other:?}"),
        }
    };
    exec_err("{{ nosuchfunc 1 }}");
    exec_err("{{ .s 1 }}");
    exec_err("{{ .missing.deeper }}");
    exec_err("{{ index .xs 5 }}");
    exec_err("{{ slice .xs 2 1 }}");
    exec_err("{{ len 3 }}");
    exec_err("{{ eq .xs 1 }}");
    exec_err("{{ $undefined }}");
    exec_err("{{ break }}");
    exec_err("{{ not }}");

    // Bounded: a huge range or output stops with a limit error.
    let big = GoTemplate::parse("{{ range 100000000 }}{{ end }}").unwrap();
    assert!(matches!(
        big.execute(&Value::Nil),
        Err(GoTemplateError::Limit(_))
    ));
    let boom = GoTemplate::parse(
        "{{ $s := \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" }}{{ range 9000000 }}{{ $s }}{{ end }}",
    )
    .unwrap();
    assert!(matches!(
        boom.execute(&Value::Nil),
        Err(GoTemplateError::Limit(_))
    ));
}

#[test]
fn junk_never_panics() {
    let pieces = [
        "{{", "}}", "{{-", "-}}", " ", "\n", ".X", "$x", ":=", "=", "|", "(", ")", "if", "else",
        "end", "range", "with", "\"s\"", "`r`", "1", "-", "eq", "/*", "*/", "$", ".", ",", "len",
        "break", "é",
    ];
    let mut state = 0x1234_5678_9abc_def1u64;
    for _ in 0..20000 {
        let mut s = String::new();
        for _ in 0..(state % 14) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.push_str(pieces[(state % pieces.len() as u64) as usize]);
        }
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if let Ok(t) = GoTemplate::parse(&s) {
            let _ = t.execute(&Value::from_json(&json!({"X": [1, 2], "Messages": []})));
            let _ = render_chat(&t, &[Message::new("user", "hi")], &[], true);
        }
    }
}
