//! The conformance check of the streaming contract, for mechanisms' own tests.

use std::fmt;

use burn::tensor::{Bool, Tensor};

use super::{Encoded, StreamingMemory};
use crate::mask::padding_mask;
use crate::testing::{Comparison, Tolerance, compare, to_f64};

/// The outcome of [`check_streaming`]: one named comparison per property.
#[derive(Clone, Debug)]
pub struct ConformanceReport {
    /// `(what was checked, how it compared)`.
    pub checks: Vec<(String, Comparison)>,
}

impl ConformanceReport {
    /// True when every check passed.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|(_, c)| c.is_ok())
    }

    /// Panics listing the failed checks unless all passed.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "memory contract violated:\n{self}");
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, c) in &self.checks {
            let verdict = if c.is_ok() { "ok  " } else { "FAIL" };
            writeln!(f, "{verdict} {name}: {c}")?;
        }
        Ok(())
    }
}

/// Checks that `memory` keeps the streaming contract on `input` with per-sequence `lengths`,
/// starting every run from `initial` (`None`: a fresh state).
///
/// The reference is one [`encode_from`](StreamingMemory::encode_from) over the whole padded batch.
/// Against it the check compares:
/// 1. outputs at padded positions, which must be zero;
/// 2. stepping position by position with [`step`](StreamingMemory::step);
/// 3. encoding in two chunks carrying the state, split after 1, `seq / 2` and `seq - 1`
///    positions;
/// 4. the same batch with garbage written into its padded positions (padding must not leak);
/// 5. the final state of each of these runs, compared by what it does: one more unpadded
///    step from it must give the same output as a step from the reference's final state.
///
/// Use lengths that differ, include one shorter than `seq`, and include 1.
///
/// # Panics
/// If `lengths.len()` is not the batch size, a length exceeds `seq`, or the output's width is
/// not [`d_output`](super::SequenceMemory::d_output).
pub fn check_streaming<M: StreamingMemory>(
    memory: &M,
    input: Tensor<3>,
    lengths: &[usize],
    initial: Option<M::State>,
    tolerance: Tolerance,
) -> ConformanceReport {
    let [batch, seq, d_input] = input.dims();
    assert_eq!(
        lengths.len(),
        batch,
        "check_streaming: {} lengths for a batch of {batch}",
        lengths.len()
    );
    let device = input.device();
    let padding = padding_mask(lengths, seq, &device);
    let reference = memory.encode_from(input.clone(), Some(padding.clone()), initial.clone());
    let expected = to_f64(reference.output.clone());
    let out_shape = reference.output.dims().to_vec();
    assert_eq!(
        out_shape[2],
        memory.d_output(),
        "check_streaming: the output has width {} but d_output() says {}",
        out_shape[2],
        memory.d_output()
    );
    let mut checks = Vec::new();
    let mut states = Vec::new();

    // 1. Zero outputs at padding.
    let d_output = out_shape[2];
    let at_padding =
        reference.output.clone().mask_fill(expand(padding.clone(), d_output).bool_not(), 0.0);
    checks.push((
        "outputs at padded positions are zero".to_owned(),
        compare(&to_f64(at_padding), &vec![0.0; expected.len()], &out_shape, tolerance),
    ));

    // 2. Step by step.
    let mut state = initial.clone();
    let mut outputs = Vec::with_capacity(seq);
    for t in 0..seq {
        let x = input.clone().narrow(1, t, 1).squeeze_dim::<2>(1);
        let pad = padding.clone().narrow(1, t, 1).squeeze_dim::<1>(1);
        let stepped = memory.step(x, Some(pad), state);
        outputs.push(stepped.output);
        state = Some(stepped.state);
    }
    let stepped = Tensor::stack::<3>(outputs, 1);
    checks.push((
        "stepping position by position matches the full encoding".to_owned(),
        compare(&to_f64(stepped), &expected, &out_shape, tolerance),
    ));
    states.push(("stepping".to_owned(), state.expect("seq > 0 steps were taken")));

    // 3. Two chunks.
    let mut splits = vec![1, seq / 2, seq.saturating_sub(1)];
    splits.retain(|&k| k > 0 && k < seq);
    splits.dedup();
    for k in splits {
        let first = memory.encode_from(
            input.clone().narrow(1, 0, k),
            Some(padding.clone().narrow(1, 0, k)),
            initial.clone(),
        );
        let second = memory.encode_from(
            input.clone().narrow(1, k, seq - k),
            Some(padding.clone().narrow(1, k, seq - k)),
            Some(first.state),
        );
        let joined = Tensor::cat(vec![first.output, second.output], 1);
        checks.push((
            format!("two chunks split after {k} match the full encoding"),
            compare(&to_f64(joined), &expected, &out_shape, tolerance),
        ));
        states.push((format!("chunks split after {k}"), second.state));
    }

    // 4. Garbage in the padding.
    let garbage = input.clone().mul_scalar(-7.0).add_scalar(100.0);
    let polluted = input.clone().mask_where(expand(padding.clone(), d_input), garbage);
    let Encoded { output, state } = memory.encode_from(polluted, Some(padding), initial);
    checks.push((
        "garbage at padded positions changes no output".to_owned(),
        compare(&to_f64(output), &expected, &out_shape, tolerance),
    ));
    states.push(("garbage in the padding".to_owned(), state));

    // 5. Final states, compared by one more step.
    let probe = input.narrow(1, 0, 1).squeeze_dim::<2>(1);
    let expected_probe = to_f64(memory.step(probe.clone(), None, Some(reference.state)).output);
    for (name, state) in states {
        let got = memory.step(probe.clone(), None, Some(state)).output;
        let shape = got.dims().to_vec();
        checks.push((
            format!("final state after {name} continues like the full encoding's"),
            compare(&to_f64(got), &expected_probe, &shape, tolerance),
        ));
    }

    ConformanceReport { checks }
}

/// `[batch, seq]` mask to `[batch, seq, width]`.
fn expand(mask: Tensor<2, Bool>, width: usize) -> Tensor<3, Bool> {
    let [batch, seq] = mask.dims();
    mask.unsqueeze_dim::<3>(2).expand([batch, seq, width])
}

#[cfg(test)]
mod tests;
