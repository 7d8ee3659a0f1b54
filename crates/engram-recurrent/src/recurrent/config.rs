//! Configuration of recurrent layers: which cell, how wide, how deep.

use burn::config::Config;
use burn::nn::DropoutConfig;
use burn::tensor::Device;

use super::cell::RecurrentCell;
use super::{BiRecurrent, Recurrent};

/// The recurrence a layer runs, with PyTorch's equations and gate order.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum RecurrentKind {
    /// Elman RNN: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (`nn.RNN`, `nonlinearity="tanh"`).
    RnnTanh,
    /// Elman RNN with ReLU: `h' = relu(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnRelu,
    /// LSTM (Hochreiter & Schmidhuber, 1997, with the forget gate of Gers et al., 2000), gates
    /// in PyTorch's order `i, f, g, o`: `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`.
    Lstm,
    /// GRU (Cho et al., 2014, v1: the reset gate applied after the recurrent matmul, as PyTorch
    /// and cuDNN do), gates in the order `r, z, n`:
    /// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.
    Gru,
}

impl RecurrentKind {
    /// Number of gate blocks `G` in the fused weights: 4 for an LSTM, 3 for a GRU, 1 for an RNN.
    pub fn n_gates(self) -> usize {
        match self {
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => 1,
            RecurrentKind::Lstm => 4,
            RecurrentKind::Gru => 3,
        }
    }

    /// Whether the state has a cell part (LSTM only).
    pub fn has_cell(self) -> bool {
        self == RecurrentKind::Lstm
    }
}

/// Configuration of a stacked recurrent layer: [`Recurrent`] (one direction, streams) from
/// [`init`](RecurrentConfig::init), or [`BiRecurrent`] (both directions) from
/// [`init_bidirectional`](RecurrentConfig::init_bidirectional).
///
/// Direction is chosen by the constructor rather than a `bidirectional` flag because it
/// changes which memory contract the layer keeps: only the unidirectional one can continue from
/// a state, and the type system says so.
#[derive(Config, Debug)]
pub struct RecurrentConfig {
    /// The recurrence.
    pub kind: RecurrentKind,
    /// Width of each input position.
    pub d_input: usize,
    /// Width of the hidden state (per direction).
    pub d_hidden: usize,
    /// Number of stacked layers. Default: 1.
    #[config(default = 1)]
    pub n_layers: usize,
    /// Dropout on the outputs of every layer but the last, during training (PyTorch's
    /// `dropout`). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// `forward` takes and returns `[batch, seq, ·]` when true, `[seq, batch, ·]` when false
    /// (the memory-contract methods are always batch-first). Default: true.
    #[config(default = true)]
    pub batch_first: bool,
    /// Run unpadded batches through the fused time loop with its hand-written backward, on the
    /// backends that have it (flex, ndarray); padded batches and other backends take the
    /// composed path. Default: true.
    #[config(default = true)]
    pub fused: bool,
}

impl RecurrentConfig {
    /// Creates a unidirectional stack on `device`, every weight and bias drawn from PyTorch's
    /// `U(-1/√d_hidden, 1/√d_hidden)`.
    ///
    /// # Panics
    /// If `d_input`, `d_hidden` or `n_layers` is 0, or `dropout` is outside `[0, 1)`.
    pub fn init(&self, device: &Device) -> Recurrent {
        self.check();
        Recurrent {
            cells: self.cells(1, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            kind: self.kind,
            d_hidden: self.d_hidden,
            n_layers: self.n_layers,
            batch_first: self.batch_first,
            fused: self.fused,
        }
    }

    /// Creates a bidirectional stack on `device`; see [`init`](RecurrentConfig::init).
    ///
    /// # Panics
    /// As [`init`](RecurrentConfig::init).
    pub fn init_bidirectional(&self, device: &Device) -> BiRecurrent {
        self.check();
        BiRecurrent {
            cells: self.cells(2, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            kind: self.kind,
            d_hidden: self.d_hidden,
            n_layers: self.n_layers,
            batch_first: self.batch_first,
            fused: self.fused,
        }
    }

    fn check(&self) {
        assert!(
            self.d_input > 0 && self.d_hidden > 0 && self.n_layers > 0,
            "RecurrentConfig: d_input ({}), d_hidden ({}) and n_layers ({}) must be positive",
            self.d_input,
            self.d_hidden,
            self.n_layers
        );
        assert!(
            (0.0..1.0).contains(&self.dropout),
            "RecurrentConfig: dropout {} is outside [0, 1)",
            self.dropout
        );
    }

    /// Cells in PyTorch's order: layer-major, then direction.
    fn cells(&self, directions: usize, device: &Device) -> Vec<RecurrentCell> {
        (0..self.n_layers * directions)
            .map(|i| {
                let d_input =
                    if i < directions { self.d_input } else { directions * self.d_hidden };
                RecurrentCell::new(self.kind, d_input, self.d_hidden, device)
            })
            .collect()
    }
}
