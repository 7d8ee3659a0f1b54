//! Warping paths: backtracking through the full accumulated-cost matrix, or a low-memory
//! version that keeps checkpoint rows and recomputes one block at a time; and the cost matrices
//! themselves.

use crate::cost::Cost;
use crate::distance::DtwOptions;
use crate::error::Result;
use crate::float::Float;
use crate::series::{Series, check_pair};
use crate::window::Band;

/// A warping path and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment<T> {
    /// Sum of local costs along the path (the [`dtw_cost`](crate::dtw_cost) convention; use
    /// [`DtwOptions::cost_to_distance`] for the distance).
    pub cost: T,
    /// Matched index pairs `(i, j)`, from `(0, 0)` to `(n - 1, m - 1)`, each step advancing `i`,
    /// `j` or both by one.
    pub path: Vec<(usize, usize)>,
}

/// The local-cost and accumulated-cost matrices of a DTW problem, row-major `n × m`, with
/// `+∞` in the cells outside the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DtwMatrices<T> {
    /// Rows (length of the first series).
    pub n: usize,
    /// Columns (length of the second series).
    pub m: usize,
    /// `local[i * m + j]`: the local cost of matching point `i` with point `j`.
    pub local: Vec<T>,
    /// `accumulated[i * m + j]`: the cheapest path from `(0, 0)` to `(i, j)`, including both.
    pub accumulated: Vec<T>,
}

impl<T: Float> DtwMatrices<T> {
    /// The DTW cost, `accumulated[(n - 1, m - 1)]`.
    pub fn cost(&self) -> T {
        self.accumulated[self.n * self.m - 1]
    }

    /// The warping path, by backtracking as [`dtw_path`] does.
    pub fn path(&self) -> Vec<(usize, usize)> {
        let (m, acc) = (self.m, &self.accumulated);
        let d = |ti: usize, tj: usize| match (ti, tj) {
            (0, 0) => T::ZERO,
            (0, _) | (_, 0) => T::INFINITY,
            _ => acc[(ti - 1) * m + tj - 1],
        };
        let mut path = Vec::with_capacity(self.n + self.m);
        let (mut ti, mut tj) = (self.n, self.m);
        path.push((ti - 1, tj - 1));
        while (ti, tj) != (1, 1) {
            (ti, tj) = back_step(&d, ti, tj);
            path.push((ti - 1, tj - 1));
        }
        path.reverse();
        path
    }
}

/// The best warping path, by backtracking through the full `(n + 1) × (m + 1)` accumulated-cost
/// matrix: `O(n m)` memory, one DP pass.
///
/// Ties are broken towards the diagonal step, then the step in `i`, then the step in `j`.
///
/// # Errors
/// As [`dtw_cost`](crate::dtw_cost).
pub fn dtw_path<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    options: &DtwOptions,
) -> Result<Alignment<T>> {
    let (a, b) = (a.into(), b.into());
    check_pair(a, b)?;
    let band = Band::new(&options.window, a.len(), b.len())?;
    let (n, m) = (a.len(), b.len());
    let local = Local { a, b, cost: options.cost };
    let mut d = vec![T::INFINITY; (n + 1) * (m + 1)];
    d[0] = T::ZERO;
    fill_block(0, n, m, &band, &local, &mut d);
    let mut path = Vec::with_capacity(n + m);
    let (mut ti, mut tj) = (n, m);
    path.push((n - 1, m - 1));
    let at = |ti: usize, tj: usize| d[ti * (m + 1) + tj];
    while (ti, tj) != (1, 1) {
        (ti, tj) = back_step(&at, ti, tj);
        path.push((ti - 1, tj - 1));
    }
    path.reverse();
    Ok(Alignment { cost: d[n * (m + 1) + m], path })
}

/// The same path as [`dtw_path`] (same tie-breaking, bit-identical costs) in
/// `O(sqrt(n) m)` memory, for long series.
///
/// Checkpointed recomputation: the forward pass keeps every `s`-th row of the accumulated
/// costs (`s = ceil(sqrt(n))`); backtracking then recomputes one block of `s` rows from its
/// checkpoint at a time. About twice the work of [`dtw_path`]; 10 000 × 10 000 needs about
/// 16 MB instead of 800 MB.
///
/// # Errors
/// As [`dtw_cost`](crate::dtw_cost).
pub fn dtw_path_low_memory<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    options: &DtwOptions,
) -> Result<Alignment<T>> {
    let (a, b) = (a.into(), b.into());
    check_pair(a, b)?;
    let band = Band::new(&options.window, a.len(), b.len())?;
    let (n, m) = (a.len(), b.len());
    let local = Local { a, b, cost: options.cost };
    let s = (n as f64).sqrt().ceil().max(1.0) as usize;
    let width = m + 1;
    // checkpoints[c]: the row above block c (row c * s - 1; row -1 for block 0).
    let mut checkpoints: Vec<Vec<T>> = Vec::with_capacity(n.div_ceil(s));
    let mut block = vec![T::INFINITY; (s + 1) * width];
    let mut row_above = vec![T::INFINITY; width];
    row_above[0] = T::ZERO;
    let mut i0 = 0;
    while i0 < n {
        let rows = s.min(n - i0);
        checkpoints.push(row_above.clone());
        block[..width].copy_from_slice(&row_above);
        fill_block(i0, rows, m, &band, &local, &mut block[..(rows + 1) * width]);
        row_above.copy_from_slice(&block[rows * width..(rows + 1) * width]);
        i0 += rows;
    }
    let cost = row_above[m];
    let mut path = Vec::with_capacity(n + m);
    let (mut ti, mut tj) = (n, m);
    path.push((n - 1, m - 1));
    for (c, checkpoint) in checkpoints.iter().enumerate().rev() {
        let i0 = c * s;
        let rows = s.min(n - i0);
        block[..width].copy_from_slice(checkpoint);
        fill_block(i0, rows, m, &band, &local, &mut block[..(rows + 1) * width]);
        // Global t-row ti is local row ti - i0; local row 0 is the checkpoint.
        let at = |ti: usize, tj: usize| block[(ti - i0) * width + tj];
        while ti > i0 && (ti, tj) != (1, 1) {
            (ti, tj) = back_step(&at, ti, tj);
            path.push((ti - 1, tj - 1));
        }
    }
    path.reverse();
    Ok(Alignment { cost, path })
}

/// The local-cost and accumulated-cost matrices (`O(n m)` memory).
///
/// # Errors
/// As [`dtw_cost`](crate::dtw_cost).
pub fn dtw_matrices<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    options: &DtwOptions,
) -> Result<DtwMatrices<T>> {
    let (a, b) = (a.into(), b.into());
    check_pair(a, b)?;
    let band = Band::new(&options.window, a.len(), b.len())?;
    let (n, m) = (a.len(), b.len());
    let local = Local { a, b, cost: options.cost };
    let mut d = vec![T::INFINITY; (n + 1) * (m + 1)];
    d[0] = T::ZERO;
    fill_block(0, n, m, &band, &local, &mut d);
    let mut costs = vec![T::INFINITY; n * m];
    let mut accumulated = vec![T::INFINITY; n * m];
    for i in 0..n {
        let (lo, hi) = band.range(i);
        for j in lo..=hi {
            costs[i * m + j] = local.at(i, j);
        }
        accumulated[i * m..(i + 1) * m]
            .copy_from_slice(&d[(i + 1) * (m + 1) + 1..(i + 2) * (m + 1)]);
    }
    Ok(DtwMatrices { n, m, local: costs, accumulated })
}

/// Local costs of two checked series.
struct Local<'a, 'b, T> {
    a: Series<'a, T>,
    b: Series<'b, T>,
    cost: Cost,
}

impl<T: Float> Local<'_, '_, T> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> T {
        self.cost.local(self.a.point(i), self.b.point(j))
    }
}

/// Fills rows `i0 .. i0 + rows` of the accumulated costs into `buf[width..]` (rows of
/// `width = m + 1` cells, t-indexed: column `j` at `j + 1`), given the row above in
/// `buf[..width]`. Cells outside the band become `+∞`.
fn fill_block<T: Float>(
    i0: usize,
    rows: usize,
    m: usize,
    band: &Band,
    local: &Local<'_, '_, T>,
    buf: &mut [T],
) {
    let width = m + 1;
    buf[width..].fill(T::INFINITY);
    for r in 1..=rows {
        let i = i0 + r - 1;
        let (prev, cur) = buf[(r - 1) * width..(r + 1) * width].split_at_mut(width);
        let (lo, hi) = band.range(i);
        for t in lo + 1..=hi + 1 {
            let best = prev[t - 1].min2(prev[t]).min2(cur[t - 1]);
            cur[t] = local.at(i, t - 1) + best;
        }
    }
}

/// One backtracking step from t-indexed cell `(ti, tj)` (not `(1, 1)`): to the cheapest
/// predecessor, preferring the diagonal, then `(ti - 1, tj)`, then `(ti, tj - 1)`.
#[inline]
fn back_step<T: Float>(d: &impl Fn(usize, usize) -> T, ti: usize, tj: usize) -> (usize, usize) {
    let (diag, up, left) = (d(ti - 1, tj - 1), d(ti - 1, tj), d(ti, tj - 1));
    if diag <= up && diag <= left {
        (ti - 1, tj - 1)
    } else if up <= left {
        (ti - 1, tj)
    } else {
        (ti, tj - 1)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::reference::{Rng, assert_close, brute_force};
    use crate::{Window, dtw_cost};

    fn path_cost(a: &[f64], b: &[f64], cost: Cost, path: &[(usize, usize)]) -> f64 {
        path.iter().map(|&(i, j)| cost.local(&a[i..=i], &b[j..=j])).sum()
    }

    fn assert_valid(path: &[(usize, usize)], n: usize, m: usize) {
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(n - 1, m - 1)));
        for w in path.windows(2) {
            let (di, dj) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
            assert!(matches!((di, dj), (1, 0) | (0, 1) | (1, 1)), "bad step {w:?}");
        }
    }

    #[test]
    fn paths_are_optimal_against_brute_force() {
        let mut rng = Rng::new(21);
        for _ in 0..200 {
            let (n, m) = (1 + rng.below(6), 1 + rng.below(6));
            let (a, b) = (rng.series(n), rng.series(m));
            for cost in [Cost::SquaredEuclidean, Cost::Absolute] {
                for window in [
                    Window::Full,
                    Window::SakoeChiba { radius: 1 },
                    Window::Itakura { max_slope: 2.0 },
                ] {
                    let options = DtwOptions { cost, window };
                    let Some((expected, _)) = brute_force(&a, &b, 1, cost, &window) else {
                        assert!(dtw_path(&a, &b, &options).is_err());
                        continue;
                    };
                    let full = dtw_path(&a, &b, &options).unwrap();
                    assert_close(full.cost, expected, 1e-12, "cost");
                    assert_valid(&full.path, n, m);
                    assert_close(path_cost(&a, &b, cost, &full.path), expected, 1e-12, "path cost");
                    assert_eq!(dtw_path_low_memory(&a, &b, &options).unwrap(), full);
                    let matrices = dtw_matrices(&a, &b, &options).unwrap();
                    assert_eq!((matrices.cost(), matrices.path()), (full.cost, full.path));
                }
            }
        }
    }

    #[test]
    fn matrices_hold_local_and_accumulated_costs() {
        let (a, b) = ([0.0, 2.0], [1.0, 3.0]);
        let d = dtw_matrices(&a, &b, &DtwOptions::default()).unwrap();
        assert_eq!(d.local, [1.0, 9.0, 1.0, 1.0]);
        // acc(0,1) = 1 + 9, acc(1,0) = 1 + 1, acc(1,1) = 1 + min(1, 10, 2).
        assert_eq!(d.accumulated, [1.0, 10.0, 2.0, 2.0]);
        let band = DtwOptions::default().with_window(Window::SakoeChiba { radius: 0 });
        let d = dtw_matrices(&[0.0, 2.0, 1.0], &[1.0, 3.0, 1.0], &band).unwrap();
        assert_eq!(d.local[1], f64::INFINITY);
        assert_eq!(d.accumulated[2], f64::INFINITY);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 100, rng_seed: proptest::test_runner::RngSeed::Fixed(23), ..ProptestConfig::default() })]

        #[test]
        fn low_memory_path_has_the_cost_of_the_full_path(
            a in prop::collection::vec(-5.0..5.0f64, 1..80),
            b in prop::collection::vec(-5.0..5.0f64, 1..80),
            r in 0usize..10,
        ) {
            let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: r });
            let full = dtw_path(&a, &b, &options).unwrap();
            let low = dtw_path_low_memory(&a, &b, &options).unwrap();
            prop_assert_eq!(low.cost, full.cost);
            prop_assert_eq!(&low.path, &full.path);
            prop_assert_eq!(full.cost, dtw_cost(&a, &b, &options).unwrap());
        }
    }
}
