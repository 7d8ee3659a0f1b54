//! The state of a recurrent stack, laid out as PyTorch's `h_n` / `c_n`.

use burn::tensor::{Tensor, TensorCreationOptions};
use engram_tensor::MemoryState;

/// Hidden (and, for an LSTM, cell) state of every layer and direction.
///
/// Both tensors are `[n_layers · directions, batch, d_hidden]`, index `layer · directions +
/// direction` (direction 1 is the reverse one), exactly PyTorch's `h_n` and `c_n`. After a
/// padded batch each row holds its own sequence's state: after its last real position for the
/// forward direction, after position 0 for the reverse one.
#[derive(Clone, Debug)]
pub struct RecurrentState {
    /// `[n_layers · directions, batch, d_hidden]` hidden state, also the last output.
    pub hidden: Tensor<3>,
    /// `[n_layers · directions, batch, d_hidden]` cell state, present for an LSTM only.
    pub cell: Option<Tensor<3>>,
}

impl RecurrentState {
    /// A zero state, with a cell when `with_cell`, on a device (`&device`) or a device in a
    /// dtype (`(&device, dtype)`).
    pub fn zeros(
        layers_times_directions: usize,
        batch: usize,
        d_hidden: usize,
        with_cell: bool,
        options: impl Into<TensorCreationOptions>,
    ) -> Self {
        let hidden = Tensor::zeros([layers_times_directions, batch, d_hidden], options);
        let cell = with_cell.then(|| hidden.clone());
        RecurrentState { hidden, cell }
    }

    /// Number of sequences the state holds.
    pub fn batch(&self) -> usize {
        self.hidden.dims()[1]
    }
}

impl MemoryState for RecurrentState {
    fn detach(self) -> Self {
        RecurrentState { hidden: self.hidden.detach(), cell: self.cell.map(Tensor::detach) }
    }
}
