//! z-normalisation: zero mean, unit (population) standard deviation.

use crate::float::Float;

/// z-normalises `x` in place: `(x - mean) / std`, with the population standard deviation
/// (divide by `len`, as the UCR suite, tslearn and aeon do). A constant series (every value
/// equal) becomes all zeros rather than NaN; an empty slice is left alone.
///
/// Mean and deviation are accumulated in f64 in two passes, so f32 input loses nothing to
/// cancellation.
///
/// ```
/// let mut x = [1.0_f32, 2.0, 3.0];
/// engram_dtw::znormalize(&mut x);
/// assert!((x[0] + 1.2247449).abs() < 1e-6 && x[1] == 0.0);
/// let mut flat = [5.0_f64; 4];
/// engram_dtw::znormalize(&mut flat);
/// assert_eq!(flat, [0.0; 4]);
/// ```
pub fn znormalize<T: Float>(x: &mut [T]) {
    let Some(&first) = x.first() else { return };
    if x.iter().all(|&v| v == first) {
        x.fill(T::ZERO);
        return;
    }
    let (mean, std) = mean_std(x);
    for v in x.iter_mut() {
        *v = T::from_f64((v.to_f64() - mean) / std);
    }
}

/// A z-normalised copy of `x` (see [`znormalize`]).
pub fn znormalized<T: Float>(x: &[T]) -> Vec<T> {
    let mut out = x.to_vec();
    znormalize(&mut out);
    out
}

/// Mean and population standard deviation, two-pass in f64.
pub(crate) fn mean_std<T: Float>(x: &[T]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|v| v.to_f64()).sum::<f64>() / n;
    let var = x.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Rng, assert_close};

    #[test]
    fn normalised_series_has_zero_mean_and_unit_std() {
        let x = Rng::new(1).walk(100);
        let z = znormalized(&x);
        let (mean, std) = mean_std(&z);
        assert_close(mean, 0.0, 1e-12, "mean");
        assert_close(std, 1.0, 1e-12, "std");
    }

    #[test]
    fn constant_and_empty_series_give_zeros_not_nan() {
        assert_eq!(znormalized(&[0.1_f64; 7]), vec![0.0; 7]);
        assert_eq!(znormalized(&[3.0_f32]), vec![0.0]);
        assert!(znormalized::<f64>(&[]).is_empty());
    }
}
