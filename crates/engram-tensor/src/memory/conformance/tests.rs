//! Two toy mechanisms, one shaped like an RNN (a hidden state) and one like attention (a growing
//! cache of what was read), each in a correct and a broken variant: the correct ones must pass
//! the check, the broken ones must fail it.

use burn::tensor::{Bool, Distribution, Tensor};

use crate::mask::padding_mask;
use crate::memory::{Encoded, MemoryState, SequenceMemory, StreamingMemory, check_streaming};
use crate::testing::{Tolerance, test_device};

/// `h_t = decay · h_{t-1} + (1 - decay) · x_t`, output `h_t`.
struct Ema {
    decay: f64,
    /// Broken variant: padded positions update the state.
    leaks: bool,
}

#[derive(Clone)]
struct EmaState {
    hidden: Tensor<2>,
}

impl MemoryState for EmaState {
    fn detach(self) -> Self {
        EmaState { hidden: self.hidden.detach() }
    }
}

impl SequenceMemory for Ema {
    type State = EmaState;

    fn d_output(&self) -> usize {
        3
    }

    fn encode(&self, input: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Encoded<EmaState> {
        self.encode_from(input, padding, None)
    }
}

impl StreamingMemory for Ema {
    fn encode_from(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<EmaState>,
    ) -> Encoded<EmaState> {
        let [batch, seq, d] = input.dims();
        let padding = padding.unwrap_or_else(|| no_padding(batch, seq));
        let mut h = state.map_or_else(|| Tensor::zeros([batch, d], &input.device()), |s| s.hidden);
        let mut outputs = Vec::new();
        for t in 0..seq {
            let x = input.clone().narrow(1, t, 1).squeeze_dim::<2>(1);
            let pad = padding.clone().narrow(1, t, 1).expand([batch, d]);
            let next = h.clone().mul_scalar(self.decay) + x.mul_scalar(1.0 - self.decay);
            h = if self.leaks { next } else { next.mask_where(pad.clone(), h) };
            outputs.push(h.clone().mask_fill(pad, 0.0));
        }
        Encoded { output: Tensor::stack(outputs, 1), state: EmaState { hidden: h } }
    }
}

/// Output at each position: the mean of every real input read so far (a cache that grows like
/// attention's keys and values).
struct CacheMean {
    /// Broken variant: padded inputs are stored as if they were real.
    stores_padding: bool,
}

#[derive(Clone)]
struct CacheState {
    /// `[batch, len, d]` everything stored so far.
    values: Tensor<3>,
    /// `[batch, len]`, `true` where the stored entry is real.
    real: Tensor<2, Bool>,
}

impl MemoryState for CacheState {
    fn detach(self) -> Self {
        CacheState { values: self.values.detach(), real: self.real }
    }
}

impl SequenceMemory for CacheMean {
    type State = CacheState;

    fn d_output(&self) -> usize {
        3
    }

    fn encode(&self, input: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Encoded<CacheState> {
        self.encode_from(input, padding, None)
    }
}

impl StreamingMemory for CacheMean {
    fn encode_from(
        &self,
        input: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        state: Option<CacheState>,
    ) -> Encoded<CacheState> {
        let [batch, seq, d] = input.dims();
        let device = input.device();
        let padding = padding.unwrap_or_else(|| no_padding(batch, seq));
        let real_new = if self.stores_padding {
            padding.clone().bool_or(padding.clone().bool_not())
        } else {
            padding.clone().bool_not()
        };
        let (values, real) = match state {
            Some(s) => {
                (Tensor::cat(vec![s.values, input], 1), Tensor::cat(vec![s.real, real_new], 1))
            }
            None => (input, real_new),
        };
        let total = values.dims()[1];
        let old = total - seq;
        // weights[b, i, j] = 1 when entry j is real and not after new position i.
        let visible = Tensor::<2, Bool>::tril_mask([seq, total], old as i64, &device).bool_not();
        let weights = real
            .clone()
            .unsqueeze_dim::<3>(1)
            .expand([batch, seq, total])
            .bool_and(visible.unsqueeze_dim::<3>(0).expand([batch, seq, total]))
            .float();
        let count = weights.clone().sum_dim(2).clamp_min(1.0);
        let output = weights.matmul(values.clone()) / count;
        let output = output.mask_fill(padding.unsqueeze_dim::<3>(2).expand([batch, seq, d]), 0.0);
        Encoded { output, state: CacheState { values, real } }
    }
}

fn no_padding(batch: usize, seq: usize) -> Tensor<2, Bool> {
    padding_mask(&vec![seq; batch], seq, &test_device())
}

fn input() -> Tensor<3> {
    let device = test_device();
    let _ = crate::seed_everything(&device, 11);
    Tensor::random([4, 6, 3], Distribution::Normal(0.0, 1.0), &device)
}

const LENGTHS: [usize; 4] = [6, 1, 4, 3];

#[test]
fn a_correct_recurrent_memory_passes() {
    let report =
        check_streaming(&Ema { decay: 0.7, leaks: false }, input(), &LENGTHS, None, Tolerance::F32);
    report.assert_ok();
    assert_eq!(report.checks.len(), 11, "{report}");
}

#[test]
fn a_recurrent_memory_that_leaks_padding_fails() {
    let report =
        check_streaming(&Ema { decay: 0.7, leaks: true }, input(), &LENGTHS, None, Tolerance::F32);
    assert!(!report.is_ok(), "{report}");
    let failed: Vec<&str> =
        report.checks.iter().filter(|(_, c)| !c.is_ok()).map(|(n, _)| n.as_str()).collect();
    assert!(failed.iter().any(|n| n.contains("garbage")), "{failed:?}");
}

#[test]
fn a_correct_cache_memory_passes_from_a_given_state() {
    let memory = CacheMean { stores_padding: false };
    let start = memory.encode(input().narrow(1, 0, 2), None).state;
    check_streaming(&memory, input(), &LENGTHS, Some(start), Tolerance::F32).assert_ok();
}

#[test]
fn a_cache_memory_that_stores_padding_fails() {
    let report = check_streaming(
        &CacheMean { stores_padding: true },
        input(),
        &LENGTHS,
        None,
        Tolerance::F32,
    );
    assert!(!report.is_ok(), "{report}");
}

#[test]
fn length_one_sequences_are_checked() {
    let x = input().narrow(1, 0, 1);
    check_streaming(&Ema { decay: 0.5, leaks: false }, x, &[1, 1, 1, 1], None, Tolerance::F32)
        .assert_ok();
}

#[test]
#[should_panic(expected = "check_streaming: 2 lengths for a batch of 4")]
fn lengths_must_match_the_batch() {
    let _ =
        check_streaming(&Ema { decay: 0.5, leaks: false }, input(), &[1, 2], None, Tolerance::F32);
}
