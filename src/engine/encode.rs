//! The encoder pass (BERT family): whole inputs in, one pooled vector per input out.
//!
//! Every input of a call goes through each layer together (one matrix product for all
//! their tokens), and each token attends to every token of its own input. Keys and values
//! live only for the call, in f16 as in the decoders' cache (the attention kernel reads
//! them so); there is no cache afterwards. A token's result depends only on its own input:
//! an input embeds the same alone or beside others.

use half::f16;

use crate::model::{EncoderFfn, LayerNorm, Model, Pooling};
use crate::ops::act::{gelu, swiglu};
use crate::ops::attention::{attention, AttnShape, TokenKv};
use crate::ops::norm::layernorm_in_place;
use crate::ops::rope::Rope;
use crate::ops::{matmul, matmul_many, MatmulScratch};
use crate::quant::dequantize_row;

use super::forward::{add_bias, by_rows};

/// Buffers grown to the largest call seen (`n` tokens in all).
#[derive(Default)]
pub(super) struct EncodeScratch {
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    kh: Vec<f16>,
    vh: Vec<f16>,
    att: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    rope: Vec<f32>,
    pos_row: Vec<f32>,
    mm: MatmulScratch,
}

fn grow<T: Clone + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

/// `x = LN(x + o)` row by row.
fn add_norm(x: &mut [f32], o: &[f32], n: &LayerNorm, eps: f32) {
    let d = n.w.len();
    by_rows(x, d, &|r0, xs| {
        xs.iter_mut().zip(&o[r0 * d..]).for_each(|(a, b)| *a += b);
        layernorm_in_place(xs, &n.w, &n.b, eps);
    });
}

/// Embeds `inputs` (token ids, checked by the caller against the vocabulary and the
/// trained context), writing input i's pooled, unnormalised vector to `out[i]`.
pub(super) fn encode(
    model: &Model,
    s: &mut EncodeScratch,
    inputs: &[&[u32]],
    out: &mut [Vec<f32>],
) {
    let Some(enc) = model.encoder.as_ref() else {
        return;
    };
    let c = &model.config;
    let (d, ff, hd) = (c.n_embd, c.n_ff, c.head_dim);
    let n: usize = inputs.iter().map(|t| t.len()).sum();
    // Where each token's input starts and ends (token rows are the inputs, in order).
    let mut bounds = Vec::with_capacity(inputs.len());
    let mut at = 0;
    for t in inputs {
        bounds.push((at, at + t.len()));
        at += t.len();
    }
    let input_of = |tok: usize| bounds.partition_point(|&(_, end)| end <= tok);

    for (buf, len) in [
        (&mut s.x, n * d),
        (&mut s.xb, n * d),
        (&mut s.q, n * d),
        (&mut s.k, n * d),
        (&mut s.v, n * d),
        (&mut s.att, n * d),
        (&mut s.gate, n * ff),
        (&mut s.up, n * ff),
        (&mut s.rope, n * hd),
        (&mut s.pos_row, d),
    ] {
        grow(buf, len);
    }
    grow(&mut s.kh, n * d);
    grow(&mut s.vh, n * d);

    // Embeddings: token + type row 0 (+ learned position), then LayerNorm.
    let rope = Rope::new(c.n_rot, true, c.rope_base, c.rope_scale, None);
    let rl = rope.table_len();
    let x = &mut s.x[..n * d];
    let mut row = 0;
    for ids in inputs {
        for (p, &id) in ids.iter().enumerate() {
            let xr = &mut x[row * d..(row + 1) * d];
            model.embed(id, xr);
            if let Some(t) = &enc.type_row {
                xr.iter_mut().zip(t).for_each(|(a, b)| *a += b);
            }
            if let Some(pe) = &enc.pos_embd {
                let m = model.matrix(pe);
                // Positions are below the table's rows (checked by the caller).
                let _ = dequantize_row(m.ty, m.row(p), &mut s.pos_row[..d]);
                xr.iter_mut().zip(&s.pos_row).for_each(|(a, b)| *a += b);
            }
            if enc.rope {
                rope.table(p, &mut s.rope[row * rl..(row + 1) * rl]);
            }
            row += 1;
        }
    }
    by_rows(x, d, &|_, xs| {
        layernorm_in_place(xs, &enc.embd_norm.w, &enc.embd_norm.b, enc.norm_eps)
    });

    let shape = AttnShape {
        n_head: c.n_head,
        n_kv_head: c.n_head_kv,
        head_dim: hd,
        scale: 1.0 / (hd as f32).sqrt(),
        softcap: None,
        window: None,
    };
    let kvd = c.kv_dim();
    for layer in &enc.layers {
        let (q, k, v) = (&mut s.q[..n * d], &mut s.k[..n * kvd], &mut s.v[..n * kvd]);
        matmul_many(
            &[
                model.matrix(&layer.wq),
                model.matrix(&layer.wk),
                model.matrix(&layer.wv),
            ],
            &s.x[..n * d],
            n,
            &mut [&mut q[..], &mut k[..], &mut v[..]],
            &mut s.mm,
        );
        let table = &s.rope;
        let qk = |rows: &mut [f32], width: usize, r0: usize, bias: Option<&Vec<f32>>| {
            add_bias(rows, bias);
            if enc.rope {
                for (i, row) in rows.chunks_exact_mut(width).enumerate() {
                    let t = r0 + i;
                    rope.apply(row, hd, &table[t * rl..(t + 1) * rl]);
                }
            }
        };
        by_rows(q, d, &|r0, rows| qk(rows, d, r0, layer.bq.as_ref()));
        by_rows(k, kvd, &|r0, rows| qk(rows, kvd, r0, layer.bk.as_ref()));
        add_bias(v, layer.bv.as_ref());
        for (h, f) in s.kh.iter_mut().zip(k.iter()) {
            *h = f16::from_f32(*f);
        }
        for (h, f) in s.vh.iter_mut().zip(v.iter()) {
            *h = f16::from_f32(*f);
        }

        // Every token sees its whole input: the input's keys, with the query placed at
        // its last position.
        let (kh, vh) = (&s.kh, &s.vh);
        attention(&shape, q, &mut s.att[..n * d], |t| {
            let (start, end) = bounds[input_of(t)];
            TokenKv {
                k: &kh[start * kvd..end * kvd],
                v: &vh[start * kvd..end * kvd],
                pos: end - start - 1,
            }
        });
        let o = &mut s.xb[..n * d];
        matmul(&model.matrix(&layer.wo), &s.att[..n * d], n, o, &mut s.mm);
        add_bias(o, layer.bo.as_ref());
        add_norm(&mut s.x[..n * d], o, &layer.attn_norm, enc.norm_eps);

        let o = &mut s.xb[..n * d];
        match &layer.ffn {
            EncoderFfn::SwiGlu { gate, up, down } => {
                let (g, u) = (&mut s.gate[..n * ff], &mut s.up[..n * ff]);
                matmul_many(
                    &[model.matrix(gate), model.matrix(up)],
                    &s.x[..n * d],
                    n,
                    &mut [&mut g[..], &mut u[..]],
                    &mut s.mm,
                );
                swiglu(g, u);
                matmul(&model.matrix(down), g, n, o, &mut s.mm);
            }
            EncoderFfn::Gelu {
                up,
                up_b,
                down,
                down_b,
            } => {
                let u = &mut s.up[..n * ff];
                matmul(&model.matrix(up), &s.x[..n * d], n, u, &mut s.mm);
                add_bias(u, up_b.as_ref());
                gelu(u);
                matmul(&model.matrix(down), u, n, o, &mut s.mm);
                add_bias(o, down_b.as_ref());
            }
        }
        add_norm(&mut s.x[..n * d], o, &layer.out_norm, enc.norm_eps);
    }

    let x = &s.x[..n * d];
    for (&(start, end), o) in bounds.iter().zip(out.iter_mut()) {
        o.clear();
        o.resize(d, 0.0);
        let rows = &x[start * d..end * d];
        match enc.pooling {
            Pooling::Mean => {
                // Summed in f64 per feature, then divided: the order does not matter.
                for (j, v) in o.iter_mut().enumerate() {
                    let s: f64 = rows.chunks_exact(d).map(|r| r[j] as f64).sum();
                    *v = (s / (end - start) as f64) as f32;
                }
            }
            Pooling::Cls => o.copy_from_slice(&rows[..d]),
            Pooling::Last | Pooling::None => o.copy_from_slice(&rows[rows.len() - d..]),
        }
    }
}
