//! Training and evaluation of a [`Classifier`]: the epoch loop, early stopping, checkpoints
//! that survive an interrupted run, and evaluation.
//!
//! burn-train's `Learner` is not used: it brings burn-dataset, a TUI and system metrics into the
//! build, while this loop is short and lets checkpoints, resumption and progress be exactly what
//! the CLI needs. burn's optimisers, gradients and burnpack records are used as they are.

mod batch;
mod checkpoint;
mod optim;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use engram_tensor::CrossEntropy;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

pub use batch::{Batch, Batcher, Sample};
pub use checkpoint::{CheckpointError, Checkpoints, Resumed, write_atomically};
pub use optim::{AdamW, OptimizerConfig, Schedule, clip_global_norm};

use crate::model::Classifier;

/// How to train: optimiser, schedule, regularisation, stopping and seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set (at most, with early stopping).
    pub epochs: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f64>,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: Option<usize>,
    /// Probability of dropping each training token (augmentation).
    pub token_dropout: f64,
    /// Random swaps of neighbouring tokens per training sample (augmentation).
    pub swaps: usize,
    /// Seed of the initialisation, the shuffling, dropout and augmentation.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            lr: 1e-3,
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::default(),
            clip_norm: Some(1.0),
            label_smoothing: 0.0,
            patience: Some(3),
            token_dropout: 0.0,
            swaps: 0,
            seed: 42,
        }
    }
}

impl TrainConfig {
    /// Checks the values, naming the first field that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err("`epochs` and `batch_size` must be positive".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("`lr` must be positive, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(format!(
                "`label_smoothing` must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        if !(0.0..1.0).contains(&self.token_dropout) {
            return Err(format!("`token_dropout` must be in [0, 1), got {}", self.token_dropout));
        }
        if self.clip_norm.is_some_and(|c| c <= 0.0) {
            return Err("`clip_norm` must be positive".into());
        }
        Ok(())
    }
}

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on the augmented, dropped-out batches).
    pub train_accuracy: f64,
    /// Mean validation loss.
    pub valid_loss: f64,
    /// Validation accuracy.
    pub valid_accuracy: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

/// Progress reports while training.
#[derive(Debug)]
pub enum Event<'a> {
    /// Training continues from a checkpoint after `epoch` epochs.
    Resumed {
        /// Epochs already done.
        epoch: usize,
    },
    /// A training batch is done.
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in this epoch.
        done: usize,
        /// Batches in this epoch.
        total: usize,
        /// This batch's loss.
        loss: f64,
    },
    /// An epoch is done.
    Epoch(&'a EpochLog),
}

/// The result of [`train`].
pub struct Trained {
    /// The model of the best validation epoch, for inference.
    pub model: Classifier,
    /// One entry per epoch, including those of a run this one resumed.
    pub history: Vec<EpochLog>,
    /// The epoch `model` comes from.
    pub best_epoch: usize,
    /// Whether early stopping ended training before `epochs`.
    pub stopped_early: bool,
}

/// Trains `model` (on an autodiff device) on `train`, choosing the epoch by accuracy on `valid`.
///
/// With `checkpoints`, the state after each epoch is written there atomically, and a run that
/// finds a checkpoint continues after its last epoch: because shuffling, dropout and
/// augmentation are seeded per epoch, the result equals that of an uninterrupted run.
pub fn train(
    mut model: Classifier,
    train: &[Sample],
    valid: &[Sample],
    config: &TrainConfig,
    batcher: Batcher,
    checkpoints: Option<&Checkpoints>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Trained, CheckpointError> {
    if let Err(err) = config.validate() {
        panic!("train: invalid configuration: {err}");
    }
    assert!(!train.is_empty() && !valid.is_empty(), "train: empty training or validation set");
    let device = model.output.weight.device();
    assert!(device.is_autodiff(), "train: the model must live on an autodiff device");
    let mut optimizer = config.optimizer.init();
    let mut history = Vec::new();
    let mut best: Option<(usize, f64, Classifier)> = None;
    if let Some(checkpoints) = checkpoints
        && let Some(resumed) = checkpoints.load(model.clone(), optimizer.clone())?
    {
        model = resumed.model;
        optimizer = resumed.optimizer;
        history = resumed.history;
        best = Some((resumed.best_epoch, resumed.best_accuracy, resumed.best_model));
        on_event(Event::Resumed { epoch: history.len() });
    }
    let batches_per_epoch = train.len().div_ceil(config.batch_size);
    let total_steps = batches_per_epoch * config.epochs;
    let loss_fn = CrossEntropy::new().with_label_smoothing(config.label_smoothing);
    let batcher = Batcher { batch_size: config.batch_size, ..batcher };
    let mut stopped_early = false;
    for epoch in history.len() + 1..=config.epochs {
        if let Some(patience) = config.patience
            && let Some((best_epoch, ..)) = &best
            && epoch - 1 - best_epoch >= patience
        {
            stopped_early = true;
            break;
        }
        let start = Instant::now();
        let epoch_seed = config.seed.wrapping_add(epoch as u64);
        device.seed(epoch_seed);
        let mut rng = StdRng::seed_from_u64(epoch_seed);
        let order = batcher.bucketed(train, &mut rng);
        let (mut loss_sum, mut correct, mut lr) = (0.0, 0usize, 0.0);
        for (i, indices) in order.iter().enumerate() {
            let step = (epoch - 1) * batches_per_epoch + i;
            lr = config.schedule.rate(config.lr, step, total_steps);
            let augmented = augment(train, indices, config, &mut rng);
            let batch = batcher.batch(&augmented, &(0..indices.len()).collect::<Vec<_>>(), &device);
            let logits = model.forward(batch.tokens, batch.padding);
            correct += count_correct(&logits, &batch.label_ids);
            let loss = loss_fn.forward(logits, batch.labels);
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            if let Some(max_norm) = config.clip_norm {
                clip_global_norm(&model, &mut grads, max_norm);
            }
            model = optimizer.step(lr, model, grads);
            loss_sum += loss_value * indices.len() as f64;
            on_event(Event::Batch { epoch, done: i + 1, total: order.len(), loss: loss_value });
        }
        let evaluation = evaluate(&model.valid(), valid, batcher);
        let log = EpochLog {
            epoch,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            valid_loss: evaluation.loss,
            valid_accuracy: evaluation.accuracy(valid),
            lr,
            seconds: start.elapsed().as_secs_f64(),
        };
        if best.as_ref().is_none_or(|(_, accuracy, _)| log.valid_accuracy > *accuracy) {
            best = Some((epoch, log.valid_accuracy, model.clone()));
        }
        history.push(log);
        on_event(Event::Epoch(history.last().expect("just pushed")));
        if let (Some(checkpoints), Some((best_epoch, best_accuracy, best_model))) =
            (checkpoints, &best)
        {
            checkpoints.save(
                &model,
                &optimizer,
                &history,
                *best_epoch,
                *best_accuracy,
                best_model,
            )?;
        }
    }
    let (best_epoch, _, best_model) = best.expect("at least one epoch ran or was resumed");
    Ok(Trained { model: best_model.valid(), history, best_epoch, stopped_early })
}

/// The samples of one training batch after augmentation.
fn augment(
    train: &[Sample],
    indices: &[usize],
    config: &TrainConfig,
    rng: &mut StdRng,
) -> Vec<Sample> {
    indices
        .iter()
        .map(|&i| {
            let mut sample = train[i].clone();
            if config.token_dropout > 0.0 {
                sample.ids = crate::data::augment::token_dropout(
                    &sample.ids,
                    config.token_dropout as f32,
                    rng,
                );
            }
            if config.swaps > 0 {
                sample.ids = crate::data::augment::random_swaps(&sample.ids, config.swaps, rng);
            }
            sample
        })
        .collect()
}

fn count_correct(logits: &burn::tensor::Tensor<2>, labels: &[usize]) -> usize {
    let predicted: Vec<i64> = logits
        .clone()
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int data");
    predicted.iter().zip(labels).filter(|(p, l)| **p as usize == **l).count()
}

/// Predictions of a model on a set of samples.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean cross-entropy (without label smoothing).
    pub loss: f64,
    /// Predicted class per sample.
    pub predictions: Vec<usize>,
    /// Class probabilities per sample.
    pub probabilities: Vec<Vec<f32>>,
}

impl Evaluation {
    /// Fraction of `samples` predicted right.
    pub fn accuracy(&self, samples: &[Sample]) -> f64 {
        let correct = self.predictions.iter().zip(samples).filter(|(p, s)| **p == s.label).count();
        correct as f64 / samples.len().max(1) as f64
    }
}

/// Runs `model` (for inference: see [`Module::valid`]) over `samples` in order.
pub fn evaluate(model: &Classifier, samples: &[Sample], batcher: Batcher) -> Evaluation {
    let device: Device = model.output.weight.device();
    let loss_fn = CrossEntropy::new();
    let (mut loss_sum, mut predictions, mut probabilities) = (0.0, Vec::new(), Vec::new());
    for indices in batcher.sequential(samples.len()) {
        let batch = batcher.batch(samples, &indices, &device);
        let logits = model.forward(batch.tokens, batch.padding);
        let [rows, classes] = logits.dims();
        let loss = loss_fn.forward(logits.clone(), batch.labels).into_scalar::<f32>() as f64;
        loss_sum += loss * rows as f64;
        let probs: Vec<f32> =
            engram_tensor::softmax(logits, 1).into_data().try_to_vec::<f32>().expect("f32");
        for row in probs.chunks(classes) {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .expect("at least one class");
            predictions.push(best);
            probabilities.push(row.to_vec());
        }
    }
    Evaluation { loss: loss_sum / samples.len().max(1) as f64, predictions, probabilities }
}

/// Whether `dir` holds a checkpoint that [`train`] would resume from.
pub fn has_checkpoint(dir: &Path) -> bool {
    Checkpoints::new(dir).state_path().exists()
}
