//! Tests of the KV cache and the streaming causal self-attention layer.

use burn::tensor::{Int, Tensor};
use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};
use engram_tensor::{SequenceMemory, StreamingMemory, check_streaming, padding_mask};

use super::*;
use crate::mha::{MhaInput, MultiHeadAttentionConfig};
use crate::test_util::{tensor, tensor4};

fn layer(window: Option<usize>, n_kv_heads: usize) -> CausalSelfAttention {
    let attention = MultiHeadAttentionConfig::new(8, 2)
        .with_n_kv_heads(Some(n_kv_heads))
        .with_dropout(0.0)
        .with_rope_theta(Some(10000.0));
    CausalSelfAttentionConfig::new(attention).with_window(window).init(&test_device())
}

fn ints(x: Tensor<1, Int>) -> Vec<i64> {
    x.into_data().iter::<i64>().collect()
}

#[test]
fn streaming_contract_holds_with_padded_batches() {
    let (input, _) = tensor::<3>(21, [4, 6, 8]);
    for n_kv_heads in [2, 1] {
        let report = check_streaming(
            &layer(None, n_kv_heads),
            input.clone(),
            &[6, 1, 4, 3],
            None,
            Tolerance::F32,
        );
        report.assert_ok();
    }
}

#[test]
fn streaming_contract_holds_with_a_sliding_window() {
    let (input, _) = tensor::<3>(22, [4, 6, 8]);
    check_streaming(&layer(Some(2), 2), input, &[6, 1, 4, 3], None, Tolerance::F32).assert_ok();
}

#[test]
fn encoding_matches_causal_multi_head_attention() {
    let layer = layer(None, 1);
    let (input, _) = tensor::<3>(23, [2, 5, 8]);
    let expected = layer.attention.forward(MhaInput::self_attention(input.clone()).causal());
    let got = layer.encode(input, None);
    assert_close(got.output, &to_f64(expected.output), Tolerance::F32);
    assert_eq!(got.state.len_slots(), 5);
    assert_eq!(got.state.lengths(), [5, 5]);
}

#[test]
fn window_matches_masked_attention_and_evicts() {
    let layer = layer(Some(3), 2);
    let (input, _) = tensor::<3>(24, [1, 6, 8]);
    let expected =
        layer.attention.forward(MhaInput::self_attention(input.clone()).causal().with_window(3));
    let got = layer.encode(input, None);
    assert_close(got.output, &to_f64(expected.output), Tolerance::F32);
    // The next token (position 6) sees positions 4 and 5 and itself: slots 0..4 are gone.
    assert_eq!(got.state.len_slots(), 2);
}

#[test]
fn padded_positions_do_not_advance_lengths() {
    let layer = layer(None, 2);
    let (input, _) = tensor::<3>(25, [2, 3, 8]);
    let padding = padding_mask(&[3, 1], 3, &test_device());
    let state = layer.encode(input, Some(padding)).state;
    assert_eq!(state.lengths(), [3, 1]);
    assert_eq!(ints(state.next_positions(2).reshape([4])), [3, 4, 1, 2]);
}

#[test]
fn truncate_and_reset_rewind_the_cache() {
    let layer = layer(None, 2);
    let (input, _) = tensor::<3>(26, [2, 4, 8]);
    let padding = padding_mask(&[4, 2], 4, &test_device());
    let state = layer.encode(input.clone(), Some(padding)).state;
    let truncated = state.clone().truncate(3);
    assert_eq!(truncated.len_slots(), 3);
    assert_eq!(truncated.lengths(), [3, 2]);
    // Continuing after truncation to the first 2 slots equals encoding the first 2 tokens.
    let prefix = layer.encode(input.clone().narrow(1, 0, 2), None).state;
    let next = input.narrow(1, 2, 1).squeeze_dim::<2>(1);
    let a = layer.step(next.clone(), None, Some(state.clone().truncate(2))).output;
    let b = layer.step(next, None, Some(prefix)).output;
    assert_close(a, &to_f64(b), Tolerance::F32);
    let reset = state.reset();
    assert_eq!(reset.len_slots(), 0);
    assert_eq!(reset.lengths(), [0, 0]);
}

#[test]
fn detach_keeps_values() {
    let layer = layer(None, 2);
    let (input, _) = tensor::<3>(27, [1, 2, 8]);
    let state = layer.encode(input, None).state;
    let detached = state.clone().detach();
    let keys = |c: &KvCache| to_f64(c.slots().map(|s| s.keys).expect("slots"));
    assert_eq!(keys(&state), keys(&detached));
}

#[test]
#[should_panic(expected = "KvCache: window must be at least 1, got 0")]
fn panics_on_empty_cache_window() {
    KvCache::new(1, Some(0), &test_device());
}

#[test]
#[should_panic(expected = "CausalSelfAttention: window must be at least 1, got 0")]
fn panics_on_empty_layer_window() {
    let attention = MultiHeadAttentionConfig::new(8, 2);
    CausalSelfAttentionConfig::new(attention).with_window(Some(0)).init(&test_device());
}

#[test]
#[should_panic(expected = "KvCache::truncate: 3 slots requested, 2 held")]
fn panics_when_truncating_beyond_the_cache() {
    let (input, _) = tensor::<3>(28, [1, 2, 8]);
    layer(None, 2).encode(input, None).state.truncate(3);
}

#[test]
#[should_panic(expected = "KvCache::append: batch 2 differs from the cache's 1")]
fn panics_on_batch_mismatch() {
    let (k, _) = tensor4(1, [2, 1, 1, 4]);
    let cache = KvCache::new(1, None, &test_device());
    let positions = Tensor::<2, Int>::zeros([2, 1], &test_device());
    cache.append(k.clone(), k, None, positions);
}

#[test]
#[should_panic(
    expected = "KvCache::append: values shape [1, 1, 2, 4] differs from keys shape [1, 1, 1, 4]"
)]
fn panics_on_values_of_other_shape() {
    let (k, _) = tensor4(1, [1, 1, 1, 4]);
    let (v, _) = tensor4(2, [1, 1, 2, 4]);
    let positions = Tensor::<2, Int>::zeros([1, 1], &test_device());
    KvCache::new(1, None, &test_device()).append(k, v, None, positions);
}

#[test]
#[should_panic(
    expected = "KvCache::append: keys of 2 heads × 4 do not fit cached keys of 1 heads × 4"
)]
fn panics_on_head_mismatch() {
    let device = test_device();
    let (k1, _) = tensor4(1, [1, 1, 1, 4]);
    let (k2, _) = tensor4(2, [1, 2, 1, 4]);
    let cache = KvCache::new(1, None, &device);
    let positions = cache.next_positions(1);
    let cache = cache.append(k1.clone(), k1, None, positions);
    let positions = cache.next_positions(1);
    cache.append(k2.clone(), k2, None, positions);
}

#[test]
#[should_panic(expected = "CausalSelfAttention: padding shape [2, 3] is not [batch 2, s 2]")]
fn panics_on_padding_of_wrong_shape() {
    let (input, _) = tensor::<3>(29, [2, 2, 8]);
    layer(None, 2).encode(input, Some(padding_mask(&[3, 3], 3, &test_device())));
}

#[test]
#[should_panic(expected = "KvCache::append: positions shape [1, 2] are not [batch 1, s 1]")]
fn panics_on_positions_of_wrong_shape() {
    let (k, _) = tensor4(1, [1, 1, 1, 4]);
    let positions = Tensor::<2, Int>::zeros([1, 2], &test_device());
    KvCache::new(1, None, &test_device()).append(k.clone(), k, None, positions);
}

#[test]
#[should_panic(expected = "KvCache::append: padding shape [1, 2] is not [batch 1, s 1]")]
fn panics_on_append_padding_of_wrong_shape() {
    let device = test_device();
    let (k, _) = tensor4(1, [1, 1, 1, 4]);
    let cache = KvCache::new(1, None, &device);
    let positions = cache.next_positions(1);
    cache.append(k.clone(), k, Some(padding_mask(&[2], 2, &device)), positions);
}

#[test]
fn eviction_keeps_slots_a_shorter_row_still_needs() {
    // Row 1 stops after 1 token; with window 2 its next token (position 1) still needs slot 0.
    let layer = layer(Some(2), 2);
    let (input, _) = tensor::<3>(30, [2, 4, 8]);
    let state = layer.encode(input.clone(), Some(padding_mask(&[4, 1], 4, &test_device()))).state;
    assert_eq!(state.len_slots(), 4);
    let state = layer.encode(input, None).state;
    assert_eq!(state.len_slots(), 1);
}

fn alibi_layer(window: Option<usize>) -> CausalSelfAttention {
    let attention = MultiHeadAttentionConfig::new(12, 3).with_dropout(0.0);
    CausalSelfAttentionConfig::new(attention)
        .with_window(window)
        .with_alibi(true)
        .init(&test_device())
}

#[test]
fn alibi_streaming_contract_holds_with_padded_batches() {
    let (input, _) = tensor::<3>(25, [4, 6, 12]);
    for window in [None, Some(3)] {
        let layer = alibi_layer(window);
        check_streaming(&layer, input.clone(), &[6, 1, 4, 3], None, Tolerance::F32).assert_ok();
    }
}

#[test]
fn alibi_encoding_matches_attention_with_the_papers_bias() {
    let layer = alibi_layer(None);
    let (input, _) = tensor::<3>(26, [2, 5, 12]);
    let bias = crate::alibi_bias(3, 5, 5, 0, &test_device());
    let expected =
        layer.attention.forward(MhaInput::self_attention(input.clone()).causal().with_bias(bias));
    let got = layer.encode(input.clone(), None).output;
    assert_close(got.clone(), &to_f64(expected.output), Tolerance::F32);
    // And the bias matters: without it the output differs.
    let plain = layer.attention.forward(MhaInput::self_attention(input).causal()).output;
    let gap = to_f64(got).iter().zip(to_f64(plain)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(gap > 1e-3, "ALiBi changed nothing (max gap {gap})");
}

/// Steps `input` (`[batch, seq, d]`) one position at a time from `state`, returning every
/// step's output (`[batch, seq, d]`), the final state and the capacity after each step.
fn step_through(
    layer: &CausalSelfAttention,
    input: Tensor<3>,
    state: Option<KvCache>,
) -> (Tensor<3>, KvCache, Vec<usize>) {
    let [batch, seq, d] = input.dims();
    let mut state = state.unwrap_or_else(|| layer.empty_cache(batch, &test_device()));
    let mut outputs = Vec::with_capacity(seq);
    let mut capacities = Vec::with_capacity(seq);
    for i in 0..seq {
        let token = input.clone().narrow(1, i, 1).reshape([batch, d]);
        let stepped = layer.step(token, None, Some(state));
        outputs.push(stepped.output.reshape([batch, 1, d]));
        state = stepped.state;
        capacities.push(state.capacity());
    }
    (Tensor::cat(outputs, 1), state, capacities)
}

#[test]
fn capacity_grows_geometrically_and_steps_match_the_full_forward() {
    let layer = layer(None, 1);
    let (input, _) = tensor::<3>(40, [2, 70, 8]);
    let expected = layer.encode(input.clone(), None).output;
    let (got, state, capacities) = step_through(&layer, input, None);
    assert_close(got, &to_f64(expected), Tolerance::F32);
    assert_eq!(state.len_slots(), 70);
    assert_eq!(state.lengths(), [70, 70]);
    // Each reallocation at least doubles the slots held, so 70 steps reallocate a handful of
    // times, not 70.
    let mut grown: Vec<usize> = capacities.clone();
    grown.dedup();
    assert!(grown.len() <= 8, "capacities {grown:?}");
    for (i, &c) in capacities.iter().enumerate() {
        assert!(c > i, "capacity {c} after {} steps", i + 1);
    }
}

#[test]
fn truncate_after_growth_continues_like_the_prefix() {
    let layer = layer(None, 2);
    let (input, _) = tensor::<3>(41, [2, 41, 8]);
    let (_, state, _) = step_through(&layer, input.clone().narrow(1, 0, 40), None);
    let capacity = state.capacity();
    let truncated = state.truncate(25);
    assert_eq!(truncated.capacity(), capacity);
    assert_eq!(truncated.len_slots(), 25);
    assert_eq!(truncated.lengths(), [25, 25]);
    // Writing over the truncated slots gives what a fresh cache of the first 25 tokens gives.
    let tail = input.clone().narrow(1, 25, 16);
    let (a, _, _) = step_through(&layer, tail.clone(), Some(truncated));
    let prefix = layer.encode(input.narrow(1, 0, 25), None).state;
    let (b, _, _) = step_through(&layer, tail, Some(prefix));
    assert_close(a, &to_f64(b), Tolerance::F32);
}

#[test]
fn reserve_allocates_once() {
    let layer = layer(None, 2);
    let (input, _) = tensor::<3>(42, [1, 30, 8]);
    let state = layer.empty_cache(1, &test_device()).reserve(30);
    let (_, state, capacities) = step_through(&layer, input, Some(state));
    assert!(capacities.iter().all(|&c| c == 30), "capacities {capacities:?}");
    assert_eq!(state.reset().capacity(), 30);
}

#[test]
fn a_windowed_cache_stays_bounded() {
    let layer = layer(Some(4), 2);
    let (input, _) = tensor::<3>(43, [2, 120, 8]);
    let padding = padding_mask(&[120, 120], 120, &test_device());
    let expected = layer.encode(input.clone(), Some(padding)).output;
    let (got, state, capacities) = step_through(&layer, input, None);
    assert_close(got, &to_f64(expected), Tolerance::F32);
    assert_eq!(state.len_slots(), 3);
    assert!(capacities.iter().all(|&c| c <= 16), "capacities {capacities:?}");
}

#[test]
fn clones_do_not_share_written_slots() {
    let layer = layer(None, 2);
    let (input, _) = tensor::<3>(44, [1, 6, 8]);
    let state = layer.encode(input.clone().narrow(1, 0, 4), None).state;
    let (x, y) = (input.clone().narrow(1, 4, 1), input.clone().narrow(1, 5, 1));
    let a = layer.encode_from(x.clone(), None, Some(state.clone())).state;
    let b = layer.encode_from(y, None, Some(state.clone())).state;
    // Stepping `b` wrote its own slot 4: `a` still holds x's key there, as a fresh run does.
    let keys = |c: &KvCache| to_f64(c.slots().map(|s| s.keys).expect("slots"));
    let fresh = layer.encode(Tensor::cat(vec![input.narrow(1, 0, 4), x], 1), None).state;
    assert_close(a.slots().map(|s| s.keys).expect("slots"), &keys(&fresh), Tolerance::F32);
    assert_ne!(keys(&a), keys(&b));
    assert_eq!(state.len_slots(), 4);
}
