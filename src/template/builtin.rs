//! Built-in chat formats for models whose file carries no Jinja template, written to give the
//! same text as llama.cpp's built-in templates of the same name.

use super::Message;

/// A chat format implemented in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `<|im_start|>role\ncontent<|im_end|>\n` per message; the generic fallback.
    ChatMl,
    /// Gemma turns: `<start_of_turn>user\n...<end_of_turn>\n`, `assistant` is called `model`,
    /// contents are trimmed, and system text is merged into the next user turn.
    Gemma,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        match name {
            "chatml" => Some(Builtin::ChatMl),
            "gemma" => Some(Builtin::Gemma),
            _ => None,
        }
    }

    /// The format llama.cpp picks for an architecture when the file has no template.
    pub fn for_architecture(arch: &str) -> Option<Builtin> {
        match arch {
            "gemma" | "gemma2" | "gemma3" => Some(Builtin::Gemma),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::ChatMl => "chatml",
            Builtin::Gemma => "gemma",
        }
    }

    pub fn render(self, messages: &[Message], add_generation_prompt: bool) -> String {
        match self {
            Builtin::ChatMl => chatml(messages, add_generation_prompt),
            Builtin::Gemma => gemma(messages, add_generation_prompt),
        }
    }
}

fn chatml(messages: &[Message], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(&m.role);
        out.push('\n');
        out.push_str(&m.content);
        out.push_str("<|im_end|>\n");
    }
    if add_generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

fn gemma(messages: &[Message], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    // Gemma has no system role: system text waits for the next non-model turn.
    let mut system = String::new();
    for m in messages {
        if m.role == "system" {
            system.push_str(c_trim(&m.content));
            continue;
        }
        let role = if m.role == "assistant" {
            "model"
        } else {
            m.role.as_str()
        };
        out.push_str("<start_of_turn>");
        out.push_str(role);
        out.push('\n');
        if !system.is_empty() && role != "model" {
            out.push_str(&system);
            out.push_str("\n\n");
            system.clear();
        }
        out.push_str(c_trim(&m.content));
        out.push_str("<end_of_turn>\n");
    }
    if add_generation_prompt {
        out.push_str("<start_of_turn>model\n");
    }
    out
}

/// Trims C `isspace` characters (ASCII space, \t, \n, \v, \f, \r) at both ends, as llama.cpp does.
fn c_trim(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma_keeps_unicode_space_and_trims_ascii() {
        let m = [Message::new("user", "\x0b hi\u{3000}\n")];
        assert_eq!(
            Builtin::Gemma.render(&m, false),
            "<start_of_turn>user\nhi\u{3000}<end_of_turn>\n"
        );
    }

    #[test]
    fn gemma_system_only_is_dropped_like_llama_cpp() {
        let m = [Message::new("system", "be brief")];
        assert_eq!(Builtin::Gemma.render(&m, true), "<start_of_turn>model\n");
    }
}
