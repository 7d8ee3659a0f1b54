//! 1-nearest-neighbour classification under DTW, with the warping window learned by
//! leave-one-out cross-validation as in the UCR archive's "DTW (learned w)" baseline.

use crate::cost::Cost;
use crate::distance::DtwOptions;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::matrix::{DistanceMatrix, cross_distance_matrix, distance_matrix};
use crate::series::Series;
use crate::window::{Window, percent_radius};

/// The outcome of [`select_window`].
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSelection {
    /// The chosen window, in percent of the longest training series.
    pub percent: u32,
    /// The Sakoe-Chiba radius it stands for: `ceil(percent * len / 100)` ([`Window::percent`]).
    pub radius: usize,
    /// Its leave-one-out error rate on the training set.
    pub error: f64,
    /// Every tried `(percent, leave-one-out error)`, in increasing percent.
    pub errors: Vec<(u32, f64)>,
}

impl WindowSelection {
    /// The window to classify with.
    pub fn window(&self) -> Window {
        Window::SakoeChiba { radius: self.radius }
    }
}

/// Learns the Sakoe-Chiba window for 1-NN DTW by leave-one-out cross-validation on the
/// training set: for each window in `percents` (percent of the longest training series,
/// radius `ceil(percent * len / 100)` ([`Window::percent`]); the UCR archive tries `0..=100`), classify each training
/// series by its nearest other training series and count the mistakes. The window with the
/// fewest wins; ties go to the smaller window. Percents whose radii coincide (short series, or
/// radii past the full window) are computed once.
///
/// Nearest-neighbour ties go to the lower index, in the cross-validation as in
/// [`classify_1nn`].
///
/// # Errors
/// [`Error::Empty`] for an empty grid, [`Error::InvalidPercent`],
/// [`Error::TooFewSeries`] for fewer than two training series, [`Error::LengthMismatch`]
/// between series and labels, and the errors of [`distance_matrix`].
///
/// # Panics
/// When `threads` is `Some(0)`.
pub fn select_window<T: Float, L: PartialEq>(
    train: &[Series<'_, T>],
    labels: &[L],
    cost: Cost,
    percents: &[u32],
    threads: Option<usize>,
) -> Result<WindowSelection> {
    if percents.is_empty() {
        return Err(Error::Empty { which: "the window grid".into() });
    }
    if train.len() < 2 {
        return Err(Error::TooFewSeries { op: "select_window", needed: 2, got: train.len() });
    }
    check_labels(train.len(), labels, "training series and labels")?;
    let longest = train.iter().map(Series::len).max().unwrap_or(0);
    let mut percents = percents.to_vec();
    percents.sort_unstable();
    percents.dedup();
    let mut errors = Vec::with_capacity(percents.len());
    let mut cache: Vec<(usize, f64)> = Vec::new();
    for &percent in &percents {
        if percent > 100 {
            return Err(Error::InvalidPercent { percent });
        }
        let radius = percent_radius(percent, longest);
        // Radii at or past longest - 1 all allow every cell.
        let effective = radius.min(longest.saturating_sub(1));
        let error = match cache.iter().find(|(r, _)| *r == effective) {
            Some(&(_, e)) => e,
            None => {
                let options = DtwOptions { cost, window: Window::SakoeChiba { radius: effective } };
                let d = distance_matrix(train, &options, threads)?;
                let e = loocv_error(&d, labels);
                cache.push((effective, e));
                e
            }
        };
        errors.push((percent, error));
    }
    // The first minimum in increasing percent: ties go to the smaller window.
    let (best, _) = errors
        .iter()
        .enumerate()
        .fold((0, f64::INFINITY), |acc, (k, &(_, e))| if e < acc.1 { (k, e) } else { acc });
    let (percent, error) = errors[best];
    Ok(WindowSelection { percent, radius: percent_radius(percent, longest), error, errors })
}

/// Labels of `test` by their nearest neighbour in `train` under `options` (ties to the lower
/// training index). With `Window::SakoeChiba { radius: 0 }` on equal lengths this is the
/// Euclidean 1-NN baseline.
///
/// ```
/// use engram_dtw::{DtwOptions, Series, classify_1nn};
///
/// let (up, down) = (vec![0.0, 1.0, 2.0, 3.0], vec![3.0, 2.0, 1.0, 0.0]);
/// let train = [Series::from(&up), Series::from(&down)];
/// let query = vec![0.0, 0.0, 1.0, 3.0];
/// let labels = classify_1nn(&train, &["up", "down"], &[Series::from(&query)], &DtwOptions::default(), None);
/// assert_eq!(labels.unwrap(), ["up"]);
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] between series and labels, and the errors of
/// [`cross_distance_matrix`].
///
/// # Panics
/// When `threads` is `Some(0)`.
pub fn classify_1nn<T: Float, L: Clone>(
    train: &[Series<'_, T>],
    labels: &[L],
    test: &[Series<'_, T>],
    options: &DtwOptions,
    threads: Option<usize>,
) -> Result<Vec<L>> {
    check_labels(train.len(), labels, "training series and labels")?;
    let d = cross_distance_matrix(test, train, options, threads)?;
    Ok((0..d.rows()).map(|i| labels[nearest(&d, i, None)].clone()).collect())
}

/// The fraction of `predicted` that differ from `truth`.
///
/// # Errors
/// [`Error::LengthMismatch`] when the lengths differ, [`Error::Empty`] when both are empty.
pub fn error_rate<L: PartialEq>(predicted: &[L], truth: &[L]) -> Result<f64> {
    check_labels(predicted.len(), truth, "predicted and true labels")?;
    if truth.is_empty() {
        return Err(Error::Empty { which: "the label list".into() });
    }
    let wrong = predicted.iter().zip(truth).filter(|(p, t)| p != t).count();
    Ok(wrong as f64 / truth.len() as f64)
}

fn check_labels<L>(series: usize, labels: &[L], what: &'static str) -> Result<()> {
    if series != labels.len() {
        return Err(Error::LengthMismatch { what, left: series, right: labels.len() });
    }
    Ok(())
}

/// Index of the smallest entry of row `i`, skipping column `skip`; ties to the lower index.
fn nearest<T: Float>(d: &DistanceMatrix<T>, i: usize, skip: Option<usize>) -> usize {
    let mut best = (usize::MAX, T::INFINITY);
    for j in 0..d.cols() {
        if Some(j) != skip && (best.0 == usize::MAX || d.get(i, j) < best.1) {
            best = (j, d.get(i, j));
        }
    }
    best.0
}

fn loocv_error<T: Float, L: PartialEq>(d: &DistanceMatrix<T>, labels: &[L]) -> f64 {
    let wrong = (0..d.rows()).filter(|&i| labels[nearest(d, i, Some(i))] != labels[i]).count();
    wrong as f64 / d.rows() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Rng;

    /// A small UCR-like two-class problem of length 60: class 0 is one bump, class 1 two
    /// narrower bumps, each at a random shift of up to ±15 points, plus noise. Shifts hurt the Euclidean distance
    /// and not DTW.
    fn fixture(count: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<u8>) {
        let mut rng = Rng::new(seed);
        let bump = |t: f64, c: f64, w: f64| (-((t - c) / w).powi(2)).exp();
        (0..count)
            .map(|k| {
                let label = (k % 2) as u8;
                let shift = rng.uniform() * 15.0;
                let series = (0..60)
                    .map(|t| {
                        let t = t as f64;
                        let clean = if label == 0 {
                            bump(t, 30.0 + shift, 4.0)
                        } else {
                            bump(t, 24.0 + shift, 2.0) + bump(t, 36.0 + shift, 2.0)
                        };
                        clean + 0.05 * rng.uniform()
                    })
                    .collect();
                (series, label)
            })
            .unzip()
    }

    fn views(data: &[Vec<f64>]) -> Vec<Series<'_, f64>> {
        data.iter().map(Series::from).collect()
    }

    #[test]
    fn learned_window_beats_euclidean_on_shifted_shapes() {
        let (train, train_labels) = fixture(12, 1);
        let (test, test_labels) = fixture(40, 2);
        let (train, test) = (views(&train), views(&test));
        let grid: Vec<u32> = (0..=100).collect();
        let chosen =
            select_window(&train, &train_labels, Cost::SquaredEuclidean, &grid, Some(2)).unwrap();
        assert_eq!(chosen.errors.len(), 101);
        let euclidean_loocv = chosen.errors[0].1;
        assert!(chosen.percent > 0 && chosen.error < euclidean_loocv, "{chosen:?}");
        assert_eq!(chosen.radius, (chosen.percent as usize * 60).div_ceil(100));
        // No smaller window reaches the chosen error.
        assert!(
            chosen
                .errors
                .iter()
                .filter(|(p, _)| *p < chosen.percent)
                .all(|(_, e)| *e > chosen.error)
        );
        let options = DtwOptions::default().with_window(chosen.window());
        let predicted = classify_1nn(&train, &train_labels, &test, &options, None).unwrap();
        let dtw_error = error_rate(&predicted, &test_labels).unwrap();
        let ed = DtwOptions::default().with_window(Window::SakoeChiba { radius: 0 });
        let predicted = classify_1nn(&train, &train_labels, &test, &ed, None).unwrap();
        let ed_error = error_rate(&predicted, &test_labels).unwrap();
        assert!(dtw_error < ed_error, "dtw {dtw_error} vs euclidean {ed_error}");
    }

    #[test]
    fn window_zero_is_euclidean_nearest_neighbour() {
        let (train, labels) = fixture(16, 3);
        let (test, _) = fixture(20, 4);
        let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 0 });
        let predicted =
            classify_1nn(&views(&train), &labels, &views(&test), &options, Some(1)).unwrap();
        for (x, p) in test.iter().zip(&predicted) {
            let euclid = |y: &Vec<f64>| x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
            let nn = (0..train.len())
                .fold(0, |best, j| if euclid(&train[j]) < euclid(&train[best]) { j } else { best });
            assert_eq!(*p, labels[nn]);
        }
    }

    #[test]
    fn ties_go_to_the_smallest_window() {
        // Two well separated classes: every window classifies perfectly.
        let data =
            [vec![0.0, 0.1, 0.0], vec![0.1, 0.0, 0.0], vec![5.0, 5.1, 5.0], vec![5.1, 5.0, 5.0]];
        let chosen =
            select_window(&views(&data), &[0, 0, 1, 1], Cost::Absolute, &[50, 10, 100], None)
                .unwrap();
        assert_eq!((chosen.percent, chosen.error), (10, 0.0));
        assert_eq!(chosen.errors, [(10, 0.0), (50, 0.0), (100, 0.0)]);
    }

    #[test]
    fn label_and_grid_errors_carry_the_values() {
        let data = [vec![0.0, 1.0], vec![1.0, 0.0]];
        let train = views(&data);
        assert_eq!(
            select_window(&train, &[0], Cost::Absolute, &[0], None),
            Err(Error::LengthMismatch { what: "training series and labels", left: 2, right: 1 })
        );
        assert_eq!(
            select_window(&train, &[0, 1], Cost::Absolute, &[101], None),
            Err(Error::InvalidPercent { percent: 101 })
        );
        assert_eq!(
            select_window(&train[..1], &[0], Cost::Absolute, &[0], None),
            Err(Error::TooFewSeries { op: "select_window", needed: 2, got: 1 })
        );
        assert_eq!(error_rate(&[1, 2], &[1, 3]), Ok(0.5));
    }
}
