//! Unit tests of the request mapping, the refusals and the streamed events.

use super::*;

fn request(v: Value) -> MessagesRequest {
    serde_json::from_value(v).unwrap()
}

fn text_of(r: Result<Vec<Message>, ContentError>) -> Vec<(String, String)> {
    match r {
        Ok(m) => m.into_iter().map(|m| (m.role, m.content)).collect(),
        Err(ContentError::Invalid(e)) => panic!("invalid: {e}"),
        Err(ContentError::Media(k)) => panic!("media: {k}"),
    }
}

fn error_of(r: Result<Vec<Message>, ContentError>) -> String {
    match r {
        Ok(_) => panic!("accepted"),
        Err(ContentError::Invalid(e)) => e,
        Err(ContentError::Media(k)) => format!("media {k}"),
    }
}

#[test]
fn system_blocks_and_turns() {
    let r = request(
        json!({"model": "m", "system": [{"type": "text", "text": "a"},
                                                    {"type": "text", "text": "b"}],
        "messages": [{"role": "user", "content": "hi"},
                     {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
                     {"role": "user", "content": [
                         {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                         {"type": "text", "text": "and?"}]}]}),
    );
    assert_eq!(
        text_of(conversation(&r)),
        [
            ("system".into(), "a\nb".into()),
            ("user".into(), "hi".into()),
            ("assistant".into(), "yo".into()),
            ("tool".into(), "42".into()),
            ("user".into(), "and?".into()),
        ]
    );
    // An empty system string is no system message (the model's applies).
    let r = request(json!({"system": "", "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(text_of(conversation(&r)).len(), 1);
}

#[test]
fn tool_use_and_results_reach_the_template() {
    let r = request(json!({"messages": [
        {"role": "user", "content": "add 1"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "use add", "signature": ""},
            {"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "2"}]}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "zz", "content": "boom", "is_error": true}]}]}));
    let m = conversation(&r).ok().unwrap();
    assert_eq!(m.len(), 4, "{m:?}");
    assert_eq!(m[1].role, "assistant");
    assert_eq!(m[1].thinking, "use add");
    assert_eq!(m[1].tool_calls.len(), 1);
    assert_eq!(m[1].tool_calls[0].name, "add");
    assert_eq!(m[1].tool_calls[0].arguments, json!({"a": 1}));
    // A result carries its call's id and, found through it, the function's name.
    assert_eq!((m[2].role.as_str(), m[2].content.as_str()), ("tool", "2"));
    assert_eq!(m[2].tool_call_id.as_deref(), Some("t1"));
    assert_eq!(m[2].tool_name.as_deref(), Some("add"));
    assert_eq!(m[3].content, "error: boom");
    assert_eq!(m[3].tool_name, None);
}

#[test]
fn tools_choices_and_thinking() {
    let t = agent::tools(&Some(vec![json!({"name": "f", "description": "d",
        "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}})]))
    .unwrap();
    assert_eq!(t[0]["function"]["name"], "f");
    assert_eq!(
        t[0]["function"]["parameters"]["properties"]["x"]["type"],
        "integer"
    );
    let e = agent::tools(&Some(vec![
        json!({"type": "web_search_20250305", "name": "w"}),
    ]));
    assert!(e.unwrap_err().message.contains("web_search"));
    use crate::generate::tools::ToolChoice;
    let choice = |v: Value| agent::tool_choice(&Some(v));
    assert_eq!(
        choice(json!({"type": "any"})).unwrap(),
        ToolChoice::Required
    );
    assert_eq!(choice(json!({"type": "none"})).unwrap(), ToolChoice::None);
    assert_eq!(
        choice(json!({"type": "tool", "name": "f"})).unwrap(),
        ToolChoice::Function("f".into())
    );
    assert!(choice(json!({"type": "tool"})).is_err());
    assert!(choice(json!({"type": "sometimes"})).is_err());
    use crate::generate::thinking::Think;
    let think = |t: Value, c: Value| agent::think(&Some(t), &Some(c));
    assert_eq!(
        think(json!({"type": "enabled", "budget_tokens": 1024}), json!({})).unwrap(),
        Some(Think::On)
    );
    assert_eq!(
        think(json!({"type": "disabled"}), json!({})).unwrap(),
        Some(Think::Off)
    );
    assert_eq!(
        think(json!({"type": "adaptive"}), json!({"effort": "low"})).unwrap(),
        Some(Think::Level("low".into()))
    );
    assert!(think(json!({"type": "maybe"}), json!({})).is_err());
    assert!(think(json!(null), json!({"effort": "extreme"})).is_err());
}

#[test]
fn refusals() {
    let bad = |v: Value| error_of(conversation(&request(v)));
    assert!(bad(json!({})).contains("messages: Field required"));
    assert!(bad(json!({"messages": []})).contains("at least one"));
    assert!(bad(json!({"messages": [{"role": "system", "content": "x"}]})).contains("role"));
    assert!(bad(json!({"messages": [{"role": "user", "content": 3}]})).contains("content"));
    assert!(bad(json!({"messages": [{"role": "user"}]})).contains("content"));
    assert_eq!(
        bad(json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "data": "AA"}}]}]})),
        "media image"
    );
    assert!(bad(json!({"messages": [{"role": "user", "content": [
        {"type": "text"}]}]}))
    .contains("text"));
    assert!(bad(json!({"messages": [{"role": "user", "content": [
        {"type": "audio"}]}]}))
    .contains("\"audio\""));
    assert!(bad(json!({"system": [{"type": "image"}],
                       "messages": [{"role": "user", "content": "x"}]}))
    .contains("system.0"));
}

#[test]
fn options_precedence() {
    let r = request(
        json!({"temperature": 0.5, "top_k": 3, "stop_sequences": ["X"],
                           "options": {"temperature": 0.1, "seed": 7}}),
    );
    let o = generation_options(&r, 9);
    assert_eq!(o["temperature"], json!(0.5));
    assert_eq!(o["seed"], json!(7));
    assert_eq!(o["top_k"], json!(3));
    assert_eq!(o["num_predict"], json!(9));
    assert_eq!(o["stop"], json!(["X"]));
    let o = generation_options(&request(json!({})), 1);
    assert_eq!(o["temperature"], json!(1.0));
    assert!(!o.contains_key("stop") && !o.contains_key("top_p"));
}

#[test]
fn error_event() {
    let b = stream_error("boom");
    let text = std::str::from_utf8(&b).unwrap();
    let data = text
        .strip_prefix("event: error\ndata: ")
        .and_then(|d| d.strip_suffix("\n\n"))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(data).unwrap(),
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    );
}

#[test]
fn output_formats() {
    assert_eq!(output_format(&None).unwrap(), None);
    assert_eq!(
        output_format(&Some(json!({"effort": "low"}))).unwrap(),
        None
    );
    let f = json!({"type": "json_schema", "schema": {"type": "object"}});
    assert_eq!(
        output_format(&Some(json!({"format": f}))).unwrap(),
        Some(Format::Schema(json!({"type": "object"})))
    );
    // A keyword outside the supported subset is named.
    let f = json!({"type": "json_schema", "schema": {"type": "object", "not": {}}});
    let e = output_format(&Some(json!({"format": f}))).unwrap_err();
    assert!(e.message.contains("not"), "{}", e.message);
    assert!(output_format(&Some(json!({"format": {"type": "json_schema"}}))).is_err());
    assert!(output_format(&Some(json!({"format": {"type": "xml"}}))).is_err());
    assert!(output_format(&Some(json!(1))).is_err());
}
