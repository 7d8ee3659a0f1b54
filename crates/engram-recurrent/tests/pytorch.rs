//! PyTorch state_dicts loaded into engram's stacks give PyTorch's outputs and gradients.
//!
//! The fixtures and the expected values come from `fixtures/make_fixtures.py` (its snippet is at
//! the top of `fixtures/expected.rs`): seeded `nn.LSTM`/`nn.GRU`/`nn.RNN` with input 3, hidden 4,
//! on `x = randn(2, 5, 3)`, loss `0.5·Σy² + Σh_n`.

#[allow(dead_code)]
#[rustfmt::skip]
#[path = "fixtures/expected.rs"]
mod expected;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use engram_recurrent::{Error, RecurrentCell, RecurrentConfig, RecurrentKind, RecurrentOutput};
use engram_tensor::padding_mask;
use engram_tensor::testing::{Tolerance, assert_close, test_device};

const TOL: Tolerance = Tolerance { abs: 2e-5, rel: 1e-4 };

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn input(device: &Device) -> Tensor<3> {
    let x: Vec<f32> = expected::X.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(x, [2, 5, 3]), device)
}

struct Case {
    file: &'static str,
    kind: RecurrentKind,
    n_layers: usize,
    bidirectional: bool,
    y: &'static [f64],
    h_n: &'static [f64],
    c_n: Option<&'static [f64]>,
    grad_x: &'static [f64],
    grad_key: &'static str,
    grad_w: &'static [f64],
    packed_y: &'static [f64],
    packed_h_n: &'static [f64],
}

macro_rules! case {
    ($name:ident, $kind:ident, $layers:expr, $bi:expr, $c_n:expr) => {{
        use expected::$name as e;
        Case {
            file: concat!(stringify!($name), ".safetensors"),
            kind: RecurrentKind::$kind,
            n_layers: $layers,
            bidirectional: $bi,
            y: &e::Y,
            h_n: &e::H_N,
            c_n: $c_n,
            grad_x: &e::GRAD_X,
            grad_key: e::GRAD_KEY,
            grad_w: &e::GRAD_W,
            packed_y: &e::PACKED_Y,
            packed_h_n: &e::PACKED_H_N,
        }
    }};
}

fn cases() -> Vec<Case> {
    vec![
        case!(lstm_bi, Lstm, 2, true, Some(&expected::lstm_bi::C_N)),
        case!(lstm_uni, Lstm, 2, false, Some(&expected::lstm_uni::C_N)),
        case!(gru_bi, Gru, 2, true, None),
        case!(rnn_tanh_bi, RnnTanh, 2, true, None),
        case!(rnn_relu_nobias, RnnRelu, 1, false, None),
    ]
}

/// Loads a case's stack and runs it; `(output, cells)`.
fn run(
    case: &Case,
    fused: bool,
    padding: bool,
    device: &Device,
) -> (RecurrentOutput, Vec<RecurrentCell>, Tensor<3>) {
    let config =
        RecurrentConfig::new(case.kind, 3, 4).with_n_layers(case.n_layers).with_fused(fused);
    let x = input(device).require_grad();
    let mask = padding.then(|| padding_mask(&[5, 3], 5, device));
    let path = fixture(case.file);
    if case.bidirectional {
        let layer = match config.load_pytorch_bidirectional(&path, "", device) {
            Ok(layer) => layer,
            Err(err) => panic!("{}: {err}", case.file),
        };
        (layer.forward(x.clone(), mask, None), layer.cells, x)
    } else {
        let layer = match config.load_pytorch(&path, "", device) {
            Ok(layer) => layer,
            Err(err) => panic!("{}: {err}", case.file),
        };
        (layer.forward(x.clone(), mask, None), layer.cells, x)
    }
}

/// `weight_hh_l1_reverse` → (cell index, is it `weight_hh`).
fn cell_of(key: &str, bidirectional: bool) -> (usize, bool) {
    let reverse = key.ends_with("_reverse");
    let layer: usize = key
        .trim_end_matches("_reverse")
        .rsplit("_l")
        .next()
        .map_or(0, |l| l.parse().unwrap_or_else(|_| panic!("no layer number in {key}")));
    let directions = if bidirectional { 2 } else { 1 };
    (layer * directions + usize::from(reverse), key.starts_with("weight_hh"))
}

fn check_outputs_and_gradients(fused: bool) {
    let device = test_device().autodiff();
    for case in cases() {
        let (out, cells, x) = run(&case, fused, false, &device);
        assert_close(out.output.clone(), case.y, TOL);
        assert_close(out.state.hidden.clone(), case.h_n, TOL);
        match (case.c_n, out.state.cell.clone()) {
            (Some(expected), Some(cell)) => assert_close(cell, expected, TOL),
            (None, None) => {}
            _ => panic!("{}: cell state present on one side only", case.file),
        }
        let loss = out.output.powf_scalar(2.0).sum().mul_scalar(0.5) + out.state.hidden.sum();
        let grads = loss.backward();
        let grad_x = x.grad(&grads).unwrap_or_else(|| panic!("{}: no gradient for x", case.file));
        assert_close(grad_x, case.grad_x, TOL);
        let (i, hh) = cell_of(case.grad_key, case.bidirectional);
        let weight = if hh { cells[i].weight_hh.val() } else { cells[i].weight_ih.val() };
        let grad_w =
            weight.grad(&grads).unwrap_or_else(|| panic!("{}: no weight gradient", case.file));
        assert_close(grad_w, case.grad_w, TOL);
    }
}

#[test]
fn pytorch_outputs_and_gradients_on_the_fused_path() {
    check_outputs_and_gradients(true);
}

#[test]
fn pytorch_outputs_and_gradients_on_the_composed_path() {
    check_outputs_and_gradients(false);
}

#[test]
fn padded_batch_matches_pytorch_packed_sequences() {
    let device = test_device().autodiff();
    for case in cases() {
        let (out, _, _) = run(&case, true, true, &device);
        assert_close(out.output, case.packed_y, TOL);
        assert_close(out.state.hidden, case.packed_h_n, TOL);
    }
}

fn load_error(config: &RecurrentConfig, file: &str, bidirectional: bool) -> String {
    let device = test_device();
    let path = fixture(file);
    let result = if bidirectional {
        config.load_pytorch_bidirectional(&path, "", &device).map(|_| ())
    } else {
        config.load_pytorch(&path, "", &device).map(|_| ())
    };
    match result {
        Ok(()) => panic!("loading {file} with {config:?} should fail"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn loading_names_the_missing_key() {
    let config = RecurrentConfig::new(RecurrentKind::Lstm, 3, 4).with_n_layers(3);
    let message = load_error(&config, "lstm_uni.safetensors", false);
    assert!(message.contains("missing key `weight_ih_l2`"), "{message}");
}

#[test]
fn loading_names_the_key_and_shapes_on_a_mismatch() {
    // A GRU file read as an LSTM: 12 rows where 16 are expected.
    let config = RecurrentConfig::new(RecurrentKind::Lstm, 3, 4).with_n_layers(2);
    let message = load_error(&config, "gru_bi.safetensors", true);
    assert!(message.contains("`weight_ih_l0` has shape [12, 3], expected [16, 3]"), "{message}");
}

#[test]
fn loading_rejects_weights_the_configuration_has_no_place_for() {
    let config = RecurrentConfig::new(RecurrentKind::Lstm, 3, 4).with_n_layers(2);
    let message = load_error(&config, "lstm_bi.safetensors", false);
    // Keys are checked in sorted order, so the first stray one is a bias.
    assert!(message.contains("key `bias_hh_l0_reverse` does not belong"), "{message}");
    let config = RecurrentConfig::new(RecurrentKind::Lstm, 3, 4);
    let message = load_error(&config, "lstm_uni.safetensors", false);
    assert!(message.contains("`bias_hh_l1` does not belong"), "{message}");
}

#[test]
fn loading_reports_unreadable_and_malformed_files() {
    let config = RecurrentConfig::new(RecurrentKind::Gru, 3, 4);
    let message = load_error(&config, "no-such-file.safetensors", false);
    assert!(message.starts_with("cannot read") && message.contains("no-such-file"), "{message}");
    let message = load_error(&config, "make_fixtures.py", false);
    assert!(message.contains("is not a safetensors file"), "{message}");
    let device = test_device();
    let err = config.load_pytorch(fixture("make_fixtures.py"), "", &device).err();
    assert!(matches!(err, Some(Error::Format { .. })), "{err:?}");
}

#[test]
fn loading_with_a_prefix_reads_the_submodule_keys() {
    // The fixtures have no prefix, so any prefix finds no key.
    let config = RecurrentConfig::new(RecurrentKind::RnnRelu, 3, 4);
    let device = test_device();
    let err = config.load_pytorch(fixture("rnn_relu_nobias.safetensors"), "encoder.rnn.", &device);
    match err {
        Err(Error::MissingKey { key, .. }) => assert_eq!(key, "encoder.rnn.weight_ih_l0"),
        other => panic!("expected a missing prefixed key, got {other:?}"),
    }
}
