//! The text classifier: token embedding (+ positions) → a memory → pooling → linear.
//!
//! The memory is any of engram's sequence encoders, chosen by [`MemoryKind`] in a serde
//! [`ClassifierConfig`], so that the same task compares a transformer encoder with an LSTM, a
//! BiLSTM, a GRU or an Elman RNN.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use engram_attention::{
    LearnedPositionalEncoding, LearnedPositionalEncodingConfig, TransformerEncoder,
    TransformerEncoderConfig, sinusoidal_encoding,
};
use engram_recurrent::{BiRecurrent, Recurrent, RecurrentConfig, RecurrentKind};
use engram_tensor::{SequenceMemory, masked_softmax};
use serde::{Deserialize, Serialize};

/// Which memory encodes the token sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// A bidirectional transformer encoder ([`TransformerEncoder`]).
    Transformer,
    /// An LSTM (bidirectional with [`ClassifierConfig::bidirectional`]).
    Lstm,
    /// A GRU.
    Gru,
    /// An Elman RNN with tanh.
    Rnn,
}

impl MemoryKind {
    /// Every kind, for help texts and sweeps.
    pub const ALL: [MemoryKind; 4] =
        [MemoryKind::Transformer, MemoryKind::Lstm, MemoryKind::Gru, MemoryKind::Rnn];

    /// The name used in configuration files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::Transformer => "transformer",
            MemoryKind::Lstm => "lstm",
            MemoryKind::Gru => "gru",
            MemoryKind::Rnn => "rnn",
        }
    }

    fn recurrent(self) -> Option<RecurrentKind> {
        match self {
            MemoryKind::Transformer => None,
            MemoryKind::Lstm => Some(RecurrentKind::Lstm),
            MemoryKind::Gru => Some(RecurrentKind::Gru),
            MemoryKind::Rnn => Some(RecurrentKind::RnnTanh),
        }
    }
}

impl std::str::FromStr for MemoryKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemoryKind::ALL.into_iter().find(|kind| kind.name() == s).ok_or_else(|| {
            format!("unknown memory `{s}`; expected one of transformer, lstm, gru, rnn")
        })
    }
}

/// How the encoded sequence becomes one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The first position (a `[CLS]` token the batcher puts first).
    First,
    /// The mean over real (non-padding) positions.
    Mean,
    /// The element-wise maximum over real positions.
    Max,
    /// A learned attention over positions: softmax of a linear score, masked at padding.
    Attention,
}

/// Positions added to the embeddings (the transformer needs them; recurrences do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// None.
    None,
    /// Fixed sinusoids (Vaswani et al., 2017).
    Sinusoidal,
    /// A learned table of `max_len` rows.
    Learned,
}

/// Configuration of a [`Classifier`]; saved as JSON next to a trained model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Vocabulary size (set from the tokenizer when training).
    pub vocab_size: usize,
    /// Number of classes (set from the training labels).
    pub n_classes: usize,
    /// Embedding width, and the transformer's `d_model`.
    pub d_model: usize,
    /// The memory.
    pub memory: MemoryKind,
    /// Stacked layers of the memory.
    pub n_layers: usize,
    /// Attention heads (transformer).
    pub n_heads: usize,
    /// Feed-forward width (transformer).
    pub d_ff: usize,
    /// Hidden width per direction (recurrent memories).
    pub d_hidden: usize,
    /// Run the recurrence both ways and concatenate (recurrent memories).
    pub bidirectional: bool,
    /// Pooling of the memory's output.
    pub pooling: Pooling,
    /// Positional encoding added to the embeddings.
    pub positions: Positions,
    /// Longest sequence in tokens; longer texts are truncated.
    pub max_len: usize,
    /// Dropout inside the memory and before the output layer.
    pub dropout: f64,
    /// Dropout on the embeddings.
    pub embedding_dropout: f64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            vocab_size: 0,
            n_classes: 0,
            d_model: 128,
            memory: MemoryKind::Transformer,
            n_layers: 2,
            n_heads: 4,
            d_ff: 256,
            d_hidden: 128,
            bidirectional: false,
            pooling: Pooling::Mean,
            positions: Positions::Sinusoidal,
            max_len: 64,
            dropout: 0.1,
            embedding_dropout: 0.1,
        }
    }
}

impl ClassifierConfig {
    /// Checks the sizes, naming the first field that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("n_classes", self.n_classes),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("max_len", self.max_len),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("`{field}` must be positive"));
        }
        if self.n_classes < 2 {
            return Err(format!("`n_classes` must be at least 2, got {}", self.n_classes));
        }
        for (field, p) in [("dropout", self.dropout), ("embedding_dropout", self.embedding_dropout)]
        {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("`{field}` must be in [0, 1), got {p}"));
            }
        }
        match self.memory {
            MemoryKind::Transformer => {
                if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
                    return Err(format!(
                        "`d_model` ({}) must be a positive multiple of `n_heads` ({})",
                        self.d_model, self.n_heads
                    ));
                }
                if self.d_ff == 0 {
                    return Err("`d_ff` must be positive".into());
                }
            }
            _ if self.d_hidden == 0 => return Err("`d_hidden` must be positive".into()),
            _ => {}
        }
        Ok(())
    }

    /// Width of the memory's output.
    pub fn d_memory(&self) -> usize {
        match self.memory {
            MemoryKind::Transformer => self.d_model,
            _ if self.bidirectional => 2 * self.d_hidden,
            _ => self.d_hidden,
        }
    }

    /// Creates the classifier.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Classifier {
        if let Err(err) = self.validate() {
            panic!("ClassifierConfig::init: {err}");
        }
        let memory = match self.memory.recurrent() {
            None => Memory::Transformer(
                TransformerEncoderConfig::new(self.d_model, self.n_heads, self.d_ff, self.n_layers)
                    .with_dropout(self.dropout)
                    .init(device),
            ),
            Some(kind) => {
                let config = RecurrentConfig::new(kind, self.d_model, self.d_hidden)
                    .with_n_layers(self.n_layers)
                    .with_dropout(self.dropout);
                if self.bidirectional {
                    Memory::BiRecurrent(config.init_bidirectional(device))
                } else {
                    Memory::Recurrent(config.init(device))
                }
            }
        };
        let d_memory = self.d_memory();
        Classifier {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            learned_positions: (self.positions == Positions::Learned).then(|| {
                LearnedPositionalEncodingConfig::new(self.max_len, self.d_model).init(device)
            }),
            sinusoidal: self.positions == Positions::Sinusoidal,
            memory,
            attention_pool: (self.pooling == Pooling::Attention)
                .then(|| LinearConfig::new(d_memory, 1).init(device)),
            pooling: self.pooling,
            embedding_dropout: DropoutConfig::new(self.embedding_dropout).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(d_memory, self.n_classes).init(device),
        }
    }
}

/// The memory inside a [`Classifier`].
#[derive(Module, Debug)]
pub enum Memory {
    /// A transformer encoder.
    Transformer(TransformerEncoder),
    /// A unidirectional recurrence.
    Recurrent(Recurrent),
    /// A bidirectional recurrence.
    BiRecurrent(BiRecurrent),
}

impl Memory {
    fn encode(&self, x: Tensor<3>, padding: Tensor<2, Bool>) -> Tensor<3> {
        match self {
            Memory::Transformer(m) => m.encode(x, Some(padding)).output,
            Memory::Recurrent(m) => m.encode(x, Some(padding)).output,
            Memory::BiRecurrent(m) => m.encode(x, Some(padding)).output,
        }
    }
}

/// Embedding → memory → pooling → linear; built by [`ClassifierConfig::init`].
#[derive(Module, Debug)]
pub struct Classifier {
    /// Token embeddings.
    pub embedding: Embedding,
    /// Learned positions, with [`Positions::Learned`].
    pub learned_positions: Option<LearnedPositionalEncoding>,
    /// Add sinusoidal positions.
    pub sinusoidal: bool,
    /// The sequence memory.
    pub memory: Memory,
    /// Scores of attention pooling, with [`Pooling::Attention`].
    pub attention_pool: Option<Linear>,
    /// The pooling.
    #[module(skip)]
    pub pooling: Pooling,
    /// Dropout on the embeddings.
    pub embedding_dropout: Dropout,
    /// Dropout before the output layer.
    pub dropout: Dropout,
    /// Class scores.
    pub output: Linear,
}

impl Classifier {
    /// Class logits `[batch, n_classes]` for token ids `[batch, seq]` with `padding` `[batch,
    /// seq]` (`true` at padding, right-padded: every row has at least its first position real).
    pub fn forward(&self, tokens: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<2> {
        let [batch, seq] = tokens.dims();
        let mut x = self.embedding.forward(tokens);
        if let Some(positions) = &self.learned_positions {
            x = positions.forward(x, 0);
        }
        if self.sinusoidal {
            let [_, _, d_model] = x.dims();
            let table = sinusoidal_encoding(seq, d_model, 0, &x.device());
            x = x + table.unsqueeze::<3>();
        }
        let x = engram_tensor::dropout(&self.embedding_dropout, x);
        let encoded = self.memory.encode(x, padding.clone());
        let [_, _, d] = encoded.dims();
        let pooled = match self.pooling {
            Pooling::First => encoded.narrow(1, 0, 1).reshape([batch, d]),
            Pooling::Mean => {
                let real = padding.clone().bool_not().float().unsqueeze_dim::<3>(2);
                let count = real.clone().sum_dim(1).clamp_min(1.0);
                (encoded * real).sum_dim(1).div(count).reshape([batch, d])
            }
            Pooling::Max => {
                let pad = padding.clone().unsqueeze_dim::<3>(2).expand([batch, seq, d]);
                encoded.mask_fill(pad, f32::NEG_INFINITY).max_dim(1).reshape([batch, d])
            }
            Pooling::Attention => {
                let score = match &self.attention_pool {
                    Some(linear) => linear.forward(encoded.clone()).reshape([batch, seq]),
                    None => panic!("Classifier::forward: attention pooling without its scores"),
                };
                let weights = masked_softmax(score, padding, 1);
                (encoded * weights.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([batch, d])
            }
        };
        self.output.forward(engram_tensor::dropout(&self.dropout, pooled))
    }
}
