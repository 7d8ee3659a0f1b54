//! The whole of one layer and direction on host buffers (f32, or f64 for checks), forward and
//! backward (backpropagation through time), in the style of oneDNN's RNN primitive.
//!
//! A team of threads (see [`team`](super::team)) splits the hidden units: member `m` owns units
//! `[j0, j1)` of every gate, packs its columns of `W_ih` and `W_hh` once per pass, and per step
//! computes its gate pre-activations `x_t W_ih + h_{t-1} W_hh` for those units (register-tiled
//! products, [`packed`](super::packed)), applies the gate functions and writes its part of
//! `h_t`; one barrier per step publishes `h_t` to the others. The backward pass mirrors it:
//! each member computes the gate gradients of its units, a barrier, then its units of
//! `dh_{t-1} = dR_t W_hhᵀ`. The weight gradients are two large products after the loop,
//! `dW_hh = H_prevᵀ dR` and `dW_ih = Xᵀ dP`, split by rows; their operands are written in the
//! products' blocked layout ([`Blocked`]) while the loops produce them, so nothing is packed
//! after the loop. `dX = dP W_ihᵀ`, only when asked for, is one product per step.
//!
//! Layouts: `x`, the output and their gradients are batch-major as burn holds them (`x` is
//! `[batch, seq, d_in]`; the output `[batch, seq, h]`, then the last cell state `[batch, h]` for
//! an LSTM), so a step's `[batch, ·]` slice is a matrix with a row stride of `seq` rows.
//! Everything the kernel keeps for itself is step-major: position `(b, t)` reached at step `k`
//! is row `k · batch + b`, so that the rows a step writes are contiguous.

mod backward;
mod forward;

pub(crate) use backward::backward;
pub(crate) use forward::forward;

use std::ops::Range;

use super::super::RecurrentKind;
use super::packed::{Blocked, NR};
use super::real::{Buf, Real};
use super::team::Shared;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub(crate) kind: RecurrentKind,
    pub(crate) batch: usize,
    pub(crate) seq: usize,
    pub(crate) d_input: usize,
    pub(crate) hidden: usize,
    pub(crate) reverse: bool,
    /// Threads in the team (at most one per hidden unit are used).
    pub(crate) threads: usize,
}

impl Dims {
    pub(crate) fn width(&self) -> usize {
        self.kind.n_gates() * self.hidden
    }

    /// Rows of the output: `batch · seq` hidden states, then (LSTM) `batch` cell states.
    pub(crate) fn out_rows(&self) -> usize {
        self.batch * self.seq + if self.kind == RecurrentKind::Lstm { self.batch } else { 0 }
    }

    /// Positions in the batch, `batch · seq`: the rows of the kernel's own buffers.
    fn rows(&self) -> usize {
        self.batch * self.seq
    }

    /// The time index of the `k`-th step taken.
    fn time(&self, k: usize) -> usize {
        if self.reverse { self.seq - 1 - k } else { k }
    }

    /// Values saved per unit and position for the backward pass: LSTM `i, f, g, o, tanh c,
    /// c_prev`; GRU `r, z, n, W_hn h + b_hn, h_prev`; RNN `h`.
    fn saved_blocks(&self) -> usize {
        match self.kind {
            RecurrentKind::Lstm => 6,
            RecurrentKind::Gru => 5,
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => 1,
        }
    }

    /// Where saved block `q` of sequence `b` at step `k` starts, for the member that owns
    /// `units`. A step's values are grouped by member, so that each member reads its own as
    /// one stream in the backward loop (`hu` values per block, blocks of a sequence together).
    fn saved_at(&self, k: usize, b: usize, q: usize, units: &Range<usize>) -> usize {
        let s = self.saved_blocks();
        k * self.batch * s * self.hidden + units.start * self.batch * s + (b * s + q) * units.len()
    }

    /// Members of the team and the alignment of their shares of the hidden units.
    fn team(&self) -> (usize, usize) {
        let threads = self.threads.clamp(1, self.hidden.max(1));
        let align = if self.hidden >= NR * threads { NR } else { 1 };
        (threads, align)
    }
}

/// The weights of one run, in the layout of [`RecurrentCell`](super::super::RecurrentCell):
/// `w_ih` `[d_in, G·h]`, `w_hh` `[h, G·h]`, biases `[G·h]`.
#[derive(Clone, Copy)]
pub(crate) struct Weights<'a, T> {
    pub(crate) w_ih: &'a [T],
    pub(crate) b_ih: &'a [T],
    pub(crate) w_hh: &'a [T],
    pub(crate) b_hh: &'a [T],
}

/// What the forward pass keeps for the backward pass, all step-major.
#[derive(Clone, Debug)]
pub(crate) struct Saved<T: Real> {
    /// `[rows, d_in]`: the input in strips (`Blocked<MR>`), the left operand of `dW_ih`.
    x: Buf<T>,
    /// `[rows, h]`: the hidden state each position started from, in strips, the left operand
    /// of `dW_hh`.
    hp: Buf<T>,
    /// `[rows, saved_blocks · h]`, arranged as [`Dims::saved_at`] says.
    acts: Buf<T>,
}

/// Writes `values` as row `r`, columns `j0..`, of a `[k, ·]` matrix in `Blocked<W>` layout.
///
/// # Safety
/// Nothing else reads or writes those elements meanwhile.
#[inline(always)]
unsafe fn write_blocked<T: Copy, const W: usize>(
    dst: &Shared<T>,
    k: usize,
    r: usize,
    j0: usize,
    values: &[T],
) {
    let mut j = j0;
    let mut rest = values;
    while !rest.is_empty() {
        // Up to the end of the panel that column j lies in.
        let run = (W - j % W).min(rest.len());
        let at = Blocked::<T, W>::offset(k, r, j);
        // SAFETY: the caller's promise; a run stays inside one panel's row.
        let out = unsafe { dst.part_mut(at, run) };
        if run == W {
            // A whole panel row: a fixed-size copy the compiler inlines (a call to memcpy per
            // few values cost more than the copy).
            let out: &mut [T; W] = out.try_into().expect("a panel row has W values");
            *out = rest[..W].try_into().expect("W values");
        } else {
            for (o, &v) in out.iter_mut().zip(rest) {
                *o = v;
            }
        }
        j += run;
        rest = &rest[run..];
    }
}
