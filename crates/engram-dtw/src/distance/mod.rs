//! DTW between two series: the options, the value conventions, and the choice of kernel.
//!
//! # Conventions
//! The *cost* ([`dtw_cost`]) is the sum of local costs along the best warping path. The
//! *distance* ([`dtw_distance`]) is its square root for [`Cost::SquaredEuclidean`] and the cost
//! itself for every other local cost. With the default options:
//!
//! | library | its value | engram-dtw |
//! |---|---|---|
//! | dtaidistance `dtw.distance(a, b)` | sqrt of summed squared differences | [`dtw_distance`] |
//! | tslearn `dtw(a, b)` | same | [`dtw_distance`] |
//! | aeon `dtw_distance(a, b)` | summed squared differences, no root | [`dtw_cost`] |
//!
//! Windows compare as: dtaidistance `window=r + 1` = tslearn `sakoe_chiba_radius=r` =
//! [`Window::SakoeChiba`]` { radius: r }` (see there for unequal lengths).

mod diagonal;
mod rows;

use crate::cost::{self, Cost};
use crate::error::Result;
use crate::float::Float;
use crate::series::{Series, check_pair};
use crate::window::{Band, Window};

pub(crate) use rows::rows_cost;

/// What DTW compares: the local cost and the window. `Default` is squared Euclidean cost and
/// no window, the setting of dtaidistance's and tslearn's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DtwOptions {
    /// Local cost between two points.
    pub cost: Cost,
    /// Global constraint on the warping path.
    pub window: Window,
}

impl DtwOptions {
    /// Squared Euclidean cost, no window.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same options with another local cost.
    pub fn with_cost(self, cost: Cost) -> Self {
        Self { cost, ..self }
    }

    /// The same options with another window.
    pub fn with_window(self, window: Window) -> Self {
        Self { window, ..self }
    }

    /// Converts a cost (sum of local costs) to this option's distance convention: the square
    /// root for the squared Euclidean cost, unchanged otherwise.
    pub fn cost_to_distance<T: Float>(&self, cost: T) -> T {
        match self.cost {
            Cost::SquaredEuclidean => cost.sqrt(),
            _ => cost,
        }
    }
}

/// The DTW cost: the sum of local costs along the best warping path (aeon's `dtw_distance`).
///
/// Runs in `O(min(n, m))` memory (`O(m)` for an Itakura window, `m = b`'s length). Univariate series with the
/// squared Euclidean, Euclidean or absolute cost take the SIMD anti-diagonal kernel.
///
/// # Errors
/// [`Error::Empty`](crate::Error::Empty), [`Error::NonFinite`](crate::Error::NonFinite),
/// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch), and the window's errors
/// ([`Error::Unreachable`](crate::Error::Unreachable),
/// [`Error::InvalidSlope`](crate::Error::InvalidSlope)).
pub fn dtw_cost<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    options: &DtwOptions,
) -> Result<T> {
    let (a, b) = (a.into(), b.into());
    check_pair(a, b)?;
    let band = Band::new(&options.window, a.len(), b.len())?;
    Ok(cost_checked(a, b, options, &band, T::INFINITY).unwrap_or(T::INFINITY))
}

/// The DTW distance in dtaidistance's and tslearn's convention: `sqrt` of [`dtw_cost`] for the
/// squared Euclidean cost, [`dtw_cost`] itself for the other costs.
///
/// ```
/// use engram_dtw::{DtwOptions, Window, dtw_distance};
///
/// let a = [0.0, 1.0, 2.0, 1.0, 0.0];
/// let b = [0.0, 0.0, 1.0, 2.0, 1.0];
/// let full = dtw_distance(&a, &b, &DtwOptions::default()).unwrap();
/// assert_eq!(full, 1.0); // only a[4] = 0 against b[4] = 1 is left unmatched
/// let euclidean = DtwOptions::default().with_window(Window::SakoeChiba { radius: 0 });
/// assert_eq!(dtw_distance(&a, &b, &euclidean).unwrap(), 2.0); // sqrt(0 + 1 + 1 + 1 + 1)
/// ```
///
/// # Errors
/// As [`dtw_cost`].
pub fn dtw_distance<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    options: &DtwOptions,
) -> Result<T> {
    Ok(options.cost_to_distance(dtw_cost(a, b, options)?))
}

/// [`dtw_cost`] with early abandoning: `Ok(Some(cost))` when `cost <= bound`, `Ok(None)` when
/// the cost exceeds `bound`, often found long before the end (as soon as every cell of a row —
/// of two consecutive anti-diagonals in the fast kernel — exceeds the bound; costs are never
/// negative, so the path cannot get cheaper). `bound` is on the cost scale: square a
/// best-so-far *distance* first.
///
/// # Errors
/// As [`dtw_cost`].
pub fn dtw_cost_bounded<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    options: &DtwOptions,
    bound: T,
) -> Result<Option<T>> {
    let (a, b) = (a.into(), b.into());
    check_pair(a, b)?;
    let band = Band::new(&options.window, a.len(), b.len())?;
    Ok(cost_checked(a, b, options, &band, bound))
}

/// The kernel choice, for series already checked and a band resolved for `(a.len(), b.len())`.
pub(crate) fn cost_checked<T: Float>(
    a: Series<'_, T>,
    b: Series<'_, T>,
    options: &DtwOptions,
    band: &Band,
    bound: T,
) -> Option<T> {
    // Full and Sakoe-Chiba windows are symmetric under swapping the series, and every cost is
    // symmetric: putting the shorter series on the columns, where both kernels keep their
    // buffers, gives O(min(n, m)) memory. Itakura bands are symmetric too but resolved with a tolerance, so
    // they keep the caller's orientation.
    let symmetric = !matches!(options.window, Window::Itakura { .. });
    if a.dim() == 1 && options.cost.is_difference_based() {
        let abs = options.cost != Cost::SquaredEuclidean;
        // The strip kernel keeps O(columns) memory: put the longer series on the rows.
        if symmetric && a.len() < b.len() {
            let band = Band::new(&options.window, b.len(), a.len()).ok()?;
            return diagonal::diagonal_cost(b.data(), a.data(), &band, abs, bound);
        }
        return diagonal::diagonal_cost(a.data(), b.data(), band, abs, bound);
    }
    if symmetric && a.len() < b.len() {
        let band = Band::new(&options.window, b.len(), a.len()).ok()?;
        return rows_general(b, a, options.cost, &band, bound);
    }
    rows_general(a, b, options.cost, band, bound)
}

/// The row kernel with the local cost resolved once, outside the loops.
pub(crate) fn rows_general<T: Float>(
    a: Series<'_, T>,
    b: Series<'_, T>,
    cost: Cost,
    band: &Band,
    bound: T,
) -> Option<T> {
    let (n, m) = (a.len(), b.len());
    let none = |_| T::ZERO;
    if a.dim() == 1 {
        let (x, y) = (a.data(), b.data());
        return match cost {
            Cost::SquaredEuclidean => {
                rows_cost(n, m, band, |i, j| cost::squared(&x[i..=i], &y[j..=j]), bound, none)
            }
            Cost::Euclidean | Cost::Absolute => {
                rows_cost(n, m, band, |i, j| (x[i] - y[j]).abs(), bound, none)
            }
            Cost::Cosine => {
                rows_cost(n, m, band, |i, j| cost::cosine(&x[i..=i], &y[j..=j]), bound, none)
            }
        };
    }
    match cost {
        Cost::SquaredEuclidean => {
            rows_cost(n, m, band, |i, j| cost::squared(a.point(i), b.point(j)), bound, none)
        }
        Cost::Euclidean => {
            rows_cost(n, m, band, |i, j| cost::squared(a.point(i), b.point(j)).sqrt(), bound, none)
        }
        Cost::Absolute => {
            rows_cost(n, m, band, |i, j| cost::absolute(a.point(i), b.point(j)), bound, none)
        }
        Cost::Cosine => {
            rows_cost(n, m, band, |i, j| cost::cosine(a.point(i), b.point(j)), bound, none)
        }
    }
}

#[cfg(test)]
mod tests;
