//! Soft-DTW as a loss on burn tensors: batches of sequences of different lengths, any backend,
//! with the gradient from the Cuturi & Blondel backward recursion.
//!
//! Design: the values of `x` and `y` go to the host, where `points.rs` computes every pair's
//! soft-DTW and its gradients with respect to both sequences (the Cuturi & Blondel recursions on
//! anti-diagonals, in the tensors' precision: f64 for f64 tensors, f32 otherwise), in parallel
//! over the batch on the current rayon pool. The result enters the graph as
//! `Σ g_x ⊙ x + Σ g_y ⊙ y + stop_gradient(value - that)`, whose value is the soft-DTW and whose
//! gradients are `g_x` and `g_y`. Autodiff sees a handful of ops on `[batch, len, dim]` tensors,
//! never a node per DP cell nor an `n × m` cost matrix; on a GPU backend only the inputs and
//! their gradients cross to the host and back, `O(batch · len · dim)` values.

use burn::tensor::{DType, Element, Tensor, TensorData};

use super::math::SoftFloat;
use super::points::{PointBatch, soft_dtw_points};
#[cfg(test)]
use super::recursion::soft_dtw_cost_matrix;

/// Soft-DTW between each pair `x[b]`, `y[b]` (squared-Euclidean local cost, smoothing `gamma`).
///
/// `x_lengths`/`y_lengths` give each sequence's real length (right padding); `None` means the
/// full length. Padded positions get no gradient.
///
/// # Shapes
/// - `x`: `[batch, n, d]`, `y`: `[batch, m, d]`; output: `[batch]`.
///
/// # Panics
/// If the batch sizes or point dimensions differ, a lengths slice does not have `batch` entries,
/// a length is 0 or exceeds its padded size, or `gamma <= 0`.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// let device = engram_tensor::device(None).unwrap();
/// let x = Tensor::<3>::from_floats([[[0.0], [1.0], [2.0]]], &device);
/// let y = Tensor::<3>::from_floats([[[0.0], [2.0], [0.0]]], &device);
/// let loss = engram_dtw::soft_dtw(x, y, None, None, 0.1);
/// assert_eq!(loss.dims(), [1]);
/// ```
pub fn soft_dtw(
    x: Tensor<3>,
    y: Tensor<3>,
    x_lengths: Option<&[usize]>,
    y_lengths: Option<&[usize]>,
    gamma: f64,
) -> Tensor<1> {
    let ([batch, n, dim], [batch_y, m, dim_y]) = (x.dims(), y.dims());
    assert!(
        batch == batch_y && dim == dim_y,
        "soft_dtw: x is {:?} and y is {:?}; batch and point dimension must agree",
        x.dims(),
        y.dims()
    );
    assert!(gamma > 0.0, "soft_dtw: gamma must be positive, got {gamma}");
    assert!(dim > 0, "soft_dtw: points have dimension 0");
    let x_lengths = lengths("x", x_lengths, batch, n);
    let y_lengths = lengths("y", y_lengths, batch, m);
    let options = (&x.device(), x.dtype());
    let (soft, grad_x, grad_y) = if x.dtype() == DType::F64 {
        on_host::<f64, 4>(&x, &y, &x_lengths, &y_lengths, gamma)
    } else {
        on_host::<f32, 8>(&x, &y, &x_lengths, &y_lengths, gamma)
    };
    let soft = Tensor::<1>::from_data(soft, options);
    let grad_x = Tensor::<3>::from_data(grad_x, options);
    let grad_y = Tensor::<3>::from_data(grad_y, options);
    let linear = (x * grad_x).sum_dim(2).sum_dim(1).reshape([batch])
        + (y * grad_y).sum_dim(2).sum_dim(1).reshape([batch]);
    linear.clone() + (soft - linear).detach()
}

/// Values and gradients of every pair, computed on the host in `T`, `L` pairs per lane group
/// (one AVX2 register: 8 f32 or 4 f64).
fn on_host<T: SoftFloat + Element, const L: usize>(
    x: &Tensor<3>,
    y: &Tensor<3>,
    x_lengths: &[usize],
    y_lengths: &[usize],
    gamma: f64,
) -> (TensorData, TensorData, TensorData) {
    let ([batch, n, dim], [_, m, _]) = (x.dims(), y.dims());
    let (xv, yv) = (read::<T>(x), read::<T>(y));
    let batch_points = PointBatch { x: &xv, y: &yv, n, m, dim, x_lengths, y_lengths };
    let out = soft_dtw_points::<T, L>(batch_points, T::from_f64(gamma));
    (
        TensorData::new(out.values, [batch]),
        TensorData::new(out.grad_x, [batch, n, dim]),
        TensorData::new(out.grad_y, [batch, m, dim]),
    )
}

/// The soft-DTW divergence `sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2` (Blondel, Mensch & Vert,
/// 2021): non-negative, and zero when `x = y`, unlike soft-DTW itself.
///
/// # Shapes and panics
/// As [`soft_dtw`].
pub fn soft_dtw_divergence(
    x: Tensor<3>,
    y: Tensor<3>,
    x_lengths: Option<&[usize]>,
    y_lengths: Option<&[usize]>,
    gamma: f64,
) -> Tensor<1> {
    let xy = soft_dtw(x.clone(), y.clone(), x_lengths, y_lengths, gamma);
    let xx = soft_dtw(x.clone(), x, x_lengths, x_lengths, gamma);
    let yy = soft_dtw(y.clone(), y, y_lengths, y_lengths, gamma);
    xy - (xx + yy).mul_scalar(0.5)
}

fn lengths(which: &str, given: Option<&[usize]>, batch: usize, padded: usize) -> Vec<usize> {
    let Some(given) = given else { return vec![padded; batch] };
    assert_eq!(
        given.len(),
        batch,
        "soft_dtw: {} {which} lengths for a batch of {batch}",
        given.len()
    );
    if let Some(bad) = given.iter().find(|&&l| l == 0 || l > padded) {
        panic!("soft_dtw: {which} length {bad} is outside 1..={padded}");
    }
    given.to_vec()
}

fn read<T: Element>(tensor: &Tensor<3>) -> Vec<T> {
    match tensor.clone().detach().try_into_vec_as::<T>() {
        Ok(values) => values,
        Err(err) => panic!("soft_dtw: cannot read the sequences back: {err:?}"),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};
    use engram_tensor::testing::{Tolerance, assert_close, check_gradient, test_device, to_f64};

    use super::*;
    use crate::{DtwOptions, dtw_cost};

    fn sequences(seed: u64, batch: usize, len: usize) -> Tensor<3> {
        let device = test_device();
        let _ = engram_tensor::seed_everything(&device, seed);
        Tensor::random([batch, len, 2], Distribution::Normal(0.0, 1.0), &device)
    }

    #[test]
    fn batches_of_different_lengths_match_the_host_recursion() {
        let (x, y) = (sequences(1, 3, 5), sequences(2, 3, 4));
        let (xl, yl) = ([5, 2, 3], [4, 4, 1]);
        let got = soft_dtw(x.clone(), y.clone(), Some(&xl), Some(&yl), 0.3);
        let (xv, yv) = (to_f64(x), to_f64(y));
        let expected: Vec<f64> = (0..3)
            .map(|b| {
                fn point(v: &[f64], b: usize, len: usize, i: usize) -> &[f64] {
                    &v[(b * len + i) * 2..(b * len + i) * 2 + 2]
                }
                let cost: Vec<f64> = (0..xl[b])
                    .flat_map(|i| (0..yl[b]).map(move |j| (i, j)))
                    .map(|(i, j)| {
                        let (p, q) = (point(&xv, b, 5, i), point(&yv, b, 4, j));
                        (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)
                    })
                    .collect();
                soft_dtw_cost_matrix(&cost, xl[b], yl[b], 0.3).value
            })
            .collect();
        assert_close(got, &expected, Tolerance::new(1e-4, 1e-4));
    }

    #[test]
    fn small_gamma_tends_to_dtw_cost() {
        let device = test_device();
        let a = [0.0, 1.0, 3.0, 2.0];
        let b = [0.0, 2.5, 2.0];
        let x = Tensor::<1>::from_floats(a, &device).reshape([1, 4, 1]);
        let y = Tensor::<1>::from_floats(b, &device).reshape([1, 3, 1]);
        let dtw = dtw_cost(&a[..], &b[..], &DtwOptions::default()).unwrap();
        assert_close(soft_dtw(x, y, None, None, 1e-3), &[dtw], Tolerance::new(1e-2, 0.0));
    }

    #[test]
    fn divergence_is_zero_for_equal_inputs_and_positive_otherwise() {
        let (x, y) = (sequences(3, 2, 6), sequences(4, 2, 6));
        assert_close(
            soft_dtw_divergence(x.clone(), x.clone(), None, None, 0.5),
            &[0.0, 0.0],
            Tolerance::new(1e-4, 0.0),
        );
        let d = to_f64(soft_dtw_divergence(x, y, None, None, 0.5));
        assert!(d.iter().all(|&v| v > 0.0), "{d:?}");
    }

    #[test]
    fn gradients_match_finite_differences_for_both_inputs() {
        let (x, y) = (sequences(5, 2, 4), sequences(6, 2, 3));
        check_gradient(
            |t| {
                let x = t[0].clone();
                let y = t[1].clone();
                soft_dtw(x, y, Some(&[4, 2]), Some(&[3, 3]), 0.5).sum()
            },
            &[x.clone(), y.clone()],
        )
        .assert_ok();
        check_gradient(
            |t| soft_dtw_divergence(t[0].clone(), t[1].clone(), None, None, 0.7).sum(),
            &[x, y],
        )
        .assert_ok();
    }

    #[test]
    #[should_panic(expected = "soft_dtw: x length 6 is outside 1..=4")]
    fn lengths_beyond_the_padding_are_rejected() {
        let _ = soft_dtw(sequences(1, 1, 4), sequences(2, 1, 4), Some(&[6]), None, 1.0);
    }
}
