//! Scaled dot-product attention with masks, additive bias, grouped key/value heads and dropout,
//! on burn's fused op where it computes the same thing and on an explicit path elsewhere.

mod mask;

pub use mask::{AttentionMask, Positions};

use burn::tensor::module::attention as fused_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor, activation};
use engram_tensor::{DropMask, masked_softmax};

use crate::flash::{FlashBlocks, blocked, memory_efficient_supported};

/// Which implementation [`attention`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttentionPath {
    /// On an autodiff device (training) without bias, requested weights or per-row positions,
    /// and on a backend it supports, the memory-efficient path (with the dropout, if any);
    /// otherwise the fused op when it computes the same thing (no active dropout, no weights
    /// requested), and the explicit path elsewhere.
    #[default]
    Auto,
    /// burn's fused `burn::tensor::module::attention`.
    Fused,
    /// Scores, masked softmax and a second matmul, materialising the weights.
    Explicit,
    /// [`memory_efficient_attention`](crate::memory_efficient_attention): blocked, with a
    /// backward that recomputes blocks (and the dropout mask); no bias, weights or per-row
    /// positions.
    MemoryEfficient,
}

/// Settings of [`attention`] besides its tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionOptions {
    /// Factor applied to `q·k`; `None`: `1/sqrt(d)`.
    pub scale: Option<f64>,
    /// Dropout probability on the weights, applied only on an autodiff device (training).
    pub dropout: f64,
    /// Return the attention weights (forces the explicit path).
    pub need_weights: bool,
    /// Which implementation to run.
    pub path: AttentionPath,
}

impl Default for AttentionOptions {
    fn default() -> Self {
        AttentionOptions {
            scale: None,
            dropout: 0.0,
            need_weights: false,
            path: AttentionPath::Auto,
        }
    }
}

/// The result of [`attention`].
#[derive(Clone, Debug)]
pub struct AttentionOutput {
    /// `[batch, n_heads, tq, d_value]`; zero for queries that see no key.
    pub output: Tensor<4>,
    /// `[batch, n_heads, tq, tk]` weights after dropout, when requested.
    pub weights: Option<Tensor<4>>,
}

/// Scaled dot-product attention (Vaswani et al., 2017): `softmax(q·kᵀ·scale + bias, masked) · v`.
///
/// Keys and values may have fewer heads than queries (grouped-query attention, Ainslie et al.,
/// 2023; multi-query with one): query head `i` reads key/value head `i / (n_heads / n_kv_heads)`,
/// without copying keys or values. A query whose keys are all masked gets zeros, never NaN, and
/// passes no gradient.
///
/// Paths: in training, the memory-efficient kernel where it applies (flex and ndarray, no bias
/// or weights requested); otherwise burn's fused op (flash-style kernels on flex for long keys
/// and on GPUs) where it computes the same thing, the explicit path when dropout is active or
/// weights are requested. Dropout draws one seed from the device's generator, and both the
/// memory-efficient and the explicit path apply the mask [`engram_tensor::dropout_with`] draws
/// from it, so a seeded device gives the same result on either.
/// The fused op's output for fully masked queries is zeroed here whatever the backend does with
/// them (burn's fallback and flex give zeros; the GPU kernels promise nothing).
///
/// # Shapes
/// - `query`: `[batch, n_heads, tq, d]`; `key`: `[batch, n_kv_heads, tk, d]`;
///   `value`: `[batch, n_kv_heads, tk, d_value]`;
/// - `bias`: broadcastable to `[batch, n_heads, tq, tk]` (each dim equal or 1), e.g. ALiBi;
/// - output: `[batch, n_heads, tq, d_value]`; weights: `[batch, n_heads, tq, tk]`.
///
/// # Panics
/// If the shapes disagree, `n_heads` is not a multiple of `n_kv_heads`, the bias does not
/// broadcast, the dropout is outside `[0, 1)`, or [`AttentionPath::Fused`] is forced with
/// weights requested or active dropout.
pub fn attention(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    mask: &AttentionMask,
    bias: Option<Tensor<4>>,
    options: AttentionOptions,
) -> AttentionOutput {
    let [batch, n_heads, tq, d] = query.dims();
    let [kb, n_kv_heads, tk, kd] = key.dims();
    let [vb, vh, vt, _] = value.dims();
    assert!(
        kb == batch && kd == d,
        "attention: key shape {:?} does not fit query shape {:?}",
        key.dims(),
        query.dims()
    );
    assert!(
        vb == batch && vh == n_kv_heads && vt == tk,
        "attention: value shape {:?} does not fit key shape {:?}",
        value.dims(),
        key.dims()
    );
    assert!(
        n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads),
        "attention: n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads}"
    );
    assert!(
        (0.0..1.0).contains(&options.dropout),
        "attention: dropout {} is outside [0, 1)",
        options.dropout
    );
    let full = [batch, n_heads, tq, tk];
    if let Some(bias) = &bias {
        let dims = bias.dims();
        assert!(
            dims.iter().zip(full).all(|(&b, f)| b == f || b == 1),
            "attention: bias shape {dims:?} does not broadcast to {full:?}"
        );
    }
    let dropout_active = options.dropout > 0.0 && query.device().is_autodiff();
    let explicit_needed = dropout_active || options.need_weights;
    let fused = match options.path {
        AttentionPath::Auto => !explicit_needed,
        AttentionPath::Explicit | AttentionPath::MemoryEfficient => false,
        AttentionPath::Fused => {
            assert!(
                !explicit_needed,
                "attention: the fused path cannot return weights (need_weights {}) or apply \
                 dropout (dropout {}, autodiff {})",
                options.need_weights,
                options.dropout,
                query.device().is_autodiff()
            );
            true
        }
    };
    let device = query.device();
    let aligned = matches!(mask.parts().3, Positions::Aligned { .. });
    let memory_efficient = match options.path {
        AttentionPath::Auto => {
            !options.need_weights
                && bias.is_none()
                && aligned
                && device.is_autodiff()
                && memory_efficient_supported(&device)
        }
        AttentionPath::MemoryEfficient => {
            assert!(
                !options.need_weights && bias.is_none(),
                "attention: the memory-efficient path cannot return weights (need_weights {}) or \
                 add a bias (bias {})",
                options.need_weights,
                bias.is_some()
            );
            true
        }
        AttentionPath::Explicit | AttentionPath::Fused => false,
    };
    if memory_efficient {
        let blocks = FlashBlocks::default();
        let dropout = dropout_active.then(|| DropMask::draw(&device, options.dropout));
        let output = blocked(query, key, value, mask, options.scale, blocks, dropout);
        return AttentionOutput { output, weights: None };
    }
    let mask = mask.build(batch, tq, tk, &device);
    let scale = options.scale.unwrap_or(1.0 / (d as f64).sqrt());
    let groups = n_heads / n_kv_heads;
    // Query heads that share a key/value head are stacked along the query axis, so one batched
    // matmul per key/value head serves the whole group and keys are never repeated.
    let grouped = [batch, n_kv_heads, groups * tq];
    let query = query.reshape([grouped[0], grouped[1], grouped[2], d]);

    if fused {
        let group_mask = mask.clone().map(|m| {
            let m = m.expand([batch, groups, tq, tk]).reshape([batch, 1, groups * tq, tk]);
            m.expand([batch, n_kv_heads, groups * tq, tk])
        });
        let bias = bias.map(|b| b.expand(full).reshape([batch, n_kv_heads, groups * tq, tk]));
        let output = fused_attention(
            query,
            key,
            value,
            group_mask,
            bias,
            AttentionModuleOptions { scale: options.scale, softcap: None, is_causal: false },
        );
        let d_value = output.dims()[3];
        let output = output.reshape([batch, n_heads, tq, d_value]);
        let output = match mask {
            Some(mask) => zero_dead_queries(output, mask),
            None => output,
        };
        return AttentionOutput { output, weights: None };
    }

    let scores = query.matmul(key.swap_dims(2, 3)).mul_scalar(scale).reshape(full);
    let scores = match bias {
        Some(bias) => scores + bias,
        None => scores,
    };
    let weights = match mask {
        Some(mask) => masked_softmax(scores, mask.expand(full), 3),
        None => activation::softmax(scores, 3),
    };
    let weights = if dropout_active {
        engram_tensor::dropout_with(weights, options.dropout)
    } else {
        weights
    };
    let output = weights.clone().reshape([grouped[0], grouped[1], grouped[2], tk]).matmul(value);
    let d_value = output.dims()[3];
    let output = output.reshape([batch, n_heads, tq, d_value]);
    AttentionOutput { output, weights: options.need_weights.then_some(weights) }
}

/// Zeroes the output of queries whose keys are all masked.
fn zero_dead_queries(output: Tensor<4>, mask: Tensor<4, Bool>) -> Tensor<4> {
    let dims = output.dims();
    // `mask` is `[batch or 1, 1, tq, tk]`; a query is dead when all its keys are masked.
    output.mask_fill(mask.all_dim(3).expand(dims), 0.0)
}

#[cfg(test)]
mod tests;
