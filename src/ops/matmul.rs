//! Quantized matrix products: `out[t][r] = W[r] · x[t]` for a weight matrix in any
//! supported ggml format and a batch of f32 activation rows.
//!
//! Shape: the activations are quantized once per call to the weight type's partner
//! format (as llama.cpp does, so results agree with the peer); then output rows are
//! split across threads, and each weight row is dotted with every activation row while
//! it is hot in cache, so a batch of N tokens reads the weights once, not N times.

use rayon::prelude::*;

use crate::quant::dot::{dot_fn, quantize_activations, vec_dot_type, DotFn};
use crate::quant::GgmlType;

/// A weight matrix viewed in place (in the model file's map): `rows` rows of `cols`
/// values each, row after row.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

/// Why a tensor cannot serve as a matrix.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("no matrix-multiply kernel for {0} weights")]
    Unsupported(GgmlType),
    #[error("{ty} matrix of {rows}x{cols} needs {expected} bytes, has {actual}")]
    Size {
        ty: GgmlType,
        rows: usize,
        cols: usize,
        expected: u64,
        actual: usize,
    },
}

impl<'a> QMatrix<'a> {
    /// Checks that the type has a kernel and the bytes are exactly `rows` rows.
    pub fn new(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<Self, MatrixError> {
        if dot_fn(ty).is_none() {
            return Err(MatrixError::Unsupported(ty));
        }
        let expected = ty
            .row_bytes(cols as u64)
            .and_then(|b| b.checked_mul(rows as u64));
        if expected != Some(data.len() as u64) {
            return Err(MatrixError::Size {
                ty,
                rows,
                cols,
                expected: expected.unwrap_or(u64::MAX),
                actual: data.len(),
            });
        }
        Ok(QMatrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }
}

/// Buffers reused across calls (grown to the largest batch seen, never shrunk).
#[derive(Default)]
pub struct MatmulScratch {
    act: Vec<u8>,
    out_t: Vec<f32>,
}

/// Rows of output computed per parallel task (a multiple of 8 keeps tasks cache-friendly).
const ROWS_PER_TASK: usize = 16;

/// `out[t * w.rows + r] = Σ_c w[r][c] * x[t * w.cols + c]` for `t < n`.
///
/// `x` holds `n` rows of `w.cols`; `out` `n` rows of `w.rows`.
pub fn matmul(w: &QMatrix<'_>, x: &[f32], n: usize, out: &mut [f32], scratch: &mut MatmulScratch) {
    debug_assert_eq!(x.len(), n * w.cols);
    debug_assert_eq!(out.len(), n * w.rows);
    // QMatrix::new proved both exist.
    let (Some(act_ty), Some(dot)) = (vec_dot_type(w.ty), dot_fn(w.ty)) else {
        return;
    };
    let act_row = act_ty.row_bytes(w.cols as u64).unwrap_or(0) as usize;
    if scratch.act.len() < n * act_row {
        scratch.act.resize(n * act_row, 0);
    }
    let act = &mut scratch.act[..n * act_row];
    for (src, dst) in x.chunks_exact(w.cols).zip(act.chunks_exact_mut(act_row)) {
        // Lengths match by construction (act_row is row_bytes of cols).
        let _ = quantize_activations(act_ty, src, dst);
    }
    let act = &scratch.act[..n * act_row];

    if n == 1 {
        out.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, o)| rows_1(w, dot, act, i * ROWS_PER_TASK, o));
        return;
    }
    // Several activation rows: compute out transposed ([r][t]) so each task owns a
    // contiguous block, then transpose into place.
    if scratch.out_t.len() < n * w.rows {
        scratch.out_t.resize(n * w.rows, 0.0);
    }
    let out_t = &mut scratch.out_t[..n * w.rows];
    out_t
        .par_chunks_mut(ROWS_PER_TASK * n)
        .enumerate()
        .for_each(|(i, o)| {
            let r0 = i * ROWS_PER_TASK;
            for (j, orow) in o.chunks_exact_mut(n).enumerate() {
                let wr = w.row(r0 + j);
                for (t, v) in orow.iter_mut().enumerate() {
                    *v = dot(wr, &act[t * act_row..(t + 1) * act_row]);
                }
            }
        });
    for (r, col) in out_t.chunks_exact(n).enumerate() {
        for (t, &v) in col.iter().enumerate() {
            out[t * w.rows + r] = v;
        }
    }
}

#[inline]
fn rows_1(w: &QMatrix<'_>, dot: DotFn, act: &[u8], r0: usize, out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = dot(w.row(r0 + j), act);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize_row;

    #[test]
    fn matches_dequantized_reference() {
        let (rows, cols, n) = (37, 64, 3);
        let mut data = Vec::new();
        for r in 0..rows {
            let row: Vec<f32> = (0..cols)
                .map(|c| ((r * 7 + c * 3) % 11) as f32 - 5.0)
                .collect();
            let mut q = vec![0u8; 68];
            crate::quant::quantize_row_q8_0(&row, &mut q).unwrap();
            data.extend(q);
        }
        let w = QMatrix::new(GgmlType::Q8_0, rows, cols, &data).unwrap();
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i % 13) as f32 - 6.0) * 0.1)
            .collect();
        let mut out = vec![0.0; n * rows];
        let mut s = MatmulScratch::default();
        matmul(&w, &x, n, &mut out, &mut s);
        let mut single = vec![0.0; rows];
        for t in 0..n {
            matmul(&w, &x[t * cols..(t + 1) * cols], 1, &mut single, &mut s);
            assert_eq!(&out[t * rows..(t + 1) * rows], &single[..]);
            for r in 0..rows {
                let mut wr = vec![0.0; cols];
                dequantize_row(GgmlType::Q8_0, w.row(r), &mut wr).unwrap();
                let want: f32 = wr.iter().zip(&x[t * cols..]).map(|(a, b)| a * b).sum();
                assert!((out[t * rows + r] - want).abs() < 0.05, "{r} {t}");
            }
        }
        assert!(QMatrix::new(GgmlType::Q8_0, rows, cols, &data[1..]).is_err());
        assert!(QMatrix::new(GgmlType::Iq2Xxs, 1, 256, &[0; 66]).is_err());
    }
}
