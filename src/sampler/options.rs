//! Generation options with Ollama's names and defaults, as they arrive in a request's
//! `options`, in `-o KEY=VALUE`, or in the REPL's `/set parameter NAME VALUE`.

use serde::{Deserialize, Serialize};

/// The options that steer token choice and stopping. Unknown keys are ignored when
/// deserializing (a request's `options` also carries load-time keys such as `num_ctx`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerOptions {
    /// Softmax temperature; `<= 0` picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `<= 0` keeps all.
    pub top_k: i32,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; `>= 1` keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; `<= 0` keeps all.
    pub min_p: f32,
    /// Divides positive (multiplies negative) logits of recently seen tokens; 1 disables it.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at; 0 disables them, -1 means "the context"
    /// (the sampler then uses [`super::DEFAULT_PENALTY_WINDOW`] unless the caller substitutes
    /// `num_ctx` first).
    pub repeat_last_n: i32,
    /// Subtracted once from the logit of every token seen in the window.
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per time it was seen in the window.
    pub frequency_penalty: f32,
    /// Random seed; `None` (or negative) picks a fresh one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Maximum number of tokens to generate; -1 means unlimited.
    pub num_predict: i32,
    /// Generation stops before any of these strings.
    pub stop: Vec<String>,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        SamplerOptions {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            num_predict: -1,
            stop: Vec::new(),
        }
    }
}

impl SamplerOptions {
    /// Sets one option from text, as `-o KEY=VALUE` and `/set parameter NAME VALUE` do.
    /// `stop` appends a stop sequence; `seed` below zero means random. The error names the
    /// parameter; an unknown name gives `unknown parameter 'NAME'`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let v = value.trim();
        match name {
            "temperature" => self.temperature = float(name, v)?,
            "top_k" => self.top_k = int(name, v)?,
            "top_p" => self.top_p = float(name, v)?,
            "min_p" => self.min_p = float(name, v)?,
            "repeat_penalty" => self.repeat_penalty = float(name, v)?,
            "repeat_last_n" => self.repeat_last_n = int(name, v)?,
            "presence_penalty" => self.presence_penalty = float(name, v)?,
            "frequency_penalty" => self.frequency_penalty = float(name, v)?,
            "num_predict" => self.num_predict = int(name, v)?,
            "seed" => {
                let s: i64 = v
                    .parse()
                    .map_err(|_| format!("invalid int value '{value}' for parameter '{name}'"))?;
                self.seed = (s >= 0).then_some(s);
            }
            "stop" => {
                if value.is_empty() {
                    return Err("parameter 'stop' needs a non-empty value".into());
                }
                self.stop.push(value.to_string());
            }
            _ => return Err(format!("unknown parameter '{name}'")),
        }
        Ok(())
    }
}

fn float(name: &str, v: &str) -> Result<f32, String> {
    match v.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("invalid float value '{v}' for parameter '{name}'")),
    }
}

fn int(name: &str, v: &str) -> Result<i32, String> {
    v.parse::<i32>()
        .map_err(|_| format!("invalid int value '{v}' for parameter '{name}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ollamas() {
        let o = SamplerOptions::default();
        assert_eq!(
            (o.temperature, o.top_k, o.top_p, o.min_p),
            (0.8, 40, 0.9, 0.0)
        );
        assert_eq!((o.repeat_penalty, o.repeat_last_n), (1.0, 64));
        assert_eq!((o.presence_penalty, o.frequency_penalty), (0.0, 0.0));
        assert_eq!((o.seed, o.num_predict, o.stop.len()), (None, -1, 0));
    }

    #[test]
    fn set_parses_each_type() {
        let mut o = SamplerOptions::default();
        o.set("temperature", "0.2").unwrap();
        o.set("top_k", " 5 ").unwrap();
        o.set("seed", "42").unwrap();
        o.set("num_predict", "-1").unwrap();
        o.set("stop", "<|im_end|>").unwrap();
        o.set("stop", "\n\n").unwrap();
        assert_eq!(o.temperature, 0.2);
        assert_eq!(o.top_k, 5);
        assert_eq!(o.seed, Some(42));
        assert_eq!(o.stop, ["<|im_end|>", "\n\n"]);
        o.set("seed", "-1").unwrap();
        assert_eq!(o.seed, None);
    }

    #[test]
    fn set_rejects_with_the_parameter_name() {
        let mut o = SamplerOptions::default();
        let e = o.set("top_k", "1.5").unwrap_err();
        assert!(e.contains("top_k") && e.contains("1.5"), "{e}");
        let e = o.set("temperature", "hot").unwrap_err();
        assert!(e.contains("temperature"), "{e}");
        assert!(o.set("top_p", "nan").is_err());
        assert!(o.set("stop", "").is_err());
        assert_eq!(
            o.set("mirostat_x", "1").unwrap_err(),
            "unknown parameter 'mirostat_x'"
        );
        assert_eq!(o, SamplerOptions::default());
    }

    #[test]
    fn serde_uses_ollama_names_and_defaults() {
        let o: SamplerOptions =
            serde_json::from_str(r#"{"temperature":0,"stop":["x"],"seed":7,"num_ctx":2048}"#)
                .unwrap();
        assert_eq!(o.temperature, 0.0);
        assert_eq!(o.stop, ["x"]);
        assert_eq!(o.seed, Some(7));
        assert_eq!(o.top_k, 40);
        let j = serde_json::to_value(SamplerOptions::default()).unwrap();
        assert_eq!(j["repeat_last_n"], 64);
        assert!(j.get("seed").is_none());
    }
}
