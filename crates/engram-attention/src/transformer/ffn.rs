//! Position-wise feed-forward networks: GELU (Vaswani et al., 2017; Hendrycks & Gimpel, 2016) or
//! SwiGLU (Shazeer, 2020).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation};

use crate::linear::linear;

/// The nonlinearity of a [`FeedForward`].
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum FfnActivation {
    /// `W2 · gelu(W1 · x)`.
    Gelu,
    /// `W2 · (silu(Wg · x) ⊙ W1 · x)` ("GLU Variants Improve Transformer", Shazeer, 2020).
    SwiGlu,
}

/// Configuration of a [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Width of the input and output.
    pub d_model: usize,
    /// Width of the hidden layer.
    pub d_hidden: usize,
    /// Nonlinearity. Default: GELU.
    #[config(default = "FfnActivation::Gelu")]
    pub activation: FfnActivation,
    /// Dropout on the hidden layer during training. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Whether the linear layers have biases. Default: true.
    #[config(default = true)]
    pub bias: bool,
}

/// A position-wise feed-forward network, applied to each position independently.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `[d_model, d_hidden]` input projection.
    pub linear_inner: Linear,
    /// `[d_model, d_hidden]` gate projection, present for SwiGLU.
    pub gate: Option<Linear>,
    /// `[d_hidden, d_model]` output projection.
    pub linear_outer: Linear,
    /// Dropout on the hidden layer.
    pub dropout: Dropout,
}

impl FeedForwardConfig {
    /// Creates the network on `device`.
    pub fn init(&self, device: &Device) -> FeedForward {
        let linear = |i, o| LinearConfig::new(i, o).with_bias(self.bias).init(device);
        FeedForward {
            linear_inner: linear(self.d_model, self.d_hidden),
            gate: (self.activation == FfnActivation::SwiGlu)
                .then(|| linear(self.d_model, self.d_hidden)),
            linear_outer: linear(self.d_hidden, self.d_model),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl FeedForward {
    /// Applies the network to every position.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`; output: the same.
    ///
    /// # Panics
    /// If the width of `x` is not `d_model`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let d_model = self.linear_inner.weight.dims()[0];
        assert_eq!(
            x.dims()[2],
            d_model,
            "FeedForward: input width {} is not d_model {d_model}",
            x.dims()[2]
        );
        // `linear` is `Linear::forward` with a faster kernel for the few rows of a
        // decoding step.
        let hidden = match &self.gate {
            // GELU and dropout in one pass on flex.
            None => engram_tensor::gelu_dropout(linear(&self.linear_inner, x), &self.dropout),
            Some(gate) => {
                let hidden =
                    activation::silu(linear(gate, x.clone())) * linear(&self.linear_inner, x);
                engram_tensor::dropout(&self.dropout, hidden)
            }
        };
        linear(&self.linear_outer, hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::tensor;
    use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

    #[test]
    fn swiglu_matches_its_definition() {
        let ffn = FeedForwardConfig::new(4, 6)
            .with_activation(FfnActivation::SwiGlu)
            .with_bias(false)
            .init(&test_device());
        let (x, _) = tensor::<3>(31, [1, 2, 4]);
        let out = ffn.forward(x.clone());
        assert_eq!(out.dims(), [1, 2, 4]);
        // silu(a) = a · sigmoid(a), written out.
        let gate = x.clone().matmul(ffn.gate.as_ref().expect("swiglu").weight.val().unsqueeze());
        let gate = gate.clone() * activation::sigmoid(gate);
        let inner = x.matmul(ffn.linear_inner.weight.val().unsqueeze());
        let expected = (gate * inner).matmul(ffn.linear_outer.weight.val().unsqueeze());
        assert_close(out, &to_f64(expected), Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "FeedForward: input width 3 is not d_model 4")]
    fn panics_on_wrong_width() {
        let (x, _) = tensor::<3>(1, [1, 2, 3]);
        FeedForwardConfig::new(4, 6).init(&test_device()).forward(x);
    }
}
