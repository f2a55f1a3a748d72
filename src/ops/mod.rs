//! The numeric operations of a forward pass, on f32 activations laid out row-major
//! (`[tokens][features]`): quantized matrix products, RMSNorm, RoPE, attention and
//! activation functions.
//!
//! These are the only callers of the quant kernels. Nothing here allocates per call
//! except where a scratch buffer is first grown to a larger batch than seen before.

pub mod act;
pub mod attention;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod rope;

pub use matmul::{matmul, matmul_many, MatmulScratch, QMatrix};
