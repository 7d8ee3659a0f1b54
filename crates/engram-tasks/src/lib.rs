//! Tasks for engram's memory mechanisms: reading real datasets, tokenising, the models that put a
//! memory (transformer encoder, LSTM, GRU, RNN) between an embedding and a task head, training
//! and evaluation.
//!
//! - [`data`]: readers for the classification formats (TREC, SST, MR, GLUE TSV) and for a user's
//!   own CSV/TSV/JSONL, seeded splits and k-fold cross-validation; malformed rows are reported
//!   with file and line.
//! - [`tokenizer`]: word-level and BPE tokenisers trained on a training split with Hugging Face
//!   `tokenizers`, saved as a standard `tokenizer.json`.
//! - [`metrics`]: accuracy, per-class and macro/micro precision, recall and F1, the confusion
//!   matrix.
//! - [`model`]: the text classifier, embedding (+ positions) → any memory ([`model::MemoryKind`])
//!   → pooling → linear, configured by a serde [`model::ClassifierConfig`].
//! - [`train`]: the training loop (AdamW or SGD, warm-up + cosine or Noam schedules, global-norm
//!   clipping, label smoothing, augmentation, early stopping), atomic checkpoints that a resumed
//!   run continues from, and evaluation; [`plot`] draws the training curves as SVG.
//! - [`babi`]: bAbI question answering: the reader, End-To-End Memory Networks, readers on any
//!   memory, training with the MemN2N protocol, `ask` with the attention of every hop.
//! - [`classify`]: the whole task, from examples to a model directory that [`classify::TrainedClassifier`]
//!   loads for evaluation and prediction; [`demo`] is a built-in corpus to try it on.
//!
//! # Example
//! ```
//! use engram_tasks::classify::{TrainedClassifier, train_classifier};
//!
//! let device = engram_tensor::device(None).unwrap();
//! let out = std::env::temp_dir().join(format!("engram-doc-demo-{}", std::process::id()));
//! let mut config = engram_tasks::demo::config();
//! config.train.epochs = 1;
//! let outcome = train_classifier(&config, engram_tasks::demo::corpus(), &out, &device, &mut |_| {})
//!     .unwrap();
//! assert_eq!(outcome.history.len(), 1);
//! let model = TrainedClassifier::load(&out, &device).unwrap();
//! let predictions = model.predict(&["a truly wonderful film"]);
//! assert!(predictions[0].label == "positive" || predictions[0].label == "negative");
//! # std::fs::remove_dir_all(&out).unwrap();
//! ```
#![warn(missing_docs)]

pub mod babi;
pub mod classify;
pub mod data;
pub mod demo;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod tokenizer;
pub mod train;
