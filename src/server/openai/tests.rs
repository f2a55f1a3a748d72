//! Unit tests of the request mapping and the streamed events.

use super::*;

fn common(v: Value) -> Common {
    serde_json::from_value(v).unwrap()
}

#[test]
fn options_precedence() {
    let c = common(
        json!({"model": "m", "options": {"temperature": 0.5, "top_k": 3},
                          "top_p": 0.9, "stop": "x", "num_ctx": 512}),
    );
    let o = c.ollama_options(Some(7), Some(16)).unwrap();
    assert_eq!(o["temperature"], json!(0.5));
    assert_eq!(o["top_p"], json!(0.9));
    assert_eq!(o["top_k"], json!(3));
    assert_eq!(o["num_predict"], json!(7));
    assert_eq!(o["stop"], json!(["x"]));
    assert_eq!(o["num_ctx"], json!(512));
    let c = common(json!({"model": "m", "temperature": 0, "stop": []}));
    let o = c.ollama_options(None, None).unwrap();
    assert_eq!(o["temperature"], json!(0.0));
    assert_eq!(o["top_p"], json!(1.0));
    assert!(o.get("num_predict").is_none() && o.get("stop").is_none());
    assert!(c.ollama_options(Some(0), None).is_err());
    let c = common(json!({"model": "m", "stop": [1]}));
    assert!(c.ollama_options(None, None).is_err());
}

#[test]
fn checks() {
    assert!(common(json!({"model": "m", "n": 1})).check().is_ok());
    let e = common(json!({"model": "m", "n": 2})).check().unwrap_err();
    assert_eq!(e.message, "n > 1 is not supported");
    assert!(common(json!({"model": "m", "n": 0})).check().is_err());
    assert!(common(json!({"model": ""})).check().is_err());
    let lp = |v: Value, chat: bool| common(v).logprobs(chat);
    assert_eq!(
        lp(json!({"model": "m", "logprobs": false}), true).unwrap(),
        None
    );
    assert_eq!(
        lp(json!({"model": "m", "logprobs": true}), true).unwrap(),
        Some(0)
    );
    assert_eq!(
        lp(
            json!({"model": "m", "logprobs": true, "top_logprobs": 5}),
            true
        )
        .unwrap(),
        Some(5)
    );
    assert!(lp(json!({"model": "m", "top_logprobs": 5}), true).is_err());
    assert!(lp(
        json!({"model": "m", "logprobs": true, "top_logprobs": 21}),
        true
    )
    .is_err());
    assert!(lp(json!({"model": "m", "logprobs": 3}), true).is_err());
    // /v1/completions has none.
    assert!(lp(json!({"model": "m", "logprobs": 3}), false).is_err());
    assert_eq!(
        lp(json!({"model": "m", "logprobs": 0}), false).unwrap(),
        None
    );
    let fmt = |v: Value, nested: bool| output_format(Some(&v), nested);
    assert_eq!(
        fmt(json!({"type": "json_object"}), true).unwrap(),
        Some(Format::Json)
    );
    assert_eq!(fmt(json!({"type": "text"}), true).unwrap(), None);
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    assert_eq!(
        fmt(
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}),
            true
        )
        .unwrap(),
        Some(Format::Schema(schema.clone()))
    );
    assert_eq!(
        fmt(
            json!({"type": "json_schema", "name": "x", "schema": schema}),
            false
        )
        .unwrap(),
        Some(Format::Schema(schema))
    );
    assert!(fmt(json!({"type": "json_schema", "name": "x"}), false).is_err());
    let unsupported = fmt(
        json!({"type": "json_schema", "json_schema": {"schema": {"type": "number", "multipleOf": 2}}}),
        true,
    );
    assert!(unsupported.unwrap_err().message.contains("multipleOf"));
    assert!(fmt(json!({"type": "xml"}), true).is_err());
    assert!(fmt(json!("json"), true).is_err());
}

#[test]
fn content_parts() {
    let parts = json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]);
    assert_eq!(message_text(0, &Some(parts)).ok().unwrap(), "a\nb");
    assert_eq!(message_text(0, &None).ok().unwrap(), "");
    let img = json!([{"type": "image_url", "image_url": {"url": "data:"}}]);
    assert!(matches!(
        message_text(0, &Some(img)),
        Err(ContentError::Image)
    ));
    for bad in [
        json!(3),
        json!([{"type": "text"}]),
        json!([{"type": "audio"}]),
    ] {
        assert!(matches!(
            message_text(0, &Some(bad)),
            Err(ContentError::Invalid(_))
        ));
    }
}

#[test]
fn prompts() {
    assert_eq!(completion_prompt(Some(json!("a"))).unwrap(), "a");
    assert_eq!(completion_prompt(Some(json!(["a"]))).unwrap(), "a");
    for bad in [
        None,
        Some(json!(["a", "b"])),
        Some(json!([1, 2])),
        Some(json!([])),
    ] {
        assert!(completion_prompt(bad).is_err());
    }
}
