//! SIMD dot-product kernels and the runtime choice between them.
//!
//! Why shaped so:
//! - One binary runs on any x86-64 (and later aarch64) CPU, so the instruction set is
//!   chosen at run time, once ([`kernel`]), from CPU feature detection. The choice can be
//!   forced with `HEARTH_KERNEL=scalar|avx2` (for A/B comparisons and bug hunts); a value
//!   the CPU cannot run, or one we do not know, is ignored with a one-time warning, so an
//!   environment variable can never select an instruction set the CPU lacks.
//! - A SIMD kernel is a plain safe [`DotFn`]. Its `#[target_feature]` body may only run on
//!   a CPU with those features, so the safe wrappers are private and handed out only by
//!   [`dot_fn_for`], which checks the features first: holding the fn pointer is the proof.
//! - Every kernel computes exactly the scalar kernel's per-(sub-)block integer sums (see
//!   `quant::dot`); only the order of float accumulation differs, which the tests in
//!   `tests/simd_kernels.rs` bound.
//!
//! - Activation quantizers (Q8_0, Q8_1, Q8_K) have AVX2 versions too, byte-identical to
//!   the scalar references in `quant::quantize` (tested), so switching kernels never
//!   changes which integers the dot products see.

use std::sync::OnceLock;

use super::dot::{scalar_dot_fn, DotFn, GemmFn, QuantizeFn};
use super::GgmlType;

#[cfg(target_arch = "x86_64")]
mod avx2;

/// Elsewhere there are no AVX2 kernels (and `avx2_available` is false anyway).
#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::{DotFn, GemmFn, GgmlType, QuantizeFn};
    pub(super) fn dot_fn(_: GgmlType) -> Option<DotFn> {
        None
    }
    pub(super) fn gemm_fn(_: GgmlType) -> Option<GemmFn> {
        None
    }
    pub(super) fn quantize_fn(_: GgmlType) -> Option<QuantizeFn> {
        None
    }
}

/// An instruction set hearth has dot kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust (`quant::dot`), the reference.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
}

impl Kernel {
    /// The name `HEARTH_KERNEL` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => avx2_available(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_available() -> bool {
    false
}

/// The best kernel this CPU can run.
pub fn detect() -> Kernel {
    if avx2_available() {
        Kernel::Avx2
    } else {
        Kernel::Scalar
    }
}

/// Resolves a `HEARTH_KERNEL` value: the kernel, or a warning and the detected one.
fn choose(requested: Option<&str>) -> (Kernel, Option<String>) {
    let Some(req) = requested else {
        return (detect(), None);
    };
    let k = match req.trim().to_ascii_lowercase().as_str() {
        "scalar" => Kernel::Scalar,
        "avx2" => Kernel::Avx2,
        _ => {
            let d = detect();
            let msg = format!(
                "hearth: unknown HEARTH_KERNEL={req:?} (expected scalar or avx2); using {}",
                d.name()
            );
            return (d, Some(msg));
        }
    };
    if k.is_available() {
        (k, None)
    } else {
        let d = detect();
        let msg = format!(
            "hearth: HEARTH_KERNEL={} is not supported by this CPU; using {}",
            k.name(),
            d.name()
        );
        (d, Some(msg))
    }
}

/// The kernel in use: chosen on first call (detection, or `HEARTH_KERNEL`), then fixed.
pub fn kernel() -> Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    *K.get_or_init(|| {
        let req = std::env::var("HEARTH_KERNEL").ok();
        let (k, warning) = choose(req.as_deref());
        if let Some(w) = warning {
            eprintln!("{w}");
        }
        k
    })
}

/// Runs `f` (which hands out AVX2 kernels) only on a CPU with AVX2, FMA and F16C.
fn on_avx2<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    if avx2_available() {
        f()
    } else {
        None
    }
}

/// `kernel`'s dot product for a weight type, or `None` when the type has no kernel or the
/// CPU cannot run `kernel` (so a returned fn is always safe to call).
pub fn dot_fn_for(kernel: Kernel, ty: GgmlType) -> Option<DotFn> {
    match kernel {
        Kernel::Scalar => scalar_dot_fn(ty),
        Kernel::Avx2 => on_avx2(|| avx2::dot_fn(ty)),
    }
}

/// `kernel`'s matrix-product tile kernel for a weight type (see [`GemmFn`]), with
/// [`dot_fn_for`]'s guarantees; `None` where the kernel has none for the type (callers
/// fall back to dot products).
pub fn gemm_fn_for(kernel: Kernel, ty: GgmlType) -> Option<GemmFn> {
    match kernel {
        Kernel::Scalar => None,
        Kernel::Avx2 => on_avx2(|| avx2::gemm_fn(ty)),
    }
}

/// `kernel`'s quantizer for an activation format (Q8_0, Q8_1, Q8_K), with
/// [`dot_fn_for`]'s guarantees; `None` for the scalar kernel and other formats (use
/// `dot::scalar_quantize_activations`).
pub fn quantize_fn_for(kernel: Kernel, act: GgmlType) -> Option<QuantizeFn> {
    match kernel {
        Kernel::Scalar => None,
        Kernel::Avx2 => on_avx2(|| avx2::quantize_fn(act)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(choose(Some("scalar")), (Kernel::Scalar, None));
        assert_eq!(choose(Some(" Scalar ")), (Kernel::Scalar, None));
        let (k, w) = choose(Some("neon9000"));
        assert_eq!(k, detect());
        assert!(w.unwrap().contains("unknown"));
        let (k, w) = choose(Some("avx2"));
        if avx2_available() {
            assert_eq!((k, w), (Kernel::Avx2, None));
        } else {
            assert_eq!(k, Kernel::Scalar);
            assert!(w.unwrap().contains("not supported"));
        }
        assert_eq!(choose(None), (detect(), None));
        assert!(kernel().is_available());
    }
}
