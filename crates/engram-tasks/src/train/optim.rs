//! Optimisers, learning-rate schedules and global-norm gradient clipping.
//!
//! The schedules are pure functions of the step, so a resumed run needs only the step count to
//! continue on the same curve. burn's `GradientClipping::Norm` clips each parameter on its own;
//! [`clip_global_norm`] scales all gradients by one factor, as PyTorch's `clip_grad_norm_`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig,
    momentum::MomentumConfig,
};
use burn::tensor::Tensor;
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
    /// burn's optimiser for this configuration.
    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            OptimizerConfig::AdamW { beta1, beta2, weight_decay } => AdamWConfig::new()
                .with_beta_1(beta1)
                .with_beta_2(beta2)
                .with_epsilon(1e-8)
                .with_weight_decay(weight_decay)
                .init(),
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
