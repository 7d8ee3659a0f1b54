//! The twenty bAbI tasks on disk: `babi/en` (1k) and `babi/en-10k`, files `qaN_name_{train,test}.txt`.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::read::{BabiReadReport, QaExample, ReadOptions, read_babi};
use crate::data::DataError;

/// Which training-set size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BabiSet {
    /// 1,000 training questions per task (`en/`).
    #[serde(rename = "1k")]
    En1k,
    /// 10,000 training questions per task (`en-10k/`).
    #[serde(rename = "10k")]
    En10k,
}

impl BabiSet {
    /// The folder under `babi/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::En1k => "en",
            Self::En10k => "en-10k",
        }
    }

    /// `1k` or `10k`.
    pub fn name(self) -> &'static str {
        match self {
            Self::En1k => "1k",
            Self::En10k => "10k",
        }
    }
}

impl std::str::FromStr for BabiSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1k" | "en" => Ok(Self::En1k),
            "10k" | "en-10k" => Ok(Self::En10k),
            _ => Err(format!("unknown bAbI set {s:?}; expected 1k or 10k")),
        }
    }
}

/// The short names of the twenty tasks, in order (task `i` is `TASK_NAMES[i - 1]`).
pub const TASK_NAMES: [&str; 20] = [
    "single-supporting-fact",
    "two-supporting-facts",
    "three-supporting-facts",
    "two-arg-relations",
    "three-arg-relations",
    "yes-no-questions",
    "counting",
    "lists-sets",
    "simple-negation",
    "indefinite-knowledge",
    "basic-coreference",
    "conjunction",
    "compound-coreference",
    "time-reasoning",
    "basic-deduction",
    "basic-induction",
    "positional-reasoning",
    "size-reasoning",
    "path-finding",
    "agents-motivations",
];

/// One task's splits. Validation is taken from training by [`BabiTask::split_valid`].
#[derive(Clone, Debug)]
pub struct BabiTask {
    /// 1 to 20.
    pub id: usize,
    /// Training questions.
    pub train: Vec<QaExample>,
    /// Validation questions (empty until split).
    pub valid: Vec<QaExample>,
    /// Test questions.
    pub test: Vec<QaExample>,
    /// What the reader did with each file.
    pub reports: Vec<BabiReadReport>,
}

/// The path of a task's split: `dir/babi/<set>/qa<id>_<name>_<split>.txt`.
///
/// # Panics
/// If `task` is not in 1..=20.
pub fn task_path(data: &Path, set: BabiSet, task: usize, split: &str) -> PathBuf {
    assert!((1..=20).contains(&task), "task_path: bAbI task must be 1 to 20, got {task}");
    data.join("babi")
        .join(set.dir_name())
        .join(format!("qa{task}_{}_{split}.txt", TASK_NAMES[task - 1]))
}

impl BabiTask {
    /// Reads task `task` of `set` from the data folder (the one holding `babi/`).
    ///
    /// # Errors
    /// [`DataError::MissingFile`] when a split is absent (10k task 3's training file is), and the
    /// reader's errors.
    ///
    /// # Panics
    /// If `task` is not in 1..=20.
    pub fn load(
        data: &Path,
        set: BabiSet,
        task: usize,
        options: ReadOptions,
    ) -> Result<Self, DataError> {
        let (train, train_report) = read_babi(&task_path(data, set, task, "train"), options)?;
        let (test, test_report) = read_babi(&task_path(data, set, task, "test"), options)?;
        Ok(Self {
            id: task,
            train,
            valid: Vec::new(),
            test,
            reports: vec![train_report, test_report],
        })
    }

    /// Moves `round(fraction · n)` training questions, chosen by a seeded shuffle, to `valid`.
    ///
    /// # Panics
    /// If `fraction` is not in `[0, 1)`.
    pub fn split_valid(&mut self, fraction: f64, seed: u64) {
        let (train, valid) = split(std::mem::take(&mut self.train), fraction, seed);
        self.train = train;
        self.valid.extend(valid);
    }
}

/// Splits questions into (train, valid) with `round(fraction · n)` in valid, order kept.
///
/// # Panics
/// If `fraction` is not in `[0, 1)`.
pub fn split(
    examples: Vec<QaExample>,
    fraction: f64,
    seed: u64,
) -> (Vec<QaExample>, Vec<QaExample>) {
    assert!(
        (0.0..1.0).contains(&fraction),
        "babi::split: fraction must be in [0, 1), got {fraction}"
    );
    let n_valid = (fraction * examples.len() as f64).round() as usize;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut in_valid = vec![false; examples.len()];
    for &i in &order[..n_valid] {
        in_valid[i] = true;
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (example, v) in examples.into_iter().zip(in_valid) {
        if v { valid.push(example) } else { train.push(example) }
    }
    (train, valid)
}

/// Which tasks of a set could be read: the loaded ones and, for each absent task, why.
#[derive(Debug, Default)]
pub struct LoadedTasks {
    /// Tasks read, in order.
    pub tasks: Vec<BabiTask>,
    /// `(task, error)` for each task that could not be read (for instance a missing file).
    pub missing: Vec<(usize, DataError)>,
}

/// Loads the tasks `ids` of `set`, each split 90/10 into train/valid with `seed`.
/// A task whose file is missing is reported in [`LoadedTasks::missing`], not fatal; any other
/// error is.
///
/// # Errors
/// The reader's errors other than [`DataError::MissingFile`].
pub fn load_tasks(
    data: &Path,
    set: BabiSet,
    ids: &[usize],
    options: ReadOptions,
    valid_fraction: f64,
    seed: u64,
) -> Result<LoadedTasks, DataError> {
    let mut loaded = LoadedTasks::default();
    for &id in ids {
        match BabiTask::load(data, set, id, options) {
            Ok(mut task) => {
                task.split_valid(valid_fraction, seed.wrapping_add(id as u64));
                loaded.tasks.push(task);
            }
            Err(err @ DataError::MissingFile { .. }) => loaded.missing.push((id, err)),
            Err(err) => return Err(err),
        }
    }
    Ok(loaded)
}
