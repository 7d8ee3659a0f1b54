//! Training bAbI models: MemN2N's recipe (SGD, rate halved every 25 epochs, global-norm clipping
//! at 40, linear start, random empty memories) or Adam for the readers, per task or jointly, with
//! the MemN2N reporting protocol: several seeded runs, keep the one with the lowest training error.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use engram_tensor::{CrossEntropy, seed_everything};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::encode::{HostBatch, Vocab};
use super::model::{BabiModel, ModelKind, ModelSpec, predictions};
use super::read::QaExample;
use crate::train::{OptimizerConfig, clip_global_norm};

/// How to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BabiTrainConfig {
    /// The model.
    pub model: ModelSpec,
    /// Epochs. Default: 100 (MemN2N), 60 (readers).
    pub epochs: usize,
    /// Questions per batch. Default: 32.
    pub batch_size: usize,
    /// Learning rate. Default: 0.01 (MemN2N, SGD), 1e-3 (readers, AdamW).
    pub lr: f64,
    /// Halve the rate every this many epochs (0: never). Default: 25 (MemN2N), 0 (readers).
    pub halve_every: usize,
    /// The optimiser. Default: plain SGD (MemN2N), AdamW (readers).
    pub optimizer: OptimizerConfig,
    /// Sum the loss over the batch (MemN2N's code) instead of averaging it. Default: true for
    /// MemN2N.
    pub sum_loss: bool,
    /// Global gradient-norm limit. Default: 40.
    pub max_grad_norm: f64,
    /// MemN2N linear start: `linear_start_epochs` epochs without the memory softmax, at
    /// `linear_start_lr`, before the `epochs` epochs with it. Default: true (MemN2N).
    pub linear_start: bool,
    /// Epochs of linear start. Default: 20, as in the authors' code (the paper says "until the
    /// validation loss stops falling"; stopping at its first rise left several tasks stuck).
    #[serde(default = "default_linear_start_epochs")]
    pub linear_start_epochs: usize,
    /// Learning rate during linear start. Default: 0.005.
    pub linear_start_lr: f64,
    /// Fraction of empty memories added to each training story. Default: 0.1 (MemN2N), 0.
    pub noise: f64,
    /// Independent runs; the one with the lowest training error is kept. Default: 1.
    pub runs: usize,
    /// Seed of the first run (run `r` uses `seed + r`).
    pub seed: u64,
}

fn default_linear_start_epochs() -> usize {
    20
}

impl BabiTrainConfig {
    /// The defaults for `kind` (the paper's for MemN2N).
    pub fn new(kind: ModelKind) -> Self {
        let memn2n = kind == ModelKind::Memn2n;
        Self {
            model: ModelSpec::new(kind),
            epochs: if memn2n { 100 } else { 60 },
            batch_size: 32,
            lr: if memn2n { 0.01 } else { 1e-3 },
            halve_every: if memn2n { 25 } else { 0 },
            optimizer: if memn2n {
                OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 }
            } else {
                OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.98, weight_decay: 0.01 }
            },
            sum_loss: memn2n,
            max_grad_norm: 40.0,
            linear_start: memn2n,
            linear_start_epochs: default_linear_start_epochs(),
            linear_start_lr: 0.005,
            noise: if memn2n { 0.1 } else { 0.0 },
            runs: 1,
            seed: 1,
        }
    }

    /// Epochs of linear start for this model (none unless MemN2N with `linear_start`).
    pub fn linear_epochs(&self) -> usize {
        if self.linear_start && self.model.kind == ModelKind::Memn2n {
            self.linear_start_epochs
        } else {
            0
        }
    }

    /// The rate at `epoch` (0-based, counted after linear start).
    pub fn rate(&self, epoch: usize) -> f64 {
        match self.halve_every {
            0 => self.lr,
            n => self.lr * 0.5f64.powi((epoch / n) as i32),
        }
    }

    /// Checks the values, naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 || self.batch_size == 0 || self.runs == 0 {
            return Err(format!(
                "epochs ({}), batch_size ({}) and runs ({}) must be positive",
                self.epochs, self.batch_size, self.runs
            ));
        }
        if !(self.lr > 0.0 && self.max_grad_norm > 0.0) {
            return Err(format!("lr ({}) and max_grad_norm must be positive", self.lr));
        }
        if !(0.0..1.0).contains(&self.noise) {
            return Err(format!("noise must be in [0, 1), got {}", self.noise));
        }
        let m = &self.model;
        if m.d_model == 0 || m.n_layers == 0 || m.memory_size == 0 || m.n_hops == 0 {
            return Err("model d_model, n_layers, memory_size and n_hops must be positive".into());
        }
        Ok(())
    }
}

/// One epoch of training, as reported to the caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BabiEpoch {
    /// Run (0-based).
    pub run: usize,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss per question.
    pub train_loss: f64,
    /// Validation loss per question.
    pub valid_loss: f64,
    /// Validation accuracy.
    pub valid_accuracy: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Whether the memory softmax was left out (linear start).
    pub linear: bool,
    /// Seconds since the run started.
    pub seconds: f64,
}

/// A trained model and how it got there.
#[derive(Debug)]
pub struct TrainedRun {
    /// The model (the epoch with the best validation accuracy), on the inference device.
    pub model: BabiModel,
    /// Run index.
    pub run: usize,
    /// Error on the training set (without noise) of the kept model.
    pub train_error: f64,
    /// Validation error of the kept model.
    pub valid_error: f64,
    /// Per-epoch log.
    pub history: Vec<BabiEpoch>,
}

/// Error (1 − accuracy) and mean loss of `model` on `examples`.
pub fn evaluate(
    model: &BabiModel,
    examples: &[QaExample],
    vocab: &Vocab,
    memory_size: usize,
    linear: bool,
    device: &Device,
) -> (f64, f64) {
    let (mut wrong, mut loss) = (0usize, 0.0f64);
    let mut rng = seed_everything(device, 0);
    for chunk in examples.chunks(256) {
        let refs: Vec<&QaExample> = chunk.iter().collect();
        let host = HostBatch::new(&refs, vocab, 0.0, memory_size, &mut rng);
        let out = model.answer(&host, linear, device);
        let targets = host.answers(device);
        let batch_loss = CrossEntropy::new().per_row(out.logits.clone(), targets).sum();
        loss += f64::from(batch_loss.into_scalar::<f32>());
        for (p, a) in predictions(out.logits).into_iter().zip(&host.answer) {
            wrong += usize::from(p as i64 != *a);
        }
    }
    let n = examples.len().max(1) as f64;
    (wrong as f64 / n, loss / n)
}

/// Trains `config.runs` models on `train` (validating on `valid`) and returns the one with the
/// lowest training error. `on_epoch` sees every epoch of every run.
///
/// # Panics
/// If `train` is empty or the configuration is invalid (check it with
/// [`BabiTrainConfig::validate`] first).
pub fn train_babi(
    train: &[QaExample],
    valid: &[QaExample],
    vocab: &Vocab,
    config: &BabiTrainConfig,
    device: &Device,
    on_epoch: &mut dyn FnMut(&BabiEpoch),
) -> TrainedRun {
    assert!(!train.is_empty(), "train_babi: no training questions");
    if let Err(message) = config.validate() {
        panic!("train_babi: invalid configuration: {message}");
    }
    let mut best: Option<TrainedRun> = None;
    for run in 0..config.runs {
        let trained = train_one(train, valid, vocab, config, run, device, on_epoch);
        if best.as_ref().is_none_or(|b| trained.train_error < b.train_error) {
            best = Some(trained);
        }
    }
    best.expect("at least one run")
}

fn train_one(
    train: &[QaExample],
    valid: &[QaExample],
    vocab: &Vocab,
    config: &BabiTrainConfig,
    run: usize,
    device: &Device,
    on_epoch: &mut dyn FnMut(&BabiEpoch),
) -> TrainedRun {
    let start = Instant::now();
    let ad = device.clone().autodiff();
    let mut rng: StdRng = seed_everything(&ad, config.seed.wrapping_add(run as u64));
    let mut model = config.model.init(vocab.len(), &ad);
    let mut optimizer = config.optimizer.init();
    let memory = config.model.memory_size;
    let linear_epochs = config.linear_epochs();
    let mut kept: Option<(f64, BabiModel)> = None;
    let mut history = Vec::with_capacity(linear_epochs + config.epochs);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let loss_fn = CrossEntropy::new();
    for epoch in 0..linear_epochs + config.epochs {
        let linear = epoch < linear_epochs;
        let lr = if linear { config.linear_start_lr } else { config.rate(epoch - linear_epochs) };
        order.shuffle(&mut rng);
        let mut total = 0.0f64;
        for chunk in order.chunks(config.batch_size) {
            let refs: Vec<&QaExample> = chunk.iter().map(|&i| &train[i]).collect();
            let host = HostBatch::new(&refs, vocab, config.noise, memory, &mut rng);
            let out = model.answer(&host, linear, &ad);
            let loss = loss_fn.forward(out.logits, host.answers(&ad));
            let loss = if config.sum_loss { loss.mul_scalar(refs.len() as f64) } else { loss };
            let value = f64::from(loss.clone().into_scalar::<f32>());
            total += if config.sum_loss { value } else { value * refs.len() as f64 };
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            clip_global_norm(&model, &mut grads, config.max_grad_norm);
            model = optimizer.step(lr, model, grads);
        }
        let inference = model.valid();
        let eval_set = if valid.is_empty() { train } else { valid };
        let (valid_error, valid_loss) =
            evaluate(&inference, eval_set, vocab, memory, linear, device);
        let log = BabiEpoch {
            run,
            epoch: epoch + 1,
            train_loss: total / train.len() as f64,
            valid_loss,
            valid_accuracy: 1.0 - valid_error,
            lr,
            linear,
            seconds: start.elapsed().as_secs_f64(),
        };
        on_epoch(&log);
        history.push(log);
        if !linear && kept.as_ref().is_none_or(|(e, _)| valid_error <= *e) {
            kept = Some((valid_error, inference));
        }
    }
    let (valid_error, model) = kept.unwrap_or_else(|| {
        let inference = model.valid();
        let (e, _) = evaluate(&inference, valid, vocab, memory, false, device);
        (e, inference)
    });
    let (train_error, _) = evaluate(&model, train, vocab, memory, false, device);
    TrainedRun { model, run, train_error, valid_error, history }
}
