//! Memory-efficient attention: O(N·block) working memory in the forward and backward passes,
//! where burn's attention op under autodiff keeps every N×N weight matrix.

mod backend;
#[cfg(feature = "flex")]
mod flex;
#[cfg(any(feature = "flex", test))]
mod host;
mod kernel;
#[cfg(any(feature = "flex", test))]
mod simd;
#[cfg(test)]
mod tests;

pub use kernel::FlashSpec;

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{Device, Tensor};
use engram_tensor::{DropMask, padding_mask};

use crate::sdpa::{AttentionMask, Positions};
use backend::FlashBackend;

/// Block sizes of [`memory_efficient_attention`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashBlocks {
    /// Queries per block. Default: 512.
    pub queries: usize,
    /// Keys per block. Default: 512.
    pub keys: usize,
}

impl Default for FlashBlocks {
    fn default() -> Self {
        FlashBlocks { queries: 512, keys: 512 }
    }
}

/// Whether [`memory_efficient_attention`] can run on `device`: flex and ndarray (with or
/// without autodiff). burn's extension macro needs a concrete list of backends, and wgpu's is
/// not on it yet (its kernels would run tile by tile from the host, slower than burn's own
/// flash kernels there).
pub fn memory_efficient_supported(device: &Device) -> bool {
    #[allow(unreachable_patterns)]
    match device.clone().inner().as_dispatch() {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        DispatchDevice::NdArray(_) => true,
        _ => false,
    }
}

/// Scaled dot-product attention computed block by block (online softmax; Milakov & Gimelshein,
/// 2018, Rabe & Staats, 2021) with a hand-written backward that recomputes each block's weights
/// from the saved per-row logsumexp (FlashAttention-2, Dao, 2023), so that neither pass holds an
/// N×N tensor: the working memory is `batch·heads·block_q·block_k` scores plus the O(N·d)
/// inputs, output and gradients.
///
/// Computes what [`attention`](crate::attention) computes for the masks it accepts (key padding,
/// causal order and sliding windows with aligned positions), and zeros for queries that see no
/// key; grouped key/value heads are expanded to the query heads (their gradients sum back).
/// There is no additive bias or weights output: use [`attention`](crate::attention) for those
/// (it also routes attention dropout here, regenerating the mask tile by tile in the backward
/// pass instead of storing it).
///
/// # Shapes
/// - `query`: `[batch, n_heads, tq, d]`; `key`: `[batch, n_kv_heads, tk, d]`;
///   `value`: `[batch, n_kv_heads, tk, d_value]`; output: `[batch, n_heads, tq, d_value]`.
///
/// # Panics
/// If the shapes disagree, `n_heads` is not a multiple of `n_kv_heads`, a block size is 0, the
/// mask has per-row positions, or the device is not one [`memory_efficient_supported`] accepts.
pub fn memory_efficient_attention(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    mask: &AttentionMask,
    scale: Option<f64>,
    blocks: FlashBlocks,
) -> Tensor<4> {
    blocked(query, key, value, mask, scale, blocks, None)
}

/// [`memory_efficient_attention`] with dropout on the weights: `dropout`'s element at the flat
/// index of weight `(b, h, i, j)` in `[batch, n_heads, tq, tk]` multiplies it, the mask
/// [`engram_tensor::dropout_with`] applies to the explicit path's weights with the same seed.
pub(crate) fn blocked(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    mask: &AttentionMask,
    scale: Option<f64>,
    blocks: FlashBlocks,
    dropout: Option<DropMask>,
) -> Tensor<4> {
    let [batch, n_heads, _, d] = query.dims();
    let [kb, n_kv_heads, tk, kd] = key.dims();
    let [vb, vh, vt, d_value] = value.dims();
    assert!(
        kb == batch && kd == d && vb == batch && vh == n_kv_heads && vt == tk,
        "memory_efficient_attention: shapes query {:?}, key {:?}, value {:?} do not fit",
        query.dims(),
        key.dims(),
        value.dims()
    );
    assert!(
        n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads),
        "memory_efficient_attention: n_heads {n_heads} is not a multiple of n_kv_heads \
         {n_kv_heads}"
    );
    assert!(
        blocks.queries > 0 && blocks.keys > 0,
        "memory_efficient_attention: block sizes must be positive, got {blocks:?}"
    );
    let device = query.device();
    assert!(
        memory_efficient_supported(&device),
        "memory_efficient_attention: not available on device {device:?} (flex and ndarray only)"
    );
    let (padding, causal, window, positions) = mask.parts();
    let query_offset = match positions {
        Positions::Aligned { query_offset } => *query_offset,
        Positions::PerRow { .. } => {
            panic!("memory_efficient_attention: per-row positions are not supported")
        }
    };
    let padding = match padding {
        Some(padding) => {
            assert_eq!(
                padding.dims(),
                [batch, tk],
                "memory_efficient_attention: key padding shape {:?} is not [batch {batch}, tk \
                 {tk}]",
                padding.dims()
            );
            padding.clone()
        }
        None => padding_mask(&vec![tk; batch], tk, &device),
    };
    let padding = padding.reshape([batch, 1, 1, tk]);
    let groups = n_heads / n_kv_heads;
    let repeat = |x: Tensor<4>, width: usize| {
        if groups == 1 {
            return x;
        }
        x.unsqueeze_dim::<5>(2)
            .expand([batch, n_kv_heads, groups, tk, width])
            .reshape([batch, n_heads, tk, width])
    };
    let spec = FlashSpec {
        scale: scale.unwrap_or(1.0 / (d as f64).sqrt()),
        causal,
        window,
        query_offset,
        block_q: blocks.queries,
        block_k: blocks.keys,
        dropout,
    };
    let output = <Dispatch as FlashBackend>::flash_attention(
        query.into_dispatch(),
        repeat(key, d).into_dispatch(),
        repeat(value, d_value).into_dispatch(),
        padding.into_dispatch(),
        spec,
    );
    Tensor::from_dispatch(output)
}
