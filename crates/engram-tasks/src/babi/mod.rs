//! bAbI question answering (Weston et al., 2015): the reader, End-To-End Memory Networks
//! (Sukhbaatar et al., 2015), readers built on any engram memory, training with the MemN2N
//! protocol, saved models that answer and show where they looked, and the published tables.
//!
//! - [`read`]: `ID text` / `ID question<TAB>answer<TAB>supports` files into [`QaExample`]s, the last
//!   50 statements as memory by default, malformed lines reported with file and line;
//!   [`tasks`]: the twenty tasks of `babi/en` (1k) and `babi/en-10k`, a missing file reported,
//!   not fatal.
//! - [`memn2n`]: bag-of-words or position encoding, temporal encoding, `K` hops, adjacent or
//!   layer-wise tying, linear start (`forward(.., linear)`); answers over the vocabulary.
//! - [`contract`]: readers on the memory contract: each statement and the question encoded by a
//!   transformer, universal transformer, LSTM or GRU, and one QA head attending over the
//!   statements in hops.
//! - [`train`]: per-task or joint training, best of several seeded runs by training error.
//! - [`saved`]: a model directory (`babi.json`, `model.bpk`) and `ask`.
//! - [`report`]: per-task error tables next to the published MemN2N and LSTM numbers.
//!
//! burn has no bAbI pieces; everything here is engram's own except the optimisers.
//!
//! ```
//! use std::path::Path;
//! use engram_tasks::babi::{ReadOptions, parse_babi};
//!
//! let text = "1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1\n";
//! let (qa, _) = parse_babi(text, Path::new("doc.txt"), ReadOptions::default()).unwrap();
//! assert_eq!(qa[0].answer, ["bathroom"]);
//! assert_eq!(qa[0].story[0].words, ["mary", "moved", "to", "the", "bathroom"]);
//! ```

pub mod contract;
pub mod encode;
pub mod memn2n;
pub mod model;
pub mod read;
pub mod report;
pub mod saved;
pub mod tasks;
pub mod train;

pub use encode::{HostBatch, Vocab};
pub use memn2n::{MemN2N, MemN2NConfig, SentenceEncoding, Tying, position_encoding};
pub use model::{BabiModel, ModelKind, ModelSpec};
pub use read::{BabiReadReport, QaExample, ReadOptions, Sentence, parse_babi, read_babi, tokenize};
pub use saved::{Asked, TrainedBabi};
pub use tasks::{BabiSet, BabiTask, LoadedTasks, TASK_NAMES, load_tasks, task_path};
pub use train::{BabiEpoch, BabiTrainConfig, TrainedRun, evaluate, train_babi};
