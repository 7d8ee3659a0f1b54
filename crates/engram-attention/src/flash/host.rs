//! Memory-efficient attention on host buffers (flex, f32): the forward (output and per-row
//! logsumexp) and the FlashAttention-2 backward, tile by tile in cache-resident buffers.
//!
//! The composed path ([`super::kernel`]) runs each step of a tile (scale, masks, running
//! maximum, `exp`, sums, products) as a separate burn op over a freshly allocated `[b, h, bq,
//! bk]` tensor, so on flex most of its time is memory traffic. Here one task takes a block of
//! [`BQ`] queries of one head (forward) or one whole head (backward) and keeps a `BQ × BK` tile
//! of scores in L1/L2: the score product, the scale, the key padding, causal and window masks,
//! the running maximum, `exp` and the row sums are one pass over the tile in the forward, and
//! `P`, `dP` and `P ⊙ (dP − D)` one pass in the backward; the products are register-blocked
//! AVX2/FMA loops ([`super::simd`]). Tasks run on rayon's pool: batch × heads × query blocks in
//! the forward, batch × heads in the backward (each head owns its rows of `dq`, `dk`, `dv`).
//! Tile sizes are this kernel's own: the `block_q`/`block_k` of [`FlashSpec`] size the
//! composed path's tensors, and a host tile is always small.
//!
//! Masked keys get `-inf` (not the composed path's finite `NEG`): a tile with no visible key
//! for a row is skipped for that row, so a query that sees no key ends with a zero row sum,
//! and gets a zero output, the logsumexp [`NEG`] and zero gradients, as on the composed path.
//!
//! Measured with `cargo bench -p engram-benches --bench engram -- 'attention/mha_fwd_bwd/engram'`
//! (quick profile, criterion's estimates of 10 samples, 2 threads on a 2-core EPYC with AVX2;
//! the machine was shared with a build, so the numbers move by ±20%): seq 128 full 63.8 ms
//! before, 44.3 ms after; seq 512 full 1.00 s before, 451 ms after; seq 512 causal 1.23 s
//! before, 333 ms after.

use rayon::prelude::*;

use super::kernel::{FlashSpec, NEG};
use super::simd::{Isa, Mat, exp_shifted, matmul};

/// Queries per tile.
const BQ: usize = 64;
/// Keys per tile.
const BK: usize = 64;

/// Sizes of a call: `[batch, heads, t, width]` tensors, as many key as query heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub heads: usize,
    pub tq: usize,
    pub tk: usize,
    /// Width of queries and keys.
    pub d: usize,
    /// Width of values.
    pub dv: usize,
}

/// The keys `[lo, hi)` that the causal and window masks let query row `i` see.
fn visible(spec: &FlashSpec, i: usize, tk: usize) -> (usize, usize) {
    let p = spec.query_offset + i;
    let hi = if spec.causal { (p + 1).min(tk) } else { tk };
    // Query p sees key j when j + w > p.
    let lo = spec.window.map_or(0, |w| (p + 1).saturating_sub(w)).min(hi);
    (lo, hi)
}

/// Per batch row, 0 at a live key and `-inf` at a padded one (`padding` non-zero).
fn key_bias(padding: &[u8], dims: &Dims) -> Vec<f32> {
    padding[..dims.batch * dims.tk]
        .iter()
        .map(|&p| if p != 0 { f32::NEG_INFINITY } else { 0.0 })
        .collect()
}

/// The scores of row `i` of a tile of keys `k0..k0 + row.len()`, in place: scaled, `-inf`
/// where masked. Returns false (and leaves the row unspecified) when no key is visible.
fn mask_row(
    row: &mut [f32],
    spec: &FlashSpec,
    scale: f32,
    bias: &[f32],
    i: usize,
    k0: usize,
) -> bool {
    let (lo, hi) = visible(spec, i, bias.len());
    let (a, z) = (lo.max(k0), hi.min(k0 + row.len()));
    if a >= z {
        return false;
    }
    row[..a - k0].fill(f32::NEG_INFINITY);
    row[z - k0..].fill(f32::NEG_INFINITY);
    let mut any = false;
    for (x, &b) in row[a - k0..z - k0].iter_mut().zip(&bias[a..z]) {
        *x = *x * scale + b;
        any |= b == 0.0;
    }
    any
}

/// `[lo, hi)` of `t` in tiles of `block` (the last one ragged).
fn tiles(lo: usize, hi: usize, block: usize) -> impl Iterator<Item = (usize, usize)> {
    (lo..hi).step_by(block).map(move |start| (start, (start + block).min(hi)))
}

/// The transpose of rows `k0..k1` of a row-major `[t, width]` matrix into `out` `[width, BK]`.
fn transpose_rows(x: &[f32], width: usize, (k0, k1): (usize, usize), out: &mut [f32]) {
    for (j, row) in x[k0 * width..k1 * width].chunks_exact(width).enumerate() {
        for (c, &value) in row.iter().enumerate() {
            out[c * BK + j] = value;
        }
    }
}

/// Forward: the output `[b, h, tq, dv]` and the logsumexp `[b, h, tq]` ([`NEG`] for a query that
/// sees no key, whose output is zero). `padding` is `[b, tk]`, non-zero at padded keys.
///
/// # Panics
/// If a buffer does not hold its shape, or a size is 0.
pub(crate) fn forward(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    padding: &[u8],
    dims: Dims,
    spec: &FlashSpec,
) -> (Vec<f32>, Vec<f32>) {
    let Dims { batch, heads, tq, tk, d, dv } = dims;
    check(&dims, q, k, v, padding);
    let bias = key_bias(padding, &dims);
    let scale = spec.scale as f32;
    let mut out = vec![0.0f32; batch * heads * tq * dv];
    let mut lse = vec![0.0f32; batch * heads * tq];
    out.par_chunks_mut(tq * dv).zip(lse.par_chunks_mut(tq)).enumerate().for_each(
        |(bh, (out, lse))| {
            let head = Head {
                q: &q[bh * tq * d..(bh + 1) * tq * d],
                k: &k[bh * tk * d..(bh + 1) * tk * d],
                v: &v[bh * tk * dv..(bh + 1) * tk * dv],
                bias: &bias[bh / heads * tk..(bh / heads + 1) * tk],
            };
            out.par_chunks_mut(BQ * dv).zip(lse.par_chunks_mut(BQ)).enumerate().for_each(
                |(block, (out, lse))| {
                    let i0 = block * BQ;
                    forward_block(isa, &dims, spec, scale, &head, (i0, i0 + lse.len()), out, lse);
                },
            );
        },
    );
    (out, lse)
}

/// One head's inputs.
struct Head<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    /// 0 or `-inf` per key.
    bias: &'a [f32],
}

fn check(dims: &Dims, q: &[f32], k: &[f32], v: &[f32], padding: &[u8]) {
    let Dims { batch, heads, tq, tk, d, dv } = *dims;
    assert!(
        batch * heads * tq * tk * d * dv > 0,
        "flash host kernel: empty sizes {dims:?} (the composed path takes those)"
    );
    assert!(
        q.len() >= batch * heads * tq * d
            && k.len() >= batch * heads * tk * d
            && v.len() >= batch * heads * tk * dv
            && padding.len() >= batch * tk,
        "flash host kernel: buffers of {}, {}, {} and {} values do not hold {dims:?}",
        q.len(),
        k.len(),
        v.len(),
        padding.len()
    );
}

/// Queries `i0..i1` of one head against every key they see.
#[allow(clippy::too_many_arguments)]
fn forward_block(
    isa: Isa,
    dims: &Dims,
    spec: &FlashSpec,
    scale: f32,
    head: &Head<'_>,
    (i0, i1): (usize, usize),
    out: &mut [f32],
    lse: &mut [f32],
) {
    let Dims { tk, d, dv, .. } = *dims;
    let bq = i1 - i0;
    let mut s = vec![0.0f32; BQ * BK];
    let mut kt = vec![0.0f32; d * BK];
    let mut m = [f32::NEG_INFINITY; BQ];
    let mut l = [0.0f32; BQ];
    // Keys seen by any query of the block: the masks' bounds grow with the query.
    let (lo, _) = visible(spec, i0, tk);
    let (_, hi) = visible(spec, i1 - 1, tk);
    for (k0, k1) in tiles(lo, hi, BK) {
        let bk = k1 - k0;
        // Columns past `bk` (up to a multiple of 8, for whole vectors) hold stale keys and are
        // never read.
        let n = bk.next_multiple_of(8).min(BK);
        transpose_rows(head.k, d, (k0, k1), &mut kt);
        matmul(isa, [bq, n, d], Mat::rows(&head.q[i0 * d..], d), &kt, BK, &mut s, BK, false);
        for r in 0..bq {
            let row = &mut s[r * BK..r * BK + bk];
            if !mask_row(row, spec, scale, head.bias, i0 + r, k0) {
                row.fill(0.0);
                continue;
            }
            let tile_max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let m_new = m[r].max(tile_max);
            let alpha = (m[r] - m_new).exp();
            let sum = exp_shifted(isa, row, m_new);
            l[r] = l[r] * alpha + sum;
            if alpha != 1.0 {
                out[r * dv..(r + 1) * dv].iter_mut().for_each(|x| *x *= alpha);
            }
            m[r] = m_new;
        }
        matmul(isa, [bq, dv, bk], Mat::rows(&s, BK), &head.v[k0 * dv..], dv, out, dv, true);
    }
    for r in 0..bq {
        let row = &mut out[r * dv..(r + 1) * dv];
        if l[r] > 0.0 {
            let inv = 1.0 / l[r];
            row.iter_mut().for_each(|x| *x *= inv);
            lse[r] = m[r] + l[r].ln();
        } else {
            row.fill(0.0);
            lse[r] = NEG as f32;
        }
    }
}

/// Gradients `[dq, dk, dv]` given the upstream gradient `grad` `[b, h, tq, dv]` and the
/// forward's `output` and `lse`; each tile's weights are recomputed from `lse`.
///
/// # Panics
/// If a buffer does not hold its shape, or a size is 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    padding: &[u8],
    output: &[f32],
    lse: &[f32],
    grad: &[f32],
    dims: Dims,
    spec: &FlashSpec,
) -> [Vec<f32>; 3] {
    let Dims { batch, heads, tq, tk, d, dv } = dims;
    check(&dims, q, k, v, padding);
    let rows = batch * heads * tq;
    assert!(
        output.len() >= rows * dv && grad.len() >= rows * dv && lse.len() >= rows,
        "flash host kernel: output {}, logsumexp {} and gradient {} values do not hold {dims:?}",
        output.len(),
        lse.len(),
        grad.len()
    );
    let bias = key_bias(padding, &dims);
    let scale = spec.scale as f32;
    let mut grad_q = vec![0.0f32; rows * d];
    let mut grad_k = vec![0.0f32; batch * heads * tk * d];
    let mut grad_v = vec![0.0f32; batch * heads * tk * dv];
    grad_q
        .par_chunks_mut(tq * d)
        .zip(grad_k.par_chunks_mut(tk * d))
        .zip(grad_v.par_chunks_mut(tk * dv))
        .enumerate()
        .for_each(|(bh, ((dq, dk), dvalue))| {
            let head = Head {
                q: &q[bh * tq * d..(bh + 1) * tq * d],
                k: &k[bh * tk * d..(bh + 1) * tk * d],
                v: &v[bh * tk * dv..(bh + 1) * tk * dv],
                bias: &bias[bh / heads * tk..(bh / heads + 1) * tk],
            };
            let rows = bh * tq..(bh + 1) * tq;
            let grads = HeadGrads {
                output: &output[rows.start * dv..rows.end * dv],
                lse: &lse[rows.clone()],
                grad: &grad[rows.start * dv..rows.end * dv],
            };
            backward_head(isa, &dims, spec, scale, &head, &grads, [dq, dk, dvalue]);
        });
    [grad_q, grad_k, grad_v]
}

/// One head's forward results and upstream gradient.
struct HeadGrads<'a> {
    output: &'a [f32],
    lse: &'a [f32],
    grad: &'a [f32],
}

/// One head's gradients: key tiles outer (their `dk`, `dv` rows are finished one tile at a
/// time), query tiles inner (adding into `dq`).
fn backward_head(
    isa: Isa,
    dims: &Dims,
    spec: &FlashSpec,
    scale: f32,
    head: &Head<'_>,
    grads: &HeadGrads<'_>,
    [dq, dk, dv_out]: [&mut [f32]; 3],
) {
    let Dims { tq, tk, d, dv, .. } = *dims;
    let dead = |i: usize| grads.lse[i] < (NEG / 2.0) as f32;
    // D_i = Σ_j P_ij dP_ij = rowsum(dO ⊙ O), the softmax backward's correction term.
    let delta: Vec<f32> = (0..tq)
        .map(|i| {
            let (o, g) = (&grads.output[i * dv..(i + 1) * dv], &grads.grad[i * dv..(i + 1) * dv]);
            if dead(i) { 0.0 } else { o.iter().zip(g).map(|(a, b)| a * b).sum() }
        })
        .collect();
    let mut kt = vec![0.0f32; d * BK];
    let mut vt = vec![0.0f32; dv * BK];
    let mut p = vec![0.0f32; BQ * BK];
    let mut dp = vec![0.0f32; BQ * BK];
    for (k0, k1) in tiles(0, tk, BK) {
        let bk = k1 - k0;
        let n = bk.next_multiple_of(8).min(BK);
        transpose_rows(head.k, d, (k0, k1), &mut kt);
        transpose_rows(head.v, dv, (k0, k1), &mut vt);
        for (i0, i1) in tiles(0, tq, BQ) {
            // Hidden tile: the masks' bounds grow with the query.
            if visible(spec, i1 - 1, tk).1 <= k0 || visible(spec, i0, tk).0 >= k1 {
                continue;
            }
            let bq = i1 - i0;
            matmul(isa, [bq, n, d], Mat::rows(&head.q[i0 * d..], d), &kt, BK, &mut p, BK, false);
            let g = &grads.grad[i0 * dv..];
            matmul(isa, [bq, n, dv], Mat::rows(g, dv), &vt, BK, &mut dp, BK, false);
            for r in 0..bq {
                let i = i0 + r;
                let row = &mut p[r * BK..r * BK + bk];
                let ds = &mut dp[r * BK..r * BK + bk];
                if dead(i) || !mask_row(row, spec, scale, head.bias, i, k0) {
                    row.fill(0.0);
                    ds.fill(0.0);
                    continue;
                }
                exp_shifted(isa, row, grads.lse[i]);
                for (ds, &p) in ds.iter_mut().zip(row.iter()) {
                    *ds = p * (*ds - delta[i]) * scale;
                }
            }
            let dv_rows = &mut dv_out[k0 * dv..];
            matmul(isa, [bk, dv, bq], Mat::cols(&p, BK), g, dv, dv_rows, dv, true);
            let q_rows = &head.q[i0 * d..];
            matmul(isa, [bk, d, bq], Mat::cols(&dp, BK), q_rows, d, &mut dk[k0 * d..], d, true);
            let k_rows = &head.k[k0 * d..];
            matmul(isa, [bq, d, bk], Mat::rows(&dp, BK), k_rows, d, &mut dq[i0 * d..], d, true);
        }
    }
}
