//! Soft-DTW of a batch of pairs of point sequences under the squared-Euclidean cost, value and
//! gradient with respect to both sequences, on the host and in parallel over the batch.
//!
//! The cost matrix is never materialised: each anti-diagonal's costs are computed from the
//! points (`x` transposed, `y` reversed and transposed, so that a diagonal reads contiguous runs
//! of both), and the backward pass folds each diagonal of `E` straight into the gradients
//! `∂/∂x_i = 2 (x_i Σ_j E_ij - Σ_j E_ij y_j)` and `∂/∂y_j = 2 (y_j Σ_i E_ij - Σ_i E_ij x_i)`.
//! Memory per thread is the three weight arrays of one pair, `3 n m` values.

use rayon::prelude::*;

use super::kernel::{DiagonalCost, DiagonalSink, Scratch, soft_dtw_diagonals};
use super::math::SoftFloat;

/// A batch of right-padded pairs, row-major: `x` is `[batch, n, dim]`, `y` is `[batch, m, dim]`,
/// and pair `b` uses the first `x_lengths[b]` and `y_lengths[b]` points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PointBatch<'a, T> {
    pub x: &'a [T],
    pub y: &'a [T],
    pub n: usize,
    pub m: usize,
    pub dim: usize,
    pub x_lengths: &'a [usize],
    pub y_lengths: &'a [usize],
}

/// Values `[batch]` and gradients shaped like `x` and `y` (zero at padding).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointGradients<T> {
    pub values: Vec<T>,
    pub grad_x: Vec<T>,
    pub grad_y: Vec<T>,
}

/// Soft-DTW of every pair in `batch` with smoothing `gamma`, on the current rayon pool.
pub(crate) fn soft_dtw_points<T: SoftFloat>(
    batch: PointBatch<'_, T>,
    gamma: T,
) -> PointGradients<T> {
    let PointBatch { x, y, n, m, dim, x_lengths, y_lengths } = batch;
    let count = x_lengths.len();
    assert!(
        dim > 0
            && y_lengths.len() == count
            && x.len() == count * n * dim
            && y.len() == count * m * dim,
        "soft_dtw_points: inconsistent batch ({} and {} values, {count} and {} lengths, n {n}, \
         m {m}, dim {dim})",
        x.len(),
        y.len(),
        y_lengths.len()
    );
    let mut values = vec![T::ZERO; count];
    let mut grad_x = vec![T::ZERO; count * n * dim];
    let mut grad_y = vec![T::ZERO; count * m * dim];
    values
        .par_iter_mut()
        .zip(grad_x.par_chunks_mut(n * dim))
        .zip(grad_y.par_chunks_mut(m * dim))
        .enumerate()
        .with_min_len(1)
        .for_each_init(PairScratch::default, |scratch, (b, ((value, gx), gy))| {
            let (nb, mb) = (x_lengths[b], y_lengths[b]);
            let xb = &x[b * n * dim..][..nb * dim];
            let yb = &y[b * m * dim..][..mb * dim];
            *value = scratch.pair(xb, yb, dim, gamma, &mut gx[..nb * dim], &mut gy[..mb * dim]);
        });
    PointGradients { values, grad_x, grad_y }
}

/// Per-thread buffers: the kernel's, the transposed points and the gradient accumulators.
#[derive(Debug, Default)]
struct PairScratch<T> {
    kernel: Scratch<T>,
    xt: Vec<T>,
    yrt: Vec<T>,
    acc: Accumulators<T>,
}

#[derive(Debug, Default)]
struct Accumulators<T> {
    /// `Σ_j E_ij` by `i`.
    row_sums: Vec<T>,
    /// `Σ_i E_ij` by reversed `j`.
    col_sums: Vec<T>,
    /// `Σ_j E_ij y_j`, `[dim][n]`.
    ey: Vec<T>,
    /// `Σ_i E_ij x_i`, `[dim][m]` with `j` reversed.
    ex: Vec<T>,
}

impl<T: SoftFloat> PairScratch<T> {
    fn pair(&mut self, x: &[T], y: &[T], dim: usize, gamma: T, gx: &mut [T], gy: &mut [T]) -> T {
        let (n, m) = (x.len() / dim, y.len() / dim);
        transpose(x, dim, false, &mut self.xt);
        transpose(y, dim, true, &mut self.yrt);
        let acc = &mut self.acc;
        for (buf, len) in [
            (&mut acc.row_sums, n),
            (&mut acc.col_sums, m),
            (&mut acc.ey, n * dim),
            (&mut acc.ex, m * dim),
        ] {
            buf.clear();
            buf.resize(len, T::ZERO);
        }
        let points = Points { xt: &self.xt, yrt: &self.yrt, n, m, dim };
        let mut sink = GradientSink { points, acc };
        let value = soft_dtw_diagonals(n, m, gamma, &points, &mut sink, &mut self.kernel);
        let two = T::ONE + T::ONE;
        for i in 0..n {
            for c in 0..dim {
                gx[i * dim + c] = two * (x[i * dim + c] * acc.row_sums[i] - acc.ey[c * n + i]);
            }
        }
        for j in 0..m {
            let r = m - 1 - j;
            for c in 0..dim {
                gy[j * dim + c] = two * (y[j * dim + c] * acc.col_sums[r] - acc.ex[c * m + r]);
            }
        }
        value
    }
}

/// Row-major `[len][dim]` to `[dim][len]`, optionally reversing the order of the points.
fn transpose<T: SoftFloat>(points: &[T], dim: usize, reverse: bool, out: &mut Vec<T>) {
    let len = points.len() / dim;
    out.clear();
    out.resize(points.len(), T::ZERO);
    for i in 0..len {
        let to = if reverse { len - 1 - i } else { i };
        for c in 0..dim {
            out[c * len + to] = points[i * dim + c];
        }
    }
}

/// The squared-Euclidean costs of one pair: on diagonal `k`, row `i` meets column `k - i`, which
/// is reversed index `m - 1 - k + i`, so both operands are contiguous in `i`.
#[derive(Debug, Clone, Copy)]
struct Points<'a, T> {
    xt: &'a [T],
    yrt: &'a [T],
    n: usize,
    m: usize,
    dim: usize,
}

impl<T: SoftFloat> DiagonalCost<T> for Points<'_, T> {
    #[inline(always)]
    fn fill(&self, k: usize, lo: usize, out: &mut [T]) {
        let len = out.len();
        let r0 = self.m - 1 + lo - k;
        out.fill(T::ZERO);
        for c in 0..self.dim {
            let xs = &self.xt[c * self.n + lo..][..len];
            let ys = &self.yrt[c * self.m + r0..][..len];
            for t in 0..len {
                let d = xs[t] - ys[t];
                out[t] += d * d;
            }
        }
    }
}

struct GradientSink<'a, T> {
    points: Points<'a, T>,
    acc: &'a mut Accumulators<T>,
}

impl<T: SoftFloat> DiagonalSink<T> for GradientSink<'_, T> {
    #[inline(always)]
    fn take(&mut self, k: usize, lo: usize, e: &[T]) {
        let Points { xt, yrt, n, m, dim } = self.points;
        let len = e.len();
        let r0 = m - 1 + lo - k;
        add(&mut self.acc.row_sums[lo..lo + len], e);
        add(&mut self.acc.col_sums[r0..r0 + len], e);
        for c in 0..dim {
            add_product(&mut self.acc.ey[c * n + lo..][..len], e, &yrt[c * m + r0..][..len]);
            add_product(&mut self.acc.ex[c * m + r0..][..len], e, &xt[c * n + lo..][..len]);
        }
    }
}

#[inline(always)]
fn add<T: SoftFloat>(acc: &mut [T], e: &[T]) {
    let e = &e[..acc.len()];
    for t in 0..acc.len() {
        acc[t] += e[t];
    }
}

#[inline(always)]
fn add_product<T: SoftFloat>(acc: &mut [T], e: &[T], v: &[T]) {
    let (e, v) = (&e[..acc.len()], &v[..acc.len()]);
    for t in 0..acc.len() {
        acc[t] += e[t] * v[t];
    }
}
