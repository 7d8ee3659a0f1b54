//! The blocked forward and backward of memory-efficient attention on a backend's primitives:
//! online softmax over key blocks (Milakov & Gimelshein, 2018; Rabe & Staats, 2021) and the
//! FlashAttention-2 backward (Dao, 2023), which recomputes each block's weights from the saved
//! per-row logsumexp instead of storing them.
//!
//! Written against `B: Backend` so that it runs unchanged on every backend the extension lists,
//! and inside the autodiff backward step, where only primitives exist.

use burn::backend::Backend;
use burn::backend::TensorMetadata;
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::tensor::{BoolDType, Shape, Slice, TensorData};
use engram_tensor::DropMask;

/// Score given to masked keys: finite, so that a row whose keys are all masked so far keeps a
/// finite running maximum, and so small that `exp(NEG - m) = 0` for any real score `m`.
pub(crate) const NEG: f64 = -1e30;

/// What a blocked attention call computes besides its tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlashSpec {
    /// Factor applied to `q·k`.
    pub scale: f64,
    /// Causal order: query `i` (at position `query_offset + i`) sees keys `<= query_offset + i`.
    pub causal: bool,
    /// Sliding window: query at `p` sees keys `> p - window`.
    pub window: Option<usize>,
    /// Position of the first query (keys start at 0).
    pub query_offset: usize,
    /// Queries per block.
    pub block_q: usize,
    /// Keys per block.
    pub block_k: usize,
    /// Dropout on the weights: element `(b, h, i, j)` of the `[b, h, tq, tk]` weights is
    /// multiplied by the mask's element at that flat index, as [`engram_tensor::dropout_with`]
    /// would on the whole weights tensor; the mask is regenerated in the backward pass.
    pub dropout: Option<DropMask>,
}

/// How a tile of queries × keys relates to the causal and window masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tile {
    /// No key of the tile is visible to any of its queries: skipped.
    Hidden,
    /// Every key is visible to every query: no order mask.
    Visible,
    /// Some keys are masked for some queries.
    Partial,
}

impl FlashSpec {
    fn tile(&self, q: (usize, usize), k: (usize, usize)) -> Tile {
        // Positions of the first and last query and key of the tile.
        let (q0, q1) = (self.query_offset + q.0, self.query_offset + q.1 - 1);
        let (k0, k1) = (k.0, k.1 - 1);
        let mut tile = Tile::Visible;
        if self.causal {
            if k0 > q1 {
                return Tile::Hidden;
            }
            if k1 > q0 {
                tile = Tile::Partial;
            }
        }
        if let Some(w) = self.window {
            // Query p sees key j when j + w > p.
            if k1 + w <= q0 {
                return Tile::Hidden;
            }
            if k0 + w <= q1 {
                tile = Tile::Partial;
            }
        }
        tile
    }

    /// `[1, 1, bq, bk]`, `true` where the order masks hide a key from a query.
    fn order_mask<B: Backend>(
        &self,
        q: (usize, usize),
        k: (usize, usize),
        device: &B::Device,
    ) -> BoolTensor<B> {
        let mut hidden = Vec::with_capacity((q.1 - q.0) * (k.1 - k.0));
        for i in q.0..q.1 {
            let p = self.query_offset + i;
            for j in k.0..k.1 {
                let future = self.causal && j > p;
                let old = self.window.is_some_and(|w| j + w <= p);
                hidden.push(future || old);
            }
        }
        let data = TensorData::new(hidden, [1, 1, q.1 - q.0, k.1 - k.0]);
        B::bool_from_data(data, device)
    }
}

/// The dropout mask's values for the tile of queries `q` × keys `k`, `[b, h, bq, bk]` in
/// `like`'s dtype, or `None` without dropout.
fn drop_tile<B: Backend>(
    spec: &FlashSpec,
    like: &FloatTensor<B>,
    tq: usize,
    tk: usize,
    q: (usize, usize),
    k: (usize, usize),
) -> Option<FloatTensor<B>> {
    let mask = spec.dropout?;
    let [b, h, _, _] = like.shape().dims();
    let (bq, bk) = (q.1 - q.0, k.1 - k.0);
    let mut values = vec![1.0f32; b * h * bq * bk];
    for (r, row) in values.chunks_exact_mut(bk).enumerate() {
        let (bh, i) = (r / bq, q.0 + r % bq);
        mask.apply((bh * tq + i) * tk + k.0, row);
    }
    let tile = B::float_from_data(TensorData::new(values, [b, h, bq, bk]), &like.device());
    Some(B::float_cast(tile, like.dtype().into()))
}

/// `p ⊙ mask` where there is a mask.
fn dropped<B: Backend>(p: FloatTensor<B>, mask: &Option<FloatTensor<B>>) -> FloatTensor<B> {
    match mask {
        Some(mask) => B::float_mul(p, mask.clone()),
        None => p,
    }
}

/// Block boundaries `(start, end)` covering `0..n`.
fn blocks(n: usize, block: usize) -> Vec<(usize, usize)> {
    (0..n.div_ceil(block)).map(|i| (i * block, ((i + 1) * block).min(n))).collect()
}

/// `x[:, :, range, :]`.
fn rows<B: Backend>(x: &FloatTensor<B>, (start, end): (usize, usize)) -> FloatTensor<B> {
    let full = Slice::new(0, None, 1);
    let range = Slice::new(start as isize, Some(end as isize), 1);
    B::float_slice(x.clone(), &[full, full, range, full])
}

/// The scores of one tile, `[b, h, bq, bk]`, masked keys at about [`NEG`].
fn scores<B: Backend>(
    qi: &FloatTensor<B>,
    kj: &FloatTensor<B>,
    padding: &BoolTensor<B>,
    spec: &FlashSpec,
    tile: Tile,
    q: (usize, usize),
    k: (usize, usize),
) -> FloatTensor<B> {
    let s = B::float_matmul(qi.clone(), B::float_swap_dims(kj.clone(), 2, 3));
    let s = B::float_mul_scalar(s, spec.scale.into());
    let shape = s.shape();
    let s = if tile == Tile::Partial {
        let mask = spec.order_mask::<B>(q, k, &s.device());
        B::float_mask_fill(s, B::bool_expand(mask, shape.clone()), NEG.into())
    } else {
        s
    };
    // `padding` is `[b, 1, 1, tk]`, `true` at padded keys.
    let full = Slice::new(0, None, 1);
    let range = Slice::new(k.0 as isize, Some(k.1 as isize), 1);
    let pad = B::bool_slice(padding.clone(), &[full, full, full, range]);
    B::float_mask_fill(s, B::bool_expand(pad, shape), NEG.into())
}

/// Forward: the output `[b, h, tq, dv]` and the per-row logsumexp of the scaled, masked scores
/// `[b, h, tq, 1]` (about [`NEG`] for a query that sees no key, whose output is zero).
///
/// `padding` is `[b, 1, 1, tk]`, `true` at padded keys.
pub(crate) fn forward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    padding: BoolTensor<B>,
    spec: &FlashSpec,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let [b, h, tq, _] = q.shape().dims();
    let [_, _, tk, dv] = v.shape().dims();
    // The running sums take the undropped weights: dropout applies after the softmax.
    let (device, dtype) = (q.device(), q.dtype().into());
    let bool_dtype = BoolDType::from(padding.dtype());
    let key_blocks = blocks(tk, spec.block_k);
    let mut outputs = Vec::new();
    let mut lses = Vec::new();
    for qb in blocks(tq, spec.block_q) {
        let bq = qb.1 - qb.0;
        let qi = rows::<B>(&q, qb);
        let mut m = B::float_full(Shape::new([b, h, bq, 1]), NEG.into(), &device, dtype);
        let mut l = B::float_zeros(Shape::new([b, h, bq, 1]), &device, dtype);
        let mut acc = B::float_zeros(Shape::new([b, h, bq, dv]), &device, dtype);
        for &kb in &key_blocks {
            let tile = spec.tile(qb, kb);
            if tile == Tile::Hidden {
                continue;
            }
            let s = scores::<B>(&qi, &rows::<B>(&k, kb), &padding, spec, tile, qb, kb);
            let row_max = B::float_max_dim(s.clone(), 3);
            let keep = B::float_greater(m.clone(), row_max.clone(), bool_dtype);
            let m_new = B::float_mask_where(row_max, keep, m.clone());
            let p = B::float_exp(B::float_sub(s, m_new.clone()));
            let alpha = B::float_exp(B::float_sub(m, m_new.clone()));
            l = B::float_add(B::float_mul(l, alpha.clone()), B::float_sum_dim(p.clone(), 3));
            let p = dropped::<B>(p, &drop_tile::<B>(spec, &qi, tq, tk, qb, kb));
            acc = B::float_add(B::float_mul(acc, alpha), B::float_matmul(p, rows::<B>(&v, kb)));
            m = m_new;
        }
        // A live row has l >= 1 (its maximum contributes exp(0)); a dead row (every key
        // masked) accumulated weights of masked keys, or nothing, and is zeroed.
        let dead = B::float_lower_elem(m.clone(), (NEG / 2.0).into(), bool_dtype);
        let l = B::float_clamp_min(l, 1e-30.into());
        let out = B::float_div(acc, l.clone());
        let out =
            B::float_mask_fill(out, B::bool_expand(dead, Shape::new([b, h, bq, dv])), 0.0.into());
        outputs.push(out);
        lses.push(B::float_add(m, B::float_log(l)));
    }
    (B::float_cat(outputs, 2), B::float_cat(lses, 2))
}

/// Gradients of the output with respect to `q`, `k` and `v`, given the upstream gradient `grad`
/// and the forward's output and logsumexp; each tile's weights are recomputed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    padding: BoolTensor<B>,
    output: FloatTensor<B>,
    lse: FloatTensor<B>,
    grad: FloatTensor<B>,
    spec: &FlashSpec,
) -> [FloatTensor<B>; 3] {
    let bool_dtype = BoolDType::from(padding.dtype());
    let grad_shape = grad.shape();
    // Dead queries pass no gradient: their output is a constant zero.
    let dead = B::float_lower_elem(lse.clone(), (NEG / 2.0).into(), bool_dtype);
    let grad = B::float_mask_fill(grad, B::bool_expand(dead, grad_shape), 0.0.into());
    // D_i = Σ_j P_ij dP_ij = rowsum(dO ⊙ O), the softmax backward's correction term.
    let delta = B::float_sum_dim(B::float_mul(grad.clone(), output), 3);
    let [_, _, tq, _] = q.shape().dims();
    let [_, _, tk, _] = k.shape().dims();
    let query_blocks = blocks(tq, spec.block_q);
    let mut grad_q: Vec<Option<FloatTensor<B>>> = vec![None; query_blocks.len()];
    let mut grad_k = Vec::new();
    let mut grad_v = Vec::new();
    let accumulate = |sum: Option<FloatTensor<B>>, x: FloatTensor<B>| match sum {
        Some(sum) => B::float_add(sum, x),
        None => x,
    };
    for kb in blocks(tk, spec.block_k) {
        let (kj, vj) = (rows::<B>(&k, kb), rows::<B>(&v, kb));
        let (mut dk, mut dv) = (None, None);
        for (i, &qb) in query_blocks.iter().enumerate() {
            let tile = spec.tile(qb, kb);
            if tile == Tile::Hidden {
                continue;
            }
            let qi = rows::<B>(&q, qb);
            let doi = rows::<B>(&grad, qb);
            let s = scores::<B>(&qi, &kj, &padding, spec, tile, qb, kb);
            let p = B::float_exp(B::float_sub(s, rows::<B>(&lse, qb)));
            // With dropout the output is (P ⊙ M) V: dV takes the dropped weights, and the
            // weights' gradient is the mask times that of the dropped ones. D stays rowsum(dO ⊙
            // O), since Σ_j P_ij M_ij dZ_ij = dO_i · O_i.
            let mask = drop_tile::<B>(spec, &qi, tq, tk, qb, kb);
            let pt = B::float_swap_dims(dropped::<B>(p.clone(), &mask), 2, 3);
            dv = Some(accumulate(dv, B::float_matmul(pt, doi.clone())));
            let dp = B::float_matmul(doi, B::float_swap_dims(vj.clone(), 2, 3));
            let dp = dropped::<B>(dp, &mask);
            let ds = B::float_mul(p, B::float_sub(dp, rows::<B>(&delta, qb)));
            let ds = B::float_mul_scalar(ds, spec.scale.into());
            let dq = B::float_matmul(ds.clone(), kj.clone());
            grad_q[i] = Some(accumulate(grad_q[i].take(), dq));
            dk = Some(accumulate(dk, B::float_matmul(B::float_swap_dims(ds, 2, 3), qi)));
        }
        grad_k.push(
            dk.unwrap_or_else(|| B::float_zeros(kj.shape(), &kj.device(), kj.dtype().into())),
        );
        grad_v.push(
            dv.unwrap_or_else(|| B::float_zeros(vj.shape(), &vj.device(), vj.dtype().into())),
        );
    }
    let grad_q = grad_q
        .into_iter()
        .zip(&query_blocks)
        .map(|(dq, &qb)| {
            dq.unwrap_or_else(|| {
                let qi = rows::<B>(&q, qb);
                B::float_zeros(qi.shape(), &qi.device(), qi.dtype().into())
            })
        })
        .collect();
    [B::float_cat(grad_q, 2), B::float_cat(grad_k, 2), B::float_cat(grad_v, 2)]
}
