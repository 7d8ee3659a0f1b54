//! Memory-efficient attention against the explicit path: values, gradients, masks, blocks.

use burn::tensor::Tensor;
use engram_tensor::testing::{Tolerance, assert_close, check_gradient, test_device, to_f64};
use engram_tensor::{DropMask, padding_mask};

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

/// The largest absolute difference between two sets of values.
fn largest_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "values of different lengths");
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
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
            let worst = largest_difference(got, expected);
            assert!(worst < 1e-4, "{name}: gradients differ by {worst}");
        }
    }
}

/// Sizes at which flex's host kernel runs several tiles, ragged ones among them: head widths
/// 32 and 64, tq ≠ tk with a query offset, batch × heads above a 2-core machine's threads,
/// inputs and upstream gradients that are strided views.
#[test]
fn matches_the_explicit_path_across_tiles() {
    let device = test_device().autodiff();
    let padding = padding_mask(&[150, 97], 150, &device);
    let runs = [
        ("full, d 32", 70, 70, 32, AttentionMask::none()),
        ("causal offset + padding, d 64", 83, 150, 64, {
            AttentionMask::causal(67).with_key_padding(padding.clone())
        }),
        ("window + padding, d 32", 150, 150, 32, {
            AttentionMask::causal(0).with_window(40).with_key_padding(padding)
        }),
    ];
    for (name, tq, tk, d, mask) in runs {
        // Heads split off `[batch, t, heads · d]` and swapped to the front, as in multi-head
        // attention: views that flex's host kernel reads in place.
        let data = |seed, t| tensor4(seed, [2, t, 3, d]).0.to_data();
        let (q, k, v) = (data(31, tq), data(32, tk), data(33, tk));
        let probe = Tensor::<4>::from_data(data(34, tq), &device).swap_dims(1, 2);
        let run = |flash: bool| {
            let leaves = [&q, &k, &v].map(|x| Tensor::<4>::from_data(x.clone(), &device));
            let leaves = leaves.map(Tensor::require_grad);
            let [q, k, v] = leaves.clone().map(|x| x.swap_dims(1, 2));
            let q = q * 3.0;
            let out = if flash {
                memory_efficient_attention(q, k, v, &mask, None, BLOCKS)
            } else {
                explicit(q, k, v, &mask)
            };
            let values = to_f64(out.clone());
            let g = (out * probe.clone()).sum().backward();
            let [dq, dk, dv] = leaves.map(|x| to_f64(x.grad(&g).expect("a gradient")));
            [values, dq, dk, dv]
        };
        let (got, expected) = (run(true), run(false));
        for ((got, expected), what) in got.iter().zip(&expected).zip(["output", "dq", "dk", "dv"]) {
            let worst = largest_difference(got, expected);
            assert!(worst < 1e-4, "{name}: {what} differs by {worst}");
        }
    }
}

/// Dropout inside the kernel is the explicit path's weights times the mask
/// [`engram_tensor::dropout_with`] draws from the same seed: output and gradients.
#[test]
fn dropout_matches_the_explicit_weights_times_the_mask() {
    let device = test_device().autodiff();
    let (tq, tk) = (37, 45);
    let to_ad = |x: Tensor<4>| Tensor::<4>::from_data(x.to_data(), &device).require_grad();
    let (q, _) = tensor4(41, [2, 3, tq, 8]);
    let (k, _) = tensor4(42, [2, 3, tk, 8]);
    let (v, _) = tensor4(43, [2, 3, tk, 6]);
    let (probe, _) = tensor4(44, [2, 3, tq, 6]);
    let probe = Tensor::<4>::from_data(probe.to_data(), &device);
    let drop = DropMask::new(17, 0.3);
    let weights_mask = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(drop.values(2 * 3 * tq * tk), [2, 3, tq, tk]),
        &device,
    );
    for (name, mask) in masks(tk) {
        let run = |flash: bool| {
            let (q, k, v) = (to_ad(q.clone()), to_ad(k.clone()), to_ad(v.clone()));
            let out = if flash {
                blocked(q.clone(), k.clone(), v.clone(), &mask, None, BLOCKS, Some(drop))
            } else {
                let options = AttentionOptions {
                    path: AttentionPath::Explicit,
                    need_weights: true,
                    ..Default::default()
                };
                let weights = attention(q.clone(), k.clone(), v.clone(), &mask, None, options);
                (weights.weights.expect("weights") * weights_mask.clone()).matmul(v.clone())
            };
            let values = to_f64(out.clone());
            let g = (out * probe.clone()).sum().backward();
            let [dq, dk, dv] = [q, k, v].map(|x| to_f64(x.grad(&g).expect("a gradient")));
            [values, dq, dk, dv]
        };
        let (got, expected) = (run(true), run(false));
        for ((got, expected), what) in got.iter().zip(&expected).zip(["output", "dq", "dk", "dv"]) {
            let worst = largest_difference(got, expected);
            assert!(worst < 1e-4, "{name}: {what} differs by {worst}");
        }
        // Some weights were dropped: the result differs from attention without dropout.
        let plain = to_f64(memory_efficient_attention(
            q.clone(),
            k.clone(),
            v.clone(),
            &mask,
            None,
            BLOCKS,
        ));
        let moved = largest_difference(&got[0], &plain);
        assert!(moved > 1e-2, "{name}: dropout changed the output by only {moved}");
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

/// The host kernel (flex, f32) against the composed path on the same flex tensors, and its
/// portable loops against its AVX2 ones.
#[cfg(feature = "flex")]
mod host_kernel {
    use burn::backend::Flex;
    use burn::backend::flex::{FlexTensor, Layout};
    use burn::tensor::{BoolStore, Bytes, DType, Shape};
    use engram_tensor::testing::seeded_values;

    use super::super::host::{self, Dims, Strided};
    use super::super::kernel::{self, FlashSpec, NEG};
    use super::super::simd::Isa;

    /// Inputs of one case: `[batch, heads, t, width]` row-major buffers.
    struct Case {
        dims: Dims,
        q: Vec<f32>,
        k: Vec<f32>,
        v: Vec<f32>,
        /// `[batch, tk]`, 1 at padded keys.
        padding: Vec<u8>,
        spec: FlashSpec,
        /// Upstream gradient of the output.
        grad: Vec<f32>,
    }

    fn values(seed: u64, n: usize, scale: f64) -> Vec<f32> {
        seeded_values(seed, n).into_iter().map(|x| (x * scale) as f32).collect()
    }

    /// `live[b]` unpadded keys in batch row `b`.
    fn case(dims: Dims, live: &[usize], spec: FlashSpec, seed: u64) -> Case {
        let Dims { batch, heads, tq, tk, d, dv } = dims;
        let padding = (0..batch * tk).map(|x| u8::from(x % tk >= live[x / tk])).collect();
        Case {
            dims,
            // Large enough scores that the weights are far from uniform.
            q: values(seed, batch * heads * tq * d, 3.0),
            k: values(seed + 1, batch * heads * tk * d, 1.0),
            v: values(seed + 2, batch * heads * tk * dv, 1.0),
            padding,
            spec,
            grad: values(seed + 3, batch * heads * tq * dv, 1.0),
        }
    }

    fn spec(causal: bool, window: Option<usize>, query_offset: usize, d: usize) -> FlashSpec {
        let scale = 1.0 / (d as f64).sqrt();
        FlashSpec { scale, causal, window, query_offset, block_q: 16, block_k: 24, dropout: None }
    }

    /// `spec` with dropout `prob` under `seed`.
    fn dropping(spec: FlashSpec, seed: u64, prob: f64) -> FlashSpec {
        FlashSpec { dropout: Some(engram_tensor::DropMask::new(seed, prob)), ..spec }
    }

    /// Full, causal, window, padding and rows that see no key, with head widths 32 and 64,
    /// lengths that are not multiples of the tiles, tq ≠ tk, and batch × heads above the
    /// threads of a 2-core machine.
    fn cases() -> Vec<(&'static str, Case)> {
        let dims = |tq, tk, d, dv| Dims { batch: 2, heads: 3, tq, tk, d, dv };
        vec![
            ("full", case(dims(70, 70, 32, 32), &[70, 70], spec(false, None, 0, 32), 1)),
            ("causal", case(dims(131, 131, 64, 64), &[131, 131], spec(true, None, 0, 64), 5)),
            (
                "causal offset, tq < tk, padding",
                case(dims(37, 150, 32, 32), &[150, 141], spec(true, None, 113, 32), 9),
            ),
            (
                "causal window",
                case(dims(100, 100, 32, 16), &[100, 100], spec(true, Some(20), 0, 32), 13),
            ),
            ("padding", case(dims(65, 129, 64, 32), &[129, 3], spec(false, None, 0, 64), 17)),
            (
                // Batch row 1 is all padding; in row 0 (keys from 50 padded) the window of 5
                // keys of queries from 54 on holds only padding.
                "rows that see no key",
                case(dims(80, 80, 32, 32), &[50, 0], spec(true, Some(5), 0, 32), 21),
            ),
            ("narrow heads", case(dims(9, 11, 5, 3), &[11, 7], spec(true, None, 2, 5), 25)),
            (
                "causal, dropout",
                case(
                    dims(131, 131, 64, 64),
                    &[131, 131],
                    dropping(spec(true, None, 0, 64), 3, 0.3),
                    29,
                ),
            ),
            (
                // An odd number of keys: rows of the mask start at odd indices.
                "padding, dropout",
                case(
                    dims(65, 129, 64, 32),
                    &[129, 3],
                    dropping(spec(false, None, 0, 64), 4, 0.5),
                    33,
                ),
            ),
        ]
    }

    fn flex(values: &[f32], shape: [usize; 4]) -> FlexTensor {
        let layout = Layout::contiguous(Shape::new(shape));
        FlexTensor::new(Bytes::from_elems(values.to_vec()), layout, DType::F32)
    }

    fn read(t: FlexTensor) -> Vec<f32> {
        t.to_contiguous().as_slice::<f32>().expect("f32 values").to_vec()
    }

    /// The composed path's output, logsumexp and gradients on flex tensors.
    fn composed(c: &Case) -> [Vec<f32>; 5] {
        let Dims { batch, heads, tq, tk, d, dv } = c.dims;
        let q = flex(&c.q, [batch, heads, tq, d]);
        let k = flex(&c.k, [batch, heads, tk, d]);
        let v = flex(&c.v, [batch, heads, tk, dv]);
        let padding = FlexTensor::new(
            Bytes::from_elems(c.padding.clone()),
            Layout::contiguous(Shape::new([batch, 1, 1, tk])),
            DType::Bool(BoolStore::Native),
        );
        let grad = flex(&c.grad, [batch, heads, tq, dv]);
        let (out, lse) =
            kernel::forward::<Flex>(q.clone(), k.clone(), v.clone(), padding.clone(), &c.spec);
        let [dq, dk, dv] =
            kernel::backward::<Flex>(q, k, v, padding, out.clone(), lse.clone(), grad, &c.spec);
        [read(out), read(lse), read(dq), read(dk), read(dv)]
    }

    fn hosted(c: &Case, isa: Isa) -> [Vec<f32>; 5] {
        let Dims { heads, tq, tk, d, dv, .. } = c.dims;
        let q = Strided::contiguous(&c.q, [heads, tq, d]);
        let k = Strided::contiguous(&c.k, [heads, tk, d]);
        let v = Strided::contiguous(&c.v, [heads, tk, dv]);
        let (out, lse) = host::forward(isa, q, k, v, &c.padding, c.dims, &c.spec, false);
        let o = Strided::contiguous(&out, [heads, tq, dv]);
        let g = Strided::contiguous(&c.grad, [heads, tq, dv]);
        let [dq, dk, dv] =
            host::backward(isa, q, k, v, &c.padding, o, &lse, g, c.dims, &c.spec, [false; 3]);
        [out, lse, dq, dk, dv]
    }

    /// Largest absolute difference, with logsumexps of rows that see no key (about [`NEG`])
    /// counted as equal.
    fn worst(got: &[f32], expected: &[f32]) -> f64 {
        assert_eq!(got.len(), expected.len());
        let dead = (NEG / 2.0) as f32;
        got.iter()
            .zip(expected)
            .map(|(&a, &b)| if a < dead && b < dead { 0.0 } else { f64::from((a - b).abs()) })
            .fold(0.0, f64::max)
    }

    const NAMES: [&str; 5] = ["output", "logsumexp", "dq", "dk", "dv"];

    #[test]
    fn matches_the_composed_path() {
        for (name, c) in cases() {
            let (got, expected) = (hosted(&c, Isa::detect()), composed(&c));
            for ((got, expected), what) in got.iter().zip(&expected).zip(NAMES) {
                let worst = worst(got, expected);
                assert!(worst < 2e-5, "{name}: {what} differs by {worst}");
            }
        }
    }

    #[test]
    fn portable_loops_match_the_vector_ones() {
        for (name, c) in cases() {
            let (got, expected) = (hosted(&c, Isa::portable()), hosted(&c, Isa::detect()));
            for ((got, expected), what) in got.iter().zip(&expected).zip(NAMES) {
                let worst = worst(got, expected);
                assert!(worst < 2e-5, "{name}: {what} differs by {worst}");
            }
        }
    }

    #[test]
    fn rows_that_see_no_key_are_zero_with_zero_gradients() {
        let (_, c) = cases().swap_remove(5);
        let [out, lse, dq, ..] = hosted(&c, Isa::detect());
        let Dims { heads, tq, d, dv, .. } = c.dims;
        let dead = (NEG / 2.0) as f32;
        for h in 0..2 * heads {
            for i in 0..tq {
                let row = h * tq + i;
                if h < heads && i < 54 {
                    assert!(lse[row] > dead, "row {row}: logsumexp {}", lse[row]);
                    continue;
                }
                assert!(lse[row] < dead, "row {row}: logsumexp {}", lse[row]);
                assert!(out[row * dv..(row + 1) * dv].iter().all(|&x| x == 0.0));
                assert!(dq[row * d..(row + 1) * d].iter().all(|&x| x == 0.0));
            }
        }
    }
}
