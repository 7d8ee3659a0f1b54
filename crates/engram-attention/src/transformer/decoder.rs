//! Transformer decoder: causal self-attention over KV caches, cross-attention to an encoded
//! memory and a feed-forward network, as an engram [`StreamingMemory`].

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm};
use burn::tensor::{Bool, Device, Tensor};
use engram_tensor::{Encoded, MemoryState, SequenceMemory, StreamingMemory};

use super::encoder::TransformerEncoderConfig;
use super::ffn::FeedForward;
use super::normalize;
use crate::cache::{CausalSelfAttention, KvCache};
use crate::mha::MultiHeadAttention;
use crate::sdpa::{AttentionMask, attention};

/// Configuration of a [`TransformerDecoder`].
#[derive(Config, Debug)]
pub struct TransformerDecoderConfig {
    /// Sizes, norms, dropout and positions of the blocks, shared with the encoder.
    pub blocks: TransformerEncoderConfig,
    /// Sliding window of the self-attention (and its cache eviction). Default: `None`.
    #[config(default = "None")]
    pub window: Option<usize>,
}

/// One decoder block: causal self-attention, cross-attention and a feed-forward network, each
/// in a residual branch.
#[derive(Module, Debug)]
pub struct TransformerDecoderLayer {
    /// Causal self-attention with its cache logic.
    pub self_attention: CausalSelfAttention,
    /// Cross-attention to the memory.
    pub cross_attention: MultiHeadAttention,
    /// Feed-forward network.
    pub ffn: FeedForward,
    /// Norm of the self-attention branch.
    pub norm_self: LayerNorm,
    /// Norm of the cross-attention branch.
    pub norm_cross: LayerNorm,
    /// Norm of the feed-forward branch.
    pub norm_ffn: LayerNorm,
    /// Dropout on each branch's output.
    pub dropout: Dropout,
    /// Pre-norm (`true`) or post-norm.
    pub norm_first: bool,
    /// Epsilon of the three norms (the configuration's `layer_norm_eps`).
    pub norm_eps: f64,
}

/// A stack of [`TransformerDecoderLayer`]s ("Attention Is All You Need", Vaswani et al., 2017).
///
/// It needs the memory it attends to before it can start: build the first state with
/// [`start`](TransformerDecoder::start), which projects the memory's keys and values once per
/// layer; `encode` and `encode_from` with `None` panic.
#[derive(Module, Debug)]
pub struct TransformerDecoder {
    /// The blocks.
    pub layers: Vec<TransformerDecoderLayer>,
    /// Output norm of a pre-norm stack.
    pub norm_final: Option<LayerNorm>,
    /// Width of the output.
    pub d_model: usize,
    /// Epsilon of the output norm.
    pub norm_eps: f64,
}

/// The state of one decoder block.
#[derive(Clone, Debug)]
pub struct DecoderLayerState {
    /// Keys and values of the self-attention.
    pub cache: KvCache,
    /// `[batch, n_kv_heads, t_memory, d_head]` projected memory keys.
    pub memory_keys: Tensor<4>,
    /// `[batch, n_kv_heads, t_memory, d_head]` projected memory values.
    pub memory_values: Tensor<4>,
}

/// The state of a [`TransformerDecoder`]: one per block, plus the memory's padding.
#[derive(Clone, Debug)]
pub struct DecoderState {
    /// Per-block caches and projected memory.
    pub layers: Vec<DecoderLayerState>,
    /// `[batch, t_memory]`, `true` at padded memory positions.
    pub memory_padding: Option<Tensor<2, Bool>>,
}

impl MemoryState for DecoderState {
    fn detach(self) -> Self {
        let layers = self
            .layers
            .into_iter()
            .map(|l| DecoderLayerState {
                cache: l.cache.detach(),
                memory_keys: l.memory_keys.detach(),
                memory_values: l.memory_values.detach(),
            })
            .collect();
        DecoderState { layers, memory_padding: self.memory_padding }
    }
}

impl TransformerDecoderConfig {
    /// Creates the stack.
    ///
    /// # Panics
    /// As [`TransformerEncoderConfig::init`], and if `window` is `Some(0)`.
    pub fn init(&self, device: &Device) -> TransformerDecoder {
        let blocks = &self.blocks;
        assert!(blocks.n_layers > 0, "TransformerDecoder: n_layers must be positive, got 0");
        let self_attention = crate::cache::CausalSelfAttentionConfig::new(blocks.attention())
            .with_window(self.window);
        let layer = || TransformerDecoderLayer {
            self_attention: self_attention.init(device),
            // Cross-attention has no positions of its own: the memory carries them.
            cross_attention: blocks.attention().with_rope_theta(None).init(device),
            ffn: blocks.ffn().init(device),
            norm_self: blocks.norm(device),
            norm_cross: blocks.norm(device),
            norm_ffn: blocks.norm(device),
            dropout: DropoutConfig::new(blocks.dropout).init(),
            norm_first: blocks.norm_first,
            norm_eps: blocks.layer_norm_eps,
        };
        TransformerDecoder {
            layers: (0..blocks.n_layers).map(|_| layer()).collect(),
            norm_final: (blocks.norm_first && blocks.final_norm).then(|| blocks.norm(device)),
            d_model: blocks.d_model,
            norm_eps: blocks.layer_norm_eps,
        }
    }
}

impl TransformerDecoderLayer {
    /// Applies the block to a chunk, continuing from `state`.
    ///
    /// # Shapes
    /// - `x`: `[batch, s, d_model]`; `padding`: `[batch, s]`; output: the same as `x`.
    fn forward(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        memory_padding: &Option<Tensor<2, Bool>>,
        state: DecoderLayerState,
    ) -> (Tensor<3>, DecoderLayerState) {
        let DecoderLayerState { cache, memory_keys, memory_values } = state;
        let attend_memory = |x: Tensor<3>| {
            let [batch, s, _] = x.dims();
            let mha = &self.cross_attention;
            let mut mask = AttentionMask::none();
            if let Some(padding) = memory_padding {
                mask = mask.with_key_padding(padding.clone());
            }
            let q = mha.project_query(x);
            let out = attention(
                q,
                memory_keys.clone(),
                memory_values.clone(),
                &mask,
                None,
                mha.options(false),
            );
            engram_tensor::dropout(&self.dropout, mha.merge_heads(out.output, batch, s))
        };
        let feed = |x: Tensor<3>| engram_tensor::dropout(&self.dropout, self.ffn.forward(x));
        let norm = |layer, x| normalize(layer, x, self.norm_eps);
        let (x, cache) = if self.norm_first {
            let (h, cache) = self.attend_self(norm(&self.norm_self, x.clone()), padding, cache);
            let x = x + h;
            let x = x.clone() + attend_memory(norm(&self.norm_cross, x));
            (x.clone() + feed(norm(&self.norm_ffn, x)), cache)
        } else {
            let (h, cache) = self.attend_self(x.clone(), padding, cache);
            let x = norm(&self.norm_self, x + h);
            let x = norm(&self.norm_cross, x.clone() + attend_memory(x));
            (norm(&self.norm_ffn, x.clone() + feed(x)), cache)
        };
        (x, DecoderLayerState { cache, memory_keys, memory_values })
    }

    /// The self-attention branch (before the residual sum) and the grown cache.
    fn attend_self(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        cache: KvCache,
    ) -> (Tensor<3>, KvCache) {
        let encoded = self.self_attention.forward(x, padding, cache);
        (engram_tensor::dropout(&self.dropout, encoded.output), encoded.state)
    }
}

impl TransformerDecoder {
    /// The first state for decoding against `memory` (an encoder's output), projecting its keys
    /// and values once per block.
    ///
    /// # Shapes
    /// - `memory`: `[batch, t_memory, d_model]`; `memory_padding`: `[batch, t_memory]`.
    ///
    /// # Panics
    /// If the width of `memory` is not `d_model` or the padding does not fit.
    pub fn start(
        &self,
        memory: Tensor<3>,
        memory_padding: Option<Tensor<2, Bool>>,
    ) -> DecoderState {
        let [batch, t_memory, d_model] = memory.dims();
        assert_eq!(
            d_model, self.d_model,
            "TransformerDecoder: memory width {d_model} is not d_model {}",
            self.d_model
        );
        if let Some(padding) = &memory_padding {
            assert_eq!(
                padding.dims(),
                [batch, t_memory],
                "TransformerDecoder: memory padding shape {:?} is not [batch {batch}, t_memory \
                 {t_memory}]",
                padding.dims()
            );
        }
        let device = memory.device();
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let (memory_keys, memory_values) =
                    layer.cross_attention.project_context(memory.clone());
                let cache = layer.self_attention.empty_cache(batch, &device);
                DecoderLayerState { cache, memory_keys, memory_values }
            })
            .collect();
        DecoderState { layers, memory_padding }
    }

    /// Decodes a chunk, continuing from `state`; outputs at padded positions are zero.
    ///
    /// # Shapes
    /// - `x`: `[batch, s, d_model]`; `padding`: `[batch, s]`; output: the same as `x`.
    ///
    /// # Panics
    /// If the shapes do not fit the state or `d_model`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: DecoderState,
    ) -> Encoded<DecoderState> {
        let dims = x.dims();
        let DecoderState { layers, memory_padding } = state;
        let mut x = x;
        let mut states = Vec::with_capacity(layers.len());
        for (layer, layer_state) in self.layers.iter().zip(layers) {
            let (y, s) = layer.forward(x, padding.clone(), &memory_padding, layer_state);
            x = y;
            states.push(s);
        }
        if let Some(norm) = &self.norm_final {
            x = normalize(norm, x, self.norm_eps);
        }
        let output = match padding {
            Some(padding) => x.mask_fill(padding.unsqueeze_dim::<3>(2).expand(dims), 0.0),
            None => x,
        };
        Encoded { output, state: DecoderState { layers: states, memory_padding } }
    }
}

impl SequenceMemory for TransformerDecoder {
    type State = DecoderState;

    fn d_output(&self) -> usize {
        self.d_model
    }

    /// Panics: a decoder needs its memory; use `encode_from` with
    /// [`start`](TransformerDecoder::start).
    fn encode(&self, input: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Encoded<DecoderState> {
        self.encode_from(input, padding, None)
    }
}

impl StreamingMemory for TransformerDecoder {
    /// # Panics
    /// If `state` is `None`: build it with [`start`](TransformerDecoder::start).
    fn encode_from(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<DecoderState>,
    ) -> Encoded<DecoderState> {
        let Some(state) = state else {
            panic!(
                "TransformerDecoder: no state; build the first one with TransformerDecoder::start"
            )
        };
        self.forward(input, padding, state)
    }
}

#[cfg(test)]
mod tests {
    use engram_tensor::testing::{Tolerance, test_device};
    use engram_tensor::{check_streaming, padding_mask};

    use super::*;
    use crate::test_util::tensor;

    fn decoder(norm_first: bool, window: Option<usize>) -> TransformerDecoder {
        let blocks = TransformerEncoderConfig::new(8, 2, 12, 2)
            .with_dropout(0.0)
            .with_n_kv_heads(Some(1))
            .with_norm_first(norm_first)
            .with_rope_theta(Some(10000.0));
        TransformerDecoderConfig::new(blocks).with_window(window).init(&test_device())
    }

    #[test]
    fn streaming_contract_holds_with_padded_memory() {
        let device = test_device();
        let (input, _) = tensor::<3>(51, [4, 6, 8]);
        let (memory, _) = tensor::<3>(52, [4, 3, 8]);
        let memory_padding = padding_mask(&[3, 2, 1, 3], 3, &device);
        for (norm_first, window) in [(true, None), (false, Some(2))] {
            let decoder = decoder(norm_first, window);
            let start = decoder.start(memory.clone(), Some(memory_padding.clone()));
            let report = check_streaming(
                &decoder,
                input.clone(),
                &[6, 1, 4, 3],
                Some(start),
                Tolerance::F32,
            );
            report.assert_ok();
        }
    }

    #[test]
    fn matches_burn_nn_with_copied_weights() {
        use burn::nn::attention::generate_autoregressive_mask;
        use burn::nn::transformer::{
            TransformerDecoderConfig as BurnConfig, TransformerDecoderInput as BurnInput,
        };
        use engram_tensor::testing::{assert_close, to_f64};

        use crate::test_util::copy_mha;

        let device = test_device();
        let (target, _) = tensor::<3>(53, [2, 4, 8]);
        let (memory, _) = tensor::<3>(54, [2, 3, 8]);
        let memory_padding = padding_mask(&[3, 2], 3, &device);
        for norm_first in [false, true] {
            let burn = BurnConfig::new(8, 12, 2, 2)
                .with_dropout(0.0)
                .with_norm_first(norm_first)
                .init(&device);
            let blocks = TransformerEncoderConfig::new(8, 2, 12, 2)
                .with_dropout(0.0)
                .with_norm_first(norm_first)
                .with_final_norm(false);
            let mut ours = TransformerDecoderConfig::new(blocks).init(&device);
            for (mine, theirs) in ours.layers.iter_mut().zip(&burn.layers) {
                let attention = mine.self_attention.attention.clone();
                mine.self_attention.attention = copy_mha(&theirs.self_attn, attention);
                mine.cross_attention = copy_mha(&theirs.cross_attn, mine.cross_attention.clone());
                mine.ffn.linear_inner = theirs.pwff.linear_inner.clone();
                mine.ffn.linear_outer = theirs.pwff.linear_outer.clone();
                // burn-nn names its norms by position in the post-norm block and uses them in a
                // rotated order for pre-norm.
                let (s, c, f) = if norm_first {
                    (&theirs.norm_3, &theirs.norm_1, &theirs.norm_2)
                } else {
                    (&theirs.norm_1, &theirs.norm_2, &theirs.norm_3)
                };
                (mine.norm_self, mine.norm_cross, mine.norm_ffn) =
                    (s.clone(), c.clone(), f.clone());
            }
            let input = BurnInput::new(target.clone(), memory.clone())
                .target_mask_attn(generate_autoregressive_mask(2, 4, &device))
                .memory_mask_pad(memory_padding.clone());
            let expected = burn.forward(input);
            let state = ours.start(memory.clone(), Some(memory_padding.clone()));
            let got = ours.forward(target.clone(), None, state).output;
            assert_close(got, &to_f64(expected), Tolerance::new(1e-4, 1e-4));
        }
    }

    #[test]
    #[should_panic(
        expected = "TransformerDecoder: no state; build the first one with TransformerDecoder::start"
    )]
    fn panics_without_a_memory() {
        let (input, _) = tensor::<3>(1, [1, 2, 8]);
        decoder(true, None).encode(input, None);
    }

    #[test]
    #[should_panic(expected = "TransformerDecoder: memory width 4 is not d_model 8")]
    fn panics_on_memory_of_wrong_width() {
        let (memory, _) = tensor::<3>(1, [1, 2, 4]);
        decoder(true, None).start(memory, None);
    }

    #[test]
    #[should_panic(
        expected = "TransformerDecoder: memory padding shape [1, 3] is not [batch 1, t_memory 2]"
    )]
    fn panics_on_memory_padding_of_wrong_shape() {
        let (memory, _) = tensor::<3>(1, [1, 2, 8]);
        decoder(true, None).start(memory, Some(padding_mask(&[3], 3, &test_device())));
    }

    #[test]
    #[should_panic(expected = "TransformerDecoder: n_layers must be positive, got 0")]
    fn panics_without_layers() {
        let blocks = TransformerEncoderConfig::new(8, 2, 12, 0);
        TransformerDecoderConfig::new(blocks).init(&test_device());
    }
}
