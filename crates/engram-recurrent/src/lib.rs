//! Recurrent memory for engram: Elman RNN (tanh, ReLU), LSTM and GRU stacks on burn 0.22, with
//! PyTorch's equations, gate order, weight layout and initialisation.
//!
//! - [`RecurrentConfig`] → [`Recurrent`] (unidirectional, stacked): implements engram-tensor's
//!   [`SequenceMemory`](engram_tensor::SequenceMemory) and
//!   [`StreamingMemory`](engram_tensor::StreamingMemory) with [`RecurrentState`] (PyTorch's
//!   `h_n`/`c_n` layout) as its state; `detach` cuts the graph for truncated BPTT.
//! - [`RecurrentConfig::init_bidirectional`] → [`BiRecurrent`]: a
//!   [`SequenceMemory`](engram_tensor::SequenceMemory) only.
//! - Padded batches (`[batch, seq]` masks, `true` at padding, right padding): padded steps leave
//!   the state alone and give zero outputs; the reverse direction starts at each sequence's end.
//! - [`RecurrentCell`]: one layer and direction, fused gate weights `[d_in, G·d_hidden]` and
//!   `[d_hidden, G·d_hidden]` with separate input and recurrent biases; the input projection of
//!   all steps is one matmul outside the time loop.
//!
//! burn-nn's `Lstm`/`Gru` compute the same cells (tests compare them, weights copied), but keep
//! one pair of linear layers per gate, project the input inside the time loop, have no padding
//! masks, stacking or initial state per layer, and no ReLU/tanh Elman RNN; that is why this
//! crate exists.
//! - Training speed: on flex and ndarray an unpadded layer runs as one fused burn operation with
//!   a hand-written backward (burn's backend-extension API); padded batches and other backends
//!   take the composed path, with gradients from burn's autodiff through the time loop
//!   ([`RecurrentConfig::fused`] turns the fused path off).
//! - PyTorch weights: [`RecurrentConfig::load_pytorch`] reads an `nn.RNN`/`nn.LSTM`/`nn.GRU`
//!   state_dict saved as safetensors, with [`Error`] naming the file, key and shapes.
//!
//! Cargo features `flex` (default), `ndarray` and `wgpu` select the backend through
//! engram-tensor.
//!
//! # Example
//! ```
//! use burn::tensor::Tensor;
//! use engram_recurrent::{RecurrentConfig, RecurrentKind};
//! use engram_tensor::{StreamingMemory, device, padding_mask};
//!
//! let device = device(None).expect("a backend is compiled in");
//! let lstm = RecurrentConfig::new(RecurrentKind::Lstm, 8, 16).with_n_layers(2).init(&device);
//!
//! // Two sequences of lengths 3 and 2, then one more step for both.
//! let input = Tensor::<3>::zeros([2, 3, 8], &device);
//! let encoded = lstm.encode_from(input, Some(padding_mask(&[3, 2], 3, &device)), None);
//! assert_eq!(encoded.state.hidden.dims(), [2, 2, 16]); // [n_layers, batch, d_hidden]
//! let stepped = lstm.step(Tensor::<2>::ones([2, 8], &device), None, Some(encoded.state));
//! assert_eq!(stepped.output.dims(), [2, 16]);
//! ```
#![warn(missing_docs)]

mod error;
mod recurrent;

pub use error::Error;

pub use recurrent::{
    BiRecurrent, Recurrent, RecurrentCell, RecurrentConfig, RecurrentKind, RecurrentOutput,
    RecurrentState,
};
