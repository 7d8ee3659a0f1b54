//! The fused path against the composed one (autodiff through the time loop) and against
//! finite differences.

use burn::tensor::{Tensor, TensorData};
use engram_tensor::seed_everything;
use engram_tensor::testing::{
    Tolerance, assert_close, check_gradient, seeded_values as values, test_device, to_f64,
};

use crate::recurrent::tests::retarget;
use crate::{RecurrentConfig, RecurrentKind, RecurrentState};

const KINDS: [RecurrentKind; 4] =
    [RecurrentKind::RnnTanh, RecurrentKind::RnnRelu, RecurrentKind::Lstm, RecurrentKind::Gru];

#[test]
fn fused_values_and_gradients_match_the_composed_path() {
    let device = test_device().autodiff();
    let tol = Tolerance { abs: 1e-5, rel: 1e-4 };
    for kind in KINDS {
        let _ = seed_everything(&device, 21);
        let mut layer = RecurrentConfig::new(kind, 3, 5).with_n_layers(2).init(&device);
        let x = Tensor::<3>::from_data(TensorData::new(values(3, 4 * 6 * 3), [4, 6, 3]), &device);
        let h0 = Tensor::<3>::from_data(TensorData::new(values(4, 2 * 4 * 5), [2, 4, 5]), &device);
        let c0 = Tensor::<3>::from_data(TensorData::new(values(5, 2 * 4 * 5), [2, 4, 5]), &device);
        let mut results = Vec::new();
        for fused in [true, false] {
            layer.fused = fused;
            let (x, h0, c0) = (x.clone().require_grad(), h0.clone().require_grad(), c0.clone());
            let c0 = kind.has_cell().then(|| c0.require_grad());
            let state = RecurrentState { hidden: h0.clone(), cell: c0.clone() };
            let out = layer.forward(x.clone(), None, Some(state));
            let weights =
                Tensor::<3>::from_data(TensorData::new(values(6, 4 * 6 * 5), [4, 6, 5]), &device);
            let mut loss = (out.output.clone() * weights).sum() + out.state.hidden.clone().sum();
            if let Some(cell) = out.state.cell.clone() {
                loss = loss + cell.powf_scalar(2.0).sum();
            }
            let grads = loss.backward();
            let mut values = vec![to_f64(out.output), to_f64(out.state.hidden)];
            values.push(to_f64(x.grad(&grads).expect("x has a gradient")));
            values.push(to_f64(h0.grad(&grads).expect("h0 has a gradient")));
            if let Some(c0) = c0 {
                values.push(to_f64(c0.grad(&grads).expect("c0 has a gradient")));
            }
            for cell in &layer.cells {
                for p in [cell.weight_ih.val(), cell.weight_hh.val()] {
                    values.push(to_f64(p.grad(&grads).expect("a weight has a gradient")));
                }
                for p in [cell.bias_ih.val(), cell.bias_hh.val()] {
                    values.push(to_f64(p.grad(&grads).expect("a bias has a gradient")));
                }
            }
            results.push(values);
        }
        let (fused, composed) = (&results[0], &results[1]);
        assert_eq!(fused.len(), composed.len());
        for (i, (f, c)) in fused.iter().zip(composed).enumerate() {
            let n = f.len();
            let got = Tensor::<1>::from_data(TensorData::new(f.clone(), [n]), &test_device());
            std::panic::catch_unwind(|| assert_close(got, c, tol))
                .unwrap_or_else(|_| panic!("{kind:?}: fused and composed differ in value #{i}"));
        }
    }
}

#[test]
fn fused_gradients_match_finite_differences() {
    let device = test_device();
    for kind in KINDS {
        let _ = seed_everything(&device, 22);
        let layer = RecurrentConfig::new(kind, 2, 3).with_n_layers(2).init_bidirectional(&device);
        assert!(layer.fused);
        // Away from ReLU's kink: shift inputs so no pre-activation sits near zero by chance
        // would need a search; a small batch of smooth values keeps it simple and the check
        // uses central differences with a small step.
        let x = Tensor::<3>::from_data(TensorData::new(values(9, 12), [2, 3, 2]), &device);
        let report = check_gradient(
            |xs| {
                let x = &xs[0];
                let (dev, dtype) = (x.device(), x.dtype());
                let mut model = layer.clone();
                model.cells = retarget(&layer.cells, &dev, dtype);
                let out = model.forward(x.clone(), None, None);
                let weights = Tensor::<3>::from_data(
                    TensorData::new(values(10, 2 * 3 * 6), [2, 3, 6]),
                    (&dev, dtype),
                );
                (out.output * weights).sum() + out.state.hidden.sum()
            },
            &[x],
        );
        assert!(report.is_ok(), "{kind:?}: {report}");
    }
}

/// The kernel on its own, f32 with one to three threads and f64, against the plain-f64
/// reference (`recurrent/reference.rs`) on sizes that are multiples of neither the register
/// tile (6 × 16) nor the thread count: outputs, and gradients against central differences of
/// the reference along random directions.
#[test]
fn kernel_matches_a_plain_f64_reference_on_odd_sizes() {
    use super::kernel::{self, Dims, Weights};
    use crate::recurrent::reference::CellParams;

    let (batch, seq, d_input, hidden) = (7, 5, 11, 19);
    for kind in KINDS {
        for reverse in [false, true] {
            let width = kind.n_gates() * hidden;
            let lstm = kind == RecurrentKind::Lstm;
            let sizes = [
                batch * seq * d_input,
                batch * hidden,
                batch * hidden,
                d_input * width,
                width,
                hidden * width,
                width,
            ];
            let inputs: Vec<Vec<f64>> =
                sizes.iter().enumerate().map(|(i, &n)| values(40 + i as u64, n)).collect();
            let out_rows = batch * seq + if lstm { batch } else { 0 };
            let dy = values(50, out_rows * hidden);
            // The reference, one sequence at a time.
            let run = |inputs: &[Vec<f64>]| -> Vec<f64> {
                let [x, h0, c0, w_ih, b_ih, w_hh, b_hh] = inputs else { unreachable!() };
                let params = CellParams::new(
                    kind,
                    hidden,
                    [w_ih.clone(), b_ih.clone(), w_hh.clone(), b_hh.clone()],
                );
                let mut out = vec![0.0; out_rows * hidden];
                for b in 0..batch {
                    let mut h = h0[b * hidden..][..hidden].to_vec();
                    let mut c = c0[b * hidden..][..hidden].to_vec();
                    for k in 0..seq {
                        let t = if reverse { seq - 1 - k } else { k };
                        let (h_new, c_new) =
                            params.step(&x[(b * seq + t) * d_input..][..d_input], &h, &c);
                        out[(b * seq + t) * hidden..][..hidden].copy_from_slice(&h_new);
                        h = h_new;
                        if lstm {
                            c = c_new;
                        }
                    }
                    if lstm {
                        out[(batch * seq + b) * hidden..][..hidden].copy_from_slice(&c);
                    }
                }
                out
            };
            let loss = |inputs: &[Vec<f64>]| -> f64 {
                run(inputs).iter().zip(&dy).map(|(y, d)| y * d).sum()
            };
            let want = run(&inputs);
            // Directional derivatives of the loss, two random directions per input.
            let eps = 1e-6;
            let mut directions = Vec::new();
            for (i, input) in inputs.iter().enumerate() {
                if i == 2 && !lstm {
                    continue;
                }
                for r in 0..2 {
                    let v = values(60 + 2 * i as u64 + r, input.len());
                    let shifted = |sign: f64| {
                        let mut moved = inputs.clone();
                        for (p, dv) in moved[i].iter_mut().zip(&v) {
                            *p += sign * eps * dv;
                        }
                        loss(&moved)
                    };
                    let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps);
                    directions.push((i, v, fd));
                }
            }
            let check = |got_y: &[f64], grads: [&[f64]; 7], tol: f64, what: &str| {
                for (j, (g, w)) in got_y.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= tol, "{kind:?} {what}: output {j}: {g} vs {w}");
                }
                for (i, v, fd) in &directions {
                    let dot: f64 = grads[*i].iter().zip(v).map(|(g, v)| g * v).sum();
                    assert!(
                        (dot - fd).abs() <= tol * 10.0 * (1.0 + fd.abs()),
                        "{kind:?} {what}: gradient of input {i} along a direction: {dot} vs {fd}"
                    );
                }
            };
            for threads in [1, 2, 3] {
                let d = Dims { kind, batch, seq, d_input, hidden, reverse, threads };
                let f32s: Vec<Vec<f32>> =
                    inputs.iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
                let w = Weights { w_ih: &f32s[3], b_ih: &f32s[4], w_hh: &f32s[5], b_hh: &f32s[6] };
                let (y, saved) = kernel::forward(d, &f32s[0], &f32s[1], &f32s[2], w, true);
                let saved = saved.expect("saved");
                let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
                let rows = batch * seq * hidden;
                let dc = lstm.then(|| &dy32[rows..]);
                let g = kernel::backward(d, &saved, &dy32[..rows], dc, w, true);
                let c0 = if lstm { g.c0.clone() } else { vec![0.0; batch * hidden] };
                let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
                let parts = [&g.x, &g.h0, &c0, &g.w_ih, &g.b_ih, &g.w_hh, &g.b_hh].map(|v| to64(v));
                let grads = [0, 1, 2, 3, 4, 5, 6].map(|i| parts[i].as_slice());
                check(
                    &to64(&y),
                    grads,
                    1e-5,
                    &format!("f32, {threads} threads, reverse {reverse}"),
                );
            }
            let d = Dims { kind, batch, seq, d_input, hidden, reverse, threads: 2 };
            let w =
                Weights { w_ih: &inputs[3], b_ih: &inputs[4], w_hh: &inputs[5], b_hh: &inputs[6] };
            let (y, saved) = kernel::forward(d, &inputs[0], &inputs[1], &inputs[2], w, true);
            let rows = batch * seq * hidden;
            let dc = lstm.then(|| &dy[rows..]);
            let g = kernel::backward(d, &saved.expect("saved"), &dy[..rows], dc, w, true);
            let c0 = if lstm { g.c0.clone() } else { vec![0.0; batch * hidden] };
            let grads = [&g.x[..], &g.h0, &c0, &g.w_ih, &g.b_ih, &g.w_hh, &g.b_hh];
            check(&y, grads, 1e-7, &format!("f64, reverse {reverse}"));
        }
    }
}

/// Buffers of one pass go back to a pool and serve the next pass without being cleared: a pass
/// after every pooled buffer was filled with NaNs gives exactly what the pass before gave.
#[test]
fn reused_buffers_do_not_leak_into_the_next_pass() {
    use super::kernel::{self, Dims, Weights};
    use super::real::poison_pool;

    // Large enough (≥ 1 MiB per buffer) for the pool, odd enough for padded panels.
    let (batch, seq, d_input, hidden) = (16, 64, 24, 72);
    for kind in [RecurrentKind::Lstm, RecurrentKind::Gru] {
        let width = kind.n_gates() * hidden;
        let sizes = [batch * seq * d_input, batch * hidden, batch * hidden, d_input * width];
        let v: Vec<Vec<f32>> = sizes
            .iter()
            .chain(&[width, hidden * width, width])
            .enumerate()
            .map(|(i, &n)| values(70 + i as u64, n).iter().map(|&x| x as f32).collect())
            .collect();
        let d = Dims { kind, batch, seq, d_input, hidden, reverse: false, threads: 2 };
        let w = Weights { w_ih: &v[3], b_ih: &v[4], w_hh: &v[5], b_hh: &v[6] };
        let dy: Vec<f32> = values(80, d.out_rows() * hidden).iter().map(|&x| x as f32).collect();
        let pass = || {
            let (y, saved) = kernel::forward(d, &v[0], &v[1], &v[2], w, true);
            let rows = batch * seq * hidden;
            let dc = (kind == RecurrentKind::Lstm).then(|| &dy[rows..]);
            let g = kernel::backward(d, &saved.expect("saved"), &dy[..rows], dc, w, true);
            [y, g.x, g.h0, g.c0, g.w_ih, g.b_ih, g.w_hh, g.b_hh]
        };
        let before = pass();
        poison_pool();
        let after = pass();
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            assert!(a.iter().all(|v| v.is_finite()), "{kind:?}: result {i} is not finite");
            assert!(a == b, "{kind:?}: result {i} differs after the pool was poisoned");
        }
    }
}
