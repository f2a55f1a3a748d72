//! AVX-512 (F, BW, VL) + VNNI kernels (x86-64: Intel Xeon since Cascade Lake, Ice Lake /
//! Tiger Lake and later client parts with AVX-512, AMD Zen 4/5). A superset of AVX2:
//! where this set has no kernel of its own for a type it hands out AVX2's, so every type
//! keeps a SIMD kernel.
//!
//! Own kernels (single-row dot and tile): Q4_0, Q4_1 (tile only), Q5_0, Q5_1, Q8_0,
//! IQ4_NL (`legacy`, two 32-element blocks per 512-bit vector, `vpdpbusd`) and Q4_K,
//! Q5_K, Q6_K (`kquants`, 64 quants per vector, `vpmaddubsw` + `vpdpwssd`); the tiles
//! are in `gemm`. From AVX2: the float formats, Q2_K, Q3_K, IQ4_XS, the single-row Q4_1
//! (faster there, same bits) and the activation quantizers.
//!
//! Bits: every kernel computes AVX2's i32 lanes (exact integer sums over the same bytes)
//! and AVX2's float operations on them in the same order, so this set returns exactly
//! AVX2's results (tested): choosing between the two never changes a token, and its tiles
//! equal its single-row kernels bit for bit like AVX2's.
//!
//! The kernel bodies are `unsafe fn` only because of `#[target_feature]`: the caller must
//! guarantee the CPU has AVX2, FMA, F16C, AVX512F, AVX512BW, AVX512VL and AVX512-VNNI.
//! The safe wrappers are handed out by [`dot_fn`]/[`gemm_fn`] only, which
//! `super::dot_fn_for`/`gemm_fn_for` call after detecting those features.

use crate::quant::dot::{DotFn, GemmFn, QuantizeFn};
use crate::quant::GgmlType;

mod gemm;
mod helpers;
mod kquants;
mod legacy;

use kquants::{q4_k, q5_k, q6_k};
use legacy::{iq4_nl, q4_0, q5_0, q5_1, q8_0};

macro_rules! safe_dot {
    ($($name:ident => $imp:ident),* $(,)?) => {$(
        fn $name(w: &[u8], x: &[u8]) -> f32 {
            // These fns are reachable only through `dot_fn`, which `simd::dot_fn_for`
            // calls after detecting the features: AVX2, FMA, F16C, AVX512F/BW/VL, AVX512-VNNI.
            // SAFETY: the CPU has those features (checked before handing this fn out).
            unsafe { $imp(w, x) }
        }
    )*};
}

safe_dot! {
    dot_q4_0 => q4_0,
    dot_q5_0 => q5_0,
    dot_q5_1 => q5_1,
    dot_q8_0 => q8_0,
    dot_iq4_nl => iq4_nl,
    dot_q4_k => q4_k,
    dot_q5_k => q5_k,
    dot_q6_k => q6_k,
}

/// The AVX-512 kernel for a weight type (AVX2's where this set has none). Only
/// `simd::dot_fn_for` may call this, after checking the features.
pub(super) fn dot_fn(ty: GgmlType) -> Option<DotFn> {
    use GgmlType::*;
    Some(match ty {
        Q4_0 => dot_q4_0,
        // AVX2's single-row Q4_1 streams ~8% faster than `legacy::q4_1` here (Sapphire
        // Rapids, kernel_bench: 13.3 vs 12.1 GB/s), with the same bits, so the tile
        // (`gemm`) still equals it.
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

/// The AVX-512 tile kernel for a weight type (AVX2's where this set has none), with
/// [`dot_fn`]'s conditions.
pub(super) fn gemm_fn(ty: GgmlType) -> Option<GemmFn> {
    gemm::gemm_fn(ty).or_else(|| super::avx2::gemm_fn(ty))
}

/// The activation quantizers: AVX2's (byte-identical to the scalar ones).
pub(super) fn quantize_fn(act: GgmlType) -> Option<QuantizeFn> {
    super::avx2::quantize_fn(act)
}
