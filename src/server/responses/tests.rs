//! Unit tests of the request mapping, the refusals and the streamed events.

use super::*;

fn turns(instructions: Option<&str>, input: Value) -> Vec<(String, String)> {
    match conversation(instructions, &Some(input)) {
        Ok(m) => m.into_iter().map(|m| (m.role, m.content)).collect(),
        Err(InputError::Invalid(e)) => panic!("invalid: {e}"),
        Err(InputError::Media(k)) => panic!("media: {k}"),
    }
}

fn refusal(input: Value) -> String {
    match conversation(None, &Some(input)) {
        Ok(m) => panic!("accepted: {}", m.len()),
        Err(InputError::Invalid(e)) => e,
        Err(InputError::Media(k)) => format!("media {k}"),
    }
}

fn pair(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

#[test]
fn string_and_items() {
    assert_eq!(
        turns(Some("be brief"), json!("hi")),
        [pair("system", "be brief"), pair("user", "hi")]
    );
    let input = json!([
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{\"x\":1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "2"},
        {"type": "reasoning", "summary": []},
        {"role": "assistant", "content": [{"type": "output_text", "text": "It is 2."}]},
        {"role": "user", "content": "thanks"},
    ]);
    assert_eq!(
        turns(None, input),
        [
            pair("system", "rules"),
            pair("user", "a\nb"),
            pair("assistant", ""),
            pair("tool", "2"),
            pair("assistant", "It is 2."),
            pair("user", "thanks"),
        ]
    );
    // A call after assistant text joins that turn; a result names its call's function.
    let input = json!([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "let me see"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"a\": [1]}"},
        {"type": "function_call", "call_id": "d", "name": "g", "arguments": "not json"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
        {"role": "user", "content": "so?"},
    ]);
    let m = match conversation(None, &Some(input)) {
        Ok(m) => m,
        Err(_) => panic!("refused"),
    };
    assert_eq!(m.len(), 4);
    assert_eq!(m[1].content, "let me see");
    assert_eq!(m[1].tool_calls.len(), 2);
    assert_eq!(m[1].tool_calls[0].arguments, json!({"a": [1]}));
    assert_eq!(m[1].tool_calls[1].arguments, json!("not json"));
    assert_eq!(m[2].role, "tool");
    assert_eq!(m[2].tool_name.as_deref(), Some("f"));
    assert_eq!(m[2].tool_call_id.as_deref(), Some("c"));
}

#[test]
fn refusals() {
    assert!(matches!(
        conversation(None, &None),
        Err(InputError::Invalid(e)) if e == "input is required"
    ));
    assert!(refusal(json!([])).contains("at least one"));
    assert!(refusal(json!(3)).contains("input"));
    assert!(refusal(json!([3])).contains("input[0]"));
    assert!(refusal(json!([{"content": "x"}])).contains("type"));
    assert!(refusal(json!([{"role": "tool", "content": "x"}])).contains("role"));
    assert!(refusal(json!([{"type": "item_reference", "id": "x"}])).contains("stores"));
    assert!(refusal(json!([{"type": "web_search_call"}])).contains("web_search_call"));
    assert_eq!(
        refusal(json!([{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png;base64,AA"}]}])),
        "media images"
    );
    assert!(
        refusal(json!([{"role": "user", "content": [{"type": "input_file"}]}]))
            .contains("input_file")
    );
    assert!(
        refusal(json!([{"role": "user", "content": [{"type": "input_text"}]}])).contains("text")
    );
}

fn done(reason: DoneReason) -> Done {
    Done {
        reason,
        stats: crate::generate::Stats {
            eval_count: 2,
            ..Default::default()
        },
        reused: 1,
        prompt_len: 5,
        tokens: vec![1, 2],
    }
}

/// The (name, data) of framed events; asserts the sequence numbers count from 0.
fn parse(events: &[Bytes]) -> Vec<(String, Value)> {
    let out: Vec<(String, Value)> = events
        .iter()
        .map(|b| {
            let s = std::str::from_utf8(b).unwrap();
            let (event, data) = s.trim_end().split_once('\n').unwrap();
            let name = event.strip_prefix("event: ").unwrap().to_string();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(v["type"], name.as_str());
            (name, v)
        })
        .collect();
    for (i, (_, v)) in out.iter().enumerate() {
        assert_eq!(v["sequence_number"], i);
    }
    out
}

fn reply() -> Reply {
    let req: ResponsesRequest =
        serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap();
    Reply::new(&req, json!({"type": "text"}), 1.0, 1.0)
}

#[test]
fn stream_events() {
    for (reason, last, status) in [
        (DoneReason::Stop, "response.completed", "completed"),
        (DoneReason::Length, "response.incomplete", "incomplete"),
    ] {
        let mut r = reply();
        let mut out = r.opening();
        out.extend(r.text("Hel"));
        out.extend(r.text("lo"));
        out.extend(r.done(&done(reason)));
        let ev = parse(&out);
        assert_eq!(ev.len(), 10);
        assert_eq!(ev[9].0, last);
        let whole = &ev[9].1["response"];
        assert_eq!(whole["status"], status);
        assert_eq!(whole["output"][0]["status"], status);
        assert_eq!(whole["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(
            whole["usage"],
            json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 1},
                   "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": 7})
        );
        assert_eq!(ev[6].1["text"], "Hello");
    }
    // A failure mid-stream: an error event, then response.failed with the text so far.
    let mut r = reply();
    let mut out = r.opening();
    out.extend(r.text("Hel"));
    out.extend(r.error("boom"));
    let ev = parse(&out);
    assert_eq!(ev[5].0, "error");
    assert_eq!(ev[5].1["code"], "server_error");
    assert_eq!(ev[5].1["message"], "boom");
    assert_eq!(ev[6].0, "response.failed");
    let failed = &ev[6].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        json!({"code": "server_error", "message": "boom"})
    );
    assert_eq!(failed["output"][0]["content"][0]["text"], "Hel");
}

#[test]
fn reasoning_and_calls_stream_as_items() {
    use crate::generate::output::{OutputSpec, Thinking};
    use crate::generate::tools::CallSyntax;
    let spec = OutputSpec {
        tools: Some(CallSyntax::Tagged {
            open: "<tool_call>".into(),
            close: "</tool_call>".into(),
        }),
        thinking: Some(Thinking {
            inside: false,
            keep: true,
        }),
    };
    let mut r = reply().reading(spec);
    let mut out = r.opening();
    for piece in [
        "<think>\nneed ",
        "weather\n</think>\n\n<tool_call>\n{\"name\": \"w\", ",
        "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    ] {
        out.extend(r.text(piece));
    }
    out.extend(r.done(&done(DoneReason::Stop)));
    let ev = parse(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let output = &ev[13].1["response"]["output"];
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["content"][0]["text"], "need weather");
    assert_eq!(output[1]["type"], "function_call");
    assert_eq!(output[1]["name"], "w");
    assert_eq!(output[1]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(ev[9].1["output_index"], 1);
    assert_eq!(ev[9].1["item"]["id"], output[1]["id"]);
}

#[test]
fn formats_and_options() {
    assert_eq!(text_format(&None).unwrap(), (json!({"type": "text"}), None));
    let json_object = json!({"format": {"type": "json_object"}});
    assert_eq!(
        text_format(&Some(json_object)).unwrap(),
        (json!({"type": "json_object"}), Some(Format::Json))
    );
    let schema = json!({"format": {"type": "json_schema", "name": "x",
                                   "schema": {"type": "object"}}});
    let (echoed, format) = text_format(&Some(schema.clone())).unwrap();
    assert_eq!(echoed, schema["format"]);
    assert_eq!(format, Some(Format::Schema(json!({"type": "object"}))));
    assert!(text_format(&Some(json!({"format": {"type": "json_schema"}}))).is_err());
    assert!(text_format(&Some(json!({"format": {"type": "xml"}}))).is_err());
    assert!(text_format(&Some(json!("json"))).is_err());
    assert!(truncation(&Some("auto".into())).unwrap());
    assert!(!truncation(&None).unwrap());
    assert!(truncation(&Some("sometimes".into())).is_err());
    let req: ResponsesRequest = serde_json::from_value(json!({
        "model": "m", "temperature": 0, "max_output_tokens": 5,
        "options": {"top_p": 0.5, "seed": 1}}))
    .unwrap();
    let o = generation_options(&req);
    assert_eq!(o["temperature"], json!(0.0));
    assert_eq!(o["top_p"], json!(0.5));
    assert_eq!(o["num_predict"], json!(5));
    assert_eq!(o["seed"], json!(1));
}
