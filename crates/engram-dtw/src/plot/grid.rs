//! A cost matrix reduced to a grid that fits a picture: blocks of cells summarised by their
//! minimum, either from a matrix in memory or computed row by row in `O(m)` memory.

use crate::distance::DtwOptions;
use crate::error::Result;
use crate::float::Float;
use crate::path::DtwMatrices;
use crate::series::{Series, check_pair};
use crate::window::Band;

/// An `n × m` cost matrix summarised as `rows × cols` blocks (at most the requested size, never
/// more than `n × m`), each holding the minimum of its cells; `+∞` marks blocks with no cell
/// inside the window.
///
/// Row `i` of the matrix falls in block row `i * rows / n` (and likewise for columns), so the
/// blocks differ in size by at most one cell and the corners `(0, 0)` and `(n - 1, m - 1)` stay
/// in the corner blocks. The minimum (rather than the mean) keeps a narrow valley of low cost,
/// such as the one along the warping path, visible after shrinking.
#[derive(Debug, Clone, PartialEq)]
pub struct CostGrid {
    n: usize,
    m: usize,
    rows: usize,
    cols: usize,
    values: Vec<f64>,
}

impl CostGrid {
    /// Summarises a row-major `n × m` matrix (NaN and `+∞` count as outside the window) into at
    /// most `max_rows × max_cols` blocks.
    ///
    /// # Panics
    /// When `values.len() != n * m`, when `n` or `m` is 0, or when `max_rows` or `max_cols` is 0.
    pub fn from_matrix<T: Float>(
        values: &[T],
        n: usize,
        m: usize,
        max_rows: usize,
        max_cols: usize,
    ) -> CostGrid {
        assert!(
            values.len() == n * m && n > 0 && m > 0,
            "CostGrid::from_matrix: {} values for a {n} x {m} matrix",
            values.len()
        );
        let mut grid = CostGrid::empty(n, m, max_rows, max_cols);
        for (i, row) in values.chunks_exact(m).enumerate() {
            grid.add_row(i, row);
        }
        grid
    }

    /// The accumulated costs of [`DtwMatrices`] (`+∞` outside the window), at most
    /// `max_rows × max_cols` blocks.
    ///
    /// # Panics
    /// As [`CostGrid::from_matrix`].
    pub fn from_accumulated<T: Float>(
        matrices: &DtwMatrices<T>,
        max_rows: usize,
        max_cols: usize,
    ) -> CostGrid {
        CostGrid::from_matrix(&matrices.accumulated, matrices.n, matrices.m, max_rows, max_cols)
    }

    /// The accumulated-cost matrix of `a` and `b` under `options`, computed one row at a time
    /// (`O(m)` memory, `O(n m)` time) and summarised into at most `max_rows × max_cols` blocks:
    /// 10 000 × 10 000 series plot without the 800 MB matrix. The cells are bit-identical to
    /// [`dtw_matrices`](crate::dtw_matrices)'s.
    ///
    /// # Errors
    /// As [`dtw_cost`](crate::dtw_cost).
    ///
    /// # Panics
    /// When `max_rows` or `max_cols` is 0.
    pub fn accumulated<'a, 'b, T: Float>(
        a: impl Into<Series<'a, T>>,
        b: impl Into<Series<'b, T>>,
        options: &DtwOptions,
        max_rows: usize,
        max_cols: usize,
    ) -> Result<CostGrid> {
        let (a, b) = (a.into(), b.into());
        check_pair(a, b)?;
        let (n, m) = (a.len(), b.len());
        let band = Band::new(&options.window, n, m)?;
        let mut grid = CostGrid::empty(n, m, max_rows, max_cols);
        // t-indexed rows (column j at j + 1) as in `path.rs`, with the same arithmetic order so
        // that the cells are the same bits.
        let mut prev = vec![T::INFINITY; m + 1];
        prev[0] = T::ZERO;
        let mut cur = vec![T::INFINITY; m + 1];
        for i in 0..n {
            cur.fill(T::INFINITY);
            let (lo, hi) = band.range(i);
            for t in lo + 1..=hi + 1 {
                let best = prev[t - 1].min2(prev[t]).min2(cur[t - 1]);
                cur[t] = options.cost.local(a.point(i), b.point(t - 1)) + best;
            }
            grid.add_row(i, &cur[1..]);
            std::mem::swap(&mut prev, &mut cur);
        }
        Ok(grid)
    }

    /// This grid summarised again into at most `max_rows × max_cols` blocks (a block of blocks
    /// holds the minimum of its blocks); matrix row `i` lands in block row
    /// `(i * rows / n) * new_rows / rows`.
    ///
    /// # Panics
    /// When `max_rows` or `max_cols` is 0.
    pub fn shrunk(&self, max_rows: usize, max_cols: usize) -> CostGrid {
        let mut grid = CostGrid::empty(self.rows, self.cols, max_rows, max_cols);
        for (r, row) in self.values.chunks_exact(self.cols).enumerate() {
            grid.add_row(r, row);
        }
        CostGrid { n: self.n, m: self.m, ..grid }
    }

    fn empty(n: usize, m: usize, max_rows: usize, max_cols: usize) -> CostGrid {
        assert!(
            max_rows > 0 && max_cols > 0,
            "CostGrid: the grid needs at least one block per side, got {max_rows} x {max_cols}"
        );
        let (rows, cols) = (n.min(max_rows), m.min(max_cols));
        CostGrid { n, m, rows, cols, values: vec![f64::INFINITY; rows * cols] }
    }

    /// Folds row `i` of the matrix (`m` cells) into its block row.
    fn add_row<T: Float>(&mut self, i: usize, row: &[T]) {
        let r = i * self.rows / self.n;
        let blocks = &mut self.values[r * self.cols..(r + 1) * self.cols];
        for (j, &x) in row.iter().enumerate() {
            let x = x.to_f64();
            let block = &mut blocks[j * self.cols / self.m];
            // `x < block` is false for NaN, which therefore counts as outside the window.
            if x < *block {
                *block = x;
            }
        }
    }

    /// Rows of the summarised matrix (length of the first series).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Columns of the summarised matrix (length of the second series).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Block rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Block columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The blocks, row-major `rows × cols`, block row 0 holding matrix row 0.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The block `(row, col)` that holds matrix cell `(i, j)`.
    ///
    /// # Panics
    /// When `(i, j)` is outside the `n × m` matrix.
    pub fn block_of(&self, i: usize, j: usize) -> (usize, usize) {
        assert!(
            i < self.n && j < self.m,
            "CostGrid::block_of: cell ({i}, {j}) is outside the {} x {} matrix",
            self.n,
            self.m
        );
        (i * self.rows / self.n, j * self.cols / self.m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Window, dtw_matrices, dtw_path};

    fn wave(len: usize, phase: f64) -> Vec<f64> {
        (0..len).map(|k| (k as f64 * 0.07 + phase).sin()).collect()
    }

    #[test]
    fn streaming_grid_equals_the_accumulated_matrix() {
        let (a, b) = (wave(23, 0.0), wave(17, 0.4));
        for window in [Window::Full, Window::SakoeChiba { radius: 3 }] {
            let options = DtwOptions::new().with_window(window);
            let matrices = dtw_matrices(&a, &b, &options).unwrap();
            let streamed = CostGrid::accumulated(&a, &b, &options, 100, 100).unwrap();
            assert_eq!((streamed.rows(), streamed.cols()), (23, 17));
            assert_eq!(streamed.values(), &matrices.accumulated[..]);
            assert_eq!(streamed, CostGrid::from_accumulated(&matrices, 100, 100));
        }
    }

    #[test]
    fn blocks_hold_the_minimum_of_their_cells() {
        // 5 x 4 matrix into 2 x 2 blocks: rows {0, 1, 2} and {3, 4}, columns {0, 1} and {2, 3}.
        let values: Vec<f64> = (0..20).map(|k| k as f64).collect();
        let grid = CostGrid::from_matrix(&values, 5, 4, 2, 2);
        assert_eq!(grid.values(), [0.0, 2.0, 12.0, 14.0]);
        assert_eq!(grid.block_of(2, 1), (0, 0));
        assert_eq!(grid.block_of(3, 2), (1, 1));
        let shrunk = grid.shrunk(1, 1);
        assert_eq!((shrunk.n(), shrunk.m(), shrunk.values()), (5, 4, &[0.0][..]));
    }

    #[test]
    fn blocks_outside_the_window_stay_infinite() {
        let (a, b) = (wave(40, 0.0), wave(40, 0.3));
        let options = DtwOptions::new().with_window(Window::SakoeChiba { radius: 1 });
        let grid = CostGrid::accumulated(&a, &b, &options, 8, 8).unwrap();
        assert!(grid.values()[8 - 1].is_infinite(), "top right block is outside the band");
        assert!(grid.values()[(8 - 1) * 8].is_infinite(), "bottom left block too");
        for r in 0..8 {
            assert!(grid.values()[r * 8 + r].is_finite(), "diagonal block {r}");
        }
    }

    #[test]
    fn downsampling_keeps_the_path_corner_to_corner() {
        let (a, b) = (wave(1000, 0.0), wave(700, 0.5));
        let options = DtwOptions::default();
        let grid = CostGrid::accumulated(&a, &b, &options, 50, 30).unwrap();
        assert_eq!((grid.rows(), grid.cols()), (50, 30));
        let path = dtw_path(&a, &b, &options).unwrap().path;
        assert_eq!(grid.block_of(path[0].0, path[0].1), (0, 0));
        assert_eq!(grid.block_of(999, 699), (49, 29));
        for &(i, j) in &path {
            let (r, c) = grid.block_of(i, j);
            assert!(grid.values()[r * 30 + c].is_finite());
        }
        // Block indices along the path only move up and right, one block at a time.
        let blocks: Vec<_> = path.iter().map(|&(i, j)| grid.block_of(i, j)).collect();
        for w in blocks.windows(2) {
            assert!(w[1].0 - w[0].0 <= 1 && w[1].1 - w[0].1 <= 1, "{w:?}");
        }
    }

    #[test]
    #[should_panic(expected = "CostGrid::from_matrix: 5 values for a 2 x 3 matrix")]
    fn from_matrix_rejects_a_wrong_size() {
        CostGrid::from_matrix(&[0.0; 5], 2, 3, 10, 10);
    }

    #[test]
    #[should_panic(expected = "at least one block per side, got 0 x 4")]
    fn zero_blocks_panic() {
        CostGrid::from_matrix(&[0.0; 6], 2, 3, 0, 4);
    }
}
