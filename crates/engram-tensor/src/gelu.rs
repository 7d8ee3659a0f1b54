//! GELU, optionally followed by dropout, as one parallel pass on flex with its own backward.
//!
//! burn computes GELU on flex one element at a time with `libm::erff`, and its backward as a
//! chain of tensor ops (each a pass over memory on one thread); dropout after it is a third
//! pass and keeps its mask for the backward. In `tasks/classifier_step` (two feed-forward
//! layers of `[32, 128, 1024]`) GELU forward and backward were about a tenth of the CPU time.
//! Here the forward is one pass over the input that also applies the dropout mask, the backward
//! one pass that regenerates the mask from its seed, both split among threads, with `erf` and
//! `exp` written so that the compiler vectorises them (8 lanes where the CPU has AVX2). GELU
//! fell to about 3 % of that step's CPU samples. The mask is [`dropout_with`]'s: the
//! same seed gives the same mask whether dropout runs fused or after burn's GELU.
//!
//! [`dropout_with`]: crate::dropout_with

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
use burn::nn::Dropout;
use burn::tensor::activation;
use burn::tensor::{DType, Tensor};

use crate::backend::{Backend, backend_of};
use crate::dropout::DropMask;

/// What the fused op applies after GELU: a dropout mask, or nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeluSpec {
    /// The mask, or `None` without dropout.
    mask: Option<DropMask>,
}

/// Fused GELU and dropout as a backend operation (flex only; [`gelu_dropout`] sends nothing
/// else here).
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait GeluBackend: BurnBackend {
    /// `gelu(x)`, times the dropout mask if any.
    fn gelu_dropout(x: FloatTensor<Self>, spec: GeluSpec) -> FloatTensor<Self>;

    /// The gradient with respect to `x` given the upstream gradient `grad`.
    fn gelu_dropout_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: GeluSpec,
    ) -> FloatTensor<Self>;
}

/// `gelu(x)` (the exact, erf form), then `layer`'s dropout when it applies (training on an
/// autodiff device with `p > 0`, as [`dropout`](crate::dropout) decides): one parallel pass
/// each way on flex in f32, burn's GELU then [`dropout`](crate::dropout) elsewhere.
///
/// # Example
/// ```
/// use burn::nn::DropoutConfig;
/// use burn::tensor::Tensor;
///
/// let device = engram_tensor::device(None).unwrap();
/// let x = Tensor::<1>::from_floats([-1.0, 0.0, 2.0], &device);
/// let y = engram_tensor::gelu_dropout(x, &DropoutConfig::new(0.1).init());
/// // No autodiff device, so no dropout: GELU alone.
/// let y = y.into_data().to_vec::<f32>().unwrap();
/// assert!((y[0] + 0.158_655).abs() < 1e-5 && y[1] == 0.0 && (y[2] - 1.954_500).abs() < 1e-5);
/// ```
pub fn gelu_dropout<const D: usize>(x: Tensor<D>, layer: &Dropout) -> Tensor<D> {
    let device = x.device();
    let dropping = layer.training.is_enabled() && device.is_autodiff() && layer.prob > 0.0;
    if backend_of(&device) != Some(Backend::Flex) || x.dtype() != DType::F32 {
        let y = activation::gelu(x);
        return if dropping { crate::dropout_with(y, layer.prob) } else { y };
    }
    let mask = dropping.then(|| DropMask::draw(&device, layer.prob));
    fused(x, mask)
}

/// The fused op on a flex f32 tensor.
fn fused<const D: usize>(x: Tensor<D>, mask: Option<DropMask>) -> Tensor<D> {
    let y = <Dispatch as GeluBackend>::gelu_dropout(x.into_dispatch(), GeluSpec { mask });
    Tensor::<D>::from_dispatch(y)
}

#[cfg(feature = "flex")]
impl GeluBackend for burn::backend::Flex {
    fn gelu_dropout(x: FloatTensor<Self>, spec: GeluSpec) -> FloatTensor<Self> {
        let shape = x.layout().shape().clone();
        let x = x.to_contiguous();
        let xs = x.as_slice::<f32>().expect("gelu_dropout: f32 input");
        let y = host::map(xs, None, spec.mask, host::forward);
        crate::backend::flex_f32(y, shape)
    }

    fn gelu_dropout_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: GeluSpec,
    ) -> FloatTensor<Self> {
        let shape = x.layout().shape().clone();
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let xs = x.as_slice::<f32>().expect("gelu_dropout: f32 input");
        let gs = grad.as_slice::<f32>().expect("gelu_dropout: f32 gradient");
        let dx = host::map(xs, Some(gs), spec.mask, host::backward);
        crate::backend::flex_f32(dx, shape)
    }
}

/// The backward step; its state is the input and the settings (the mask is regenerated).
#[derive(Debug)]
struct GeluBackward;

impl<B: GeluBackend> Backward<B, 1> for GeluBackward {
    type State = (FloatTensor<B>, GeluSpec);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, spec) = ops.state;
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::gelu_dropout_backward(x, grad, spec));
        }
    }
}

impl<B: GeluBackend, C: CheckpointStrategy> GeluBackend for Autodiff<B, C> {
    fn gelu_dropout(x: FloatTensor<Self>, spec: GeluSpec) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                prep.finish((x.clone(), spec), B::gelu_dropout(x, spec))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::gelu_dropout(x.into_primitive(), spec)),
        }
    }

    fn gelu_dropout_backward(
        _x: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _spec: GeluSpec,
    ) -> FloatTensor<Self> {
        panic!("gelu_dropout_backward: second derivatives are not supported");
    }
}

/// The element-wise kernels on host slices.
#[cfg(any(feature = "flex", test))]
mod host {
    #[cfg(feature = "flex")]
    use std::mem::MaybeUninit;

    #[cfg(feature = "flex")]
    use rayon::prelude::*;

    #[cfg(feature = "flex")]
    use crate::dropout::{CHUNK, DropMask};

    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    /// 1 / √(2π).
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

    #[cfg(feature = "flex")]
    /// `f(x[i], grad[i])` times the mask at `i` (1 without a mask), in parallel chunks of
    /// [`CHUNK`] elements.
    pub(super) fn map(
        x: &[f32],
        grad: Option<&[f32]>,
        mask: Option<DropMask>,
        f: impl Fn(f32, f32) -> f32 + Copy + Sync,
    ) -> Vec<f32> {
        let n = x.len();
        let mut out = Vec::<f32>::with_capacity(n);
        out.spare_capacity_mut().par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
            let start = c * CHUNK;
            let xs = &x[start..start + chunk.len()];
            match grad {
                Some(g) => apply(chunk, xs, &g[start..start + chunk.len()], f),
                None => apply(chunk, xs, xs, f),
            }
            if let Some(mask) = mask {
                // SAFETY: `apply` initialised every element of the chunk.
                let chunk = unsafe { &mut *(chunk as *mut [MaybeUninit<f32>] as *mut [f32]) };
                mask.apply(start, chunk);
            }
        });
        // SAFETY: the chunks cover `0..n` and `apply` wrote every element.
        unsafe { out.set_len(n) };
        out
    }

    #[cfg(feature = "flex")]
    /// `out[i] = f(x[i], g[i])`, in 8-wide AVX2 vectors where the CPU has them.
    fn apply(out: &mut [MaybeUninit<f32>], x: &[f32], g: &[f32], f: impl Fn(f32, f32) -> f32) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected at run time.
            return unsafe { apply_avx2(out, x, g, f) };
        }
        apply_any(out, x, g, f);
    }

    #[cfg(feature = "flex")]
    /// [`apply_any`] compiled for AVX2 (the build's baseline is SSE2, four lanes).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_avx2(
        out: &mut [MaybeUninit<f32>],
        x: &[f32],
        g: &[f32],
        f: impl Fn(f32, f32) -> f32,
    ) {
        apply_any(out, x, g, f);
    }

    #[cfg(feature = "flex")]
    /// One loop over zipped slices, generic in `f` so that `f` is inlined and the loop
    /// vectorises.
    #[inline(always)]
    fn apply_any(out: &mut [MaybeUninit<f32>], x: &[f32], g: &[f32], f: impl Fn(f32, f32) -> f32) {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
            o.write(f(x, g));
        }
    }

    /// `gelu(x) = x Φ(x)`; the second argument is unused.
    #[inline(always)]
    pub(super) fn forward(x: f32, _: f32) -> f32 {
        let (cdf, _) = cdf_pdf(x);
        x * cdf
    }

    /// `grad · gelu'(x) = grad (Φ(x) + x φ(x))`.
    #[inline(always)]
    pub(super) fn backward(x: f32, grad: f32) -> f32 {
        let (cdf, pdf) = cdf_pdf(x);
        grad * (cdf + x * pdf)
    }

    /// The standard normal distribution function Φ(x) and density φ(x), sharing one
    /// `exp(-x²/2)`: Φ(x) = (1 + erf(x/√2)) / 2 with erf from Abramowitz and Stegun 7.1.26
    /// (absolute error ≤ 1.5e-7).
    #[inline(always)]
    pub(super) fn cdf_pdf(x: f32) -> (f32, f32) {
        let z = (x * FRAC_1_SQRT_2).abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * z);
        let poly = t
            * (0.254_829_6
                + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
        let e = exp(-z * z);
        let erf = (1.0 - poly * e).copysign(x);
        (0.5 + 0.5 * erf, FRAC_1_SQRT_2PI * e)
    }

    /// `exp(x)` for `x ≤ 0` within about 2 ulp, flushing below `exp(-87)` to 0, in operations
    /// that vectorise (`f32::exp` is a libm call per element).
    #[inline(always)]
    pub(super) fn exp(x: f32) -> f32 {
        const LOG2_E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_145_75;
        const LN2_LO: f32 = 1.428_606_8e-6;
        // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer.
        const ROUND: f32 = 12_582_912.0;
        let clamped = x.max(-87.0);
        // `shifted` holds n = round(x / ln 2) in its low mantissa bits (1.5 · 2²³ + n).
        let shifted = clamped * LOG2_E + ROUND;
        let n = shifted - ROUND;
        let r = (clamped - n * LN2_HI) - n * LN2_LO;
        // Taylor series of exp(r) for |r| ≤ ln2/2, to r⁶/720 (remainder ≤ 1.2e-7 relative).
        let p = 1.0
            + r * (1.0
                + r * (0.5
                    + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
        // 2ⁿ from n's bits: integer lanes, where `n as i32` would saturate element by element.
        let scale = f32::from_bits((shifted.to_bits().wrapping_sub(0x4b40_0000 - 127)) << 23);
        if x < -87.0 { 0.0 } else { p * scale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Tolerance, assert_close, test_device, to_f64};
    use burn::nn::DropoutConfig;
    use burn::tensor::Distribution;

    /// Φ(x) in f64 from the complementary error function's continued fraction is overkill; the
    /// series below converges fast for |x| ≤ 8 and is exact to f64 rounding there.
    fn phi(x: f64) -> f64 {
        // erf(z) = 2/√π Σ (-1)^n z^(2n+1) / (n! (2n+1)), summed until terms vanish.
        let z = x / std::f64::consts::SQRT_2;
        if z.abs() > 5.0 {
            return if z > 0.0 { 1.0 } else { 0.0 };
        }
        let (mut term, mut sum, mut n) = (z, z, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        0.5 + sum / std::f64::consts::PI.sqrt()
    }

    fn samples() -> Vec<f32> {
        (0..=2400).map(|i| -12.0 + i as f32 * 0.01).collect()
    }

    #[test]
    fn host_exp_matches_std_within_two_ulp() {
        for i in 0..=100_000 {
            let x = -87.0 * i as f32 / 100_000.0;
            let (ours, exact) = (host::exp(x), (x as f64).exp());
            assert!(
                ((ours as f64 - exact) / exact).abs() < 2.5e-7,
                "exp({x}) = {ours}, expected {exact}"
            );
        }
        assert_eq!(host::exp(-87.01), 0.0);
        assert_eq!(host::exp(-1e30), 0.0);
    }

    #[test]
    fn host_gelu_and_derivative_match_f64() {
        for x in samples() {
            let xd = x as f64;
            let pdf = (-xd * xd / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let (value, slope) = (xd * phi(xd), phi(xd) + xd * pdf);
            let (ours, ours_slope) = (host::forward(x, 0.0), host::backward(x, 1.0));
            assert!((ours as f64 - value).abs() < 2e-6 * (1.0 + xd.abs()), "gelu({x})");
            assert!((ours_slope as f64 - slope).abs() < 2e-6 * (1.0 + xd.abs()), "gelu'({x})");
        }
    }

    #[test]
    fn agrees_with_burn_gelu_and_its_gradient() {
        let device = test_device().autodiff();
        let values = samples();
        let n = values.len();
        let x = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([n / 7, 7]);
        let plain = DropoutConfig::new(0.0).init();
        let (a, b) = (x.clone().require_grad(), x.require_grad());
        let ours = gelu_dropout(a.clone(), &plain);
        let burns = activation::gelu(b.clone());
        assert_close(ours.clone(), &to_f64(burns.clone()), Tolerance::F32);
        // A weighted sum, so that the upstream gradient is not all ones.
        let w = Tensor::<2>::random([n / 7, 7], Distribution::Normal(0.0, 1.0), &device);
        let ga = a.grad(&(ours * w.clone()).sum().backward()).unwrap();
        let gb = b.grad(&(burns * w).sum().backward()).unwrap();
        assert_close(ga, &to_f64(gb), Tolerance::F32);
    }

    /// The fused op runs on flex whatever `ENGRAM_BACKEND` says.
    #[cfg(feature = "flex")]
    #[test]
    fn fused_dropout_is_dropout_after_gelu_with_the_same_seed() {
        let device = crate::device(Some("flex")).unwrap().autodiff();
        // Several chunks and an odd tail, so the mask's pairing and chunking are exercised.
        let dims = [3, crate::dropout::CHUNK / 2 + 7];
        let n = dims[0] * dims[1];
        let x = Tensor::<2>::random(dims, Distribution::Normal(0.0, 2.0), &device);
        let (a, b) = (x.clone().require_grad(), x.require_grad());
        // An explicit seed: `Device::seed` is shared with tests running in parallel.
        let fused = fused(a.clone(), Some(DropMask::new(11, 0.3)));
        let mask = DropMask::new(11, 0.3).values(n);
        let mask = Tensor::<2>::from_data(burn::tensor::TensorData::new(mask, dims), &device);
        let separate = activation::gelu(b.clone()) * mask;
        assert_close(fused.clone(), &to_f64(separate.clone()), Tolerance::F32);
        let dropped = to_f64(fused.clone()).iter().filter(|&&v| v == 0.0).count();
        let share = dropped as f64 / n as f64;
        assert!((share - 0.3).abs() < 0.01, "dropped share {share}");
        let ga = a.grad(&fused.sum().backward()).unwrap();
        let gb = b.grad(&separate.sum().backward()).unwrap();
        assert_close(ga, &to_f64(gb), Tolerance::F32);
    }

    #[test]
    fn dropout_applies_only_in_training_on_autodiff() {
        let device = test_device().autodiff();
        let x = Tensor::<1>::ones([4096], &device);
        let dropped = |y: Tensor<1>| to_f64(y).iter().filter(|&&v| v == 0.0).count();
        assert!(dropped(gelu_dropout(x.clone(), &DropoutConfig::new(0.5).init())) > 1000);
        assert_eq!(dropped(gelu_dropout(x, &DropoutConfig::new(0.0).init())), 0);
    }

    #[test]
    fn no_dropout_at_inference() {
        let device = test_device();
        let layer = DropoutConfig::new(0.5).init();
        let x = Tensor::<1>::from_floats([-1.0, 0.5, 3.0], &device);
        let y = gelu_dropout(x.clone(), &layer);
        assert_close(y, &to_f64(activation::gelu(x)), Tolerance::F32);
    }
}
