//! Soft-DTW as a training loss, in the spirit of Cuturi & Blondel (2017, §5.3): an MLP sees the
//! first 60 % of a UCR series and predicts the remaining 40 %; it is trained once with the mean
//! squared error and once with soft-DTW (and the soft-DTW divergence), and each model's
//! predictions on the test series are scored by their DTW cost and their MSE.
//!
//! ```sh
//! cargo run --release -p engram-dtw --example forecast -- [--data DIR] [--dataset NAME]...
//!     [--epochs N] [--seed S]
//! ```
//!
//! Data come from `DIR/ucr/<NAME>/<NAME>_{TRAIN,TEST}.tsv` with `DIR` from `--data`, else
//! `ENGRAM_DATA`, else `../shared/data`; the datasets default to ECG200, GunPoint and CBF.
//! Everything is seeded; full-batch Adam, so a run is deterministic on a given machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData, activation};
use engram_dtw::{DtwOptions, dtw_cost, read_series, soft_dtw, soft_dtw_divergence};

/// The share of each series the model sees.
const OBSERVED: f64 = 0.6;
/// Hidden units of the MLP.
const D_HIDDEN: usize = 256;
const LEARNING_RATE: f64 = 1e-3;

/// One hidden layer with ReLU, as the paper's multi-step-ahead forecaster.
#[derive(Module, Debug)]
struct Forecaster {
    hidden: Linear,
    output: Linear,
}

impl Forecaster {
    fn new(d_input: usize, d_output: usize, device: &Device) -> Self {
        Forecaster {
            hidden: LinearConfig::new(d_input, D_HIDDEN).init(device),
            output: LinearConfig::new(D_HIDDEN, d_output).init(device),
        }
    }

    /// `[batch, d_input]` to `[batch, d_output]`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(activation::relu(self.hidden.forward(x)))
    }
}

/// The training losses compared.
#[derive(Debug, Clone, Copy)]
enum Loss {
    Mse,
    SoftDtw(f64),
    Divergence(f64),
}

impl Loss {
    fn name(self) -> String {
        match self {
            Loss::Mse => "MSE".into(),
            Loss::SoftDtw(gamma) => format!("soft-DTW γ={gamma}"),
            Loss::Divergence(gamma) => format!("soft-DTW divergence γ={gamma}"),
        }
    }

    /// Mean loss over the batch.
    fn of(self, prediction: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let [batch, len] = prediction.dims();
        let (p, t) = (prediction.reshape([batch, len, 1]), target.reshape([batch, len, 1]));
        match self {
            Loss::Mse => (p - t).powi_scalar(2).mean(),
            Loss::SoftDtw(gamma) => soft_dtw(p, t, None, None, gamma).mean(),
            Loss::Divergence(gamma) => soft_dtw_divergence(p, t, None, None, gamma).mean(),
        }
    }
}

/// Series split into the observed head and the part to predict, row-major.
struct Split {
    count: usize,
    head: Vec<f32>,
    tail: Vec<f32>,
    d_head: usize,
    d_tail: usize,
}

impl Split {
    fn load(path: &Path) -> Result<Split, String> {
        let set = read_series(path, true).map_err(|err| err.to_string())?;
        let len = set.series.first().map_or(0, Vec::len);
        if len < 4 || set.series.iter().any(|s| s.len() != len) {
            return Err(format!("{}: series must share one length of at least 4", path.display()));
        }
        let d_head = (len as f64 * OBSERVED).round() as usize;
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        for series in &set.series {
            head.extend(series[..d_head].iter().map(|&v| v as f32));
            tail.extend(series[d_head..].iter().map(|&v| v as f32));
        }
        Ok(Split { count: set.len(), head, tail, d_head, d_tail: len - d_head })
    }

    fn tensors(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let head = TensorData::new(self.head.clone(), [self.count, self.d_head]);
        let tail = TensorData::new(self.tail.clone(), [self.count, self.d_tail]);
        (Tensor::from_data(head, device), Tensor::from_data(tail, device))
    }
}

/// Test scores of one trained model: mean DTW cost (squared differences along the best path,
/// as the paper's "DTW loss") and mean squared error per point.
struct Scores {
    dtw: f64,
    mse: f64,
}

fn train_and_score(
    loss: Loss,
    train: &Split,
    test: &Split,
    epochs: usize,
    seed: u64,
    device: &Device,
) -> Result<Scores, String> {
    let _ = engram_tensor::seed_everything(device, seed);
    let mut model = Forecaster::new(train.d_head, train.d_tail, device);
    let mut optimizer = AdamConfig::new().init();
    let (x, y) = train.tensors(device);
    for _ in 0..epochs {
        let value = loss.of(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(value.backward(), &model);
        model = optimizer.step(LEARNING_RATE, model, grads);
    }
    let (x, _) = test.tensors(device);
    let prediction = model.forward(x.detach()).detach();
    let prediction: Vec<f32> =
        prediction.try_into_vec_as().map_err(|err| format!("reading predictions: {err:?}"))?;
    let (mut dtw, mut mse) = (0.0, 0.0);
    for (p, t) in prediction.chunks(test.d_tail).zip(test.tail.chunks(test.d_tail)) {
        let (p, t): (Vec<f64>, Vec<f64>) =
            (p.iter().map(|&v| v.into()).collect(), t.iter().map(|&v| v.into()).collect());
        dtw += dtw_cost(&p[..], &t[..], &DtwOptions::default()).map_err(|err| err.to_string())?;
        mse += p.iter().zip(&t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / p.len() as f64;
    }
    Ok(Scores { dtw: dtw / test.count as f64, mse: mse / test.count as f64 })
}

struct Args {
    data: PathBuf,
    datasets: Vec<String>,
    epochs: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let data = std::env::var_os("ENGRAM_DATA").map_or("../shared/data".into(), PathBuf::from);
    let mut args = Args { data, datasets: Vec::new(), epochs: 500, seed: 7 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => args.data = value()?.into(),
            "--dataset" => args.datasets.push(value()?),
            "--epochs" => args.epochs = value()?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.datasets.is_empty() {
        args.datasets = ["ECG200", "GunPoint", "CBF"].map(String::from).to_vec();
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let device = engram_tensor::device(None).map_err(|err| err.to_string())?.autodiff();
    let losses = [Loss::Mse, Loss::SoftDtw(1.0), Loss::SoftDtw(0.1), Loss::Divergence(1.0)];
    println!("| dataset | training loss | test DTW | test MSE | train time |");
    println!("|---|---|---|---|---|");
    for name in &args.datasets {
        let dir = args.data.join("ucr").join(name);
        let train = Split::load(&dir.join(format!("{name}_TRAIN.tsv")))?;
        let test = Split::load(&dir.join(format!("{name}_TEST.tsv")))?;
        for loss in losses {
            let start = Instant::now();
            let scores = train_and_score(loss, &train, &test, args.epochs, args.seed, &device)?;
            println!(
                "| {name} | {} | {:.3} | {:.4} | {:.1} s |",
                loss.name(),
                scores.dtw,
                scores.mse,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
