//! The whole of one layer and direction on host buffers (f32, or f64 for checks), forward and
//! backward (backpropagation through time), in the style of oneDNN's RNN primitive.
//!
//! A team of threads (see [`team`](super::team)) splits the hidden units: member `m` owns units
//! `[j0, j1)` of every gate, packs its columns of `W_ih` and `W_hh` once per pass, and per step
//! computes its gate pre-activations `x_t W_ih + h_{t-1} W_hh` for those units (register-tiled
//! products, [`packed`](super::packed)), applies the gate functions and writes its part of
//! `h_t`; one barrier per step publishes `h_t` to the others. The backward pass mirrors it:
//! each member computes the gate gradients of its units, a barrier, then its units of
//! `dh_{t-1} = dR_t W_hhᵀ`; after the loop the weight gradients are three large products
//! (`dW_hh = H_prevᵀ dR`, `dW_ih = Xᵀ dP`, `dX = dP W_ihᵀ`) split by columns or rows.
//!
//! Buffers are row-major and batch-major, as burn holds them: `x` is `[batch, seq, d_in]`,
//! every per-step `[batch, ·]` slice is a matrix with a row stride of `seq` rows, and the
//! output is `[batch, seq, h]` followed (LSTM) by the last cell state `[batch, h]`.

use std::ops::Range;

use super::super::RecurrentKind;
use super::packed::{Mat, NR, PackedB, Scratch, gemm_cols, mul_packed};
use super::real::{Buf, Real, has_avx2_fma, sigmoid, vectorized};
use super::team::{self, Shared, Team};

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub(crate) kind: RecurrentKind,
    pub(crate) batch: usize,
    pub(crate) seq: usize,
    pub(crate) d_input: usize,
    pub(crate) hidden: usize,
    pub(crate) reverse: bool,
    /// Threads in the team (at most one per hidden unit are used).
    pub(crate) threads: usize,
}

impl Dims {
    pub(crate) fn width(&self) -> usize {
        self.kind.n_gates() * self.hidden
    }

    /// Rows of the output: `batch · seq` hidden states, then (LSTM) `batch` cell states.
    pub(crate) fn out_rows(&self) -> usize {
        self.batch * self.seq + if self.kind == RecurrentKind::Lstm { self.batch } else { 0 }
    }

    /// The time index of the `k`-th step taken.
    fn time(&self, k: usize) -> usize {
        if self.reverse { self.seq - 1 - k } else { k }
    }

    /// Values saved per position for the backward pass: LSTM `i, f, g, o, tanh c, c_prev`;
    /// GRU `r, z, n, W_hn h + b_hn`; RNN `h`.
    fn saved_width(&self) -> usize {
        self.hidden
            * match self.kind {
                RecurrentKind::Lstm => 6,
                RecurrentKind::Gru => 4,
                RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => 1,
            }
    }

    /// Members of the team and the alignment of their shares of the hidden units.
    fn team(&self) -> (usize, usize) {
        let threads = self.threads.clamp(1, self.hidden.max(1));
        let align = if self.hidden >= NR * threads { NR } else { 1 };
        (threads, align)
    }
}

/// The weights of one run, in the layout of [`RecurrentCell`](super::super::RecurrentCell):
/// `w_ih` `[d_in, G·h]`, `w_hh` `[h, G·h]`, biases `[G·h]`.
#[derive(Clone, Copy)]
pub(crate) struct Weights<'a, T> {
    pub(crate) w_ih: &'a [T],
    pub(crate) b_ih: &'a [T],
    pub(crate) w_hh: &'a [T],
    pub(crate) b_hh: &'a [T],
}

/// What the forward pass keeps for the backward pass.
#[derive(Clone, Debug)]
pub(crate) struct Saved<T: Real> {
    /// The input, `[batch, seq, d_in]`.
    pub(crate) x: Vec<T>,
    /// `[batch, seq, h]`: the hidden state each position started from.
    hp: Buf<T>,
    /// `[batch, seq, saved_width]`, see [`Dims::saved_width`].
    acts: Buf<T>,
}

/// Runs the recurrence over `x` from `h0` (and `c0`, ignored unless LSTM). Returns the output
/// (`[batch, seq, h]`, then the last cell state for an LSTM) and, if `save`, what
/// [`backward`] needs.
///
/// # Panics
/// If a buffer's length does not match `d`.
pub(crate) fn forward<T: Real>(
    d: Dims,
    x: Vec<T>,
    h0: &[T],
    c0: &[T],
    w: Weights<T>,
    save: bool,
) -> (Vec<T>, Option<Saved<T>>) {
    let (h, rows) = (d.hidden, d.batch * d.seq);
    check_lengths(d, &x, h0, c0, w);
    let sw = d.saved_width();
    let mut y = vec![T::ZERO; d.out_rows() * h];
    let mut hp = Buf::zeros(if save { rows * h } else { 0 });
    let mut acts = Buf::zeros(if save { rows * sw } else { 0 });
    // The recurrent bias joins the input bias, except a GRU's b_hn, which r multiplies.
    let mut b_x: Vec<T> = w.b_ih.iter().zip(w.b_hh).map(|(&a, &b)| a + b).collect();
    let b_hn = if d.kind == RecurrentKind::Gru { &w.b_hh[2 * h..] } else { &[][..] };
    if d.kind == RecurrentKind::Gru {
        b_x[2 * h..].copy_from_slice(&w.b_ih[2 * h..]);
    }
    let (threads, align) = d.team();
    let simd = T::IS_F32 && has_avx2_fma();
    {
        let out = Shared::new(&mut y);
        let hp = Shared::new(hp.as_mut_slice());
        let acts = Shared::new(acts.as_mut_slice());
        let ctx = Forward { d, x: &x, h0, c0, w, b_x: &b_x, b_hn, out, hp, acts, save, simd };
        team::run(threads, |member| ctx.member(member, member.share(h, align)));
    }
    (y, save.then_some(Saved { x, hp, acts }))
}

fn check_lengths<T>(d: Dims, x: &[T], h0: &[T], c0: &[T], w: Weights<T>) {
    let (h, width) = (d.hidden, d.width());
    let c0_len = if d.kind == RecurrentKind::Lstm { d.batch * h } else { c0.len() };
    assert!(
        x.len() == d.batch * d.seq * d.d_input
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
        if hu == 0 {
            // More members than hidden units: meet the others at every step, do nothing.
            (0..d.seq).for_each(|_| team.sync());
            return;
        }
        let gw = g * hu;
        // This member's columns of the gate blocks, gate by gate.
        let col = |c: usize| (c / hu) * h + j0 + c % hu;
        let w_ih = PackedB::pack(Mat::rows(self.w.w_ih, d.d_input, width), gw, col);
        let w_hh = PackedB::pack(Mat::rows(self.w.w_hh, h, width), gw, col);
        let gru = d.kind == RecurrentKind::Gru;
        // Pre-activations from h (and, for a GRU, separately from x).
        let mut gh = Buf::<T>::zeros(d.batch * gw);
        let mut gx = Buf::<T>::zeros(if gru { d.batch * gw } else { 0 });
        let mut c: Vec<T> = if d.kind == RecurrentKind::Lstm {
            (0..d.batch).flat_map(|b| self.c0[b * h + j0..][..hu].iter().copied()).collect()
        } else {
            Vec::new()
        };
        let x_stride = d.seq * d.d_input;
        for k in 0..d.seq {
            let t = d.time(k);
            {
                let x_t = Mat::new(&self.x[t * d.d_input..], [d.batch, d.d_input], [x_stride, 1]);
                let h_prev = if k == 0 {
                    Mat::rows(self.h0, d.batch, h)
                } else {
                    let t_prev = d.time(k - 1);
                    let len = self.out_len() - t_prev * h;
                    // SAFETY: row t_prev of every sequence was written before the last barrier
                    // and is not written again.
                    unsafe {
                        Mat::shared(self.out.ptr(t_prev * h), len, [d.batch, h], [d.seq * h, 1])
                    }
                };
                let (gh_ptr, gx_ptr) =
                    (gh.as_mut_slice().as_mut_ptr(), gx.as_mut_slice().as_mut_ptr());
                // SAFETY: gh and gx are this member's own [batch, gw] buffers. A GRU keeps the
                // input's part apart (r multiplies only the recurrent part of n).
                unsafe {
                    mul_packed(self.simd, x_t, &w_ih, if gru { gx_ptr } else { gh_ptr }, gw, false);
                    mul_packed(self.simd, h_prev, &w_hh, gh_ptr, gw, !gru);
                }
                let (gh, gx) = (gh.as_slice(), gx.as_slice());
                vectorized(self.simd, || {
                    for b in 0..d.batch {
                        let gx = if gru { &gx[b * gw..][..gw] } else { &[][..] };
                        self.cells(k, b, j0..j0 + hu, &gh[b * gw..][..gw], gx, &mut c);
                    }
                });
            }
            team.sync();
        }
        if d.kind == RecurrentKind::Lstm {
            for b in 0..d.batch {
                // SAFETY: this member's units of the last-cell rows.
                let last = unsafe { self.out.part_mut((d.batch * d.seq + b) * h + j0, hu) };
                last.copy_from_slice(&c[b * hu..][..hu]);
            }
        }
    }

    fn out_len(&self) -> usize {
        self.d.out_rows() * self.d.hidden
    }

    /// The gate functions for sequence `b` at step `k`, for `units`.
    #[inline(always)]
    fn cells(&self, k: usize, b: usize, units: Range<usize>, gh: &[T], gx: &[T], c: &mut [T]) {
        let (j0, hu) = (units.start, units.len());
        let d = self.d;
        let h = d.hidden;
        let t = d.time(k);
        let row = b * d.seq + t;
        fn block<T>(s: &[T], q: usize, hu: usize) -> &[T] {
            &s[q * hu..][..hu]
        }
        let bias = |q: usize| &self.b_x[q * h + j0..][..hu];
        // SAFETY: this member's units of position (b, t); no one else touches them.
        let y = unsafe { self.out.part_mut(row * h + j0, hu) };
        let sw = d.saved_width();
        // SAFETY: as above, in the saved activations.
        let acts = |q: usize| unsafe { self.acts.part_mut(row * sw + q * h + j0, hu) };
        match d.kind {
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => {
                let (pre, bias) = (block(gh, 0, hu), bias(0));
                let relu = d.kind == RecurrentKind::RnnRelu;
                for j in 0..hu {
                    let v = pre[j] + bias[j];
                    y[j] = if relu { v.relu() } else { v.tanh() };
                }
                if self.save {
                    acts(0).copy_from_slice(y);
                }
            }
            RecurrentKind::Lstm => {
                let c = &mut c[b * hu..][..hu];
                let (pi, pf, pg, po) =
                    (block(gh, 0, hu), block(gh, 1, hu), block(gh, 2, hu), block(gh, 3, hu));
                let (bi, bf, bg, bo) = (bias(0), bias(1), bias(2), bias(3));
                if self.save {
                    let (ai, af, ag, ao, atc, acp) =
                        (acts(0), acts(1), acts(2), acts(3), acts(4), acts(5));
                    for j in 0..hu {
                        let i = sigmoid(pi[j] + bi[j]);
                        let f = sigmoid(pf[j] + bf[j]);
                        let g = (pg[j] + bg[j]).tanh();
                        let o = sigmoid(po[j] + bo[j]);
                        acp[j] = c[j];
                        let cn = f * c[j] + i * g;
                        let tc = cn.tanh();
                        c[j] = cn;
                        y[j] = o * tc;
                        (ai[j], af[j], ag[j], ao[j], atc[j]) = (i, f, g, o, tc);
                    }
                } else {
                    for j in 0..hu {
                        let i = sigmoid(pi[j] + bi[j]);
                        let f = sigmoid(pf[j] + bf[j]);
                        let g = (pg[j] + bg[j]).tanh();
                        let o = sigmoid(po[j] + bo[j]);
                        let cn = f * c[j] + i * g;
                        c[j] = cn;
                        y[j] = o * cn.tanh();
                    }
                }
            }
            RecurrentKind::Gru => {
                let h_prev: &[T] = if k == 0 {
                    &self.h0[b * h + j0..][..hu]
                } else {
                    // SAFETY: this member's own units of the previous position, written by it.
                    unsafe { self.out.part((b * d.seq + d.time(k - 1)) * h + j0, hu) }
                };
                let (hr, hz, hn) = (block(gh, 0, hu), block(gh, 1, hu), block(gh, 2, hu));
                let (xr, xz, xn) = (block(gx, 0, hu), block(gx, 1, hu), block(gx, 2, hu));
                let (br, bz, bn) = (bias(0), bias(1), bias(2));
                let bhn = &self.b_hn[j0..][..hu];
                let mut saved = self.save.then(|| (acts(0), acts(1), acts(2), acts(3)));
                for j in 0..hu {
                    let r = sigmoid(xr[j] + hr[j] + br[j]);
                    let z = sigmoid(xz[j] + hz[j] + bz[j]);
                    let rec = hn[j] + bhn[j];
                    let n = (xn[j] + bn[j] + r * rec).tanh();
                    y[j] = n + z * (h_prev[j] - n);
                    if let Some((ar, az, an, ah)) = saved.as_mut() {
                        (ar[j], az[j], an[j], ah[j]) = (r, z, n, rec);
                    }
                }
            }
        }
        if self.save {
            // The state position (b, t) started from, for dW_hh after the backward loop.
            // SAFETY: this member's units of position (b, t) of `hp`.
            let hp = unsafe { self.hp.part_mut(row * h + j0, hu) };
            if k == 0 {
                hp.copy_from_slice(&self.h0[b * h + j0..][..hu]);
            } else {
                // SAFETY: this member's own units of the previous position, written by it.
                let prev = unsafe { self.out.part((b * d.seq + d.time(k - 1)) * h + j0, hu) };
                hp.copy_from_slice(prev);
            }
        }
    }
}

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

/// Backpropagation through time. `dy` is the gradient of [`forward`]'s output (same layout);
/// the input's gradient is computed only if `want_x`.
pub(crate) fn backward<T: Real>(
    d: Dims,
    saved: &Saved<T>,
    dy: &[T],
    w: Weights<T>,
    want_x: bool,
) -> Grads<T> {
    let (h, width, rows) = (d.hidden, d.width(), d.batch * d.seq);
    assert!(
        dy.len() == d.out_rows() * h && saved.hp.as_slice().len() == rows * h,
        "recurrent kernel: output gradient or saved state do not match {d:?}"
    );
    let gru = d.kind == RecurrentKind::Gru;
    // Gradients of the pre-activations: dP (input side) and, for a GRU, dR (recurrent side,
    // which differs in the n block: dn · r).
    let mut dp = Buf::<T>::zeros(rows * width);
    let mut dr = Buf::<T>::zeros(if gru { rows * width } else { 0 });
    let mut dh = vec![T::ZERO; d.batch * h];
    let mut dc = if d.kind == RecurrentKind::Lstm {
        dy[rows * h..].to_vec()
    } else {
        vec![T::ZERO; d.batch * h]
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
        let (h, width, rows) = (d.hidden, d.width(), d.batch * d.seq);
        let (j0, hu) = (units.start, units.len());
        let gru = d.kind == RecurrentKind::Gru;
        // W_hhᵀ `[G·h, h]`, this member's columns (hidden units).
        let w_hh_t = PackedB::pack(Mat::rows(self.w.w_hh, h, width).t(), hu, |c| j0 + c);
        let dr = if gru { &self.dr } else { &self.dp };
        for k in (0..d.seq).rev() {
            let t = d.time(k);
            if hu > 0 {
                vectorized(self.simd, || {
                    for b in 0..d.batch {
                        self.cells(b, t, j0, hu);
                    }
                });
            }
            team.sync();
            if hu > 0 {
                let len = rows * width - t * width;
                // SAFETY: position t of every sequence was written before the barrier and is
                // not written again; dh's units j0.. of every row are this member's.
                unsafe {
                    let dr_t =
                        Mat::shared(dr.ptr(t * width), len, [d.batch, width], [d.seq * width, 1]);
                    mul_packed(self.simd, dr_t, &w_hh_t, self.dh.ptr(j0), h, gru);
                }
            }
        }
        team.sync();
        // The weight gradients over all positions at once, split by columns.
        let mut scratch = Scratch::default();
        let cols = team.share(width, NR);
        // SAFETY: dp and dr are complete (barrier above) and no longer written; each member
        // writes its own columns of the weight gradients and its own rows of dX.
        unsafe {
            let dp = self.dp.part(0, rows * width);
            let dr = dr.part(0, rows * width);
            let (dp_m, dr_m) = (Mat::rows(dp, rows, width), Mat::rows(dr, rows, width));
            let hp = Mat::rows(self.saved.hp.as_slice(), rows, h);
            let x = Mat::rows(&self.saved.x, rows, d.d_input);
            let simd = self.simd;
            gemm_cols(
                simd,
                hp.t(),
                dr_m,
                self.gw_hh.ptr(0),
                width,
                false,
                cols.clone(),
                &mut scratch,
            );
            gemm_cols(
                simd,
                x.t(),
                dp_m,
                self.gw_ih.ptr(0),
                width,
                false,
                cols.clone(),
                &mut scratch,
            );
            column_sums(dp, width, cols.clone(), self.gb_ih.part_mut(cols.start, cols.len()));
            column_sums(dr, width, cols.clone(), self.gb_hh.part_mut(cols.start, cols.len()));
            if self.want_x {
                // dX = dP W_ihᵀ, split by rows so that each member packs only its part of dP.
                let part = team.share(rows, 1);
                let w_ih_t = Mat::rows(self.w.w_ih, d.d_input, width).t();
                let gx = self.gx.ptr(part.start * d.d_input);
                let d_in = d.d_input;
                gemm_cols(
                    simd,
                    dp_m.row_range(part),
                    w_ih_t,
                    gx,
                    d_in,
                    false,
                    0..d_in,
                    &mut scratch,
                );
            }
        }
    }

    /// The gate gradients of sequence `b` at time `t`, units `j0..j0 + hu`.
    #[inline(always)]
    fn cells(&self, b: usize, t: usize, j0: usize, hu: usize) {
        let d = self.d;
        let (h, width, sw) = (d.hidden, d.width(), d.saved_width());
        let row = b * d.seq + t;
        let acts = &self.saved.acts.as_slice()[row * sw..][..sw];
        let act = |q: usize| &acts[q * h + j0..][..hu];
        let dy = &self.dy[row * h + j0..][..hu];
        // SAFETY: this member's units of row b of dh: no one else touches them.
        let dh_next = unsafe { self.dh.part_mut(b * h + j0, hu) };
        // SAFETY: this member's units of gate q at position (b, t): no one else touches them.
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
                let hp = &self.saved.hp.as_slice()[row * h + j0..][..hu];
                let (ar, az, an, ah) = (act(0), act(1), act(2), act(3));
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
    }
}

/// `out[j] = Σ_i m[i, cols.start + j]` over the rows of a row-major `m` of `width` columns.
fn column_sums<T: Real>(m: &[T], width: usize, cols: Range<usize>, out: &mut [T]) {
    out.fill(T::ZERO);
    for row in m.chunks_exact(width) {
        for (o, &v) in out.iter_mut().zip(&row[cols.clone()]) {
            *o += v;
        }
    }
}
