//! The soft-DTW recursions swept by anti-diagonals, whose cells are independent, as SIMD lanes.
//!
//! Cell `(i, j)` lies on diagonal `k = i + j`. Indexed by `t = i + 1`, the forward recursion
//! reads `R(i-1, j)` and `R(i, j-1)` at `t - 1` and `t` of diagonal `k - 1` and `R(i-1, j-1)` at
//! `t - 1` of diagonal `k - 2`: three shifted contiguous slices, so the loop over a diagonal is a
//! plain loop over equal-length slices that LLVM vectorises, `exp`/`ln` included (`math.rs`).
//!
//! The forward pass also stores, per cell, the soft-min weights of its three predecessors. These
//! are exactly the factors of Cuturi & Blondel's backward recursion: the paper's
//! `exp((R(i+1, j) - R(i, j) - D(i+1, j)) / γ)` is the weight of `(i, j)` in the soft-min of
//! `(i+1, j)`. The backward pass `E(i, j) = Σ_successors E(s) · w_s(i, j)` then needs no `exp`
//! at all and runs over the diagonals in reverse, handing each diagonal of `E` to a sink (a
//! gradient accumulator or a dense matrix). Weights are stored diagonal-major: diagonal `k`
//! occupies `offsets[k]..offsets[k + 1]`, indexed by `i - lo(k)`.
//!
//! On x86-64 the kernel is compiled a second time with AVX2 and FMA and picked at run time.

use super::math::SoftFloat;

/// The local costs of one anti-diagonal.
pub(crate) trait DiagonalCost<T> {
    /// Writes `cost(i, k - i)` for `i` in `lo..lo + out.len()` to `out`.
    fn fill(&self, k: usize, lo: usize, out: &mut [T]);
}

/// Takes the expected alignment `E = ∂value/∂cost` one anti-diagonal at a time.
pub(crate) trait DiagonalSink<T> {
    /// `e[t]` is `E(lo + t, k - lo - t)`.
    fn take(&mut self, k: usize, lo: usize, e: &[T]);
}

/// Buffers reused between calls (one per thread when a batch runs in parallel).
#[derive(Debug, Default)]
pub(crate) struct Scratch<T> {
    cost: Vec<T>,
    diagonals: [Vec<T>; 3],
    weights: [Vec<T>; 3],
    offsets: Vec<usize>,
}

impl<T> Scratch<T> {
    /// The heap memory the buffers hold.
    pub(crate) fn bytes(&self) -> usize {
        let vecs = self.diagonals.iter().chain(&self.weights).chain([&self.cost]);
        vecs.map(|v| v.capacity() * size_of::<T>()).sum::<usize>()
            + self.offsets.capacity() * size_of::<usize>()
    }
}

/// Soft-DTW value of the `n × m` problem whose costs `cost` supplies, with smoothing `gamma`;
/// hands `E` to `sink`, diagonal by diagonal from the last to the first.
pub(crate) fn soft_dtw_diagonals<T: SoftFloat, C: DiagonalCost<T>, S: DiagonalSink<T>>(
    n: usize,
    m: usize,
    gamma: T,
    cost: &C,
    sink: &mut S,
    scratch: &mut Scratch<T>,
) -> T {
    assert!(n > 0 && m > 0, "soft_dtw: empty {n} x {m} problem");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { run_avx2_fma(n, m, gamma, cost, sink, scratch) };
        }
    }
    run::<T, C, S, false>(n, m, gamma, cost, sink, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2_fma<T: SoftFloat, C: DiagonalCost<T>, S: DiagonalSink<T>>(
    n: usize,
    m: usize,
    gamma: T,
    cost: &C,
    sink: &mut S,
    scratch: &mut Scratch<T>,
) -> T {
    run::<T, C, S, true>(n, m, gamma, cost, sink, scratch)
}

#[inline(always)]
fn run<T: SoftFloat, C: DiagonalCost<T>, S: DiagonalSink<T>, const FMA: bool>(
    n: usize,
    m: usize,
    gamma: T,
    cost: &C,
    sink: &mut S,
    scratch: &mut Scratch<T>,
) -> T {
    let last = n + m - 2;
    let row_lo = |k: usize| k.saturating_sub(m - 1);
    let row_hi = |k: usize| k.min(n - 1);
    let Scratch { cost: costs, diagonals, weights, offsets } = scratch;
    offsets.clear();
    offsets.push(0);
    for k in 0..=last + 1 {
        let len = if k <= last { row_hi(k) + 1 - row_lo(k) } else { 0 };
        offsets.push(offsets[k] + len);
    }
    // The backward pass reads weights one row past a diagonal's ends (times E = 0 there), so
    // the arrays carry finite padding.
    for w in weights.iter_mut() {
        w.resize(n * m + n + 4, T::ZERO);
        w[n * m..].fill(T::ZERO);
    }
    costs.resize(n, T::ZERO);
    let [wu, wl, wd] = weights;
    let [mut p2, mut p1, mut cur] = diagonals.each_mut().map(std::mem::take);
    for buf in [&mut p2, &mut p1, &mut cur] {
        buf.clear();
        buf.resize(n + 3, T::INFINITY);
    }

    // Forward. R(-1, -1) = 0 sits at t = 0 of diagonal -2; everything else outside is +∞. After
    // each diagonal the cells just beside its run are reset, which is all the next two read.
    p2[0] = T::ZERO;
    let inv_gamma = T::ONE / gamma;
    for (k, &at) in offsets[..=last].iter().enumerate() {
        let (lo, hi) = (row_lo(k), row_hi(k));
        let len = hi + 1 - lo;
        cost.fill(k, lo, &mut costs[..len]);
        forward_step::<T, FMA>(
            &mut cur[lo + 1..lo + 1 + len],
            [&p1[lo..lo + len], &p1[lo + 1..lo + 1 + len], &p2[lo..lo + len]],
            &costs[..len],
            gamma,
            inv_gamma,
            [&mut wu[at..at + len], &mut wl[at..at + len], &mut wd[at..at + len]],
        );
        cur[lo] = T::INFINITY;
        cur[hi + 2] = T::INFINITY;
        std::mem::swap(&mut p2, &mut p1);
        std::mem::swap(&mut p1, &mut cur);
    }
    let value = p1[n];

    // Backward. E(n-1, m-1) = 1 seeds it; outside the matrix E is 0.
    for buf in [&mut p2, &mut p1, &mut cur] {
        buf.fill(T::ZERO);
    }
    cur[n] = T::ONE;
    sink.take(last, n - 1, &cur[n..n + 1]);
    std::mem::swap(&mut p2, &mut p1);
    std::mem::swap(&mut p1, &mut cur);
    for k in (0..last).rev() {
        let (lo, hi) = (row_lo(k), row_hi(k));
        let len = hi + 1 - lo;
        // Successors of row i: (i+1, j) and (i, j+1) on diagonal k+1, (i+1, j+1) on k+2.
        // Sums before differences: every index is at least the block's offset minus one, and
        // offsets of diagonals past the first are positive.
        let down = offsets[k + 1] + lo + 1 - row_lo(k + 1);
        let right = offsets[k + 1] + lo - row_lo(k + 1);
        let diag = offsets[k + 2] + lo + 1 - row_lo(k + 2);
        backward_step(
            &mut cur[lo + 1..lo + 1 + len],
            [&p1[lo + 2..lo + 2 + len], &p1[lo + 1..lo + 1 + len], &p2[lo + 2..lo + 2 + len]],
            [&wu[down..down + len], &wl[right..right + len], &wd[diag..diag + len]],
        );
        cur[lo] = T::ZERO;
        cur[hi + 2] = T::ZERO;
        sink.take(k, lo, &cur[lo + 1..lo + 1 + len]);
        std::mem::swap(&mut p2, &mut p1);
        std::mem::swap(&mut p1, &mut cur);
    }
    *diagonals = [p2, p1, cur];
    value
}

/// One diagonal of `R(i, j) = cost(i, j) + min^γ(up, left, diag)` with `min^γ` written as
/// `min - γ ln Σ exp(-(x - min)/γ)`, storing the three normalised weights.
#[inline(always)]
fn forward_step<T: SoftFloat, const FMA: bool>(
    cur: &mut [T],
    [up, left, diag]: [&[T]; 3],
    cost: &[T],
    gamma: T,
    inv_gamma: T,
    [wu, wl, wd]: [&mut [T]; 3],
) {
    let len = cur.len();
    let (up, left, diag, cost) = (&up[..len], &left[..len], &diag[..len], &cost[..len]);
    let (wu, wl, wd) = (&mut wu[..len], &mut wl[..len], &mut wd[..len]);
    for t in 0..len {
        let (a, b, c) = (up[t], left[t], diag[t]);
        let min = a.min2(b).min2(c);
        let ea = T::exp_nonpositive::<FMA>((min - a) * inv_gamma);
        let eb = T::exp_nonpositive::<FMA>((min - b) * inv_gamma);
        let ec = T::exp_nonpositive::<FMA>((min - c) * inv_gamma);
        let sum = ea + eb + ec;
        let inv = T::ONE / sum;
        cur[t] = cost[t] + min - gamma * T::ln_1_to_3::<FMA>(sum);
        wu[t] = ea * inv;
        wl[t] = eb * inv;
        wd[t] = ec * inv;
    }
}

/// One diagonal of `E(i, j) = E(i+1, j) w↓ + E(i, j+1) w→ + E(i+1, j+1) w↘`.
#[inline(always)]
fn backward_step<T: SoftFloat>(
    cur: &mut [T],
    [down, right, diag]: [&[T]; 3],
    [w_down, w_right, w_diag]: [&[T]; 3],
) {
    let len = cur.len();
    let (down, right, diag) = (&down[..len], &right[..len], &diag[..len]);
    let (w_down, w_right, w_diag) = (&w_down[..len], &w_right[..len], &w_diag[..len]);
    for t in 0..len {
        cur[t] = down[t] * w_down[t] + right[t] * w_right[t] + diag[t] * w_diag[t];
    }
}
