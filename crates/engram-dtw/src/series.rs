//! A borrowed view of a univariate or multivariate series, and the checks every entry point runs.

use crate::error::{Error, Result};
use crate::float::Float;

/// A borrowed time series: `len()` points of `dim()` values each, stored row-major in `data`
/// (point `i` is `data[i * dim..(i + 1) * dim]`).
///
/// Univariate series convert from slices, vectors and arrays (`Series::from(&x)`); multivariate
/// ones are built with [`Series::new`], which rejects ragged data. The view does not check the
/// values: the DTW functions do, and report the first NaN or infinity they find.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Series<'a, T> {
    data: &'a [T],
    dim: usize,
}

impl<'a, T> Series<'a, T> {
    /// A series of points of dimension `dim` from flat row-major data.
    ///
    /// # Errors
    /// [`Error::Ragged`] when `data.len()` is not a multiple of `dim`.
    ///
    /// # Panics
    /// When `dim` is 0.
    pub fn new(data: &'a [T], dim: usize) -> Result<Self> {
        assert!(dim > 0, "Series::new: dim must be at least 1, got 0");
        if !data.len().is_multiple_of(dim) {
            return Err(Error::Ragged { len: data.len(), dim });
        }
        Ok(Self { data, dim })
    }

    /// A univariate series (dimension 1).
    pub fn univariate(data: &'a [T]) -> Self {
        Self { data, dim: 1 }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether the series has no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of each point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The flat row-major data.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Point `i` as a slice of `dim()` values.
    ///
    /// # Panics
    /// When `i >= len()`.
    #[inline(always)]
    pub fn point(&self, i: usize) -> &'a [T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

impl<'a, T> From<&'a [T]> for Series<'a, T> {
    fn from(data: &'a [T]) -> Self {
        Self::univariate(data)
    }
}

impl<'a, T> From<&'a Vec<T>> for Series<'a, T> {
    fn from(data: &'a Vec<T>) -> Self {
        Self::univariate(data)
    }
}

impl<'a, T, const N: usize> From<&'a [T; N]> for Series<'a, T> {
    fn from(data: &'a [T; N]) -> Self {
        Self::univariate(data)
    }
}

/// Checks that a series is non-empty and finite.
pub(crate) fn check_series<T: Float>(
    series: Series<'_, T>,
    which: &dyn Fn() -> String,
) -> Result<()> {
    check_values(series.data(), which)
}

/// Checks that a slice is non-empty and finite.
pub(crate) fn check_values<T: Float>(data: &[T], which: &dyn Fn() -> String) -> Result<()> {
    if data.is_empty() {
        return Err(Error::Empty { which: which() });
    }
    // `x * 0` is 0 for finite x and NaN for NaN or ±inf, so the sum is finite iff every value
    // is; it vectorises, and the search for the index only runs when something is wrong.
    let mut sum = T::ZERO;
    for &x in data {
        sum += x * T::ZERO;
    }
    if sum.is_finite() {
        return Ok(());
    }
    let index = data.iter().position(|x| !x.is_finite()).unwrap_or(0);
    Err(Error::NonFinite { which: which(), index, value: data[index].to_f64() })
}

/// Checks two series for a pairwise comparison: both non-empty and finite, same dimension.
pub(crate) fn check_pair<T: Float>(a: Series<'_, T>, b: Series<'_, T>) -> Result<()> {
    check_series(a, &|| "first series".to_string())?;
    check_series(b, &|| "second series".to_string())?;
    check_dims(a, b, &|| "first series".to_string(), &|| "second series".to_string())
}

/// Checks that two series have the same dimension.
pub(crate) fn check_dims<T>(
    a: Series<'_, T>,
    b: Series<'_, T>,
    which_a: &dyn Fn() -> String,
    which_b: &dyn Fn() -> String,
) -> Result<()> {
    if a.dim() != b.dim() {
        return Err(Error::DimensionMismatch {
            which_a: which_a(),
            dim_a: a.dim(),
            which_b: which_b(),
            dim_b: b.dim(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_data_is_rejected_with_its_length() {
        let data = [1.0_f64; 7];
        assert_eq!(Series::new(&data, 3), Err(Error::Ragged { len: 7, dim: 3 }));
        let s = Series::new(&data[..6], 3).unwrap();
        assert_eq!((s.len(), s.dim()), (2, 3));
        assert_eq!(s.point(1), &[1.0, 1.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "Series::new: dim must be at least 1")]
    fn zero_dimension_panics() {
        let _ = Series::new(&[1.0_f64], 0);
    }

    #[test]
    fn non_finite_values_are_reported_with_their_index() {
        let data = [0.0_f32, 1.0, f32::NAN, f32::INFINITY];
        let err = check_values(&data, &|| "query".to_string()).unwrap_err();
        match err {
            Error::NonFinite { which, index, value } => {
                assert_eq!((which.as_str(), index), ("query", 2));
                assert!(value.is_nan());
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = check_values::<f64>(&[], &|| "query".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "query is empty");
    }

    #[test]
    fn large_finite_values_pass() {
        check_values(&[f64::MAX, f64::MAX], &|| "x".to_string()).unwrap();
    }
}
