//! Text classification end to end: tokeniser, classifier, training with checkpoints, the files
//! of a trained model, evaluation and prediction.
//!
//! A model directory holds everything needed to use the model again:
//! `config.json` ([`ClassifyConfig`]), `tokenizer.json` (standard Hugging Face format),
//! `labels.json`, `model.bpk` (burnpack weights of the best validation epoch), `history.jsonl`
//! (one [`EpochLog`] per line), `curves.svg`, and `checkpoint/` while training.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use crate::data::{DataError, Example, LabelSet, train_valid_split};
use crate::metrics::ConfusionMatrix;
use crate::model::{Classifier, ClassifierConfig};
use crate::plot::curves_svg;
use crate::tokenizer::{Tokenizer, TokenizerConfig, TokenizerError};
use crate::train::{
    Batcher, CheckpointError, Checkpoints, EpochLog, Event, Sample, TrainConfig, evaluate, train,
    write_atomically,
};

/// Everything that defines a classification run; the JSON file `--config` reads and the model
/// directory keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyConfig {
    /// The model.
    pub model: ClassifierConfig,
    /// The training.
    pub train: TrainConfig,
    /// The tokeniser, trained on the training split.
    pub tokenizer: TokenizerConfig,
    /// Fraction of the training set held out for validation when the data has no validation
    /// split (0.1 when unset).
    pub valid_fraction: Option<f64>,
}

/// Something went wrong in a classification task.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Reading data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The tokeniser.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Checkpoints and model files.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A configuration value is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The configuration's source (a file, or "the command line").
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl TaskError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        TaskError::Checkpoint(CheckpointError::Io { path: path.to_path_buf(), source })
    }

    fn invalid(path: &Path, message: impl ToString) -> Self {
        TaskError::Checkpoint(CheckpointError::Invalid {
            path: path.to_path_buf(),
            message: message.to_string(),
        })
    }
}

impl ClassifyConfig {
    /// Reads a JSON configuration file; unknown fields are errors.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let text = fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| TaskError::Config {
            path: format!("{}:{}:{}", path.display(), e.line(), e.column()),
            message: e.to_string(),
        })
    }

    /// Checks every part, naming the first bad field.
    pub fn validate(&self, source: &str) -> Result<(), TaskError> {
        let config = |message: String| TaskError::Config { path: source.into(), message };
        self.train.validate().map_err(|m| config(format!("train: {m}")))?;
        if let Some(fraction) = self.valid_fraction
            && !(fraction > 0.0 && fraction < 1.0)
        {
            return Err(config(format!("`valid_fraction` must be in (0, 1), got {fraction}")));
        }
        let mut model = self.model.clone();
        (model.vocab_size, model.n_classes) = (1, 2);
        model.validate().map_err(|m| config(format!("model: {m}")))
    }
}

/// The data of a run: the training set and, when the dataset has them, validation and test sets.
#[derive(Clone, Debug, Default)]
pub struct ClassifyData {
    /// Training examples.
    pub train: Vec<Example>,
    /// Validation examples (split from `train` when `None`).
    pub valid: Option<Vec<Example>>,
    /// Test examples, evaluated once with the best model.
    pub test: Option<Vec<Example>>,
    /// The classes in a fixed order (from the training labels when `None`).
    pub labels: Option<LabelSet>,
}

/// A trained classifier with its tokeniser and labels.
pub struct TrainedClassifier {
    /// The configuration it was trained with (vocabulary and class count filled in).
    pub config: ClassifyConfig,
    /// The tokeniser.
    pub tokenizer: Tokenizer,
    /// The classes.
    pub labels: LabelSet,
    /// The model, for inference.
    pub model: Classifier,
}

/// What [`train_classifier`] returns.
pub struct ClassifyOutcome {
    /// The trained model.
    pub classifier: TrainedClassifier,
    /// One entry per epoch.
    pub history: Vec<EpochLog>,
    /// The epoch whose model was kept.
    pub best_epoch: usize,
    /// The test set's confusion matrix, when there is a test set.
    pub test: Option<ConfusionMatrix>,
}

/// A predicted label and the probability of every class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The most probable class.
    pub label: String,
    /// Probability of each class, in the order of the label set.
    pub probabilities: Vec<(String, f32)>,
}

/// Trains a classifier on `data`, writing the model directory `out` (see the module docs).
///
/// If `out/checkpoint` holds a checkpoint of an interrupted run, training continues after its
/// last epoch with the tokeniser and labels saved then.
pub fn train_classifier(
    config: &ClassifyConfig,
    data: ClassifyData,
    out: &Path,
    device: &Device,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<ClassifyOutcome, TaskError> {
    config.validate("the configuration")?;
    fs::create_dir_all(out).map_err(|e| TaskError::io(out, e))?;
    let checkpoints = Checkpoints::new(out.join("checkpoint"));
    let resuming = checkpoints.state_path().exists();
    let labels = data.labels.clone().unwrap_or_else(|| LabelSet::from_examples(&data.train));
    // Split before training the tokeniser, so that validation text stays unseen.
    let (train_set, valid_set) = match data.valid {
        Some(valid) => (data.train, valid),
        None => {
            let fraction = config.valid_fraction.unwrap_or(0.1);
            train_valid_split(data.train, fraction, config.train.seed)
        }
    };
    let (tokenizer, labels) = if resuming {
        (Tokenizer::load(&out.join("tokenizer.json"))?, read_labels(out)?)
    } else {
        let texts = train_set.iter().map(|e| e.text.as_str());
        (Tokenizer::train(&config.tokenizer, texts)?, labels)
    };
    let encode = |examples: &[Example]| encode(&tokenizer, &labels, examples);
    let (train_samples, valid_samples) = (encode(&train_set)?, encode(&valid_set)?);
    let test_samples = data.test.as_deref().map(encode).transpose()?;

    let mut config = config.clone();
    config.model.vocab_size = tokenizer.vocab_size();
    config.model.n_classes = labels.len();
    if resuming {
        // Continuing with other settings would mix two runs in one directory.
        let saved_path = out.join("config.json");
        let saved = ClassifyConfig::load(&saved_path)?;
        if saved != config {
            return Err(TaskError::Config {
                path: saved_path.display().to_string(),
                message: format!(
                    "{} holds a checkpoint of a run with another configuration; resume it with \
                     the same settings, or train into another directory",
                    out.display()
                ),
            });
        }
    } else {
        tokenizer.save(&out.join("tokenizer.json"))?;
        write_json(&out.join("labels.json"), &labels)?;
        write_json(&out.join("config.json"), &config)?;
    }
    let batcher = batcher(&config, &tokenizer);
    let training = device.clone().autodiff();
    training.seed(config.train.seed);
    let model = config.model.init(&training);
    let trained = train(
        model,
        &train_samples,
        &valid_samples,
        &config.train,
        batcher,
        Some(&checkpoints),
        on_event,
    )?;
    let bytes = trained.model.clone().into_record().into_bytes();
    let bytes = bytes.map_err(|e| TaskError::invalid(&out.join("model.bpk"), e))?;
    write_atomically(&out.join("model.bpk"), &bytes)?;
    let history: String = trained
        .history
        .iter()
        .map(|log| serde_json::to_string(log).expect("logs serialise") + "\n")
        .collect();
    write_atomically(&out.join("history.jsonl"), history.as_bytes())?;
    let title = format!("{} classifier", config.model.memory.name());
    write_atomically(&out.join("curves.svg"), curves_svg(&title, &trained.history).as_bytes())?;
    let test = test_samples.map(|samples| {
        let evaluation = evaluate(&trained.model, &samples, batcher);
        confusion(labels.len(), &samples, &evaluation.predictions)
    });
    Ok(ClassifyOutcome {
        classifier: TrainedClassifier { config, tokenizer, labels, model: trained.model },
        history: trained.history,
        best_epoch: trained.best_epoch,
        test,
    })
}

impl TrainedClassifier {
    /// Loads a model directory written by [`train_classifier`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TaskError> {
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(TaskError::invalid(dir, "not a model directory (no config.json)"));
        }
        let config = ClassifyConfig::load(&config_path)?;
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?;
        let labels = read_labels(dir)?;
        let path = dir.join("model.bpk");
        let bytes = fs::read(&path).map_err(|e| TaskError::io(&path, e))?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| TaskError::invalid(&path, e))?;
        let model = config
            .model
            .init(device)
            .try_load_record(record)
            .map_err(|e| TaskError::invalid(&path, e))?;
        Ok(TrainedClassifier { config, tokenizer, labels, model })
    }

    fn batcher(&self) -> Batcher {
        batcher(&self.config, &self.tokenizer)
    }

    /// The confusion matrix on labelled examples; a label the model does not know is an error.
    pub fn evaluate(&self, examples: &[Example]) -> Result<ConfusionMatrix, TaskError> {
        let samples = encode(&self.tokenizer, &self.labels, examples)?;
        let evaluation = evaluate(&self.model, &samples, self.batcher());
        Ok(confusion(self.labels.len(), &samples, &evaluation.predictions))
    }

    /// The label and class probabilities of each text.
    pub fn predict<S: AsRef<str>>(&self, texts: &[S]) -> Vec<Prediction> {
        if texts.is_empty() {
            return Vec::new();
        }
        let samples: Vec<Sample> = texts
            .iter()
            .map(|text| Sample { ids: self.tokenizer.encode(text.as_ref()), label: 0 })
            .collect();
        let evaluation = evaluate(&self.model, &samples, self.batcher());
        evaluation
            .predictions
            .iter()
            .zip(evaluation.probabilities)
            .map(|(&best, probabilities)| Prediction {
                label: self.labels.name(best).to_string(),
                probabilities: probabilities
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (self.labels.name(i).to_string(), p))
                    .collect(),
            })
            .collect()
    }
}

fn batcher(config: &ClassifyConfig, tokenizer: &Tokenizer) -> Batcher {
    Batcher {
        batch_size: config.train.batch_size,
        max_len: config.model.max_len,
        cls_id: tokenizer.cls_id(),
        pad_id: tokenizer.pad_id(),
    }
}

fn encode(
    tokenizer: &Tokenizer,
    labels: &LabelSet,
    examples: &[Example],
) -> Result<Vec<Sample>, TaskError> {
    let ids = labels.ids(examples)?;
    Ok(examples
        .iter()
        .zip(ids)
        .map(|(example, label)| Sample { ids: tokenizer.encode(&example.text), label })
        .collect())
}

fn confusion(n_classes: usize, samples: &[Sample], predictions: &[usize]) -> ConfusionMatrix {
    ConfusionMatrix::from_pairs(
        n_classes,
        samples.iter().map(|s| s.label).zip(predictions.iter().copied()),
    )
}

fn read_labels(dir: &Path) -> Result<LabelSet, TaskError> {
    let path = dir.join("labels.json");
    let text = fs::read_to_string(&path).map_err(|e| TaskError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| TaskError::invalid(&path, e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TaskError> {
    let json = serde_json::to_string_pretty(value).expect("serialisable") + "\n";
    Ok(write_atomically(path, json.as_bytes())?)
}

/// The default model directory for a run: `runs/<name>`.
pub fn default_out_dir(name: &str) -> PathBuf {
    PathBuf::from("runs").join(name)
}
