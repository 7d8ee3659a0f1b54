//! Benchmarks of engram-tasks: `tasks/classifier_step`, one AdamW training step of the PyTorch
//! anchors' transformer classifier (`shared/anchors/torch`, case `clf/train_step`): vocabulary
//! 20,000, d_model 256, 4 heads, feed-forward 1024, 2 layers, sequence 128, batch 32, 4 classes,
//! learned positions, mean pooling, dropout 0.1, lr 3e-4, weight decay 0.01. engram's encoder
//! is pre-norm with GELU where the anchor's `nn.TransformerEncoderLayer` is post-norm with ReLU;
//! both cost the same matmuls. Throughput is in samples (32 per step).

use burn::optim::GradientsParams;
use burn::tensor::{Bool, Distribution, Int, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use engram_tasks::model::{ClassifierConfig, MemoryKind, Pooling, Positions};
use engram_tasks::train::OptimizerConfig;
use engram_tensor::CrossEntropy;

use crate::time_synced;

const BATCH: usize = 32;
const SEQ: usize = 128;

/// `tasks/classifier_step`.
pub fn tasks_classifier_step(c: &mut Criterion) {
    let backend = engram_tensor::select_backend(None)
        .unwrap_or_else(|err| panic!("tasks bench: no usable backend: {err}"));
    let device = backend
        .device()
        .unwrap_or_else(|err| panic!("tasks bench: cannot create the {backend} device: {err}"))
        .autodiff();
    let config = ClassifierConfig {
        vocab_size: 20_000,
        n_classes: 4,
        d_model: 256,
        memory: MemoryKind::Transformer,
        n_layers: 2,
        n_heads: 4,
        d_ff: 1024,
        pooling: Pooling::Mean,
        positions: Positions::Learned,
        max_len: SEQ,
        dropout: 0.1,
        embedding_dropout: 0.0,
        ..ClassifierConfig::default()
    };
    let mut model = config.init(&device);
    let mut optimizer =
        OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, weight_decay: 0.01 }.init();
    let tokens: Tensor<2, Int> =
        Tensor::<2>::random([BATCH, SEQ], Distribution::Uniform(0.0, 20_000.0), &device).int();
    // No padding: every sequence is SEQ tokens long, as in the anchor.
    let padding: Tensor<2, Bool> = Tensor::<2>::zeros([BATCH, SEQ], &device).greater_elem(1.0);
    let labels: Tensor<1, Int> =
        Tensor::<1>::random([BATCH], Distribution::Uniform(0.0, 4.0), &device).int();
    let loss_fn = CrossEntropy::new();
    let mut group = c.benchmark_group("tasks/classifier_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    let id = BenchmarkId::new(format!("engram/{}", backend.name()), format!("b{BATCH}s{SEQ}"));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            time_synced(&device, iters, || {
                let logits = model.clone().forward(tokens.clone(), padding.clone());
                let loss = loss_fn.forward(logits, labels.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(3e-4, model.clone(), grads);
                model.output.weight.val()
            })
        })
    });
    group.finish();
}
