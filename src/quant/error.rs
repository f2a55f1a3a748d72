//! The one error type of the quant kernels.
//!
//! Kernels take a row (a whole number of blocks) and check lengths up front, so every
//! failure is a caller bug or an unsupported type, never a property of the data bytes:
//! any bytes dequantize to *some* floats, as in ggml.

use super::GgmlType;

/// What was wrong with a kernel call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// hearth has no kernel for this type (see [`GgmlType::is_supported`]).
    #[error("ggml type {0} is not supported")]
    Unsupported(GgmlType),
    /// The element count is not a multiple of the type's block size.
    #[error("{elems} elements is not a whole number of {ty} blocks of {block}")]
    PartialBlock {
        ty: GgmlType,
        elems: usize,
        block: usize,
    },
    /// The quantized side has the wrong number of bytes for the element count.
    #[error("{elems} {ty} elements take {expected} bytes, but the buffer has {actual}")]
    ByteLength {
        ty: GgmlType,
        elems: usize,
        expected: usize,
        actual: usize,
    },
}

/// Checks that `elems` elements of `ty` take exactly `bytes` bytes.
pub(crate) fn check_lengths(ty: GgmlType, elems: usize, bytes: usize) -> Result<(), QuantError> {
    let block = ty.block_size();
    if !elems.is_multiple_of(block) {
        return Err(QuantError::PartialBlock { ty, elems, block });
    }
    // Saturating: a row too large to address can never match a real buffer length.
    let expected = (elems / block).saturating_mul(ty.type_size());
    if bytes != expected {
        return Err(QuantError::ByteLength {
            ty,
            elems,
            expected,
            actual: bytes,
        });
    }
    Ok(())
}
