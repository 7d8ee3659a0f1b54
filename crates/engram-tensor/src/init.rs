//! Seeding and the initialisers recurrent and attention layers need beyond burn's
//! [`Initializer`] (which already has uniform, normal, Kaiming, Xavier and orthogonal).

use burn::module::{Initializer, Param};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Seeds the device's random generator and returns a host generator from the same seed, for
/// shuffling and splitting data, so that one number makes a whole run reproducible.
///
/// # Example
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// let device = engram_tensor::device(None).unwrap();
/// let _rng = engram_tensor::seed_everything(&device, 7);
/// let a = Tensor::<1>::random([4], Distribution::Default, &device);
/// let _rng = engram_tensor::seed_everything(&device, 7);
/// let b = Tensor::<1>::random([4], Distribution::Default, &device);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn seed_everything(device: &Device, seed: u64) -> StdRng {
    device.seed(seed);
    StdRng::seed_from_u64(seed)
}

/// PyTorch's default for `nn.RNN`/`nn.LSTM`/`nn.GRU` weights and biases:
/// `U(-1/√d_hidden, 1/√d_hidden)`.
///
/// # Panics
/// If `d_hidden == 0`.
pub fn recurrent_uniform(d_hidden: usize) -> Initializer {
    assert!(d_hidden > 0, "recurrent_uniform: d_hidden must be positive");
    let bound = 1.0 / (d_hidden as f64).sqrt();
    Initializer::Uniform { min: -bound, max: bound }
}

/// GPT-2's initialisation of residual output projections: `N(0, (0.02 / √(2·n_layers))²)`, so
/// that the residual stream's variance does not grow with depth.
///
/// # Panics
/// If `n_layers == 0`.
pub fn scaled_residual_normal(n_layers: usize) -> Initializer {
    assert!(n_layers > 0, "scaled_residual_normal: n_layers must be positive");
    Initializer::Normal { mean: 0.0, std: 0.02 / (2.0 * n_layers as f64).sqrt() }
}

/// A `[d_hidden, n_blocks · d_hidden]` matrix of `n_blocks` orthogonal `d_hidden × d_hidden`
/// blocks side by side, each scaled by `gain`.
///
/// This is the recurrent weight of a fused-gate layer (4 blocks for an LSTM, 3 for a GRU):
/// burn's `Initializer::Orthogonal` on the whole matrix would only make its rows orthonormal,
/// whereas each gate's own recurrence should be orthogonal (Saxe et al., 2014).
///
/// # Panics
/// If `d_hidden` or `n_blocks` is 0.
pub fn orthogonal_blocks(
    d_hidden: usize,
    n_blocks: usize,
    gain: f64,
    device: &Device,
) -> Param<Tensor<2>> {
    assert!(
        d_hidden > 0 && n_blocks > 0,
        "orthogonal_blocks: d_hidden ({d_hidden}) and n_blocks ({n_blocks}) must be positive"
    );
    let blocks = (0..n_blocks)
        .map(|_| {
            Initializer::Orthogonal { gain }.init::<2, _>([d_hidden, d_hidden], device).into_value()
        })
        .collect();
    Param::from_tensor(Tensor::cat(blocks, 1))
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;

    use super::*;
    use crate::testing::{Tolerance, assert_close, test_device};

    #[test]
    fn orthogonal_blocks_are_each_orthogonal() {
        let device = test_device();
        let _ = seed_everything(&device, 3);
        let w = orthogonal_blocks(5, 4, 1.0, &device).into_value();
        assert_eq!(w.dims(), [5, 20]);
        let eye: Vec<f64> = (0..25).map(|i| if i % 6 == 0 { 1.0 } else { 0.0 }).collect();
        for block in w.chunk(4, 1) {
            assert_close(block.clone().transpose().matmul(block), &eye, Tolerance::new(1e-5, 0.0));
        }
    }

    #[test]
    fn recurrent_uniform_stays_in_bounds() {
        let device = test_device();
        let _ = seed_everything(&device, 1);
        let w: Tensor<2> = recurrent_uniform(16).init([16, 64], &device).into_value();
        let max = w.abs().max().into_scalar::<f32>();
        assert!(max <= 0.25 && max > 0.2, "max |w| = {max}");
    }

    #[test]
    #[should_panic(expected = "orthogonal_blocks: d_hidden (0) and n_blocks (4) must be positive")]
    fn orthogonal_blocks_rejects_empty() {
        let _ = orthogonal_blocks(0, 4, 1.0, &test_device());
    }
}
