//! Block formats of ggml tensors: which types exist, how large their blocks are,
//! and scalar reference kernels (dequantize, quantize) for the ones hearth computes with.
//!
//! This module knows nothing of GGUF or models. The GGUF reader uses [`GgmlType`] to size
//! tensors; the engine uses the kernels.
//!
//! Files, one concept each:
//! - `blocks`: the on-disk block layouts as alignment-1 `#[repr(C)]` structs, plus the
//!   decoders of packed fields (f16 scales, K-quant 6-bit scales).
//! - `dequant`: [`dequantize_row`], the scalar reference (and test oracle for SIMD kernels).
//! - `quantize`: [`quantize_row_q8_0`], [`quantize_row_q8_1`], [`quantize_row_q8_k`] for
//!   activations.
//! - `dot`: dot products of a weight row with a quantized activation row (scalar
//!   reference kernels, and [`dot::dot_fn`], which hands out the `simd` kernel chosen at
//!   startup).
//! - `simd`: runtime instruction-set choice and the AVX2 kernels.
//! - `error`: [`QuantError`].
//!
//! All kernels are bit-exact with ggml's reference C (`ggml-quants.c`); the integration
//! test `tests/quant_oracle.rs` checks that against the Python `gguf` package.

use std::fmt;

pub mod blocks;
mod dequant;
pub mod dot;
pub(crate) mod error;
mod quantize;
pub mod simd;

pub use dequant::dequantize_row;
pub use error::QuantError;
pub use quantize::{quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k};

/// A ggml tensor element type, by its on-disk id (ggml.h `enum ggml_type`).
///
/// Every id a current GGUF file may carry is listed, so the reader can size any tensor
/// and `show` can describe any file; which of them hearth can *compute* with is
/// [`GgmlType::is_supported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq2Xxs,
    Iq2Xs,
    Iq3Xxs,
    Iq1S,
    Iq4Nl,
    Iq3S,
    Iq2S,
    Iq4Xs,
    I8,
    I16,
    I32,
    I64,
    F64,
    Iq1M,
    Bf16,
    Tq1_0,
    Tq2_0,
    Mxfp4,
}

/// (type, id, name, elements per block, bytes per block)
const TABLE: &[(GgmlType, u32, &str, usize, usize)] = &[
    (GgmlType::F32, 0, "F32", 1, 4),
    (GgmlType::F16, 1, "F16", 1, 2),
    (GgmlType::Q4_0, 2, "Q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "Q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "Q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "Q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "Q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "Q8_1", 32, 36),
    (GgmlType::Q2K, 10, "Q2_K", 256, 84),
    (GgmlType::Q3K, 11, "Q3_K", 256, 110),
    (GgmlType::Q4K, 12, "Q4_K", 256, 144),
    (GgmlType::Q5K, 13, "Q5_K", 256, 176),
    (GgmlType::Q6K, 14, "Q6_K", 256, 210),
    (GgmlType::Q8K, 15, "Q8_K", 256, 292),
    (GgmlType::Iq2Xxs, 16, "IQ2_XXS", 256, 66),
    (GgmlType::Iq2Xs, 17, "IQ2_XS", 256, 74),
    (GgmlType::Iq3Xxs, 18, "IQ3_XXS", 256, 98),
    (GgmlType::Iq1S, 19, "IQ1_S", 256, 50),
    (GgmlType::Iq4Nl, 20, "IQ4_NL", 32, 18),
    (GgmlType::Iq3S, 21, "IQ3_S", 256, 110),
    (GgmlType::Iq2S, 22, "IQ2_S", 256, 82),
    (GgmlType::Iq4Xs, 23, "IQ4_XS", 256, 136),
    (GgmlType::I8, 24, "I8", 1, 1),
    (GgmlType::I16, 25, "I16", 1, 2),
    (GgmlType::I32, 26, "I32", 1, 4),
    (GgmlType::I64, 27, "I64", 1, 8),
    (GgmlType::F64, 28, "F64", 1, 8),
    (GgmlType::Iq1M, 29, "IQ1_M", 256, 56),
    (GgmlType::Bf16, 30, "BF16", 1, 2),
    (GgmlType::Tq1_0, 34, "TQ1_0", 256, 54),
    (GgmlType::Tq2_0, 35, "TQ2_0", 256, 66),
    (GgmlType::Mxfp4, 39, "MXFP4", 32, 17),
];

impl GgmlType {
    fn row(self) -> &'static (GgmlType, u32, &'static str, usize, usize) {
        // Every variant has exactly one row (checked by a unit test).
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .expect("every GgmlType is in TABLE")
    }

    /// The type with this on-disk id, or `None` for ids that ggml removed or never had.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TABLE.iter().find(|r| r.1 == id).map(|r| r.0)
    }

    /// The on-disk id.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// The name ggml and llama.cpp print ("Q4_K", "F16", …).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements in one block.
    pub fn block_size(self) -> usize {
        self.row().3
    }

    /// Bytes in one block.
    pub fn type_size(self) -> usize {
        self.row().4
    }

    /// Bytes taken by `n` elements, or `None` when `n` is not a whole number of blocks
    /// or the size overflows.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !n.is_multiple_of(bs) {
            return None;
        }
        (n / bs).checked_mul(self.type_size() as u64)
    }

    /// Whether hearth has kernels for this type ([`dequantize_row`] accepts it).
    ///
    /// Q8_1 is only an activation format: it can be produced ([`quantize_row_q8_1`]) but
    /// ggml has no dequantizer for it, and neither do we.
    pub fn is_supported(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16
                | Bf16
                | Q4_0
                | Q4_1
                | Q5_0
                | Q5_1
                | Q8_0
                | Q2K
                | Q3K
                | Q4K
                | Q5K
                | Q6K
                | Q8K
                | Iq4Nl
                | Iq4Xs
        )
    }

    /// All known types.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|r| r.0)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut ids: Vec<u32> = TABLE.iter().map(|r| r.1).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len(), "duplicate ids");
        for t in GgmlType::all() {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        for gone in [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000] {
            assert_eq!(GgmlType::from_id(gone), None);
        }
        assert_eq!(GgmlType::Q4K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4K.row_bytes(100), None);
    }
}
