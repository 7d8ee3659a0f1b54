//! Datasets for the tasks: readers for text-classification files, label sets, seeded splits and
//! k-fold cross-validation, and token-level augmentation.
//!
//! Readers take a path and a [`Format`] and return the [`Example`]s with a [`ReadReport`]:
//!
//! - [`Format::LabelText`]: `label text` per line (TREC's `TREC.*.all`, Kim's `stsa.*`).
//! - [`Format::GlueTsv`]: GLUE's tab-separated files with a `sentence\tlabel` header.
//! - [`Format::Lines`]: one text per line, every line with the same label (MR's
//!   `rt-polarity.pos` and `.neg`).
//! - [`Format::Delimited`]: a user's CSV or TSV (RFC 4180 quoting), columns by index or name.
//! - [`Format::Jsonl`]: one JSON object per line, text and label fields by name.
//!
//! Nothing is dropped silently. A row that cannot be read is *malformed*: with
//! [`OnMalformed::Stop`] (the default) reading stops with [`DataError::Malformed`], which names the
//! file and line; with [`OnMalformed::Skip`] the row is left out and listed in
//! [`ReadReport::skipped`]. Blank lines are not examples and are counted in
//! [`ReadReport::blank_lines`]. Lines that are not valid UTF-8 are decoded as Windows-1252 (a
//! superset of Latin-1; MR and one TREC line need it) and counted in
//! [`ReadReport::windows_1252_lines`]. Text and labels are trimmed of surrounding whitespace.
//!
//! [`ClassificationDataset`] loads the named datasets in `../shared/data/classification` with
//! readable label names.
//!
//! ```
//! use engram_tasks::data::{self, Format, LabelSet, OnMalformed};
//!
//! let dir = std::env::temp_dir().join(format!("engram-data-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("train.txt");
//! std::fs::write(&path, "1 a fine film\n0 dull\n\n1 moving , funny\n").unwrap();
//!
//! let (examples, report) = data::read(&path, &Format::LabelText, OnMalformed::Stop).unwrap();
//! assert_eq!(examples.len(), 3);
//! assert_eq!((examples[1].label.as_str(), examples[1].text.as_str()), ("0", "dull"));
//! assert_eq!(report.blank_lines, 1);
//!
//! let labels = LabelSet::from_examples(&examples);
//! assert_eq!(labels.id("1"), Some(1));
//! let (train, valid) = data::train_valid_split(examples, 1.0 / 3.0, 7);
//! assert_eq!(train.len() + valid.len(), 3);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

pub mod augment;
mod csv;
mod datasets;
mod labels;
mod read;
mod split;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use augment::Augment;
pub use datasets::{ClassificationDataset, Splits};
pub use labels::LabelSet;
pub use read::{ColumnRef, Format, read};
pub use split::{Fold, k_folds, stratified_k_folds, train_valid_split};

/// One labelled text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The text, trimmed of surrounding whitespace; never empty when it comes from a reader.
    pub text: String,
    /// The label as written in the file (or renamed by a [`ClassificationDataset`]).
    pub label: String,
}

impl Example {
    /// An example from anything string-like.
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Self {
        Self { text: text.into(), label: label.into() }
    }
}

/// What a reader does with a row it cannot read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMalformed {
    /// Stop with [`DataError::Malformed`] at the first malformed row (the default).
    #[default]
    Stop,
    /// Leave the row out and record it in [`ReadReport::skipped`].
    Skip,
}

impl std::str::FromStr for OnMalformed {
    type Err = String;

    /// Parses `stop` or `skip`, as a command line would give them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stop" => Ok(Self::Stop),
            "skip" => Ok(Self::Skip),
            _ => Err(format!("unknown malformed-row policy {s:?}; expected stop or skip")),
        }
    }
}

/// A row that could not be read: where it is and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Malformed {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line the row starts on.
    pub line: usize,
    /// What is wrong with it, in words.
    pub reason: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// What a reader did with one file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReport {
    /// The file.
    pub path: PathBuf,
    /// Examples returned.
    pub read: usize,
    /// Lines holding only whitespace, which are not examples.
    pub blank_lines: usize,
    /// Lines that were not valid UTF-8 and were decoded as Windows-1252.
    pub windows_1252_lines: usize,
    /// Malformed rows left out under [`OnMalformed::Skip`] (always empty under `Stop`).
    pub skipped: Vec<Malformed>,
}

impl fmt::Display for ReadReport {
    /// One line: `path: 3 examples, 1 blank line, 0 Windows-1252 lines, 2 malformed rows skipped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} examples, {} blank lines, {} Windows-1252 lines, {} malformed rows skipped",
            self.path.display(),
            self.read,
            self.blank_lines,
            self.windows_1252_lines,
            self.skipped.len()
        )
    }
}

/// Errors from reading data: what went wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A data file that a named dataset needs is not there.
    #[error(
        "missing data file {}: point --data or ENGRAM_DATA at the data folder (the one that \
         holds {folder}/)",
        path.display()
    )]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// The folder under the data folder that holds the dataset: `classification` or `babi`.
        folder: &'static str,
    },
    /// A row could not be read (under [`OnMalformed::Stop`]).
    #[error("{0}")]
    Malformed(Malformed),
    /// A column named by a [`ColumnRef::Name`] is not in the header.
    #[error("{}: no column {column:?} in the header (columns: {})", path.display(), available.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The header's columns.
        available: Vec<String>,
    },
    /// A column was named but the format says the file has no header.
    #[error("column {column:?} is given by name but the format has no header; give its index")]
    NamedColumnWithoutHeader {
        /// The column asked for.
        column: String,
    },
    /// The file holds no examples (after skipping malformed rows).
    #[error("{} holds no examples", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// An example's label is not in the label set (for instance a test label never seen in
    /// training).
    #[error("label {label:?} of example {example} is not among the known labels [{}]", known.join(", "))]
    UnknownLabel {
        /// The label.
        label: String,
        /// The 0-based index of the example in the slice that was checked.
        example: usize,
        /// The labels of the set.
        known: Vec<String>,
    },
    /// A dataset name that [`ClassificationDataset`] does not know.
    #[error("unknown dataset {name:?}; expected one of {}", ClassificationDataset::NAMES.join(", "))]
    UnknownDataset {
        /// The name given.
        name: String,
    },
}
