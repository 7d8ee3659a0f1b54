//! Tests of multi-head attention: shapes, agreement with burn-nn's layer, masks, panics.

use burn::nn::attention::{MhaInput as BurnInput, MultiHeadAttentionConfig as BurnConfig};
use engram_tensor::padding_mask;
use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

use super::*;
use crate::test_util::{copy_mha, tensor};

fn config() -> MultiHeadAttentionConfig {
    MultiHeadAttentionConfig::new(8, 2).with_dropout(0.0)
}

#[test]
fn shapes_of_self_and_cross_attention() {
    let device = test_device();
    let mha = config().with_n_kv_heads(Some(1)).init(&device);
    assert_eq!(mha.qkv.weight.dims(), [8, (2 + 2) * 4]);
    let (x, _) = tensor::<3>(1, [2, 3, 8]);
    let (ctx, _) = tensor::<3>(2, [2, 5, 8]);
    let out = mha.forward(MhaInput::self_attention(x.clone()).with_weights());
    assert_eq!(out.output.dims(), [2, 3, 8]);
    assert_eq!(out.weights.map(|w| w.dims()), Some([2, 2, 3, 3]));
    let out = mha.forward(MhaInput::cross_attention(x, ctx).with_weights());
    assert_eq!(out.output.dims(), [2, 3, 8]);
    assert_eq!(out.weights.map(|w| w.dims()), Some([2, 2, 3, 5]));
}

/// Builds burn-nn's layer and ours with the same weights.
fn both(bias: bool) -> (burn::nn::attention::MultiHeadAttention, MultiHeadAttention) {
    let device = test_device();
    let burn = BurnConfig::new(8, 2)
        .with_dropout(0.0)
        .with_query_bias(bias)
        .with_key_bias(bias)
        .with_value_bias(bias)
        .with_output_bias(bias)
        .init(&device);
    let ours = copy_mha(&burn, config().with_bias(bias).init(&device));
    (burn, ours)
}

#[test]
fn self_attention_matches_burn_nn_with_copied_weights() {
    for bias in [true, false] {
        let (burn, ours) = both(bias);
        let (x, _) = tensor::<3>(3, [2, 4, 8]);
        let expected = burn.forward(BurnInput::self_attn(x.clone()));
        let got = ours.forward(MhaInput::self_attention(x).with_weights());
        assert_close(got.output, &to_f64(expected.context), Tolerance::F32);
        let weights = got.weights.expect("requested");
        assert_close(weights, &to_f64(expected.weights), Tolerance::F32);
    }
}

/// Training (autodiff device, where the projections are three products on column blocks of
/// the fused weight): output and the gradients of the input and of every weight and bias
/// against burn-nn's layer with the same weights.
#[test]
fn self_attention_trains_as_burn_nn_does() {
    let device = test_device().autodiff();
    let burn = BurnConfig::new(8, 2).with_dropout(0.0).init(&device);
    let ours = copy_mha(&burn, config().init(&device));
    let (x, _) = tensor::<3>(6, [2, 5, 8]);
    let x = Tensor::<3>::from_data(x.to_data(), &device).require_grad();
    let (w, _) = tensor::<3>(7, [2, 5, 8]);
    let w = Tensor::<3>::from_data(w.to_data(), &device);
    let expected = burn.forward(BurnInput::self_attn(x.clone())).context;
    let got = ours.forward(MhaInput::self_attention(x.clone())).output;
    assert_close(got.clone(), &to_f64(expected.clone()), Tolerance::F32);
    let (g_burn, g_ours) = ((expected * w.clone()).sum().backward(), (got * w).sum().backward());
    let grad = |t: Tensor<2>, g| to_f64(t.grad(g).expect("a gradient"));
    let tolerance = Tolerance::new(1e-4, 1e-4);
    assert_close(x.grad(&g_ours).unwrap(), &to_f64(x.grad(&g_burn).unwrap()), tolerance);
    let theirs = [&burn.query, &burn.key, &burn.value].map(|l| grad(l.weight.val(), &g_burn));
    let theirs: Vec<f64> = (0..8)
        .flat_map(|row| theirs.iter().flat_map(move |w| w[row * 8..(row + 1) * 8].to_vec()))
        .collect();
    assert_close(ours.qkv.weight.val().grad(&g_ours).unwrap(), &theirs, tolerance);
    let theirs: Vec<f64> = [&burn.query, &burn.key, &burn.value]
        .iter()
        .flat_map(|l| to_f64(l.bias.as_ref().unwrap().val().grad(&g_burn).unwrap()))
        .collect();
    assert_close(ours.qkv.bias.as_ref().unwrap().val().grad(&g_ours).unwrap(), &theirs, tolerance);
    let out = grad(burn.output.weight.val(), &g_burn);
    assert_close(ours.output.weight.val().grad(&g_ours).unwrap(), &out, tolerance);
}

#[test]
fn cross_attention_with_padding_matches_burn_nn() {
    // burn-nn fills padded scores with -1e4, whose weight underflows to exactly 0 in f32 next to
    // real scores of order 1, so both compute the same thing on rows with some real key.
    let (burn, ours) = both(true);
    let (x, _) = tensor::<3>(4, [2, 3, 8]);
    let (ctx, _) = tensor::<3>(5, [2, 5, 8]);
    let padding = padding_mask(&[5, 2], 5, &test_device());
    let expected =
        burn.forward(BurnInput::new(x.clone(), ctx.clone(), ctx.clone()).mask_pad(padding.clone()));
    let got = ours.forward(MhaInput::cross_attention(x, ctx).with_key_padding(padding));
    assert_close(got.output, &to_f64(expected.context), Tolerance::F32);
}

#[test]
fn causal_self_attention_ignores_the_future() {
    let device = test_device();
    let mha = config().with_n_kv_heads(Some(1)).with_rope_theta(Some(10000.0)).init(&device);
    let (x, _) = tensor::<3>(6, [1, 4, 8]);
    let full = mha.forward(MhaInput::self_attention(x.clone()).causal()).output;
    let prefix = mha.forward(MhaInput::self_attention(x.narrow(1, 0, 2)).causal()).output;
    assert_close(full.narrow(1, 0, 2), &to_f64(prefix), Tolerance::F32);
}

#[test]
fn weights_are_materialised_only_on_request() {
    let mha = config().init(&test_device());
    let (x, _) = tensor::<3>(7, [1, 2, 8]);
    assert!(mha.forward(MhaInput::self_attention(x)).weights.is_none());
}

#[test]
#[should_panic(expected = "MultiHeadAttention: d_model 10 is not divisible by n_heads 3")]
fn panics_when_heads_do_not_divide_d_model() {
    MultiHeadAttentionConfig::new(10, 3).init(&test_device());
}

#[test]
#[should_panic(expected = "MultiHeadAttention: n_heads 4 is not divisible by n_kv_heads 3")]
fn panics_when_kv_heads_do_not_divide_heads() {
    MultiHeadAttentionConfig::new(8, 4).with_n_kv_heads(Some(3)).init(&test_device());
}

#[test]
#[should_panic(expected = "MultiHeadAttention: query width 6 is not d_model 8")]
fn panics_on_wrong_input_width() {
    let (x, _) = tensor::<3>(1, [1, 2, 6]);
    config().init(&test_device()).forward(MhaInput::self_attention(x));
}

#[test]
#[should_panic(expected = "MultiHeadAttention: context batch 1 differs from query batch 2")]
fn panics_on_context_batch_mismatch() {
    let (x, _) = tensor::<3>(1, [2, 2, 8]);
    let (ctx, _) = tensor::<3>(2, [1, 2, 8]);
    config().init(&test_device()).forward(MhaInput::cross_attention(x, ctx));
}

#[test]
#[should_panic(expected = "RotaryEncoding: d_head 3 must be even and positive")]
fn panics_on_rope_with_odd_heads() {
    MultiHeadAttentionConfig::new(6, 2).with_rope_theta(Some(10000.0)).init(&test_device());
}
