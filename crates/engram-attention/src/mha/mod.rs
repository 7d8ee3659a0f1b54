//! Multi-head attention with grouped key/value heads, a fused QKV projection, rotary positions
//! and the masks of [`attention`](crate::attention).

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::linear::{linear, linear_parts};
use crate::position::{RotaryEncoding, RotaryEncodingConfig};
use crate::sdpa::{AttentionMask, AttentionOptions, attention};

/// Configuration of a [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Width of the input and output.
    pub d_model: usize,
    /// Number of query heads; `d_model` must be a multiple.
    pub n_heads: usize,
    /// Number of key/value heads (grouped-query attention; 1 is multi-query). Default: `None`,
    /// meaning `n_heads`.
    #[config(default = "None")]
    pub n_kv_heads: Option<usize>,
    /// Dropout on the attention weights during training. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Whether the projections have biases. Default: true.
    #[config(default = true)]
    pub bias: bool,
    /// Base of rotary position embeddings for self-attention; `None` (the default) for none.
    #[config(default = "None")]
    pub rope_theta: Option<f64>,
    /// Initialiser of the projections. Default: burn's `Linear` default (Kaiming uniform with
    /// gain `1/sqrt(3)`, which is PyTorch's `nn.Linear` initialisation).
    #[config(
        default = "Initializer::KaimingUniform { gain: 1.0 / f64::sqrt(3.0), fan_out_only: false }"
    )]
    pub initializer: Initializer,
}

/// Multi-head attention ("Attention Is All You Need", Vaswani et al., 2017) with grouped-query
/// heads (Ainslie et al., 2023) and optional rotary positions (Su et al., 2021).
///
/// The query, key and value projections are one `[d_model, (n_heads + 2·n_kv_heads)·d_head]`
/// matrix, in that order: self-attention runs one matmul; cross-attention multiplies the query
/// by the first columns and the context by the rest. Compared with burn-nn's
/// `MultiHeadAttention`, masking gives exact zeros instead of filling `-1e4`, the weights are
/// materialised only when asked for (otherwise burn's fused attention op runs), and keys and
/// values are cached without recomputing past scores (see [`KvCache`](crate::KvCache)).
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    /// Fused query/key/value projection.
    pub qkv: Linear,
    /// Output projection `[n_heads·d_head, d_model]`.
    pub output: Linear,
    /// Dropout on the weights.
    pub dropout: Dropout,
    /// Rotary embedding applied to queries and keys in self-attention.
    pub rope: Option<RotaryEncoding>,
    /// Width of the input and output.
    pub d_model: usize,
    /// Number of query heads.
    pub n_heads: usize,
    /// Number of key/value heads.
    pub n_kv_heads: usize,
    /// Width of each head.
    pub d_head: usize,
}

/// Input of [`MultiHeadAttention::forward`].
#[derive(Clone, Debug)]
pub struct MhaInput {
    /// `[batch, tq, d_model]`.
    pub query: Tensor<3>,
    /// `[batch, tk, d_model]` keys and values for cross-attention; `None` for self-attention.
    pub context: Option<Tensor<3>>,
    /// `[batch, tk]`, `true` at keys that are padding.
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Causal order (self-attention in a decoder).
    pub causal: bool,
    /// Sliding window: each query sees keys less than this many positions behind it.
    pub window: Option<usize>,
    /// Additive bias broadcastable to `[batch, n_heads, tq, tk]` (ALiBi, relative positions).
    pub bias: Option<Tensor<4>>,
    /// Return the attention weights.
    pub need_weights: bool,
}

impl MhaInput {
    /// Self-attention over `x`, `[batch, t, d_model]`.
    pub fn self_attention(x: Tensor<3>) -> Self {
        MhaInput {
            query: x,
            context: None,
            key_padding: None,
            causal: false,
            window: None,
            bias: None,
            need_weights: false,
        }
    }

    /// Cross-attention from `query` (`[batch, tq, d_model]`) to `context` (`[batch, tk,
    /// d_model]`).
    pub fn cross_attention(query: Tensor<3>, context: Tensor<3>) -> Self {
        MhaInput { context: Some(context), ..Self::self_attention(query) }
    }

    /// Sets the key padding mask, `[batch, tk]`, `true` at padding.
    pub fn with_key_padding(mut self, key_padding: Tensor<2, Bool>) -> Self {
        self.key_padding = Some(key_padding);
        self
    }

    /// Turns causal order on.
    pub fn causal(mut self) -> Self {
        self.causal = true;
        self
    }

    /// Sets a sliding window.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = Some(window);
        self
    }

    /// Sets an additive bias.
    pub fn with_bias(mut self, bias: Tensor<4>) -> Self {
        self.bias = Some(bias);
        self
    }

    /// Asks for the attention weights.
    pub fn with_weights(mut self) -> Self {
        self.need_weights = true;
        self
    }
}

/// Output of [`MultiHeadAttention::forward`].
#[derive(Clone, Debug)]
pub struct MhaOutput {
    /// `[batch, tq, d_model]`.
    pub output: Tensor<3>,
    /// `[batch, n_heads, tq, tk]` weights (after dropout), when asked for.
    pub weights: Option<Tensor<4>>,
}

impl MultiHeadAttentionConfig {
    /// Creates the layer on `device`.
    ///
    /// # Panics
    /// If `d_model` is not a multiple of `n_heads`, `n_heads` not a multiple of `n_kv_heads`, or
    /// (with rotary positions) the head width is odd.
    pub fn init(&self, device: &Device) -> MultiHeadAttention {
        assert!(
            self.n_heads > 0 && self.d_model.is_multiple_of(self.n_heads),
            "MultiHeadAttention: d_model {} is not divisible by n_heads {}",
            self.d_model,
            self.n_heads
        );
        let n_kv_heads = self.n_kv_heads.unwrap_or(self.n_heads);
        assert!(
            n_kv_heads > 0 && self.n_heads.is_multiple_of(n_kv_heads),
            "MultiHeadAttention: n_heads {} is not divisible by n_kv_heads {n_kv_heads}",
            self.n_heads
        );
        let d_head = self.d_model / self.n_heads;
        let projection = |d_input, d_output| {
            LinearConfig::new(d_input, d_output)
                .with_bias(self.bias)
                .with_initializer(self.initializer.clone())
                .init(device)
        };
        MultiHeadAttention {
            qkv: projection(self.d_model, (self.n_heads + 2 * n_kv_heads) * d_head),
            output: projection(self.n_heads * d_head, self.d_model),
            dropout: DropoutConfig::new(self.dropout).init(),
            rope: self
                .rope_theta
                .map(|theta| RotaryEncodingConfig::new(d_head).with_theta(theta).init()),
            d_model: self.d_model,
            n_heads: self.n_heads,
            n_kv_heads,
            d_head,
        }
    }
}

impl MultiHeadAttention {
    /// Attends from the queries to themselves or to a context.
    ///
    /// Rotary positions, when configured, apply to self-attention with every sequence starting
    /// at position 0; cross-attention uses none.
    ///
    /// # Shapes
    /// - `query`: `[batch, tq, d_model]`; `context`: `[batch, tk, d_model]` (self: `tk = tq`);
    /// - `key_padding`: `[batch, tk]`; `bias`: broadcastable to `[batch, n_heads, tq, tk]`;
    /// - output: `[batch, tq, d_model]`; weights: `[batch, n_heads, tq, tk]`.
    ///
    /// # Panics
    /// If the widths are not `d_model`, the batch sizes differ, or the masks and bias do not fit
    /// (see [`attention`](crate::attention)).
    pub fn forward(&self, input: MhaInput) -> MhaOutput {
        let MhaInput { query, context, key_padding, causal, window, bias, need_weights } = input;
        let [batch, tq, _] = self.check_input("query", &query);
        let (q, k, v) = match context {
            None => {
                let (q, k, v) = self.project_self(query);
                match &self.rope {
                    Some(rope) => (rope.forward_from(q, 0), rope.forward_from(k, 0), v),
                    None => (q, k, v),
                }
            }
            Some(context) => {
                let [cb, _, _] = self.check_input("context", &context);
                assert_eq!(
                    cb, batch,
                    "MultiHeadAttention: context batch {cb} differs from query batch {batch}"
                );
                self.project_cross(query, context)
            }
        };
        let mut mask = AttentionMask::none().with_causal(causal);
        if let Some(window) = window {
            mask = mask.with_window(window);
        }
        if let Some(padding) = key_padding {
            mask = mask.with_key_padding(padding);
        }
        let out = attention(q, k, v, &mask, bias, self.options(need_weights));
        MhaOutput { output: self.merge_heads(out.output, batch, tq), weights: out.weights }
    }

    /// The options of [`attention`] for this layer: dropout only while training.
    pub(crate) fn options(&self, need_weights: bool) -> AttentionOptions {
        let dropout = if self.dropout.training.is_enabled() { self.dropout.prob } else { 0.0 };
        AttentionOptions { dropout, need_weights, ..Default::default() }
    }

    /// Queries, keys and values of self-attention, `[batch, heads, t, d_head]`, before rotary
    /// positions.
    pub(crate) fn project_self(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [batch, t, _] = x.dims();
        let (h, hkv, dh) = (self.n_heads, self.n_kv_heads, self.d_head);
        if x.device().is_autodiff() {
            // In training, three products on the weight's column blocks: slicing the fused
            // output costs its backward a zero-filled copy of the whole gradient per slice and
            // two sums of them (~6 % of a classifier step's CPU samples); slicing the weight
            // costs that on the much smaller weight.
            let project = |start: usize, heads: usize| {
                let (weight, bias) = self.columns(start * dh, heads * dh);
                self.split_heads(linear_parts(x.clone(), weight, bias), batch, t, heads)
            };
            return (project(0, h), project(h, hkv), project(h + hkv, hkv));
        }
        // Heads first, then the three slices: every result is a view of the projection that
        // the attention kernels read in place (narrowing first made flex copy on reshape).
        let qkv = linear(&self.qkv, x).reshape([batch, t, h + 2 * hkv, dh]);
        let heads = |start, count| qkv.clone().narrow(2, start, count).swap_dims(1, 2);
        (heads(0, h), heads(h, hkv), heads(h + hkv, hkv))
    }

    /// Rotary positions for queries or keys at per-sequence positions `[batch, t]`.
    pub(crate) fn rotate(&self, x: Tensor<4>, positions: &Tensor<2, Int>) -> Tensor<4> {
        match &self.rope {
            Some(rope) => rope.forward(x, positions.clone()),
            None => x,
        }
    }

    /// `[batch, heads, t, d_head]` to `[batch, t, d_model]` through the output projection.
    pub(crate) fn merge_heads(&self, x: Tensor<4>, batch: usize, t: usize) -> Tensor<3> {
        let merged = x.swap_dims(1, 2).reshape([batch, t, self.n_heads * self.d_head]);
        linear(&self.output, merged)
    }

    fn project_cross(
        &self,
        query: Tensor<3>,
        context: Tensor<3>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let (k, v) = self.project_context(context);
        (self.project_query(query), k, v)
    }

    /// Queries of cross-attention, `[batch, n_heads, tq, d_head]`: the first columns of the
    /// fused projection.
    pub(crate) fn project_query(&self, query: Tensor<3>) -> Tensor<4> {
        let [batch, tq, _] = query.dims();
        let (wq, bq) = self.columns(0, self.n_heads * self.d_head);
        self.split_heads(burn::tensor::module::linear(query, wq, bq), batch, tq, self.n_heads)
    }

    /// Keys and values of cross-attention, `[batch, n_kv_heads, tk, d_head]`: the remaining
    /// columns of the fused projection.
    pub(crate) fn project_context(&self, context: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        let [batch, tk, _] = context.dims();
        let (h, hkv, dh) = (self.n_heads, self.n_kv_heads, self.d_head);
        let (wkv, bkv) = self.columns(h * dh, 2 * hkv * dh);
        let kv = burn::tensor::module::linear(context, wkv, bkv);
        let k = self.split_heads(kv.clone().narrow(2, 0, hkv * dh), batch, tk, hkv);
        let v = self.split_heads(kv.narrow(2, hkv * dh, hkv * dh), batch, tk, hkv);
        (k, v)
    }

    /// Columns `start .. start + len` of the fused projection's weight and bias.
    fn columns(&self, start: usize, len: usize) -> (Tensor<2>, Option<Tensor<1>>) {
        let weight = self.qkv.weight.val().narrow(1, start, len);
        let bias = self.qkv.bias.as_ref().map(|b| b.val().narrow(0, start, len));
        (weight, bias)
    }

    fn split_heads(&self, x: Tensor<3>, batch: usize, t: usize, heads: usize) -> Tensor<4> {
        x.reshape([batch, t, heads, self.d_head]).swap_dims(1, 2)
    }

    /// Checks that `x` is `[batch, t, d_model]` and returns its dims.
    pub(crate) fn check_input(&self, name: &str, x: &Tensor<3>) -> [usize; 3] {
        let dims = x.dims();
        assert_eq!(
            dims[2], self.d_model,
            "MultiHeadAttention: {name} width {} is not d_model {}",
            dims[2], self.d_model
        );
        dims
    }
}

#[cfg(test)]
mod tests;
