//! Transformer blocks built on [`MultiHeadAttention`](crate::MultiHeadAttention): an encoder
//! stack, a decoder stack with cross-attention and caches, and their feed-forward networks.

mod decoder;
mod encoder;
mod ffn;

pub use decoder::{
    DecoderLayerState, DecoderState, TransformerDecoder, TransformerDecoderConfig,
    TransformerDecoderLayer,
};
pub use encoder::{
    EncoderState, TransformerEncoder, TransformerEncoderConfig, TransformerEncoderLayer,
};
pub use ffn::{FeedForward, FeedForwardConfig, FfnActivation};

use burn::nn::LayerNorm;
use burn::tensor::Tensor;

/// `norm.forward(x)` with the stack's epsilon, through engram-tensor's fused layer norm (one
/// parallel pass each way on flex; burn-nn's `LayerNorm` hides its epsilon, so the blocks
/// keep their own copy).
fn normalize(norm: &LayerNorm, x: Tensor<3>, epsilon: f64) -> Tensor<3> {
    engram_tensor::layer_norm(x, norm.gamma.val(), norm.beta.as_ref().map(|b| b.val()), epsilon)
}
