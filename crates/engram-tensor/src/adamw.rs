//! One AdamW update of a parameter tensor in a single parallel pass on flex.
//!
//! burn's `AdamW` updates each parameter with about a dozen tensor ops (moments, bias
//! corrections, square root, division, decay, step), each a pass over memory that allocates its
//! result. For the 6.7 million parameters of `tasks/classifier_step` (5.1 million of them the
//! embedding) that was about a twentieth of the step's CPU samples. Here the whole update is one
//! pass over the parameter, its gradient and both moments, in parallel chunks; other backends
//! and dtypes compute the same formula with tensor ops.

// Without flex, the dispatch the extension macro generates has no backend to pass the
// non-tensor arguments to.
#![cfg_attr(not(feature = "flex"), allow(unused_variables))]

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend as BurnBackend, Dispatch, backend_extension};
use burn::tensor::{DType, Tensor};

use crate::backend::{Backend, backend_of};

/// The settings of one AdamW update (Loshchilov & Hutter, 2019), as burn's `AdamW` applies them:
/// `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, then
/// `θ ← θ(1 − lr·λ) − lr · m̂ / (√v̂ + ε)` with `m̂ = m / (1 − β₁ᵗ)`, `v̂ = v / (1 − β₂ᵗ)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// Learning rate of this step.
    pub lr: f64,
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment decay β₂.
    pub beta2: f32,
    /// ε added to `√v̂`.
    pub epsilon: f32,
    /// Decoupled weight decay λ.
    pub weight_decay: f32,
    /// The step's number `t`, from 1.
    pub time: usize,
}

impl AdamWStep {
    /// `(1 − β₁ᵗ, 1 − β₂ᵗ)`, in f32 as burn computes them.
    fn corrections(&self) -> (f32, f32) {
        let t = self.time as i32;
        (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t))
    }
}

/// The update as a backend operation (flex only; [`adamw_step`] sends nothing else here).
#[backend_extension(Flex: cfg(feature = "flex"))]
pub trait AdamWBackend: BurnBackend {
    /// The updated parameter and moments.
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// One AdamW update of `param` given its gradient and its moments from the previous step
/// (`None` at the first step, as zeros): returns the updated parameter and moments. One
/// parallel pass on flex in f32; tensor ops with the same formula elsewhere.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use engram_tensor::{AdamWStep, adamw_step};
///
/// let device = engram_tensor::device(None).unwrap();
/// let param = Tensor::<1>::from_floats([1.0, -2.0], &device);
/// let grad = Tensor::<1>::from_floats([0.5, 0.5], &device);
/// let step = AdamWStep {
///     lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0, time: 1,
/// };
/// let (param, m, v) = adamw_step(param, grad, None, step);
/// // The first step moves each parameter by about lr against the sign of its gradient.
/// let values = param.into_data().to_vec::<f32>().unwrap();
/// assert!((values[0] - 0.9).abs() < 1e-5 && (values[1] + 2.1).abs() < 1e-5);
/// ```
///
/// # Panics
/// If the shapes of the parameter, gradient and moments differ, or `step.time` is 0.
pub fn adamw_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    step: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    assert!(step.time > 0, "adamw_step: the step number starts at 1, got 0");
    let (m, v) = moments.unwrap_or_else(|| (param.zeros_like(), param.zeros_like()));
    let shapes = [param.dims(), grad.dims(), m.dims(), v.dims()];
    assert!(
        shapes.iter().all(|s| *s == shapes[0]),
        "adamw_step: parameter, gradient and moments of shapes {shapes:?}"
    );
    let flex = backend_of(&param.device()) == Some(Backend::Flex)
        && [&param, &grad, &m, &v].iter().all(|t| t.dtype() == DType::F32);
    if !flex {
        return composed(param, grad, m, v, step);
    }
    let (p, m, v) = <Dispatch as AdamWBackend>::adamw_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        step,
    );
    (Tensor::from_dispatch(p), Tensor::from_dispatch(m), Tensor::from_dispatch(v))
}

/// The update with tensor ops, in burn's `AdamW` order.
fn composed<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    step: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let m = m.mul_scalar(step.beta1).add(grad.clone().mul_scalar(1.0 - step.beta1));
    let v = v.mul_scalar(step.beta2).add(grad.square().mul_scalar(1.0 - step.beta2));
    let (c1, c2) = step.corrections();
    let delta =
        m.clone().div_scalar(c1).div(v.clone().div_scalar(c2).sqrt().add_scalar(step.epsilon));
    let decay = step.lr * f64::from(step.weight_decay);
    let decayed = if decay == 0.0 { param } else { param.mul_scalar(1.0 - decay) };
    (decayed - delta.mul_scalar(step.lr), m, v)
}

#[cfg(feature = "flex")]
impl AdamWBackend for burn::backend::Flex {
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        use rayon::prelude::*;

        let shape = param.layout().shape().clone();
        let inputs = [param, grad, moment_1, moment_2].map(|t| t.to_contiguous());
        let [p, g, m, v] =
            inputs.each_ref().map(|t| t.as_slice::<f32>().expect("adamw_step: f32 tensors"));
        let (c1, c2) = step.corrections();
        let (b1, b2, eps) = (step.beta1, step.beta2, step.epsilon);
        let lr = step.lr as f32;
        let decay = step.lr * f64::from(step.weight_decay);
        let keep = (1.0 - decay) as f32;
        let n = p.len();
        let mut out = [(); 3].map(|_| Vec::<f32>::with_capacity(n));
        let [op, om, ov] = out.each_mut().map(|o| o.spare_capacity_mut());
        const CHUNK: usize = 1 << 14;
        op.par_chunks_mut(CHUNK)
            .zip(om.par_chunks_mut(CHUNK))
            .zip(ov.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, ((op, om), ov))| {
                let range = c * CHUNK..c * CHUNK + op.len();
                let inputs = p[range.clone()]
                    .iter()
                    .zip(&g[range.clone()])
                    .zip(&m[range.clone()])
                    .zip(&v[range]);
                let outputs = op.iter_mut().zip(om.iter_mut()).zip(ov.iter_mut());
                for ((((&p, &g), &m), &v), ((op, om), ov)) in inputs.zip(outputs) {
                    let m = m * b1 + g * (1.0 - b1);
                    let v = v * b2 + g * g * (1.0 - b2);
                    let delta = (m / c1) / ((v / c2).sqrt() + eps);
                    let decayed = if decay == 0.0 { p } else { p * keep };
                    op.write(decayed - delta * lr);
                    om.write(m);
                    ov.write(v);
                }
            });
        let [mut p, mut m, mut v] = out;
        // SAFETY: the chunks cover `0..n` and the loop wrote every element of each.
        unsafe {
            p.set_len(n);
            m.set_len(n);
            v.set_len(n);
        }
        let tensor = |values| crate::backend::flex_f32(values, shape.clone());
        (tensor(p), tensor(m), tensor(v))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::testing::{Tolerance, assert_close, test_device, to_f64};

    /// Three steps from zero moments: the fused pass against the composed ops and against the
    /// formula written out in f64.
    #[test]
    fn fused_and_composed_updates_agree_with_the_formula() {
        let device = test_device();
        let n = 40_000;
        let mut state = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        let mut composed_state = state.clone();
        let mut moments = None;
        let mut composed_moments = None;
        let (mut p64, mut m64, mut v64) = (to_f64(state.clone()), vec![0.0; n], vec![0.0; n]);
        for time in 1..=3 {
            let step = AdamWStep {
                lr: 0.01 * time as f64,
                beta1: 0.9,
                beta2: 0.99,
                epsilon: 1e-6,
                weight_decay: 0.1,
                time,
            };
            let grad = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
            let g64 = to_f64(grad.clone());
            let (p, m, v) = adamw_step(state, grad.clone(), moments, step);
            let (cp, cm, cv) = composed(
                composed_state,
                grad,
                composed_moments
                    .as_ref()
                    .map_or(p.zeros_like(), |(m, _): &(Tensor<1>, _)| m.clone()),
                composed_moments
                    .as_ref()
                    .map_or(p.zeros_like(), |(_, v): &(_, Tensor<1>)| v.clone()),
                step,
            );
            let (b1, b2) = (0.9f64, 0.99f64);
            for i in 0..n {
                m64[i] = b1 * m64[i] + (1.0 - b1) * g64[i];
                v64[i] = b2 * v64[i] + (1.0 - b2) * g64[i] * g64[i];
                let m_hat = m64[i] / (1.0 - b1.powi(time as i32));
                let v_hat = v64[i] / (1.0 - b2.powi(time as i32));
                p64[i] = p64[i] * (1.0 - step.lr * 0.1) - step.lr * m_hat / (v_hat.sqrt() + 1e-6);
            }
            assert_close(p.clone(), &p64, Tolerance::F32);
            assert_close(m.clone(), &m64, Tolerance::F32);
            assert_close(v.clone(), &v64, Tolerance::F32);
            assert_close(cp.clone(), &to_f64(p.clone()), Tolerance::F32);
            assert_close(cm.clone(), &to_f64(m.clone()), Tolerance::F32);
            assert_close(cv.clone(), &to_f64(v.clone()), Tolerance::F32);
            state = p;
            moments = Some((m, v));
            composed_state = cp;
            composed_moments = Some((cm, cv));
        }
    }

    #[test]
    #[should_panic(expected = "adamw_step: parameter, gradient and moments of shapes")]
    fn panics_on_mismatched_shapes() {
        let device = test_device();
        let step = AdamWStep {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            time: 1,
        };
        adamw_step(Tensor::<1>::zeros([3], &device), Tensor::<1>::zeros([4], &device), None, step);
    }
}
