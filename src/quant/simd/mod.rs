//! SIMD dot-product kernels and the runtime choice between them.
//!
//! Why shaped so:
//! - One binary runs on any x86-64 or aarch64 CPU, so the instruction set is chosen at
//!   run time, once ([`kernel`]), from CPU feature detection. The choice can be forced
//!   with `HEARTH_KERNEL=scalar|avx2|avx-vnni|avx512|neon|neon-nodot` (for A/B
//!   comparisons and bug hunts); a value
//!   the CPU cannot run, or one we do not know, is ignored with a one-time warning, so an
//!   environment variable can never select an instruction set the CPU lacks.
//! - A SIMD kernel is a plain safe [`DotFn`]. Its `#[target_feature]` body may only run on
//!   a CPU with those features, so the safe wrappers are private and handed out only by
//!   [`dot_fn_for`], which checks the features first: holding the fn pointer is the proof.
//! - Every kernel computes exactly the scalar kernel's per-(sub-)block integer sums (see
//!   `quant::dot`); only the order of float accumulation differs, which the tests in
//!   `tests/simd_kernels.rs` bound.
//!
//! - Activation quantizers (Q8_0, Q8_1, Q8_K) have AVX2 and NEON versions too,
//!   byte-identical to the scalar references in `quant::quantize` (tested), so switching
//!   kernels never changes which integers the dot products see.
//! - aarch64 has two NEON kernel sets: `neon` uses the Armv8.2 `sdot` instruction (CPUs
//!   with the `dotprod` feature: Cortex-A55/A76 and later, Neoverse, Apple), `neon-nodot`
//!   only Armv8.0 NEON (Cortex-A53/A57/A72, e.g. a Raspberry Pi 3/4). Neither has tile
//!   (gemm) kernels yet, so [`gemm_fn_for`] returns `None` and the matmul runs the
//!   single-row kernels per token.
//! - x86-64 has three kernel sets: `avx2` (AVX2 + FMA + F16C), `avx-vnni` (plus the
//!   256-bit VNNI of Alder Lake and later) and `avx512` (AVX2 plus AVX-512 F/BW/VL and
//!   VNNI), detected in the order avx512, avx-vnni, avx2. The last two hand out AVX2's
//!   kernels where they have none of their own and return exactly AVX2's bits (see
//!   `avx512`, `avxvnni`).
//! - A kernel set without a kernel for some weight type makes [`dot_fn_for`] return
//!   `None` for it; `quant::dot::dot_fn` then falls back to the scalar kernel.

use std::sync::OnceLock;

use super::dot::{scalar_dot_fn, DotFn, GemmFn, QuantizeFn};
use super::GgmlType;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avxvnni;

/// NEON kernels need a little-endian aarch64 (they reinterpret vectors of bytes).
#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
mod neon;

/// Elsewhere there are no NEON kernels (and `neon_available` is false anyway).
#[cfg(not(all(target_arch = "aarch64", target_endian = "little")))]
mod neon {
    use super::{DotFn, GgmlType, QuantizeFn};
    pub(super) fn dot_fn(_: GgmlType, _: bool) -> Option<DotFn> {
        None
    }
    pub(super) fn quantize_fn(_: GgmlType) -> Option<QuantizeFn> {
        None
    }
}

/// Elsewhere there are no AVX2 or AVX-512 kernels (and `avx2_available` is false anyway).
#[cfg(not(target_arch = "x86_64"))]
use {avx2 as avx512, avx2 as avxvnni};
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
    /// x86-64 AVX2 + FMA + F16C + AVX-VNNI (256-bit VEX `vpdpbusd`).
    AvxVnni,
    /// x86-64 AVX2 + FMA + F16C + AVX-512 F/BW/VL + AVX512-VNNI.
    Avx512,
    /// aarch64 NEON with the dot-product extension (`sdot`).
    Neon,
    /// aarch64 NEON without the dot-product extension (Armv8.0).
    NeonNoDot,
}

impl Kernel {
    /// The name `HEARTH_KERNEL` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::AvxVnni => "avx-vnni",
            Kernel::Avx512 => "avx512",
            Kernel::Neon => "neon",
            Kernel::NeonNoDot => "neon-nodot",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => avx2_available(),
            Kernel::AvxVnni => avxvnni_available(),
            Kernel::Avx512 => avx512_available(),
            Kernel::Neon => neon_available() && dotprod_available(),
            Kernel::NeonNoDot => neon_available(),
        }
    }

    /// Every kernel set, available or not (the scalar one first).
    pub const ALL: [Kernel; 6] = [
        Kernel::Scalar,
        Kernel::Avx2,
        Kernel::AvxVnni,
        Kernel::Avx512,
        Kernel::Neon,
        Kernel::NeonNoDot,
    ];

    /// Whether the set includes AVX2 + FMA + F16C (so the AVX2 code outside `quant`,
    /// activations and attention, may run under it).
    pub fn has_avx2(self) -> bool {
        matches!(self, Kernel::Avx2 | Kernel::AvxVnni | Kernel::Avx512)
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

#[cfg(target_arch = "x86_64")]
fn avx512_available() -> bool {
    avx2_available()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_available() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn avxvnni_available() -> bool {
    avx2_available() && is_x86_feature_detected!("avxvnni")
}

#[cfg(not(target_arch = "x86_64"))]
fn avxvnni_available() -> bool {
    false
}

#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
fn neon_available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
fn dotprod_available() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

#[cfg(not(all(target_arch = "aarch64", target_endian = "little")))]
fn neon_available() -> bool {
    false
}

#[cfg(not(all(target_arch = "aarch64", target_endian = "little")))]
fn dotprod_available() -> bool {
    false
}

/// The best kernel this CPU can run.
pub fn detect() -> Kernel {
    [
        Kernel::Avx512,
        Kernel::AvxVnni,
        Kernel::Avx2,
        Kernel::Neon,
        Kernel::NeonNoDot,
    ]
    .into_iter()
    .find(|k| k.is_available())
    .unwrap_or(Kernel::Scalar)
}

/// Resolves a `HEARTH_KERNEL` value: the kernel, or a warning and the detected one.
fn choose(requested: Option<&str>) -> (Kernel, Option<String>) {
    let Some(req) = requested else {
        return (detect(), None);
    };
    let want = req.trim().to_ascii_lowercase();
    let Some(k) = Kernel::ALL.into_iter().find(|k| k.name() == want) else {
        let d = detect();
        let msg = format!(
            "hearth: unknown HEARTH_KERNEL={req:?} (expected scalar, avx2, avx-vnni, \
             avx512, neon or neon-nodot); using {}",
            d.name()
        );
        return (d, Some(msg));
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

/// Runs `f` (which hands out AVX-512 kernels) only on a CPU with [`Kernel::Avx512`]'s
/// features.
fn on_avx512<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    if avx512_available() {
        f()
    } else {
        None
    }
}

/// Runs `f` (which hands out AVX-VNNI kernels) only on a CPU with [`Kernel::AvxVnni`]'s
/// features.
fn on_avxvnni<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    if avxvnni_available() {
        f()
    } else {
        None
    }
}

/// Runs `f` (which hands out NEON kernels) only on a CPU with `kernel` (one of the NEON
/// sets), passing whether it has the dot-product instructions.
fn on_neon<T>(kernel: Kernel, f: impl FnOnce(bool) -> Option<T>) -> Option<T> {
    if kernel.is_available() {
        f(kernel == Kernel::Neon)
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
        Kernel::Avx512 => on_avx512(|| avx512::dot_fn(ty)),
        Kernel::AvxVnni => on_avxvnni(|| avxvnni::dot_fn(ty)),
        Kernel::Neon | Kernel::NeonNoDot => on_neon(kernel, |dot| neon::dot_fn(ty, dot)),
    }
}

/// `kernel`'s matrix-product tile kernel for a weight type (see [`GemmFn`]), with
/// [`dot_fn_for`]'s guarantees; `None` where the kernel has none for the type (callers
/// fall back to dot products).
pub fn gemm_fn_for(kernel: Kernel, ty: GgmlType) -> Option<GemmFn> {
    match kernel {
        Kernel::Scalar | Kernel::Neon | Kernel::NeonNoDot => None,
        Kernel::Avx2 => on_avx2(|| avx2::gemm_fn(ty)),
        Kernel::Avx512 => on_avx512(|| avx512::gemm_fn(ty)),
        Kernel::AvxVnni => on_avxvnni(|| avxvnni::gemm_fn(ty)),
    }
}

/// `kernel`'s quantizer for an activation format (Q8_0, Q8_1, Q8_K), with
/// [`dot_fn_for`]'s guarantees; `None` for the scalar kernel and other formats (use
/// `dot::scalar_quantize_activations`).
pub fn quantize_fn_for(kernel: Kernel, act: GgmlType) -> Option<QuantizeFn> {
    match kernel {
        Kernel::Scalar => None,
        Kernel::Avx2 => on_avx2(|| avx2::quantize_fn(act)),
        Kernel::Avx512 => on_avx512(|| avx512::quantize_fn(act)),
        Kernel::AvxVnni => on_avxvnni(|| avxvnni::quantize_fn(act)),
        Kernel::Neon | Kernel::NeonNoDot => on_neon(kernel, |_| neon::quantize_fn(act)),
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
        for k in Kernel::ALL {
            let (got, w) = choose(Some(&k.name().to_ascii_uppercase()));
            if k.is_available() {
                assert_eq!((got, w), (k, None));
            } else {
                assert_eq!(got, detect());
                assert!(w.unwrap().contains("not supported"));
            }
        }
        assert!(Kernel::Scalar.is_available());
        assert!(!(Kernel::Avx2.is_available() && Kernel::NeonNoDot.is_available()));
        // AVX-512 is a superset of AVX2, and detected first.
        if Kernel::Avx512.is_available() {
            assert!(Kernel::Avx2.is_available());
            assert_eq!(detect(), Kernel::Avx512);
        }
        if Kernel::AvxVnni.is_available() {
            assert!(Kernel::Avx2.is_available());
            assert_ne!(detect(), Kernel::Avx2);
        }
        assert!(Kernel::Avx512.has_avx2() && Kernel::Avx2.has_avx2());
        assert!(Kernel::AvxVnni.has_avx2());
        assert!(!Kernel::Scalar.has_avx2() && !Kernel::Neon.has_avx2());
        if Kernel::Neon.is_available() {
            assert!(Kernel::NeonNoDot.is_available());
        }
        assert_eq!(choose(None), (detect(), None));
        assert!(kernel().is_available());
    }
}
