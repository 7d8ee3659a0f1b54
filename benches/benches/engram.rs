//! engram's benchmarks, one criterion binary: `cargo xtask bench [--backend B] [filter]`.
//!
//! Groups are named `"<crate>/<op>"` and ids `"<impl>/<backend>"` with parameters such as
//! `b8h8s128`, so that engram's implementation and burn's sit side by side in criterion's report
//! and in the table `cargo xtask bench` prints. The backend comes from engram-tensor (the
//! compiled-in features and `ENGRAM_BACKEND`); this file never names one.

use burn::tensor::activation;
use burn::tensor::{Bool, Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engram_benches::{attention, dtw, recurrent, time_synced};

/// Attention-score shapes `[batch, heads, seq, seq]`: a short context and a long one, where the
/// quadratic cost of the score matrix starts to dominate.
const SHAPES: [[usize; 4]; 2] = [[8, 8, 128, 128], [8, 8, 512, 512]];

/// The device and its backend's name for bench ids, as every engram binary resolves them.
fn setup() -> (Device, &'static str) {
    let backend = match engram_tensor::select_backend(None) {
        Ok(backend) => backend,
        Err(err) => panic!("benches: no usable backend: {err}"),
    };
    match backend.device() {
        Ok(device) => (device, backend.name()),
        Err(err) => panic!("benches: cannot create the {backend} device: {err}"),
    }
}

/// `b8h8s128` for `[8, 8, 128, 128]`.
fn params(shape: [usize; 4]) -> String {
    format!("b{}h{}s{}", shape[0], shape[1], shape[2])
}

fn elements(shape: [usize; 4]) -> Throughput {
    Throughput::Elements(shape.iter().product::<usize>() as u64)
}

/// Scores of the size and spread of attention logits (standard normal).
fn scores(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// A causal mask broadcast over batch and heads, as attention applies it.
fn causal(shape: [usize; 4], device: &Device) -> Tensor<4, Bool> {
    engram_tensor::causal_mask(shape[2], device).unsqueeze::<4>().expand(shape)
}

fn tensor_softmax(c: &mut Criterion) {
    let (device, backend) = setup();
    let mut group = c.benchmark_group("tensor/softmax");
    for shape in SHAPES {
        let x = scores(shape, &device);
        group.throughput(elements(shape));
        let id = BenchmarkId::new(format!("engram/{backend}"), params(shape));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                time_synced(&device, iters, || engram_tensor::softmax(x.clone(), 3))
            })
        });
        // burn's own softmax, for comparison: engram's calls it after checking its arguments,
        // so the two should match; a gap means engram added a slow path.
        let id = BenchmarkId::new(format!("burn/{backend}"), params(shape));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| time_synced(&device, iters, || activation::softmax(x.clone(), 3)))
        });
    }
    group.finish();
}

fn tensor_masked_softmax(c: &mut Criterion) {
    let (device, backend) = setup();
    let mut group = c.benchmark_group("tensor/masked_softmax");
    for shape in SHAPES {
        let x = scores(shape, &device);
        let mask = causal(shape, &device);
        group.throughput(elements(shape));
        let id = BenchmarkId::new(format!("engram/{backend}"), params(shape));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                time_synced(&device, iters, || {
                    engram_tensor::masked_softmax(x.clone(), mask.clone(), 3)
                })
            })
        });
    }
    group.finish();
}

fn tensor_logsumexp(c: &mut Criterion) {
    let (device, backend) = setup();
    let mut group = c.benchmark_group("tensor/logsumexp");
    for shape in SHAPES {
        let x = scores(shape, &device);
        group.throughput(elements(shape));
        let id = BenchmarkId::new(format!("engram/{backend}"), params(shape));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                time_synced(&device, iters, || engram_tensor::logsumexp(x.clone(), 3))
            })
        });
    }
    group.finish();
}

/// The backend's square f32 matmul: the compute ceiling the other ops are read against, the
/// same case as the PyTorch anchor `matmul/1024`, and the probe for flex's `x86-v4` feature.
/// Throughput counts floating-point operations (2·n³), so "elem/s" reads as FLOP/s.
fn tensor_matmul(c: &mut Criterion) {
    let (device, backend) = setup();
    let mut group = c.benchmark_group("tensor/matmul");
    for n in [256, 1024] {
        let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        let id = BenchmarkId::new(format!("burn/{backend}"), format!("n{n}"));
        group.bench_function(id, |bench| {
            bench.iter_custom(|iters| time_synced(&device, iters, || a.clone().matmul(b.clone())))
        });
    }
    group.finish();
}

criterion_group! {
    name = tensor;
    config = engram_benches::criterion();
    targets = tensor_softmax, tensor_masked_softmax, tensor_logsumexp, tensor_matmul
}
criterion_group! {
    name = dtw_benches;
    config = engram_benches::criterion();
    targets = dtw::dtw_pair, dtw::dtw_matrix, dtw::dtw_softdtw
}
criterion_group! {
    name = recurrent_benches;
    config = engram_benches::criterion();
    targets = recurrent::recurrent_lstm, recurrent::recurrent_gru, recurrent::recurrent_rnn
}
criterion_group! {
    name = attention_benches;
    config = engram_benches::criterion();
    targets = attention::attention_mha_fwd, attention::attention_mha_fwd_bwd,
        attention::attention_decode, attention::attention_long_train
}
criterion_group! {
    name = tasks_benches;
    config = engram_benches::criterion();
    targets = engram_benches::tasks::tasks_classifier_step
}
criterion_main!(tensor, dtw_benches, recurrent_benches, attention_benches, tasks_benches);
