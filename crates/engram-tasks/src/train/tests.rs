//! The training loop on a synthetic task: every memory learns it, and resuming equals an
//! uninterrupted run.

use burn::module::Module;
use burn::tensor::Device;
use engram_tensor::testing::test_device;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::model::{Classifier, ClassifierConfig, MemoryKind, Pooling, Positions};

const CLS: u32 = 2;
const PAD: u32 = 0;

/// Sequences of 2–7 tokens from 5..15; class 1 when token 5 occurs, else 0 (balanced).
fn synthetic(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let len = rng.random_range(2..8);
            let mut ids: Vec<u32> = (0..len).map(|_| rng.random_range(6..15)).collect();
            let label = i % 2;
            if label == 1 {
                let at = rng.random_range(0..len);
                ids[at] = 5;
            }
            Sample { ids, label }
        })
        .collect()
}

fn config(memory: MemoryKind, bidirectional: bool, pooling: Pooling) -> ClassifierConfig {
    ClassifierConfig {
        vocab_size: 16,
        n_classes: 2,
        d_model: 16,
        memory,
        n_layers: 1,
        n_heads: 2,
        d_ff: 32,
        d_hidden: 16,
        bidirectional,
        pooling,
        positions: if memory == MemoryKind::Transformer {
            Positions::Sinusoidal
        } else {
            Positions::None
        },
        max_len: 16,
        dropout: 0.0,
        embedding_dropout: 0.0,
    }
}

fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        lr: 1e-2,
        schedule: Schedule::Constant,
        patience: None,
        ..TrainConfig::default()
    }
}

fn batcher() -> Batcher {
    Batcher { batch_size: 16, max_len: 16, cls_id: CLS, pad_id: PAD }
}

fn fit(model: &ClassifierConfig, epochs: usize, checkpoints: Option<&Checkpoints>) -> Trained {
    let device: Device = test_device().autodiff();
    device.seed(1);
    fit_from(model.init(&device), epochs, checkpoints)
}

/// Trains `classifier` as it is: the device's generator is shared by tests running in parallel,
/// so runs that must match start from one initialised model rather than from the same seed.
fn fit_from(classifier: Classifier, epochs: usize, checkpoints: Option<&Checkpoints>) -> Trained {
    // 256 samples: with 128, the transformer with first-token pooling reached 100 % on the
    // validation set but 60 of 64 unseen samples in about one run of twenty.
    let (train_set, valid_set) = (synthetic(256, 1), synthetic(64, 2));
    super::train(
        classifier,
        &train_set,
        &valid_set,
        &train_config(epochs),
        batcher(),
        checkpoints,
        &mut |_| {},
    )
    .expect("no checkpoint I/O")
}

#[test]
fn every_memory_learns_the_synthetic_task() {
    let cases = [
        (MemoryKind::Transformer, false, Pooling::First),
        (MemoryKind::Transformer, false, Pooling::Attention),
        (MemoryKind::Lstm, false, Pooling::Max),
        (MemoryKind::Lstm, true, Pooling::Mean),
        (MemoryKind::Gru, false, Pooling::Max),
        (MemoryKind::Rnn, false, Pooling::Max),
    ];
    for (memory, bidirectional, pooling) in cases {
        let trained = fit(&config(memory, bidirectional, pooling), 12, None);
        let best = &trained.history[trained.best_epoch - 1];
        assert_eq!(
            best.valid_accuracy, 1.0,
            "{memory:?} bidirectional={bidirectional} {pooling:?}: {:?}",
            trained.history
        );
        let test = synthetic(64, 3);
        let accuracy = evaluate(&trained.model, &test, batcher()).accuracy(&test);
        assert!(accuracy >= 0.95, "{memory:?} {pooling:?}: {accuracy} on unseen samples");
    }
}

#[test]
fn resuming_from_a_checkpoint_equals_an_uninterrupted_run() {
    let dir = std::env::temp_dir().join(format!("engram-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let model = config(MemoryKind::Gru, false, Pooling::Mean);
    let device = test_device().autodiff();
    let weights = model.init(&device).into_record();
    let initial = || model.init(&device).load_record(weights.clone());
    let straight = fit_from(initial(), 4, None);
    // "Interrupted" after two epochs, then started again with the same command.
    let checkpoints = Checkpoints::new(&dir);
    let first = fit_from(initial(), 2, Some(&checkpoints));
    assert_eq!(first.history.len(), 2);
    let resumed = fit_from(initial(), 4, Some(&checkpoints));
    assert_eq!(resumed.history.len(), 4);
    for (a, b) in straight.history.iter().zip(&resumed.history) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-6, "{a:?} vs {b:?}");
        assert_eq!(a.valid_accuracy, b.valid_accuracy);
    }
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.contains(&"model-4.bpk".to_string()) && !files.contains(&"model-2.bpk".into()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("engram-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("state.json"), b"{ not json").unwrap();
    let device = test_device().autodiff();
    let model = config(MemoryKind::Rnn, false, Pooling::Mean).init(&device);
    let err = Checkpoints::new(&dir)
        .load(model, OptimizerConfig::default().init())
        .err()
        .expect("corrupt state is an error");
    assert!(err.to_string().contains("state.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    let mut model = config(MemoryKind::Lstm, false, Pooling::Max);
    model.d_hidden = 8;
    let device: Device = test_device().autodiff();
    let (train_set, valid_set) = (synthetic(64, 4), synthetic(32, 5));
    let config = TrainConfig { patience: Some(1), ..train_config(30) };
    let trained = super::train(
        model.init(&device),
        &train_set,
        &valid_set,
        &config,
        batcher(),
        None,
        &mut |_| {},
    )
    .unwrap();
    let best = trained.history[trained.best_epoch - 1].valid_accuracy;
    assert!(trained.history.iter().all(|log| log.valid_accuracy <= best));
    // The task is learnt to 100% well before 30 epochs, after which nothing improves.
    assert!(trained.stopped_early, "{:?}", trained.history);
    assert_eq!(trained.history.len(), trained.best_epoch + 1);
}
