//! The evaluator: walks the syntax tree against a root [`Value`] with Go's variable scoping,
//! `range`/`with`/`if`, `break`/`continue`, pipelines and field chains, within the step and
//! output limits. The built-in functions it calls live in `funcs.rs`.

use super::funcs::KNOWN_FUNCS;
use super::parse::{Arg, BranchKind, Node, Pipe};
use super::{exec, GoTemplateError, Result, Value, MAX_OUTPUT, MAX_STEPS};

pub(super) enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec {
    pub(super) vars: Vec<(String, Value)>,
    pub(super) out: String,
    pub(super) steps: u64,
    pub(super) today: (i64, u32, u32),
}

impl Exec {
    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(GoTemplateError::Limit(format!(
                "more than {MAX_STEPS} evaluation steps"
            )));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(GoTemplateError::Limit(format!(
                "output larger than {MAX_OUTPUT} bytes"
            )));
        }
        Ok(())
    }

    pub(super) fn list(&mut self, nodes: &[Node], dot: &Value, in_range: bool) -> Result<Flow> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        v.display(&mut self.out, true);
                    }
                }
                Node::Break | Node::Continue if !in_range => {
                    return exec("{{break}} or {{continue}} outside {{range}}")
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Branch {
                    kind,
                    pipe,
                    list,
                    else_list,
                } => {
                    let mark = self.vars.len();
                    let flow = self.branch(*kind, pipe, list, else_list.as_deref(), dot, in_range);
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn branch(
        &mut self,
        kind: BranchKind,
        pipe: &Pipe,
        list: &[Node],
        else_list: Option<&[Node]>,
        dot: &Value,
        in_range: bool,
    ) -> Result<Flow> {
        if kind == BranchKind::Range {
            let mut bare = pipe.clone();
            bare.decl.clear();
            let v = self.pipe(&bare, dot)?;
            let items: Vec<(Value, Value)> = match &v {
                Value::List(l, _) => l
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                    .collect(),
                Value::Map(m, _) => m.iter().map(|(k, x)| (Value::str(k), x.clone())).collect(),
                Value::Int(n) => {
                    if *n > MAX_STEPS as i64 {
                        return Err(GoTemplateError::Limit("range over a huge integer".into()));
                    }
                    (0..(*n).max(0))
                        .map(|i| (Value::Int(i), Value::Int(i)))
                        .collect()
                }
                Value::Nil => vec![],
                other => return exec(format!("range can't iterate over {}", other.type_name())),
            };
            if items.is_empty() {
                return match else_list {
                    Some(l) => self.list(l, dot, in_range),
                    None => Ok(Flow::Normal),
                };
            }
            let mark = self.vars.len();
            for (k, x) in items {
                self.step()?;
                self.vars.truncate(mark);
                match pipe.decl.as_slice() {
                    [] => {}
                    [a] => self.vars.push((a.clone(), x.clone())),
                    [a, b, ..] => {
                        self.vars.push((a.clone(), k));
                        self.vars.push((b.clone(), x.clone()));
                    }
                }
                match self.list(list, &x, true)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                }
            }
            return Ok(Flow::Normal);
        }
        let v = self.pipe(pipe, dot)?;
        if v.truth() {
            let d = if kind == BranchKind::With {
                v
            } else {
                dot.clone()
            };
            self.list(list, &d, in_range)
        } else if let Some(l) = else_list {
            self.list(l, dot, in_range)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut v: Option<Value> = None;
        for cmd in &p.cmds {
            self.step()?;
            v = Some(self.command(cmd, dot, v)?);
        }
        let v = v.unwrap_or(Value::Nil);
        if p.assign {
            for name in &p.decl {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return exec(format!("undefined variable: {name}")),
                }
            }
        } else if let Some(name) = p.decl.first() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn var(&self, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => exec(format!("undefined variable: {name}")),
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value> {
        let walk = |mut v: Value, path: &[String]| -> Result<Value> {
            for f in path {
                v = v.field(f)?;
            }
            Ok(v)
        };
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(path) => walk(dot.clone(), path),
            Arg::Var(name, path) => walk(self.var(name)?, path),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Paren(p, path) => {
                let v = self.pipe(p, dot)?;
                walk(v, path)
            }
            Arg::Ident(name) => {
                if KNOWN_FUNCS.contains(&name.as_str()) {
                    self.call(name, vec![])
                } else {
                    exec(format!("function {name:?} not defined"))
                }
            }
        }
    }

    fn command(&mut self, args: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value> {
        if let Arg::Ident(name) = &args[0] {
            if !KNOWN_FUNCS.contains(&name.as_str()) {
                return exec(format!("function {name:?} not defined"));
            }
            // `and`/`or` short-circuit like Go 1.18+.
            if name == "and" || name == "or" {
                let total = args.len() - 1 + usize::from(piped.is_some());
                if total == 0 {
                    return exec(format!(
                        "wrong number of args for {name}: want at least 1 got 0"
                    ));
                }
                let mut last = Value::Nil;
                for a in &args[1..] {
                    last = self.arg(a, dot)?;
                    if last.truth() != (name == "and") {
                        return Ok(last);
                    }
                }
                if let Some(p) = piped {
                    last = p;
                }
                return Ok(last);
            }
            let mut vals = Vec::with_capacity(args.len());
            for a in &args[1..] {
                vals.push(self.arg(a, dot)?);
            }
            vals.extend(piped);
            return self.call(name, vals);
        }
        if args.len() > 1 || piped.is_some() {
            return exec("can't give argument to non-function");
        }
        self.arg(&args[0], dot)
    }
}
