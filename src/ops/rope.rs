//! Rotary position embeddings.
//!
//! `theta_i(pos) = pos * freq_scale * base^(-2i / n_rot) / freq_factor_i` for pair i
//! (`freq_factor` comes from a model's `rope_freqs` tensor: that is how Llama 3.x's
//! "llama3" scaling reaches GGUF). Two pairings exist:
//! - normal (llama): pairs `(x[2i], x[2i+1])`;
//! - NEOX (qwen2, gemma3): pairs `(x[i], x[i + n_rot/2])`.
//!
//! Only the first `n_rot` values of a head rotate; the rest pass through.

/// A rope configuration, with the per-pair inverse frequencies precomputed.
#[derive(Clone, Debug)]
pub struct Rope {
    n_rot: usize,
    neox: bool,
    /// `freq_scale * base^(-2i/n_rot) / freq_factor_i`, in f64.
    inv_freq: Vec<f64>,
    /// Multiplies cos and sin (Phi-3's longrope `attn_factor`; 1 elsewhere).
    mscale: f64,
}

impl Rope {
    pub fn new(
        n_rot: usize,
        neox: bool,
        base: f32,
        freq_scale: f32,
        freq_factors: Option<&[f32]>,
    ) -> Rope {
        let inv_freq = (0..n_rot / 2)
            .map(|i| {
                let f = freq_scale as f64 * (base as f64).powf(-2.0 * i as f64 / n_rot as f64);
                f / freq_factors
                    .and_then(|ff| ff.get(i))
                    .map_or(1.0, |&x| x as f64)
            })
            .collect();
        Rope {
            n_rot,
            neox,
            inv_freq,
            mscale: 1.0,
        }
    }

    /// The same rope with the rotated values multiplied by `f` (ggml's `attn_factor`).
    pub fn with_attn_factor(mut self, f: f32) -> Rope {
        self.mscale = f as f64;
        self
    }

    /// Values a [`table`](Self::table) row takes: cos and sin per pair.
    pub fn table_len(&self) -> usize {
        self.n_rot
    }

    /// Writes `[cos_0, sin_0, cos_1, sin_1, …]` for position `pos` into `out`.
    pub fn table(&self, pos: usize, out: &mut [f32]) {
        for (i, cs) in out
            .chunks_exact_mut(2)
            .enumerate()
            .take(self.inv_freq.len())
        {
            let theta = pos as f64 * self.inv_freq[i];
            let (s, c) = theta.sin_cos();
            cs[0] = (c * self.mscale) as f32;
            cs[1] = (s * self.mscale) as f32;
        }
    }

    /// Rotates every head (of `head_dim` values) in `x` by the angles in `table`.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, table: &[f32]) {
        let half = self.n_rot / 2;
        for head in x.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (c, s) = (table[2 * i], table[2 * i + 1]);
                let (a, b) = if self.neox {
                    (i, i + half)
                } else {
                    (2 * i, 2 * i + 1)
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * c - x1 * s;
                head[b] = x0 * s + x1 * c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_preserve_norm_and_position_zero_is_identity() {
        for neox in [false, true] {
            let r = Rope::new(8, neox, 10000.0, 1.0, None);
            let mut t = vec![0.0; r.table_len()];
            let x: Vec<f32> = (0..16).map(|i| i as f32 - 3.0).collect();
            r.table(0, &mut t);
            let mut y = x.clone();
            r.apply(&mut y, 16, &t);
            assert_eq!(x, y);
            r.table(7, &mut t);
            r.apply(&mut y, 16, &t);
            let n = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
            assert!((n(&x) - n(&y)).abs() < 1e-3);
            assert_eq!(x[8..], y[8..], "dims past n_rot pass through");
        }
    }

    #[test]
    fn pairing() {
        // pos 1, pair 0 has theta = 1 rad.
        let mut t = vec![0.0; 4];
        let x = [1.0f32, 0.0, 0.0, 0.0];
        let r = Rope::new(4, false, 10000.0, 1.0, None);
        r.table(1, &mut t);
        let mut y = x;
        r.apply(&mut y, 4, &t);
        assert!((y[0] - 1f32.cos()).abs() < 1e-6 && (y[1] - 1f32.sin()).abs() < 1e-6);
        let r = Rope::new(4, true, 10000.0, 1.0, None);
        let mut y = x;
        r.apply(&mut y, 4, &t);
        assert!((y[0] - 1f32.cos()).abs() < 1e-6 && (y[2] - 1f32.sin()).abs() < 1e-6);
    }
}
