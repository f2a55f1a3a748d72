//! Quantized matrix products: `out[t][r] = W[r] · x[t]` for a weight matrix in any
//! supported ggml format and a batch of f32 activation rows.
//!
//! Shape: the activations are quantized once per call to the weight type's partner
//! format (as llama.cpp does, so results agree with the peer). Then:
//! - one token (decode): output rows are split across threads, each row one dot product
//!   streamed from DRAM;
//! - a few tokens (batched decode): output rows are split across threads and each task
//!   runs the tile kernel ([`gemm_fn`]) over every token, into a `[row][token]` buffer
//!   transposed back at the end;
//! - a prompt: tokens are split across threads and each task runs the tile kernel over
//!   the whole matrix, writing its own `[token][row]` output.
//!
//! All three give every token the bits it would get alone.

use crate::quant::dot::{dot_fn, gemm_fn, quantize_activations, vec_dot_type, DotFn, GemmFn};
use crate::quant::GgmlType;

use super::pool::Pool;

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

/// Activation rows from which a product is split by tokens rather than by weight rows.
const PROMPT_ROWS: usize = 64;

/// Most matrices one [`matmul_many`] call takes.
pub const MAX_FUSED: usize = 4;

/// Output rows per parallel task: enough tasks for load balance, few enough that each
/// amortises its atomic hand-out. One token streams the weights from DRAM, where longer
/// contiguous runs per task measured faster (4 tasks per thread: SmolLM2 decode +5-10%
/// over 8, also with a busy process on the other core); a batch is compute-bound and
/// keeps 8 per thread.
fn rows_per_task(rows: usize, threads: usize, n: usize) -> usize {
    let (per_thread, max) = if n == 1 { (4, 512) } else { (8, 256) };
    (rows / (threads * per_thread))
        .clamp(16, max)
        .next_multiple_of(4)
}

/// `out[t * w.rows + r] = Σ_c w[r][c] * x[t * w.cols + c]` for `t < n`.
///
/// `x` holds `n` rows of `w.cols`; `out` `n` rows of `w.rows`.
pub fn matmul(w: &QMatrix<'_>, x: &[f32], n: usize, out: &mut [f32], scratch: &mut MatmulScratch) {
    matmul_many(&[*w], x, n, &mut [out], scratch);
}

/// Several products of the same input (Q, K and V; gate and up) in one parallel loop:
/// the activations are quantized once per format and the threads are woken once.
pub fn matmul_many(
    ws: &[QMatrix<'_>],
    x: &[f32],
    n: usize,
    outs: &mut [&mut [f32]],
    scratch: &mut MatmulScratch,
) {
    assert!(ws.len() <= MAX_FUSED && ws.len() == outs.len());
    let cols = ws[0].cols;
    debug_assert_eq!(x.len(), n * cols);
    // Quantize the input once per activation format; `act_at[b]` is matrix b's copy.
    let mut kernels: [Option<DotFn>; MAX_FUSED] = [None; MAX_FUSED];
    let mut gemms: [Option<GemmFn>; MAX_FUSED] = [None; MAX_FUSED];
    let mut act_at = [0usize; MAX_FUSED];
    let mut act_row = [0usize; MAX_FUSED];
    let mut done: [(Option<GgmlType>, usize); MAX_FUSED] = [(None, 0); MAX_FUSED];
    let mut used = 0;
    for (b, w) in ws.iter().enumerate() {
        debug_assert_eq!(w.cols, cols);
        // QMatrix::new proved both exist.
        let (Some(act), Some(dot)) = (vec_dot_type(w.ty), dot_fn(w.ty)) else {
            return;
        };
        kernels[b] = Some(dot);
        // Tile kernels for several activation rows. One row streaming from DRAM is
        // bandwidth-bound, and the single-row kernels read each weight row exactly once.
        gemms[b] = if n > 1 { gemm_fn(w.ty) } else { None };
        act_row[b] = act.row_bytes(cols as u64).unwrap_or(0) as usize;
        if let Some(&(_, at)) = done.iter().find(|d| d.0 == Some(act)) {
            act_at[b] = at;
            continue;
        }
        let size = n * act_row[b];
        if scratch.act.len() < used + size {
            scratch.act.resize(used + size, 0);
        }
        let dst = &mut scratch.act[used..used + size];
        if n >= 16 {
            // A prompt's worth of rows: quantize in parallel, 8 rows a task.
            let ar = act_row[b];
            Pool::global().for_each_chunk_mut(&mut [dst], &[8 * ar], &|_, c, part| {
                for (k, d) in part.chunks_exact_mut(ar).enumerate() {
                    let t = c * 8 + k;
                    // Lengths match by construction (act_row is row_bytes of cols).
                    let _ = quantize_activations(act, &x[t * cols..(t + 1) * cols], d);
                }
            });
        } else {
            for (src, dst) in x.chunks_exact(cols).zip(dst.chunks_exact_mut(act_row[b])) {
                let _ = quantize_activations(act, src, dst);
            }
        }
        done[b] = (Some(act), used);
        act_at[b] = used;
        used += size;
    }
    let act = &scratch.act[..used];
    let pool = Pool::global();
    let mut chunk = [0usize; MAX_FUSED];
    for (b, w) in ws.iter().enumerate() {
        chunk[b] = rows_per_task(w.rows, pool.threads(), n);
    }
    let nb = ws.len();

    if n == 1 {
        pool.for_each_chunk_mut(outs, &chunk[..nb], &|b, c, part| {
            let Some(dot) = kernels[b] else {
                return;
            };
            let a = &act[act_at[b]..act_at[b] + act_row[b]];
            let w = &ws[b];
            let r0 = c * chunk[b];
            for (j, o) in part.iter_mut().enumerate() {
                *o = dot(w.row(r0 + j), a);
            }
        });
        return;
    }
    if n >= PROMPT_ROWS && gemms[..nb].iter().all(Option::is_some) {
        // A prompt: each task takes a run of tokens through the whole matrix (its weights
        // stay in L3 and each row group is unpacked once per run) and writes its own
        // output rows, so nothing needs transposing.
        let run = (n / (pool.threads() * 4)).max(16);
        let mut tchunk = [0usize; MAX_FUSED];
        for (b, w) in ws.iter().enumerate() {
            tchunk[b] = run * w.rows;
        }
        pool.for_each_chunk_mut(outs, &tchunk[..nb], &|b, c, part| {
            let Some(gemm) = gemms[b] else {
                return;
            };
            let w = &ws[b];
            let (ar, base) = (act_row[b], act_at[b]);
            let t0 = c * run;
            let tn = part.len() / w.rows;
            let x = &act[base + t0 * ar..base + (t0 + tn) * ar];
            gemm(w.data, w.rows, x, tn, part, (1, w.rows));
        });
        return;
    }
    // A few activation rows (batched decode): each task computes its rows for every token
    // while the weight rows are in cache, into a transposed buffer ([r][t]) it owns
    // contiguously.
    let total: usize = ws.iter().map(|w| w.rows * n).sum();
    if scratch.out_t.len() < total {
        scratch.out_t.resize(total, 0.0);
    }
    let mut rest = &mut scratch.out_t[..total];
    let mut parts: [&mut [f32]; MAX_FUSED] = Default::default();
    for (b, w) in ws.iter().enumerate() {
        let (head, tail) = rest.split_at_mut(w.rows * n);
        parts[b] = head;
        rest = tail;
    }
    let mut tchunk = [0usize; MAX_FUSED];
    for b in 0..nb {
        tchunk[b] = chunk[b] * n;
    }
    pool.for_each_chunk_mut(&mut parts[..nb], &tchunk[..nb], &|b, c, part| {
        let Some(dot) = kernels[b] else {
            return;
        };
        let w = &ws[b];
        let r0 = c * chunk[b];
        let ar = act_row[b];
        let base = act_at[b];
        let n_rows = part.len() / n;
        if let Some(gemm) = gemms[b] {
            let rb = w.row_bytes();
            gemm(
                &w.data[r0 * rb..(r0 + n_rows) * rb],
                n_rows,
                &act[base..base + n * ar],
                n,
                part,
                (n, 1),
            );
            return;
        }
        // No tile kernel (scalar kernels, float weights): each weight row (in cache)
        // against every token.
        let a = |t: usize| &act[base + t * ar..base + (t + 1) * ar];
        for j in 0..n_rows {
            let wr = w.row(r0 + j);
            for t in 0..n {
                part[j * n + t] = dot(wr, a(t));
            }
        }
    });
    // Back to [t][r], in parallel: each task owns TOKENS consecutive output rows and
    // reads, per weight row, that many consecutive values of the transposed buffer.
    const TOKENS: usize = 8;
    let parts = &parts;
    let mut tchunk = [0usize; MAX_FUSED];
    for (b, w) in ws.iter().enumerate() {
        tchunk[b] = TOKENS * w.rows;
    }
    pool.for_each_chunk_mut(outs, &tchunk[..nb], &|b, c, dst| {
        let rows = ws[b].rows;
        let t0 = c * TOKENS;
        let tn = dst.len() / rows;
        for (r, col) in parts[b].chunks_exact(n).enumerate() {
            for (k, &v) in col[t0..t0 + tn].iter().enumerate() {
                dst[k * rows + r] = v;
            }
        }
    });
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

        // Every path (one token, a few, a prompt split by tokens) gives each token the
        // same bits as computing it alone.
        for n in [2, 5, PROMPT_ROWS, PROMPT_ROWS + 9] {
            let x: Vec<f32> = (0..n * cols)
                .map(|i| ((i * 7 % 29) as f32 - 14.0) * 0.07)
                .collect();
            let mut out = vec![0.0; n * rows];
            matmul(&w, &x, n, &mut out, &mut s);
            for t in 0..n {
                matmul(&w, &x[t * cols..(t + 1) * cols], 1, &mut single, &mut s);
                assert_eq!(
                    &out[t * rows..(t + 1) * rows],
                    &single[..],
                    "n {n} token {t}"
                );
            }
        }
        assert!(QMatrix::new(GgmlType::Iq2Xxs, 1, 256, &[0; 66]).is_err());
    }
}
