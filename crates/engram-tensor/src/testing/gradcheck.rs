//! Finite-difference gradient checks for scalar functions of tensors.

use std::fmt;

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::compare::{Comparison, Tolerance, compare, to_f64};

/// Settings of a gradient check. [`GradCheck::default`] picks them from the precision the device
/// computes reliably ([`supports_f64`](crate::supports_f64)): f64 where available (step 1e-6, tolerance 1e-6 + 1e-5·|g|), otherwise f32 (step
/// 1e-2, tolerance 1e-2 + 1e-2·|g|).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheck {
    /// Central-difference step; `None` picks one for the dtype.
    pub eps: Option<f64>,
    /// Allowed difference between the autodiff and the numerical gradient; `None` picks one for
    /// the dtype.
    pub tolerance: Option<Tolerance>,
    /// Run in f64 when the device supports it (the default); `false` forces the tensors' own
    /// dtype, for checking a kernel's f32 path.
    pub prefer_f64: bool,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck { eps: None, tolerance: None, prefer_f64: true }
    }
}

/// What a gradient check found: one comparison per input.
#[derive(Clone, Debug)]
pub struct GradReport {
    /// The dtype the check ran in.
    pub dtype: DType,
    /// The step used.
    pub eps: f64,
    /// Autodiff gradient compared with the central differences, one entry per input.
    pub inputs: Vec<Comparison>,
}

impl GradReport {
    /// True when every input's gradient is within the tolerance.
    pub fn is_ok(&self) -> bool {
        self.inputs.iter().all(Comparison::is_ok)
    }

    /// Panics with the report unless every gradient is within the tolerance.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "gradient check failed: {self}");
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}, eps {:e}", self.dtype, self.eps)?;
        for (i, c) in self.inputs.iter().enumerate() {
            write!(f, "\n  input {i}: {c}")?;
        }
        Ok(())
    }
}

/// Checks the autodiff gradient of `f` at `inputs` against central finite differences, with
/// [`GradCheck::default`] settings.
///
/// `f` maps the inputs to a tensor of one element; it is called on autodiff tensors once and on
/// plain tensors twice per input element, so keep inputs small. Tensors that `f` creates itself
/// should be made on its inputs' device and dtype (`(&x.device(), x.dtype())`).
///
/// # Example
/// ```
/// use engram_tensor::testing::{check_gradient, test_device};
/// let x = burn::tensor::Tensor::<1>::from_floats([0.5, -1.0], &test_device());
/// check_gradient(|x| (x[0].clone() * x[0].clone()).sum(), &[x]).assert_ok();
/// ```
pub fn check_gradient<const D: usize, F>(f: F, inputs: &[Tensor<D>]) -> GradReport
where
    F: Fn(&[Tensor<D>]) -> Tensor<1>,
{
    GradCheck::default().run(f, inputs)
}

impl GradCheck {
    /// Runs the check; see [`check_gradient`].
    ///
    /// # Panics
    /// If `inputs` is empty or `f` returns more than one element.
    pub fn run<const D: usize, F>(&self, f: F, inputs: &[Tensor<D>]) -> GradReport
    where
        F: Fn(&[Tensor<D>]) -> Tensor<1>,
    {
        assert!(!inputs.is_empty(), "check_gradient: no inputs");
        let device = inputs[0].device().without_autodiff();
        let dtype = if self.prefer_f64 && crate::backend::supports_f64(&device) {
            DType::F64
        } else {
            inputs[0].dtype()
        };
        let is_f64 = dtype == DType::F64;
        let eps = self.eps.unwrap_or(if is_f64 { 1e-6 } else { 1e-2 });
        let tolerance = self.tolerance.unwrap_or(if is_f64 {
            Tolerance::new(1e-6, 1e-5)
        } else {
            Tolerance::new(1e-2, 1e-2)
        });

        let values: Vec<Vec<f64>> = inputs.iter().map(|x| to_f64(x.clone())).collect();
        let shapes: Vec<[usize; D]> = inputs.iter().map(Tensor::dims).collect();
        let make = |device: &Device, i: usize, v: Vec<f64>| {
            Tensor::<D>::from_data(TensorData::new(v, shapes[i]), (device, dtype))
        };

        let autodiff = device.clone().autodiff();
        let tracked: Vec<Tensor<D>> = (0..inputs.len())
            .map(|i| make(&autodiff, i, values[i].clone()).require_grad())
            .collect();
        let output = f(&tracked);
        assert_eq!(
            output.dims(),
            [1],
            "check_gradient: the function must return one element, got shape {:?}",
            output.dims()
        );
        let grads = output.backward();
        let evaluate = |xs: Vec<Tensor<D>>| to_f64(f(&xs))[0];

        let inputs = (0..inputs.len())
            .map(|i| {
                let analytic = tracked[i]
                    .grad(&grads)
                    .map(to_f64)
                    .unwrap_or_else(|| vec![0.0; values[i].len()]);
                let numeric: Vec<f64> = (0..values[i].len())
                    .map(|k| {
                        let shifted = |delta: f64| {
                            let xs = (0..values.len())
                                .map(|j| {
                                    let mut v = values[j].clone();
                                    if j == i {
                                        v[k] += delta;
                                    }
                                    make(&device, j, v)
                                })
                                .collect();
                            evaluate(xs)
                        };
                        (shifted(eps) - shifted(-eps)) / (2.0 * eps)
                    })
                    .collect();
                compare(&analytic, &numeric, &shapes[i], tolerance)
            })
            .collect();
        GradReport { dtype, eps, inputs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_device;

    #[test]
    fn passes_for_a_correct_gradient() {
        let x = Tensor::<1>::from_floats([0.3, -0.8, 1.5], &test_device());
        let y = Tensor::<1>::from_floats([1.0, 2.0, -1.0], &test_device());
        let report = check_gradient(|v| (v[0].clone().exp() * v[1].clone()).sum(), &[x, y]);
        report.assert_ok();
        assert_eq!(report.inputs.len(), 2);
    }

    #[test]
    fn fails_for_a_wrong_gradient() {
        // `detach` hides part of the dependency from autodiff, so its gradient is wrong (half of
        // the true one); the check must notice.
        let x = Tensor::<1>::from_floats([0.3, -0.8], &test_device());
        let report = check_gradient(|v| (v[0].clone() * v[0].clone().detach()).sum(), &[x]);
        assert!(!report.is_ok(), "{report}");
    }
}
