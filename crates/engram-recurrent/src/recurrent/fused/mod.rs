//! The fast path: one layer and direction as a single burn operation with a hand-written
//! backward (backpropagation through time), through burn's backend-extension API.
//!
//! Autodiff sees one node per layer and direction instead of about fifteen per time step. The
//! operation takes the layer's input and all four parameters, so the input projection, the time
//! loop and every gradient run in [`kernel`] on host buffers, with this module's own packed
//! matrix products ([`packed`]) split over a team of threads ([`team`]); it serves the CPU
//! backends (flex, ndarray). Other backends keep the composed path, whose gradients come from
//! autodiff.

mod kernel;
mod packed;
mod real;
mod team;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, ExtensionType, TensorMetadata, backend_extension,
};
use burn::tensor::{DType, Device, Shape, Tensor, TensorData, read_sync};

use std::sync::{Arc, Mutex};

use super::RecurrentKind;
use kernel::{Dims, Weights};
use real::Real;

/// The inputs of one layer and direction.
#[derive(ExtensionType)]
pub struct SequenceInputs<B: Backend> {
    /// `[batch, seq, d_in]` input.
    pub input: FloatTensor<B>,
    /// `[batch, h]` initial hidden state.
    pub h0: FloatTensor<B>,
    /// `[batch, h]` initial cell state (zeros, and unused, unless LSTM).
    pub c0: FloatTensor<B>,
    /// `[d_in, G·h]` input weight.
    pub weight_ih: FloatTensor<B>,
    /// `[G·h]` input bias.
    pub bias_ih: FloatTensor<B>,
    /// `[h, G·h]` recurrent weight.
    pub weight_hh: FloatTensor<B>,
    /// `[G·h]` recurrent bias.
    pub bias_hh: FloatTensor<B>,
}

/// Backends with a fused recurrent layer.
#[backend_extension(Autodiff, Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"))]
pub trait RecurrentBackend: Backend {
    /// Runs the layer; returns the hidden state at every position, `[batch · seq, h]`
    /// batch-major, and the last cell state `[batch, h]` (zeros unless LSTM).
    fn recurrent_sequence(
        #[extension_type] inputs: SequenceInputs<Self>,
        kind: RecurrentKind,
        reverse: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let host = Host::<Self>::read(inputs, kind, reverse);
        let (states, cell) = match host.dtype {
            DType::F64 => host.forward::<f64>(false).0,
            _ => host.forward::<f32>(false).0,
        };
        (states, cell)
    }
}

#[cfg(feature = "flex")]
impl RecurrentBackend for burn::backend::Flex {}
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl RecurrentBackend for burn::backend::NdArray {}

/// Autodiff sees two operations: the layer, whose output is the hidden states, and (LSTM)
/// the last cell state as an operation on those states. A single output holding both would
/// have to be split with `narrow`, whose backward builds a zero tensor of the whole output and
/// assigns a slice into it: several milliseconds per layer and step. The cell state's backward
/// passes its gradient to the layer's backward through a shared slot instead, and gives the
/// states a zero gradient (only when the cell state is used at all).
impl<B: Backend + RecurrentBackend, C: CheckpointStrategy> RecurrentBackend for Autodiff<B, C> {
    fn recurrent_sequence(
        inputs: SequenceInputs<Self>,
        kind: RecurrentKind,
        reverse: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let SequenceInputs { input, h0, c0, weight_ih, bias_ih, weight_hh, bias_hh } = inputs;
        let nodes = [
            input.node(),
            h0.node(),
            c0.node(),
            weight_ih.node(),
            bias_ih.node(),
            weight_hh.node(),
            bias_hh.node(),
        ];
        let inner = SequenceInputs::<B> {
            input: input.into_primitive(),
            h0: h0.into_primitive(),
            c0: c0.into_primitive(),
            weight_ih: weight_ih.into_primitive(),
            bias_ih: bias_ih.into_primitive(),
            weight_hh: weight_hh.into_primitive(),
            bias_hh: bias_hh.into_primitive(),
        };
        let (states, cell, cell_grad) =
            match SequenceBackward.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let host = Host::<B>::read(inner, kind, reverse);
                    let (dims, device) = (host.dims, host.device.clone());
                    let ((states, cell), saved) = match host.dtype {
                        DType::F64 => {
                            let (out, saved) = host.forward::<f64>(true);
                            (out, SavedAny::F64(saved.expect("the forward pass saved its state")))
                        }
                        _ => {
                            let (out, saved) = host.forward::<f32>(true);
                            (out, SavedAny::F32(saved.expect("the forward pass saved its state")))
                        }
                    };
                    let cell_grad = CellGrad::default();
                    let state = State { dims, saved, device, cell_grad: cell_grad.clone() };
                    (prep.finish(state, states), cell, Some(cell_grad))
                }
                OpsKind::UnTracked(prep) => {
                    let (states, cell) = B::recurrent_sequence(inner, kind, reverse);
                    (prep.finish(states), cell, None)
                }
            };
        let cell = match cell_grad {
            Some(slot) if kind == RecurrentKind::Lstm => {
                match CellBackward.prepare::<C>([states.node()]).compute_bound().stateful() {
                    OpsKind::Tracked(prep) => {
                        let shape = states.shape();
                        let device = states.device();
                        let dtype = states.dtype();
                        prep.finish(CellState { slot, shape, device, dtype }, cell)
                    }
                    OpsKind::UnTracked(prep) => prep.finish(cell),
                }
            }
            _ => <Self as AutodiffBackend>::from_inner(cell),
        };
        (states, cell)
    }
}

/// Runs one layer and direction through the fused operation.
///
/// `input` is `[batch, seq, d_in]`; returns the hidden states `[batch · seq, h]` (batch-major)
/// and the last cell state `[batch, h]` (zeros unless LSTM).
#[allow(clippy::too_many_arguments)]
pub(crate) fn recurrent_sequence(
    input: Tensor<3>,
    h0: Tensor<2>,
    c0: Tensor<2>,
    weight_ih: Tensor<2>,
    bias_ih: Tensor<1>,
    weight_hh: Tensor<2>,
    bias_hh: Tensor<1>,
    kind: RecurrentKind,
    reverse: bool,
) -> (Tensor<2>, Tensor<2>) {
    let inputs = SequenceInputs::<Dispatch> {
        input: input.into_dispatch(),
        h0: h0.into_dispatch(),
        c0: c0.into_dispatch(),
        weight_ih: weight_ih.into_dispatch(),
        bias_ih: bias_ih.into_dispatch(),
        weight_hh: weight_hh.into_dispatch(),
        bias_hh: bias_hh.into_dispatch(),
    };
    let (states, cell) = <Dispatch as RecurrentBackend>::recurrent_sequence(inputs, kind, reverse);
    (Tensor::from_dispatch(states), Tensor::from_dispatch(cell))
}

/// Whether `device` runs the fused operation (the backends listed in the extension, where the
/// time loop's host buffers are the tensors' own memory).
pub(crate) fn supported(device: &Device) -> bool {
    use engram_tensor::Backend as Which;
    match engram_tensor::backend_of(device) {
        #[cfg(feature = "flex")]
        Some(Which::Flex) => true,
        #[cfg(feature = "ndarray")]
        Some(Which::NdArray) => true,
        _ => false,
    }
}

/// Below this many multiply-adds per pass (`batch · seq · G·h · (d_in + h)`) one thread runs
/// the layer: starting a second one and meeting it at every step costs more than it saves.
const MIN_WORK_PER_THREAD: usize = 1 << 22;

/// The hidden states and the last cell state.
type Outputs<B> = (FloatTensor<B>, FloatTensor<B>);

/// The inputs read into host memory, in the dtype they came in.
struct Host<B: Backend> {
    data: [TensorData; 7],
    dims: Dims,
    dtype: DType,
    device: B::Device,
}

impl<B: Backend> Host<B> {
    fn read(inputs: SequenceInputs<B>, kind: RecurrentKind, reverse: bool) -> Self {
        let [batch, seq, d_input] = inputs.input.shape().dims();
        let hidden = inputs.h0.shape()[1];
        let dtype = inputs.input.dtype();
        let device = inputs.input.device();
        let SequenceInputs { input, h0, c0, weight_ih, bias_ih, weight_hh, bias_hh } = inputs;
        let data = [input, h0, c0, weight_ih, bias_ih, weight_hh, bias_hh].map(read::<B>);
        let work = batch * seq * kind.n_gates() * hidden * (d_input + hidden);
        let threads = engram_tensor::cpu_threads().min(work / MIN_WORK_PER_THREAD).max(1);
        let dims = Dims { kind, batch, seq, d_input, hidden, reverse, threads };
        Host { data, dims, dtype, device }
    }

    fn forward<T: Real + burn::tensor::Element>(
        self,
        save: bool,
    ) -> (Outputs<B>, Option<Saved<T>>) {
        let [x, h0, c0, w_ih, b_ih, w_hh, b_hh] = self.data.map(values::<T>);
        let weights = Weights { w_ih: &w_ih, b_ih: &b_ih, w_hh: &w_hh, b_hh: &b_hh };
        let d = self.dims;
        let (mut states, saved) = kernel::forward(d, &x, &h0, &c0, weights, save);
        let cell_len = d.batch * d.hidden;
        let cell = if d.kind == RecurrentKind::Lstm {
            states.split_off(d.batch * d.seq * d.hidden)
        } else {
            vec![T::ZERO; cell_len]
        };
        let states = write::<B, T>(states, vec![d.batch * d.seq, d.hidden], &self.device);
        let cell = write::<B, T>(cell, vec![d.batch, d.hidden], &self.device);
        ((states, cell), saved.map(|kernel| Saved { kernel, w_ih, w_hh }))
    }
}

fn read<B: Backend>(tensor: FloatTensor<B>) -> TensorData {
    match read_sync(B::float_into_data(tensor)) {
        Ok(data) => data,
        Err(err) => panic!("recurrent_sequence: cannot read a tensor to the host: {err:?}"),
    }
}

/// The values, reusing the allocation where the dtype already matches.
fn values<T: burn::tensor::Element>(data: TensorData) -> Vec<T> {
    match data.try_into_vec_as::<T>() {
        Ok(values) => values,
        Err(err) => panic!("recurrent_sequence: tensor data of an unexpected type: {err:?}"),
    }
}

fn write<B: Backend, T: burn::tensor::Element>(
    values: Vec<T>,
    shape: Vec<usize>,
    device: &B::Device,
) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(values, shape), device)
}

#[derive(Debug)]
struct SequenceBackward;

/// The forward pass's state and the two weights the backward pass multiplies by.
#[derive(Clone, Debug)]
struct Saved<T: Real> {
    kernel: kernel::Saved<T>,
    w_ih: Vec<T>,
    w_hh: Vec<T>,
}

#[derive(Clone, Debug)]
enum SavedAny {
    F32(Saved<f32>),
    F64(Saved<f64>),
}

#[derive(Clone, Debug)]
struct State<B: Backend> {
    dims: Dims,
    saved: SavedAny,
    device: B::Device,
    /// Where the cell state's backward leaves its gradient.
    cell_grad: CellGrad,
}

/// The gradient of an LSTM's last cell state, handed from [`CellBackward`] (which autodiff runs
/// first: the cell state is computed from the layer's output) to [`SequenceBackward`].
#[derive(Clone, Debug, Default)]
struct CellGrad(Arc<Mutex<Option<TensorData>>>);

#[derive(Debug)]
struct CellBackward;

#[derive(Clone, Debug)]
struct CellState<B: Backend> {
    slot: CellGrad,
    /// Shape, device and dtype of the hidden states, to give them a zero gradient.
    shape: Shape,
    device: B::Device,
    dtype: DType,
}

impl<B: Backend> Backward<B, 1> for CellBackward {
    type State = CellState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = read::<B>(grads.consume::<B>(&ops.node));
        let CellState { slot, shape, device, dtype } = ops.state;
        let mut held = slot.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = Some(grad);
        if let Some(node) = &ops.parents[0] {
            // The layer's backward consumes a gradient of its output; the real contribution
            // of the cell state travels through the slot.
            grads.register::<B>(node.id, B::float_zeros(shape, &device, dtype.into()));
        }
    }
}

impl<B: Backend> Backward<B, 7> for SequenceBackward {
    type State = State<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 7>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let state = ops.state;
        let dy = Some(read::<B>(grad));
        let dc = state.cell_grad.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        // The input's gradient costs a third of the weight gradients' work: only when asked.
        let want_x = ops.parents[0].is_some();
        let results: [Option<FloatTensor<B>>; 7] = match state.saved {
            SavedAny::F32(saved) => {
                gradients::<B, f32>(state.dims, saved, [dy, dc], want_x, &state.device)
            }
            SavedAny::F64(saved) => {
                gradients::<B, f64>(state.dims, saved, [dy, dc], want_x, &state.device)
            }
        };
        for (parent, grad) in ops.parents.into_iter().zip(results) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

fn gradients<B: Backend, T: Real + burn::tensor::Element>(
    d: Dims,
    saved: Saved<T>,
    [dy, dc]: [Option<TensorData>; 2],
    want_x: bool,
    device: &B::Device,
) -> [Option<FloatTensor<B>>; 7] {
    let weights = Weights { w_ih: &saved.w_ih, b_ih: &[], w_hh: &saved.w_hh, b_hh: &[] };
    let dy = values::<T>(dy.expect("the layer's output has a gradient"));
    let dc = dc.map(values::<T>);
    let g = kernel::backward(d, &saved.kernel, &dy, dc.as_deref(), weights, want_x);
    let (h, width) = (d.hidden, d.width());
    let x = want_x.then(|| write::<B, T>(g.x, vec![d.batch, d.seq, d.d_input], device));
    [
        x,
        Some(write::<B, T>(g.h0, vec![d.batch, h], device)),
        Some(write::<B, T>(g.c0, vec![d.batch, h], device)),
        Some(write::<B, T>(g.w_ih, vec![d.d_input, width], device)),
        Some(write::<B, T>(g.b_ih, vec![width], device)),
        Some(write::<B, T>(g.w_hh, vec![h, width], device)),
        Some(write::<B, T>(g.b_hh, vec![width], device)),
    ]
}

#[cfg(test)]
mod tests;
