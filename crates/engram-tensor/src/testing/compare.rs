//! Comparing tensors with f64 references within an absolute and relative tolerance.

use std::fmt;

use burn::tensor::{Bool, Tensor};

/// How far an actual value may be from the expected one: `|a - e| <= abs + rel · |e|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part of the allowed error.
    pub abs: f64,
    /// Relative part of the allowed error, scaled by the expected value's magnitude.
    pub rel: f64,
}

impl Tolerance {
    /// A tolerance for single-precision results of short computations.
    pub const F32: Tolerance = Tolerance { abs: 1e-5, rel: 1e-4 };
    /// A tolerance for double-precision results of short computations.
    pub const F64: Tolerance = Tolerance { abs: 1e-10, rel: 1e-9 };

    /// A tolerance with the given absolute and relative parts.
    pub const fn new(abs: f64, rel: f64) -> Self {
        Tolerance { abs, rel }
    }

    /// The error allowed around `expected`.
    pub fn allowed(&self, expected: f64) -> f64 {
        self.abs + self.rel * expected.abs()
    }
}

/// The element that is furthest out of (or closest to leaving) the tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// Multi-dimensional index of the element.
    pub index: Vec<usize>,
    /// The value that was computed.
    pub actual: f64,
    /// The reference value.
    pub expected: f64,
    /// `|actual - expected|` (infinite for NaN).
    pub error: f64,
    /// The error the tolerance allows at this element.
    pub allowed: f64,
}

/// The result of comparing values with a reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Shape the flat values are laid out in (row-major).
    pub shape: Vec<usize>,
    /// Number of elements compared.
    pub len: usize,
    /// Number of elements outside the tolerance.
    pub failures: usize,
    /// The element with the largest error relative to what is allowed, if any elements exist.
    pub worst: Option<Worst>,
    /// The tolerance used.
    pub tolerance: Tolerance,
}

impl Comparison {
    /// True when every element is within the tolerance.
    pub fn is_ok(&self) -> bool {
        self.failures == 0
    }

    /// Panics with the report unless every element is within the tolerance.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "{self}");
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} elements of shape {:?} outside |a - e| <= {:e} + {:e}·|e|",
            self.failures, self.len, self.shape, self.tolerance.abs, self.tolerance.rel
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst at {:?}: actual {} expected {} (error {:e}, allowed {:e})",
                w.index, w.actual, w.expected, w.error, w.allowed
            )?;
        }
        Ok(())
    }
}

/// Compares flat row-major `actual` values of the given `shape` with `expected`.
///
/// Equal values (including equal infinities) always pass; NaN never does.
///
/// # Panics
/// If the lengths of `actual`, `expected` and `shape` disagree.
pub fn compare(
    actual: &[f64],
    expected: &[f64],
    shape: &[usize],
    tolerance: Tolerance,
) -> Comparison {
    let len: usize = shape.iter().product();
    assert!(
        actual.len() == len && expected.len() == len,
        "compare: {} actual and {} expected values for shape {shape:?} ({len} elements)",
        actual.len(),
        expected.len()
    );
    let mut failures = 0;
    let mut worst: Option<(f64, usize)> = None;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let allowed = tolerance.allowed(e);
        let error = if a == e {
            0.0
        } else if a.is_nan() || e.is_nan() {
            f64::INFINITY
        } else {
            (a - e).abs()
        };
        let ratio = if error == 0.0 {
            0.0
        } else if allowed == 0.0 {
            f64::INFINITY
        } else {
            error / allowed
        };
        // Phrased so that a NaN anywhere (error or allowance) counts as a failure.
        let within = ratio <= 1.0;
        if !within {
            failures += 1;
        }
        if worst.is_none_or(|(r, _)| ratio > r) {
            worst = Some((ratio, i));
        }
    }
    let worst = worst.map(|(_, i)| {
        let (a, e) = (actual[i], expected[i]);
        Worst {
            index: unravel(i, shape),
            actual: a,
            expected: e,
            error: if a == e {
                0.0
            } else if a.is_nan() || e.is_nan() {
                f64::INFINITY
            } else {
                (a - e).abs()
            },
            allowed: tolerance.allowed(e),
        }
    });
    Comparison { shape: shape.to_vec(), len, failures, worst, tolerance }
}

/// Reads a float tensor back as f64 values in row-major order.
pub fn to_f64<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    let data = tensor.into_data();
    let dtype = data.dtype();
    match data.try_into_vec_as::<f64>() {
        Ok(values) => values,
        Err(err) => panic!("to_f64: cannot read tensor data of dtype {dtype:?}: {err:?}"),
    }
}

/// Reads a bool tensor back in row-major order, whatever its storage on the backend (wgpu keeps
/// bools as `u32`).
pub fn to_bools<const D: usize>(tensor: Tensor<D, Bool>) -> Vec<bool> {
    match tensor.int().into_data().try_into_vec_as::<i64>() {
        Ok(values) => values.into_iter().map(|v| v != 0).collect(),
        Err(err) => panic!("to_bools: cannot read tensor data: {err:?}"),
    }
}

/// Asserts that `actual` matches the flat row-major f64 reference `expected`, reporting the worst
/// element on failure.
///
/// # Panics
/// When an element is outside the tolerance, or the number of values differs.
#[track_caller]
pub fn assert_close<const D: usize>(actual: Tensor<D>, expected: &[f64], tolerance: Tolerance) {
    let shape = actual.dims().to_vec();
    compare(&to_f64(actual), expected, &shape, tolerance).assert_ok();
}

/// Asserts that two tensors of the same shape agree within `tolerance` (`expected` is the
/// reference the relative part scales with).
///
/// # Panics
/// When the shapes differ or an element is outside the tolerance.
#[track_caller]
pub fn assert_tensors_close<const D: usize>(
    actual: Tensor<D>,
    expected: Tensor<D>,
    tolerance: Tolerance,
) {
    assert_eq!(
        actual.dims(),
        expected.dims(),
        "assert_tensors_close: shapes {:?} and {:?} differ",
        actual.dims(),
        expected.dims()
    );
    assert_close(actual, &to_f64(expected), tolerance);
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &n) in index.iter_mut().zip(shape).rev() {
        *slot = flat % n.max(1);
        flat /= n.max(1);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_worst_element_with_its_index() {
        let c = compare(
            &[1.0, 2.0, 3.5, 4.0],
            &[1.0, 2.0, 3.0, 4.1],
            &[2, 2],
            Tolerance::new(0.01, 0.0),
        );
        assert_eq!(c.failures, 2);
        let w = c.worst.as_ref().unwrap();
        assert_eq!(w.index, vec![1, 0]);
        assert_eq!((w.actual, w.expected), (3.5, 3.0));
        let message = c.to_string();
        assert!(message.contains("2 of 4 elements") && message.contains("[1, 0]"), "{message}");
    }

    #[test]
    fn nan_never_passes_and_equal_infinities_do() {
        let c = compare(&[f64::NAN], &[f64::NAN], &[1], Tolerance::new(1.0, 1.0));
        assert!(!c.is_ok());
        let c = compare(&[f64::NEG_INFINITY], &[f64::NEG_INFINITY], &[1], Tolerance::F32);
        assert!(c.is_ok());
        let c = compare(&[1.0], &[f64::INFINITY], &[1], Tolerance::F32);
        assert!(!c.is_ok());
    }

    #[test]
    fn relative_part_scales_with_the_reference() {
        assert!(compare(&[1000.5], &[1000.0], &[1], Tolerance::new(0.0, 1e-3)).is_ok());
        assert!(!compare(&[1.5], &[1.0], &[1], Tolerance::new(0.0, 1e-3)).is_ok());
    }

    #[test]
    #[should_panic(expected = "1 of 1 elements of shape [1] outside")]
    fn assert_ok_panics_with_the_report() {
        compare(&[2.0], &[1.0], &[1], Tolerance::F32).assert_ok();
    }
}
