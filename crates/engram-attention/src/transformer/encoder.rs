//! Transformer encoder: bidirectional self-attention blocks as an engram [`SequenceMemory`].

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Bool, Device, Tensor};
use engram_tensor::{Encoded, MemoryState, SequenceMemory};

use super::ffn::{FeedForward, FeedForwardConfig, FfnActivation};
use super::normalize;
use crate::mha::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};

/// Configuration of a [`TransformerEncoder`] (and of each of its blocks).
#[derive(Config, Debug)]
pub struct TransformerEncoderConfig {
    /// Width of the input, the residual stream and the output.
    pub d_model: usize,
    /// Number of attention heads.
    pub n_heads: usize,
    /// Width of the feed-forward hidden layer.
    pub d_hidden: usize,
    /// Number of blocks.
    pub n_layers: usize,
    /// Number of key/value heads. Default: `None` (`n_heads`).
    #[config(default = "None")]
    pub n_kv_heads: Option<usize>,
    /// Dropout on attention weights, the feed-forward hidden layer and both residual branches.
    /// Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Normalise before each sub-layer (pre-norm, Xiong et al., 2020) rather than after the
    /// residual sum (post-norm, Vaswani et al., 2017). Default: true.
    #[config(default = true)]
    pub norm_first: bool,
    /// With pre-norm, normalise the stack's output (GPT-2, most pre-norm models). Default: true.
    #[config(default = true)]
    pub final_norm: bool,
    /// Feed-forward nonlinearity. Default: GELU.
    #[config(default = "FfnActivation::Gelu")]
    pub activation: FfnActivation,
    /// Rotary positions in self-attention; `None` (the default) for none.
    #[config(default = "None")]
    pub rope_theta: Option<f64>,
    /// Epsilon of the layer norms. Default: 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

/// One encoder block: self-attention and a feed-forward network, each in a residual branch.
#[derive(Module, Debug)]
pub struct TransformerEncoderLayer {
    /// Self-attention.
    pub attention: MultiHeadAttention,
    /// Feed-forward network.
    pub ffn: FeedForward,
    /// Norm of the attention branch.
    pub norm_attention: LayerNorm,
    /// Norm of the feed-forward branch.
    pub norm_ffn: LayerNorm,
    /// Dropout on each branch's output.
    pub dropout: Dropout,
    /// Pre-norm (`true`) or post-norm.
    pub norm_first: bool,
    /// Epsilon of both norms (the configuration's `layer_norm_eps`).
    pub norm_eps: f64,
}

/// A stack of [`TransformerEncoderLayer`]s ("Attention Is All You Need", Vaswani et al., 2017).
///
/// As a [`SequenceMemory`] it encodes right-padded batches (padded keys are masked, padded
/// outputs are zero) and its state is the encoded sequence itself, which a decoder's
/// cross-attention reads.
#[derive(Module, Debug)]
pub struct TransformerEncoder {
    /// The blocks.
    pub layers: Vec<TransformerEncoderLayer>,
    /// Output norm of a pre-norm stack.
    pub norm_final: Option<LayerNorm>,
    /// Width of the output.
    pub d_model: usize,
    /// Epsilon of the output norm.
    pub norm_eps: f64,
}

/// What a [`TransformerEncoder`] keeps: its output and padding, the memory a decoder attends to.
#[derive(Clone, Debug)]
pub struct EncoderState {
    /// `[batch, seq, d_model]` encoded sequence, zero at padding.
    pub memory: Tensor<3>,
    /// `[batch, seq]`, `true` at padding.
    pub padding: Option<Tensor<2, Bool>>,
}

impl MemoryState for EncoderState {
    fn detach(self) -> Self {
        EncoderState { memory: self.memory.detach(), padding: self.padding }
    }
}

impl TransformerEncoderConfig {
    /// The attention configuration of each block.
    pub(crate) fn attention(&self) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
            .with_n_kv_heads(self.n_kv_heads)
            .with_dropout(self.dropout)
            .with_rope_theta(self.rope_theta)
    }

    /// The feed-forward configuration of each block.
    pub(crate) fn ffn(&self) -> FeedForwardConfig {
        FeedForwardConfig::new(self.d_model, self.d_hidden)
            .with_activation(self.activation)
            .with_dropout(self.dropout)
    }

    /// A layer norm of the residual stream.
    pub(crate) fn norm(&self, device: &Device) -> LayerNorm {
        LayerNormConfig::new(self.d_model).with_epsilon(self.layer_norm_eps).init(device)
    }

    /// Creates one block.
    ///
    /// # Panics
    /// As [`MultiHeadAttentionConfig::init`].
    pub fn init_layer(&self, device: &Device) -> TransformerEncoderLayer {
        TransformerEncoderLayer {
            attention: self.attention().init(device),
            ffn: self.ffn().init(device),
            norm_attention: self.norm(device),
            norm_ffn: self.norm(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            norm_first: self.norm_first,
            norm_eps: self.layer_norm_eps,
        }
    }

    /// Creates the stack.
    ///
    /// # Panics
    /// As [`MultiHeadAttentionConfig::init`], and if `n_layers` is 0.
    pub fn init(&self, device: &Device) -> TransformerEncoder {
        assert!(self.n_layers > 0, "TransformerEncoder: n_layers must be positive, got 0");
        TransformerEncoder {
            layers: (0..self.n_layers).map(|_| self.init_layer(device)).collect(),
            norm_final: (self.norm_first && self.final_norm).then(|| self.norm(device)),
            d_model: self.d_model,
            norm_eps: self.layer_norm_eps,
        }
    }
}

impl TransformerEncoderLayer {
    /// Applies the block.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`; `padding`: `[batch, seq]`; output: the same as `x`.
    ///
    /// # Panics
    /// If the width of `x` is not `d_model` or the padding does not fit.
    pub fn forward(&self, x: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let attend = |x: Tensor<3>| {
            let mut input = MhaInput::self_attention(x);
            input.key_padding = padding.clone();
            engram_tensor::dropout(&self.dropout, self.attention.forward(input).output)
        };
        let feed = |x: Tensor<3>| engram_tensor::dropout(&self.dropout, self.ffn.forward(x));
        let norm = |layer, x| normalize(layer, x, self.norm_eps);
        if self.norm_first {
            let x = x.clone() + attend(norm(&self.norm_attention, x));
            x.clone() + feed(norm(&self.norm_ffn, x))
        } else {
            let x = norm(&self.norm_attention, x.clone() + attend(x));
            norm(&self.norm_ffn, x.clone() + feed(x))
        }
    }
}

impl TransformerEncoder {
    /// Encodes a batch; outputs at padded positions are zero.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`; `padding`: `[batch, seq]`; output: the same as `x`.
    ///
    /// # Panics
    /// If the width of `x` is not `d_model` or the padding is not `[batch, seq]`.
    pub fn forward(&self, x: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let dims = x.dims();
        if let Some(padding) = &padding {
            assert_eq!(
                padding.dims(),
                [dims[0], dims[1]],
                "TransformerEncoder: padding shape {:?} is not [batch {}, seq {}]",
                padding.dims(),
                dims[0],
                dims[1]
            );
        }
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(x, padding.clone());
        }
        if let Some(norm) = &self.norm_final {
            x = normalize(norm, x, self.norm_eps);
        }
        match padding {
            Some(padding) => x.mask_fill(padding.unsqueeze_dim::<3>(2).expand(dims), 0.0),
            None => x,
        }
    }
}

impl SequenceMemory for TransformerEncoder {
    type State = EncoderState;

    fn d_output(&self) -> usize {
        self.d_model
    }

    fn encode(&self, input: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Encoded<EncoderState> {
        let output = self.forward(input, padding.clone());
        Encoded { output: output.clone(), state: EncoderState { memory: output, padding } }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::transformer::{
        TransformerEncoderConfig as BurnConfig, TransformerEncoderInput as BurnInput,
    };
    use engram_tensor::padding_mask;
    use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

    use super::*;
    use crate::test_util::{copy_mha, tensor};

    fn config() -> TransformerEncoderConfig {
        TransformerEncoderConfig::new(8, 2, 12, 2).with_dropout(0.0)
    }

    #[test]
    fn matches_burn_nn_with_copied_weights() {
        let device = test_device();
        for norm_first in [false, true] {
            let burn = BurnConfig::new(8, 12, 2, 2)
                .with_dropout(0.0)
                .with_norm_first(norm_first)
                .init(&device);
            let mut ours =
                config().with_norm_first(norm_first).with_final_norm(false).init(&device);
            for (mine, theirs) in ours.layers.iter_mut().zip(&burn.layers) {
                mine.attention = copy_mha(&theirs.mha, mine.attention.clone());
                mine.ffn.linear_inner = theirs.pwff.linear_inner.clone();
                mine.ffn.linear_outer = theirs.pwff.linear_outer.clone();
                // burn-nn's norm_2 wraps attention and norm_1 the feed-forward network.
                mine.norm_attention = theirs.norm_2.clone();
                mine.norm_ffn = theirs.norm_1.clone();
            }
            let (x, _) = tensor::<3>(41, [2, 3, 8]);
            let padding = padding_mask(&[3, 2], 3, &device);
            let expected = burn.forward(BurnInput::new(x.clone()).mask_pad(padding.clone()));
            let got = ours.forward(x, Some(padding.clone()));
            // burn-nn leaves padded outputs as they come; compare the real positions.
            let expected = expected.mask_fill(padding.unsqueeze_dim::<3>(2).expand([2, 3, 8]), 0.0);
            assert_close(got, &to_f64(expected), Tolerance::new(1e-4, 1e-4));
        }
    }

    #[test]
    fn padding_changes_no_real_output_and_zeroes_padded_ones() {
        let device = test_device();
        let encoder = config().with_activation(FfnActivation::SwiGlu).init(&device);
        let (x, _) = tensor::<3>(42, [2, 4, 8]);
        let padding = padding_mask(&[4, 2], 4, &device);
        let encoded = encoder.encode(x.clone(), Some(padding.clone()));
        let alone = encoder.encode(x.clone().narrow(0, 1, 1).narrow(1, 0, 2), None).output;
        let row = encoded.output.clone().narrow(0, 1, 1);
        assert_close(row.clone().narrow(1, 0, 2), &to_f64(alone), Tolerance::F32);
        assert_close(row.narrow(1, 2, 2), &[0.0; 16], Tolerance::F32);
        assert_eq!(encoded.state.memory.dims(), [2, 4, 8]);
    }

    #[test]
    #[should_panic(expected = "TransformerEncoder: n_layers must be positive, got 0")]
    fn panics_without_layers() {
        TransformerEncoderConfig::new(8, 2, 12, 0).init(&test_device());
    }

    #[test]
    #[should_panic(expected = "TransformerEncoder: padding shape [2, 3] is not [batch 2, seq 4]")]
    fn panics_on_padding_of_wrong_shape() {
        let (x, _) = tensor::<3>(1, [2, 4, 8]);
        config().init(&test_device()).forward(x, Some(padding_mask(&[3, 3], 3, &test_device())));
    }
}
