//! Deterministic test inputs shared by the crate's unit tests.

use burn::tensor::{Tensor, TensorData};
use engram_tensor::testing::{seeded_values as values, test_device};

/// A tensor of `seeded_values` on the test device, with its values.
pub(crate) fn tensor<const D: usize>(seed: u64, shape: [usize; D]) -> (Tensor<D>, Vec<f64>) {
    let v = values(seed, shape.iter().product());
    (Tensor::from_data(TensorData::new(v.clone(), shape), &test_device()), v)
}

/// [`tensor`] of rank 4.
pub(crate) fn tensor4(seed: u64, shape: [usize; 4]) -> (Tensor<4>, Vec<f64>) {
    tensor(seed, shape)
}

/// `ours` with the weights of burn-nn's `MultiHeadAttention` (query, key and value projections
/// concatenated into the fused one).
pub(crate) fn copy_mha(
    burn: &burn::nn::attention::MultiHeadAttention,
    mut ours: crate::MultiHeadAttention,
) -> crate::MultiHeadAttention {
    use burn::module::Param;
    let layers = [&burn.query, &burn.key, &burn.value];
    // Detached: on an autodiff device the concatenation is not a leaf, which a parameter must be.
    let weights = layers.map(|l| l.weight.val()).to_vec();
    ours.qkv.weight = Param::from_tensor(Tensor::cat(weights, 1).detach());
    let biases: Option<Vec<Tensor<1>>> =
        layers.iter().map(|l| l.bias.as_ref().map(|b| b.val())).collect();
    ours.qkv.bias = biases.map(|b| Param::from_tensor(Tensor::cat(b, 0).detach()));
    ours.output = burn.output.clone();
    ours
}
