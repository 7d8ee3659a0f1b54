//! Soft-DTW on a cost matrix (Cuturi & Blondel, 2017): the forward recursion for the value and
//! the backward recursion for its gradient with respect to every cost, in f64 and without
//! tensors, on the anti-diagonal kernel (`kernel.rs`). The tests keep the paper's row-by-row
//! algorithm as the reference.

use super::kernel::{DiagonalCost, DiagonalSink, Scratch, soft_dtw_diagonals};

/// Soft-DTW value and gradient of one `n × m` cost matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftDtw {
    /// `R[n, m]`: `-γ log Σ_paths exp(-cost(path) / γ)` over all warping paths.
    pub value: f64,
    /// `∂ value / ∂ cost[i, j]`, row-major `n × m`: the expected alignment, each entry in
    /// `[0, 1]`.
    pub grad: Vec<f64>,
}

/// Soft-DTW of the row-major `n × m` matrix `cost` with smoothing `gamma`: the value by the
/// forward recursion `R[i, j] = cost[i, j] + min^γ(R[i-1, j-1], R[i-1, j], R[i, j-1])` and the
/// gradient by the paper's backward recursion (Algorithm 2), in `O(n m)` time and memory.
///
/// As `gamma → 0` the value tends to the DTW cost (the sum of costs along the best path).
///
/// # Panics
/// If `cost.len() != n * m`, `n` or `m` is 0, or `gamma <= 0`.
///
/// # Example
/// ```
/// // Two identical series of length 2, squared differences: the diagonal path costs 0.
/// let cost = [0.0, 1.0, 1.0, 0.0];
/// let soft = engram_dtw::soft_dtw_cost_matrix(&cost, 2, 2, 0.01);
/// assert!(soft.value.abs() < 1e-6);
/// assert!((soft.grad[0] - 1.0).abs() < 1e-6 && soft.grad[1].abs() < 1e-6);
/// ```
pub fn soft_dtw_cost_matrix(cost: &[f64], n: usize, m: usize, gamma: f64) -> SoftDtw {
    assert!(
        n > 0 && m > 0 && cost.len() == n * m,
        "soft_dtw_cost_matrix: {} costs for a {n} x {m} matrix",
        cost.len()
    );
    assert!(gamma > 0.0, "soft_dtw_cost_matrix: gamma must be positive, got {gamma}");
    let source = Matrix { cost, m };
    let mut sink = Dense { grad: vec![0.0; n * m], m };
    let value = soft_dtw_diagonals(n, m, gamma, &source, &mut sink, &mut Scratch::default());
    SoftDtw { value, grad: sink.grad }
}

/// Costs read from a row-major matrix: a diagonal is a strided gather.
struct Matrix<'a> {
    cost: &'a [f64],
    m: usize,
}

impl DiagonalCost<f64> for Matrix<'_> {
    #[inline(always)]
    fn fill(&self, k: usize, lo: usize, out: &mut [f64]) {
        for (t, out) in out.iter_mut().enumerate() {
            let i = lo + t;
            *out = self.cost[i * self.m + k - i];
        }
    }
}

/// `E` scattered into a row-major matrix.
struct Dense {
    grad: Vec<f64>,
    m: usize,
}

impl DiagonalSink<f64> for Dense {
    #[inline(always)]
    fn take(&mut self, k: usize, lo: usize, e: &[f64]) {
        for (t, &e) in e.iter().enumerate() {
            let i = lo + t;
            self.grad[i * self.m + k - i] = e;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::reference::Rng;

    /// `-γ log Σ exp(-cost(path)/γ)` over every warping path, by enumeration.
    fn brute(cost: &[f64], n: usize, m: usize, gamma: f64) -> f64 {
        fn walk(
            cost: &[f64],
            n: usize,
            m: usize,
            i: usize,
            j: usize,
            acc: f64,
            out: &mut Vec<f64>,
        ) {
            let acc = acc + cost[i * m + j];
            if i == n - 1 && j == m - 1 {
                out.push(acc);
                return;
            }
            if i + 1 < n {
                walk(cost, n, m, i + 1, j, acc, out);
            }
            if j + 1 < m {
                walk(cost, n, m, i, j + 1, acc, out);
            }
            if i + 1 < n && j + 1 < m {
                walk(cost, n, m, i + 1, j + 1, acc, out);
            }
        }
        let mut totals = Vec::new();
        walk(cost, n, m, 0, 0, 0.0, &mut totals);
        let min = totals.iter().copied().fold(f64::INFINITY, f64::min);
        min - gamma * totals.iter().map(|t| (-(t - min) / gamma).exp()).sum::<f64>().ln()
    }

    fn random_cost(rng: &mut Rng, n: usize, m: usize) -> Vec<f64> {
        (0..n * m).map(|_| rng.uniform() * 2.0).collect()
    }

    /// The paper's algorithms row by row in scalar f64 (the implementation this kernel replaced).
    pub(crate) fn reference(cost: &[f64], n: usize, m: usize, gamma: f64) -> SoftDtw {
        let w = m + 2;
        let at = |i: usize, j: usize| i * w + j;
        let d =
            |i: usize, j: usize| if i <= n && j <= m { cost[(i - 1) * m + (j - 1)] } else { 0.0 };
        let soft_min3 = |a: f64, b: f64, c: f64| {
            let min = a.min(b).min(c);
            let sum = (-(a - min) / gamma).exp()
                + (-(b - min) / gamma).exp()
                + (-(c - min) / gamma).exp();
            min - gamma * sum.ln()
        };
        let mut r = vec![f64::INFINITY; (n + 2) * w];
        r[at(0, 0)] = 0.0;
        for i in 1..=n {
            for j in 1..=m {
                r[at(i, j)] =
                    d(i, j) + soft_min3(r[at(i - 1, j - 1)], r[at(i - 1, j)], r[at(i, j - 1)]);
            }
        }
        let value = r[at(n, m)];
        for i in 1..=n {
            r[at(i, m + 1)] = f64::NEG_INFINITY;
        }
        for j in 1..=m {
            r[at(n + 1, j)] = f64::NEG_INFINITY;
        }
        r[at(n + 1, m + 1)] = value;
        let mut e = vec![0.0; (n + 2) * w];
        e[at(n + 1, m + 1)] = 1.0;
        for i in (1..=n).rev() {
            for j in (1..=m).rev() {
                let here = r[at(i, j)];
                let weight = |ri: f64, di: f64| ((ri - here - di) / gamma).exp();
                let a = weight(r[at(i + 1, j)], d(i + 1, j));
                let b = weight(r[at(i, j + 1)], d(i, j + 1));
                let c = weight(r[at(i + 1, j + 1)], d(i + 1, j + 1));
                e[at(i, j)] = e[at(i + 1, j)] * a + e[at(i, j + 1)] * b + e[at(i + 1, j + 1)] * c;
            }
        }
        let e = &e;
        let grad = (1..=n).flat_map(|i| (1..=m).map(move |j| e[at(i, j)])).collect();
        SoftDtw { value, grad }
    }

    #[test]
    fn diagonal_kernel_matches_the_row_by_row_algorithm() {
        let mut rng = Rng::new(11);
        for (n, m) in [(1, 9), (9, 1), (2, 2), (17, 40), (64, 33), (100, 100)] {
            let cost: Vec<f64> = random_cost(&mut rng, n, m).iter().map(|c| c + 1.0).collect();
            for gamma in [0.01, 0.1, 1.0] {
                let got = soft_dtw_cost_matrix(&cost, n, m, gamma);
                let want = reference(&cost, n, m, gamma);
                assert!(
                    (got.value - want.value).abs() <= 1e-12 * want.value.abs(),
                    "{n}x{m} γ={gamma}: {} vs {}",
                    got.value,
                    want.value
                );
                let worst =
                    got.grad.iter().zip(&want.grad).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
                assert!(worst < 1e-10, "{n}x{m} γ={gamma}: gradient off by {worst}");
            }
        }
    }

    #[test]
    fn value_matches_the_sum_over_all_paths() {
        let mut rng = Rng::new(5);
        for (n, m) in [(1, 1), (1, 4), (3, 2), (4, 5), (5, 5)] {
            let cost = random_cost(&mut rng, n, m);
            for gamma in [0.01, 0.1, 1.0, 10.0] {
                let got = soft_dtw_cost_matrix(&cost, n, m, gamma).value;
                let want = brute(&cost, n, m, gamma);
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{n}x{m} γ={gamma}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(9);
        let (n, m, gamma) = (4, 3, 0.5);
        let cost = random_cost(&mut rng, n, m);
        let soft = soft_dtw_cost_matrix(&cost, n, m, gamma);
        let h = 1e-6;
        for k in 0..n * m {
            let mut up = cost.clone();
            up[k] += h;
            let mut down = cost.clone();
            down[k] -= h;
            let numeric = (brute(&up, n, m, gamma) - brute(&down, n, m, gamma)) / (2.0 * h);
            assert!(
                (soft.grad[k] - numeric).abs() < 1e-6,
                "cell {k}: {} vs {numeric}",
                soft.grad[k]
            );
        }
    }

    #[test]
    fn small_gamma_tends_to_dtw() {
        let a = [0.0, 1.0, 3.0, 2.0, 0.5];
        let b = [0.0, 2.0, 2.5, 0.0];
        let cost: Vec<f64> =
            a.iter().flat_map(|x| b.iter().map(move |y| (x - y) * (x - y))).collect();
        let dtw = crate::dtw_cost(&a[..], &b[..], &crate::DtwOptions::default()).unwrap();
        let soft = soft_dtw_cost_matrix(&cost, a.len(), b.len(), 1e-4).value;
        assert!((soft - dtw).abs() < 1e-3, "{soft} vs {dtw}");
    }

    #[test]
    #[should_panic(expected = "soft_dtw_cost_matrix: gamma must be positive, got 0")]
    fn zero_gamma_is_rejected() {
        let _ = soft_dtw_cost_matrix(&[1.0], 1, 1, 0.0);
    }
}
