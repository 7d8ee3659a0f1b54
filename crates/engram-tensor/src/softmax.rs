//! Numerically stable softmax, log-softmax, logsumexp, masked softmax and soft minimum.
//!
//! Every function shifts by the (detached) maximum along `dim` before exponentiating, so logits
//! of ±1e4 in f32 neither overflow nor lose the largest entry. Reductions keep `dim` with size 1,
//! like burn's `sum_dim`, so the result broadcasts against the input.

use burn::tensor::{Bool, DType, Tensor, activation};

/// `log Σ exp(x)` along `dim`, which is kept with size 1.
///
/// Rows that are entirely `-inf` give `-inf` (the log of an empty sum), never NaN.
///
/// # Shapes
/// - `x`: any shape; output: the same with `dims[dim] = 1`.
///
/// # Panics
/// If `dim >= D`.
pub fn logsumexp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    check_dim::<D>("logsumexp", dim);
    let max = finite_max(x.clone(), dim);
    (x - max.clone()).exp().sum_dim(dim).log() + max
}

/// `softmax(x)_i = exp(x_i) / Σ_j exp(x_j)` along `dim`.
///
/// A row with no finite entry has no distribution (NaN); to leave entries out, use
/// [`masked_softmax`], which handles rows with nothing left.
///
/// # Shapes
/// - `x`: any shape; output: the same.
///
/// # Panics
/// If `dim >= D`.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    check_dim::<D>("softmax", dim);
    // burn's op shifts by the maximum too, and flex fuses it into one pass over each row.
    activation::softmax(x, dim)
}

/// `log softmax(x)_i = x_i - logsumexp(x)` along `dim`.
///
/// # Shapes
/// - `x`: any shape; output: the same.
///
/// # Panics
/// If `dim >= D`.
pub fn log_softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    check_dim::<D>("log_softmax", dim);
    // (x - max) - log Σ exp(x - max), rather than x - logsumexp(x): adding the maximum back and
    // subtracting it again would lose the low bits of the result when |max| is large.
    let shifted = x.clone() - finite_max(x, dim);
    shifted.clone() - shifted.exp().sum_dim(dim).log()
}

/// Softmax along `dim` over the entries where `mask` is `false`; entries where `mask` is `true`
/// get weight 0. A row that is masked entirely gives all zeros, never NaN, and passes no
/// gradient.
///
/// The mask follows burn's convention for padding masks: `true` means "leave out".
///
/// # Shapes
/// - `x`: any shape; `mask`: the same shape; output: the same shape.
///
/// # Panics
/// If `dim >= D` or the shapes of `x` and `mask` differ.
pub fn masked_softmax<const D: usize>(
    x: Tensor<D>,
    mask: Tensor<D, Bool>,
    dim: usize,
) -> Tensor<D> {
    check_dim::<D>("masked_softmax", dim);
    assert_eq!(
        x.dims(),
        mask.dims(),
        "masked_softmax: logits shape {:?} and mask shape {:?} differ",
        x.dims(),
        mask.dims()
    );
    // A finite fill keeps a fully masked row finite (uniform) through softmax and its backward;
    // the second fill then zeroes it. Filling with -inf would give 0/0 there.
    let fill = lowest_logit(x.dtype());
    activation::softmax(x.mask_fill(mask.clone(), fill), dim).mask_fill(mask, 0.0)
}

/// A logit so low that `exp(fill - max)` is exactly 0 next to any real logit, yet finite in the
/// dtype (and far from overflowing when the maximum is subtracted).
fn lowest_logit(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => -1e300,
        DType::F32 | DType::BF16 => -1e30,
        // f16 and flex32 (f16 range): about half the most negative finite value.
        _ => -3e4,
    }
}

/// Softmin distribution with temperature `gamma`: `softmax(-x / gamma)` along `dim`.
///
/// Small `gamma` concentrates the weight on the minimum; large `gamma` spreads it evenly.
/// These are the weights of [`soft_min`]'s gradient, which soft-DTW uses.
///
/// # Panics
/// If `dim >= D` or `gamma <= 0`.
pub fn softmin<const D: usize>(x: Tensor<D>, dim: usize, gamma: f64) -> Tensor<D> {
    check_gamma("softmin", gamma);
    softmax(x.div_scalar(-gamma), dim)
}

/// Smoothed minimum with temperature `gamma`: `-gamma · log Σ exp(-x_i / gamma)` along `dim`
/// (kept with size 1). It tends to `min(x)` as `gamma → 0` and is differentiable everywhere;
/// this is soft-DTW's `min^γ` (Cuturi & Blondel, 2017).
///
/// # Panics
/// If `dim >= D` or `gamma <= 0`.
pub fn soft_min<const D: usize>(x: Tensor<D>, dim: usize, gamma: f64) -> Tensor<D> {
    check_gamma("soft_min", gamma);
    logsumexp(x.div_scalar(-gamma), dim).mul_scalar(-gamma)
}

/// The maximum along `dim`, detached (the shift cancels in every function here, so it needs no
/// gradient), with non-finite maxima (rows of `-inf`) replaced by 0 so that `x - max` is never
/// `-inf - -inf = NaN`.
fn finite_max<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = x.detach().max_dim(dim);
    max.clone().mask_fill(max.is_finite().bool_not(), 0.0)
}

pub(crate) fn check_dim<const D: usize>(op: &str, dim: usize) {
    assert!(dim < D, "{op}: dim {dim} is out of range for a tensor of rank {D}");
}

fn check_gamma(op: &str, gamma: f64) {
    assert!(gamma > 0.0, "{op}: gamma must be positive, got {gamma}");
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::testing::reference as r;
    use crate::testing::{Tolerance, assert_close, check_gradient, test_device, to_f64};

    const ROWS: [[f64; 4]; 5] = [
        [0.5, -1.0, 2.0, 0.0],
        [1e4, -1e4, 0.0, 1e4],
        [-1e4, -1e4, -1e4, -1e4],
        [3.0, 3.0, 3.0, 3.0],
        [-2.5, 7.0, 1e-3, -0.75],
    ];

    fn rows() -> (Tensor<2>, Vec<f64>) {
        let flat: Vec<f64> = ROWS.iter().flatten().copied().collect();
        let x = Tensor::<2>::from_data(TensorData::new(flat.clone(), [5, 4]), &test_device());
        (x, flat)
    }

    fn per_row(flat: &[f64], f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
        flat.chunks(4).flat_map(f).collect()
    }

    #[test]
    fn softmax_matches_f64_reference_with_extreme_logits() {
        let (x, flat) = rows();
        assert_close(softmax(x, 1), &per_row(&flat, r::softmax), Tolerance::F32);
    }

    #[test]
    fn log_softmax_matches_f64_reference_with_extreme_logits() {
        let (x, flat) = rows();
        let expected = per_row(&flat, r::log_softmax);
        // Entries near -2e4 are exact to a few f32 ulps of that magnitude.
        assert_close(log_softmax(x, 1), &expected, Tolerance::new(1e-5, 1e-6));
    }

    #[test]
    fn logsumexp_matches_f64_reference_along_each_dim() {
        let (x, flat) = rows();
        let by_row = per_row(&flat, |row| vec![r::logsumexp(row)]);
        assert_close(logsumexp(x.clone(), 1), &by_row, Tolerance::new(1e-3, 1e-6));
        let cols: Vec<f64> = (0..4)
            .map(|c| r::logsumexp(&(0..5).map(|i| flat[i * 4 + c]).collect::<Vec<_>>()))
            .collect();
        assert_eq!(logsumexp(x.clone(), 0).dims(), [1, 4]);
        assert_close(logsumexp(x, 0), &cols, Tolerance::new(1e-3, 1e-6));
    }

    #[test]
    fn logsumexp_of_all_neg_inf_is_neg_inf() {
        let x = Tensor::<1>::from_floats([f32::NEG_INFINITY; 3], &test_device());
        assert_eq!(to_f64(logsumexp(x, 0)), vec![f64::NEG_INFINITY]);
    }

    #[test]
    fn length_one_rows_are_exact() {
        let x = Tensor::<2>::from_floats([[1e4], [-3.0]], &test_device());
        assert_close(softmax(x.clone(), 1), &[1.0, 1.0], Tolerance::F32);
        assert_close(log_softmax(x.clone(), 1), &[0.0, 0.0], Tolerance::F32);
        assert_close(logsumexp(x, 1), &[1e4, -3.0], Tolerance::F32);
    }

    #[test]
    fn masked_softmax_matches_reference_and_gives_zero_rows_when_all_masked() {
        let (x, flat) = rows();
        let mask_rows = [
            [false, true, false, false],
            [true, true, true, true],
            [false, false, false, true],
            [false, false, false, false],
            [true, false, true, true],
        ];
        let mask_flat: Vec<bool> = mask_rows.iter().flatten().copied().collect();
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new(mask_flat.clone(), [5, 4]),
            &test_device(),
        );
        let expected: Vec<f64> = flat
            .chunks(4)
            .zip(mask_flat.chunks(4))
            .flat_map(|(row, m)| r::masked_softmax(row, m))
            .collect();
        let got = masked_softmax(x, mask, 1);
        assert!(got.clone().is_nan().bool_not().all().into_scalar::<bool>());
        assert_close(got, &expected, Tolerance::F32);
    }

    #[test]
    fn masked_softmax_all_masked_has_zero_gradient() {
        let device = test_device().autodiff();
        let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device).require_grad();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![true; 3], [1, 3]), &device);
        let y = masked_softmax(x.clone(), mask, 1).sum();
        let grad = x.grad(&y.backward()).unwrap();
        assert_close(grad, &[0.0, 0.0, 0.0], Tolerance::F32);
    }

    #[test]
    fn softmin_and_soft_min_match_reference() {
        let x = Tensor::<1>::from_floats([1.0, 0.2, 3.0, 0.25], &test_device());
        let xs = [1.0, 0.2, 3.0, 0.25];
        for gamma in [0.01, 0.1, 1.0, 10.0] {
            let neg: Vec<f64> = xs.iter().map(|v| -v / gamma).collect();
            assert_close(softmin(x.clone(), 0, gamma), &r::softmax(&neg), Tolerance::F32);
            let expected = -gamma * r::logsumexp(&neg);
            assert_close(soft_min(x.clone(), 0, gamma), &[expected], Tolerance::F32);
        }
        // gamma -> 0 recovers the hard minimum.
        assert_close(soft_min(x, 0, 1e-4), &[0.2], Tolerance::new(1e-4, 0.0));
    }

    #[test]
    #[should_panic(expected = "soft_min: gamma must be positive, got 0")]
    fn soft_min_rejects_zero_gamma() {
        let x = Tensor::<1>::from_floats([1.0], &test_device());
        let _ = soft_min(x, 0, 0.0);
    }

    #[test]
    #[should_panic(expected = "softmax: dim 2 is out of range for a tensor of rank 2")]
    fn softmax_rejects_bad_dim() {
        let (x, _) = rows();
        let _ = softmax(x, 2);
    }

    #[test]
    #[should_panic(expected = "masked_softmax: logits shape [5, 4] and mask shape [5, 3] differ")]
    fn masked_softmax_rejects_mismatched_mask() {
        let (x, _) = rows();
        let mask =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 15], [5, 3]), &test_device());
        let _ = masked_softmax(x, mask, 1);
    }

    fn weighted<const D: usize>(y: Tensor<D>) -> Tensor<1> {
        // A fixed, non-symmetric weighting so the gradient of a sum-to-one output is not zero.
        let n = y.shape().num_elements();
        let w: Vec<f64> = (0..n).map(|i| ((i * 7 % 5) as f64) - 1.5).collect();
        let w = Tensor::<1>::from_data(TensorData::new(w, [n]), (&y.device(), y.dtype()));
        (y.reshape([n]) * w).sum()
    }

    fn grad_input() -> Tensor<2> {
        Tensor::<2>::from_floats([[0.3, -1.2, 2.0], [0.0, 0.5, -0.7]], &test_device())
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = [grad_input()];
        check_gradient(|x| weighted(softmax(x[0].clone(), 1)), &x).assert_ok();
        check_gradient(|x| weighted(log_softmax(x[0].clone(), 0)), &x).assert_ok();
        check_gradient(|x| weighted(logsumexp(x[0].clone(), 1)), &x).assert_ok();
        check_gradient(|x| weighted(softmin(x[0].clone(), 1, 0.5)), &x).assert_ok();
        check_gradient(|x| weighted(soft_min(x[0].clone(), 1, 0.5)), &x).assert_ok();
    }

    #[test]
    fn masked_softmax_gradient_matches_finite_differences() {
        let x = grad_input();
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, true, false, true, true, true], [2, 3]),
            &test_device(),
        );
        check_gradient(
            |x| {
                let mask = Tensor::<2, Bool>::from_data(mask.to_data(), &x[0].device());
                weighted(masked_softmax(x[0].clone(), mask, 1))
            },
            &[x],
        )
        .assert_ok();
    }
}
