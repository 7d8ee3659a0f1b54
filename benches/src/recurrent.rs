//! Benchmarks of engram-recurrent against burn-nn on the PyTorch anchors' case
//! (`shared/anchors/torch`, cases `rnn/*`): batch 32, 128 steps, input 128, hidden 256, 1 and 2
//! layers, one and both directions, forward and forward+backward.
//!
//! Groups are `recurrent/<cell>_<mode>` (`lstm_fwdbwd`, ...), ids `<impl>/<backend>` with
//! parameters `l<layers>_<uni|bi>`, so that `recurrent/lstm_fwdbwd/engram/flex/l1_uni` reads
//! next to the anchor `rnn/lstm/l1/uni/fwdbwd`. Throughput counts `batch · seq` timesteps per
//! call, the anchors' unit. `fwd` runs on the plain device (PyTorch's is `inference_mode`);
//! `fwdbwd` runs on the autodiff device and backpropagates `output.mean()` into every weight,
//! as the anchor's `y.mean().backward()` does. burn-nn has one-layer cells only, so its
//! two-layer rows stack two of them.

use burn::nn::{
    BiGru, BiGruConfig, BiLstm, BiLstmConfig, BiRnn, BiRnnConfig, Gru, GruConfig, Lstm, LstmConfig,
    Rnn, RnnConfig,
};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use engram_recurrent::{RecurrentConfig, RecurrentKind};

use crate::time_synced;

const BATCH: usize = 32;
const SEQ: usize = 128;
const D_INPUT: usize = 128;
const D_HIDDEN: usize = 256;

/// A layer under test, behind one signature: `[batch, seq, d_input]` to the last layer's
/// outputs.
type Layer = Box<dyn Fn(Tensor<3>) -> Tensor<3>>;

/// `recurrent/lstm_{fwd,fwdbwd}`.
pub fn recurrent_lstm(c: &mut Criterion) {
    bench_cell(c, RecurrentKind::Lstm, "lstm");
}

/// `recurrent/gru_{fwd,fwdbwd}`.
pub fn recurrent_gru(c: &mut Criterion) {
    bench_cell(c, RecurrentKind::Gru, "gru");
}

/// `recurrent/rnn_{fwd,fwdbwd}`: the Elman RNN with tanh (the anchors' `rnn_tanh`).
pub fn recurrent_rnn(c: &mut Criterion) {
    bench_cell(c, RecurrentKind::RnnTanh, "rnn");
}

/// The device and its backend's name for bench ids.
fn setup() -> (Device, &'static str) {
    let backend = match engram_tensor::select_backend(None) {
        Ok(backend) => backend,
        Err(err) => panic!("recurrent bench: no usable backend: {err}"),
    };
    match backend.device() {
        Ok(device) => (device, backend.name()),
        Err(err) => panic!("recurrent bench: cannot create the {backend} device: {err}"),
    }
}

fn bench_cell(c: &mut Criterion, kind: RecurrentKind, name: &str) {
    let (plain, backend) = setup();
    for backward in [false, true] {
        let device = if backward { plain.clone().autodiff() } else { plain.clone() };
        let mode = if backward { "fwdbwd" } else { "fwd" };
        let mut group = c.benchmark_group(format!("recurrent/{name}_{mode}"));
        group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
        let x = Tensor::<3>::random([BATCH, SEQ, D_INPUT], Distribution::Normal(0.0, 1.0), &device);
        for n_layers in [1, 2] {
            for bidirectional in [false, true] {
                let params = format!("l{n_layers}_{}", if bidirectional { "bi" } else { "uni" });
                let layers = [
                    ("engram", engram(kind, n_layers, bidirectional, true, &device)),
                    ("engram-composed", engram(kind, n_layers, bidirectional, false, &device)),
                    ("burn-nn", burn_nn(kind, n_layers, bidirectional, &device)),
                ];
                for (implementation, layer) in layers {
                    let id = BenchmarkId::new(format!("{implementation}/{backend}"), &params);
                    group.bench_function(id, |b| {
                        b.iter_custom(|iters| {
                            time_synced(&device, iters, || {
                                let y = layer(x.clone());
                                if backward { Some(y.mean().backward()) } else { None }
                            })
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

/// engram's stack; `fused: false` forces the composed path (autodiff through the time loop),
/// to measure what the fused operation gains.
fn engram(
    kind: RecurrentKind,
    n_layers: usize,
    bidirectional: bool,
    fused: bool,
    device: &Device,
) -> Layer {
    let config =
        RecurrentConfig::new(kind, D_INPUT, D_HIDDEN).with_n_layers(n_layers).with_fused(fused);
    if bidirectional {
        let layer = config.init_bidirectional(device);
        Box::new(move |x| layer.forward(x, None, None).output)
    } else {
        let layer = config.init(device);
        Box::new(move |x| layer.forward(x, None, None).output)
    }
}

/// burn-nn's cell of the same kind, `n_layers` of them one after the other.
fn burn_nn(kind: RecurrentKind, n_layers: usize, bidirectional: bool, device: &Device) -> Layer {
    let layers: Vec<Layer> = (0..n_layers)
        .map(|layer| {
            let directions = if bidirectional { 2 } else { 1 };
            let d_input = if layer == 0 { D_INPUT } else { directions * D_HIDDEN };
            burn_nn_layer(kind, d_input, bidirectional, device)
        })
        .collect();
    Box::new(move |x| layers.iter().fold(x, |x, layer| layer(x)))
}

fn burn_nn_layer(
    kind: RecurrentKind,
    d_input: usize,
    bidirectional: bool,
    device: &Device,
) -> Layer {
    match (kind, bidirectional) {
        (RecurrentKind::Lstm, false) => {
            let l: Lstm = LstmConfig::new(d_input, D_HIDDEN, true).init(device);
            Box::new(move |x| l.forward(x, None).0)
        }
        (RecurrentKind::Lstm, true) => {
            let l: BiLstm = BiLstmConfig::new(d_input, D_HIDDEN, true).init(device);
            Box::new(move |x| l.forward(x, None).0)
        }
        (RecurrentKind::Gru, false) => {
            let l: Gru = GruConfig::new(d_input, D_HIDDEN, true).init(device);
            Box::new(move |x| l.forward(x, None))
        }
        (RecurrentKind::Gru, true) => {
            let l: BiGru = BiGruConfig::new(d_input, D_HIDDEN, true).init(device);
            Box::new(move |x| l.forward(x, None).0)
        }
        (RecurrentKind::RnnTanh | RecurrentKind::RnnRelu, false) => {
            let l: Rnn = RnnConfig::new(d_input, D_HIDDEN, true).init(device);
            Box::new(move |x| l.forward(x, None).0)
        }
        (RecurrentKind::RnnTanh | RecurrentKind::RnnRelu, true) => {
            let l: BiRnn = BiRnnConfig::new(d_input, D_HIDDEN, true).init(device);
            Box::new(move |x| l.forward(x, None).0)
        }
    }
}
