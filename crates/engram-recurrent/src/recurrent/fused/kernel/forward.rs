//! The forward pass: the time loop, a team of threads splitting the hidden units.

use std::ops::Range;

use super::super::packed::{Blocked, MR, Mat, PackedB, mul_packed};
use super::super::real::{Buf, Real, has_avx2_fma, sigmoid, vectorized};
use super::super::team::{self, Shared, Team};
use super::{Dims, RecurrentKind, Saved, Weights, write_blocked};

/// Runs the recurrence over `x` from `h0` (and `c0`, ignored unless LSTM). Returns the output
/// (`[batch, seq, h]`, then the last cell state for an LSTM) and, if `save`, what
/// [`backward`](super::backward) needs.
///
/// # Panics
/// If a buffer's length does not match `d`.
pub(crate) fn forward<T: Real>(
    d: Dims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w: Weights<T>,
    save: bool,
) -> (Vec<T>, Option<Saved<T>>) {
    let (h, rows) = (d.hidden, d.rows());
    check_lengths(d, x, h0, c0, w);
    let mut y = vec![T::ZERO; d.out_rows() * h];
    let saved_len = |len: usize| if save { len } else { 0 };
    let mut xs = Buf::reused(saved_len(Blocked::<T, MR>::len(rows, d.d_input)));
    let mut hp = Buf::reused(saved_len(Blocked::<T, MR>::len(rows, h)));
    let mut acts = Buf::reused(saved_len(rows * d.saved_blocks() * h));
    // The recurrent bias joins the input bias, except a GRU's b_hn, which r multiplies.
    let mut b_x: Vec<T> = w.b_ih.iter().zip(w.b_hh).map(|(&a, &b)| a + b).collect();
    let b_hn = if d.kind == RecurrentKind::Gru { &w.b_hh[2 * h..] } else { &[][..] };
    if d.kind == RecurrentKind::Gru {
        b_x[2 * h..].copy_from_slice(&w.b_ih[2 * h..]);
    }
    let (threads, align) = d.team();
    let simd = T::IS_F32 && has_avx2_fma();
    {
        let ctx = Forward {
            d,
            x,
            h0,
            c0,
            w,
            b_x: &b_x,
            b_hn,
            out: Shared::new(&mut y),
            xs: Shared::new(xs.as_mut_slice()),
            hp: Shared::new(hp.as_mut_slice()),
            acts: Shared::new(acts.as_mut_slice()),
            save,
            simd,
        };
        team::run(threads, |member| ctx.member(member, member.share(h, align)));
    }
    (y, save.then_some(Saved { x: xs, hp, acts }))
}

fn check_lengths<T>(d: Dims, x: &[T], h0: &[T], c0: &[T], w: Weights<T>) {
    let (h, width) = (d.hidden, d.width());
    let c0_len = if d.kind == RecurrentKind::Lstm { d.batch * h } else { c0.len() };
    assert!(
        x.len() == d.rows() * d.d_input
            && h0.len() == d.batch * h
            && c0.len() == c0_len
            && w.w_ih.len() == d.d_input * width
            && w.w_hh.len() == h * width
            && w.b_ih.len() == width
            && w.b_hh.len() == width,
        "recurrent kernel: buffers do not match {d:?}"
    );
}

/// Everything a member of the forward team reads or writes.
struct Forward<'a, T: Real> {
    d: Dims,
    x: &'a [T],
    h0: &'a [T],
    c0: &'a [T],
    w: Weights<'a, T>,
    b_x: &'a [T],
    b_hn: &'a [T],
    out: Shared<'a, T>,
    xs: Shared<'a, T>,
    hp: Shared<'a, T>,
    acts: Shared<'a, T>,
    save: bool,
    simd: bool,
}

impl<T: Real> Forward<'_, T> {
    fn member(&self, team: Team, units: Range<usize>) {
        let d = self.d;
        let (h, width, g) = (d.hidden, d.width(), d.kind.n_gates());
        let (j0, hu) = (units.start, units.len());
        // This member's columns of the input, copied into the strips of dW_ih's left operand.
        let x_cols = team.share(d.d_input, MR);
        if hu == 0 {
            // More members than hidden units: meet the others at every step.
            for k in 0..d.seq {
                self.save_input(k, x_cols.clone());
                team.sync();
            }
            return;
        }
        let gw = g * hu;
        // This member's columns of the gate blocks, gate by gate.
        let col = |c: usize| (c / hu) * h + j0 + c % hu;
        let w_ih = PackedB::pack(Mat::rows(self.w.w_ih, d.d_input, width), gw, col);
        let w_hh = PackedB::pack(Mat::rows(self.w.w_hh, h, width), gw, col);
        // The input's part of this member's pre-activations at every step, before the loop and
        // step-major (`[seq, batch, gw]`), so that per step only W_hh's columns (512 KiB in the
        // benchmark) pass through the cache and the loop reads each step's part as one stream.
        let mut gx = Buf::<T>::reused(d.rows() * gw);
        let x_stride = d.seq * d.d_input;
        for k in 0..d.seq {
            let x_t =
                Mat::new(&self.x[d.time(k) * d.d_input..], [d.batch, d.d_input], [x_stride, 1]);
            let out = gx.as_mut_slice()[k * d.batch * gw..].as_mut_ptr();
            // SAFETY: gx is this member's own buffer; step k's block is [batch, gw].
            unsafe { mul_packed(self.simd, x_t, w_ih.view(), out, gw, false) };
        }
        // The pre-activations from h.
        let mut gh = Buf::<T>::reused(d.batch * gw);
        let mut c: Vec<T> = if d.kind == RecurrentKind::Lstm {
            (0..d.batch).flat_map(|b| self.c0[b * h + j0..][..hu].iter().copied()).collect()
        } else {
            Vec::new()
        };
        // One sequence's saved values, gathered and then copied out in one piece.
        let mut stage = vec![T::ZERO; if self.save { d.saved_blocks() * hu } else { 0 }];
        for k in 0..d.seq {
            let h_prev = if k == 0 {
                Mat::rows(self.h0, d.batch, h)
            } else {
                let t_prev = d.time(k - 1);
                let len = d.out_rows() * h - t_prev * h;
                // SAFETY: position t_prev of every sequence was written before the last barrier
                // and is not written again.
                unsafe { Mat::shared(self.out.ptr(t_prev * h), len, [d.batch, h], [d.seq * h, 1]) }
            };
            // SAFETY: gh is this member's own [batch, gw] buffer.
            unsafe {
                mul_packed(
                    self.simd,
                    h_prev,
                    w_hh.view(),
                    gh.as_mut_slice().as_mut_ptr(),
                    gw,
                    false,
                );
            }
            let (gh, gx) = (gh.as_slice(), gx.as_slice());
            vectorized(
                self.simd,
                #[inline(always)]
                || {
                    for b in 0..d.batch {
                        let gx = &gx[(k * d.batch + b) * gw..][..gw];
                        let gh = &gh[b * gw..][..gw];
                        self.cells(k, b, j0..j0 + hu, [gh, gx], &mut c, &mut stage);
                    }
                },
            );
            self.save_input(k, x_cols.clone());
            team.sync();
        }
        if d.kind == RecurrentKind::Lstm {
            for b in 0..d.batch {
                // SAFETY: this member's units of the last-cell rows.
                let last = unsafe { self.out.part_mut((d.rows() + b) * h + j0, hu) };
                last.copy_from_slice(&c[b * hu..][..hu]);
            }
        }
    }

    /// Copies columns `cols` of the input at step `k` into the strips of `dW_ih`'s operand.
    fn save_input(&self, k: usize, cols: Range<usize>) {
        if !self.save || cols.is_empty() {
            return;
        }
        let d = self.d;
        let t = d.time(k);
        for b in 0..d.batch {
            let x = &self.x[(b * d.seq + t) * d.d_input + cols.start..][..cols.len()];
            // SAFETY: this member's columns of row (k, b).
            unsafe { write_blocked::<T, MR>(&self.xs, d.rows(), k * d.batch + b, cols.start, x) };
        }
    }

    /// The gate functions for sequence `b` at step `k`, for `units`.
    #[inline(always)]
    fn cells(
        &self,
        k: usize,
        b: usize,
        units: Range<usize>,
        [gh, gx]: [&[T]; 2],
        c: &mut [T],
        stage: &mut [T],
    ) {
        let (j0, hu) = (units.start, units.len());
        let d = self.d;
        let h = d.hidden;
        let t = d.time(k);
        let row = k * d.batch + b;
        fn block<T>(s: &[T], q: usize, hu: usize) -> &[T] {
            &s[q * hu..][..hu]
        }
        let bias = |q: usize| &self.b_x[q * h + j0..][..hu];
        // SAFETY: this member's units of position (b, t); no one else touches them.
        let y = unsafe { self.out.part_mut((b * d.seq + t) * h + j0, hu) };
        let mut blocks = stage.chunks_exact_mut(hu.max(1));
        let mut acts = || blocks.next().expect("a staged block per saved value");
        let h_prev: &[T] = if k == 0 {
            &self.h0[b * h + j0..][..hu]
        } else {
            // SAFETY: this member's own units of the previous position, written by it.
            unsafe { self.out.part((b * d.seq + d.time(k - 1)) * h + j0, hu) }
        };
        match d.kind {
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => {
                let (pre, px, bias) = (block(gh, 0, hu), block(gx, 0, hu), bias(0));
                let relu = d.kind == RecurrentKind::RnnRelu;
                for j in 0..hu {
                    let v = pre[j] + px[j] + bias[j];
                    y[j] = if relu { v.relu() } else { v.tanh() };
                }
                if self.save {
                    acts().copy_from_slice(y);
                }
            }
            RecurrentKind::Lstm => {
                let c = &mut c[b * hu..][..hu];
                let (pi, pf) = (block(gh, 0, hu), block(gh, 1, hu));
                let (pg, po) = (block(gh, 2, hu), block(gh, 3, hu));
                let (xi, xf) = (block(gx, 0, hu), block(gx, 1, hu));
                let (xg, xo) = (block(gx, 2, hu), block(gx, 3, hu));
                let (bi, bf, bg, bo) = (bias(0), bias(1), bias(2), bias(3));
                if self.save {
                    let (ai, af, ag, ao, atc, acp) =
                        (acts(), acts(), acts(), acts(), acts(), acts());
                    for j in 0..hu {
                        let i = sigmoid(pi[j] + xi[j] + bi[j]);
                        let f = sigmoid(pf[j] + xf[j] + bf[j]);
                        let g = (pg[j] + xg[j] + bg[j]).tanh();
                        let o = sigmoid(po[j] + xo[j] + bo[j]);
                        acp[j] = c[j];
                        let cn = f * c[j] + i * g;
                        let tc = cn.tanh();
                        c[j] = cn;
                        y[j] = o * tc;
                        (ai[j], af[j], ag[j], ao[j], atc[j]) = (i, f, g, o, tc);
                    }
                } else {
                    for j in 0..hu {
                        let i = sigmoid(pi[j] + xi[j] + bi[j]);
                        let f = sigmoid(pf[j] + xf[j] + bf[j]);
                        let g = (pg[j] + xg[j] + bg[j]).tanh();
                        let o = sigmoid(po[j] + xo[j] + bo[j]);
                        let cn = f * c[j] + i * g;
                        c[j] = cn;
                        y[j] = o * cn.tanh();
                    }
                }
            }
            RecurrentKind::Gru => {
                let (hr, hz, hn) = (block(gh, 0, hu), block(gh, 1, hu), block(gh, 2, hu));
                let (xr, xz, xn) = (block(gx, 0, hu), block(gx, 1, hu), block(gx, 2, hu));
                let (br, bz, bn) = (bias(0), bias(1), bias(2));
                let bhn = &self.b_hn[j0..][..hu];
                if self.save {
                    let (ar, az, an, ah, ap) = (acts(), acts(), acts(), acts(), acts());
                    for j in 0..hu {
                        let r = sigmoid(xr[j] + hr[j] + br[j]);
                        let z = sigmoid(xz[j] + hz[j] + bz[j]);
                        let rec = hn[j] + bhn[j];
                        let n = (xn[j] + bn[j] + r * rec).tanh();
                        y[j] = n + z * (h_prev[j] - n);
                        (ar[j], az[j], an[j], ah[j]) = (r, z, n, rec);
                    }
                    ap.copy_from_slice(h_prev);
                } else {
                    for j in 0..hu {
                        let r = sigmoid(xr[j] + hr[j] + br[j]);
                        let z = sigmoid(xz[j] + hz[j] + bz[j]);
                        let n = (xn[j] + bn[j] + r * (hn[j] + bhn[j])).tanh();
                        y[j] = n + z * (h_prev[j] - n);
                    }
                }
            }
        }
        if self.save {
            // SAFETY: this member's saved values of row (k, b), contiguous by `saved_at`.
            let acts = unsafe { self.acts.part_mut(d.saved_at(k, b, 0, &units), stage.len()) };
            acts.copy_from_slice(stage);
            // The state position (b, t) started from, for dW_hh after the backward loop.
            // SAFETY: this member's units of row (k, b) of `hp`.
            unsafe { write_blocked::<T, MR>(&self.hp, d.rows(), row, j0, h_prev) };
        }
    }
}
