//! Subsequence search: the best match (or the best `k` non-overlapping ones) of a query in a
//! long series under z-normalised, banded DTW, with the UCR suite's cascade of lower bounds.
//!
//! Rakthanmanon et al., "Searching and mining trillions of time series subsequences under
//! dynamic time warping", KDD 2012.

use crate::bounds::{envelope, keogh_term, kim};
use crate::cost::Cost;
use crate::distance::rows_cost;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::normalize::znormalized;
use crate::series::check_values;
use crate::window::{Band, Window};

/// What [`subsequence_search`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOptions {
    /// Sakoe-Chiba radius of the DTW between the query and each window.
    pub radius: usize,
    /// Local cost: squared Euclidean (the UCR suite's), Euclidean or absolute.
    pub cost: Cost,
    /// How many non-overlapping matches to return (1: the best one).
    pub k: usize,
}

impl SearchOptions {
    /// The best match under squared Euclidean cost and a band of `radius`.
    pub fn new(radius: usize) -> Self {
        Self { radius, cost: Cost::SquaredEuclidean, k: 1 }
    }

    /// The same options returning the best `k` non-overlapping matches.
    pub fn with_k(self, k: usize) -> Self {
        Self { k, ..self }
    }
}

/// One match: where it starts in the data and its DTW cost against the query (both
/// z-normalised); `distance` is the cost in [`dtw_distance`](crate::dtw_distance)'s convention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match<T> {
    /// Start of the window in the data.
    pub position: usize,
    /// Sum of local costs along the best path.
    pub cost: T,
    /// `sqrt(cost)` for the squared Euclidean cost, `cost` otherwise.
    pub distance: T,
}

/// How many windows each stage of the cascade settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Windows considered: `data.len() - query.len() + 1`.
    pub windows: usize,
    /// Pruned by LB_Kim.
    pub pruned_kim: usize,
    /// Pruned by LB_Keogh of the window against the query's envelope.
    pub pruned_keogh_query: usize,
    /// Pruned by LB_Keogh of the query against the data's envelope.
    pub pruned_keogh_data: usize,
    /// DTW started and abandoned early.
    pub abandoned: usize,
    /// DTW computed to the end.
    pub completed: usize,
}

/// The matches, best first, and the cascade's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult<T> {
    /// At most `k` matches, no two of which overlap (start positions differ by at least the
    /// query's length), in increasing cost.
    pub matches: Vec<Match<T>>,
    /// What the lower bounds pruned.
    pub stats: SearchStats,
}

/// Finds the windows of `data` closest to `query` under DTW with a Sakoe-Chiba band, both
/// z-normalised (each window with its own mean and standard deviation, a constant window
/// becoming zeros), as the UCR suite does:
///
/// 1. mean and deviation of each window from running sums (refreshed every `query.len()`
///    windows to keep rounding from drifting);
/// 2. LB_Kim on the first and last three points;
/// 3. LB_Keogh of the window against the query's envelope, then of the query against the
///    data's envelope (computed once with Lemire's algorithm), each abandoning once above the
///    best-so-far;
/// 4. DTW abandoning when a row's minimum plus the remaining LB_Keogh terms (cumulated from the
///    end, from whichever bound was tighter) exceeds the best-so-far.
///
/// For `k > 1` the result is the greedy top-k: the best match, then the best one not
/// overlapping it, and so on. Pruning stays exact by pruning against the cost of the
/// `(2k - 1)`-th of non-overlapping matches found so far: a window overlaps at most two of
/// them, so a window costlier than all of them cannot make the top k.
///
/// ```
/// use engram_dtw::{SearchOptions, subsequence_search};
///
/// let data: Vec<f64> = (0..200).map(|i| ((i * i) as f64 * 0.01).sin()).collect();
/// let query = data[120..140].to_vec();
/// let found = subsequence_search(&query, &data, &SearchOptions::new(2)).unwrap();
/// assert_eq!(found.matches[0].position, 120);
/// ```
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::QueryTooLong`], and
/// [`Error::UnsupportedCost`] for the cosine cost.
///
/// # Panics
/// When `options.k` is 0.
pub fn subsequence_search<T: Float>(
    query: &[T],
    data: &[T],
    options: &SearchOptions,
) -> Result<SearchResult<T>> {
    assert!(options.k > 0, "subsequence_search: k must be at least 1, got 0");
    check_values(query, &|| "query".into())?;
    check_values(data, &|| "data".into())?;
    let (m, len) = (query.len(), data.len());
    if m > len {
        return Err(Error::QueryTooLong { query: m, data: len });
    }
    let cost = options.cost;
    if !cost.is_difference_based() {
        return Err(Error::UnsupportedCost { op: "subsequence_search", cost });
    }
    let r = options.radius;
    let band = Band::new(&Window::SakoeChiba { radius: r }, m, m)?;
    let qz = znormalized(query);
    let q_env = envelope(&qz, r);
    let d_env = envelope(data, r);
    let mut found = Found::new(options.k, m);
    let mut stats = SearchStats { windows: len - m + 1, ..SearchStats::default() };
    let (mut tz, mut cb1, mut cb2, mut tail) =
        (vec![T::ZERO; m], vec![T::ZERO; m], vec![T::ZERO; m], vec![T::ZERO; m + 1]);
    let (mut ex, mut ex2) = (0.0f64, 0.0f64);
    for s in 0..=len - m {
        if s % m == 0 {
            // Fresh sums now and then: sliding updates accumulate rounding error.
            (ex, ex2) = data[s..s + m].iter().fold((0.0, 0.0), |(a, b), v| {
                let v = v.to_f64();
                (a + v, b + v * v)
            });
        } else {
            let (out, inn) = (data[s - 1].to_f64(), data[s + m - 1].to_f64());
            ex += inn - out;
            ex2 += inn * inn - out * out;
        }
        let mean = ex / m as f64;
        let second = ex2 / m as f64;
        let var = (second - mean * mean).max(0.0);
        // Below the cancellation error of `second - mean²` the window is constant.
        let constant = var <= 16.0 * f64::EPSILON * second;
        let std = var.sqrt();
        let norm = |v: T| if constant { T::ZERO } else { T::from_f64((v.to_f64() - mean) / std) };
        let bsf = found.threshold;

        if kim(m, m, |i| norm(data[s + i]), |j| qz[j], cost, bsf) > bsf {
            stats.pruned_kim += 1;
            continue;
        }
        let mut lb1 = T::ZERO;
        for i in 0..m {
            tz[i] = norm(data[s + i]);
            cb1[i] = keogh_term(tz[i], q_env.lower[i], q_env.upper[i], cost);
            lb1 += cb1[i];
        }
        if lb1 > bsf {
            stats.pruned_keogh_query += 1;
            continue;
        }
        let mut lb2 = T::ZERO;
        for i in 0..m {
            let (lo, hi) = (norm(d_env.lower[s + i]), norm(d_env.upper[s + i]));
            cb2[i] = keogh_term(qz[i], lo, hi, cost);
            lb2 += cb2[i];
            if lb2 > bsf {
                break;
            }
        }
        if lb2 > bsf {
            stats.pruned_keogh_data += 1;
            continue;
        }
        // tail[k]: the tighter bound's terms from k on. After row i of the DTW, points past
        // i + r of either series are still unmatched and each costs at least its term.
        let terms = if lb1 > lb2 { &cb1 } else { &cb2 };
        tail[m] = T::ZERO;
        for k in (0..m).rev() {
            tail[k] = tail[k + 1] + terms[k];
        }
        let dtw = rows_cost(
            m,
            m,
            &band,
            |i, j| cost.scalar(tz[i], qz[j]),
            bsf,
            |i| tail[(i + r + 1).min(m)],
        );
        match dtw {
            Some(c) => {
                stats.completed += 1;
                found.insert(c, s);
            }
            None => stats.abandoned += 1,
        }
    }
    let matches = found
        .select(options.k)
        .into_iter()
        .map(|(cost_value, position)| Match {
            position,
            cost: cost_value,
            distance: if cost == Cost::SquaredEuclidean { cost_value.sqrt() } else { cost_value },
        })
        .collect();
    Ok(SearchResult { matches, stats })
}

/// Candidates that may still make the top k, and the pruning threshold.
struct Found<T> {
    k: usize,
    m: usize,
    candidates: Vec<(T, usize)>,
    threshold: T,
}

impl<T: Float> Found<T> {
    fn new(k: usize, m: usize) -> Self {
        Self { k, m, candidates: Vec::new(), threshold: T::INFINITY }
    }

    fn insert(&mut self, cost: T, position: usize) {
        if self.k == 1 {
            // The common case: only strictly better matches replace the best (ties keep the
            // earliest position).
            if self.candidates.first().is_none_or(|&(best, _)| cost < best) {
                self.candidates = vec![(cost, position)];
                self.threshold = cost;
            }
            return;
        }
        self.candidates.push((cost, position));
        let witnesses = self.select(2 * self.k - 1);
        if witnesses.len() == 2 * self.k - 1 {
            self.threshold = witnesses[witnesses.len() - 1].0;
            let threshold = self.threshold;
            self.candidates.retain(|&(c, _)| c <= threshold);
        }
    }

    /// Greedy selection of up to `count` non-overlapping candidates, cheapest first (ties to
    /// the earlier position).
    fn select(&mut self, count: usize) -> Vec<(T, usize)> {
        self.candidates.sort_by(|x, y| {
            x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal).then(x.1.cmp(&y.1))
        });
        let mut chosen: Vec<(T, usize)> = Vec::with_capacity(count);
        for &(c, p) in &self.candidates {
            if chosen.len() == count {
                break;
            }
            if chosen.iter().all(|&(_, q)| p.abs_diff(q) >= self.m) {
                chosen.push((c, p));
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Rng, assert_close};
    use crate::{DtwOptions, dtw_cost};

    /// z-normalise every window, banded DTW against the z-normalised query, greedy top k.
    fn brute_force(query: &[f64], data: &[f64], options: &SearchOptions) -> Vec<(f64, usize)> {
        let m = query.len();
        let qz = znormalized(query);
        let dtw = DtwOptions {
            cost: options.cost,
            window: Window::SakoeChiba { radius: options.radius },
        };
        let mut all: Vec<(f64, usize)> = (0..=data.len() - m)
            .map(|s| (dtw_cost(&znormalized(&data[s..s + m]), &qz, &dtw).unwrap(), s))
            .collect();
        all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let mut chosen: Vec<(f64, usize)> = Vec::new();
        for (c, p) in all {
            if chosen.len() < options.k && chosen.iter().all(|&(_, q)| p.abs_diff(q) >= m) {
                chosen.push((c, p));
            }
        }
        chosen
    }

    #[test]
    fn search_matches_brute_force_on_random_walks() {
        let mut rng = Rng::new(77);
        for case in 0..60 {
            let m = 3 + rng.below(20);
            let len = m + rng.below(150);
            let data = rng.walk(len);
            let query = rng.walk(m);
            let cost = [Cost::SquaredEuclidean, Cost::Absolute][case % 2];
            let options = SearchOptions { radius: rng.below(5), cost, k: 1 + rng.below(3) };
            let found = subsequence_search(&query, &data, &options).unwrap();
            let expected = brute_force(&query, &data, &options);
            assert_eq!(found.matches.len(), expected.len(), "case {case} {options:?}");
            for (got, (c, p)) in found.matches.iter().zip(&expected) {
                assert_eq!(got.position, *p, "case {case} {options:?}");
                assert_close(got.cost, *c, 1e-8, "cost");
            }
            let s = found.stats;
            let settled = s.pruned_kim
                + s.pruned_keogh_query
                + s.pruned_keogh_data
                + s.abandoned
                + s.completed;
            assert_eq!(settled, s.windows);
        }
    }

    #[test]
    fn lower_bounds_prune_most_windows_of_a_long_series() {
        let mut rng = Rng::new(4);
        let data = rng.walk(20_000);
        let query = data[12_345..12_473].to_vec();
        let found = subsequence_search(&query, &data, &SearchOptions::new(6)).unwrap();
        assert_eq!(found.matches[0].position, 12_345);
        assert!(found.matches[0].cost.abs() < 1e-9);
        assert!(found.stats.completed < found.stats.windows / 10, "{:?}", found.stats);
    }

    #[test]
    fn constant_windows_normalise_to_zeros() {
        let mut data = vec![2.0; 30];
        data.extend(Rng::new(2).walk(30));
        let query = [5.0; 8];
        let found = subsequence_search(&query, &data, &SearchOptions::new(1)).unwrap();
        assert_eq!((found.matches[0].position, found.matches[0].cost), (0, 0.0));
    }

    #[test]
    fn search_errors_carry_lengths_and_cost() {
        let opts = SearchOptions::new(1);
        assert_eq!(
            subsequence_search(&[1.0, 2.0, 3.0], &[1.0, 2.0], &opts),
            Err(Error::QueryTooLong { query: 3, data: 2 })
        );
        let cosine = SearchOptions { cost: Cost::Cosine, ..opts };
        assert!(matches!(
            subsequence_search(&[1.0], &[1.0], &cosine),
            Err(Error::UnsupportedCost { op: "subsequence_search", .. })
        ));
    }

    #[test]
    #[should_panic(expected = "subsequence_search: k must be at least 1")]
    fn zero_matches_panics() {
        let _ = subsequence_search(&[1.0], &[1.0], &SearchOptions::new(0).with_k(0));
    }
}
