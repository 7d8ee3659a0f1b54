//! `engram train classify`, `engram eval` and `engram predict`: text classification.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use engram_tasks::classify::{ClassifyConfig, ClassifyData, TrainedClassifier, train_classifier};
use engram_tasks::data::{ClassificationDataset, Format, OnMalformed, read, stratified_k_folds};
use engram_tasks::model::{MemoryKind, Pooling};
use engram_tasks::tokenizer::TokenizerKind;
use engram_tasks::train::{Event, OptimizerConfig};
use serde_json::json;

use crate::Failure;

/// Where the data comes from: a named dataset under the data folder, the built-in demo corpus,
/// or your own files.
#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    /// Data folder (the one holding classification/); default $ENGRAM_DATA, then ../shared/data.
    #[arg(long, value_name = "DIR", env = "ENGRAM_DATA", default_value = "../shared/data")]
    data: PathBuf,
    /// A dataset under the data folder: trec, sst2, sst5, sst2-glue, sst2-phrases, mr.
    #[arg(long, conflicts_with_all = ["train", "demo"])]
    dataset: Option<String>,
    /// The built-in demo corpus (needs no data folder).
    #[arg(long, conflicts_with_all = ["train", "dataset"])]
    demo: bool,
    /// Your own training file (see --format).
    #[arg(long, value_name = "FILE", requires = "format")]
    train: Option<PathBuf>,
    /// Your own validation file (default: 10% of the training file, seeded).
    #[arg(long, value_name = "FILE", requires = "train")]
    valid: Option<PathBuf>,
    /// Your own test file, evaluated once after training.
    #[arg(long, value_name = "FILE", requires = "train")]
    test: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
    /// What to do with a malformed row: stop at the first, or skip and count them.
    #[arg(long, value_name = "POLICY", default_value = "stop")]
    on_malformed: OnMalformed,
    /// Cross-validation: split the training data into N stratified folds (seeded, the same for
    /// every model) and hold out fold --fold as the test set.
    #[arg(long, value_name = "N", requires = "fold", value_parser = clap::value_parser!(u16).range(2..))]
    folds: Option<u16>,
    /// Which fold to hold out, 1..=N.
    #[arg(long, value_name = "K", requires = "folds")]
    fold: Option<u16>,
}

/// Seed of the cross-validation folds: fixed, so that every model sees the same folds.
const FOLD_SEED: u64 = 2015;

/// The layout of your own files.
#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// File format: label-text (`label text` per line), glue-tsv, csv, tsv, jsonl.
    #[arg(long, value_enum)]
    format: Option<FileFormat>,
    /// Column (index or header name) or JSON field with the text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Column (index or header name) or JSON field with the label.
    #[arg(long, default_value = "label")]
    label_column: String,
    /// The CSV/TSV file has no header row (columns are then indices).
    #[arg(long)]
    no_header: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FileFormat {
    LabelText,
    GlueTsv,
    Csv,
    Tsv,
    Jsonl,
}

impl FormatArgs {
    fn format(&self) -> Option<Format> {
        let (text, label) = (self.text_column.parse().ok()?, self.label_column.parse().ok()?);
        let delimited = |delimiter| Format::Delimited {
            delimiter,
            quote: Some(b'"'),
            header: !self.no_header,
            text_column: text,
            label_column: label,
        };
        Some(match self.format? {
            FileFormat::LabelText => Format::LabelText,
            FileFormat::GlueTsv => Format::GlueTsv,
            FileFormat::Csv => delimited(b','),
            FileFormat::Tsv => delimited(b'\t'),
            FileFormat::Jsonl => Format::Jsonl {
                text_field: self.text_column.clone(),
                label_field: self.label_column.clone(),
            },
        })
    }
}

/// `engram train classify`.
#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// JSON configuration (model, train, tokenizer, valid_fraction); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Model directory to write (and to resume from, if it holds a checkpoint).
    #[arg(long, value_name = "DIR", default_value = "runs/classify")]
    out: PathBuf,
    /// The memory: transformer, lstm, gru, rnn.
    #[arg(long)]
    memory: Option<MemoryKind>,
    /// Bidirectional recurrence (lstm, gru, rnn).
    #[arg(long)]
    bidirectional: bool,
    /// Pooling: first, mean, max, attention.
    #[arg(long, value_parser = parse_pooling)]
    pooling: Option<Pooling>,
    /// Embedding and transformer width.
    #[arg(long)]
    d_model: Option<usize>,
    /// Stacked layers.
    #[arg(long)]
    n_layers: Option<usize>,
    /// Longest input in tokens.
    #[arg(long)]
    max_len: Option<usize>,
    /// Dropout.
    #[arg(long)]
    dropout: Option<f64>,
    /// Epochs (at most, with early stopping).
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Optimiser: adamw or sgd (momentum 0.9).
    #[arg(long, value_parser = ["adamw", "sgd"])]
    optimizer: Option<String>,
    /// Seed of everything random.
    #[arg(long)]
    seed: Option<u64>,
    /// Tokeniser: word-level or bpe.
    #[arg(long)]
    tokenizer: Option<TokenizerKind>,
    /// Tokeniser vocabulary size.
    #[arg(long)]
    vocab_size: Option<usize>,
}

fn parse_pooling(s: &str) -> Result<Pooling, String> {
    serde_json::from_value(json!(s))
        .map_err(|_| format!("unknown pooling `{s}`; expected one of first, mean, max, attention"))
}

impl TrainArgs {
    fn config(&self) -> anyhow::Result<ClassifyConfig> {
        let mut config = match (&self.config, self.data.demo) {
            (Some(path), _) => ClassifyConfig::load(path)?,
            (None, true) => engram_tasks::demo::config(),
            (None, false) => ClassifyConfig::default(),
        };
        let model = &mut config.model;
        if let Some(memory) = self.memory {
            model.memory = memory;
            if memory != MemoryKind::Transformer {
                model.positions = engram_tasks::model::Positions::None;
            }
        }
        model.bidirectional |= self.bidirectional;
        set(&mut model.pooling, self.pooling);
        set(&mut model.d_model, self.d_model);
        set(&mut model.n_layers, self.n_layers);
        set(&mut model.max_len, self.max_len);
        set(&mut model.dropout, self.dropout);
        let train = &mut config.train;
        set(&mut train.epochs, self.epochs);
        set(&mut train.batch_size, self.batch_size);
        set(&mut train.lr, self.lr);
        set(&mut train.seed, self.seed);
        if let Some(name) = &self.optimizer {
            train.optimizer = match name.as_str() {
                "sgd" => OptimizerConfig::Sgd { momentum: 0.9, nesterov: false, weight_decay: 0.0 },
                _ => OptimizerConfig::default(),
            };
        }
        set(&mut config.tokenizer.kind, self.tokenizer);
        set(&mut config.tokenizer.vocab_size, self.vocab_size);
        config.validate("the configuration")?;
        Ok(config)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn load_data(args: &DataArgs) -> Result<ClassifyData, Failure> {
    let data = load_splits(args)?;
    let (Some(n), Some(k)) = (args.folds, args.fold) else {
        return Ok(data);
    };
    let (n, k) = (usize::from(n), usize::from(k));
    if !(1..=n).contains(&k) {
        return Err(usage(anyhow!("--fold must be in 1..={n}, got {k}")));
    }
    if data.test.is_some() {
        return Err(usage(anyhow!("--folds is for data without a test split (such as mr)")));
    }
    if data.train.len() < n {
        return Err(usage(anyhow!("{} examples cannot make {n} folds", data.train.len())));
    }
    let fold = &stratified_k_folds(&data.train, n, FOLD_SEED)[k - 1];
    let pick = |indices: &[usize]| indices.iter().map(|&i| data.train[i].clone()).collect();
    Ok(ClassifyData {
        train: pick(&fold.train),
        test: Some(pick(&fold.test)),
        valid: data.valid.clone(),
        labels: data.labels.clone(),
    })
}

fn load_splits(args: &DataArgs) -> Result<ClassifyData, Failure> {
    if args.demo {
        return Ok(engram_tasks::demo::corpus());
    }
    if let Some(name) = &args.dataset {
        let dataset: ClassificationDataset = name.parse().map_err(usage)?;
        let splits = dataset.load(&args.data, args.on_malformed).map_err(runtime)?;
        report_skipped(&splits.reports);
        return Ok(ClassifyData {
            train: splits.train,
            valid: splits.valid,
            test: splits.test,
            labels: Some(splits.labels),
        });
    }
    let Some(train) = &args.train else {
        return Err(usage(anyhow!("give --dataset NAME, --demo, or --train FILE --format F")));
    };
    let format = args.format.format().ok_or_else(|| usage(anyhow!("--train needs --format")))?;
    let read_file = |path: &PathBuf| -> Result<_, Failure> {
        let (examples, report) = read(path, &format, args.on_malformed).map_err(runtime)?;
        report_skipped(std::slice::from_ref(&report));
        Ok(examples)
    };
    Ok(ClassifyData {
        train: read_file(train)?,
        valid: args.valid.as_ref().map(read_file).transpose()?,
        test: args.test.as_ref().map(read_file).transpose()?,
        labels: None,
    })
}

fn report_skipped(reports: &[engram_tasks::data::ReadReport]) {
    for report in reports.iter().filter(|r| !r.skipped.is_empty()) {
        eprintln!("warning: {report}");
        for malformed in report.skipped.iter().take(5) {
            eprintln!("  {malformed}");
        }
    }
}

fn usage(err: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(err.into())
}

fn runtime(err: impl Into<anyhow::Error>) -> Failure {
    Failure::Runtime(err.into())
}

fn device(backend: Option<&str>) -> Result<burn::tensor::Device, Failure> {
    engram_tensor::device(backend).map_err(usage)
}

/// Progress on stderr: a line per epoch, and a live batch counter on a terminal.
fn progress(json: bool) -> impl FnMut(Event<'_>) {
    let live = std::io::stderr().is_terminal() && !json;
    move |event| match event {
        Event::Resumed { epoch } => eprintln!("resuming after epoch {epoch}"),
        Event::Batch { epoch, done, total, loss } if live => {
            eprint!("\repoch {epoch}: batch {done}/{total}, loss {loss:.4}   ");
            let _ = std::io::stderr().flush();
        }
        Event::Batch { .. } => {}
        Event::Epoch(log) => {
            if live {
                eprint!("\r");
            }
            eprintln!(
                "epoch {:>3}  train loss {:.4} acc {:.4}  valid loss {:.4} acc {:.4}  lr {:.2e}  {:.1}s",
                log.epoch,
                log.train_loss,
                log.train_accuracy,
                log.valid_loss,
                log.valid_accuracy,
                log.lr,
                log.seconds
            );
        }
    }
}

pub(crate) fn train(args: TrainArgs, backend: Option<&str>, json: bool) -> Result<(), Failure> {
    let config = args.config().map_err(usage)?;
    let data = load_data(&args.data)?;
    let device = device(backend)?;
    let start = Instant::now();
    let outcome = train_classifier(&config, data, &args.out, &device, &mut progress(json))
        .map_err(runtime)?;
    let seconds = start.elapsed().as_secs_f64();
    let labels = outcome.classifier.labels.names();
    let best = &outcome.history[outcome.best_epoch - 1];
    if json {
        let summary = json!({
            "out": args.out,
            "best_epoch": outcome.best_epoch,
            "valid_accuracy": best.valid_accuracy,
            "test": outcome.test.as_ref().map(|m| m.report(labels)),
            "seconds": seconds,
        });
        println!("{summary:#}");
    } else {
        println!(
            "model written to {} (epoch {}, valid accuracy {:.4}, {seconds:.1}s)",
            args.out.display(),
            outcome.best_epoch,
            best.valid_accuracy
        );
        if let Some(matrix) = &outcome.test {
            println!("test set:\n{}", matrix.to_text(labels));
        }
    }
    Ok(())
}

/// `engram eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Model directory written by `engram train classify`.
    // An `Option` that clap requires: `engram eval babi` lifts the requirement, and the derive
    // then needs a value to build these arguments without it.
    #[arg(long, value_name = "DIR", required = true)]
    model: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Which split of a dataset (or of --demo) to evaluate: test or valid.
    #[arg(long, default_value = "test", value_parser = ["test", "valid"])]
    split: String,
}

pub(crate) fn eval(args: EvalArgs, backend: Option<&str>, json: bool) -> Result<(), Failure> {
    let model = args.model.as_deref().expect("clap requires --model without a subcommand");
    let classifier = load_model(model, backend)?;
    let data = load_data(&args.data)?;
    let (examples, what) = if args.data.train.is_some() {
        let file = args.data.test.as_ref().or(args.data.train.as_ref());
        (data.test.or(Some(data.train)), file.map(|f| f.display().to_string()))
    } else if args.split == "valid" {
        (data.valid, Some("the validation split".into()))
    } else {
        (data.test, Some("the test split".into()))
    };
    let examples = examples
        .ok_or_else(|| usage(anyhow!("the data has no {} split to evaluate", args.split)))?;
    let matrix = classifier.evaluate(&examples).map_err(runtime)?;
    let labels = classifier.labels.names();
    if json {
        println!("{:#}", json!(matrix.report(labels)));
    } else {
        println!("{} examples from {}", examples.len(), what.unwrap_or_default());
        println!("{}", matrix.to_text(labels));
    }
    Ok(())
}

fn load_model(dir: &Path, backend: Option<&str>) -> Result<TrainedClassifier, Failure> {
    let device = device(backend)?;
    TrainedClassifier::load(dir, &device)
        .with_context(|| format!("cannot load the model in {}", dir.display()))
        .map_err(runtime)
}

/// `engram predict`.
#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// Model directory written by `engram train classify`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// A file with one text per line; `-` or nothing reads stdin.
    file: Option<PathBuf>,
}

pub(crate) fn predict(args: PredictArgs, backend: Option<&str>, json: bool) -> Result<(), Failure> {
    let classifier = load_model(&args.model, backend)?;
    let mut text = String::new();
    match args.file.as_deref() {
        None => std::io::stdin().read_to_string(&mut text),
        Some(path) if path == Path::new("-") => std::io::stdin().read_to_string(&mut text),
        Some(path) => std::fs::read_to_string(path).map(|read| {
            text = read;
            text.len()
        }),
    }
    .with_context(|| "cannot read the texts to classify")
    .map_err(runtime)?;
    let texts: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    if texts.is_empty() {
        return Err(usage(anyhow!("no text to classify (one text per line on stdin or in FILE)")));
    }
    for (text, prediction) in texts.iter().zip(classifier.predict(&texts)) {
        if json {
            let probabilities: serde_json::Map<String, serde_json::Value> =
                prediction.probabilities.iter().map(|(l, p)| (l.clone(), json!(p))).collect();
            println!(
                "{}",
                json!({"text": text, "label": prediction.label, "probabilities": probabilities})
            );
        } else {
            let p = prediction.probabilities.iter().find(|(l, _)| *l == prediction.label);
            println!("{}\t{:.3}\t{text}", prediction.label, p.map_or(0.0, |(_, p)| *p));
        }
    }
    Ok(())
}
