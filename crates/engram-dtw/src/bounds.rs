//! Lower bounds of DTW for pruning: LB_Kim (first and last points) and LB_Keogh (envelopes).

use std::collections::VecDeque;

use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::series::check_values;

/// The running minimum and maximum of a series over a window of `radius` points on each side:
/// `lower[i] = min(x[i - r ..= i + r])`, `upper[i] = max(...)`, clipped to the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<T> {
    /// Running minimum.
    pub lower: Vec<T>,
    /// Running maximum.
    pub upper: Vec<T>,
}

/// The envelope of `x` for a Sakoe-Chiba band of `radius`, in `O(len)` time with Lemire's
/// streaming min/max (two monotonic deques).
pub fn envelope<T: Float>(x: &[T], radius: usize) -> Envelope<T> {
    let n = x.len();
    let (mut lower, mut upper) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    // Deques of indices whose values increase (for the minimum) or decrease (for the maximum)
    // from front to back; the front is the extremum of the current window.
    let (mut lo_q, mut hi_q) = (VecDeque::<usize>::new(), VecDeque::<usize>::new());
    for right in 0..n + radius {
        if right < n {
            while lo_q.back().is_some_and(|&k| x[k] >= x[right]) {
                lo_q.pop_back();
            }
            lo_q.push_back(right);
            while hi_q.back().is_some_and(|&k| x[k] <= x[right]) {
                hi_q.pop_back();
            }
            hi_q.push_back(right);
        }
        let Some(center) = right.checked_sub(radius) else { continue };
        let first = center.saturating_sub(radius);
        while lo_q.front().is_some_and(|&k| k < first) {
            lo_q.pop_front();
        }
        while hi_q.front().is_some_and(|&k| k < first) {
            hi_q.pop_front();
        }
        // Both deques hold at least `center`'s window maximum/minimum: `center <= right` was
        // pushed and is only removed by a later, more extreme value inside the window.
        if let (Some(&lo), Some(&hi)) = (lo_q.front(), hi_q.front()) {
            lower[center] = x[lo];
            upper[center] = x[hi];
        }
    }
    Envelope { lower, upper }
}

/// LB_Kim in the UCR suite's hierarchical form: a lower bound of the DTW cost of univariate
/// `a` and `b` under any window, from at most the first three and last three points of each.
///
/// Every warping path visits each "layer" `max(i, j) = p` at the front and each layer
/// `max(n-1-i, m-1-j) = q` at the back; summing the cheapest cell of layers `p, q = 0, 1, 2`
/// bounds the path's cost when those layers share no cell. This uses as many layers as the
/// lengths keep disjoint (three when the longer series has at least 6 points, down to the
/// first and last cells only), for every cost (costs are never negative). The UCR suite
/// applies the same to z-normalised series with the squared cost.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`].
pub fn lb_kim<T: Float>(a: &[T], b: &[T], cost: Cost) -> Result<T> {
    check_values(a, &|| "first series".into())?;
    check_values(b, &|| "second series".into())?;
    Ok(kim(a.len(), b.len(), |i| a[i], |j| b[j], cost, T::INFINITY))
}

/// LB_Kim on element accessors; stops adding layers once the sum exceeds `bound`.
#[inline]
pub(crate) fn kim<T: Float>(
    n: usize,
    m: usize,
    a: impl Fn(usize) -> T,
    b: impl Fn(usize) -> T,
    cost: Cost,
    bound: T,
) -> T {
    let c = |i: usize, j: usize| cost.scalar(a(i), b(j));
    let longer = n.max(m);
    if longer == 1 {
        return c(0, 0);
    }
    let layers = ((longer - 2) / 2).min(2);
    let mut sum = T::ZERO;
    for p in 0..=layers {
        // Front layer p: cells with max(i, j) = p; back layer: the mirror image.
        let mut front = T::INFINITY;
        let mut back = T::INFINITY;
        for k in 0..=p {
            if p < n && k < m {
                front = front.min2(c(p, k));
                back = back.min2(c(n - 1 - p, m - 1 - k));
            }
            if k < p && k < n && p < m {
                front = front.min2(c(k, p));
                back = back.min2(c(n - 1 - k, m - 1 - p));
            }
        }
        sum += front + back;
        if sum > bound {
            break;
        }
    }
    sum
}

/// LB_Keogh: a lower bound of the DTW cost between `series` and the series whose `envelope`
/// (of radius `r`) is given, under a Sakoe-Chiba band of radius `r` on equal lengths:
/// `Σ_i cost(x_i, upper_i)` where `x_i > upper_i`, `cost(x_i, lower_i)` where `x_i < lower_i`.
///
/// Every point of `series` must be matched within `r` of its own index, and no such point of
/// the other series is outside `[lower_i, upper_i]`. Swapping the roles (the other series
/// against `series`' envelope) gives a second, different bound; the search uses both.
///
/// ```
/// use engram_dtw::{Cost, DtwOptions, Window, dtw_cost, envelope, lb_keogh};
///
/// let (q, c) = ([0.0, 1.0, 3.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0, 5.0]);
/// let lb = lb_keogh(&c, &envelope(&q, 1), Cost::SquaredEuclidean).unwrap();
/// let band = DtwOptions::default().with_window(Window::SakoeChiba { radius: 1 });
/// assert!(lb <= dtw_cost(&q, &c, &band).unwrap());
/// ```
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::LengthMismatch`] when the series and the
/// envelope differ in length, [`Error::UnsupportedCost`] for the cosine cost.
pub fn lb_keogh<T: Float>(series: &[T], envelope: &Envelope<T>, cost: Cost) -> Result<T> {
    check_values(series, &|| "series".into())?;
    if series.len() != envelope.upper.len() || series.len() != envelope.lower.len() {
        return Err(Error::LengthMismatch {
            what: "lb_keogh series and envelope",
            left: series.len(),
            right: envelope.upper.len(),
        });
    }
    if !cost.is_difference_based() {
        return Err(Error::UnsupportedCost { op: "lb_keogh", cost });
    }
    let mut sum = T::ZERO;
    for ((&x, &lo), &hi) in series.iter().zip(&envelope.lower).zip(&envelope.upper) {
        sum += keogh_term(x, lo, hi, cost);
    }
    Ok(sum)
}

/// One LB_Keogh term: the cost from `x` to the interval `[lo, hi]`.
#[inline(always)]
pub(crate) fn keogh_term<T: Float>(x: T, lo: T, hi: T, cost: Cost) -> T {
    if x > hi {
        cost.scalar(x, hi)
    } else if x < lo {
        cost.scalar(x, lo)
    } else {
        T::ZERO
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::reference::Rng;
    use crate::{DtwOptions, Window, dtw_cost};

    #[test]
    fn envelope_matches_a_direct_window_scan() {
        let mut rng = Rng::new(9);
        for _ in 0..50 {
            let n = 1 + rng.below(40);
            let r = rng.below(8);
            let x = rng.series(n);
            let env = envelope(&x, r);
            for i in 0..n {
                let w = &x[i.saturating_sub(r)..(i + r + 1).min(n)];
                assert_eq!(env.lower[i], w.iter().copied().fold(f64::INFINITY, f64::min));
                assert_eq!(env.upper[i], w.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            }
        }
    }

    #[test]
    fn lb_keogh_errors_name_the_lengths_and_the_cost() {
        let env = envelope(&[1.0, 2.0, 3.0], 1);
        assert_eq!(
            lb_keogh(&[1.0, 2.0], &env, Cost::Absolute),
            Err(Error::LengthMismatch { what: "lb_keogh series and envelope", left: 2, right: 3 })
        );
        assert_eq!(
            lb_keogh(&[1.0, 2.0, 3.0], &env, Cost::Cosine),
            Err(Error::UnsupportedCost { op: "lb_keogh", cost: Cost::Cosine })
        );
    }

    #[test]
    fn lb_kim_of_single_points_is_their_cost() {
        assert_eq!(lb_kim(&[1.0], &[3.0], Cost::SquaredEuclidean), Ok(4.0));
        assert_eq!(lb_kim(&[1.0, 5.0], &[3.0], Cost::Absolute), Ok(4.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(31), ..ProptestConfig::default() })]

        #[test]
        fn lower_bounds_never_exceed_dtw(
            len in 1usize..30,
            m in 1usize..30,
            r in 0usize..6,
            seed in 0u64..1000,
        ) {
            let mut rng = Rng::new(seed);
            let (q, c, other) = (rng.series(len), rng.series(len), rng.series(m));
            for cost in [Cost::SquaredEuclidean, Cost::Absolute, Cost::Euclidean] {
                let band = DtwOptions { cost, window: Window::SakoeChiba { radius: r } };
                let dtw = dtw_cost(&q, &c, &band).unwrap();
                let tol = 1e-12 * (1.0 + dtw);
                prop_assert!(lb_keogh(&c, &envelope(&q, r), cost).unwrap() <= dtw + tol);
                prop_assert!(lb_keogh(&q, &envelope(&c, r), cost).unwrap() <= dtw + tol);
                prop_assert!(lb_kim(&q, &c, cost).unwrap() <= dtw + tol);
                let full = DtwOptions { cost, window: Window::Full };
                let dtw = dtw_cost(&q, &other, &full).unwrap();
                prop_assert!(lb_kim(&q, &other, cost).unwrap() <= dtw + 1e-12 * (1.0 + dtw));
            }
        }
    }
}
