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
#![warn(missing_docs)]

pub mod data;
pub mod metrics;
pub mod tokenizer;
