//! Test support for engram crates: tolerance comparison against f64 references, finite-difference
//! gradient checks, plain-f64 reference implementations, and the device tests run on.
//!
//! These are ordinary public items (not `cfg(test)`) so that other crates can use them from their
//! own tests through a dev-dependency.

mod compare;
mod gradcheck;
pub mod reference;

pub use compare::{
    Comparison, Tolerance, Worst, assert_close, assert_tensors_close, compare, to_bools, to_f64,
};
pub use gradcheck::{GradCheck, GradReport, check_gradient};

use burn::tensor::Device;

/// The device tests run on: the backend selected by `ENGRAM_BACKEND`, or the preferred
/// compiled-in one.
///
/// # Panics
/// When `ENGRAM_BACKEND` names a backend that is not compiled in (a test setup error).
pub fn test_device() -> Device {
    match crate::device(None) {
        Ok(device) => device,
        Err(err) => panic!("test_device: {err}"),
    }
}
