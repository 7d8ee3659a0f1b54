//! Tests of the recurrent stacks: f64 references, burn-nn, padding, streaming, gradients.

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};
use engram_tensor::testing::{
    Tolerance, assert_close, check_gradient, seeded_values as values, test_device, to_f64,
};
use engram_tensor::{MemoryState, SequenceMemory, check_streaming, padding_mask, seed_everything};

use super::reference::{CellParams, run_stack};
use super::*;

const KINDS: [RecurrentKind; 4] =
    [RecurrentKind::RnnTanh, RecurrentKind::RnnRelu, RecurrentKind::Lstm, RecurrentKind::Gru];
const TOL: Tolerance = Tolerance { abs: 1e-5, rel: 1e-4 };

fn input(seed: u64, shape: [usize; 3]) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values(seed, shape.iter().product()), shape), &test_device())
}

fn config(kind: RecurrentKind, n_layers: usize) -> RecurrentConfig {
    RecurrentConfig::new(kind, 3, 4).with_n_layers(n_layers)
}

/// `cells` with every parameter rebuilt on `device` in `dtype` (for gradient checks in f64).
pub(crate) fn retarget(
    cells: &[RecurrentCell],
    device: &Device,
    dtype: DType,
) -> Vec<RecurrentCell> {
    fn copy<const D: usize>(t: Tensor<D>, device: &Device, dtype: DType) -> Param<Tensor<D>> {
        let shape = t.dims();
        Param::from_tensor(Tensor::from_data(TensorData::new(to_f64(t), shape), (device, dtype)))
    }
    cells
        .iter()
        .map(|c| RecurrentCell {
            weight_ih: copy(c.weight_ih.val(), device, dtype),
            weight_hh: copy(c.weight_hh.val(), device, dtype),
            bias_ih: copy(c.bias_ih.val(), device, dtype),
            bias_hh: copy(c.bias_hh.val(), device, dtype),
            kind: c.kind,
        })
        .collect()
}

/// Checks a padded batch against the f64 reference run on each sequence alone.
fn check_against_reference(
    cells: &[RecurrentCell],
    directions: usize,
    got: RecurrentOutput,
    x: &[f64],
    lengths: &[usize],
    [seq, d_input]: [usize; 2],
) {
    let params: Vec<CellParams> = cells.iter().map(CellParams::of).collect();
    let width = got.output.dims()[2];
    let d_hidden = cells[0].d_hidden();
    let rows = cells.len();
    for (b, &len) in lengths.iter().enumerate() {
        let xs: Vec<Vec<f64>> =
            (0..len).map(|t| x[(b * seq + t) * d_input..][..d_input].to_vec()).collect();
        let reference = run_stack(&params, directions, &xs);
        let mut expected: Vec<f64> = reference.outputs.concat();
        expected.resize(seq * width, 0.0); // zeros at padding
        assert_close(got.output.clone().narrow(0, b, 1), &expected, TOL);
        let hidden = got.state.hidden.clone().narrow(1, b, 1);
        assert_close(hidden, &reference.hidden.concat(), TOL);
        if let Some(cell) = &got.state.cell {
            assert_close(cell.clone().narrow(1, b, 1), &reference.cell.concat(), TOL);
        }
        assert_eq!(got.state.hidden.dims(), [rows, lengths.len(), d_hidden]);
    }
}

#[test]
fn unidirectional_matches_the_f64_reference_on_a_padded_batch() {
    let device = test_device();
    let lengths = [5, 2, 4];
    for kind in KINDS {
        for n_layers in [1, 2] {
            let _ = seed_everything(&device, 11);
            let layer = config(kind, n_layers).init(&device);
            let x = values(1, 3 * 5 * 3);
            let input = Tensor::from_data(TensorData::new(x.clone(), [3, 5, 3]), &device);
            let got = layer.forward(input, Some(padding_mask(&lengths, 5, &device)), None);
            check_against_reference(&layer.cells, 1, got, &x, &lengths, [5, 3]);
        }
    }
}

#[test]
fn bidirectional_reverse_starts_at_each_sequence_end() {
    // The reference runs each sequence alone, so its reverse direction starts at the
    // sequence's own last position; the padded batch must agree.
    let device = test_device();
    let lengths = [5, 1, 3];
    for kind in KINDS {
        for n_layers in [1, 2] {
            let _ = seed_everything(&device, 12);
            let layer = config(kind, n_layers).init_bidirectional(&device);
            let x = values(2, 3 * 5 * 3);
            let input = Tensor::from_data(TensorData::new(x.clone(), [3, 5, 3]), &device);
            let got = layer.forward(input, Some(padding_mask(&lengths, 5, &device)), None);
            assert_eq!(got.output.dims(), [3, 5, 8]);
            check_against_reference(&layer.cells, 2, got, &x, &lengths, [5, 3]);
        }
    }
}

#[test]
fn padded_batch_matches_each_sequence_alone() {
    let device = test_device();
    let _ = seed_everything(&device, 13);
    let layer = config(RecurrentKind::Gru, 2).init_bidirectional(&device);
    let lengths = [4, 2];
    let x = input(3, [2, 4, 3]);
    let batch = layer.encode(x.clone(), Some(padding_mask(&lengths, 4, &device)));
    for (b, &len) in lengths.iter().enumerate() {
        let alone = layer.encode(x.clone().narrow(0, b, 1).narrow(1, 0, len), None);
        let got = batch.output.clone().narrow(0, b, 1).narrow(1, 0, len);
        assert_close(got, &to_f64(alone.output), TOL);
        let hidden = batch.state.hidden.clone().narrow(1, b, 1);
        assert_close(hidden, &to_f64(alone.state.hidden), TOL);
    }
}

#[test]
fn streaming_contract_holds_for_every_kind_and_depth() {
    let device = test_device();
    for kind in KINDS {
        for n_layers in [1, 2] {
            let _ = seed_everything(&device, 14);
            let layer = RecurrentConfig::new(kind, 5, 4).with_n_layers(n_layers).init(&device);
            let report =
                check_streaming(&layer, input(4, [4, 6, 5]), &[6, 1, 4, 3], None, Tolerance::F32);
            assert!(report.is_ok(), "{kind:?}, {n_layers} layers:\n{report}");
        }
    }
}

#[test]
fn streaming_contract_holds_from_a_given_state() {
    let device = test_device();
    let _ = seed_everything(&device, 15);
    let layer = config(RecurrentKind::Lstm, 2).init(&device);
    let initial = layer.encode(input(5, [4, 2, 3]), None).state;
    check_streaming(&layer, input(6, [4, 6, 3]), &[6, 1, 4, 3], Some(initial), Tolerance::F32)
        .assert_ok();
}

#[test]
fn matches_burn_nn_lstm_with_copied_weights() {
    // burn-nn's Lstm keeps one input and one hidden `Linear` per gate (`[in, out]` weights, both
    // with biases) and computes PyTorch's equations, so copying our gate blocks reproduces it.
    let device = test_device();
    let _ = seed_everything(&device, 16);
    let ours = config(RecurrentKind::Lstm, 1).init(&device);
    let cell = &ours.cells[0];
    let mut theirs = burn::nn::LstmConfig::new(3, 4, true).init(&device);
    let gates = [
        &mut theirs.input_gate,
        theirs.forget_gate.as_mut().expect("the forget gate is not coupled"),
        &mut theirs.cell_gate,
        &mut theirs.output_gate,
    ];
    for (g, gate) in gates.into_iter().enumerate() {
        copy_gate(cell, g, gate);
    }
    let x = input(7, [2, 5, 3]);
    let (expected, state) = theirs.forward(x.clone(), None);
    let got = ours.forward(x, None, None);
    assert_close(got.output, &to_f64(expected), TOL);
    let cell_state = got.state.cell.expect("an LSTM state has a cell");
    assert_close(cell_state, &to_f64(state.cell), TOL);
}

#[test]
fn matches_burn_nn_gru_with_copied_weights() {
    // burn-nn's Gru with `reset_after = true` (its default) is PyTorch's GRU, `b_hn` inside
    // `r ⊙ (W_hn h + b_hn)`.
    let device = test_device();
    let _ = seed_everything(&device, 17);
    let ours = config(RecurrentKind::Gru, 1).init(&device);
    let cell = &ours.cells[0];
    let mut theirs = burn::nn::GruConfig::new(3, 4, true).init(&device);
    let gates = [&mut theirs.reset_gate, &mut theirs.update_gate, &mut theirs.new_gate];
    for (g, gate) in gates.into_iter().enumerate() {
        copy_gate(cell, g, gate);
    }
    let x = input(8, [2, 5, 3]);
    let expected = theirs.forward(x.clone(), None);
    assert_close(ours.forward(x, None, None).output, &to_f64(expected), TOL);
}

/// Copies gate block `g` of `cell` into burn-nn's per-gate linear layers.
fn copy_gate(cell: &RecurrentCell, g: usize, gate: &mut burn::nn::GateController) {
    let n = cell.d_hidden();
    let block2 = |w: &Param<Tensor<2>>| Param::from_tensor(w.val().narrow(1, g * n, n));
    let block1 = |b: &Param<Tensor<1>>| Some(Param::from_tensor(b.val().narrow(0, g * n, n)));
    gate.input_transform.weight = block2(&cell.weight_ih);
    gate.input_transform.bias = block1(&cell.bias_ih);
    gate.hidden_transform.weight = block2(&cell.weight_hh);
    gate.hidden_transform.bias = block1(&cell.bias_hh);
}

#[test]
fn gradients_match_finite_differences() {
    let device = test_device();
    for kind in [RecurrentKind::Lstm, RecurrentKind::Gru] {
        let _ = seed_everything(&device, 18);
        let layer = RecurrentConfig::new(kind, 2, 3).init_bidirectional(&device);
        let x = Tensor::<3>::from_data(TensorData::new(values(9, 12), [2, 3, 2]), &device);
        let report = check_gradient(
            |xs| {
                let x = &xs[0];
                let (dev, dtype) = (x.device(), x.dtype());
                let mut model = layer.clone();
                model.cells = retarget(&layer.cells, &dev, dtype);
                let out = model.forward(x.clone(), Some(padding_mask(&[3, 2], 3, &dev)), None);
                let weights = Tensor::<3>::from_data(
                    TensorData::new(values(10, 2 * 3 * 6), [2, 3, 6]),
                    (&dev, dtype),
                );
                (out.output * weights).sum() + out.state.hidden.sum()
            },
            &[x],
        );
        assert!(report.is_ok(), "{kind:?}: {report}");
    }
}

#[test]
fn sequence_first_layout_transposes_input_and_output() {
    let device = test_device();
    let _ = seed_everything(&device, 19);
    let batch_first = config(RecurrentKind::RnnTanh, 2).init(&device);
    let mut seq_first = batch_first.clone();
    seq_first.batch_first = false;
    let x = input(11, [2, 4, 3]);
    let padding = padding_mask(&[4, 3], 4, &device);
    let expected = batch_first.forward(x.clone(), Some(padding.clone()), None);
    let got = seq_first.forward(x.swap_dims(0, 1), Some(padding), None);
    assert_eq!(got.output.dims(), [4, 2, 4]);
    assert_close(got.output.swap_dims(0, 1), &to_f64(expected.output), TOL);
    assert_eq!(seq_first.d_output(), 4);
}

#[test]
fn init_is_pytorch_uniform_with_fused_shapes() {
    let device = test_device();
    let _ = seed_everything(&device, 20);
    let layer = RecurrentConfig::new(RecurrentKind::Lstm, 3, 16)
        .with_n_layers(2)
        .init_bidirectional(&device);
    assert_eq!(layer.cells.len(), 4);
    assert_eq!(layer.cells[0].weight_ih.dims(), [3, 64]);
    assert_eq!(layer.cells[2].weight_ih.dims(), [32, 64]);
    assert_eq!(layer.cells[3].weight_hh.dims(), [16, 64]);
    assert_eq!(layer.cells[1].bias_hh.dims(), [64]);
    let max = layer.cells[3].weight_hh.val().abs().max().into_scalar::<f32>();
    assert!(max <= 0.25 && max > 0.2, "max |w| = {max}");
    assert_eq!(layer.d_output(), 32);
}

#[test]
fn detach_keeps_values() {
    let device = test_device();
    let layer = config(RecurrentKind::Lstm, 1).init(&device);
    let state = layer.encode(input(12, [1, 2, 3]), None).state;
    let detached = state.clone().detach();
    assert_eq!(to_f64(state.hidden), to_f64(detached.hidden));
    assert!(detached.cell.is_some());
}

#[test]
fn detach_cuts_the_graph_for_truncated_backpropagation() {
    let device = test_device().autodiff();
    let _ = seed_everything(&device, 21);
    let layer = config(RecurrentKind::Lstm, 2).init(&device);
    let first = input(13, [2, 3, 3]).autodiff().require_grad();
    let second = input(14, [2, 2, 3]).autodiff();
    let state = layer.encode(first.clone(), None).state;
    let carried = layer.encode_from(second.clone(), None, Some(state.clone()));
    let grads = carried.output.sum().backward();
    assert!(first.grad(&grads).is_some(), "the carried state links the chunks");
    let cut = layer.encode_from(second, None, Some(state.detach()));
    let grads = cut.output.sum().backward();
    assert!(first.grad(&grads).is_none(), "a detached state must cut the graph");
}

#[test]
fn dropout_acts_between_layers_only_when_training() {
    let device = test_device();
    let _ = seed_everything(&device, 22);
    let plain = config(RecurrentKind::Gru, 2).init(&device);
    let mut dropped = plain.clone();
    dropped.dropout = burn::nn::DropoutConfig::new(0.5).init();
    let x = input(15, [2, 4, 3]);
    let padding = padding_mask(&[4, 2], 4, &device);
    // Without autodiff (inference) dropout is the identity.
    let expected = to_f64(plain.forward(x.clone(), Some(padding.clone()), None).output);
    let got = dropped.forward(x.clone(), Some(padding.clone()), None).output;
    assert_close(got, &expected, TOL);
    // With autodiff it drops units of the first layer's output, and padding stays zero.
    let got = dropped.forward(x.autodiff(), Some(padding), None);
    let got = to_f64(got.output);
    assert!(got.iter().zip(&expected).any(|(a, e)| (a - e).abs() > 1e-3), "dropout had no effect");
    assert!(got[6 * 4..].iter().all(|&v| v == 0.0), "padding must stay zero: {got:?}");
}

#[test]
#[should_panic(
    expected = "RecurrentConfig: d_input (3), d_hidden (0) and n_layers (1) must be positive"
)]
fn panics_on_empty_hidden_state() {
    RecurrentConfig::new(RecurrentKind::Gru, 3, 0).init(&test_device());
}

#[test]
#[should_panic(expected = "RecurrentConfig: dropout 1 is outside [0, 1)")]
fn panics_on_dropout_of_one() {
    config(RecurrentKind::Gru, 2).with_dropout(1.0).init_bidirectional(&test_device());
}

#[test]
#[should_panic(expected = "Recurrent: input width 5 is not d_input 3")]
fn panics_on_input_of_wrong_width() {
    config(RecurrentKind::Gru, 1).init(&test_device()).forward(input(1, [1, 2, 5]), None, None);
}

#[test]
#[should_panic(expected = "BiRecurrent: padding shape [2, 3] is not [batch 2, seq 2]")]
fn panics_on_padding_of_wrong_shape() {
    let device = test_device();
    let padding = padding_mask(&[3, 3], 3, &device);
    config(RecurrentKind::Gru, 1).init_bidirectional(&device).forward(
        input(1, [2, 2, 3]),
        Some(padding),
        None,
    );
}

#[test]
#[should_panic(
    expected = "Recurrent: state shape [1, 2, 4] is not [n_layers·directions 2, batch 2, d_hidden 4]"
)]
fn panics_on_state_of_wrong_shape() {
    let device = test_device();
    let state = RecurrentState::zeros(1, 2, 4, false, &device);
    config(RecurrentKind::Gru, 2).init(&device).forward(input(1, [2, 2, 3]), None, Some(state));
}

#[test]
#[should_panic(expected = "Recurrent: an LSTM state needs a cell")]
fn panics_on_lstm_state_without_cell() {
    let device = test_device();
    let state = RecurrentState::zeros(1, 2, 4, false, &device);
    config(RecurrentKind::Lstm, 1).init(&device).forward(input(1, [2, 2, 3]), None, Some(state));
}

#[test]
#[should_panic(expected = "Recurrent: a Gru state has no cell")]
fn panics_on_gru_state_with_cell() {
    let device = test_device();
    let state = RecurrentState::zeros(1, 2, 4, true, &device);
    config(RecurrentKind::Gru, 1).init(&device).forward(input(1, [2, 2, 3]), None, Some(state));
}

#[test]
#[should_panic(
    expected = "Recurrent: cell state shape [1, 1, 4] differs from hidden state shape [1, 2, 4]"
)]
fn panics_on_cell_of_wrong_shape() {
    let device = test_device();
    let mut state = RecurrentState::zeros(1, 2, 4, true, &device);
    state.cell = Some(Tensor::zeros([1, 1, 4], &device));
    config(RecurrentKind::Lstm, 1).init(&device).forward(input(1, [2, 2, 3]), None, Some(state));
}
