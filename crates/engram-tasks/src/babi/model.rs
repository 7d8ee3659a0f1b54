//! One type for every bAbI model, chosen by configuration: MemN2N or a reader on the memory
//! contract, with the attention over memory slots that `engram ask` shows.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::contract::{ContractReader, ContractReaderConfig, Mechanism, SentenceBatch};
use super::encode::HostBatch;
use super::memn2n::{MemN2N, MemN2NConfig, MemoryBatch, SentenceEncoding, Tying};
use super::read::QaExample;

/// Which model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// End-to-end memory network.
    Memn2n,
    /// Transformer encoder reader.
    Transformer,
    /// Recurrent-in-depth (universal) transformer reader.
    Universal,
    /// LSTM reader.
    Lstm,
    /// GRU reader.
    Gru,
}

impl ModelKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memn2n => "memn2n",
            Self::Transformer => "transformer",
            Self::Universal => "universal",
            Self::Lstm => "lstm",
            Self::Gru => "gru",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memn2n" => Ok(Self::Memn2n),
            "transformer" => Ok(Self::Transformer),
            "universal" => Ok(Self::Universal),
            "lstm" => Ok(Self::Lstm),
            "gru" => Ok(Self::Gru),
            _ => Err(format!(
                "unknown bAbI model {s:?}; expected memn2n, transformer, universal, lstm or gru"
            )),
        }
    }
}

/// The architecture of a bAbI model (everything needed to rebuild it before loading weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Which model.
    pub kind: ModelKind,
    /// Embedding width: 20 per task, 50 joint for MemN2N; 64 for the readers.
    pub d_model: usize,
    /// MemN2N hops, or the readers' layers. Default 3 (MemN2N), 2 (readers).
    pub n_layers: usize,
    /// Memory slots (statements kept). Default: 50.
    pub memory_size: usize,
    /// MemN2N: position encoding (else bag of words).
    pub position_encoding: bool,
    /// MemN2N: temporal encoding.
    pub temporal: bool,
    /// MemN2N: layer-wise tying (else adjacent).
    pub layer_wise: bool,
    /// MemN2N: ReLU on the controller state after each hop. Absent in files saved before it
    /// existed, which read as false.
    #[serde(default)]
    pub relu: bool,
    /// MemN2N: a memory of this many slots whose unused ones take part in the softmax, as in the
    /// authors' code (see [`ModelSpec::with_fixed_memory`]); `None` masks them out. Absent in
    /// files saved before it existed, which read as `None`.
    #[serde(default)]
    pub slots: Option<usize>,
    /// Readers: attention heads.
    pub n_heads: usize,
    /// Readers: dropout.
    pub dropout: f64,
    /// Readers: hops of the QA head over the statements. Default: 3. (MemN2N's hops are
    /// `n_layers`.) Absent in files saved before it existed, which read as 3.
    #[serde(default = "default_hops")]
    pub n_hops: usize,
}

fn default_hops() -> usize {
    3
}

impl ModelSpec {
    /// The defaults for `kind`.
    pub fn new(kind: ModelKind) -> Self {
        let memn2n = kind == ModelKind::Memn2n;
        Self {
            kind,
            d_model: if memn2n { 20 } else { 64 },
            n_layers: if memn2n { 3 } else { 2 },
            memory_size: 50,
            position_encoding: true,
            temporal: true,
            layer_wise: false,
            relu: false,
            slots: None,
            n_heads: 4,
            dropout: 0.1,
            n_hops: default_hops(),
        }
    }

    /// For MemN2N, sizes the memory as the authors' code does, `min(memory_size, longest story
    /// in train)` slots, and lets the unused ones take part in the softmax: each scores 0 and
    /// reads nothing, so a hop can attend to (almost) nothing. On the 1k set, five runs per task,
    /// this took tasks 6, 9 and 10 from 16.5, 21.0 and 32.9 % test error to 7.3, 10.9 and 16.4 %
    /// (docs/results.md). The readers are unchanged.
    pub fn with_fixed_memory(mut self, train: &[QaExample]) -> Self {
        if self.kind == ModelKind::Memn2n {
            let longest = train.iter().map(|ex| ex.story.len()).max().unwrap_or(0);
            self.slots = Some(longest.max(1).min(self.memory_size));
        }
        self
    }

    /// Creates the model for a vocabulary of `vocab_size`.
    ///
    /// # Panics
    /// As the chosen model's `init`.
    pub fn init(&self, vocab_size: usize, device: &Device) -> BabiModel {
        let mechanism = match self.kind {
            ModelKind::Memn2n => {
                return BabiModel::MemN2N(
                    MemN2NConfig::new(vocab_size)
                        .with_d_model(self.d_model)
                        .with_n_hops(self.n_layers)
                        .with_memory_size(self.memory_size)
                        .with_encoding(if self.position_encoding {
                            SentenceEncoding::Position
                        } else {
                            SentenceEncoding::BagOfWords
                        })
                        .with_temporal(self.temporal)
                        .with_tying(if self.layer_wise {
                            Tying::LayerWise
                        } else {
                            Tying::Adjacent
                        })
                        .with_relu(self.relu)
                        .with_slots(self.slots)
                        .init(device),
                );
            }
            ModelKind::Transformer => Mechanism::Transformer,
            ModelKind::Universal => Mechanism::Universal,
            ModelKind::Lstm => Mechanism::Lstm,
            ModelKind::Gru => Mechanism::Gru,
        };
        BabiModel::Reader(
            ContractReaderConfig::new(vocab_size, mechanism)
                .with_d_model(self.d_model)
                .with_n_layers(self.n_layers)
                .with_n_heads(self.n_heads)
                .with_dropout(self.dropout)
                .with_n_hops(self.n_hops)
                .with_memory_size(self.memory_size)
                .init(device),
        )
    }
}

/// A bAbI model.
// One model per run, built once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum BabiModel {
    /// End-to-end memory network.
    MemN2N(MemN2N),
    /// A reader on the memory contract.
    Reader(ContractReader),
}

/// Logits and where the model looked.
#[derive(Debug)]
pub struct Answered {
    /// `[batch, vocab]` answer logits.
    pub logits: Tensor<2>,
    /// Per hop, `[batch, memory]` attention over the memory slots of the [`HostBatch`] (slot 0
    /// the most recent statement).
    pub attention: Vec<Tensor<2>>,
}

impl BabiModel {
    /// Answers a host batch on `device`; `linear` is MemN2N's linear start (ignored by readers).
    pub fn answer(&self, host: &HostBatch, linear: bool, device: &Device) -> Answered {
        match self {
            BabiModel::MemN2N(net) => {
                let batch = MemoryBatch::new(host, net.d_model, net.position, device);
                let out = net.forward(&batch, linear);
                Answered { logits: out.logits, attention: out.attention }
            }
            BabiModel::Reader(reader) => {
                let out = reader.forward(&SentenceBatch::new(host, device));
                Answered { logits: out.logits, attention: out.attention }
            }
        }
    }
}

/// The predicted answer id of each row.
pub fn predictions(logits: Tensor<2>) -> Vec<usize> {
    let ids: Tensor<2, Int> = logits.argmax(1);
    ids.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i as usize)
        .collect()
}
