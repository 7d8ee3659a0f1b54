//! Distance matrices: all pairs of one collection (upper triangle, mirrored) or of two, in
//! parallel with rayon.

use rayon::prelude::*;

use crate::distance::{DtwOptions, cost_checked};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::series::{Series, check_dims, check_series};
use crate::window::Band;

/// A dense row-major matrix of DTW distances.
#[derive(Debug, Clone, PartialEq)]
pub struct DistanceMatrix<T> {
    rows: usize,
    cols: usize,
    values: Vec<T>,
}

impl<T: Float> DistanceMatrix<T> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The distance between row series `i` and column series `j`.
    ///
    /// # Panics
    /// When `i` or `j` is out of range.
    pub fn get(&self, i: usize, j: usize) -> T {
        assert!(
            i < self.rows && j < self.cols,
            "DistanceMatrix::get: ({i}, {j}) outside a {} x {} matrix",
            self.rows,
            self.cols
        );
        self.values[i * self.cols + j]
    }

    /// The values, row-major.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The values, row-major, by value.
    pub fn into_values(self) -> Vec<T> {
        self.values
    }
}

/// The symmetric matrix of [`dtw_distance`](crate::dtw_distance)s between all pairs of
/// `series`: the upper triangle is computed (in parallel over rows) and mirrored, the diagonal
/// is 0. This is dtaidistance's `distance_matrix_fast` with its default conventions.
///
/// `threads`: `None` runs on rayon's global pool (as many threads as cores, or
/// `RAYON_NUM_THREADS`); `Some(t)` builds a pool of `t` threads for this call.
///
/// # Errors
/// [`Error::Empty`] for no series or an empty one, [`Error::NonFinite`],
/// [`Error::DimensionMismatch`] (against series 0), the window's errors, and
/// [`Error::ThreadPool`].
///
/// # Panics
/// When `threads` is `Some(0)`.
pub fn distance_matrix<T: Float>(
    series: &[Series<'_, T>],
    options: &DtwOptions,
    threads: Option<usize>,
) -> Result<DistanceMatrix<T>> {
    check_collection(series, "series")?;
    let n = series.len();
    let upper = with_threads(threads, || {
        (0..n)
            .into_par_iter()
            .map(|i| (i + 1..n).map(|j| pair_distance(series[i], series[j], options)).collect())
            .collect::<Result<Vec<Vec<T>>>>()
    })??;
    let mut values = vec![T::ZERO; n * n];
    for (i, row) in upper.into_iter().enumerate() {
        for (offset, d) in row.into_iter().enumerate() {
            let j = i + 1 + offset;
            values[i * n + j] = d;
            values[j * n + i] = d;
        }
    }
    Ok(DistanceMatrix { rows: n, cols: n, values })
}

/// The `rows.len() × cols.len()` matrix of [`dtw_distance`](crate::dtw_distance)s between every
/// series of `rows` and every series of `cols`, in parallel over rows.
///
/// # Errors
/// As [`distance_matrix`]; dimensions are checked against `rows[0]`.
///
/// # Panics
/// When `threads` is `Some(0)`.
pub fn cross_distance_matrix<T: Float>(
    rows: &[Series<'_, T>],
    cols: &[Series<'_, T>],
    options: &DtwOptions,
    threads: Option<usize>,
) -> Result<DistanceMatrix<T>> {
    check_collection(rows, "row series")?;
    check_collection(cols, "column series")?;
    check_dims(rows[0], cols[0], &|| "row series 0".into(), &|| "column series 0".into())?;
    let values = with_threads(threads, || {
        rows.par_iter()
            .map(|&a| cols.iter().map(|&b| pair_distance(a, b, options)).collect())
            .collect::<Result<Vec<Vec<T>>>>()
    })??;
    Ok(DistanceMatrix { rows: rows.len(), cols: cols.len(), values: values.concat() })
}

/// The distance of two checked series.
pub(crate) fn pair_distance<T: Float>(
    a: Series<'_, T>,
    b: Series<'_, T>,
    options: &DtwOptions,
) -> Result<T> {
    let band = Band::new(&options.window, a.len(), b.len())?;
    let cost = cost_checked(a, b, options, &band, T::INFINITY).unwrap_or(T::INFINITY);
    Ok(options.cost_to_distance(cost))
}

/// Checks a non-empty collection of non-empty, finite series of one dimension.
pub(crate) fn check_collection<T: Float>(series: &[Series<'_, T>], what: &str) -> Result<()> {
    let Some(&first) = series.first() else {
        return Err(Error::Empty { which: format!("the collection of {what}") });
    };
    for (i, &s) in series.iter().enumerate() {
        check_series(s, &|| format!("{what} {i}"))?;
        check_dims(first, s, &|| format!("{what} 0"), &|| format!("{what} {i}"))?;
    }
    Ok(())
}

/// Runs `op` on rayon's global pool (`None`) or on a new pool of `threads` threads.
///
/// # Panics
/// When `threads` is `Some(0)`.
pub(crate) fn with_threads<R: Send>(
    threads: Option<usize>,
    op: impl FnOnce() -> R + Send,
) -> Result<R> {
    match threads {
        None => Ok(op()),
        Some(threads) => {
            assert!(threads > 0, "engram-dtw: threads must be at least 1, got 0");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|err| Error::ThreadPool { threads, message: err.to_string() })?;
            Ok(pool.install(op))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Rng, assert_close};
    use crate::{Window, dtw_distance};

    #[test]
    fn pairwise_matrix_is_symmetric_and_matches_single_pairs() {
        let mut rng = Rng::new(5);
        let data: Vec<Vec<f64>> = (0..7).map(|i| rng.walk(10 + i)).collect();
        let series: Vec<Series<'_, f64>> = data.iter().map(Series::from).collect();
        let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 3 });
        for threads in [None, Some(1), Some(2)] {
            let d = distance_matrix(&series, &options, threads).unwrap();
            for i in 0..7 {
                assert_eq!(d.get(i, i), 0.0);
                for j in 0..7 {
                    assert_eq!(d.get(i, j), d.get(j, i));
                    let single = dtw_distance(series[i], series[j], &options).unwrap();
                    assert_close(d.get(i, j), single, 1e-12, "pairwise");
                }
            }
        }
    }

    #[test]
    fn cross_matrix_matches_single_pairs() {
        let mut rng = Rng::new(6);
        let rows: Vec<Vec<f64>> = (0..3).map(|_| rng.walk(12)).collect();
        let cols: Vec<Vec<f64>> = (0..4).map(|_| rng.walk(9)).collect();
        let (r, c): (Vec<_>, Vec<_>) =
            (rows.iter().map(Series::from).collect(), cols.iter().map(Series::from).collect());
        let d = cross_distance_matrix(&r, &c, &DtwOptions::default(), Some(2)).unwrap();
        assert_eq!((d.rows(), d.cols()), (3, 4));
        for (i, &row) in r.iter().enumerate() {
            for (j, &col) in c.iter().enumerate() {
                assert_eq!(d.get(i, j), dtw_distance(row, col, &DtwOptions::default()).unwrap());
            }
        }
    }

    #[test]
    fn bad_series_in_a_collection_are_named() {
        let (a, b) = (vec![1.0, 2.0], vec![1.0, f64::NAN]);
        let series = [Series::from(&a), Series::from(&b)];
        let err = distance_matrix(&series, &DtwOptions::default(), None).unwrap_err();
        assert!(
            matches!(err, Error::NonFinite { ref which, index: 1, .. } if which == "series 1"),
            "{err}"
        );
        let none: [Series<'_, f64>; 0] = [];
        assert!(matches!(
            distance_matrix(&none, &DtwOptions::default(), None),
            Err(Error::Empty { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "threads must be at least 1")]
    fn zero_threads_panics() {
        let a = vec![1.0_f64];
        let _ = distance_matrix(&[Series::from(&a)], &DtwOptions::default(), Some(0));
    }
}
