//! Optimisers, learning-rate schedules and global-norm gradient clipping.
//!
//! The schedules are pure functions of the step, so a resumed run needs only the step count to
//! continue on the same curve. burn's `GradientClipping::Norm` clips each parameter on its own;
//! [`clip_global_norm`] scales all gradients by one factor, as PyTorch's `clip_grad_norm_`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer,
    SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::tensor::{Device, Tensor};
use engram_tensor::{AdamWStep, adamw_step};
use serde::{Deserialize, Serialize};

/// The optimiser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// AdamW (Loshchilov & Hutter, 2019): decoupled weight decay.
    #[serde(rename = "adamw", alias = "adam_w")]
    AdamW {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
    },
    /// Stochastic gradient descent with momentum and L2 weight decay.
    Sgd {
        /// Momentum factor (0 for none).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty (0 for none).
        weight_decay: f32,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, weight_decay: 0.01 }
    }
}

impl OptimizerConfig {
    /// The optimiser for this configuration: [`AdamW`] or burn's SGD.
    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            OptimizerConfig::AdamW { beta1, beta2, weight_decay } => {
                ModuleOptimizer::from(AdamW { beta1, beta2, epsilon: 1e-8, weight_decay })
            }
            OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                }))
                .with_weight_decay(
                    (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay)),
                )
                .init(),
        }
    }
}

/// AdamW whose update is [`engram_tensor::adamw_step`]: one parallel pass per parameter on flex
/// instead of burn's dozen tensor ops (about a twentieth of a transformer classifier's training
/// step). Its state is burn's [`AdamWState`], so checkpoints are those burn's `AdamW` writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
}

impl Optimizer for AdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (moments, time) = match state {
            Some(AdamWState { momentum }) => {
                (Some((momentum.moment_1, momentum.moment_2)), momentum.time + 1)
            }
            None => (None, 1),
        };
        let step = AdamWStep {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            time,
        };
        let (tensor, moment_1, moment_2) = adamw_step(tensor, grad, moments, step);
        let momentum = AdaptiveMomentumState { time, moment_1, moment_2, max_moment_2: None };
        (tensor, Some(AdamWState { momentum }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// The learning rate over training, relative to the peak rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The peak rate throughout.
    Constant,
    /// Linear warm-up over `warmup_steps`, then cosine decay to zero at the last step.
    WarmupCosine {
        /// Steps of linear warm-up.
        warmup_steps: usize,
    },
    /// Noam (Vaswani et al., 2017): linear warm-up, then decay as `1/√step`; scaled so that the
    /// peak, at `warmup_steps`, is the configured rate.
    Noam {
        /// Steps of linear warm-up.
        warmup_steps: usize,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::WarmupCosine { warmup_steps: 100 }
    }
}

impl Schedule {
    /// The rate at `step` (0-based) of `total_steps`, for a peak rate `peak`.
    pub fn rate(&self, peak: f64, step: usize, total_steps: usize) -> f64 {
        let t = (step + 1) as f64;
        match *self {
            Schedule::Constant => peak,
            Schedule::WarmupCosine { warmup_steps } => {
                let warmup = warmup_steps as f64;
                if t <= warmup {
                    return peak * t / warmup;
                }
                let span = (total_steps as f64 - warmup).max(1.0);
                let progress = ((t - warmup) / span).min(1.0);
                peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Noam { warmup_steps } => {
                let warmup = warmup_steps.max(1) as f64;
                peak * (t / warmup).min((warmup / t).sqrt())
            }
        }
    }
}

/// Sums the squares of every gradient of `module`'s float parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.sum += grad.square().sum().into_scalar::<f32>() as f64;
        }
    }
}

/// Scales every gradient by one factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm`; returns the norm before
/// clipping.
///
/// # Panics
/// If `max_norm` is not positive.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    assert!(max_norm > 0.0, "clip_global_norm: max_norm must be positive, got {max_norm}");
    let mut squared = SquaredNorm { grads, sum: 0.0 };
    module.visit(&mut squared);
    let norm = squared.sum.sqrt();
    if norm > max_norm {
        module.visit(&mut Scale { grads, factor: max_norm / (norm + 1e-6) });
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use engram_tensor::testing::test_device;

    /// Three steps of a small model: the same parameters as burn's `AdamW` with the same
    /// settings.
    #[test]
    fn adamw_matches_burns() {
        use burn::nn::{Linear, LinearConfig};
        use burn::optim::AdamWConfig;
        use engram_tensor::testing::{Tolerance, assert_close, to_f64};

        let device = engram_tensor::testing::test_device().autodiff();
        let model: Linear = LinearConfig::new(8, 5).init(&device);
        let ours = OptimizerConfig::AdamW { beta1: 0.8, beta2: 0.99, weight_decay: 0.05 };
        let theirs = AdamWConfig::new()
            .with_beta_1(0.8)
            .with_beta_2(0.99)
            .with_epsilon(1e-8)
            .with_weight_decay(0.05);
        let (mut a, mut b) = (model.clone(), model);
        let (mut opt_a, mut opt_b) = (ours.init(), theirs.init());
        for step in 0..3 {
            let x =
                Tensor::<2>::random([4, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let lr = 0.01 * (step + 1) as f64;
            let grads = GradientsParams::from_grads(a.forward(x.clone()).sum().backward(), &a);
            a = opt_a.step(lr, a, grads);
            let grads = GradientsParams::from_grads(b.forward(x).sum().backward(), &b);
            b = opt_b.step(lr, b, grads);
        }
        assert_close(a.weight.val(), &to_f64(b.weight.val()), Tolerance::new(1e-6, 1e-6));
        let bias = |m: &Linear| m.bias.as_ref().expect("a bias").val();
        assert_close(bias(&a), &to_f64(bias(&b)), Tolerance::new(1e-6, 1e-6));
    }

    #[test]
    fn warmup_cosine_rises_linearly_then_decays_to_zero() {
        let schedule = Schedule::WarmupCosine { warmup_steps: 4 };
        let rates: Vec<f64> = (0..12).map(|step| schedule.rate(1.0, step, 12)).collect();
        assert_eq!(&rates[..4], &[0.25, 0.5, 0.75, 1.0]);
        // Halfway through the decay (step 8 of 4..12) the cosine is at its midpoint.
        assert!((rates[7] - 0.5).abs() < 1e-12, "{rates:?}");
        assert!(rates[11].abs() < 1e-12, "{rates:?}");
        assert!(rates[4..].windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn noam_peaks_at_warmup_and_decays_as_inverse_sqrt() {
        let schedule = Schedule::Noam { warmup_steps: 4 };
        assert_eq!(schedule.rate(2.0, 1, 100), 1.0);
        assert_eq!(schedule.rate(2.0, 3, 100), 2.0);
        assert!((schedule.rate(2.0, 15, 100) - 1.0).abs() < 1e-12);
        assert_eq!(Schedule::Constant.rate(0.3, 99, 100), 0.3);
    }

    #[test]
    fn clipping_scales_all_gradients_by_one_factor() {
        let device = test_device().autodiff();
        let linear = LinearConfig::new(3, 2).init(&device);
        let x = Tensor::<2>::ones([4, 3], &device);
        let loss = linear.forward(x).sum().mul_scalar(10.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &linear);
        let weight_before = grads.get::<2>(linear.weight.id).unwrap().into_data();
        let norm = clip_global_norm(&linear, &mut grads, 1.0);
        // d(10·Σ(xW + b))/dW = 10·4 per weight (6 of them), /db = 40 per bias (2): norm 40·√8.
        assert!((norm - 40.0 * 8f64.sqrt()).abs() < 1e-3, "norm {norm}");
        let mut after = SquaredNorm { grads: &grads, sum: 0.0 };
        linear.visit(&mut after);
        assert!((after.sum.sqrt() - 1.0).abs() < 1e-4, "clipped norm {}", after.sum.sqrt());
        let weight_after = grads.get::<2>(linear.weight.id).unwrap().into_data();
        let first = |data: burn::tensor::TensorData| data.try_to_vec::<f32>().unwrap()[0];
        let ratio = first(weight_after) / first(weight_before);
        assert!((f64::from(ratio) - 1.0 / norm).abs() < 1e-5);
    }
}
