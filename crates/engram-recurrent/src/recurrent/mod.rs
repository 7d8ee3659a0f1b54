//! Stacked recurrent layers (Elman RNN, LSTM, GRU) over padded batches, as engram memories.

mod cell;
mod config;
mod fused;
mod pytorch;
mod state;

pub use cell::RecurrentCell;
pub use config::{RecurrentConfig, RecurrentKind};
pub use state::RecurrentState;

use burn::module::Module;
use burn::nn::Dropout;
use burn::tensor::{Bool, Tensor};
use engram_tensor::{Encoded, SequenceMemory, StreamingMemory};

use cell::CellState;

/// What a recurrent stack returns.
#[derive(Clone, Debug)]
pub struct RecurrentOutput {
    /// The last layer's hidden state at every position, directions concatenated (forward
    /// first): `[batch, seq, directions · d_hidden]` (`[seq, batch, ·]` when not batch-first);
    /// zero at padded positions.
    pub output: Tensor<3>,
    /// The state after each sequence's last real position.
    pub state: RecurrentState,
}

/// A unidirectional stack of recurrent layers (PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` with
/// `bidirectional=False`): a streaming memory whose state is [`RecurrentState`].
///
/// Built by [`RecurrentConfig::init`]. Padded positions (right padding) leave the state
/// unchanged and give zero outputs, so a padded batch gives each sequence what it would get
/// alone, and chunks carried through [`StreamingMemory::encode_from`] give what one pass gives.
#[derive(Module, Debug)]
pub struct Recurrent {
    /// One cell per layer, bottom first.
    pub cells: Vec<RecurrentCell>,
    /// Dropout between layers.
    pub dropout: Dropout,
    /// The recurrence.
    #[module(skip)]
    pub kind: RecurrentKind,
    /// Width of the hidden state.
    pub d_hidden: usize,
    /// Number of layers.
    pub n_layers: usize,
    /// Layout of [`forward`](Recurrent::forward)'s input and output.
    pub batch_first: bool,
    /// Whether unpadded batches take the fused time loop (see [`RecurrentConfig::fused`]).
    pub fused: bool,
}

/// A bidirectional stack of recurrent layers (PyTorch's `bidirectional=True`): a sequence
/// memory (it cannot stream, since the reverse direction needs the whole sequence).
///
/// Built by [`RecurrentConfig::init_bidirectional`]. The reverse direction of each row starts
/// at that row's own last real position, not at the end of the padded batch.
#[derive(Module, Debug)]
pub struct BiRecurrent {
    /// Two cells per layer, bottom first, forward before reverse.
    pub cells: Vec<RecurrentCell>,
    /// Dropout between layers.
    pub dropout: Dropout,
    /// The recurrence.
    #[module(skip)]
    pub kind: RecurrentKind,
    /// Width of the hidden state per direction.
    pub d_hidden: usize,
    /// Number of layers.
    pub n_layers: usize,
    /// Layout of [`forward`](BiRecurrent::forward)'s input and output.
    pub batch_first: bool,
    /// Whether unpadded batches take the fused time loop (see [`RecurrentConfig::fused`]).
    pub fused: bool,
}

impl Recurrent {
    /// Runs the stack over a chunk, from `state` (`None`: zeros).
    ///
    /// # Shapes
    /// - `input`: `[batch, seq, d_input]` (`[seq, batch, d_input]` when not batch-first);
    /// - `padding`: `[batch, seq]` in either layout, `true` at padding, rows right-padded;
    /// - `state`: [`RecurrentState`] of `[n_layers, batch, d_hidden]` tensors;
    /// - output: `[batch, seq, d_hidden]` (or `[seq, batch, d_hidden]`), zero at padding.
    ///
    /// # Panics
    /// If the input width is not `d_input`, or the padding or state do not fit the batch or the
    /// layer (a cell state given to a layer that is not an LSTM, or missing for one).
    pub fn forward(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<RecurrentState>,
    ) -> RecurrentOutput {
        let stack = Stack::of_unidirectional(self);
        stack.forward_layout(self.batch_first, input, padding, state)
    }
}

impl BiRecurrent {
    /// Runs both directions of the stack over whole sequences, from `state` (`None`: zeros).
    ///
    /// # Shapes
    /// As [`Recurrent::forward`], with `2 · n_layers` state rows and outputs
    /// `[batch, seq, 2 · d_hidden]` (forward direction first).
    ///
    /// # Panics
    /// As [`Recurrent::forward`].
    pub fn forward(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<RecurrentState>,
    ) -> RecurrentOutput {
        let stack = Stack::of_bidirectional(self);
        stack.forward_layout(self.batch_first, input, padding, state)
    }
}

impl SequenceMemory for Recurrent {
    type State = RecurrentState;

    fn d_output(&self) -> usize {
        self.d_hidden
    }

    fn encode(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
    ) -> Encoded<RecurrentState> {
        self.encode_from(input, padding, None)
    }
}

impl StreamingMemory for Recurrent {
    fn encode_from(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<RecurrentState>,
    ) -> Encoded<RecurrentState> {
        let RecurrentOutput { output, state } =
            Stack::of_unidirectional(self).forward_layout(true, input, padding, state);
        Encoded { output, state }
    }
}

impl SequenceMemory for BiRecurrent {
    type State = RecurrentState;

    fn d_output(&self) -> usize {
        2 * self.d_hidden
    }

    fn encode(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
    ) -> Encoded<RecurrentState> {
        let RecurrentOutput { output, state } =
            Stack::of_bidirectional(self).forward_layout(true, input, padding, None);
        Encoded { output, state }
    }
}

/// The two stack types seen the same way, so that one loop serves both.
struct Stack<'a> {
    cells: &'a [RecurrentCell],
    dropout: &'a Dropout,
    kind: RecurrentKind,
    d_hidden: usize,
    n_layers: usize,
    directions: usize,
    fused: bool,
    name: &'static str,
}

impl<'a> Stack<'a> {
    fn of_unidirectional(layer: &'a Recurrent) -> Self {
        Stack {
            cells: &layer.cells,
            dropout: &layer.dropout,
            kind: layer.kind,
            d_hidden: layer.d_hidden,
            n_layers: layer.n_layers,
            directions: 1,
            fused: layer.fused,
            name: "Recurrent",
        }
    }

    fn of_bidirectional(layer: &'a BiRecurrent) -> Self {
        Stack {
            cells: &layer.cells,
            dropout: &layer.dropout,
            kind: layer.kind,
            d_hidden: layer.d_hidden,
            n_layers: layer.n_layers,
            directions: 2,
            fused: layer.fused,
            name: "BiRecurrent",
        }
    }

    fn forward_layout(
        &self,
        batch_first: bool,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<RecurrentState>,
    ) -> RecurrentOutput {
        if batch_first {
            return self.forward(input, padding, state);
        }
        let out = self.forward(input.swap_dims(0, 1), padding, state);
        RecurrentOutput { output: out.output.swap_dims(0, 1), state: out.state }
    }

    /// The batch-first pass.
    fn forward(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<RecurrentState>,
    ) -> RecurrentOutput {
        let name = self.name;
        let [batch, seq, d_input] = input.dims();
        let expected_input = self.cells[0].d_input();
        assert_eq!(
            d_input, expected_input,
            "{name}: input width {d_input} is not d_input {expected_input}"
        );
        let rows = self.n_layers * self.directions;
        let (d_hidden, device, dtype) = (self.d_hidden, input.device(), input.dtype());
        let state = match state {
            None => {
                RecurrentState::zeros(rows, batch, d_hidden, self.kind.has_cell(), (&device, dtype))
            }
            Some(state) => {
                self.check_state(&state, [rows, batch, d_hidden]);
                state
            }
        };
        // One `[batch, d_hidden]` mask per step, shared by every layer and direction.
        let pads: Option<Vec<Tensor<2, Bool>>> = padding.map(|padding| {
            assert_eq!(
                padding.dims(),
                [batch, seq],
                "{name}: padding shape {:?} is not [batch {batch}, seq {seq}]",
                padding.dims()
            );
            (0..seq).map(|t| padding.clone().narrow(1, t, 1).expand([batch, d_hidden])).collect()
        });

        let mut x = input;
        let mut hidden = Vec::with_capacity(rows);
        let mut cells = Vec::with_capacity(rows);
        for layer in 0..self.n_layers {
            if layer > 0 {
                x = engram_tensor::dropout(self.dropout, x);
            }
            let mut outputs = Vec::with_capacity(self.directions);
            for direction in 0..self.directions {
                let i = layer * self.directions + direction;
                let start = CellState {
                    hidden: row(&state.hidden, i),
                    cell: state.cell.as_ref().map(|c| row(c, i)),
                };
                let (output, end) = self.cells[i].run(
                    x.clone(),
                    pads.as_deref(),
                    start,
                    direction == 1,
                    self.fused,
                );
                outputs.push(output);
                hidden.push(end.hidden);
                cells.extend(end.cell);
            }
            x = if outputs.len() == 1 { outputs.remove(0) } else { Tensor::cat(outputs, 2) };
        }
        let state = RecurrentState {
            hidden: Tensor::stack(hidden, 0),
            cell: (!cells.is_empty()).then(|| Tensor::stack(cells, 0)),
        };
        RecurrentOutput { output: x, state }
    }

    fn check_state(&self, state: &RecurrentState, shape: [usize; 3]) {
        let name = self.name;
        assert_eq!(
            state.hidden.dims(),
            shape,
            "{name}: state shape {:?} is not [n_layers·directions {}, batch {}, d_hidden {}]",
            state.hidden.dims(),
            shape[0],
            shape[1],
            shape[2]
        );
        match (&state.cell, self.kind.has_cell()) {
            (Some(cell), true) => assert_eq!(
                cell.dims(),
                shape,
                "{name}: cell state shape {:?} differs from hidden state shape {shape:?}",
                cell.dims()
            ),
            (None, false) => {}
            (Some(_), false) => panic!("{name}: a {:?} state has no cell", self.kind),
            (None, true) => panic!("{name}: an LSTM state needs a cell"),
        }
    }
}

/// Row `i` of a `[rows, batch, d]` state as `[batch, d]`.
fn row(state: &Tensor<3>, i: usize) -> Tensor<2> {
    state.clone().narrow(0, i, 1).squeeze_dim(0)
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
