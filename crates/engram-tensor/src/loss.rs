//! Information measures and losses: entropy, cross-entropy with padding and label smoothing,
//! KL divergence and perplexity, all computed from logits through [`log_softmax`] so that extreme
//! logits stay finite.

use burn::tensor::{Int, Tensor};

use crate::softmax::{check_dim, log_softmax};

/// Entropy `-Σ p log p` (nats) of `p = softmax(logits)` along `dim`, kept with size 1.
///
/// Entries of `-inf` (masked out) contribute 0.
///
/// # Panics
/// If `dim >= D`.
pub fn entropy<const D: usize>(logits: Tensor<D>, dim: usize) -> Tensor<D> {
    check_dim::<D>("entropy", dim);
    let logp = log_softmax(logits, dim);
    plogq(logp.clone(), logp, dim).neg()
}

/// `KL(p ‖ q) = Σ p (log p - log q)` along `dim` (kept with size 1), with `p = softmax(p_logits)`
/// and `q = softmax(q_logits)`.
///
/// # Panics
/// If `dim >= D` or the shapes differ.
pub fn kl_divergence<const D: usize>(
    p_logits: Tensor<D>,
    q_logits: Tensor<D>,
    dim: usize,
) -> Tensor<D> {
    check_dim::<D>("kl_divergence", dim);
    assert_eq!(
        p_logits.dims(),
        q_logits.dims(),
        "kl_divergence: shapes {:?} and {:?} differ",
        p_logits.dims(),
        q_logits.dims()
    );
    let logp = log_softmax(p_logits, dim);
    let logq = log_softmax(q_logits, dim);
    plogq(logp.clone(), logp.clone(), dim) - plogq(logp, logq, dim)
}

/// `Σ exp(logp) · logq` along `dim`, treating terms with `p = 0` as 0 (so `-inf` entries don't
/// turn into `0 · -inf = NaN`).
fn plogq<const D: usize>(logp: Tensor<D>, logq: Tensor<D>, dim: usize) -> Tensor<D> {
    let p = logp.exp();
    let zero = p.clone().equal_elem(0.0);
    (p * logq.mask_fill(zero, 0.0)).sum_dim(dim)
}

/// Token-level cross-entropy from logits, averaged over the targets that are not padding.
///
/// With label smoothing `ε`, the target distribution is `(1 - ε)` on the true class plus `ε / C`
/// on every class, as in PyTorch's `CrossEntropyLoss(label_smoothing=ε)`.
///
/// # Example
/// ```
/// use burn::tensor::{Int, Tensor};
/// use engram_tensor::CrossEntropy;
/// let device = engram_tensor::device(None).unwrap();
/// let logits = Tensor::<2>::from_floats([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], &device);
/// let targets = Tensor::<1, Int>::from_ints([0, 0], &device);
/// // The second target is padding (id 0 here), so only the first row counts.
/// let loss = CrossEntropy::new().with_pad_id(0).forward(logits, targets);
/// assert_eq!(loss.dims(), [1]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropy {
    /// Target id to ignore (default: none).
    pub pad_id: Option<usize>,
    /// Label smoothing `ε` in `[0, 1)` (default: 0).
    pub label_smoothing: f64,
}

impl CrossEntropy {
    /// Plain cross-entropy: no padding id, no smoothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ignore targets equal to `pad_id`.
    pub fn with_pad_id(mut self, pad_id: usize) -> Self {
        self.pad_id = Some(pad_id);
        self
    }

    /// Smooth the targets by `epsilon`.
    ///
    /// # Panics
    /// If `epsilon` is not in `[0, 1)`.
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&epsilon),
            "CrossEntropy: label smoothing must be in [0, 1), got {epsilon}"
        );
        self.label_smoothing = epsilon;
        self
    }

    /// The loss of each row; padding rows are 0.
    ///
    /// # Shapes
    /// - `logits`: `[n, n_classes]`; `targets`: `[n]` class ids; output: `[n]`.
    ///
    /// # Panics
    /// If the number of rows differs. Target ids outside `0..n_classes` (other than `pad_id`)
    /// are a programmer error; the backend's gather decides what happens.
    pub fn per_row(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [n, _] = logits.dims();
        assert_eq!(
            n,
            targets.dims()[0],
            "CrossEntropy: {n} rows of logits but {} targets",
            targets.dims()[0]
        );
        let logp = log_softmax(logits, 1);
        let pad = self.pad_id.map(|id| targets.clone().equal_elem(id as i64));
        // Padding ids may lie outside the class range; gather a valid class for them instead.
        let safe = match &pad {
            Some(pad) => targets.mask_fill(pad.clone(), 0),
            None => targets,
        };
        let nll = logp.clone().gather(1, safe.unsqueeze_dim(1)).squeeze_dim::<1>(1).neg();
        let eps = self.label_smoothing;
        let loss = if eps > 0.0 {
            nll.mul_scalar(1.0 - eps) + logp.mean_dim(1).squeeze_dim::<1>(1).mul_scalar(-eps)
        } else {
            nll
        };
        match pad {
            Some(pad) => loss.mask_fill(pad, 0.0),
            None => loss,
        }
    }

    /// The mean loss over the rows whose target is not padding; 0 when every target is padding.
    ///
    /// # Shapes
    /// - `logits`: `[n, n_classes]`; `targets`: `[n]`; output: `[1]`.
    ///
    /// # Panics
    /// As [`CrossEntropy::per_row`].
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let n = targets.dims()[0];
        let pad = self.pad_id;
        let sum = self.per_row(logits, targets.clone()).sum();
        match pad {
            Some(id) => {
                let count = targets.not_equal_elem(id as i64).float().cast(sum.dtype());
                sum / count.sum().clamp_min(1.0)
            }
            None => sum.div_scalar(n.max(1) as f64),
        }
    }
}

/// Perplexity `exp(mean cross-entropy)` of the non-padding targets (no label smoothing).
///
/// # Shapes
/// - `logits`: `[n, n_classes]`; `targets`: `[n]`; output: `[1]`.
pub fn perplexity(logits: Tensor<2>, targets: Tensor<1, Int>, pad_id: Option<usize>) -> Tensor<1> {
    CrossEntropy { pad_id, label_smoothing: 0.0 }.forward(logits, targets).exp()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Int, Tensor, TensorData};

    use super::*;
    use crate::testing::reference as r;
    use crate::testing::{Tolerance, assert_close, check_gradient, test_device};

    const LOGITS: [[f64; 3]; 4] =
        [[2.0, -1.0, 0.5], [1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [-3.0, 4.0, 1e-3]];
    const TARGETS: [i64; 4] = [0, 1, 2, 1];

    fn logits() -> Tensor<2> {
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        Tensor::<2>::from_data(TensorData::new(flat, [4, 3]), &test_device())
    }

    fn targets() -> Tensor<1, Int> {
        Tensor::<1, Int>::from_ints(TARGETS, &test_device())
    }

    #[test]
    fn entropy_matches_reference_including_extremes_and_neg_inf() {
        let expected: Vec<f64> = LOGITS.iter().map(|row| r::entropy(row)).collect();
        assert_close(entropy(logits(), 1), &expected, Tolerance::F32);
        let masked = Tensor::<2>::from_floats([[f32::NEG_INFINITY, 0.0, 0.0]], &test_device());
        assert_close(entropy(masked, 1), &[2f64.ln()], Tolerance::F32);
    }

    #[test]
    fn kl_divergence_matches_reference_and_is_zero_for_equal_inputs() {
        let q = Tensor::<2>::from_floats([[0.0, 1.0, 2.0]; 4], &test_device());
        let expected: Vec<f64> =
            LOGITS.iter().map(|row| r::kl_divergence(row, &[0.0, 1.0, 2.0])).collect();
        assert_close(kl_divergence(logits(), q, 1), &expected, Tolerance::new(1e-3, 1e-5));
        assert_close(kl_divergence(logits(), logits(), 1), &[0.0; 4], Tolerance::F32);
    }

    #[test]
    fn cross_entropy_matches_reference_with_smoothing() {
        for eps in [0.0, 0.1, 0.5] {
            let per_row: Vec<f64> = LOGITS
                .iter()
                .zip(TARGETS)
                .map(|(row, t)| r::cross_entropy(row, t as usize, eps))
                .collect();
            let ce = CrossEntropy::new().with_label_smoothing(eps);
            assert_close(ce.per_row(logits(), targets()), &per_row, Tolerance::new(1e-2, 1e-6));
            let mean = per_row.iter().sum::<f64>() / 4.0;
            assert_close(ce.forward(logits(), targets()), &[mean], Tolerance::new(1e-2, 1e-6));
        }
    }

    #[test]
    fn cross_entropy_ignores_padding_targets() {
        // Pad id 1 marks rows 1 and 3; only rows 0 and 2 count.
        let ce = CrossEntropy::new().with_pad_id(1);
        let expected =
            (r::cross_entropy(&LOGITS[0], 0, 0.0) + r::cross_entropy(&LOGITS[2], 2, 0.0)) / 2.0;
        assert_close(ce.forward(logits(), targets()), &[expected], Tolerance::F32);
    }

    #[test]
    fn pad_id_outside_the_classes_is_fine_and_all_padding_gives_zero() {
        let ce = CrossEntropy::new().with_pad_id(99);
        let t = Tensor::<1, Int>::from_ints([99, 99, 99, 99], &test_device());
        let loss = ce.forward(logits(), t);
        assert_close(loss, &[0.0], Tolerance::F32);
    }

    #[test]
    fn perplexity_of_uniform_logits_is_the_number_of_classes() {
        let logits = Tensor::<2>::zeros([5, 7], &test_device());
        let t = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 6], &test_device());
        assert_close(perplexity(logits, t, None), &[7.0], Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "CrossEntropy: label smoothing must be in [0, 1), got 1")]
    fn label_smoothing_of_one_is_rejected() {
        let _ = CrossEntropy::new().with_label_smoothing(1.0);
    }

    #[test]
    #[should_panic(expected = "CrossEntropy: 4 rows of logits but 2 targets")]
    fn mismatched_targets_are_rejected() {
        let t = Tensor::<1, Int>::from_ints([0, 1], &test_device());
        let _ = CrossEntropy::new().forward(logits(), t);
    }

    fn small() -> Tensor<2> {
        Tensor::<2>::from_floats([[0.3, -1.2, 2.0], [0.0, 0.5, -0.7]], &test_device())
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradient(|x| entropy(x[0].clone(), 1).sum(), &[small()]).assert_ok();
        check_gradient(
            |x| kl_divergence(x[0].clone(), x[1].clone(), 1).sum(),
            &[small(), small().flip([1])],
        )
        .assert_ok();
        let ce = CrossEntropy::new().with_pad_id(2).with_label_smoothing(0.2);
        check_gradient(
            |x| {
                let t = Tensor::<1, Int>::from_ints([1, 2], &x[0].device());
                ce.forward(x[0].clone(), t)
            },
            &[small()],
        )
        .assert_ok();
        check_gradient(
            |x| {
                let t = Tensor::<1, Int>::from_ints([0, 2], &x[0].device());
                perplexity(x[0].clone(), t, None)
            },
            &[small()],
        )
        .assert_ok();
    }
}
