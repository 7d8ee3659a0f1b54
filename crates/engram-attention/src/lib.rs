//! Attention memory for engram: scaled dot-product attention, positional encodings, multi-head
//! attention and key/value caches, on burn 0.22.
//!
//! - [`attention`]: scaled dot-product attention with key padding, causal (with an offset for
//!   cached keys), sliding-window and per-row-position masks ([`AttentionMask`]), an additive
//!   bias, grouped key/value heads, dropout and optional weights. Fully masked queries give
//!   zeros, never NaN. It runs burn's fused `burn::tensor::module::attention` when that computes
//!   the same thing (no dropout, no weights requested) and an explicit masked-softmax path
//!   otherwise.
//! - [`memory_efficient_attention`]: blocked attention with a hand-written backward that
//!   recomputes blocks, O(N·block) working memory in training where burn's autodiff keeps the
//!   N×N weights; [`attention`] runs it on autodiff devices where it applies.
//! - Positions: [`sinusoidal_encoding`], [`LearnedPositionalEncoding`], [`RotaryEncoding`]
//!   (per-sequence positions), ALiBi ([`alibi_slopes`], [`alibi_bias`]).
//! - [`MultiHeadAttention`]: grouped-query heads, one fused QKV projection (self- and
//!   cross-attention), rotary positions, dropout; [`MhaInput`] → [`MhaOutput`].
//! - [`linear`]: burn-nn's `Linear::forward` through engram's kernels on flex: a host kernel
//!   for the few rows of a decoding step, where flex's gemm streams the weight poorly, gemm on
//!   the tensors' memory otherwise, and one autodiff node with its own backward in training;
//!   the projections of [`MultiHeadAttention`] and [`FeedForward`] use it.
//! - [`KvCache`] and [`CausalSelfAttention`] (optionally with ALiBi), which implements engram-tensor's
//!   [`SequenceMemory`](engram_tensor::SequenceMemory) and
//!   [`StreamingMemory`](engram_tensor::StreamingMemory) over padded batches.
//! - Transformer blocks: [`TransformerEncoder`] (pre- or post-norm, GELU or SwiGLU
//!   [`FeedForward`]) as a [`SequenceMemory`](engram_tensor::SequenceMemory), and
//!   [`TransformerDecoder`] (cached causal self-attention, cross-attention to a memory projected
//!   once) as a [`StreamingMemory`](engram_tensor::StreamingMemory).
//!
//! burn's own pieces are used where they fit (the fused attention op, `Linear`, `Dropout`,
//! initialisers); the rest exists because burn-nn's `MultiHeadAttention` materialises the weights
//! always, masks by filling `-1e4`, has no grouped heads or per-sequence positions, and its cache
//! recomputes every past score at each step.
//!
//! Cargo features `flex` (default), `ndarray` and `wgpu` select the backend through
//! engram-tensor.
//!
//! # Example
//! ```
//! use burn::tensor::Tensor;
//! use engram_attention::{CausalSelfAttentionConfig, MultiHeadAttentionConfig};
//! use engram_tensor::{StreamingMemory, device, padding_mask};
//!
//! let device = device(None).expect("a backend is compiled in");
//! let attention = MultiHeadAttentionConfig::new(16, 4)
//!     .with_n_kv_heads(Some(2))
//!     .with_rope_theta(Some(10000.0));
//! let layer = CausalSelfAttentionConfig::new(attention).init(&device);
//!
//! // A prompt of two sequences (lengths 3 and 2), then one decoding step.
//! let prompt = Tensor::<3>::zeros([2, 3, 16], &device);
//! let encoded = layer.encode_from(prompt, Some(padding_mask(&[3, 2], 3, &device)), None);
//! let token = Tensor::<2>::ones([2, 16], &device);
//! let stepped = layer.step(token, None, Some(encoded.state));
//! assert_eq!(stepped.output.dims(), [2, 16]);
//! ```
#![warn(missing_docs)]

mod cache;
mod flash;
mod linear;
mod mha;
mod position;
mod sdpa;
#[cfg(test)]
mod test_util;
mod transformer;

pub use cache::{CausalSelfAttention, CausalSelfAttentionConfig, KvCache, KvSlots};
pub use flash::{FlashBlocks, memory_efficient_attention, memory_efficient_supported};
pub use linear::{DECODE_ROWS, linear};
pub use mha::{MhaInput, MhaOutput, MultiHeadAttention, MultiHeadAttentionConfig};
pub use position::{
    LearnedPositionalEncoding, LearnedPositionalEncodingConfig, RotaryEncoding,
    RotaryEncodingConfig, alibi_bias, alibi_slopes, sinusoidal_encoding,
};
pub use sdpa::{
    AttentionMask, AttentionOptions, AttentionOutput, AttentionPath, Positions, attention,
};
pub use transformer::{
    DecoderLayerState, DecoderState, EncoderState, FeedForward, FeedForwardConfig, FfnActivation,
    TransformerDecoder, TransformerDecoderConfig, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderConfig, TransformerEncoderLayer,
};
