//! `--think` and `--hidethinking` in `hearth run`: whether a reasoning model thinks, and
//! how its thinking is shown — between `Thinking...` and `...done thinking.`, as Ollama
//! prints it, or not at all.

use std::io::Write;

use anyhow::{bail, Result};

use crate::generate::output::Thinking;
use crate::generate::thinking::{Split, Think, ThinkParser};
use crate::generate::Loaded;
use crate::template::Message;

/// The command line's thinking settings, settled against the model.
#[derive(Clone, Debug, Default)]
pub struct ThinkSetting {
    think: Option<Think>,
    hide: bool,
    /// The model's template knows thinking.
    supported: bool,
}

impl ThinkSetting {
    /// `--think[=VALUE]` and `--hidethinking` for `model`: thinking asked of a model that
    /// cannot is an error; a model that thinks does so unless told not to (Ollama sends
    /// `think: true` to such a model when `--think` is unset).
    pub fn new(
        arg: Option<&str>,
        hide: bool,
        loaded: &Loaded,
        model: &str,
        raw: bool,
    ) -> Result<ThinkSetting> {
        let think = match arg {
            None => None,
            Some(a) => Think::from_json(Some(&serde_json::Value::String(a.to_string())))
                .map_err(anyhow::Error::msg)?,
        };
        let supported = !raw && crate::generate::thinking::supported(&loaded.template);
        if think.as_ref().is_some_and(Think::enabled) && !supported {
            bail!("\"{model}\" does not support thinking");
        }
        let think = match think {
            None if supported => Some(Think::On),
            t => t,
        };
        Ok(ThinkSetting {
            think,
            hide,
            supported,
        })
    }

    /// The prompt's ids, and how to read the answer (`None`: all of it is the answer).
    pub fn prompt(
        &self,
        loaded: &Loaded,
        messages: &[Message],
    ) -> Result<(Vec<u32>, Option<Thinking>)> {
        if !self.supported {
            return Ok((loaded.prompt_ids(messages, None)?, None));
        }
        let arg = self.think.as_ref().map(|t| (t.enabled(), t.level()));
        let (ids, inside) = loaded.thinking_prompt_ids(messages, arg)?;
        let keep = !self.hide && self.think != Some(Think::Off);
        Ok((ids, Some(Thinking { inside, keep })))
    }
}

/// Splits an answer's text as it streams: thinking to the screen between Ollama's
/// markers (or nowhere), the answer to `answer`.
pub struct ThinkPrinter {
    parser: ThinkParser,
    keep: bool,
    /// `Thinking...` was printed and `...done thinking.` not yet.
    open: bool,
}

impl ThinkPrinter {
    pub fn new(t: Thinking) -> ThinkPrinter {
        ThinkPrinter {
            parser: ThinkParser::new(t.inside),
            keep: t.keep,
            open: false,
        }
    }

    /// Takes a piece of generated text; passes the answer's part to `answer`.
    pub fn push(
        &mut self,
        text: &str,
        out: &mut impl Write,
        answer: &mut impl FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let splits = self.parser.push(text);
        self.show(splits, out, answer)
    }

    /// The end of the answer.
    pub fn finish(
        &mut self,
        out: &mut impl Write,
        answer: &mut impl FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let splits = self.parser.finish();
        self.show(splits, out, answer)?;
        self.close(out)
    }

    fn close(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.open {
            self.open = false;
            out.write_all(b"\n...done thinking.\n\n")?;
            out.flush()?;
        }
        Ok(())
    }

    fn show(
        &mut self,
        splits: Vec<Split>,
        out: &mut impl Write,
        answer: &mut impl FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for s in splits {
            match s {
                Split::Thinking(t) if self.keep => {
                    if !self.open {
                        self.open = true;
                        out.write_all(b"Thinking...\n")?;
                    }
                    out.write_all(t.as_bytes())?;
                    out.flush()?;
                }
                Split::Thinking(_) => {}
                Split::Content(c) => {
                    self.close(out)?;
                    answer(&c)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_between_markers_answer_apart() {
        let run = |keep: bool| {
            let mut p = ThinkPrinter::new(Thinking {
                inside: false,
                keep,
            });
            let mut screen = Vec::new();
            let mut answer = String::new();
            let mut on = |t: &str| {
                answer.push_str(t);
                Ok(())
            };
            for piece in ["<think>\nhm", "m, 4.\n</th", "ink>\n\nIt is ", "4."] {
                p.push(piece, &mut screen, &mut on).unwrap();
            }
            p.finish(&mut screen, &mut on).unwrap();
            (String::from_utf8(screen).unwrap(), answer)
        };
        assert_eq!(
            run(true),
            (
                "Thinking...\nhmm, 4.\n...done thinking.\n\n".to_string(),
                "It is 4.".to_string()
            )
        );
        assert_eq!(run(false), (String::new(), "It is 4.".to_string()));
    }
}
