//! Layer normalisation as one parallel pass each way on flex, with its own backward.
//!
//! burn's autodiff composes layer norm from about ten tensor ops (mean, subtraction, square,
//! mean, square root, division, scale, shift), each a pass over memory that flex runs on one
//! thread, with as many backward steps (`tasks/classifier_step` has five norms of
//! `[4096, 256]` per step). Here rows are
//! shared among threads: the forward normalises each row in cache, the backward recomputes the
//! row's mean and deviation from the input and folds the scale and shift gradients per thread.
//! Forward and backward of `[32, 128, 256]` with a weighted sum and its backward around them
//! (release, 2 threads, machine loaded by a training run): 18-22 ms composed, 10-13 ms here;
//! at the level of a whole classifier step the difference is below the machine's noise.

// Without flex, the dispatch the extension macro generates has no backend to pass the
// non-tensor arguments to.
#![cfg_attr(not(feature = "flex"), allow(unused_variables))]

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend as BurnBackend, Dispatch, backend_extension};
use burn::tensor::{DType, Tensor};

use crate::backend::{Backend, backend_of};

/// Layer norm as backend operations (flex only; [`layer_norm`] sends nothing else here).
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait LayerNormBackend: BurnBackend {
    /// `(x - mean) / sqrt(var + epsilon) · gamma + beta` over the last dim of `x` `[m, d]`.
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// The gradients of `x`, `gamma` and `beta` given the upstream gradient `grad`.
    fn layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Layer normalisation of the last dim, as burn's `burn::tensor::module::layer_norm` (which
/// `burn::nn::LayerNorm` calls): on flex in f32 one parallel pass each way and one autodiff
/// node, burn's op elsewhere.
///
/// # Shapes
/// - `x`: `[..., d]`; `gamma`, `beta`: `[d]`; output: `[..., d]`.
///
/// # Panics
/// If `gamma` or `beta` is not `[d]`.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
///
/// let device = engram_tensor::device(None).unwrap();
/// let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let gamma = Tensor::<1>::ones([3], &device);
/// let y = engram_tensor::layer_norm(x, gamma, None, 1e-5);
/// let y = y.into_data().to_vec::<f32>().unwrap();
/// // Mean 2, variance 2/3: (-1, 0, 1) / sqrt(2/3).
/// assert!((y[0] + 1.224_74).abs() < 1e-4 && y[1].abs() < 1e-6 && (y[2] - 1.224_74).abs() < 1e-4);
/// ```
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    epsilon: f64,
) -> Tensor<D> {
    let dims = x.dims();
    let d = dims[D - 1];
    assert!(
        gamma.dims() == [d] && beta.as_ref().is_none_or(|b| b.dims() == [d]),
        "layer_norm: gamma {:?} and beta {:?} must be [{d}], the last dim of x {dims:?}",
        gamma.dims(),
        beta.as_ref().map(|b| b.dims())
    );
    let device = x.device();
    let f32s = [x.dtype(), gamma.dtype()].into_iter().all(|t| t == DType::F32)
        && beta.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    if backend_of(&device) != Some(Backend::Flex) || !f32s {
        return burn::tensor::module::layer_norm(x, gamma, beta, epsilon);
    }
    let rows = dims[..D - 1].iter().product::<usize>();
    // Without a shift, a zero one: its gradient is computed and dropped.
    let beta = beta.unwrap_or_else(|| Tensor::zeros([d], &device));
    let y = <Dispatch as LayerNormBackend>::layer_norm_forward(
        x.reshape([rows, d]).into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

#[cfg(feature = "flex")]
use crate::backend::flex_f32;

#[cfg(feature = "flex")]
impl LayerNormBackend for burn::backend::Flex {
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let [m, d] = dims2(&x);
        let (x, gamma, beta) = (x.to_contiguous(), gamma.to_contiguous(), beta.to_contiguous());
        let y = host::forward(f32s(&x), f32s(&gamma), f32s(&beta), d, epsilon as f32);
        flex_f32(y, [m, d])
    }

    fn layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [m, d] = dims2(&x);
        let (x, gamma, grad) = (x.to_contiguous(), gamma.to_contiguous(), grad.to_contiguous());
        let (dx, dgamma, dbeta) =
            host::backward(f32s(&x), f32s(&gamma), f32s(&grad), d, epsilon as f32);
        (flex_f32(dx, [m, d]), flex_f32(dgamma, [d]), flex_f32(dbeta, [d]))
    }
}

#[cfg(feature = "flex")]
fn dims2(t: &burn::backend::flex::FlexTensor) -> [usize; 2] {
    let shape = t.layout().shape();
    [shape[0], shape[1]]
}

#[cfg(feature = "flex")]
fn f32s(t: &burn::backend::flex::FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("layer_norm: a contiguous f32 tensor")
}

/// The backward step; its state is the input, the scale and epsilon.
#[derive(Debug)]
struct LayerNormBackward;

impl<B: LayerNormBackend> Backward<B, 3> for LayerNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, epsilon) = ops.state;
        let (dx, dgamma, dbeta) = B::layer_norm_backward(x, gamma, grad, epsilon);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dgamma, dbeta]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: LayerNormBackend, C: CheckpointStrategy> LayerNormBackend for Autodiff<B, C> {
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        match LayerNormBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                let y =
                    B::layer_norm_forward(x.clone(), gamma.clone(), beta.into_primitive(), epsilon);
                prep.finish((x, gamma, epsilon), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::layer_norm_forward(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            )),
        }
    }

    fn layer_norm_backward(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        panic!("layer_norm: second derivatives are not supported")
    }
}

/// The kernels on host rows of width `d`.
#[cfg(feature = "flex")]
mod host {
    use rayon::prelude::*;

    /// Rows per parallel task.
    const ROWS: usize = 64;

    /// `Σ f(i)` for `i < n` in eight interleaved partial sums, which the compiler vectorises
    /// (one running sum is a chain of dependent additions).
    #[inline(always)]
    fn sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
        let mut lanes = [0.0f32; 8];
        let whole = n / 8 * 8;
        for i in (0..whole).step_by(8) {
            for (l, lane) in lanes.iter_mut().enumerate() {
                *lane += f(i + l);
            }
        }
        lanes.iter().sum::<f32>() + (whole..n).map(f).sum::<f32>()
    }

    /// The mean and `1 / sqrt(var + epsilon)` of a row (two passes, for accuracy).
    #[inline(always)]
    fn moments(row: &[f32], epsilon: f32) -> (f32, f32) {
        let n = row.len();
        let mean = sum(n, |i| row[i]) / n as f32;
        let var = sum(n, |i| (row[i] - mean) * (row[i] - mean)) / n as f32;
        (mean, 1.0 / (var + epsilon).sqrt())
    }

    pub(super) fn forward(x: &[f32], gamma: &[f32], beta: &[f32], d: usize, eps: f32) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        if d == 0 {
            return y;
        }
        y.par_chunks_mut(ROWS * d).zip(x.par_chunks(ROWS * d)).for_each(|(ys, xs)| {
            for (y, x) in ys.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
                let (mean, rstd) = moments(x, eps);
                for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
                    *y = (x - mean) * rstd * g + b;
                }
            }
        });
        y
    }

    /// `dx = rstd (g·γ - mean(g·γ) - x̂ mean(g·γ·x̂))`, `dγ = Σ g·x̂`, `dβ = Σ g` over rows.
    pub(super) fn backward(
        x: &[f32],
        gamma: &[f32],
        grad: &[f32],
        d: usize,
        eps: f32,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut dx = vec![0.0f32; x.len()];
        if d == 0 {
            return (dx, Vec::new(), Vec::new());
        }
        let zeros = || (vec![0.0f32; d], vec![0.0f32; d]);
        let (dgamma, dbeta) = dx
            .par_chunks_mut(ROWS * d)
            .zip(x.par_chunks(ROWS * d).zip(grad.par_chunks(ROWS * d)))
            .fold(zeros, |(mut dgamma, mut dbeta), (dxs, (xs, gs))| {
                let rows = dxs.chunks_exact_mut(d).zip(xs.chunks_exact(d).zip(gs.chunks_exact(d)));
                for (dx, (x, g)) in rows {
                    let (mean, rstd) = moments(x, eps);
                    let sum_gy = sum(d, |i| g[i] * gamma[i]);
                    let sum_gy_xhat = sum(d, |i| g[i] * gamma[i] * (x[i] - mean) * rstd);
                    for (((&x, &g), dg), db) in
                        x.iter().zip(g).zip(dgamma.iter_mut()).zip(dbeta.iter_mut())
                    {
                        *dg += g * (x - mean) * rstd;
                        *db += g;
                    }
                    let (mean_gy, mean_gy_xhat) = (sum_gy / d as f32, sum_gy_xhat / d as f32);
                    for (((dx, &x), &g), &gm) in dx.iter_mut().zip(x).zip(g).zip(gamma) {
                        let xhat = (x - mean) * rstd;
                        *dx = rstd * (g * gm - mean_gy - xhat * mean_gy_xhat);
                    }
                }
                (dgamma, dbeta)
            })
            .reduce(zeros, |(mut ga, mut ba), (gb, bb)| {
                ga.iter_mut().zip(gb).for_each(|(a, b)| *a += b);
                ba.iter_mut().zip(bb).for_each(|(a, b)| *a += b);
                (ga, ba)
            });
        (dx, dgamma, dbeta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Tolerance, assert_close, seeded_values, test_device, to_f64};
    use burn::tensor::TensorData;

    /// Output and the gradients of input, scale and shift against burn's composed layer norm
    /// on the same values, with and without a shift, rows spanning several parallel tasks.
    #[test]
    fn matches_burns_layer_norm_and_its_gradients() {
        let device = test_device().autodiff();
        let on = |seed, shape: Vec<usize>| {
            let values = seeded_values(seed, shape.iter().product());
            Tensor::<1>::from_data(
                TensorData::new(values, [shape.iter().product::<usize>()]),
                &device,
            )
        };
        let (rows, d) = (150, 48);
        for with_beta in [true, false] {
            let x = on(1, vec![rows, d]).reshape([3, rows / 3, d]) * 3.0 + 1.0;
            let gamma = on(2, vec![d]) + 1.0;
            let beta = on(3, vec![d]);
            let w = on(4, vec![rows * d]).reshape([3, rows / 3, d]);
            let inputs = || {
                (
                    x.clone().detach().require_grad(),
                    gamma.clone().detach().require_grad(),
                    beta.clone().detach().require_grad(),
                )
            };
            let (xa, ga, ba) = inputs();
            let (xb, gb, bb) = inputs();
            let ours = layer_norm(xa.clone(), ga.clone(), with_beta.then(|| ba.clone()), 1e-5);
            let theirs = burn::tensor::module::layer_norm(
                xb.clone(),
                gb.clone(),
                with_beta.then(|| bb.clone()),
                1e-5,
            );
            assert_close(ours.clone(), &to_f64(theirs.clone()), Tolerance::new(1e-5, 1e-4));
            let grads_a = (ours * w.clone()).sum().backward();
            let grads_b = (theirs * w.clone()).sum().backward();
            let tol = Tolerance::new(1e-4, 1e-4);
            assert_close(xa.grad(&grads_a).unwrap(), &to_f64(xb.grad(&grads_b).unwrap()), tol);
            assert_close(ga.grad(&grads_a).unwrap(), &to_f64(gb.grad(&grads_b).unwrap()), tol);
            if with_beta {
                assert_close(ba.grad(&grads_a).unwrap(), &to_f64(bb.grad(&grads_b).unwrap()), tol);
            }
        }
    }

    #[test]
    fn constant_rows_give_the_shift() {
        let device = test_device();
        let x = Tensor::<2>::ones([4, 8], &device) * 5.0;
        let gamma = Tensor::<1>::ones([8], &device);
        let beta = Tensor::<1>::ones([8], &device) * 0.5;
        assert_close(layer_norm(x, gamma, Some(beta), 1e-5), &[0.5; 32], Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "layer_norm: gamma [4] and beta None must be [8]")]
    fn panics_on_a_scale_of_the_wrong_width() {
        let device = test_device();
        layer_norm(Tensor::<2>::ones([2, 8], &device), Tensor::ones([4], &device), None, 1e-5);
    }
}
