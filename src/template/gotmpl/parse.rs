//! The front end: the lexer (template text → text and action items), the syntax tree, and the
//! parser (items → nodes), with its nesting limit.

use super::{GoTemplateError, Result, Value, MAX_DEPTH};

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    /// `if`, `with` and `range`; an `else if` is an `If` alone in `else_list`.
    Branch {
        kind: BranchKind,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BranchKind {
    If,
    With,
    Range,
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) decl: Vec<String>,
    /// `=` (assign to existing variables) rather than `:=`.
    pub(super) assign: bool,
    pub(super) cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    Dot,
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root)
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    /// `(pipe).A.B`
    Paren(Box<Pipe>, Vec<String>),
}

// ---------------------------------------------------------------------------------------------
// Lexer: template text → text and action items

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Dot,
    /// `.A.B` (without the leading dot)
    Field(String),
    /// `.A` right after `)`
    Chain(String),
    /// `$x.A.B`
    Var(String),
    Ident(String),
    Str(String),
    Num(Value),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

pub(super) enum Item {
    Text(String),
    Action { toks: Vec<Tok>, line: usize },
}

pub(super) fn perr<T>(line: usize, msg: impl Into<String>) -> Result<T> {
    Err(GoTemplateError::Parse {
        line,
        msg: msg.into(),
    })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(super) fn lex(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (text, after) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let mut text = text;
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(after) = after else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            break;
        };
        line += rest[..rest.len() - after.len()].matches('\n').count();
        let mut body = after;
        // `{{- ` trims the text before.
        if let Some(b) = body.strip_prefix('-') {
            if b.starts_with(is_space) {
                text = text.trim_end_matches(is_space);
                body = b;
            }
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let start_line = line;
        let (toks, consumed, trim) = lex_action(body, start_line)?;
        line += body[..consumed].matches('\n').count();
        trim_next = trim;
        rest = &body[consumed..];
        if let Some(toks) = toks {
            items.push(Item::Action {
                toks,
                line: start_line,
            });
        }
    }
    Ok(items)
}

/// Lexes one action body (after `{{` and any `-`), returning its tokens (`None` for a comment),
/// the bytes consumed including `}}`, and whether it ends with ` -}}`.
fn lex_action(body: &str, line: usize) -> Result<(Option<Vec<Tok>>, usize, bool)> {
    let close = |s: &str, at: usize| -> Option<(usize, bool)> {
        let r = &s[at..];
        if r.starts_with("}}") {
            return Some((at + 2, false));
        }
        if r.starts_with(" -}}")
            || r.starts_with("\t-}}")
            || r.starts_with("\n-}}")
            || r.starts_with("\r-}}")
        {
            return Some((at + 4, true));
        }
        None
    };
    let trimmed = body.trim_start_matches(is_space);
    if let Some(c) = trimmed.strip_prefix("/*") {
        let Some(end) = c.find("*/") else {
            return perr(line, "unclosed comment");
        };
        let at = body.len() - c.len() + end + 2;
        // Go allows only `*/}}` or `*/ -}}` right after the comment.
        if let Some((n, t)) = close(body, at) {
            return Ok((None, n, t));
        }
        return perr(line, "comment ends before closing delimiter");
    }
    let b = body.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    loop {
        if let Some((n, t)) = close(body, i) {
            return Ok((Some(toks), n, t));
        }
        let Some(c) = body[i..].chars().next() else {
            return perr(line, "unclosed action");
        };
        let ident_end = |from: usize| {
            from + body[from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(body.len() - from)
        };
        // `.A.B.C` from just after the first dot: idents joined by adjacent dots.
        let path_end = |from: usize| {
            let mut end = ident_end(from);
            while end > from && b.get(end) == Some(&b'.') && ident_end(end + 1) > end + 1 {
                end = ident_end(end + 1);
            }
            end
        };
        match c {
            c if is_space(c) => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1
            }
            '.' if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let (tok, n) = lex_number(&body[i..], line)?;
                toks.push(tok);
                i += n;
            }
            '.' => {
                let end = path_end(i + 1);
                if end == i + 1 {
                    toks.push(Tok::Dot);
                } else if toks.last() == Some(&Tok::RParen) && !body[..i].ends_with(is_space) {
                    toks.push(Tok::Chain(body[i + 1..end].to_string()));
                } else {
                    toks.push(Tok::Field(body[i + 1..end].to_string()));
                }
                i = end;
            }
            '$' => {
                let mut end = ident_end(i + 1);
                while b.get(end) == Some(&b'.') && ident_end(end + 1) > end + 1 {
                    end = ident_end(end + 1);
                }
                toks.push(Tok::Var(body[i..end].to_string()));
                i = end;
            }
            '"' => {
                let mut s = String::new();
                let mut chars = body[i + 1..].char_indices();
                let mut end = None;
                while let Some((j, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = Some(i + 1 + j + 1);
                            break;
                        }
                        '\n' => return perr(line, "unterminated quoted string"),
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('\\') => s.push('\\'),
                            Some('"') => s.push('"'),
                            Some('\'') => s.push('\''),
                            Some('a') => s.push('\u{7}'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some('v') => s.push('\u{b}'),
                            Some(c @ ('x' | 'u' | 'U')) => {
                                let n = match c {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let hex: String = (0..n)
                                    .filter_map(|_| chars.next().map(|(_, c)| c))
                                    .collect();
                                let ch = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| hex.len() == n)
                                    .and_then(char::from_u32);
                                match ch {
                                    Some(ch) => s.push(ch),
                                    None => return perr(line, "invalid escape in string"),
                                }
                            }
                            _ => return perr(line, "invalid escape in string"),
                        },
                        c => s.push(c),
                    }
                }
                let Some(end) = end else {
                    return perr(line, "unterminated quoted string");
                };
                toks.push(Tok::Str(s));
                i = end;
            }
            '`' => {
                let Some(j) = body[i + 1..].find('`') else {
                    return perr(line, "unterminated raw quoted string");
                };
                toks.push(Tok::Str(body[i + 1..i + 1 + j].to_string()));
                i += j + 2;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && b.get(i + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == b'.')) =>
            {
                let (tok, n) = lex_number(&body[i..], line)?;
                toks.push(tok);
                i += n;
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = ident_end(i);
                toks.push(Tok::Ident(body[i..end].to_string()));
                i = end;
            }
            c => return perr(line, format!("unexpected {c:?} in command")),
        }
    }
}

fn lex_number(s: &str, line: usize) -> Result<(Tok, usize)> {
    let end = s
        .char_indices()
        .skip(1)
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    let text = &s[..end];
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = clean.parse::<i64>() {
        return Ok((Tok::Num(Value::Int(i)), end));
    }
    let hex = clean.trim_start_matches(['-', '+']);
    if let Some(h) = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X")) {
        if let Ok(v) = i64::from_str_radix(h, 16) {
            let v = if clean.starts_with('-') { -v } else { v };
            return Ok((Tok::Num(Value::Int(v)), end));
        }
    }
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() && !clean.contains(['i', 'n', 'I', 'N']) => {
            Ok((Tok::Num(Value::Float(f)), end))
        }
        _ => perr(line, format!("bad number syntax: {text:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Parser: items → nodes

pub(super) struct Parser {
    pub(super) items: std::vec::IntoIter<Item>,
    pub(super) depth: usize,
}

pub(super) enum Stop {
    Eof,
    End,
    Else(Vec<Tok>, usize),
}

impl Parser {
    pub(super) fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, line) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action { toks, line } => (toks, line),
            };
            let kw = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                None => return perr(line, "missing value for command"),
                _ => "",
            };
            match kw {
                "end" => {
                    if toks.len() > 1 {
                        return perr(line, "unexpected tokens after end");
                    }
                    return Ok((nodes, Stop::End));
                }
                "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec(), line))),
                "if" | "with" | "range" => {
                    let kind = match kw {
                        "if" => BranchKind::If,
                        "with" => BranchKind::With,
                        _ => BranchKind::Range,
                    };
                    nodes.push(self.branch(kind, &toks[1..], line)?);
                }
                "break" | "continue" => {
                    if toks.len() > 1 {
                        return perr(line, format!("unexpected tokens after {kw}"));
                    }
                    // Go checks these are inside a range; the evaluator does (see `Flow`).
                    nodes.push(if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" | "template" | "block" => {
                    return perr(line, format!("{{{{{kw}}}}} is not supported"))
                }
                _ => nodes.push(Node::Action(parse_pipe(&toks, line, true)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn branch(&mut self, kind: BranchKind, toks: &[Tok], line: usize) -> Result<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return perr(line, "control structures nested too deeply");
        }
        let pipe = parse_pipe(toks, line, true)?;
        if pipe.cmds.is_empty() {
            return perr(line, "missing value for command");
        }
        let (list, stop) = self.list()?;
        let else_list = match stop {
            Stop::Eof => return perr(line, "unexpected EOF: missing {{end}}"),
            Stop::End => None,
            Stop::Else(rest, eline) if rest.is_empty() => {
                let (l, stop) = self.list()?;
                match stop {
                    Stop::End => Some(l),
                    Stop::Eof => return perr(line, "unexpected EOF: missing {{end}}"),
                    Stop::Else(..) => return perr(eline, "expected end; found else"),
                }
            }
            Stop::Else(rest, eline) => {
                // `else if` / `else with`: a nested branch that shares this `end`.
                let k = match rest.first() {
                    Some(Tok::Ident(k)) if k == "if" && kind != BranchKind::With => BranchKind::If,
                    Some(Tok::Ident(k)) if k == "with" && kind == BranchKind::With => {
                        BranchKind::With
                    }
                    _ => return perr(eline, "unexpected tokens after else"),
                };
                Some(vec![self.branch(k, &rest[1..], eline)?])
            }
        };
        self.depth -= 1;
        Ok(Node::Branch {
            kind,
            pipe,
            list,
            else_list,
        })
    }
}

fn parse_pipe(toks: &[Tok], line: usize, allow_decl: bool) -> Result<Pipe> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    // `$a :=`, `$a =`, `$a, $b :=`
    if allow_decl {
        if let Some(Tok::Var(v)) = toks.first() {
            match toks.get(1) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = toks[1] == Tok::Assign;
                    decl.push(v.clone());
                    rest = &toks[2..];
                }
                Some(Tok::Comma) => {
                    if let (Some(Tok::Var(w)), Some(t @ (Tok::Declare | Tok::Assign))) =
                        (toks.get(2), toks.get(3))
                    {
                        assign = *t == Tok::Assign;
                        decl.push(v.clone());
                        decl.push(w.clone());
                        rest = &toks[4..];
                    } else {
                        return perr(line, "too many declarations in command");
                    }
                }
                _ => {}
            }
        }
    }
    let mut pos = 0;
    let cmds = parse_cmds(rest, &mut pos, line, 0)?;
    if pos != rest.len() {
        return perr(line, format!("unexpected {:?} in operand", rest[pos]));
    }
    if cmds.is_empty() && !decl.is_empty() {
        return perr(line, "missing value for declaration");
    }
    Ok(Pipe { decl, assign, cmds })
}

fn parse_cmds(toks: &[Tok], pos: &mut usize, line: usize, depth: usize) -> Result<Vec<Vec<Arg>>> {
    if depth > MAX_DEPTH {
        return perr(line, "parentheses nested too deeply");
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        let arg = match t {
            Tok::RParen => {
                *pos -= 1;
                break;
            }
            Tok::Pipe => {
                if args.is_empty() {
                    return perr(line, "missing command before |");
                }
                cmds.push(std::mem::take(&mut args));
                continue;
            }
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => Arg::Field(f.split('.').map(str::to_string).collect()),
            Tok::Var(v) => {
                let mut parts = v.split('.').map(str::to_string);
                let name = parts.next().unwrap_or_default();
                Arg::Var(name, parts.collect())
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Nil),
                _ => Arg::Ident(id.clone()),
            },
            Tok::Str(s) => Arg::Lit(Value::str(s)),
            Tok::Num(n) => Arg::Lit(n.clone()),
            Tok::LParen => {
                let inner = parse_cmds(toks, pos, line, depth + 1)?;
                if toks.get(*pos) != Some(&Tok::RParen) {
                    return perr(line, "unclosed left paren");
                }
                *pos += 1;
                if inner.is_empty() {
                    return perr(line, "missing value in parentheses");
                }
                let mut path = Vec::new();
                if let Some(Tok::Chain(f)) = toks.get(*pos) {
                    path.extend(f.split('.').map(str::to_string));
                    *pos += 1;
                }
                Arg::Paren(
                    Box::new(Pipe {
                        decl: vec![],
                        assign: false,
                        cmds: inner,
                    }),
                    path,
                )
            }
            other => return perr(line, format!("unexpected {other:?} in operand")),
        };
        args.push(arg);
    }
    if !args.is_empty() {
        cmds.push(args);
    } else if !cmds.is_empty() {
        return perr(line, "missing command after |");
    }
    Ok(cmds)
}
