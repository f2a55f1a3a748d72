//! AVX2 + FMA + F16C dot kernels (x86-64), one per weight type; see `quant::dot` for
//! the formats and the scalar originals, and `super` for how they are handed out.
//!
//! Techniques:
//! - i8 x i8 products: `maddubs` multiplies unsigned by signed bytes, so a signed weight
//!   vector `w` is made unsigned with `abs(w)` and its sign moved onto the activations
//!   with `sign(y, w)`. Exact as long as no activation is -128, which the activation
//!   quantizers never produce (their range is -127..=127). Unsigned weights (Q4_1, Q5_1,
//!   Q2_K..Q6_K) go to `maddubs` directly; their offsets (Q3_K's -4, Q6_K's -32) are
//!   applied afterwards through Q8_K's per-16 sums `bsums`, which is exact integer algebra.
//! - Sub-block scales multiply the i16 pair sums inside `madd` (scale in the other operand),
//!   so one block's integer sum is exact in i32 (bounds noted per kernel) and converted to
//!   float once per block, like the scalar code.
//! - Packed scales (Q3_K, Q4_K, Q5_K) are decoded four at a time with u32 bit arithmetic.
//! - All loads and stores are unaligned (tensor data comes from an mmap at any alignment)
//!   and go through [`ld256`](helpers::ld256)/[`ld128`](helpers::ld128)/`ld8`/`st256`
//!   (the last two in `quantize`), which touch exactly one
//!   borrowed array, so bounds are those of the safe slices: blocks are zipped from
//!   `as_chunks`, as in the scalar code, and short inputs only shorten the sum.
//! - f16 scales are loaded 4 bytes at a time ([`h2f2`](helpers::h2f2)) and converted
//!   with F16C.
//!
//! Contents: single-row dot kernels for every weight type hearth computes with (`legacy`:
//! the 32-element blocks; `kquants`: the K-quants and IQ4_XS; `float`: F32/F16/BF16),
//! byte-exact Q8_0/Q8_1/Q8_K activation quantizers (`quantize`), tile kernels for batches
//! of activation rows (`gemm`), and the helpers they share (`helpers`).
//!
//! The kernel bodies are `unsafe fn` only because of `#[target_feature]`: the caller must
//! guarantee the CPU has AVX2, FMA and F16C. The safe wrappers at the bottom are handed out
//! by [`dot_fn`] only, which `super::dot_fn_for` calls after detecting those features.

use crate::quant::dot::DotFn;
use crate::quant::GgmlType;

mod float;
mod gemm;
pub(super) mod helpers;
pub(super) mod kquants;
mod legacy;
mod quantize;

use float::{bf16_dot, f16_dot, f32_dot};
pub(super) use gemm::gemm_fn;
use kquants::{iq4_xs, q2_k, q3_k, q4_k, q5_k, q6_k};
use legacy::{iq4_nl, q4_0, q4_1, q5_0, q5_1, q8_0};
pub(super) use quantize::quantize_fn;

// ---------------------------------------------------------------------------------------
// Safe entry points.

macro_rules! safe_dot {
    ($($name:ident => $imp:ident),* $(,)?) => {$(
        fn $name(w: &[u8], x: &[u8]) -> f32 {
            // These fns are reachable only through `dot_fn`, which `simd::dot_fn_for`
            // calls after detecting the features.
            // SAFETY: the CPU has AVX2, FMA and F16C (checked before handing this fn out).
            unsafe { $imp(w, x) }
        }
    )*};
}

safe_dot! {
    dot_f32 => f32_dot,
    dot_f16 => f16_dot,
    dot_bf16 => bf16_dot,
    dot_q4_0 => q4_0,
    dot_q4_1 => q4_1,
    dot_q5_0 => q5_0,
    dot_q5_1 => q5_1,
    dot_q8_0 => q8_0,
    dot_iq4_nl => iq4_nl,
    dot_q2_k => q2_k,
    dot_q3_k => q3_k,
    dot_q4_k => q4_k,
    dot_q5_k => q5_k,
    dot_q6_k => q6_k,
    dot_iq4_xs => iq4_xs,
}

/// The AVX2 kernel for a weight type. Only `simd::dot_fn_for` may call this, after
/// checking that the CPU has AVX2, FMA and F16C.
pub(super) fn dot_fn(ty: GgmlType) -> Option<DotFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => dot_f32,
        F16 => dot_f16,
        Bf16 => dot_bf16,
        Q4_0 => dot_q4_0,
        Q4_1 => dot_q4_1,
        Q5_0 => dot_q5_0,
        Q5_1 => dot_q5_1,
        Q8_0 => dot_q8_0,
        Iq4Nl => dot_iq4_nl,
        Q2K => dot_q2_k,
        Q3K => dot_q3_k,
        Q4K => dot_q4_k,
        Q5K => dot_q5_k,
        Q6K => dot_q6_k,
        Iq4Xs => dot_iq4_xs,
        _ => return None,
    })
}
