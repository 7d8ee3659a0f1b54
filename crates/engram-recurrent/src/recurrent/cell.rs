//! One layer in one direction: fused gate weights, the hoisted input projection and the time loop.

use burn::module::{Module, Param};
use burn::tensor::{Bool, Device, Tensor, activation};
use engram_tensor::recurrent_uniform;

use super::RecurrentKind;

/// The weights of one recurrent layer in one direction, gates fused as PyTorch stores them
/// (transposed: `x · W`, so the weights are `[in, out]`).
///
/// Gate blocks sit side by side along the last axis in PyTorch's order (`i, f, g, o` for an
/// LSTM, `r, z, n` for a GRU). The two biases are kept apart as in PyTorch: for a GRU `b_hn`
/// lies inside `r ⊙ (W_hn h + b_hn)`, so it cannot be folded into `b_in`.
#[derive(Module, Debug)]
pub struct RecurrentCell {
    /// `[d_input, G·d_hidden]` input weight.
    pub weight_ih: Param<Tensor<2>>,
    /// `[d_hidden, G·d_hidden]` recurrent weight.
    pub weight_hh: Param<Tensor<2>>,
    /// `[G·d_hidden]` input bias.
    pub bias_ih: Param<Tensor<1>>,
    /// `[G·d_hidden]` recurrent bias.
    pub bias_hh: Param<Tensor<1>>,
    /// The recurrence.
    #[module(skip)]
    pub kind: RecurrentKind,
}

/// A direction's state while it runs: the hidden state and, for an LSTM, the cell.
#[derive(Clone, Debug)]
pub(crate) struct CellState {
    pub(crate) hidden: Tensor<2>,
    pub(crate) cell: Option<Tensor<2>>,
}

impl RecurrentCell {
    /// A cell with PyTorch's initialisation `U(-1/√d_hidden, 1/√d_hidden)` everywhere.
    pub(crate) fn new(
        kind: RecurrentKind,
        d_input: usize,
        d_hidden: usize,
        device: &Device,
    ) -> Self {
        let init = recurrent_uniform(d_hidden);
        let width = kind.n_gates() * d_hidden;
        RecurrentCell {
            weight_ih: init.init([d_input, width], device),
            weight_hh: init.init([d_hidden, width], device),
            bias_ih: init.init([width], device),
            bias_hh: init.init([width], device),
            kind,
        }
    }

    /// Width of the hidden state.
    pub fn d_hidden(&self) -> usize {
        self.weight_hh.dims()[0]
    }

    /// Width of the input.
    pub fn d_input(&self) -> usize {
        self.weight_ih.dims()[0]
    }

    /// Runs the direction over a batch-first chunk from `state`.
    ///
    /// `pads[t]` is `[batch, d_hidden]`, `true` where row `b` is padding at step `t`: the state
    /// is carried through unchanged and the output is zero there. Running in `reverse` with
    /// right padding therefore starts each row at its own last real position, from `state`.
    pub(crate) fn run(
        &self,
        input: Tensor<3>,
        pads: Option<&[Tensor<2, Bool>]>,
        mut state: CellState,
        reverse: bool,
        fused: bool,
    ) -> (Tensor<3>, CellState) {
        let [batch, seq, d_input] = input.dims();
        let width = self.weight_ih.dims()[1];
        if fused && pads.is_none() && seq > 0 && super::fused::supported(&input.device()) {
            return self.run_fused(input, state, reverse);
        }
        // The input projection of every step is one matmul, out of the time loop.
        let projected = input
            .reshape([batch * seq, d_input])
            .matmul(self.weight_ih.val())
            .add(self.bias_ih.val().unsqueeze::<2>())
            .reshape([batch, seq, width]);
        let steps: Vec<usize> = if reverse { (0..seq).rev().collect() } else { (0..seq).collect() };
        let mut outputs: Vec<Option<Tensor<2>>> = vec![None; seq];
        for t in steps {
            let x = projected.clone().narrow(1, t, 1).reshape([batch, width]);
            let next = self.step(x, &state);
            let (output, next) = match pads {
                None => (next.hidden.clone(), next),
                Some(pads) => {
                    let pad = pads[t].clone();
                    let hidden = next.hidden.mask_where(pad.clone(), state.hidden);
                    let cell = match (next.cell, state.cell) {
                        (Some(new), Some(old)) => Some(new.mask_where(pad.clone(), old)),
                        (new, _) => new,
                    };
                    let output = hidden.clone().mask_fill(pad, 0.0);
                    (output, CellState { hidden, cell })
                }
            };
            outputs[t] = Some(output);
            state = next;
        }
        let outputs: Vec<Tensor<2>> = outputs.into_iter().flatten().collect();
        (Tensor::stack(outputs, 1), state)
    }

    /// The same as [`run`](RecurrentCell::run) without padding, as one fused operation with a
    /// hand-written backward: the input projection, the time loop and all their gradients are
    /// one autodiff node.
    fn run_fused(
        &self,
        input: Tensor<3>,
        state: CellState,
        reverse: bool,
    ) -> (Tensor<3>, CellState) {
        let [batch, seq, _] = input.dims();
        let d_hidden = self.d_hidden();
        let c0 = match &state.cell {
            Some(c) => c.clone(),
            None => state.hidden.zeros_like(),
        };
        // [batch · seq, h]: batch-major hidden states; and the last cell state.
        let (states, c_last) = super::fused::recurrent_sequence(
            input,
            state.hidden,
            c0,
            self.weight_ih.val(),
            self.bias_ih.val(),
            self.weight_hh.val(),
            self.bias_hh.val(),
            self.kind,
            reverse,
        );
        let output = states.reshape([batch, seq, d_hidden]);
        let last = if reverse { 0 } else { seq - 1 };
        let hidden = output.clone().narrow(1, last, 1).reshape([batch, d_hidden]);
        let cell = self.kind.has_cell().then_some(c_last);
        (output, CellState { hidden, cell })
    }

    /// One step from a projected input `x` (`[batch, G·d_hidden]`, input bias included).
    fn step(&self, x: Tensor<2>, state: &CellState) -> CellState {
        let h = state.hidden.clone();
        let recurrent =
            h.clone().matmul(self.weight_hh.val()).add(self.bias_hh.val().unsqueeze::<2>());
        match self.kind {
            RecurrentKind::RnnTanh => CellState { hidden: (x + recurrent).tanh(), cell: None },
            RecurrentKind::RnnRelu => {
                CellState { hidden: activation::relu(x + recurrent), cell: None }
            }
            RecurrentKind::Lstm => {
                let mut gates = (x + recurrent).chunk(4, 1).into_iter();
                let mut next = || gates.next().expect("an LSTM has four gate blocks");
                let (i, f, g, o) = (next(), next(), next(), next());
                let c = match &state.cell {
                    Some(c) => c.clone(),
                    None => h.zeros_like(),
                };
                let c = sigmoid(f) * c + sigmoid(i) * g.tanh();
                let hidden = sigmoid(o) * c.clone().tanh();
                CellState { hidden, cell: Some(c) }
            }
            RecurrentKind::Gru => {
                let mut xs = x.chunk(3, 1).into_iter();
                let mut hs = recurrent.chunk(3, 1).into_iter();
                let mut next = || {
                    let a = xs.next().expect("a GRU has three gate blocks");
                    let b = hs.next().expect("a GRU has three gate blocks");
                    (a, b)
                };
                let ((xr, hr), (xz, hz), (xn, hn)) = (next(), next(), next());
                let r = sigmoid(xr + hr);
                let z = sigmoid(xz + hz);
                let n = (xn + r * hn).tanh();
                // (1 - z) ⊙ n + z ⊙ h, with one fewer multiplication.
                let hidden = n.clone() + z * (h - n);
                CellState { hidden, cell: None }
            }
        }
    }
}

/// The logistic function as `(1 + tanh(x / 2)) / 2`: the same value, stable for any `x`.
///
/// Written out because burn's `activation::sigmoid` gave wrong gradients on the ndarray backend
/// in f64 (the finite-difference check of the LSTM and GRU failed by ~4e-2 there, and passed on
/// flex); `tanh`'s backward is right on every backend tested.
fn sigmoid(x: Tensor<2>) -> Tensor<2> {
    x.mul_scalar(0.5).tanh().add_scalar(1.0).mul_scalar(0.5)
}
