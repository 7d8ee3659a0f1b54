//! Readers on the memory contract: the story as one token sequence, encoded by any
//! [`SequenceMemory`] (transformer encoder, a recurrent-in-depth transformer, LSTM, GRU), with one
//! QA head that attends from the encoded question to the encoded story.
//!
//! The head: the question is encoded by the same mechanism and mean-pooled into `q`; the story
//! positions `h_t` are scored by `h_t · W_q q`, the masked softmax of the scores gives a context
//! `c`, and `W_o [q; c]` are the answer logits over the vocabulary. The attention summed per
//! statement is what `engram ask` shows.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use engram_attention::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderLayer};
use engram_recurrent::{Recurrent, RecurrentConfig, RecurrentKind};
use engram_tensor::{SequenceMemory, masked_softmax};
use serde::{Deserialize, Serialize};

use super::encode::{HostBatch, PAD};

/// Which mechanism encodes story and question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mechanism {
    /// [`TransformerEncoder`] with learned absolute positions.
    Transformer,
    /// One transformer block applied `n_layers` times (Universal Transformer, Dehghani et al.,
    /// 2019, without adaptive halting), with a learned depth embedding per step.
    Universal,
    /// Unidirectional LSTM.
    Lstm,
    /// Unidirectional GRU.
    Gru,
}

/// Configuration of a [`ContractReader`].
#[derive(Config, Debug)]
pub struct ContractReaderConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// The mechanism.
    pub mechanism: Mechanism,
    /// Width of embeddings and of the mechanism. Default: 64.
    #[config(default = 64)]
    pub d_model: usize,
    /// Layers (transformer blocks, recurrent layers, or depth steps). Default: 2.
    #[config(default = 2)]
    pub n_layers: usize,
    /// Attention heads of the transformers. Default: 4.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Dropout inside the mechanism. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// The longest story in tokens (learned positions). Default: 1024.
    #[config(default = 1024)]
    pub max_tokens: usize,
}

/// The encoder inside a [`ContractReader`].
// One model per run, built once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    /// A transformer stack.
    Transformer(TransformerEncoder),
    /// A block shared across depth.
    Universal(UniversalEncoder),
    /// A recurrent stack.
    Recurrent(Recurrent),
}

/// One transformer block applied once per depth step, with a learned depth embedding added
/// before each step and a final layer norm.
#[derive(Module, Debug)]
pub struct UniversalEncoder {
    /// The shared block.
    pub layer: TransformerEncoderLayer,
    /// `[steps, d]` depth embeddings; the number of rows is the number of steps.
    pub depth: Param<Tensor<2>>,
    /// Output norm.
    pub norm: LayerNorm,
}

/// A story reader: embedding, mechanism, QA head; see the module documentation.
#[derive(Module, Debug)]
pub struct ContractReader {
    /// Word embeddings.
    pub embedding: Embedding,
    /// Learned positions (used by the transformers).
    pub positions: Embedding,
    /// The mechanism.
    pub encoder: Encoder,
    /// Query projection `W_q`.
    pub query: Linear,
    /// Answer projection `W_o`.
    pub output: Linear,
}

/// A [`HostBatch`] flattened to token sequences, on a device.
#[derive(Clone, Debug)]
pub struct TokenBatch {
    /// `[batch, tokens]` story ids, statements oldest first.
    pub story: Tensor<2, Int>,
    /// `[batch, tokens]`, `true` at padding.
    pub story_padding: Tensor<2, Bool>,
    /// `[batch, tokens]` the memory slot of each token (for per-statement attention).
    pub slot_of_token: Vec<Vec<usize>>,
    /// `[batch, question_words]` ids.
    pub question: Tensor<2, Int>,
    /// `[batch, question_words]`, `true` at padding.
    pub question_padding: Tensor<2, Bool>,
}

impl TokenBatch {
    /// Flattens the statements of `host` (oldest first, noise memories left out) into tokens.
    pub fn new(host: &HostBatch, device: &Device) -> Self {
        let mut rows: Vec<Vec<i64>> = Vec::with_capacity(host.batch);
        let mut slots = Vec::with_capacity(host.batch);
        for b in 0..host.batch {
            let (mut row, mut slot_row) = (Vec::new(), Vec::new());
            for m in (0..host.n_memories[b]).rev() {
                let len = host.sentence_len[b * host.memory + m];
                let start = (b * host.memory + m) * host.words;
                row.extend_from_slice(&host.story[start..start + len]);
                slot_row.extend(std::iter::repeat_n(m, len));
            }
            rows.push(row);
            slots.push(slot_row);
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let (b, q) = (host.batch, host.question_words);
        let mut ids = vec![PAD as i64; b * t];
        let mut pad = vec![true; b * t];
        for (i, row) in rows.iter().enumerate() {
            ids[i * t..i * t + row.len()].copy_from_slice(row);
            pad[i * t..i * t + row.len()].fill(false);
        }
        let q_pad: Vec<bool> =
            (0..b * q).map(|i| i % q >= host.question_len[i / q].max(1)).collect();
        Self {
            story: Tensor::from_data(TensorData::new(ids, [b, t]), device),
            story_padding: Tensor::from_data(TensorData::new(pad, [b, t]), device),
            slot_of_token: slots,
            question: Tensor::from_data(TensorData::new(host.question.clone(), [b, q]), device),
            question_padding: Tensor::from_data(TensorData::new(q_pad, [b, q]), device),
        }
    }
}

/// What [`ContractReader::forward`] returns.
#[derive(Debug)]
pub struct ReaderOutput {
    /// `[batch, vocab]` answer logits.
    pub logits: Tensor<2>,
    /// `[batch, tokens]` attention of the question over the story tokens.
    pub attention: Tensor<2>,
}

impl ContractReaderConfig {
    /// Creates the reader.
    ///
    /// # Panics
    /// As the mechanism's own `init` (for instance `d_model % n_heads != 0`).
    pub fn init(&self, device: &Device) -> ContractReader {
        let d = self.d_model;
        let transformer = TransformerEncoderConfig::new(d, self.n_heads, 4 * d, self.n_layers)
            .with_dropout(self.dropout);
        let recurrent = |kind| {
            RecurrentConfig::new(kind, d, d)
                .with_n_layers(self.n_layers)
                .with_dropout(if self.n_layers > 1 { self.dropout } else { 0.0 })
                .init(device)
        };
        let encoder = match self.mechanism {
            Mechanism::Transformer => Encoder::Transformer(transformer.init(device)),
            Mechanism::Universal => Encoder::Universal(UniversalEncoder {
                layer: transformer.init_layer(device),
                depth: Param::from_tensor(Tensor::random(
                    [self.n_layers, d],
                    Distribution::Normal(0.0, 0.02),
                    device,
                )),
                norm: LayerNormConfig::new(d).init(device),
            }),
            Mechanism::Lstm => Encoder::Recurrent(recurrent(RecurrentKind::Lstm)),
            Mechanism::Gru => Encoder::Recurrent(recurrent(RecurrentKind::Gru)),
        };
        ContractReader {
            embedding: EmbeddingConfig::new(self.vocab_size, d).init(device),
            positions: EmbeddingConfig::new(self.max_tokens, d).init(device),
            encoder,
            query: LinearConfig::new(d, d).init(device),
            output: LinearConfig::new(2 * d, self.vocab_size).init(device),
        }
    }
}

impl ContractReader {
    fn encode(&self, ids: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let x = self.embedding.forward(ids);
        let device = x.device();
        let with_positions = |x: Tensor<3>| {
            let max = self.positions.weight.dims()[0];
            assert!(t <= max, "ContractReader: {t} tokens exceed max_tokens {max}");
            let pos =
                Tensor::<1, Int>::arange(0..t as i64, &device).unsqueeze::<2>().repeat_dim(0, b);
            x + self.positions.forward(pos)
        };
        match &self.encoder {
            Encoder::Transformer(enc) => enc.encode(with_positions(x), Some(padding)).output,
            Encoder::Universal(u) => {
                let mut x = with_positions(x);
                let steps = u.depth.dims()[0];
                for s in 0..steps {
                    let step = u.depth.val().narrow(0, s, 1).unsqueeze::<3>();
                    x = u.layer.forward(x + step, Some(padding.clone()));
                }
                let dims = x.dims();
                u.norm.forward(x).mask_fill(padding.unsqueeze_dim::<3>(2).expand(dims), 0.0)
            }
            Encoder::Recurrent(rnn) => rnn.encode(x, Some(padding)).output,
        }
    }

    /// Answers a batch.
    ///
    /// # Shapes
    /// See [`TokenBatch`]; logits `[batch, vocab]`.
    pub fn forward(&self, batch: &TokenBatch) -> ReaderOutput {
        let story = self.encode(batch.story.clone(), batch.story_padding.clone());
        let question = self.encode(batch.question.clone(), batch.question_padding.clone());
        let [b, _, d] = question.dims();
        let real = batch.question_padding.clone().bool_not().float();
        let counts = real.clone().sum_dim(1).clamp_min(1.0);
        let q = question.sum_dim(1).reshape([b, d]) / counts;
        let key = self.query.forward(q.clone());
        let t = story.dims()[1];
        let scores = story.clone().matmul(key.unsqueeze_dim::<3>(2)).reshape([b, t]);
        let attention = masked_softmax(scores, batch.story_padding.clone(), 1);
        let context = attention.clone().unsqueeze_dim::<3>(1).matmul(story).reshape([b, d]);
        let logits = self.output.forward(Tensor::cat(vec![q, context], 1));
        ReaderOutput { logits, attention }
    }
}
