//! The named classification datasets in `../shared/data/classification`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::read::{Sink, read_with_lines};
use super::{DataError, Example, Format, LabelSet, OnMalformed, ReadReport};

/// A text-classification dataset with a known layout under the data folder (`--data` or
/// `ENGRAM_DATA`, default `../shared/data`).
///
/// Labels are renamed from the files' indices to readable names, in the index order, so that
/// class ids equal the original indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassificationDataset {
    /// TREC question classification, 6 coarse classes: 5,452 train, 500 test
    /// (`classification/trec/TREC.{train,test}.all`).
    Trec,
    /// SST-2 sentences in Kim's splits: 6,920 train, 872 dev, 1,821 test
    /// (`classification/sst/kim-stsa/stsa.binary.*`).
    Sst2,
    /// SST-1, five classes, in Kim's splits: 8,544 train, 1,101 dev, 2,210 test
    /// (`classification/sst/kim-stsa/stsa.fine.*`).
    Sst5,
    /// SST-2 as GLUE ships it: 67,349 phrases and sentences to train on, the 872-sentence dev
    /// set, no labelled test set (`classification/sst/glue-sst2/{train_full,dev}.tsv`).
    Sst2Glue,
    /// SST-2 as Kim (2014) trained it: every phrase and sentence of the training split (GLUE's
    /// 67,349) to train on, scored on Kim's 872 dev and 1,821 test sentences
    /// (`glue-sst2/train_full.tsv`, `kim-stsa/stsa.binary.{dev,test}`).
    Sst2Phrases,
    /// Movie-review polarity, 5,331 negative then 5,331 positive snippets in Windows-1252, no
    /// split (papers use 10-fold cross-validation; see [`super::stratified_k_folds`])
    /// (`classification/mr/raw/rt-polarity.{neg,pos}`).
    Mr,
}

/// The parts of a dataset, with the class names and what the readers did.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training examples.
    pub train: Vec<Example>,
    /// The dataset's own validation split, if it has one.
    pub valid: Option<Vec<Example>>,
    /// The dataset's own test split, if it has one.
    pub test: Option<Vec<Example>>,
    /// The classes, in the dataset's index order.
    pub labels: LabelSet,
    /// One report per file read.
    pub reports: Vec<ReadReport>,
}

const TREC: [&str; 6] = ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"];
const BINARY: [&str; 2] = ["negative", "positive"];
const FIVE: [&str; 5] = ["very negative", "negative", "neutral", "positive", "very positive"];
const KIM: &str = "classification/sst/kim-stsa";
const GLUE: &str = "classification/sst/glue-sst2";

/// Which split a file belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Train,
    Valid,
    Test,
}

/// One file: its split, path under the data folder and format.
struct File {
    part: Part,
    path: String,
    format: Format,
}

impl ClassificationDataset {
    /// Every dataset, in the order of [`Self::NAMES`].
    pub const ALL: [Self; 6] =
        [Self::Trec, Self::Sst2, Self::Sst5, Self::Sst2Glue, Self::Sst2Phrases, Self::Mr];

    /// The names that [`FromStr`] accepts, for command lines.
    pub const NAMES: [&'static str; 6] =
        ["trec", "sst2", "sst5", "sst2-glue", "sst2-phrases", "mr"];

    /// The dataset's name, as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|&d| d == self).unwrap_or_default()]
    }

    /// The class names, in the files' index order (MR: negative, positive).
    pub fn labels(self) -> LabelSet {
        let names: &[&str] = match self {
            Self::Trec => &TREC,
            Self::Sst2 | Self::Sst2Glue | Self::Sst2Phrases | Self::Mr => &BINARY,
            Self::Sst5 => &FIVE,
        };
        LabelSet::new(names.iter().map(|n| n.to_string()).collect())
    }

    /// The files read, relative to the data folder.
    pub fn files(self) -> Vec<PathBuf> {
        self.layout().into_iter().map(|f| PathBuf::from(f.path)).collect()
    }

    fn layout(self) -> Vec<File> {
        let file = |part, path: String, format| File { part, path, format };
        let kim = |stem: &str| {
            [(Part::Train, "train"), (Part::Valid, "dev"), (Part::Test, "test")]
                .map(|(part, ext)| file(part, format!("{KIM}/{stem}.{ext}"), Format::LabelText))
                .into()
        };
        match self {
            Self::Trec => vec![
                file(Part::Train, "classification/trec/TREC.train.all".into(), Format::LabelText),
                file(Part::Test, "classification/trec/TREC.test.all".into(), Format::LabelText),
            ],
            Self::Sst2 => kim("stsa.binary"),
            Self::Sst5 => kim("stsa.fine"),
            Self::Sst2Glue => vec![
                file(Part::Train, format!("{GLUE}/train_full.tsv"), Format::GlueTsv),
                file(Part::Valid, format!("{GLUE}/dev.tsv"), Format::GlueTsv),
            ],
            Self::Sst2Phrases => vec![
                file(Part::Train, format!("{GLUE}/train_full.tsv"), Format::GlueTsv),
                file(Part::Valid, format!("{KIM}/stsa.binary.dev"), Format::LabelText),
                file(Part::Test, format!("{KIM}/stsa.binary.test"), Format::LabelText),
            ],
            // The label is the file, so it is named directly.
            Self::Mr => ["neg", "pos"]
                .into_iter()
                .zip(BINARY)
                .map(|(ext, label)| {
                    let format = Format::Lines { label: label.into() };
                    file(Part::Train, format!("classification/mr/raw/rt-polarity.{ext}"), format)
                })
                .collect(),
        }
    }

    /// Reads the dataset from `data_dir` (the folder that holds `classification/`).
    ///
    /// Labels written as indices are renamed to [`Self::labels`]; an index outside them is a
    /// malformed row, handled by `on_malformed` like any other.
    ///
    /// # Errors
    ///
    /// [`DataError::MissingFile`] naming the first file that is not there (checked before
    /// anything is read), and any error of [`super::read`].
    pub fn load(self, data_dir: &Path, on_malformed: OnMalformed) -> Result<Splits, DataError> {
        let layout = self.layout();
        for file in &layout {
            let path = data_dir.join(&file.path);
            if !path.is_file() {
                return Err(DataError::MissingFile { path, folder: "classification" });
            }
        }
        let labels = self.labels();
        let mut splits =
            Splits { train: Vec::new(), valid: None, test: None, labels, reports: Vec::new() };
        for file in layout {
            let path = data_dir.join(&file.path);
            let (rows, report) = read_with_lines(&path, &file.format, on_malformed)?;
            let (examples, report) = if matches!(file.format, Format::Lines { .. }) {
                (rows.into_iter().map(|(_, e)| e).collect(), report)
            } else {
                rename_labels(&path, rows, report, &splits.labels, on_malformed)?
            };
            splits.reports.push(report);
            let part = match file.part {
                Part::Train => &mut splits.train,
                Part::Valid => splits.valid.get_or_insert_with(Vec::new),
                Part::Test => splits.test.get_or_insert_with(Vec::new),
            };
            part.extend(examples);
        }
        Ok(splits)
    }
}

/// Replaces index labels (`"0"`, `"1"`, ...) by the names in `labels`.
fn rename_labels(
    path: &Path,
    rows: Vec<(usize, Example)>,
    report: ReadReport,
    labels: &LabelSet,
    on_malformed: OnMalformed,
) -> Result<(Vec<Example>, ReadReport), DataError> {
    let mut sink = Sink::new(path, on_malformed);
    sink.report = report;
    let mut examples = Vec::with_capacity(rows.len());
    for (line, mut example) in rows {
        match example.label.parse::<usize>() {
            Ok(index) if index < labels.len() => {
                example.label = labels.name(index).to_string();
                examples.push(example);
            }
            _ => {
                let reason = format!(
                    "label {:?} is not a class index 0..{}",
                    example.label,
                    labels.len() - 1
                );
                sink.malformed(line, reason)?;
            }
        }
    }
    let mut report = sink.report;
    report.read = examples.len();
    if examples.is_empty() {
        return Err(DataError::Empty { path: path.to_owned() });
    }
    Ok((examples, report))
}

impl FromStr for ClassificationDataset {
    type Err = DataError;

    /// One of [`Self::NAMES`]; anything else is [`DataError::UnknownDataset`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Self::NAMES.iter().position(|&name| name == s) {
            Some(i) => Ok(Self::ALL[i]),
            None => Err(DataError::UnknownDataset { name: s.to_string() }),
        }
    }
}

impl fmt::Display for ClassificationDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for dataset in ClassificationDataset::ALL {
            assert_eq!(dataset.name().parse::<ClassificationDataset>().unwrap(), dataset);
        }
        let error = "imdb".parse::<ClassificationDataset>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown dataset \"imdb\"; expected one of trec, sst2, sst5, sst2-glue, sst2-phrases, mr"
        );
    }

    #[test]
    fn files_are_under_classification() {
        for dataset in ClassificationDataset::ALL {
            assert!(dataset.files().iter().all(|f| f.starts_with("classification")));
        }
        assert_eq!(ClassificationDataset::Sst2.files().len(), 3);
    }
}
