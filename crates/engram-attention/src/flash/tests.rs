//! Memory-efficient attention against the explicit path: values, gradients, masks, blocks.

use burn::tensor::Tensor;
use engram_tensor::padding_mask;
use engram_tensor::testing::{Tolerance, assert_close, check_gradient, test_device, to_f64};

use super::*;
use crate::sdpa::{AttentionOptions, AttentionPath, attention};
use crate::test_util::tensor4;

/// Masks exercised on `tk` keys of a batch of 2 (the second row has 2 padded keys).
fn masks(tk: usize) -> Vec<(&'static str, AttentionMask)> {
    let device = test_device();
    let padding = padding_mask(&[tk, tk - 2], tk, &device);
    vec![
        ("none", AttentionMask::none()),
        ("causal", AttentionMask::causal(0)),
        ("causal offset 3 + padding", AttentionMask::causal(3).with_key_padding(padding.clone())),
        ("causal window 4", AttentionMask::causal(0).with_window(4)),
        ("padding", AttentionMask::none().with_key_padding(padding)),
    ]
}

fn explicit(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: &AttentionMask) -> Tensor<4> {
    let options = AttentionOptions { path: AttentionPath::Explicit, ..Default::default() };
    attention(q, k, v, mask, None, options).output
}

/// Blocks that do not divide the lengths, so every tile kind (hidden, partial, visible) and a
/// ragged last block occur.
const BLOCKS: FlashBlocks = FlashBlocks { queries: 3, keys: 4 };

#[test]
fn matches_the_explicit_path_for_every_mask() {
    let (tq, tk) = (7, 10);
    let (q, _) = tensor4(1, [2, 4, tq, 8]);
    let (k, _) = tensor4(2, [2, 2, tk, 8]);
    let (v, _) = tensor4(3, [2, 2, tk, 5]);
    for (name, mask) in masks(tk) {
        let expected = to_f64(explicit(q.clone(), k.clone(), v.clone(), &mask));
        for blocks in [BLOCKS, FlashBlocks::default()] {
            let got =
                memory_efficient_attention(q.clone(), k.clone(), v.clone(), &mask, None, blocks);
            assert_eq!(got.dims(), [2, 4, tq, 5], "{name}");
            assert_close(got, &expected, Tolerance::F32);
        }
    }
}

#[test]
fn queries_that_see_no_key_give_zeros() {
    // Every key of the second row is padding: its queries see nothing.
    let device = test_device();
    let (q, _) = tensor4(4, [2, 1, 5, 4]);
    let (k, _) = tensor4(5, [2, 1, 5, 4]);
    let (v, _) = tensor4(6, [2, 1, 5, 4]);
    let mask = AttentionMask::causal(0).with_key_padding(padding_mask(&[5, 0], 5, &device));
    let got = memory_efficient_attention(q.clone(), k.clone(), v.clone(), &mask, None, BLOCKS);
    let values = to_f64(got.clone());
    assert!(values[20..].iter().all(|&x| x == 0.0), "{values:?}");
    assert_close(got, &to_f64(explicit(q, k, v, &mask)), Tolerance::F32);
}

#[test]
fn gradients_match_the_explicit_path() {
    let device = test_device().autodiff();
    let (tq, tk) = (9, 9);
    let to_ad = |x: Tensor<4>| Tensor::<4>::from_data(x.to_data(), &device).require_grad();
    let (q, _) = tensor4(7, [2, 4, tq, 8]);
    let (k, _) = tensor4(8, [2, 2, tk, 8]);
    let (v, _) = tensor4(9, [2, 2, tk, 8]);
    let (probe, _) = tensor4(10, [2, 4, tq, 8]);
    let probe = Tensor::<4>::from_data(probe.to_data(), &device);
    for (name, mask) in masks(tk) {
        let grads = |flash: bool| {
            let (q, k, v) = (to_ad(q.clone()), to_ad(k.clone()), to_ad(v.clone()));
            let out = if flash {
                memory_efficient_attention(q.clone(), k.clone(), v.clone(), &mask, None, BLOCKS)
            } else {
                explicit(q.clone(), k.clone(), v.clone(), &mask)
            };
            let g = (out * probe.clone()).sum().backward();
            [q, k, v].map(|x| to_f64(x.grad(&g).expect("a gradient")))
        };
        let (got, expected) = (grads(true), grads(false));
        for (got, expected) in got.iter().zip(&expected) {
            let worst = got.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "{name}: gradients differ by {worst}");
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let (q, _) = tensor4(11, [1, 2, 5, 3]);
    let (k, _) = tensor4(12, [1, 1, 6, 3]);
    let (v, _) = tensor4(13, [1, 1, 6, 2]);
    let (probe, _) = tensor4(14, [1, 2, 5, 2]);
    let f = |x: &[Tensor<4>]| {
        let device = x[0].device();
        let mask = AttentionMask::causal(1).with_window(3).with_key_padding(padding_mask(
            &[5],
            6,
            &device,
        ));
        let blocks = FlashBlocks { queries: 2, keys: 4 };
        let out = memory_efficient_attention(
            x[0].clone(),
            x[1].clone(),
            x[2].clone(),
            &mask,
            Some(0.7),
            blocks,
        );
        let probe = Tensor::<4>::from_data(probe.to_data(), (&device, out.dtype()));
        (out * probe).sum()
    };
    check_gradient(f, &[q, k, v]).assert_ok();
}

#[test]
fn auto_path_trains_through_the_memory_efficient_kernel() {
    // On an autodiff device without bias, dropout or weights, `attention` picks this path.
    let device = test_device().autodiff();
    let (q, _) = tensor4(15, [1, 2, 6, 4]);
    let q = Tensor::<4>::from_data(q.to_data(), &device);
    let mask = AttentionMask::causal(0);
    let auto = attention(q.clone(), q.clone(), q.clone(), &mask, None, Default::default());
    let flash =
        memory_efficient_attention(q.clone(), q.clone(), q, &mask, None, FlashBlocks::default());
    assert_close(auto.output, &to_f64(flash), Tolerance::F32);
}

#[test]
#[should_panic(expected = "memory_efficient_attention: per-row positions are not supported")]
fn panics_on_per_row_positions() {
    let device = test_device();
    let (q, _) = tensor4(1, [1, 1, 2, 4]);
    let positions = crate::Positions::PerRow {
        query: Tensor::zeros([1, 2], &device),
        key: Tensor::zeros([1, 2], &device),
    };
    let mask = AttentionMask::causal(0).with_positions(positions);
    memory_efficient_attention(q.clone(), q.clone(), q, &mask, None, FlashBlocks::default());
}

#[test]
#[should_panic(
    expected = "memory_efficient_attention: block sizes must be positive, got FlashBlocks { \
                queries: 0, keys: 4 }"
)]
fn panics_on_empty_blocks() {
    let (q, _) = tensor4(1, [1, 1, 2, 4]);
    let blocks = FlashBlocks { queries: 0, keys: 4 };
    memory_efficient_attention(q.clone(), q.clone(), q, &AttentionMask::none(), None, blocks);
}

#[test]
#[should_panic(
    expected = "memory_efficient_attention: n_heads 3 is not a multiple of n_kv_heads 2"
)]
fn panics_on_ungroupable_heads() {
    let (q, _) = tensor4(1, [1, 3, 2, 4]);
    let (k, _) = tensor4(2, [1, 2, 2, 4]);
    memory_efficient_attention(q, k.clone(), k, &AttentionMask::none(), None, BLOCKS);
}
