//! The memory contract: what every sequence-memory mechanism in engram implements.
//!
//! A mechanism reads a batch of right-padded sequences and produces one output per position plus
//! a *state*: whatever it must keep to go on (an RNN's hidden state, a transformer's KV cache,
//! the slots of an external memory). Mechanisms that can run left to right also *stream*: they
//! continue from a state, one chunk or one position at a time, and must give exactly what a
//! single pass over the whole sequence gives. [`check_streaming`] verifies that promise and is
//! what each mechanism's tests call.
//!
//! Conventions shared by every implementation:
//! - inputs are `[batch, seq, d_input]`, outputs `[batch, seq, d_output]`;
//! - padding masks are `[batch, seq]`, `true` at padded positions, and sequences are
//!   right-padded (a sequence that ended in an earlier chunk is all padding in later ones);
//! - outputs at padded positions are zero, and padded positions leave the state unchanged, so
//!   the final state of each sequence is the state after its own last real position.

mod conformance;

pub use conformance::{ConformanceReport, check_streaming};

use burn::tensor::{Bool, Tensor};

/// State carried between chunks or steps of a [`StreamingMemory`].
pub trait MemoryState: Clone {
    /// The same state with the autodiff graph cut, for truncated backpropagation through time.
    fn detach(self) -> Self;
}

/// The result of encoding a chunk of sequences.
#[derive(Clone, Debug)]
pub struct Encoded<S> {
    /// One output per position, `[batch, seq, d_output]`; zero at padded positions.
    pub output: Tensor<3>,
    /// The state after each sequence's last real position.
    pub state: S,
}

/// The result of one step.
#[derive(Clone, Debug)]
pub struct Stepped<S> {
    /// The output at this position, `[batch, d_output]`; zero for padded rows.
    pub output: Tensor<2>,
    /// The state after this position (unchanged for padded rows).
    pub state: S,
}

/// A mechanism that encodes whole batches of sequences: every memory in engram, including the
/// ones that look in both directions (bidirectional RNNs, transformer encoders).
pub trait SequenceMemory {
    /// What the mechanism keeps after reading a sequence.
    type State: MemoryState;

    /// Width of each output position.
    fn d_output(&self) -> usize;

    /// Encodes a batch of right-padded sequences from a fresh state.
    ///
    /// # Shapes
    /// - `input`: `[batch, seq, d_input]`; `padding`: `[batch, seq]`, `true` at padding;
    /// - output: `[batch, seq, d_output]`, zero at padded positions.
    fn encode(&self, input: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Encoded<Self::State>;
}

/// A causal mechanism that can continue from a state: a chunk at a time with
/// [`encode_from`](StreamingMemory::encode_from), or a position at a time with
/// [`step`](StreamingMemory::step).
///
/// Contract (checked by [`check_streaming`]): for any split of a batch into chunks, encoding the
/// chunks one after the other while carrying the state gives the same outputs and final state as
/// encoding the whole batch at once; so does stepping position by position; and padded
/// positions change nothing.
pub trait StreamingMemory: SequenceMemory {
    /// Encodes a chunk, continuing from `state` (`None`: a fresh state). Mechanisms that need
    /// context to start (a decoder's cross-attention keys) document how to build their first state
    /// and panic on `None`.
    ///
    /// # Shapes
    /// As [`SequenceMemory::encode`].
    fn encode_from(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<Self::State>,
    ) -> Encoded<Self::State>;

    /// Advances one position. The default encodes a chunk of length 1; mechanisms override it
    /// when a step can be cheaper.
    ///
    /// # Shapes
    /// - `input`: `[batch, d_input]`; `padding`: `[batch]`, `true` for rows that are past their
    ///   end; output: `[batch, d_output]`.
    fn step(
        &self,
        input: Tensor<2>,
        padding: Option<Tensor<1, Bool>>,
        state: Option<Self::State>,
    ) -> Stepped<Self::State> {
        let Encoded { output, state } =
            self.encode_from(input.unsqueeze_dim(1), padding.map(|p| p.unsqueeze_dim(1)), state);
        Stepped { output: output.squeeze_dim(1), state }
    }
}
