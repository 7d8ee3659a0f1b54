//! The fast path: one layer and direction as a single burn operation with a hand-written
//! backward (backpropagation through time), through burn's backend-extension API.
//!
//! Autodiff sees one node per layer and direction instead of about fifteen per time step. The
//! time loop runs on host buffers ([`kernel`]) with gemm, so it serves the CPU backends (flex,
//! ndarray); other backends keep the composed path, whose gradients come from autodiff.

mod kernel;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, ExtensionType, TensorMetadata, backend_extension,
};
use burn::tensor::{DType, Device, Tensor, TensorData, read_sync};

use super::RecurrentKind;
use kernel::{Dims, Real};

/// The inputs of one layer and direction, time-major.
#[derive(ExtensionType)]
pub struct SequenceInputs<B: Backend> {
    /// `[seq, batch, G·h]`: the input projection of every step, input bias included.
    pub projected: FloatTensor<B>,
    /// `[batch, h]` initial hidden state.
    pub h0: FloatTensor<B>,
    /// `[batch, h]` initial cell state (zeros, and unused, unless LSTM).
    pub c0: FloatTensor<B>,
    /// `[h, G·h]` recurrent weight.
    pub weight_hh: FloatTensor<B>,
    /// `[G·h]` recurrent bias.
    pub bias_hh: FloatTensor<B>,
}

/// Backends with a fused recurrent layer.
#[backend_extension(Autodiff, Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"))]
pub trait RecurrentBackend: Backend {
    /// Runs the recurrence; returns `[seq (+1 for an LSTM), batch, h]`: the hidden state at
    /// every time index, then (LSTM) the last cell state.
    fn recurrent_sequence(
        #[extension_type] inputs: SequenceInputs<Self>,
        kind: RecurrentKind,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let host = Host::<Self>::read(inputs, kind, reverse);
        match host.dtype {
            DType::F64 => host.forward::<f64>().0,
            _ => host.forward::<f32>().0,
        }
    }
}

#[cfg(feature = "flex")]
impl RecurrentBackend for burn::backend::Flex {}
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl RecurrentBackend for burn::backend::NdArray {}

impl<B: Backend + RecurrentBackend, C: CheckpointStrategy> RecurrentBackend for Autodiff<B, C> {
    fn recurrent_sequence(
        inputs: SequenceInputs<Self>,
        kind: RecurrentKind,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let SequenceInputs { projected, h0, c0, weight_hh, bias_hh } = inputs;
        let nodes = [projected.node(), h0.node(), c0.node(), weight_hh.node(), bias_hh.node()];
        let inner = SequenceInputs::<B> {
            projected: projected.into_primitive(),
            h0: h0.into_primitive(),
            c0: c0.into_primitive(),
            weight_hh: weight_hh.into_primitive(),
            bias_hh: bias_hh.into_primitive(),
        };
        match SequenceBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let weight = inner.weight_hh.clone();
                let host = Host::<B>::read(inner, kind, reverse);
                let (output, saved) = match host.dtype {
                    DType::F64 => {
                        let (out, saved) = host.forward::<f64>();
                        (out, SavedAny::F64(saved))
                    }
                    _ => {
                        let (out, saved) = host.forward::<f32>();
                        (out, SavedAny::F32(saved))
                    }
                };
                let state =
                    State { dims: host.dims, saved, dtype: host.dtype, device: host.device };
                prep.finish((state, weight), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::recurrent_sequence(inner, kind, reverse)),
        }
    }
}

/// Runs one layer and direction through the fused operation.
///
/// `projected` is `[seq, batch, G·h]` (time-major); returns `[seq (+1), batch, h]` as
/// [`RecurrentBackend::recurrent_sequence`] does.
pub(crate) fn recurrent_sequence(
    projected: Tensor<3>,
    h0: Tensor<2>,
    c0: Tensor<2>,
    weight_hh: Tensor<2>,
    bias_hh: Tensor<1>,
    kind: RecurrentKind,
    reverse: bool,
) -> Tensor<3> {
    let inputs = SequenceInputs::<Dispatch> {
        projected: projected.into_dispatch(),
        h0: h0.into_dispatch(),
        c0: c0.into_dispatch(),
        weight_hh: weight_hh.into_dispatch(),
        bias_hh: bias_hh.into_dispatch(),
    };
    Tensor::from_dispatch(<Dispatch as RecurrentBackend>::recurrent_sequence(inputs, kind, reverse))
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

/// The inputs read into host memory, in the dtype they came in.
struct Host<B: Backend> {
    data: [TensorData; 5],
    dims: Dims,
    dtype: DType,
    device: B::Device,
}

impl<B: Backend> Host<B> {
    fn read(inputs: SequenceInputs<B>, kind: RecurrentKind, reverse: bool) -> Self {
        let shape = inputs.projected.shape();
        let hidden = inputs.h0.shape()[1];
        let dtype = inputs.projected.dtype();
        let device = inputs.projected.device();
        let SequenceInputs { projected, h0, c0, weight_hh, bias_hh } = inputs;
        let data = [projected, h0, c0, weight_hh, bias_hh].map(read::<B>);
        let dims = Dims { kind, seq: shape[0], batch: shape[1], hidden, reverse };
        Host { data, dims, dtype, device }
    }

    fn forward<T: Real + burn::tensor::Element>(&self) -> (FloatTensor<B>, kernel::Saved<T>) {
        let [p, h0, c0, w, b] = self.data.each_ref().map(values::<T>);
        let (out, saved) = kernel::forward(self.dims, &p, &h0, &c0, &w, &b);
        let d = self.dims;
        let rows = d.seq + usize::from(d.kind == RecurrentKind::Lstm);
        (write::<B, T>(out, vec![rows, d.batch, d.hidden], &self.device), saved)
    }
}

fn read<B: Backend>(tensor: FloatTensor<B>) -> TensorData {
    match read_sync(B::float_into_data(tensor)) {
        Ok(data) => data,
        Err(err) => panic!("recurrent_sequence: cannot read a tensor to the host: {err:?}"),
    }
}

fn values<T: burn::tensor::Element>(data: &TensorData) -> Vec<T> {
    match data.clone().convert::<T>().try_into_vec::<T>() {
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

#[derive(Clone, Debug)]
enum SavedAny {
    F32(kernel::Saved<f32>),
    F64(kernel::Saved<f64>),
}

#[derive(Clone, Debug)]
struct State<B: Backend> {
    dims: Dims,
    saved: SavedAny,
    dtype: DType,
    device: B::Device,
}

impl<B: Backend> Backward<B, 5> for SequenceBackward {
    type State = (State<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 5>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (state, weight_hh) = ops.state;
        let dy = read::<B>(grad);
        let w = read::<B>(weight_hh);
        let d = state.dims;
        let width = d.width();
        let shapes = [
            vec![d.seq, d.batch, width],
            vec![d.batch, d.hidden],
            vec![d.batch, d.hidden],
            vec![d.hidden, width],
            vec![width],
        ];
        let results: [FloatTensor<B>; 5] = match &state.saved {
            SavedAny::F32(saved) => gradients::<B, f32>(d, saved, &dy, &w, shapes, &state.device),
            SavedAny::F64(saved) => gradients::<B, f64>(d, saved, &dy, &w, shapes, &state.device),
        };
        let _ = state.dtype;
        for (parent, grad) in ops.parents.into_iter().zip(results) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

fn gradients<B: Backend, T: Real + burn::tensor::Element>(
    d: Dims,
    saved: &kernel::Saved<T>,
    dy: &TensorData,
    w: &TensorData,
    shapes: [Vec<usize>; 5],
    device: &B::Device,
) -> [FloatTensor<B>; 5] {
    let g = kernel::backward(d, saved, &values::<T>(dy), &values::<T>(w));
    let c0 = if g.c0.is_empty() { vec![T::ZERO; d.batch * d.hidden] } else { g.c0 };
    let [sp, sh, sc, sw, sb] = shapes;
    [
        write::<B, T>(g.p, sp, device),
        write::<B, T>(g.h0, sh, device),
        write::<B, T>(c0, sc, device),
        write::<B, T>(g.w_hh, sw, device),
        write::<B, T>(g.b_hh, sb, device),
    ]
}

#[cfg(test)]
mod tests;
