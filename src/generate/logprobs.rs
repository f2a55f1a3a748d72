//! Log probabilities of the sampled tokens (`logprobs`, `top_logprobs`): the model's own
//! distribution, a log-softmax of the raw logits before penalties, temperature or a
//! format's mask, as OpenAI and Ollama report them.

use crate::tokenizer::Tokenizer;

/// At most this many alternatives per token (OpenAI's and Ollama's bound).
pub const MAX_TOP: usize = 20;

/// One token and its log probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub id: u32,
    /// The token's bytes (a piece of a UTF-8 character is possible).
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

impl Candidate {
    /// The token's text (lossy where the bytes are part of a character).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// The sampled token and the `top` most likely ones at its position.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: Candidate,
    /// Most likely first.
    pub top: Vec<Candidate>,
}

fn candidate(tok: &Tokenizer, id: u32, logprob: f32) -> Candidate {
    Candidate {
        id,
        bytes: tok.decode(&[id]).unwrap_or_default(),
        logprob,
    }
}

/// The log probability of `chosen` under `logits`, with the `top` (at most
/// [`MAX_TOP`]) most likely tokens.
pub fn measure(logits: &[f32], chosen: u32, top: usize, tok: &Tokenizer) -> TokenLogprob {
    let lse = log_sum_exp(logits);
    let lp = |id: u32| {
        logits
            .get(id as usize)
            .map_or(f32::NEG_INFINITY, |&l| l - lse)
    };
    TokenLogprob {
        token: candidate(tok, chosen, lp(chosen)),
        top: top_ids(logits, top.min(MAX_TOP))
            .into_iter()
            .map(|id| candidate(tok, id, lp(id)))
            .collect(),
    }
}

/// log Σ exp(l), computed around the maximum (summed in f64: up to 262k terms).
fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    max + sum.ln() as f32
}

/// The ids of the `k` largest logits, largest first (ties: the lower id first). One pass
/// with a sorted running list: `k` is small.
fn top_ids(logits: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<u32> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (i, &l) in logits.iter().enumerate() {
        if best.len() == k && l <= logits[best[k - 1] as usize] {
            continue;
        }
        let at = best.partition_point(|&b| logits[b as usize] >= l);
        best.insert(at, i as u32);
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_and_top() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, -50.0];
        let lse = log_sum_exp(&logits);
        let p: f64 = logits.iter().map(|&l| f64::from(l - lse).exp()).sum();
        assert!((p - 1.0).abs() < 1e-6, "{p}");
        assert_eq!(top_ids(&logits, 3), [1, 3, 2]);
        assert_eq!(top_ids(&logits, 0), Vec::<u32>::new());
        assert_eq!(top_ids(&logits, 9), [1, 3, 2, 0, 4]);
        // Large logits do not overflow.
        let big = [1000.0f32, 1000.0];
        assert!((log_sum_exp(&big) - (1000.0 + 2f32.ln())).abs() < 1e-3);
    }
}
