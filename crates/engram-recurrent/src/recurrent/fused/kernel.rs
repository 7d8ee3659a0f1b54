//! The whole time loop of one layer and direction on host buffers (f32, or f64 for checks), forward and backward
//! (backpropagation through time), with gemm for the matrix products.
//!
//! Buffers are row-major and time-major: `p` is `[seq, batch, G·h]` (the input projection with
//! its bias), every per-step slice is contiguous. The recurrent weight is `[h, G·h]`.

use super::super::RecurrentKind;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub(crate) kind: RecurrentKind,
    pub(crate) seq: usize,
    pub(crate) batch: usize,
    pub(crate) hidden: usize,
    pub(crate) reverse: bool,
}

impl Dims {
    pub(crate) fn width(&self) -> usize {
        self.kind.n_gates() * self.hidden
    }

    /// The time index of the `k`-th step taken.
    fn time(&self, k: usize) -> usize {
        if self.reverse { self.seq - 1 - k } else { k }
    }

    /// Width of the saved activations per row: LSTM `i, f, g, o`; GRU `r, z, n, W_hn h + b_hn`.
    fn saved_width(&self) -> usize {
        match self.kind {
            RecurrentKind::Lstm | RecurrentKind::Gru => 4 * self.hidden,
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => 0,
        }
    }
}

/// What the forward pass keeps for the backward pass, all in the order the steps were taken.
#[derive(Clone, Debug)]
pub(crate) struct Saved<T> {
    /// `[seq + 1, batch, h]`: the initial state, then the hidden state after each step.
    pub(crate) hs: Vec<T>,
    /// `[seq + 1, batch, h]`: the same for an LSTM's cell; empty otherwise.
    pub(crate) cs: Vec<T>,
    /// `[seq, batch, saved_width]`: gate activations.
    pub(crate) acts: Vec<T>,
}

/// Runs the recurrence. Returns `[seq (+1 for an LSTM), batch, h]`: the hidden state at each
/// time index, then (LSTM) the last cell state; and what the backward pass needs.
pub(crate) fn forward<T: Real>(
    d: Dims,
    p: &[T],
    h0: &[T],
    c0: &[T],
    w_hh: &[T],
    b_hh: &[T],
) -> (Vec<T>, Saved<T>) {
    let (bh, width) = (d.batch * d.hidden, d.width());
    let lstm = d.kind == RecurrentKind::Lstm;
    let mut hs = vec![T::ZERO; (d.seq + 1) * bh];
    hs[..bh].copy_from_slice(h0);
    let mut cs = if lstm { vec![T::ZERO; (d.seq + 1) * bh] } else { Vec::new() };
    if lstm {
        cs[..bh].copy_from_slice(c0);
    }
    let sw = d.saved_width();
    let mut acts = vec![T::ZERO; d.seq * d.batch * sw];
    let mut gates = vec![T::ZERO; d.batch * width];
    let h = d.hidden;
    for k in 0..d.seq {
        let t = d.time(k);
        for row in gates.chunks_exact_mut(width) {
            row.copy_from_slice(b_hh);
        }
        let (done, rest) = hs.split_at_mut((k + 1) * bh);
        let h_prev = &done[k * bh..];
        matmul(&mut gates, h_prev, w_hh, [d.batch, h, width], Layout::Plain, true);
        let h_next = &mut rest[..bh];
        let p_t = &p[t * d.batch * width..][..d.batch * width];
        let acts_k = &mut acts[k * d.batch * sw..][..d.batch * sw];
        for b in 0..d.batch {
            let g = &gates[b * width..][..width];
            let x = &p_t[b * width..][..width];
            let hp = &h_prev[b * h..][..h];
            let hn = &mut h_next[b * h..][..h];
            match d.kind {
                RecurrentKind::RnnTanh => {
                    for j in 0..h {
                        hn[j] = (x[j] + g[j]).tanh();
                    }
                }
                RecurrentKind::RnnRelu => {
                    for j in 0..h {
                        hn[j] = (x[j] + g[j]).relu();
                    }
                }
                RecurrentKind::Lstm => {
                    let a = &mut acts_k[b * sw..][..sw];
                    let (c_done, c_rest) = cs.split_at_mut((k + 1) * bh);
                    let cp = &c_done[k * bh + b * h..][..h];
                    let cn = &mut c_rest[b * h..][..h];
                    for j in 0..h {
                        let i = sigmoid(x[j] + g[j]);
                        let f = sigmoid(x[h + j] + g[h + j]);
                        let gg = (x[2 * h + j] + g[2 * h + j]).tanh();
                        let o = sigmoid(x[3 * h + j] + g[3 * h + j]);
                        let c = f * cp[j] + i * gg;
                        cn[j] = c;
                        hn[j] = o * c.tanh();
                        (a[j], a[h + j], a[2 * h + j], a[3 * h + j]) = (i, f, gg, o);
                    }
                }
                RecurrentKind::Gru => {
                    let a = &mut acts_k[b * sw..][..sw];
                    for j in 0..h {
                        let r = sigmoid(x[j] + g[j]);
                        let z = sigmoid(x[h + j] + g[h + j]);
                        let n = (x[2 * h + j] + r * g[2 * h + j]).tanh();
                        hn[j] = n + z * (hp[j] - n);
                        (a[j], a[h + j], a[2 * h + j], a[3 * h + j]) = (r, z, n, g[2 * h + j]);
                    }
                }
            }
        }
    }
    let mut out = vec![T::ZERO; (d.seq + usize::from(lstm)) * bh];
    for k in 0..d.seq {
        out[d.time(k) * bh..][..bh].copy_from_slice(&hs[(k + 1) * bh..][..bh]);
    }
    if lstm {
        out[d.seq * bh..].copy_from_slice(&cs[d.seq * bh..]);
    }
    (out, Saved { hs, cs, acts })
}

/// Gradients of one run with respect to its inputs.
pub(crate) struct Grads<T> {
    /// `[seq, batch, G·h]`, time-major like `p`.
    pub(crate) p: Vec<T>,
    pub(crate) h0: Vec<T>,
    /// Empty unless LSTM.
    pub(crate) c0: Vec<T>,
    /// `[h, G·h]`.
    pub(crate) w_hh: Vec<T>,
    pub(crate) b_hh: Vec<T>,
}

/// Backpropagation through time: a reverse loop over the elementwise gate gradients and one
/// `[batch, G·h] × [G·h, h]` product per step, then the weight gradient as one large product
/// over all steps, `dW_hh = Σ_k h_{k-1}ᵀ dR_k`.
///
/// `dy` is the gradient of [`forward`]'s output (same layout).
pub(crate) fn backward<T: Real>(d: Dims, saved: &Saved<T>, dy: &[T], w_hh: &[T]) -> Grads<T> {
    let (h, bh, width) = (d.hidden, d.batch * d.hidden, d.width());
    let lstm = d.kind == RecurrentKind::Lstm;
    let sw = d.saved_width();
    let mut dp = vec![T::ZERO; d.seq * d.batch * width];
    // Gradients of the recurrent pre-activations, in step order (rows of dW_hh's product).
    let mut dr = vec![T::ZERO; d.seq * d.batch * width];
    let mut dh = vec![T::ZERO; bh];
    let mut dh_next = vec![T::ZERO; bh];
    let mut dc = if lstm { dy[d.seq * bh..].to_vec() } else { Vec::new() };
    for k in (0..d.seq).rev() {
        let t = d.time(k);
        for (dh, (&y, &next)) in dh.iter_mut().zip(dy[t * bh..][..bh].iter().zip(&dh_next)) {
            *dh = y + next;
        }
        let acts_k = &saved.acts[k * d.batch * sw..][..d.batch * sw];
        let dr_k = &mut dr[k * d.batch * width..][..d.batch * width];
        let dp_t = &mut dp[t * d.batch * width..][..d.batch * width];
        for b in 0..d.batch {
            let dhb = &dh[b * h..][..h];
            let g = &mut dr_k[b * width..][..width];
            let x = &mut dp_t[b * width..][..width];
            let h_new = &saved.hs[(k + 1) * bh + b * h..][..h];
            let h_prev = &saved.hs[k * bh + b * h..][..h];
            match d.kind {
                RecurrentKind::RnnTanh => {
                    for j in 0..h {
                        g[j] = dhb[j] * (T::ONE - h_new[j] * h_new[j]);
                    }
                    x.copy_from_slice(g);
                }
                RecurrentKind::RnnRelu => {
                    for j in 0..h {
                        g[j] = if h_new[j] > T::ZERO { dhb[j] } else { T::ZERO };
                    }
                    x.copy_from_slice(g);
                }
                RecurrentKind::Lstm => {
                    let a = &acts_k[b * sw..][..sw];
                    let c_new = &saved.cs[(k + 1) * bh + b * h..][..h];
                    let c_prev = &saved.cs[k * bh + b * h..][..h];
                    let dcb = &mut dc[b * h..][..h];
                    for j in 0..h {
                        let (i, f, gg, o) = (a[j], a[h + j], a[2 * h + j], a[3 * h + j]);
                        let tc = c_new[j].tanh();
                        let dcj = dcb[j] + dhb[j] * o * (T::ONE - tc * tc);
                        g[j] = dcj * gg * i * (T::ONE - i);
                        g[h + j] = dcj * c_prev[j] * f * (T::ONE - f);
                        g[2 * h + j] = dcj * i * (T::ONE - gg * gg);
                        g[3 * h + j] = dhb[j] * tc * o * (T::ONE - o);
                        dcb[j] = dcj * f;
                    }
                    x.copy_from_slice(g);
                }
                RecurrentKind::Gru => {
                    let a = &acts_k[b * sw..][..sw];
                    for j in 0..h {
                        let (r, z, n, hn) = (a[j], a[h + j], a[2 * h + j], a[3 * h + j]);
                        let dn = dhb[j] * (T::ONE - z) * (T::ONE - n * n);
                        let dz = dhb[j] * (h_prev[j] - n) * z * (T::ONE - z);
                        let dr = dn * hn * r * (T::ONE - r);
                        (x[j], x[h + j], x[2 * h + j]) = (dr, dz, dn);
                        (g[j], g[h + j], g[2 * h + j]) = (dr, dz, dn * r);
                    }
                }
            }
        }
        // dh_{k-1} = dR_k · W_hhᵀ (+ z ⊙ dh for a GRU).
        if d.kind == RecurrentKind::Gru {
            let a = acts_k;
            for b in 0..d.batch {
                for j in 0..h {
                    dh_next[b * h + j] = dh[b * h + j] * a[b * sw + h + j];
                }
            }
        }
        let accumulate = d.kind == RecurrentKind::Gru;
        matmul(&mut dh_next, dr_k, w_hh, [d.batch, width, h], Layout::RhsTransposed, accumulate);
    }
    // dW_hh = H_prevᵀ dR over every step at once: [h, seq·batch] × [seq·batch, G·h].
    let mut dw = vec![T::ZERO; h * width];
    let rows = d.seq * d.batch;
    matmul(&mut dw, &saved.hs[..rows * h], &dr, [h, rows, width], Layout::LhsTransposed, false);
    let mut db = vec![T::ZERO; width];
    for row in dr.chunks_exact(width) {
        for (db, &g) in db.iter_mut().zip(row) {
            *db += g;
        }
    }
    Grads { p: dp, h0: dh_next, c0: dc, w_hh: dw, b_hh: db }
}

/// `(1 + tanh(x / 2)) / 2`: the logistic function without overflow for any `x`.
#[inline]
fn sigmoid<T: Real>(x: T) -> T {
    T::HALF + T::HALF * (T::HALF * x).tanh()
}

/// The element types the kernel runs in: f32, and f64 for gradient checks.
pub(crate) trait Real:
    Copy
    + Default
    + PartialOrd
    + std::fmt::Debug
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    fn tanh(self) -> Self;
    fn relu(self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF: Self = 0.5;
    /// Eigen's rational approximation (`ptanh_float`): a few ulp from `f32::tanh`, inlined
    /// instead of a libm call, which took a quarter of the LSTM's time (perf, see
    /// docs/benchmarks.md).
    #[inline]
    fn tanh(self) -> Self {
        const BOUND: f32 = 7.905_311;
        let x = self.clamp(-BOUND, BOUND);
        let x2 = x * x;
        let mut p = x2 * -2.760_768_6e-16 + 2.000_188e-13;
        p = x2 * p + -8.604_672e-11;
        p = x2 * p + 5.122_297e-8;
        p = x2 * p + 1.485_722_4e-5;
        p = x2 * p + 6.372_619_3e-4;
        p = x2 * p + 4.893_524_6e-3;
        let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
        q = x2 * q + 2.268_434_6e-3;
        q = x2 * q + 4.893_525e-3;
        x * p / q
    }
    #[inline]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF: Self = 0.5;
    #[inline]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

/// How [`matmul`]'s operands are stored.
#[derive(Clone, Copy)]
enum Layout {
    /// `lhs` is `[m, k]`, `rhs` is `[k, n]`.
    Plain,
    /// `lhs` is `[m, k]`, `rhs` is stored as `[n, k]`.
    RhsTransposed,
    /// `lhs` is stored as `[k, m]`, `rhs` is `[k, n]`.
    LhsTransposed,
}

/// `dst[m, n] (+)= lhs · rhs` with gemm, row-major; transposes are strides, not copies.
fn matmul<T: Real>(
    dst: &mut [T],
    lhs: &[T],
    rhs: &[T],
    [m, k, n]: [usize; 3],
    layout: Layout,
    accumulate: bool,
) {
    assert!(
        dst.len() == m * n && lhs.len() == m * k && rhs.len() == k * n,
        "recurrent kernel: matmul of [{m}, {k}] by [{k}, {n}] got buffers of {}, {} and {}",
        lhs.len(),
        rhs.len(),
        dst.len()
    );
    let (m_, k_, n_) = (m as isize, k as isize, n as isize);
    let (lhs_cs, lhs_rs) = match layout {
        Layout::LhsTransposed => (m_, 1),
        _ => (1, k_),
    };
    let (rhs_cs, rhs_rs) = match layout {
        Layout::RhsTransposed => (k_, 1),
        _ => (1, n_),
    };
    let _ = n_;
    // Small products lose more to thread hand-off than they gain.
    let parallelism =
        if m * n * k >= 1 << 20 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the assertion above checks that each buffer holds exactly the elements the sizes
    // and strides address, and `dst` does not alias `lhs` or `rhs` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}
