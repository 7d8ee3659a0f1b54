//! Local costs between two points: squared Euclidean, Euclidean, absolute (L1), cosine.

use crate::float::Float;

/// The local cost of matching point `x` of one series with point `y` of the other.
///
/// DTW's value is the sum of local costs along the best warping path (see
/// [`dtw_cost`](crate::dtw_cost) and [`dtw_distance`](crate::dtw_distance) for the conventions
/// the other libraries use). For univariate series `Euclidean` and `Absolute` coincide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Cost {
    /// `Σ_k (x_k - y_k)²`: dtaidistance, tslearn and aeon use it; the default.
    #[default]
    SquaredEuclidean,
    /// `sqrt(Σ_k (x_k - y_k)²)`.
    Euclidean,
    /// `Σ_k |x_k - y_k|` (L1, Manhattan).
    Absolute,
    /// `1 - x·y / (|x| |y|)`, clamped to `[0, 2]`. A zero vector has no direction: its cost is 0
    /// against another zero vector and 1 (as if orthogonal) against anything else.
    Cosine,
}

impl Cost {
    /// The cost between two points of the same dimension.
    ///
    /// # Panics
    /// When the points have different lengths.
    #[inline]
    pub fn local<T: Float>(self, x: &[T], y: &[T]) -> T {
        assert_eq!(
            x.len(),
            y.len(),
            "Cost::local: points of different dimensions {} and {}",
            x.len(),
            y.len()
        );
        match self {
            Cost::SquaredEuclidean => squared(x, y),
            Cost::Euclidean => squared(x, y).sqrt(),
            Cost::Absolute => absolute(x, y),
            Cost::Cosine => cosine(x, y),
        }
    }

    /// Whether the cost of two scalars only depends on `|x - y|` and grows with it, which the
    /// lower bounds (LB_Kim, LB_Keogh) and the univariate fast kernel need.
    pub(crate) fn is_difference_based(self) -> bool {
        !matches!(self, Cost::Cosine)
    }

    /// The univariate cost of two scalars, for difference-based costs.
    #[inline(always)]
    pub(crate) fn scalar<T: Float>(self, x: T, y: T) -> T {
        let d = x - y;
        match self {
            Cost::SquaredEuclidean => d * d,
            Cost::Euclidean | Cost::Absolute => d.abs(),
            Cost::Cosine => cosine(&[x], &[y]),
        }
    }
}

#[inline(always)]
pub(crate) fn squared<T: Float>(x: &[T], y: &[T]) -> T {
    let mut s = T::ZERO;
    for (&a, &b) in x.iter().zip(y) {
        let d = a - b;
        s += d * d;
    }
    s
}

#[inline(always)]
pub(crate) fn absolute<T: Float>(x: &[T], y: &[T]) -> T {
    let mut s = T::ZERO;
    for (&a, &b) in x.iter().zip(y) {
        s += (a - b).abs();
    }
    s
}

#[inline(always)]
pub(crate) fn cosine<T: Float>(x: &[T], y: &[T]) -> T {
    let (mut xy, mut xx, mut yy) = (T::ZERO, T::ZERO, T::ZERO);
    for (&a, &b) in x.iter().zip(y) {
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx == T::ZERO || yy == T::ZERO {
        return if xx == yy { T::ZERO } else { T::ONE };
    }
    // Rounding can push the cosine a hair past ±1; clamping keeps every cost non-negative,
    // which early abandoning relies on.
    let c = T::ONE - xy / (xx * yy).sqrt();
    c.max2(T::ZERO).min2(T::ONE + T::ONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_match_hand_computed_values() {
        let (x, y) = ([1.0_f64, 2.0], [4.0_f64, -2.0]);
        assert_eq!(Cost::SquaredEuclidean.local(&x, &y), 25.0);
        assert_eq!(Cost::Euclidean.local(&x, &y), 5.0);
        assert_eq!(Cost::Absolute.local(&x, &y), 7.0);
        // cos = (4 - 4) / (...) = 0
        assert_eq!(Cost::Cosine.local(&x, &y), 1.0);
        assert_eq!(Cost::Cosine.local(&x, &[2.0, 4.0]), 0.0);
        assert_eq!(Cost::Cosine.local(&[0.3_f64, -1.7], &[0.3, -1.7]), 0.0);
        assert!((Cost::Cosine.local(&x, &[-1.0, -2.0]) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn cosine_of_zero_vectors_is_defined() {
        assert_eq!(Cost::Cosine.local(&[0.0_f32, 0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(Cost::Cosine.local(&[0.0_f32, 0.0], &[1.0, 0.0]), 1.0);
    }

    #[test]
    #[should_panic(expected = "Cost::local: points of different dimensions 2 and 1")]
    fn local_cost_of_mismatched_points_panics() {
        Cost::Absolute.local(&[1.0_f64, 2.0], &[1.0]);
    }
}
