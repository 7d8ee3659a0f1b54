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
//! Inputs are read through their strides (unit stride along the width), so the head-split
//! views of multi-head attention are not copied; the output and the gradients are written
//! token-major where the matching input is (see [`Scatter`]), so that merging heads is a view.
//!
//! Measured (2026-11-29) with `cargo bench -p engram-benches --bench engram --
//! 'attention/mha_fwd_bwd/engram/.*/s(128|512)_'`, quick profile, the binaries before and after
//! this kernel run back to back three times on the 2-core EPYC (AVX2, 2 threads) while other
//! builds ran (load 4 falling to 1); medians of criterion's three estimates, tokens/s:
//!
//! | `attention/mha_fwd_bwd/engram/flex/` | before | after |
//! |---|---|---|
//! | `s128_full` | 14.0k | 20.4k |
//! | `s128_causal` | 12.0k | 21.3k |
//! | `s512_full` | 3.99k | 13.5k |
//! | `s512_causal` | 3.83k | 16.4k |
//!
//! The best run after was 16.1k at `s512_full` (PyTorch's sdpa: 23.8k on a quiet machine). At
//! seq 512 the tile products run at about three quarters of the FMA units' peak, and the
//! kernel is about 40% of the step; the rest is the projections (flex's gemm) and the copies
//! that split the fused projection into heads. `attention/mha_fwd` (plain device: burn's fused
//! attention, not this path) measured the same before and after. Attention dropout runs here
//! too since (the mask regenerated per tile from its seed, see [`FlashSpec::dropout`]), which
//! took `tasks/classifier_step` off the explicit path: ~0.85 s → ~0.65 s per step.

use rayon::prelude::*;

use super::kernel::{FlashSpec, NEG};
use super::simd::{self, Isa, Mat, exp_shifted, matmul};

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

/// A `[batch, heads, t, width]` tensor in memory, unit stride along `width`: element
/// `(b, h, i, c)` is `data[b * strides[0] + h * strides[1] + i * strides[2] + c]`. flex's
/// attention inputs are often views (heads split off `[batch, t, heads * width]`), read in place.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided<'a> {
    pub data: &'a [f32],
    pub strides: [usize; 3],
}

impl<'a> Strided<'a> {
    /// A row-major `[batch, heads, t, width]` buffer.
    #[cfg(test)]
    pub(crate) fn contiguous(data: &'a [f32], [heads, t, width]: [usize; 3]) -> Self {
        Strided { data, strides: [heads * t * width, t * width, width] }
    }

    /// Whether the tensor is `[batch, t, heads, width]` in memory (see [`Scatter`]).
    pub(crate) fn token_major(&self, [heads, t, width]: [usize; 3]) -> bool {
        self.strides == [t * heads * width, width, heads * width]
    }

    /// Whether every element of `[batch, heads, t, width]` is inside `data`.
    fn holds(&self, [batch, heads, t, width]: [usize; 4]) -> bool {
        let [sb, sh, st] = self.strides;
        self.data.len() > (batch - 1) * sb + (heads - 1) * sh + (t - 1) * st + width - 1
    }

    /// Head `bh` (of `heads` per batch row): its rows from its first one on.
    fn head(&self, bh: usize, heads: usize) -> Rows<'a> {
        let [sb, sh, st] = self.strides;
        Rows { data: &self.data[bh / heads * sb + bh % heads * sh..], rs: st }
    }
}

/// The rows of one head: row `i` starts at `data[i * rs]`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    data: &'a [f32],
    rs: usize,
}

impl<'a> Rows<'a> {
    /// Row `i` on: the operand of a product from row `i`.
    fn from(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.rs..]
    }

    fn row(&self, i: usize, width: usize) -> &'a [f32] {
        &self.data[i * self.rs..i * self.rs + width]
    }
}

/// A `[batch, heads, t, width]` output that tasks write, each its own rows: head-major
/// (row-major in that order) or token-major (`[batch, t, heads, width]` in memory, the layout
/// that multi-head attention splits its heads from and merges them back into, so that merging
/// is a view and not a copy).
struct Scatter {
    ptr: *mut f32,
    len: usize,
    heads: usize,
    t: usize,
    width: usize,
    token_major: bool,
}

// SAFETY: `Scatter::write`'s callers write disjoint rows, so sharing the pointer across the
// tasks of one call is sound; the buffer outlives the call.
unsafe impl Sync for Scatter {}

impl Scatter {
    fn new(buffer: &mut [f32], [heads, t, width]: [usize; 3], token_major: bool) -> Self {
        Scatter { ptr: buffer.as_mut_ptr(), len: buffer.len(), heads, t, width, token_major }
    }

    /// Row `i` of head `bh` (of `heads` per batch row).
    fn offset(&self, bh: usize, i: usize) -> usize {
        let (b, h) = (bh / self.heads, bh % self.heads);
        if self.token_major {
            ((b * self.t + i) * self.heads + h) * self.width
        } else {
            (bh * self.t + i) * self.width
        }
    }

    /// Rows `i0..` of head `bh` from `rows`, `width` values each.
    ///
    /// # Safety
    /// No other task touches these rows of the buffer while this runs.
    unsafe fn write(&self, bh: usize, i0: usize, rows: &[f32]) {
        for (r, row) in rows.chunks_exact(self.width).enumerate() {
            let offset = self.offset(bh, i0 + r);
            assert!(offset + self.width <= self.len, "flash host kernel: row {r} out of bounds");
            // SAFETY: in bounds (checked), and no other task writes this row (the caller's
            // promise); `row` is a separate buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(row.as_ptr(), self.ptr.add(offset), self.width)
            };
        }
    }
}

/// The keys `[lo, hi)` that the causal and window masks let query row `i` see.
fn visible(spec: &FlashSpec, i: usize, tk: usize) -> (usize, usize) {
    let p = spec.query_offset + i;
    let hi = if spec.causal { (p + 1).min(tk) } else { tk };
    // Query p sees key j when j + w > p.
    let lo = spec.window.map_or(0, |w| (p + 1).saturating_sub(w)).min(hi);
    (lo, hi)
}

/// The key padding of every batch row: `bias` is 0 at a live key and `-inf` at a padded one
/// (`padding` non-zero); `live[j]` counts the live keys before `j` (`tk + 1` per row).
struct Keys {
    bias: Vec<f32>,
    live: Vec<u32>,
}

impl Keys {
    fn new(padding: &[u8], dims: &Dims) -> Self {
        let tk = dims.tk;
        let padding = &padding[..dims.batch * tk];
        let bias = padding.iter().map(|&p| if p != 0 { f32::NEG_INFINITY } else { 0.0 }).collect();
        let mut live = Vec::with_capacity(dims.batch * (tk + 1));
        for row in padding.chunks_exact(tk) {
            let mut count = 0;
            live.push(0);
            for &p in row {
                count += u32::from(p == 0);
                live.push(count);
            }
        }
        Keys { bias, live }
    }

    /// Batch row `b`'s bias `[tk]` and live counts `[tk + 1]`.
    fn row(&self, b: usize, tk: usize) -> (&[f32], &[u32]) {
        (&self.bias[b * tk..(b + 1) * tk], &self.live[b * (tk + 1)..(b + 1) * (tk + 1)])
    }
}

/// The scores of row `i` of a tile of keys `k0..k0 + row.len()`, in place: scaled, `-inf`
/// where masked. Returns false (and leaves the row unspecified) when no key is visible.
fn mask_row(
    row: &mut [f32],
    spec: &FlashSpec,
    scale: f32,
    (bias, live): (&[f32], &[u32]),
    i: usize,
    k0: usize,
) -> bool {
    let (lo, hi) = visible(spec, i, bias.len());
    let (a, z) = (lo.max(k0), hi.min(k0 + row.len()));
    if a >= z || live[z] == live[a] {
        return false;
    }
    row[..a - k0].fill(f32::NEG_INFINITY);
    row[z - k0..].fill(f32::NEG_INFINITY);
    for (x, &b) in row[a - k0..z - k0].iter_mut().zip(&bias[a..z]) {
        *x = *x * scale + b;
    }
    true
}

/// The index of weight `(i, j)` of head `bh` in the `[b, h, tq, tk]` weights: where the
/// dropout mask's values for a row of a tile start.
fn drop_index(dims: &Dims, bh: usize, i: usize, j: usize) -> usize {
    (bh * dims.tq + i) * dims.tk + j
}

/// `[lo, hi)` of `t` in tiles of `block` (the last one ragged).
fn tiles(lo: usize, hi: usize, block: usize) -> impl Iterator<Item = (usize, usize)> {
    (lo..hi).step_by(block).map(move |start| (start, (start + block).min(hi)))
}

/// The transpose of rows `k0..k1` into `out` `[width, ld]`.
fn transpose_rows(x: Rows<'_>, width: usize, (k0, k1): (usize, usize), out: &mut [f32], ld: usize) {
    for j in k0..k1 {
        for (c, &value) in x.row(j, width).iter().enumerate() {
            out[c * ld + j - k0] = value;
        }
    }
}

/// Forward: the output `[b, h, tq, dv]` (token-major when `token_major`, see [`Scatter`]) and
/// the logsumexp `[b, h, tq]` ([`NEG`] for a query that sees no key, whose output is zero).
/// `padding` is `[b, tk]`, non-zero at padded keys.
///
/// # Panics
/// If a buffer does not hold its shape, or a size is 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    isa: Isa,
    q: Strided<'_>,
    k: Strided<'_>,
    v: Strided<'_>,
    padding: &[u8],
    dims: Dims,
    spec: &FlashSpec,
    token_major: bool,
) -> (Vec<f32>, Vec<f32>) {
    let Dims { batch, heads, tq, tk, dv, .. } = dims;
    check(&dims, &q, &k, &v, padding);
    let keys = Keys::new(padding, &dims);
    let scale = spec.scale as f32;
    let mut out = vec![0.0f32; batch * heads * tq * dv];
    let mut lse = vec![0.0f32; batch * heads * tq];
    let scatter = Scatter::new(&mut out, [heads, tq, dv], token_major);
    lse.par_chunks_mut(tq).enumerate().for_each(|(bh, lse)| {
        let head = Head {
            index: bh,
            q: q.head(bh, heads),
            k: k.head(bh, heads),
            v: v.head(bh, heads),
            keys: keys.row(bh / heads, tk),
        };
        // The head's keys transposed once for all its query blocks: `[d, tk]` in rows of `ldk`,
        // with room for a tile's last vector however its first key is aligned (the masks start
        // tiles anywhere).
        let ldk = tk.next_multiple_of(8) + 8;
        let mut kt = vec![0.0f32; dims.d * ldk];
        transpose_rows(head.k, dims.d, (0, tk), &mut kt, ldk);
        let kt = KeysT { data: &kt, ld: ldk };
        lse.par_chunks_mut(BQ).enumerate().for_each(|(block, lse)| {
            let i0 = block * BQ;
            let mut out = vec![0.0f32; lse.len() * dv];
            let rows = (i0, i0 + lse.len());
            forward_block(isa, &dims, spec, scale, &head, kt, rows, &mut out, lse);
            // SAFETY: this task owns rows i0.. of head bh.
            unsafe { scatter.write(bh, i0, &out) };
        });
    });
    (out, lse)
}

/// One head's keys transposed, `[d, tk]`: row `c` holds width `c` of every key, `ld` apart.
#[derive(Clone, Copy)]
struct KeysT<'a> {
    data: &'a [f32],
    ld: usize,
}

/// One head's inputs.
struct Head<'a> {
    /// `b · heads + h`: where the head's weights start in the dropout mask.
    index: usize,
    q: Rows<'a>,
    k: Rows<'a>,
    v: Rows<'a>,
    /// 0 or `-inf` per key, and the live keys before each (see [`Keys`]).
    keys: (&'a [f32], &'a [u32]),
}

fn check(dims: &Dims, q: &Strided<'_>, k: &Strided<'_>, v: &Strided<'_>, padding: &[u8]) {
    let Dims { batch, heads, tq, tk, d, dv } = *dims;
    assert!(
        batch * heads * tq * tk * d * dv > 0,
        "flash host kernel: empty sizes {dims:?} (the composed path takes those)"
    );
    assert!(
        q.holds([batch, heads, tq, d])
            && k.holds([batch, heads, tk, d])
            && v.holds([batch, heads, tk, dv])
            && padding.len() >= batch * tk,
        "flash host kernel: buffers of {:?}, {:?}, {:?} and {} values do not hold {dims:?}",
        (q.data.len(), q.strides),
        (k.data.len(), k.strides),
        (v.data.len(), v.strides),
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
    kt: KeysT<'_>,
    (i0, i1): (usize, usize),
    out: &mut [f32],
    lse: &mut [f32],
) {
    let Dims { tk, d, dv, .. } = *dims;
    let bq = i1 - i0;
    let mut s = vec![0.0f32; BQ * BK];
    let mut m = [f32::NEG_INFINITY; BQ];
    let mut l = [0.0f32; BQ];
    // Keys seen by any query of the block: the masks' bounds grow with the query.
    let (lo, _) = visible(spec, i0, tk);
    let (_, hi) = visible(spec, i1 - 1, tk);
    for (k0, k1) in tiles(lo, hi, BK) {
        let bk = k1 - k0;
        // Columns past `bk` (up to a multiple of 8, for whole vectors) hold the next tile's keys
        // or zeros, and are never read.
        let n = bk.next_multiple_of(8).min(BK);
        let q_rows = Mat::rows(head.q.from(i0), head.q.rs);
        matmul(isa, [bq, n, d], q_rows, &kt.data[k0..], kt.ld, &mut s, BK, false);
        for r in 0..bq {
            let row = &mut s[r * BK..r * BK + bk];
            if !mask_row(row, spec, scale, head.keys, i0 + r, k0) {
                row.fill(0.0);
                continue;
            }
            let tile_max = simd::max(isa, row);
            let m_new = m[r].max(tile_max);
            let alpha = (m[r] - m_new).exp();
            let sum = exp_shifted(isa, row, m_new);
            // The row sum takes the undropped weights: dropout applies after the softmax.
            if let Some(mask) = &spec.dropout {
                mask.apply(drop_index(dims, head.index, i0 + r, k0), row);
            }
            l[r] = l[r] * alpha + sum;
            if alpha != 1.0 {
                out[r * dv..(r + 1) * dv].iter_mut().for_each(|x| *x *= alpha);
            }
            m[r] = m_new;
        }
        let v_rows = head.v.from(k0);
        matmul(isa, [bq, dv, bk], Mat::rows(&s, BK), v_rows, head.v.rs, out, dv, true);
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

/// Gradients `[dq, dk, dv]` (each token-major where `token_major` says so, see [`Scatter`]),
/// given the upstream gradient `grad` `[b, h, tq, dv]` and the forward's `output` and `lse`;
/// each tile's weights are recomputed from `lse`.
///
/// # Panics
/// If a buffer does not hold its shape, or a size is 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    isa: Isa,
    q: Strided<'_>,
    k: Strided<'_>,
    v: Strided<'_>,
    padding: &[u8],
    output: Strided<'_>,
    lse: &[f32],
    grad: Strided<'_>,
    dims: Dims,
    spec: &FlashSpec,
    token_major: [bool; 3],
) -> [Vec<f32>; 3] {
    let Dims { batch, heads, tq, tk, d, dv } = dims;
    check(&dims, &q, &k, &v, padding);
    let rows = batch * heads * tq;
    assert!(
        output.holds([batch, heads, tq, dv])
            && grad.holds([batch, heads, tq, dv])
            && lse.len() >= rows,
        "flash host kernel: output {:?}, logsumexp {} and gradient {:?} values do not hold {dims:?}",
        (output.data.len(), output.strides),
        lse.len(),
        (grad.data.len(), grad.strides)
    );
    let keys = Keys::new(padding, &dims);
    let scale = spec.scale as f32;
    let mut grad_q = vec![0.0f32; rows * d];
    let mut grad_k = vec![0.0f32; batch * heads * tk * d];
    let mut grad_v = vec![0.0f32; batch * heads * tk * dv];
    let scatter = [
        Scatter::new(&mut grad_q, [heads, tq, d], token_major[0]),
        Scatter::new(&mut grad_k, [heads, tk, d], token_major[1]),
        Scatter::new(&mut grad_v, [heads, tk, dv], token_major[2]),
    ];
    (0..batch * heads).into_par_iter().for_each(|bh| {
        let head = Head {
            index: bh,
            q: q.head(bh, heads),
            k: k.head(bh, heads),
            v: v.head(bh, heads),
            keys: keys.row(bh / heads, tk),
        };
        let grads = HeadGrads {
            output: output.head(bh, heads),
            lse: &lse[bh * tq..(bh + 1) * tq],
            grad: grad.head(bh, heads),
        };
        let mut dq = vec![0.0f32; tq * d];
        let mut dk = vec![0.0f32; tk * d];
        let mut dvalue = vec![0.0f32; tk * dv];
        backward_head(isa, &dims, spec, scale, &head, &grads, [&mut dq, &mut dk, &mut dvalue]);
        for (scatter, rows) in scatter.iter().zip([dq, dk, dvalue]) {
            // SAFETY: this task owns head bh.
            unsafe { scatter.write(bh, 0, &rows) };
        }
    });
    [grad_q, grad_k, grad_v]
}

/// One head's forward results and upstream gradient.
struct HeadGrads<'a> {
    output: Rows<'a>,
    lse: &'a [f32],
    grad: Rows<'a>,
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
            let (o, g) = (grads.output.row(i, dv), grads.grad.row(i, dv));
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
        transpose_rows(head.k, d, (k0, k1), &mut kt, BK);
        transpose_rows(head.v, dv, (k0, k1), &mut vt, BK);
        for (i0, i1) in tiles(0, tq, BQ) {
            // Hidden tile: the masks' bounds grow with the query.
            if visible(spec, i1 - 1, tk).1 <= k0 || visible(spec, i0, tk).0 >= k1 {
                continue;
            }
            let bq = i1 - i0;
            let (q_rows, g) = (head.q.from(i0), grads.grad.from(i0));
            let (q_rs, g_rs) = (head.q.rs, grads.grad.rs);
            matmul(isa, [bq, n, d], Mat::rows(q_rows, q_rs), &kt, BK, &mut p, BK, false);
            matmul(isa, [bq, n, dv], Mat::rows(g, g_rs), &vt, BK, &mut dp, BK, false);
            for r in 0..bq {
                let i = i0 + r;
                let row = &mut p[r * BK..r * BK + bk];
                let ds = &mut dp[r * BK..r * BK + bk];
                if dead(i) || !mask_row(row, spec, scale, head.keys, i, k0) {
                    row.fill(0.0);
                    ds.fill(0.0);
                    continue;
                }
                exp_shifted(isa, row, grads.lse[i]);
                // With dropout the output is (P ⊙ M) V: `ds` holds dZ = dO Vᵀ, the weights'
                // gradient is dZ ⊙ M, and dV takes P ⊙ M. D stays rowsum(dO ⊙ O), since
                // Σ_j P_ij M_ij dZ_ij = dO_i · O_i.
                let mask = spec.dropout.map(|mask| (mask, drop_index(dims, head.index, i, k0)));
                if let Some((mask, start)) = &mask {
                    mask.apply(*start, ds);
                }
                for (ds, &p) in ds.iter_mut().zip(row.iter()) {
                    *ds = p * (*ds - delta[i]) * scale;
                }
                if let Some((mask, start)) = &mask {
                    mask.apply(*start, row);
                }
            }
            let dv_rows = &mut dv_out[k0 * dv..];
            matmul(isa, [bk, dv, bq], Mat::cols(&p, BK), g, g_rs, dv_rows, dv, true);
            matmul(isa, [bk, d, bq], Mat::cols(&dp, BK), q_rows, q_rs, &mut dk[k0 * d..], d, true);
            let (k_rows, k_rs) = (head.k.from(k0), head.k.rs);
            matmul(isa, [bq, d, bk], Mat::rows(&dp, BK), k_rows, k_rs, &mut dq[i0 * d..], d, true);
        }
    }
}
