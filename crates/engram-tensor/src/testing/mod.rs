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

/// `n` deterministic values in `[-1, 1)` from `seed` (a 64-bit linear congruential generator),
/// the same on every machine and backend, for test inputs and weights that need no RNG crate.
pub fn seeded_values(seed: u64, n: usize) -> Vec<f64> {
    const A: u64 = 6364136223846793005;
    const C: u64 = 1442695040888963407;
    let mut state = seed.wrapping_mul(A).wrapping_add(C);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(A).wrapping_add(C);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::seeded_values;

    #[test]
    fn seeded_values_are_reproducible_and_in_range() {
        let a = seeded_values(3, 1000);
        assert_eq!(a, seeded_values(3, 1000));
        assert_ne!(a, seeded_values(4, 1000));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
    }
}
