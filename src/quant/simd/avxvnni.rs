//! AVX-VNNI kernels (x86-64: the VEX-encoded, 256-bit `vpdpbusd`/`vpdpwssd` of Intel's
//! client CPUs since Alder Lake, which lack AVX-512; also on Sapphire Rapids and Zen 5).
//! AVX2 + FMA + F16C + AVX-VNNI; where this set has no kernel of its own for a type it
//! hands out AVX2's.
//!
//! Own kernels: single-row dot and tile for the legacy formats (Q4_0, Q4_1, Q5_0, Q5_1,
//! Q8_0, IQ4_NL: `vpdpbusd` with the exact offset correction of the AVX-512 set), and the
//! single-row Q4_K, Q5_K, Q6_K (`vpmaddubsw` + `vpdpwssd`); from AVX2: the K-quant and float
//! tiles, Q2_K, Q3_K, IQ4_XS, the float formats and the activation quantizers.
//!
//! Like the AVX-512 set, every kernel returns AVX2's bits exactly (same i32 lanes, same
//! float operations; tested), so the tiles equal the single-row kernels and switching
//! sets never changes a token. The kernel bodies are `unsafe fn` only because of
//! `#[target_feature]`; the safe wrappers are handed out by [`dot_fn`]/[`gemm_fn`] only,
//! after `super` detected the features.

use crate::quant::dot::{DotFn, GemmFn, QuantizeFn};
use crate::quant::GgmlType;

mod dot;
mod gemm;

use dot::{iq4_nl, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0};

macro_rules! safe_dot {
    ($($name:ident => $imp:ident),* $(,)?) => {$(
        fn $name(w: &[u8], x: &[u8]) -> f32 {
            // These fns are reachable only through `dot_fn`, which `simd::dot_fn_for`
            // calls after detecting the features: AVX2, FMA, F16C and AVX-VNNI.
            // SAFETY: the CPU has those features (checked before handing this fn out).
            unsafe { $imp(w, x) }
        }
    )*};
}

safe_dot! {
    dot_q4_0 => q4_0,
    dot_q4_1 => q4_1,
    dot_q5_0 => q5_0,
    dot_q5_1 => q5_1,
    dot_q8_0 => q8_0,
    dot_iq4_nl => iq4_nl,
    dot_q4_k => q4_k,
    dot_q5_k => q5_k,
    dot_q6_k => q6_k,
}

/// The AVX-VNNI kernel for a weight type (AVX2's where this set has none). Only
/// `simd::dot_fn_for` may call this, after checking the features.
pub(super) fn dot_fn(ty: GgmlType) -> Option<DotFn> {
    use GgmlType::*;
    Some(match ty {
        Q4_0 => dot_q4_0,
        Q4_1 => dot_q4_1,
        Q5_0 => dot_q5_0,
        Q5_1 => dot_q5_1,
        Q8_0 => dot_q8_0,
        Iq4Nl => dot_iq4_nl,
        Q4K => dot_q4_k,
        Q5K => dot_q5_k,
        Q6K => dot_q6_k,
        _ => return super::avx2::dot_fn(ty),
    })
}

/// The AVX-VNNI tile kernel for a weight type (AVX2's where this set has none), with
/// [`dot_fn`]'s conditions.
pub(super) fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
    gemm::gemm_fn(ty).or_else(|| super::avx2::gemm_fn(ty))
}

/// The activation quantizers: AVX2's (byte-identical to the scalar ones).
pub(super) fn quantize_fn(act: GgmlType) -> Option<QuantizeFn> {
    super::avx2::quantize_fn(act)
}
