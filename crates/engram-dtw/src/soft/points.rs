//! Soft-DTW of a batch of pairs of point sequences under the squared-Euclidean cost, value and
//! gradient with respect to both sequences, on the host and in parallel over the batch.
//!
//! The cost matrix is never materialised: each anti-diagonal's costs are computed from the
//! points (`x` transposed, `y` reversed and transposed, so that a diagonal reads contiguous runs
//! of both), and the backward pass folds each diagonal of `E` straight into the gradients
//! `∂/∂x_i = 2 (x_i Σ_j E_ij - Σ_j E_ij y_j)` and `∂/∂y_j = 2 (y_j Σ_i E_ij - Σ_i E_ij x_i)`.
//! Memory per thread is the three weight arrays of one pair, `3 n m` values, or of one group of
//! `L` pairs, `3 n m L` (at most [`LANE_WEIGHT_BYTES`]).

use std::any::Any;
use std::cell::RefCell;

use rayon::prelude::*;

use super::kernel::{DiagonalCost, DiagonalSink, Scratch, soft_dtw_diagonals};
use super::lanes::{LanePair, LaneScratch, lane_weight_bytes, soft_dtw_lanes};
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

/// Soft-DTW of every pair in `batch` with smoothing `gamma`, on the current rayon pool, `L`
/// pairs per SIMD lane group (`lanes.rs`; 8 for f32 and 4 for f64 fill an AVX2 register).
///
/// Pairs are sorted by area and cut into groups of `L`; a group runs on one grid as large as its
/// largest pair, so it goes to the lanes kernel only if its pairs fill at least half of the
/// `L` grids (equal lengths fill all of them) and its weights fit in [`LANE_WEIGHT_BYTES`];
/// the other pairs run one at a time on the diagonal kernel (`kernel.rs`). Groups and single
/// pairs are the rayon tasks.
pub(crate) fn soft_dtw_points<T: SoftFloat, const L: usize>(
    batch: PointBatch<'_, T>,
    gamma: T,
) -> PointGradients<T> {
    let count = check(&batch);
    let PointBatch { x, y, n, m, dim, x_lengths, y_lengths } = batch;
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|&b| std::cmp::Reverse((x_lengths[b] * y_lengths[b], x_lengths[b])));
    let mut groups = Vec::new();
    let mut singles = Vec::new();
    for chunk in order.chunks(L) {
        let grid_n = chunk.iter().map(|&b| x_lengths[b]).max().unwrap_or(0);
        let grid_m = chunk.iter().map(|&b| y_lengths[b]).max().unwrap_or(0);
        let used: usize = chunk.iter().map(|&b| x_lengths[b] * y_lengths[b]).sum();
        if 2 * used >= L * grid_n * grid_m
            && lane_weight_bytes::<T, L>(grid_n, grid_m) <= LANE_WEIGHT_BYTES
        {
            groups.push(chunk);
        } else {
            singles.extend_from_slice(chunk);
        }
    }

    let mut values = vec![T::ZERO; count];
    let mut grad_x = vec![T::ZERO; count * n * dim];
    let mut grad_y = vec![T::ZERO; count * m * dim];
    // Each pair's inputs and outputs, taken by the one task that computes it.
    let mut slots: Vec<Option<LanePair<'_, T>>> = values
        .iter_mut()
        .zip(grad_x.chunks_mut(n * dim))
        .zip(grad_y.chunks_mut(m * dim))
        .enumerate()
        .map(|(b, ((value, gx), gy))| {
            let (nb, mb) = (x_lengths[b], y_lengths[b]);
            Some(LanePair {
                x: &x[b * n * dim..][..nb * dim],
                y: &y[b * m * dim..][..mb * dim],
                value,
                grad_x: &mut gx[..nb * dim],
                grad_y: &mut gy[..mb * dim],
            })
        })
        .collect();
    let mut take = |b: usize| {
        let Some(pair) = slots[b].take() else { unreachable!("soft_dtw_points: pair {b} twice") };
        pair
    };
    let mut tasks: Vec<Vec<LanePair<'_, T>>> =
        groups.iter().map(|chunk| chunk.iter().map(|&b| take(b)).collect()).collect();
    tasks.extend(singles.iter().map(|&b| vec![take(b)]));
    tasks.into_par_iter().with_min_len(1).for_each(|mut task| {
        if let [pair] = task.as_mut_slice() {
            with_cached_scratch(|single: &mut PairScratch<T>| {
                *pair.value = single.pair(pair.x, pair.y, dim, gamma, pair.grad_x, pair.grad_y);
            });
        } else {
            with_cached_scratch(|lanes: &mut LaneScratch<T, L>| {
                soft_dtw_lanes(&mut task, dim, gamma, lanes)
            });
        }
    });
    PointGradients { values, grad_x, grad_y }
}

/// The largest weight arrays a lane group may use (a single pair uses `L` times less).
pub(crate) const LANE_WEIGHT_BYTES: usize = 64 << 20;

/// Runs `f` on this thread's scratch of type `S`, kept for the next call when it holds at most
/// [`LANE_WEIGHT_BYTES`]. A training loop calls the loss with the same shapes every step, and
/// fresh buffers of several megabytes cost a page fault per 4 KiB and their zeroing each time:
/// nearly half the time of the 256-point benchmark batch before they were kept.
fn with_cached_scratch<S: Default + Bytes + 'static, R>(f: impl FnOnce(&mut S) -> R) -> R {
    thread_local! {
        static CACHE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }
    let mut scratch: Box<S> =
        CACHE.with_borrow_mut(|cache| match cache.iter().position(|s| s.is::<S>()) {
            Some(at) => cache.swap_remove(at).downcast().unwrap_or_default(),
            None => Box::default(),
        });
    let out = f(&mut scratch);
    if scratch.bytes() <= LANE_WEIGHT_BYTES {
        CACHE.with_borrow_mut(|cache| cache.push(scratch));
    }
    out
}

/// The heap memory a scratch holds.
pub(crate) trait Bytes {
    fn bytes(&self) -> usize;
}

/// The bytes `v`'s allocation holds.
pub(crate) fn vec_bytes<V>(v: &Vec<V>) -> usize {
    v.capacity() * size_of::<V>()
}

/// Soft-DTW of every pair one at a time on the diagonal kernel, as before the lanes kernel: the
/// reference the tests hold `soft_dtw_points` to.
#[cfg(test)]
pub(crate) fn soft_dtw_points_per_pair<T: SoftFloat>(
    batch: PointBatch<'_, T>,
    gamma: T,
) -> PointGradients<T> {
    let count = check(&batch);
    let PointBatch { x, y, n, m, dim, x_lengths, y_lengths } = batch;
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

/// The batch size, after checking that the slices agree with it.
fn check<T>(batch: &PointBatch<'_, T>) -> usize {
    let PointBatch { x, y, n, m, dim, x_lengths, y_lengths } = *batch;
    let count = x_lengths.len();
    assert!(
        dim > 0
            && y_lengths.len() == count
            && x.len() == count * n * dim
            && y.len() == count * m * dim
            && x_lengths.iter().all(|&l| (1..=n).contains(&l))
            && y_lengths.iter().all(|&l| (1..=m).contains(&l)),
        "soft_dtw_points: inconsistent batch ({} and {} values, {count} and {} lengths, n {n}, \
         m {m}, dim {dim})",
        x.len(),
        y.len(),
        y_lengths.len()
    );
    count
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

impl<T> Bytes for PairScratch<T> {
    fn bytes(&self) -> usize {
        let Accumulators { row_sums, col_sums, ey, ex } = &self.acc;
        self.kernel.bytes()
            + [&self.xt, &self.yrt, row_sums, col_sums, ey, ex]
                .into_iter()
                .map(vec_bytes)
                .sum::<usize>()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Rng;
    use crate::soft::recursion::tests::reference;

    /// A padded batch with the given lengths: `[count, n, dim]` and `[count, m, dim]` values in
    /// `[-1, 1)`, padding included (it must not matter).
    fn batch(rng: &mut Rng, lengths: &[(usize, usize)], dim: usize) -> (Vec<f64>, Vec<f64>) {
        let n = lengths.iter().map(|l| l.0).max().unwrap_or(1);
        let m = lengths.iter().map(|l| l.1).max().unwrap_or(1);
        let mut values = |len| (0..len).map(|_| rng.uniform() * 2.0 - 1.0).collect::<Vec<_>>();
        (values(lengths.len() * n * dim), values(lengths.len() * m * dim))
    }

    fn run<T: SoftFloat, const L: usize>(
        x: &[f64],
        y: &[f64],
        lengths: &[(usize, usize)],
        dim: usize,
        gamma: f64,
        lanes: bool,
    ) -> PointGradients<f64> {
        let n = lengths.iter().map(|l| l.0).max().unwrap_or(1);
        let m = lengths.iter().map(|l| l.1).max().unwrap_or(1);
        let (x, y): (Vec<T>, Vec<T>) = (
            x.iter().map(|&v| T::from_f64(v)).collect(),
            y.iter().map(|&v| T::from_f64(v)).collect(),
        );
        let x_lengths: Vec<usize> = lengths.iter().map(|l| l.0).collect();
        let y_lengths: Vec<usize> = lengths.iter().map(|l| l.1).collect();
        let batch =
            PointBatch { x: &x, y: &y, n, m, dim, x_lengths: &x_lengths, y_lengths: &y_lengths };
        let gamma = T::from_f64(gamma);
        let out = if lanes {
            soft_dtw_points::<T, L>(batch, gamma)
        } else {
            soft_dtw_points_per_pair(batch, gamma)
        };
        let wide = |v: Vec<T>| v.into_iter().map(T::to_f64).collect();
        PointGradients {
            values: wide(out.values),
            grad_x: wide(out.grad_x),
            grad_y: wide(out.grad_y),
        }
    }

    fn assert_all_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{k}]: {g} vs {w}");
        }
    }

    /// Lengths that exercise every path: 9 equal pairs (a full group and one in the next),
    /// ragged pairs that share groups, a lone 1 × 1 pair and pairs too small beside the
    /// others to share their grid (the per-pair fallback).
    fn ragged() -> Vec<(usize, usize)> {
        let mut lengths = vec![(19, 23); 9];
        lengths.extend([(18, 23), (19, 20), (17, 21), (16, 22), (1, 1), (3, 2), (19, 1), (1, 7)]);
        lengths
    }

    #[test]
    fn lanes_match_the_per_pair_kernel_on_ragged_batches() {
        let mut rng = Rng::new(17);
        let dim = 3;
        let lengths = ragged();
        let (x, y) = batch(&mut rng, &lengths, dim);
        for gamma in [0.05, 1.0] {
            let want = run::<f64, 4>(&x, &y, &lengths, dim, gamma, false);
            for (got, tol, what) in [
                (run::<f64, 4>(&x, &y, &lengths, dim, gamma, true), 1e-12, "f64"),
                (run::<f32, 8>(&x, &y, &lengths, dim, gamma, true), 2e-4, "f32"),
            ] {
                assert_all_close(&got.values, &want.values, tol, &format!("{what} values"));
                assert_all_close(&got.grad_x, &want.grad_x, tol, &format!("{what} grad_x"));
                assert_all_close(&got.grad_y, &want.grad_y, tol, &format!("{what} grad_y"));
            }
        }
    }

    #[test]
    fn lanes_match_the_row_by_row_reference() {
        // Value and ∂/∂cost of the f64 reference, chained by hand to ∂/∂x for pair 3.
        let mut rng = Rng::new(23);
        let (dim, gamma) = (2, 0.3);
        let lengths = [(7, 5), (7, 5), (6, 5), (7, 4), (5, 5)];
        let (x, y) = batch(&mut rng, &lengths, dim);
        let got = run::<f64, 4>(&x, &y, &lengths, dim, gamma, true);
        let (n, m) = (7, 5);
        for (b, &(nb, mb)) in lengths.iter().enumerate() {
            let point = |v: &[f64], len: usize, i: usize| v[(b * len + i) * dim..][..dim].to_vec();
            let mut cost = Vec::new();
            for i in 0..nb {
                for j in 0..mb {
                    let (p, q) = (point(&x, n, i), point(&y, m, j));
                    cost.push(p.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum::<f64>());
                }
            }
            let want = reference(&cost, nb, mb, gamma);
            assert!((got.values[b] - want.value).abs() < 1e-12, "pair {b} value");
            for i in 0..n {
                for c in 0..dim {
                    let g: f64 = if i < nb {
                        (0..mb)
                            .map(|j| {
                                2.0 * want.grad[i * mb + j]
                                    * (point(&x, n, i)[c] - point(&y, m, j)[c])
                            })
                            .sum()
                    } else {
                        0.0
                    };
                    let at = (b * n + i) * dim + c;
                    assert!((got.grad_x[at] - g).abs() < 1e-12, "pair {b} ∂x[{i}][{c}]");
                }
            }
        }
    }
}
