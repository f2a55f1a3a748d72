//! A sequence and its KV cache: per layer, keys and values of every position, each a
//! row of `n_head_kv * head_dim` f16 (as llama.cpp keeps it by default).
//!
//! f16 halves the memory and, more to the point, the bytes a decode step reads: at a
//! long context every token reads every cached key and value of every layer. Rows are
//! rounded from the forward pass's f32 once, when written (IEEE round-to-nearest-even,
//! `half::f16::from_f32`), and widened back exactly by the attention kernels.
//!
//! The buffers are zero-initialised allocations of the full `num_ctx` (made as `u16`
//! zeros, so the allocator serves them from fresh, untouched pages, then reinterpreted):
//! memory is only resident once positions are used.

use half::f16;
use half::slice::HalfFloatSliceExt;
use half::vec::HalfBitsVecExt;

use crate::model::Config;

/// One sequence's state.
pub struct Sequence {
    /// Positions filled (the next token goes to position `len`).
    pub len: usize,
    /// Positions the cache can hold (this sequence's own `num_ctx`).
    pub cap: usize,
    pub(super) k: Vec<Vec<f16>>,
    pub(super) v: Vec<Vec<f16>>,
}

/// `n` zero f16s, without touching the pages: `vec![0u16; n]` is a zeroed allocation
/// (`vec![f16::ZERO; n]` would write every element).
fn zeros(n: usize) -> Vec<f16> {
    vec![0u16; n].reinterpret_into::<f16>()
}

impl Sequence {
    pub(super) fn new(c: &Config, num_ctx: usize) -> Sequence {
        let per_layer = num_ctx * c.kv_dim();
        Sequence {
            len: 0,
            cap: num_ctx,
            k: (0..c.n_layer).map(|_| zeros(per_layer)).collect(),
            v: (0..c.n_layer).map(|_| zeros(per_layer)).collect(),
        }
    }

    /// Copies the first `n` positions of `src` into this sequence, which then holds those
    /// `n` positions (`n` at most both sequences' lengths and capacities).
    pub(super) fn copy_prefix_from(&mut self, src: &Sequence, n: usize) {
        let n = n.min(src.len).min(self.cap);
        for (dst, from) in self.k.iter_mut().zip(&src.k) {
            let m = (n * from.len() / src.cap.max(1)).min(dst.len());
            dst[..m].copy_from_slice(&from[..m]);
        }
        for (dst, from) in self.v.iter_mut().zip(&src.v) {
            let m = (n * from.len() / src.cap.max(1)).min(dst.len());
            dst[..m].copy_from_slice(&from[..m]);
        }
        self.len = n;
    }

    /// Stores the key and value rows (`kv_dim` f32 each) of position `pos` in layer `l`,
    /// rounded to f16.
    pub(super) fn store(&mut self, l: usize, pos: usize, k: &[f32], v: &[f32]) {
        let n = k.len();
        let at = pos * n;
        self.k[l][at..at + n].convert_from_f32_slice(k);
        self.v[l][at..at + n].convert_from_f32_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n_layer: usize, len: usize) -> Sequence {
        Sequence {
            len: 0,
            cap: len,
            k: (0..n_layer).map(|_| zeros(len)).collect(),
            v: (0..n_layer).map(|_| zeros(len)).collect(),
        }
    }

    /// What is stored is exactly `f16::from_f32` of each value (round to nearest, ties
    /// to even; overflow to infinity; subnormals), whichever conversion path `half` takes.
    #[test]
    fn store_rounds_like_from_f32() {
        let kv_dim = 37; // not a multiple of 8: the conversion's tail path too
        let mut vals: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0,
            1.0 + f32::EPSILON,
            // Ties between two f16s: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
            1.0 + 1.0 / 2048.0,
            1.0 + 3.0 / 2048.0,
            -(1.0 + 1.0 / 2048.0),
            65504.0,
            65520.0, // rounds to infinity
            1e6,
            -1e6,
            6.0e-8, // subnormal f16
            2.0e-8, // rounds to zero
            6.1e-5, // near the smallest normal
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        while vals.len() < 2 * kv_dim * 3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Random magnitudes over many binades, both signs.
            let m = ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            vals.push(m * 2f32.powi((x % 24) as i32 - 12));
        }
        let mut s = seq(2, 4 * kv_dim);
        for (p, rows) in vals.chunks_exact(2 * kv_dim).enumerate() {
            let (k, v) = rows.split_at(kv_dim);
            s.store(1, p, k, v);
            for (j, (&a, &b)) in k.iter().zip(v).enumerate() {
                let at = p * kv_dim + j;
                assert_eq!(s.k[1][at].to_bits(), f16::from_f32(a).to_bits(), "k {a}");
                assert_eq!(s.v[1][at].to_bits(), f16::from_f32(b).to_bits(), "v {b}");
            }
        }
        // Other layers and positions are untouched.
        assert!(s.k[0].iter().chain(&s.v[0]).all(|h| h.to_bits() == 0));
        let rest = 3 * kv_dim;
        assert!(s.k[1][rest..].iter().all(|h| h.to_bits() == 0));
        assert_eq!(f16::from_f32(1.0 + 1.0 / 2048.0), f16::ONE);
        assert_eq!(f16::from_f32(65520.0), f16::INFINITY);
    }
}
