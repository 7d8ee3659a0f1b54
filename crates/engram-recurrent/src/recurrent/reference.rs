//! A plain-f64 reference of the stacks, written with loops from PyTorch's documented equations,
//! for the tests.

use engram_tensor::testing::to_f64;

use super::{RecurrentCell, RecurrentKind};

/// One cell's weights on the host, row-major as stored (`[in, G·h]`).
pub(super) struct CellParams {
    kind: RecurrentKind,
    d_hidden: usize,
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
}

impl CellParams {
    /// Weights given as host values, in the cell's layout.
    pub(super) fn new(
        kind: RecurrentKind,
        d_hidden: usize,
        [w_ih, b_ih, w_hh, b_hh]: [Vec<f64>; 4],
    ) -> Self {
        CellParams { kind, d_hidden, w_ih, w_hh, b_ih, b_hh }
    }

    pub(super) fn of(cell: &RecurrentCell) -> Self {
        CellParams {
            kind: cell.kind,
            d_hidden: cell.d_hidden(),
            w_ih: to_f64(cell.weight_ih.val()),
            w_hh: to_f64(cell.weight_hh.val()),
            b_ih: to_f64(cell.bias_ih.val()),
            b_hh: to_f64(cell.bias_hh.val()),
        }
    }

    /// `b + v · W` for a `[v.len(), width]` matrix `w`.
    fn affine(v: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let width = b.len();
        (0..width)
            .map(|j| b[j] + v.iter().enumerate().map(|(k, x)| x * w[k * width + j]).sum::<f64>())
            .collect()
    }

    /// One step of PyTorch's equations from `(h, c)`.
    pub(super) fn step(&self, x: &[f64], h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.d_hidden;
        let gx = Self::affine(x, &self.w_ih, &self.b_ih);
        let gh = Self::affine(h, &self.w_hh, &self.b_hh);
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        match self.kind {
            RecurrentKind::RnnTanh => ((0..n).map(|j| (gx[j] + gh[j]).tanh()).collect(), vec![]),
            RecurrentKind::RnnRelu => ((0..n).map(|j| (gx[j] + gh[j]).max(0.0)).collect(), vec![]),
            RecurrentKind::Lstm => {
                let mut h_new = vec![0.0; n];
                let mut c_new = vec![0.0; n];
                for j in 0..n {
                    let gate = |g: usize| gx[g * n + j] + gh[g * n + j];
                    let (i, f, g, o) =
                        (sigmoid(gate(0)), sigmoid(gate(1)), gate(2).tanh(), sigmoid(gate(3)));
                    c_new[j] = f * c[j] + i * g;
                    h_new[j] = o * c_new[j].tanh();
                }
                (h_new, c_new)
            }
            RecurrentKind::Gru => {
                let h_new = (0..n)
                    .map(|j| {
                        let r = sigmoid(gx[j] + gh[j]);
                        let z = sigmoid(gx[n + j] + gh[n + j]);
                        let cand = (gx[2 * n + j] + r * gh[2 * n + j]).tanh();
                        (1.0 - z) * cand + z * h[j]
                    })
                    .collect();
                (h_new, vec![])
            }
        }
    }
}

/// What the reference gives for one unpadded sequence from a zero state.
pub(super) struct Reference {
    /// `[len][directions · h]` outputs of the last layer.
    pub(super) outputs: Vec<Vec<f64>>,
    /// `[layers · directions][h]` final hidden states.
    pub(super) hidden: Vec<Vec<f64>>,
    /// `[layers · directions][h]` final cell states (LSTM; empty rows otherwise).
    pub(super) cell: Vec<Vec<f64>>,
}

/// Runs `cells` (PyTorch's order: layer-major, then direction) over `xs`.
pub(super) fn run_stack(cells: &[CellParams], directions: usize, xs: &[Vec<f64>]) -> Reference {
    let mut layer_input = xs.to_vec();
    let (mut hidden, mut cell) = (Vec::new(), Vec::new());
    for layer in cells.chunks(directions) {
        let mut outputs = vec![Vec::new(); xs.len()];
        for (direction, p) in layer.iter().enumerate() {
            let n = p.d_hidden;
            let (mut h, mut c) = (vec![0.0; n], vec![0.0; n]);
            let order: Vec<usize> = if direction == 1 {
                (0..xs.len()).rev().collect()
            } else {
                (0..xs.len()).collect()
            };
            for t in order {
                let (h_new, c_new) = p.step(&layer_input[t], &h, &c);
                outputs[t].extend_from_slice(&h_new);
                h = h_new;
                c = if c_new.is_empty() { c } else { c_new };
            }
            hidden.push(h);
            cell.push(c);
        }
        layer_input = outputs;
    }
    Reference { outputs: layer_input, hidden, cell }
}
