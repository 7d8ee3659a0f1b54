//! The backward pass: backpropagation through time, then the weight gradients.

use std::ops::Range;

use super::super::packed::{Blocked, MR, Mat, NR, PackedB, gemm_rows, mul_packed};
use super::super::real::{Buf, Real, has_avx2_fma, vectorized};
use super::super::team::{self, Shared, Team};
use super::{Dims, RecurrentKind, Saved, Weights, write_blocked};

/// Gradients of one run with respect to its inputs.
pub(crate) struct Grads<T> {
    /// `[batch, seq, d_in]`; empty unless asked for.
    pub(crate) x: Vec<T>,
    pub(crate) h0: Vec<T>,
    /// Zeros unless LSTM.
    pub(crate) c0: Vec<T>,
    pub(crate) w_ih: Vec<T>,
    pub(crate) b_ih: Vec<T>,
    pub(crate) w_hh: Vec<T>,
    pub(crate) b_hh: Vec<T>,
}

/// Backpropagation through time. `dy` is the gradient of [`forward`](super::forward)'s hidden
/// states (`[batch, seq, h]`), `dc` that of an LSTM's last cell state (`[batch, h]`, zero if
/// `None`); the input's gradient is computed only if `want_x`. The biases of `w` are not read.
pub(crate) fn backward<T: Real>(
    d: Dims,
    saved: &Saved<T>,
    dy: &[T],
    dc: Option<&[T]>,
    w: Weights<T>,
    want_x: bool,
) -> Grads<T> {
    let (h, width, rows) = (d.hidden, d.width(), d.rows());
    assert!(
        dy.len() == rows * h
            && dc.is_none_or(|dc| dc.len() == d.batch * h)
            && saved.hp.as_slice().len() == Blocked::<T, MR>::len(rows, h)
            && saved.x.as_slice().len() == Blocked::<T, MR>::len(rows, d.d_input),
        "recurrent kernel: output gradient or saved state do not match {d:?}"
    );
    let gru = d.kind == RecurrentKind::Gru;
    // Gradients of the pre-activations: dP (input side) and, for a GRU, dR (recurrent side,
    // which differs in the n block: dn · r). Each twice: row-major for the products in the
    // loop, and in panels (`Blocked<NR>`) for the weight gradients after it.
    let mut dp = Buf::<T>::reused(rows * width);
    let mut dr = Buf::<T>::reused(if gru { rows * width } else { 0 });
    let mut dp_panels = Buf::<T>::reused(Blocked::<T, NR>::len(rows, width));
    let mut dr_panels = Buf::<T>::reused(if gru { Blocked::<T, NR>::len(rows, width) } else { 0 });
    let mut dh = vec![T::ZERO; d.batch * h];
    let mut dc = match dc {
        Some(dc) if d.kind == RecurrentKind::Lstm => dc.to_vec(),
        _ => vec![T::ZERO; d.batch * h],
    };
    let mut grads = Grads {
        x: vec![T::ZERO; if want_x { rows * d.d_input } else { 0 }],
        h0: Vec::new(),
        c0: Vec::new(),
        w_ih: vec![T::ZERO; d.d_input * width],
        b_ih: vec![T::ZERO; width],
        w_hh: vec![T::ZERO; h * width],
        b_hh: vec![T::ZERO; width],
    };
    let (threads, align) = d.team();
    let simd = T::IS_F32 && has_avx2_fma();
    {
        let ctx = Backward {
            d,
            saved,
            dy,
            w,
            dp: Shared::new(dp.as_mut_slice()),
            dr: Shared::new(dr.as_mut_slice()),
            dp_panels: Shared::new(dp_panels.as_mut_slice()),
            dr_panels: Shared::new(dr_panels.as_mut_slice()),
            dh: Shared::new(&mut dh),
            dc: Shared::new(&mut dc),
            gx: Shared::new(&mut grads.x),
            gw_ih: Shared::new(&mut grads.w_ih),
            gb_ih: Shared::new(&mut grads.b_ih),
            gw_hh: Shared::new(&mut grads.w_hh),
            gb_hh: Shared::new(&mut grads.b_hh),
            want_x,
            simd,
        };
        team::run(threads, |member| ctx.member(member, member.share(h, align)));
    }
    grads.h0 = dh;
    grads.c0 = dc;
    grads
}

/// Everything a member of the backward team reads or writes.
struct Backward<'a, T: Real> {
    d: Dims,
    saved: &'a Saved<T>,
    dy: &'a [T],
    w: Weights<'a, T>,
    dp: Shared<'a, T>,
    dr: Shared<'a, T>,
    dp_panels: Shared<'a, T>,
    dr_panels: Shared<'a, T>,
    dh: Shared<'a, T>,
    dc: Shared<'a, T>,
    gx: Shared<'a, T>,
    gw_ih: Shared<'a, T>,
    gb_ih: Shared<'a, T>,
    gw_hh: Shared<'a, T>,
    gb_hh: Shared<'a, T>,
    want_x: bool,
    simd: bool,
}

impl<T: Real> Backward<'_, T> {
    fn member(&self, team: Team, units: Range<usize>) {
        let d = self.d;
        let (h, width, rows) = (d.hidden, d.width(), d.rows());
        let (j0, hu) = (units.start, units.len());
        let gru = d.kind == RecurrentKind::Gru;
        let simd = self.simd;
        // W_hhᵀ `[G·h, h]`, this member's columns (hidden units).
        let w_hh_t = PackedB::pack(Mat::rows(self.w.w_hh, h, width).t(), hu, |c| j0 + c);
        let (dr, dr_panels) =
            if gru { (&self.dr, &self.dr_panels) } else { (&self.dp, &self.dp_panels) };
        // The bias gradients of this member's units, summed as the loop produces them.
        let g = d.kind.n_gates();
        let mut sum_p = vec![T::ZERO; g * hu];
        let mut sum_r = vec![T::ZERO; if gru { g * hu } else { 0 }];
        for k in (0..d.seq).rev() {
            if hu > 0 {
                vectorized(
                    simd,
                    #[inline(always)]
                    || {
                        for b in 0..d.batch {
                            self.cells(k, b, j0..j0 + hu, &mut sum_p, &mut sum_r);
                        }
                    },
                );
            }
            team.sync();
            if hu > 0 {
                let block = d.batch * width;
                // SAFETY: step k's rows were written before the barrier and are not written
                // again; dh's units j0.. of every row are this member's.
                unsafe {
                    let dr_k = Mat::shared(dr.ptr(k * block), block, [d.batch, width], [width, 1]);
                    mul_packed(simd, dr_k, w_hh_t.view(), self.dh.ptr(j0), h, gru);
                }
            }
        }
        for q in 0..g {
            // SAFETY: this member's units of each gate.
            unsafe {
                self.gb_ih.part_mut(q * h + j0, hu).copy_from_slice(&sum_p[q * hu..][..hu]);
                let sum = if gru { &sum_r } else { &sum_p };
                self.gb_hh.part_mut(q * h + j0, hu).copy_from_slice(&sum[q * hu..][..hu]);
            }
        }
        team.sync();
        // The weight gradients over all positions at once, split by rows; dX by steps.
        // SAFETY: the saved strips are read-only; dp and the panels are complete (barrier above)
        // and no longer written; each member writes its own rows of the weight gradients and
        // its own steps of dX.
        unsafe {
            let hp = Blocked::new(self.saved.hp.as_slice(), rows, h);
            let x = Blocked::new(self.saved.x.as_slice(), rows, d.d_input);
            let dr_b = Blocked::<T, NR>::shared(dr_panels.ptr(0), rows, width);
            let dp_b = Blocked::<T, NR>::shared(self.dp_panels.ptr(0), rows, width);
            let (gw_hh, gw_ih) = (self.gw_hh.ptr(0), self.gw_ih.ptr(0));
            gemm_rows(simd, hp, team.share(h, MR), dr_b, gw_hh, width, false);
            gemm_rows(simd, x, team.share(d.d_input, MR), dp_b, gw_ih, width, false);
            let dp = self.dp.part(0, rows * width);
            if self.want_x {
                // dX = dP W_ihᵀ, a step at a time, since dX is batch-major and dP step-major.
                let w_ih_t = Mat::rows(self.w.w_ih, d.d_input, width).t();
                let w_ih_t = PackedB::pack(w_ih_t, d.d_input, |j| j);
                let block = d.batch * width;
                for k in team.share(d.seq, 1) {
                    let dp_k = Mat::new(&dp[k * block..][..block], [d.batch, width], [width, 1]);
                    let c = self.gx.ptr(d.time(k) * d.d_input);
                    mul_packed(simd, dp_k, w_ih_t.view(), c, d.seq * d.d_input, false);
                }
            }
        }
    }

    /// The gate gradients of sequence `b` at step `k`, units `units`.
    #[inline(always)]
    fn cells(&self, k: usize, b: usize, units: Range<usize>, sum_p: &mut [T], sum_r: &mut [T]) {
        let (j0, hu) = (units.start, units.len());
        let d = self.d;
        let (h, width) = (d.hidden, d.width());
        let row = k * d.batch + b;
        let acts = self.saved.acts.as_slice();
        let act = |q: usize| &acts[d.saved_at(k, b, q, &units)..][..hu];
        let dy = &self.dy[(b * d.seq + d.time(k)) * h + j0..][..hu];
        // SAFETY: this member's units of row b of dh: no one else touches them.
        let dh_next = unsafe { self.dh.part_mut(b * h + j0, hu) };
        // SAFETY: this member's units of gate q at row (k, b): no one else touches them.
        let dp = |q: usize| unsafe { self.dp.part_mut(row * width + q * h + j0, hu) };
        match d.kind {
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => {
                let (y, g) = (act(0), dp(0));
                let relu = d.kind == RecurrentKind::RnnRelu;
                for j in 0..hu {
                    let dh = dy[j] + dh_next[j];
                    g[j] = if relu {
                        if y[j] > T::ZERO { dh } else { T::ZERO }
                    } else {
                        dh * (T::ONE - y[j] * y[j])
                    };
                }
            }
            RecurrentKind::Lstm => {
                // SAFETY: this member's units of row b of dc.
                let dc = unsafe { self.dc.part_mut(b * h + j0, hu) };
                let (ai, af, ag, ao, atc, acp) = (act(0), act(1), act(2), act(3), act(4), act(5));
                let (gi, gf, gg, go) = (dp(0), dp(1), dp(2), dp(3));
                for j in 0..hu {
                    let (i, f, g, o, tc) = (ai[j], af[j], ag[j], ao[j], atc[j]);
                    let dh = dy[j] + dh_next[j];
                    let dcj = dc[j] + dh * o * (T::ONE - tc * tc);
                    gi[j] = dcj * g * i * (T::ONE - i);
                    gf[j] = dcj * acp[j] * f * (T::ONE - f);
                    gg[j] = dcj * i * (T::ONE - g * g);
                    go[j] = dh * tc * o * (T::ONE - o);
                    dc[j] = dcj * f;
                }
            }
            RecurrentKind::Gru => {
                let (ar, az, an, ah, hp) = (act(0), act(1), act(2), act(3), act(4));
                let (pr, pz, pn) = (dp(0), dp(1), dp(2));
                // SAFETY: as dp, in dr.
                let dr = |q: usize| unsafe { self.dr.part_mut(row * width + q * h + j0, hu) };
                let (rr, rz, rn) = (dr(0), dr(1), dr(2));
                for j in 0..hu {
                    let (r, z, n, rec) = (ar[j], az[j], an[j], ah[j]);
                    let dh = dy[j] + dh_next[j];
                    let dn = dh * (T::ONE - z) * (T::ONE - n * n);
                    let dz = dh * (hp[j] - n) * z * (T::ONE - z);
                    let drr = dn * rec * r * (T::ONE - r);
                    (pr[j], pz[j], pn[j]) = (drr, dz, dn);
                    (rr[j], rz[j], rn[j]) = (drr, dz, dn * r);
                    // The direct path h_{t-1} → h_t; the product through W_hh adds to it.
                    dh_next[j] = dh * z;
                }
            }
        }
        // The same values into the panels of the weight gradients' right operands, and into
        // the bias gradients.
        let rows = d.rows();
        for q in 0..d.kind.n_gates() {
            let at = row * width + q * h + j0;
            // SAFETY: this member's units of gate q at row (k, b), in each buffer.
            unsafe {
                let values = self.dp.part(at, hu);
                write_blocked::<T, NR>(&self.dp_panels, rows, row, q * h + j0, values);
                add(&mut sum_p[q * hu..][..hu], values);
                if d.kind == RecurrentKind::Gru {
                    let values = self.dr.part(at, hu);
                    write_blocked::<T, NR>(&self.dr_panels, rows, row, q * h + j0, values);
                    add(&mut sum_r[q * hu..][..hu], values);
                }
            }
        }
    }
}

/// `sum += values`, elementwise.
#[inline(always)]
fn add<T: Real>(sum: &mut [T], values: &[T]) {
    for (s, &v) in sum.iter_mut().zip(values) {
        *s += v;
    }
}
