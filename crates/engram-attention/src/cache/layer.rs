//! Causal self-attention over a KV cache: the streaming attention memory.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use engram_tensor::{Encoded, SequenceMemory, StreamingMemory};

#[cfg(feature = "flex")]
use super::step;
use super::{KvCache, bool_values, int_tensor};
use crate::mha::{MultiHeadAttention, MultiHeadAttentionConfig};
use crate::position::alibi_slopes;
use crate::sdpa::{AttentionMask, Positions, attention};

/// Configuration of a [`CausalSelfAttention`].
#[derive(Config, Debug)]
pub struct CausalSelfAttentionConfig {
    /// The attention layer (heads, key/value heads, rotary positions, dropout).
    pub attention: MultiHeadAttentionConfig,
    /// Sliding window: each token sees itself and at most `window - 1` tokens before it, and the
    /// cache evicts what no token can see any more. Default: `None` (all past tokens).
    #[config(default = "None")]
    pub window: Option<usize>,
    /// ALiBi (Press et al., 2022): add `-slope_h · (p_query - p_key)` to the scores, with each
    /// sequence's own positions, so that cached decoding and a full forward agree. Default:
    /// false.
    #[config(default = false)]
    pub alibi: bool,
}

/// Causal multi-head self-attention that streams over a [`KvCache`]: a decoder layer's
/// attention as an engram memory.
///
/// Each chunk projects its tokens once, appends their keys and values to the cache and attends
/// from its queries to all cached slots; earlier scores are never recomputed. Rotary positions
/// count each sequence's own real tokens, so a padded batch gives each row what it would get
/// alone.
#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    /// The attention layer.
    pub attention: MultiHeadAttention,
    /// Sliding window, if any.
    pub window: Option<usize>,
    /// Whether ALiBi biases the scores.
    pub alibi: bool,
}

impl CausalSelfAttentionConfig {
    /// Creates the layer on `device`.
    ///
    /// # Panics
    /// As [`MultiHeadAttentionConfig::init`], and if `window` is `Some(0)`.
    pub fn init(&self, device: &burn::tensor::Device) -> CausalSelfAttention {
        assert!(self.window != Some(0), "CausalSelfAttention: window must be at least 1, got 0");
        CausalSelfAttention {
            attention: self.attention.init(device),
            window: self.window,
            alibi: self.alibi,
        }
    }
}

impl CausalSelfAttention {
    /// An empty cache for `batch` sequences with this layer's window.
    pub fn empty_cache(&self, batch: usize, device: &burn::tensor::Device) -> KvCache {
        KvCache::new(batch, self.window, device)
    }

    /// Attends from a chunk to itself and the cache, and returns the grown cache.
    ///
    /// A chunk of one position (a decoding step) attends with a `[batch, capacity]` key mask
    /// built on the host from the cache's bookkeeping; longer chunks pass per-row positions to
    /// the causal and window masks. A padding mask, when given, is read to the host.
    ///
    /// # Shapes
    /// - `input`: `[batch, s, d_model]`; `padding`: `[batch, s]`, `true` at padding (rows are
    ///   right-padded); output: `[batch, s, d_model]`, zero at padding.
    ///
    /// # Panics
    /// If the input width is not `d_model`, or the padding or cache do not fit the batch.
    pub fn forward(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        cache: KvCache,
    ) -> Encoded<KvCache> {
        let mha = &self.attention;
        let [batch, s, _] = mha.check_input("input", &input);
        if let Some(padding) = &padding {
            assert_eq!(
                padding.dims(),
                [batch, s],
                "CausalSelfAttention: padding shape {:?} is not [batch {batch}, s {s}]",
                padding.dims()
            );
        }
        let padded = padding.clone().map(bool_values);
        let query_positions = cache.next_positions_host(s);
        let device = input.device();
        // Position tensors only where something reads them: rotary embeddings, ALiBi, and the
        // masks of a chunk longer than one.
        let positions = (mha.rope.is_some() || self.alibi || s > 1)
            .then(|| int_tensor(query_positions.clone(), [batch, s], &device));
        let (q, k, v) = mha.project_self(input);
        let (q, k) = match &positions {
            Some(positions) => (mha.rotate(q, positions), mha.rotate(k, positions)),
            None => (q, k),
        };
        let cache = cache.push(k, v, padded.as_deref(), &query_positions);
        let (keys, values) = cache.buffers();
        #[cfg(feature = "flex")]
        if s == 1 && !self.alibi && step::supported(&device, q.dtype()) {
            // A decoding step on flex: the live slots only, read in place.
            let hidden = cache.step_mask(&query_positions);
            let scale = 1.0 / (mha.d_head as f64).sqrt();
            let out = step::step_attention(q, keys, values, hidden, cache.end(), scale);
            let output = mha.merge_heads(out, batch, s);
            return Encoded { output: mask_padding(output, padding), state: cache.evict() };
        }
        let key_positions = (self.alibi || s > 1).then(|| cache.key_positions());
        let mask = match (&positions, &key_positions) {
            (Some(query), Some((key, hidden))) if s > 1 => {
                let mask = AttentionMask::none()
                    .with_causal(true)
                    .with_key_padding(hidden.clone())
                    .with_positions(Positions::PerRow { query: query.clone(), key: key.clone() });
                match self.window {
                    Some(window) => mask.with_window(window),
                    None => mask,
                }
            }
            _ => AttentionMask::none().with_key_padding(cache.step_mask(&query_positions)),
        };
        let bias = match (&positions, &key_positions) {
            (Some(query), Some((key, _))) if self.alibi => {
                Some(alibi_from_positions(mha.n_heads, query, key))
            }
            _ => None,
        };
        let out = attention(q, keys, values, &mask, bias, mha.options(false));
        let output = mha.merge_heads(out.output, batch, s);
        Encoded { output: mask_padding(output, padding), state: cache.evict() }
    }
}

/// Zeroes the outputs at padded positions.
fn mask_padding(output: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<3> {
    match padding {
        Some(padding) => {
            let dims = output.dims();
            output.mask_fill(padding.unsqueeze_dim::<3>(2).expand(dims), 0.0)
        }
        None => output,
    }
}

/// The ALiBi bias `-slope_h · (p_query - p_key)` from per-row positions, `[batch, n_heads, s, t]`
/// (keys after a query are masked by causal order, so the distance is not taken absolute).
fn alibi_from_positions(n_heads: usize, query: &Tensor<2, Int>, key: &Tensor<2, Int>) -> Tensor<4> {
    let ([batch, s], [_, t]) = (query.dims(), key.dims());
    let device = query.device();
    let slopes = Tensor::<1>::from_data(TensorData::new(alibi_slopes(n_heads), [n_heads]), &device)
        .reshape([1, n_heads, 1, 1]);
    let distance = query.clone().reshape([batch, 1, s, 1]) - key.clone().reshape([batch, 1, 1, t]);
    distance.float().mul(slopes.neg())
}

impl SequenceMemory for CausalSelfAttention {
    type State = KvCache;

    fn d_output(&self) -> usize {
        self.attention.d_model
    }

    fn encode(&self, input: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Encoded<KvCache> {
        self.encode_from(input, padding, None)
    }
}

impl StreamingMemory for CausalSelfAttention {
    fn encode_from(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<KvCache>,
    ) -> Encoded<KvCache> {
        let cache = state.unwrap_or_else(|| self.empty_cache(input.dims()[0], &input.device()));
        self.forward(input, padding, cache)
    }
}
