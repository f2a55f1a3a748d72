//! Ollama's template data: [`ChatMessage`], [`ToolCall`] and [`TemplateData`], their
//! conversion into template [`Value`]s (tools included), `collate`, and the chat entry point
//! [`render_chat`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Field, GoTemplate, GoTemplateError, Struct, Value};
use crate::template::Message;

/// A tool call on an assistant message (`.ToolCalls[].Function.{Name,Arguments,Index}`, `.ID`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub index: i64,
    pub name: String,
    /// A JSON object.
    pub arguments: serde_json::Value,
}

/// One message as Ollama's templates see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    pub thinking: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_name: String,
    pub tool_call_id: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }
}

/// The inputs of Ollama's `Template.Execute` (`template.Values`).
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub messages: Vec<ChatMessage>,
    /// OpenAI-style tools: `{"type":"function","function":{"name","description","parameters"}}`.
    pub tools: Vec<serde_json::Value>,
    /// Only for the suffix (fill-in-the-middle) mode, with `suffix`.
    pub prompt: String,
    pub suffix: String,
    pub think: bool,
    pub think_level: String,
    pub is_think_set: bool,
    /// The date `currentDate` returns (year, month, day); `None` = today (UTC).
    pub today: Option<(i64, u32, u32)>,
}

fn st(fields: Vec<Field>, json_display: bool) -> Value {
    Value::Struct(Arc::new(Struct {
        fields,
        json_display,
    }))
}

fn f(name: &'static str, json: Option<&'static str>, omitempty: bool, value: Value) -> Field {
    Field {
        name,
        json,
        omitempty,
        value,
    }
}

fn jget<'a>(v: &'a serde_json::Value, k: &str) -> &'a serde_json::Value {
    v.get(k).unwrap_or(&serde_json::Value::Null)
}

fn jstr(v: &serde_json::Value, k: &str) -> Value {
    Value::str(jget(v, k).as_str().unwrap_or(""))
}

/// `api.ToolProperty`: fields in Go order, unknown keys dropped (as Ollama's decoding does).
fn tool_property(p: &serde_json::Value) -> Value {
    let list = |k: &str, conv: &dyn Fn(&serde_json::Value) -> Value| -> Value {
        match p.get(k).and_then(|v| v.as_array()) {
            Some(a) => Value::List(Arc::new(a.iter().map(conv).collect()), false),
            None => Value::Nil,
        }
    };
    let props = match p.get("properties").and_then(|v| v.as_object()) {
        Some(o) => Value::Map(
            Arc::new(
                o.iter()
                    .map(|(k, v)| (k.clone(), tool_property(v)))
                    .collect(),
            ),
            true,
        ),
        None => Value::Nil,
    };
    st(
        vec![
            f("AnyOf", Some("anyOf"), true, list("anyOf", &tool_property)),
            f(
                "Type",
                Some("type"),
                true,
                Value::from_json(jget(p, "type")),
            ),
            f(
                "Items",
                Some("items"),
                true,
                Value::from_json(jget(p, "items")),
            ),
            f(
                "Description",
                Some("description"),
                true,
                jstr(p, "description"),
            ),
            f("Enum", Some("enum"), true, list("enum", &Value::from_json)),
            f("Properties", Some("properties"), true, props),
            f(
                "Required",
                Some("required"),
                true,
                list("required", &Value::from_json),
            ),
        ],
        false,
    )
}

/// Ollama's `templateTool` for one OpenAI-style tool definition.
pub fn tool_value(t: &serde_json::Value) -> Value {
    let func = jget(t, "function");
    let params = jget(func, "parameters");
    let props = Value::Map(
        Arc::new(
            params
                .get("properties")
                .and_then(|v| v.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), tool_property(v)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        true,
    );
    let required = match params.get("required").and_then(|v| v.as_array()) {
        Some(a) => Value::List(Arc::new(a.iter().map(Value::from_json).collect()), false),
        None => Value::Nil,
    };
    let parameters = st(
        vec![
            f("Type", Some("type"), false, jstr(params, "type")),
            f(
                "Defs",
                Some("$defs"),
                true,
                Value::from_json(jget(params, "$defs")),
            ),
            f(
                "Items",
                Some("items"),
                true,
                Value::from_json(jget(params, "items")),
            ),
            f("Required", Some("required"), true, required),
            f("Properties", Some("properties"), false, props),
        ],
        false,
    );
    let function = st(
        vec![
            f("Name", Some("name"), false, jstr(func, "name")),
            f(
                "Description",
                Some("description"),
                false,
                jstr(func, "description"),
            ),
            f("Parameters", Some("parameters"), false, parameters),
        ],
        // Ollama HEAD's `templateToolFunction` lost the JSON `String` method `api.ToolFunction`
        // had, so `{{ .Function }}` prints Go's `{name desc {...}}` there; the registry templates
        // were written for JSON, which hearth keeps.
        true,
    );
    st(
        vec![
            f("Type", Some("type"), false, jstr(t, "type")),
            f(
                "Items",
                Some("items"),
                true,
                Value::from_json(jget(t, "items")),
            ),
            f("Function", Some("function"), false, function),
        ],
        true,
    )
}

pub(super) fn message_value(m: &ChatMessage) -> Value {
    let calls: Vec<Value> = m
        .tool_calls
        .iter()
        .map(|c| {
            let args = match Value::from_json(&c.arguments) {
                Value::Map(m, _) => Value::Map(m, true),
                _ => Value::Map(Arc::new(BTreeMap::new()), true),
            };
            st(
                vec![
                    f("ID", None, false, Value::str(&c.id)),
                    f(
                        "Function",
                        None,
                        false,
                        st(
                            vec![
                                f("Index", None, false, Value::Int(c.index)),
                                f("Name", None, false, Value::str(&c.name)),
                                f("Arguments", None, false, args),
                            ],
                            false,
                        ),
                    ),
                ],
                false,
            )
        })
        .collect();
    st(
        vec![
            f("Role", None, false, Value::str(&m.role)),
            f("Content", None, false, Value::str(&m.content)),
            f("Thinking", None, false, Value::str(&m.thinking)),
            f("Images", None, false, Value::Nil),
            f(
                "ToolCalls",
                None,
                false,
                if calls.is_empty() {
                    Value::Nil
                } else {
                    Value::List(Arc::new(calls), false)
                },
            ),
            f("ToolName", None, false, Value::str(&m.tool_name)),
            f("ToolCallID", None, false, Value::str(&m.tool_call_id)),
        ],
        false,
    )
}

/// Ollama's `collate`: all system contents joined with `\n\n`, and consecutive same-role
/// messages (except `tool`) merged with `\n\n`.
pub fn collate(msgs: &[ChatMessage]) -> (String, Vec<ChatMessage>) {
    let mut system = Vec::new();
    let mut out: Vec<ChatMessage> = Vec::new();
    for m in msgs {
        if m.role == "system" {
            system.push(m.content.as_str());
        }
        match out.last_mut() {
            Some(last) if last.role == m.role && m.role != "tool" => {
                last.content.push_str("\n\n");
                last.content.push_str(&m.content);
            }
            _ => out.push(m.clone()),
        }
    }
    (system.join("\n\n"), out)
}

/// Renders a conversation the way Ollama's chat endpoint does, with the offered `tools` (`.Tools`)
/// and the request's `think` (`.Think`, `.ThinkLevel`, `.IsThinkSet`; `None`: unset).
/// `add_generation_prompt` has no Ollama equivalent: Go templates decide themselves (they open
/// an assistant turn unless the last message is from the assistant; legacy templates stop right
/// after `.Response`, so a trailing assistant message is continued). It is accepted for parity
/// with [`crate::template::ChatTemplate`] and ignored.
pub fn render_chat(
    tmpl: &GoTemplate,
    messages: &[Message],
    tools: &[serde_json::Value],
    think: Option<(bool, &str)>,
    add_generation_prompt: bool,
) -> std::result::Result<String, GoTemplateError> {
    let _ = add_generation_prompt;
    let data = TemplateData {
        messages: messages
            .iter()
            .map(|m| ChatMessage {
                tool_calls: m
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ToolCall {
                        id: c.id.clone(),
                        index: i as i64,
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
                tool_name: m.tool_name.clone().unwrap_or_default(),
                tool_call_id: m.tool_call_id.clone().unwrap_or_default(),
                thinking: m.thinking.clone(),
                ..ChatMessage::new(&m.role, &m.content)
            })
            .collect(),
        tools: tools.to_vec(),
        think: think.is_some_and(|(on, _)| on),
        think_level: think.map(|(_, l)| l.to_string()).unwrap_or_default(),
        is_think_set: think.is_some(),
        ..Default::default()
    };
    tmpl.render(&data)
}
