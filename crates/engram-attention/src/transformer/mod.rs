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
