//! Ollama's prompt assembly on a parsed template: [`GoTemplate`] (parse with the
//! `{{ .Response }}` touch-up, execute, and `render` in messages, legacy and suffix modes), the
//! template analysis (Ollama's `Vars`) and the legacy-mode cut after `.Response`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::chat::{collate, message_value, tool_value, TemplateData};
use super::exec::Exec;
use super::funcs::today_utc;
use super::parse::{lex, perr, Arg, Node, Parser, Pipe, Stop};
use super::{GoTemplateError, Result, Value, MAX_OUTPUT};

// ---------------------------------------------------------------------------------------------
// Template analysis (Ollama's `Vars`) and the legacy-mode cut

fn idents(nodes: &[Node], out: &mut Vec<String>) {
    fn pipe(p: &Pipe, out: &mut Vec<String>) {
        for cmd in &p.cmds {
            for a in cmd {
                match a {
                    Arg::Field(path) => out.extend(path.iter().cloned()),
                    Arg::Var(v, path) => {
                        out.push(v.clone());
                        out.extend(path.iter().cloned());
                    }
                    // Go walks a parenthesised pipeline but not a chain `(...).Field`.
                    Arg::Paren(p, path) if path.is_empty() => pipe(p, out),
                    _ => {}
                }
            }
        }
    }
    for n in nodes {
        match n {
            Node::Action(p) => pipe(p, out),
            Node::Branch {
                pipe: p,
                list,
                else_list,
                ..
            } => {
                pipe(p, out);
                idents(list, out);
                if let Some(l) = else_list {
                    idents(l, out);
                }
            }
            _ => {}
        }
    }
}

/// Ollama's `deleteNode` pass for the last legacy turn: keep everything up to and including the
/// first `.Response` field (in walk order; `if` conditions are not walked), drop all after it.
fn cut_after_response(nodes: &[Node], cut: &mut bool) -> Vec<Node> {
    fn pipe(p: &Pipe, cut: &mut bool) -> Option<Pipe> {
        let mut cmds = Vec::new();
        for cmd in &p.cmds {
            let mut args = Vec::new();
            for a in cmd {
                if *cut {
                    continue;
                }
                match a {
                    Arg::Field(path) if path.iter().any(|f| f == "Response") => {
                        *cut = true;
                        args.push(a.clone());
                    }
                    Arg::Paren(inner, path) if path.is_empty() => {
                        if let Some(q) = pipe(inner, cut) {
                            args.push(Arg::Paren(Box::new(q), vec![]));
                        }
                    }
                    _ => args.push(a.clone()),
                }
            }
            if args.is_empty() {
                return None;
            }
            cmds.push(args);
        }
        (!cmds.is_empty()).then(|| Pipe {
            decl: p.decl.clone(),
            assign: p.assign,
            cmds,
        })
    }
    let mut out = Vec::new();
    for n in nodes {
        if *cut {
            break;
        }
        match n {
            Node::Action(p) => {
                if let Some(q) = pipe(p, cut) {
                    out.push(Node::Action(q));
                }
            }
            Node::Branch {
                kind,
                pipe: p,
                list,
                else_list,
            } => {
                let list = cut_after_response(list, cut);
                let else_list = else_list.as_ref().map(|l| cut_after_response(l, cut));
                out.push(Node::Branch {
                    kind: *kind,
                    pipe: p.clone(),
                    list,
                    else_list,
                });
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// A parsed Go template, with Ollama's `{{ .Response }}` touch-up applied.
#[derive(Debug, Clone)]
pub struct GoTemplate {
    nodes: Vec<Node>,
    vars: Vec<String>,
    raw: String,
}

impl GoTemplate {
    /// Parses `src`; a template that mentions neither `.Messages` nor `.Response` (as fields or
    /// `$.` variables, any case) gets `{{ .Response }}` appended, as Ollama does.
    pub fn parse(src: &str) -> std::result::Result<GoTemplate, GoTemplateError> {
        let items = lex(src)?;
        let mut p = Parser {
            items: items.into_iter(),
            depth: 0,
        };
        let (mut nodes, stop) = p.list()?;
        match stop {
            Stop::Eof => {}
            Stop::End => return perr(0, "unexpected {{end}}"),
            Stop::Else(_, line) => return perr(line, "unexpected {{else}}"),
        }
        let mut ids = Vec::new();
        idents(&nodes, &mut ids);
        let mut vars: Vec<String> = ids.iter().map(|s| s.to_lowercase()).collect();
        vars.sort();
        vars.dedup();
        if !vars.iter().any(|v| v == "messages" || v == "response") {
            nodes.push(Node::Action(Pipe {
                decl: vec![],
                assign: false,
                cmds: vec![vec![Arg::Field(vec!["Response".into()])]],
            }));
        }
        Ok(GoTemplate {
            nodes,
            vars,
            raw: src.to_string(),
        })
    }

    /// Ollama's default template, `{{ .Prompt }}` (plus the appended `{{ .Response }}`).
    pub fn default_template() -> GoTemplate {
        GoTemplate::parse("{{ .Prompt }}").expect("the default template parses")
    }

    /// The source text as given.
    pub fn source(&self) -> &str {
        &self.raw
    }

    /// Lower-cased identifiers the template mentions (Ollama's `Vars`).
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    /// Whether the template uses `.Messages` (Ollama's messages mode).
    pub fn uses_messages(&self) -> bool {
        self.vars.iter().any(|v| v == "messages")
    }

    /// Executes the template against `root` (the `.` and `$` of the template).
    pub fn execute(&self, root: &Value) -> std::result::Result<String, GoTemplateError> {
        self.execute_nodes(&self.nodes, root, today_utc())
    }

    fn execute_nodes(
        &self,
        nodes: &[Node],
        root: &Value,
        today: (i64, u32, u32),
    ) -> Result<String> {
        let mut ex = Exec {
            vars: vec![("$".into(), root.clone())],
            out: String::new(),
            steps: 0,
            today,
        };
        ex.list(nodes, root, false)?;
        if ex.out.len() > MAX_OUTPUT {
            return Err(GoTemplateError::Limit(format!(
                "output larger than {MAX_OUTPUT} bytes"
            )));
        }
        Ok(ex.out)
    }

    /// Ollama's `Template.Execute`: suffix mode, messages mode, or legacy per-turn mode.
    pub fn render(&self, data: &TemplateData) -> std::result::Result<String, GoTemplateError> {
        let today = data.today.unwrap_or_else(today_utc);
        let (system, messages) = collate(&data.messages);
        let think = |m: &mut BTreeMap<String, Value>| {
            m.insert("Think".into(), Value::Bool(data.think));
            m.insert("ThinkLevel".into(), Value::str(&data.think_level));
            m.insert("IsThinkSet".into(), Value::Bool(data.is_think_set));
        };
        let root = |m: BTreeMap<String, Value>| Value::Map(Arc::new(m), false);
        if !data.prompt.is_empty() && !data.suffix.is_empty() {
            let mut m = BTreeMap::new();
            m.insert("Prompt".into(), Value::str(&data.prompt));
            m.insert("Suffix".into(), Value::str(&data.suffix));
            m.insert("Response".into(), Value::str(""));
            think(&mut m);
            return self.execute_nodes(&self.nodes, &root(m), today);
        }
        if self.uses_messages() {
            let mut m = BTreeMap::new();
            m.insert("System".into(), Value::str(&system));
            m.insert(
                "Messages".into(),
                Value::List(
                    Arc::new(messages.iter().map(message_value).collect()),
                    false,
                ),
            );
            m.insert(
                "Tools".into(),
                if data.tools.is_empty() {
                    Value::Nil
                } else {
                    Value::List(Arc::new(data.tools.iter().map(tool_value).collect()), true)
                },
            );
            m.insert("Response".into(), Value::str(""));
            think(&mut m);
            return self.execute_nodes(&self.nodes, &root(m), today);
        }
        // Legacy: one execution per system/user/assistant group; the last is cut after
        // `.Response`. Tool messages are ignored.
        let mut out = String::new();
        let (mut sys, mut prompt, mut response) = (String::new(), String::new(), String::new());
        let vals = |s: &str, p: &str, r: &str| {
            let mut m = BTreeMap::new();
            m.insert("System".into(), Value::str(s));
            m.insert("Prompt".into(), Value::str(p));
            m.insert("Response".into(), Value::str(r));
            think(&mut m);
            root(m)
        };
        for msg in &messages {
            let flush = match msg.role.as_str() {
                "system" => !prompt.is_empty() || !response.is_empty(),
                "user" => !response.is_empty(),
                _ => false,
            };
            if flush {
                out.push_str(&self.execute_nodes(
                    &self.nodes,
                    &vals(&sys, &prompt, &response),
                    today,
                )?);
                sys.clear();
                prompt.clear();
                response.clear();
            }
            match msg.role.as_str() {
                "system" => sys = msg.content.clone(),
                "user" => prompt = msg.content.clone(),
                "assistant" => response = msg.content.clone(),
                _ => {}
            }
            if out.len() > MAX_OUTPUT {
                return Err(GoTemplateError::Limit("output too large".into()));
            }
        }
        let mut cut = false;
        let last = cut_after_response(&self.nodes, &mut cut);
        out.push_str(&self.execute_nodes(&last, &vals(&sys, &prompt, &response), today)?);
        Ok(out)
    }
}
