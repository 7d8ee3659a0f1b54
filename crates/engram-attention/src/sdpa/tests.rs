//! Tests of scaled dot-product attention against an f64 reference written with plain loops.

use burn::tensor::{Int, Tensor, TensorData};
use engram_tensor::padding_mask;
use engram_tensor::testing::{Tolerance, assert_close, check_gradient, test_device, to_f64};

use super::*;
use crate::test_util::tensor4;

/// Shapes of a test case: batch, query heads, key/value heads, queries, keys, head width.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    hkv: usize,
    tq: usize,
    tk: usize,
    d: usize,
}

/// f64 reference: `out[b,h,i] = Σ_j softmax_j(q·k·scale + bias)[visible] v[b,h/g,j]`, zeros for
/// a query that sees nothing. Returns `(output, weights)`.
fn reference(
    dims: Dims,
    q: &[f64],
    k: &[f64],
    v: &[f64],
    bias: Option<&dyn Fn(usize, usize, usize, usize) -> f64>,
    visible: &dyn Fn(usize, usize, usize) -> bool,
) -> (Vec<f64>, Vec<f64>) {
    let Dims { b: nb, h: nh, hkv, tq, tk, d } = dims;
    let g = nh / hkv;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0; nb * nh * tq * d];
    let mut weights = vec![0.0; nb * nh * tq * tk];
    for b in 0..nb {
        for h in 0..nh {
            let kh = h / g;
            for i in 0..tq {
                let qi = &q[((b * nh + h) * tq + i) * d..][..d];
                let mut scores = vec![f64::NEG_INFINITY; tk];
                for (j, score) in scores.iter_mut().enumerate() {
                    if visible(b, i, j) {
                        let kj = &k[((b * hkv + kh) * tk + j) * d..][..d];
                        let dot: f64 = qi.iter().zip(kj).map(|(a, c)| a * c).sum();
                        *score = dot * scale + bias.map_or(0.0, |f| f(b, h, i, j));
                    }
                }
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if max == f64::NEG_INFINITY {
                    continue;
                }
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for j in 0..tk {
                    let w = exps[j] / total;
                    weights[((b * nh + h) * tq + i) * tk + j] = w;
                    let vj = &v[((b * hkv + kh) * tk + j) * d..][..d];
                    for c in 0..d {
                        out[((b * nh + h) * tq + i) * d + c] += w * vj[c];
                    }
                }
            }
        }
    }
    (out, weights)
}

const DIMS: Dims = Dims { b: 2, h: 4, hkv: 2, tq: 3, tk: 6, d: 4 };
const LENGTHS: [usize; 2] = [6, 4];
const OFFSET: usize = 3;
const WINDOW: usize = 3;

fn qkv(dims: Dims) -> [(Tensor<4>, Vec<f64>); 3] {
    let Dims { b, h, hkv, tq, tk, d } = dims;
    [tensor4(1, [b, h, tq, d]), tensor4(2, [b, hkv, tk, d]), tensor4(3, [b, hkv, tk, d])]
}

fn full_mask() -> AttentionMask {
    AttentionMask::causal(OFFSET).with_window(WINDOW).with_key_padding(padding_mask(
        &LENGTHS,
        DIMS.tk,
        &test_device(),
    ))
}

fn full_visible(b: usize, i: usize, j: usize) -> bool {
    j < LENGTHS[b] && j <= OFFSET + i && j + WINDOW > OFFSET + i
}

fn run(
    mask: &AttentionMask,
    bias: Option<Tensor<4>>,
    options: AttentionOptions,
) -> AttentionOutput {
    let [(q, _), (k, _), (v, _)] = qkv(DIMS);
    attention(q, k, v, mask, bias, options)
}

fn explicit() -> AttentionOptions {
    AttentionOptions { path: AttentionPath::Explicit, need_weights: true, ..Default::default() }
}

fn fused() -> AttentionOptions {
    AttentionOptions { path: AttentionPath::Fused, ..Default::default() }
}

#[test]
fn shapes_with_grouped_heads() {
    let out = run(&AttentionMask::none(), None, explicit());
    assert_eq!(out.output.dims(), [2, 4, 3, 4]);
    assert_eq!(out.weights.map(|w| w.dims()), Some([2, 4, 3, 6]));
    assert!(run(&AttentionMask::none(), None, AttentionOptions::default()).weights.is_none());
}

#[test]
fn unmasked_matches_f64_reference() {
    let [(_, q), (_, k), (_, v)] = qkv(DIMS);
    let (expected, weights) = reference(DIMS, &q, &k, &v, None, &|_, _, _| true);
    let out = run(&AttentionMask::none(), None, explicit());
    assert_close(out.output, &expected, Tolerance::F32);
    assert_close(out.weights.expect("requested"), &weights, Tolerance::F32);
    let out = run(&AttentionMask::none(), None, fused());
    assert_close(out.output, &expected, Tolerance::F32);
}

#[test]
fn padding_causal_window_and_bias_match_f64_reference_on_both_paths() {
    let [(_, q), (_, k), (_, v)] = qkv(DIMS);
    // A bias that broadcasts over the batch: [1, h, tq, tk].
    let (bias, bias_values) = tensor4(4, [1, DIMS.h, DIMS.tq, DIMS.tk]);
    let bias_fn =
        |_b: usize, h: usize, i: usize, j: usize| bias_values[(h * DIMS.tq + i) * DIMS.tk + j];
    let (expected, weights) = reference(DIMS, &q, &k, &v, Some(&bias_fn), &full_visible);
    let out = run(&full_mask(), Some(bias.clone()), explicit());
    assert_close(out.output, &expected, Tolerance::F32);
    assert_close(out.weights.expect("requested"), &weights, Tolerance::F32);
    let out = run(&full_mask(), Some(bias), fused());
    assert_close(out.output, &expected, Tolerance::F32);
}

#[test]
fn per_row_positions_match_f64_reference() {
    // Row 0: keys at positions 0..6, queries at 3, 4, 5. Row 1: a cache with a padded slot at
    // 2 (position repeated), queries at 2, 3, 4.
    let device = test_device();
    let key_pos = [[0, 1, 2, 3, 4, 5], [0, 1, 1, 2, 3, 4]];
    let query_pos = [[3, 4, 5], [2, 3, 4]];
    let padding = Tensor::<2, Bool>::from_data(
        TensorData::new(
            vec![false, false, false, false, false, false, false, false, true, false, false, false],
            [2, 6],
        ),
        &device,
    );
    let mask = AttentionMask::none().with_causal(true).with_window(2).with_key_padding(padding);
    let mask = mask.with_positions(Positions::PerRow {
        query: Tensor::<2, Int>::from_data(query_pos, &device),
        key: Tensor::<2, Int>::from_data(key_pos, &device),
    });
    let visible = |b: usize, i: usize, j: usize| {
        let (kp, qp) = (key_pos[b][j], query_pos[b][i]);
        !(b == 1 && j == 2) && kp <= qp && kp + 2 > qp
    };
    let [(_, q), (_, k), (_, v)] = qkv(DIMS);
    let (expected, _) = reference(DIMS, &q, &k, &v, None, &visible);
    assert_close(run(&mask, None, explicit()).output, &expected, Tolerance::F32);
    assert_close(run(&mask, None, fused()).output, &expected, Tolerance::F32);
}

#[test]
fn fully_masked_queries_give_zeros_on_both_paths() {
    // Row 1 is all padding; with causal offset 0 and no cached keys, nothing else is dead.
    let mask =
        AttentionMask::causal(0).with_key_padding(padding_mask(&[6, 0], DIMS.tk, &test_device()));
    let [(_, q), (_, k), (_, v)] = qkv(DIMS);
    let (expected, _) = reference(DIMS, &q, &k, &v, None, &|b, i, j| b == 0 && j <= i);
    for options in [explicit(), fused(), AttentionOptions::default()] {
        let out = to_f64(run(&mask, None, options).output);
        assert!(out.iter().all(|x| x.is_finite()), "{:?}: NaN in {out:?}", options.path);
        let shape = [2, 4, 3, 4];
        engram_tensor::testing::compare(&out, &expected, &shape, Tolerance::F32).assert_ok();
    }
}

#[test]
fn gradients_match_finite_differences_on_both_paths() {
    let dims = Dims { b: 1, h: 2, hkv: 1, tq: 2, tk: 3, d: 2 };
    let [(q, _), (k, _), (v, _)] = qkv(dims);
    let (bias, _) = tensor4(5, [1, 2, 2, 3]);
    let (probe, _) = tensor4(6, [1, 2, 2, 2]);
    for path in [AttentionPath::Explicit, AttentionPath::Fused] {
        let f = |x: &[Tensor<4>]| {
            let device = x[0].device();
            // Key 2 is padding; causal with offset 1, so query 0 sees keys 0, 1.
            let mask = AttentionMask::causal(1).with_key_padding(padding_mask(&[2], 3, &device));
            let options = AttentionOptions { path, ..Default::default() };
            let out = attention(
                x[0].clone(),
                x[1].clone(),
                x[2].clone(),
                &mask,
                Some(x[3].clone()),
                options,
            );
            let probe = Tensor::<4>::from_data(probe.to_data(), (&device, out.output.dtype()));
            (out.output * probe).sum()
        };
        check_gradient(f, &[q.clone(), k.clone(), v.clone(), bias.clone()]).assert_ok();
    }
}

#[test]
fn dropout_applies_only_on_autodiff_devices() {
    let options = AttentionOptions { dropout: 0.5, need_weights: true, ..Default::default() };
    let plain = run(&AttentionMask::none(), None, options).weights.expect("requested");
    let sums = to_f64(plain.sum_dim(3));
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");

    let device = test_device().autodiff();
    device.seed(7);
    let [(q, _), (k, _), (v, _)] = qkv(DIMS);
    let to_ad = |x: Tensor<4>| Tensor::<4>::from_data(x.to_data(), &device);
    let out = attention(to_ad(q), to_ad(k), to_ad(v), &AttentionMask::none(), None, options);
    let weights = to_f64(out.weights.expect("requested"));
    let zeros = weights.iter().filter(|&&w| w == 0.0).count();
    assert!(zeros > 0 && zeros < weights.len(), "{zeros} of {} dropped", weights.len());
}

#[test]
#[should_panic(expected = "attention: n_heads 3 is not a multiple of n_kv_heads 2")]
fn panics_on_ungrouped_heads() {
    let (q, _) = tensor4(1, [1, 3, 2, 4]);
    let (k, _) = tensor4(2, [1, 2, 2, 4]);
    attention(q, k.clone(), k, &AttentionMask::none(), None, Default::default());
}

#[test]
#[should_panic(expected = "attention: bias shape [1, 4, 2, 6] does not broadcast to [2, 4, 3, 6]")]
fn panics_on_bias_that_does_not_broadcast() {
    let (bias, _) = tensor4(1, [1, 4, 2, 6]);
    run(&AttentionMask::none(), Some(bias), Default::default());
}

#[test]
#[should_panic(
    expected = "attention: key shape [2, 2, 6, 4] does not fit query shape [2, 4, 3, 5]"
)]
fn panics_on_key_width_mismatch() {
    let (q, _) = tensor4(1, [2, 4, 3, 5]);
    let [_, (k, _), (v, _)] = qkv(DIMS);
    attention(q, k, v, &AttentionMask::none(), None, Default::default());
}

#[test]
#[should_panic(
    expected = "attention: value shape [2, 2, 5, 4] does not fit key shape [2, 2, 6, 4]"
)]
fn panics_on_value_length_mismatch() {
    let [(q, _), (k, _), _] = qkv(DIMS);
    let (v, _) = tensor4(3, [2, 2, 5, 4]);
    attention(q, k, v, &AttentionMask::none(), None, Default::default());
}

#[test]
#[should_panic(expected = "attention: dropout 1 is outside [0, 1)")]
fn panics_on_dropout_of_one() {
    run(&AttentionMask::none(), None, AttentionOptions { dropout: 1.0, ..Default::default() });
}

#[test]
#[should_panic(expected = "attention: the fused path cannot return weights")]
fn panics_when_fused_path_is_forced_with_weights() {
    let options = AttentionOptions { need_weights: true, ..fused() };
    run(&AttentionMask::none(), None, options);
}

#[test]
#[should_panic(expected = "AttentionMask: window must be at least 1, got 0")]
fn panics_on_empty_window() {
    let _ = AttentionMask::causal(0).with_window(0);
}

#[test]
#[should_panic(expected = "AttentionMask: key padding shape [2, 5] is not [batch 2, tk 6]")]
fn panics_on_key_padding_of_wrong_length() {
    let mask = AttentionMask::none().with_key_padding(padding_mask(&[5, 5], 5, &test_device()));
    run(&mask, None, Default::default());
}

#[test]
#[should_panic(expected = "AttentionMask: query positions shape [2, 2] are not [batch 2, tq 3]")]
fn panics_on_positions_of_wrong_shape() {
    let device = test_device();
    let mask = AttentionMask::causal(0).with_positions(Positions::PerRow {
        query: Tensor::<2, Int>::zeros([2, 2], &device),
        key: Tensor::<2, Int>::zeros([2, 6], &device),
    });
    run(&mask, None, Default::default());
}

/// burn's fused op on its own, without engram's zeroing: what it gives for a query whose keys
/// are all masked. Kept as a measurement for the architecture doc (flex and burn's fallback
/// give zeros); the assertion only asks for finite output so that GPU backends report rather
/// than fail here. `attention` zeroes those rows itself either way.
#[test]
fn burn_fused_op_on_fully_masked_rows_is_finite() {
    let device = test_device();
    let (q, _) = tensor4(1, [1, 1, 2, 4]);
    let (k, _) = tensor4(2, [1, 1, 3, 4]);
    let mask = Tensor::<4, Bool>::from_data(
        TensorData::new(vec![true, true, true, false, true, false], [1, 1, 2, 3]),
        &device,
    );
    let out = to_f64(fused_attention(
        q,
        k.clone(),
        k,
        Some(mask),
        None,
        AttentionModuleOptions::default(),
    ));
    eprintln!("burn fused attention, fully masked row 0: {:?}", &out[..4]);
    assert!(out.iter().all(|x| x.is_finite()), "{out:?}");
}

#[test]
#[should_panic(expected = "AttentionMask: key positions shape [2, 5] are not [batch 2, tk 6]")]
fn panics_on_key_positions_of_wrong_shape() {
    let device = test_device();
    let mask = AttentionMask::causal(0).with_positions(Positions::PerRow {
        query: Tensor::<2, Int>::zeros([2, 3], &device),
        key: Tensor::<2, Int>::zeros([2, 5], &device),
    });
    run(&mask, None, Default::default());
}
