//! Embeddings: text -> the ids an encoder takes (fitted to its context), and a pooled
//! vector -> what clients get (cut to the requested dimensions, L2-normalised), shared
//! by `hearth run` on an embedding model and the server's embedding endpoints.

use crate::tokenizer::Tokenizer;

/// Why an input cannot be embedded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    #[error("the input is empty")]
    Empty,
    #[error(
        "the input has {len} tokens, but the context length is {max} (send truncate: true, or shorten the input)"
    )]
    TooLong { len: usize, max: usize },
    #[error("dimensions must be at least 1")]
    NoDimensions,
}

/// An input's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedInput {
    pub ids: Vec<u32>,
    /// Tokens cut off to fit the context.
    pub truncated: usize,
}

/// The ids of `text` with the tokenizer's special tokens (`[CLS] … [SEP]` for BERT, as
/// llama.cpp adds them). Longer than `max` tokens: with `truncate`, the end of the text
/// is cut and a closing special token kept; else an error naming both counts.
pub fn input_ids(
    tok: &Tokenizer,
    text: &str,
    max: usize,
    truncate: bool,
) -> Result<EmbedInput, EmbedError> {
    if text.is_empty() {
        return Err(EmbedError::Empty);
    }
    fit(tok.encode(text, true, true), max, truncate, |id| {
        tok.is_control(id)
    })
}

/// Fits ids given by the client (OpenAI's token-array inputs) or by the tokenizer.
pub fn fit(
    mut ids: Vec<u32>,
    max: usize,
    truncate: bool,
    is_special: impl Fn(u32) -> bool,
) -> Result<EmbedInput, EmbedError> {
    if ids.is_empty() {
        return Err(EmbedError::Empty);
    }
    let len = ids.len();
    if len <= max {
        return Ok(EmbedInput { ids, truncated: 0 });
    }
    if !truncate || max == 0 {
        return Err(EmbedError::TooLong { len, max });
    }
    let last = ids[len - 1];
    ids.truncate(max);
    if is_special(last) && max > 1 {
        ids[max - 1] = last;
    }
    Ok(EmbedInput {
        ids,
        truncated: len - max,
    })
}

/// Cuts `v` to its first `dimensions` values (Matryoshka models are trained so that a
/// prefix is an embedding too), then scales it to unit length (a zero vector stays zero).
pub fn finish(v: &mut Vec<f32>, dimensions: Option<usize>) -> Result<(), EmbedError> {
    if let Some(d) = dimensions {
        if d == 0 {
            return Err(EmbedError::NoDimensions);
        }
        v.truncate(d);
    }
    let norm = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let s = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_closing_special() {
        let special = |id: u32| id >= 100;
        let short = fit(vec![101, 1, 2, 102], 8, false, special).unwrap();
        assert_eq!(short.ids, [101, 1, 2, 102]);
        let cut = fit(vec![101, 1, 2, 3, 4, 102], 4, true, special).unwrap();
        assert_eq!(cut.ids, [101, 1, 2, 102]);
        assert_eq!(cut.truncated, 2);
        let plain = fit(vec![1, 2, 3, 4], 2, true, special).unwrap();
        assert_eq!(plain.ids, [1, 2]);
        assert_eq!(
            fit(vec![1, 2, 3], 2, false, special),
            Err(EmbedError::TooLong { len: 3, max: 2 })
        );
        assert_eq!(fit(vec![], 2, true, special), Err(EmbedError::Empty));
    }

    #[test]
    fn finish_normalises_and_cuts() {
        let mut v = vec![3.0, 4.0, 12.0];
        finish(&mut v, None).unwrap();
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6);
        let mut w = vec![3.0, 4.0, 12.0];
        finish(&mut w, Some(2)).unwrap();
        assert_eq!(w, [0.6, 0.8]);
        let mut z = vec![0.0; 3];
        finish(&mut z, None).unwrap();
        assert_eq!(z, [0.0; 3]);
        assert_eq!(finish(&mut z, Some(0)), Err(EmbedError::NoDimensions));
    }
}
