//! Soft-DTW of up to `L` pairs at once, one pair per SIMD lane ("pairs as lanes").
//!
//! `kernel.rs` vectorises along an anti-diagonal, so each of a pair's `n + m - 1` diagonals pays
//! a loop set-up and a scalar remainder per loop, and a short diagonal fills few lanes. Here the
//! pairs of a group (8 f32 or 4 f64: one AVX2 register) are interleaved point by point, a
//! `[T; L]` per value, and both recursions run on one grid that covers all of them: every cell
//! update is one full-width vector operation whatever the diagonal's length, with no remainder.
//! The anti-diagonal order stays (`kernel.rs` explains its indexing), so the loads are
//! contiguous; the forward pass is one loop per diagonal (costs from the points, soft-min,
//! weights) and so is the backward pass (`E` from the stored weights, folded straight into the
//! gradient accumulators).
//!
//! Pairs shorter than the grid sit in its top-left corner, their points padded with zeros.
//! Cells outside a pair's box hold finite values that never flow into it: the forward recursion
//! only looks up and left, so a pair's value is read at its own end cell; the backward recursion
//! is seeded at that cell, so `E` outside the box stays exactly zero (zero successors times
//! finite weights) and the gradient folds add nothing there.

use super::math::SoftFloat;
use super::points::{Bytes, vec_bytes};

/// One pair of a group: its points, row-major `[len][dim]`, and where its results go.
#[derive(Debug)]
pub(crate) struct LanePair<'a, T> {
    pub x: &'a [T],
    pub y: &'a [T],
    pub value: &'a mut T,
    pub grad_x: &'a mut [T],
    pub grad_y: &'a mut [T],
}

/// Buffers reused between groups; every entry is one value of each of the `L` lanes.
#[derive(Debug, Default)]
pub(crate) struct LaneScratch<T, const L: usize> {
    /// The points of `x`, `[n][dim]`.
    xt: Vec<[T; L]>,
    /// The points of `y`, reversed, `[m][dim]`.
    yr: Vec<[T; L]>,
    diagonals: [Vec<[T; L]>; 3],
    /// Two of the three soft-min weights of every cell (of its up and left predecessors; the
    /// diagonal one is 1 minus both), diagonal-major as in `kernel.rs`. Kept together, the
    /// backward pass reads one stream: the cells of diagonal `k + 1`, which it reads again at
    /// the next step, from cache, for the diagonal weights.
    weights: Vec<[[T; L]; 2]>,
    offsets: Vec<usize>,
    /// `Σ_j E_ij` by `i`.
    row_sums: Vec<[T; L]>,
    /// `Σ_i E_ij` by reversed `j`.
    col_sums: Vec<[T; L]>,
    /// `Σ_j E_ij y_j`, `[n][dim]`.
    ey: Vec<[T; L]>,
    /// `Σ_i E_ij x_i`, `[m][dim]` with `j` reversed.
    ex: Vec<[T; L]>,
}

impl<T, const L: usize> Bytes for LaneScratch<T, L> {
    fn bytes(&self) -> usize {
        let Self { xt, yr, diagonals, weights, offsets, row_sums, col_sums, ey, ex } = self;
        let lanes = [xt, yr, row_sums, col_sums, ey, ex].into_iter().chain(diagonals);
        lanes.map(vec_bytes).sum::<usize>() + vec_bytes(weights) + vec_bytes(offsets)
    }
}

/// The bytes of the weights of one group of `L` pairs on an `n × m` grid.
pub(crate) fn lane_weight_bytes<T, const L: usize>(n: usize, m: usize) -> usize {
    2 * n * m * L * size_of::<T>()
}

/// Soft-DTW of `pairs` (1 to `L`) with smoothing `gamma`: writes each pair's value and its
/// gradients with respect to both sequences.
///
/// # Panics
/// If `pairs` is empty or longer than `L`, `dim` is 0, a sequence is empty, or a sequence's or
/// gradient's length is not a multiple of `dim` matching its partner.
pub(crate) fn soft_dtw_lanes<T: SoftFloat, const L: usize>(
    pairs: &mut [LanePair<'_, T>],
    dim: usize,
    gamma: T,
    scratch: &mut LaneScratch<T, L>,
) {
    assert!(
        !pairs.is_empty() && pairs.len() <= L && dim > 0,
        "soft_dtw_lanes: {} pairs for {L} lanes, dim {dim}",
        pairs.len()
    );
    for p in pairs.iter() {
        assert!(
            !p.x.is_empty()
                && !p.y.is_empty()
                && p.x.len() % dim == 0
                && p.y.len() % dim == 0
                && p.grad_x.len() == p.x.len()
                && p.grad_y.len() == p.y.len(),
            "soft_dtw_lanes: {} and {} values ({} and {} gradients) for dim {dim}",
            p.x.len(),
            p.y.len(),
            p.grad_x.len(),
            p.grad_y.len()
        );
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { run_avx2_fma(pairs, dim, gamma, scratch) };
        }
    }
    run::<T, L, false>(pairs, dim, gamma, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2_fma<T: SoftFloat, const L: usize>(
    pairs: &mut [LanePair<'_, T>],
    dim: usize,
    gamma: T,
    scratch: &mut LaneScratch<T, L>,
) {
    run::<T, L, true>(pairs, dim, gamma, scratch)
}

#[inline(always)]
fn run<T: SoftFloat, const L: usize, const FMA: bool>(
    pairs: &mut [LanePair<'_, T>],
    dim: usize,
    gamma: T,
    scratch: &mut LaneScratch<T, L>,
) {
    let count = pairs.len();
    let n = pairs.iter().map(|p| p.x.len() / dim).max().unwrap_or(1);
    let m = pairs.iter().map(|p| p.y.len() / dim).max().unwrap_or(1);
    let last = n + m - 2;
    let row_lo = |k: usize| k.saturating_sub(m - 1);
    let row_hi = |k: usize| k.min(n - 1);
    let (zero, inf) = ([T::ZERO; L], [T::INFINITY; L]);
    let LaneScratch { xt, yr, diagonals, weights, offsets, row_sums, col_sums, ey, ex } = scratch;
    pack(xt, n, dim, pairs.iter().map(|p| p.x), false);
    pack(yr, m, dim, pairs.iter().map(|p| p.y), true);
    // Each lane's end cell: its diagonal and row. Unused lanes end nowhere.
    let mut ends = [(usize::MAX, 0); L];
    for (end, p) in ends.iter_mut().zip(pairs.iter()) {
        let (nl, ml) = (p.x.len() / dim, p.y.len() / dim);
        *end = (nl + ml - 2, nl - 1);
    }
    // Diagonals are stored last first, so that the backward pass, the one that waits for them,
    // reads the weights as one ascending stream that the hardware prefetcher follows (read in
    // the order they were written, 40 % of its time went to waiting on the cache). It reads up
    // to one cell before a diagonal and two past it, times E = 0: the neighbouring diagonal or
    // `PAD` finite cells at either end. Diagonals `last + 1` and `last + 2` are empty.
    const PAD: usize = 4;
    offsets.clear();
    offsets.resize(last + 3, PAD);
    for k in (0..last).rev() {
        offsets[k] = offsets[k + 1] + row_hi(k + 1) + 1 - row_lo(k + 1);
    }
    weights.resize(n * m + 2 * PAD, [zero; 2]);
    weights[..PAD].fill([zero; 2]);
    weights[PAD + n * m..].fill([zero; 2]);
    let [mut p2, mut p1, mut cur] = diagonals.each_mut().map(std::mem::take);
    for buf in [&mut p2, &mut p1, &mut cur] {
        buf.clear();
        buf.resize(n + 3, inf);
    }

    // Forward, as in `kernel.rs`: R(-1, -1) = 0 at t = 0 of diagonal -2, +∞ elsewhere outside.
    // The recursion runs on `R · log2(e) / γ`: the soft-min then needs `2^x` and `log2`, and
    // neither the three divisions by γ nor the reductions `x / ln 2` of a natural `exp`.
    p2[0] = zero;
    let scale = T::from_f64(std::f64::consts::LOG2_E) / gamma;
    let mut values = zero;
    for (k, &at) in offsets[..=last].iter().enumerate() {
        let (lo, hi) = (row_lo(k), row_hi(k));
        let len = hi + 1 - lo;
        let r0 = m - 1 + lo - k;
        forward_diagonal::<T, L, FMA>(
            &mut cur[lo + 1..lo + 1 + len],
            [&p1[lo..lo + len], &p1[lo + 1..lo + 1 + len], &p2[lo..lo + len]],
            [&xt[lo * dim..(lo + len) * dim], &yr[r0 * dim..(r0 + len) * dim]],
            dim,
            scale,
            &mut weights[at..at + len],
        );
        for (l, &(end, row)) in ends.iter().enumerate() {
            if end == k {
                values[l] = cur[row + 1][l] / scale;
            }
        }
        cur[lo] = inf;
        cur[hi + 2] = inf;
        std::mem::swap(&mut p2, &mut p1);
        std::mem::swap(&mut p1, &mut cur);
    }

    // Backward: E is 0 beyond the grid and beyond each pair's box; each lane is seeded with
    // E = 1 at its end cell, after the diagonal that holds it was computed (as 0).
    for buf in [&mut p2, &mut p1, &mut cur] {
        buf.fill(zero);
    }
    for (buf, len) in
        [(&mut *row_sums, n), (&mut *col_sums, m), (&mut *ey, n * dim), (&mut *ex, m * dim)]
    {
        buf.clear();
        buf.resize(len, zero);
    }
    for k in (0..=last).rev() {
        let (lo, hi) = (row_lo(k), row_hi(k));
        let len = hi + 1 - lo;
        let r0 = m - 1 + lo - k;
        // Successors of row i: (i+1, j) and (i, j+1) on diagonal k+1, (i+1, j+1) on k+2. Sums
        // before differences keep every index non-negative (see `kernel.rs`).
        let down = offsets[k + 1] + lo + 1 - row_lo(k + 1);
        let right = offsets[k + 1] + lo - row_lo(k + 1);
        let diag = offsets[k + 2] + lo + 1 - row_lo(k + 2);
        backward_diagonal::<T, L, FMA>(
            &mut cur[lo + 1..lo + 1 + len],
            [&p1[lo + 2..lo + 2 + len], &p1[lo + 1..lo + 1 + len], &p2[lo + 2..lo + 2 + len]],
            [&weights[down..down + len], &weights[right..right + len], &weights[diag..diag + len]],
            [&xt[lo * dim..(lo + len) * dim], &yr[r0 * dim..(r0 + len) * dim]],
            dim,
            [&mut row_sums[lo..lo + len], &mut col_sums[r0..r0 + len]],
            [&mut ey[lo * dim..(lo + len) * dim], &mut ex[r0 * dim..(r0 + len) * dim]],
        );
        for (l, &(end, row)) in ends.iter().enumerate() {
            if end == k {
                // The seed's own fold: E = 1 at (row, k - row), reversed column r.
                let r = r0 + row - lo;
                cur[row + 1][l] = T::ONE;
                row_sums[row][l] += T::ONE;
                col_sums[r][l] += T::ONE;
                for c in 0..dim {
                    ey[row * dim + c][l] += yr[r * dim + c][l];
                    ex[r * dim + c][l] += xt[row * dim + c][l];
                }
            }
        }
        cur[lo] = zero;
        cur[hi + 2] = zero;
        std::mem::swap(&mut p2, &mut p1);
        std::mem::swap(&mut p1, &mut cur);
    }
    *diagonals = [p2, p1, cur];

    // ∂/∂x_i = 2 (x_i Σ_j E_ij - Σ_j E_ij y_j), ∂/∂y_j likewise.
    let two = T::ONE + T::ONE;
    for (l, pair) in pairs.iter_mut().enumerate().take(count) {
        *pair.value = values[l];
        for (i, (g, x)) in
            pair.grad_x.chunks_exact_mut(dim).zip(pair.x.chunks_exact(dim)).enumerate()
        {
            for c in 0..dim {
                g[c] = two * (x[c] * row_sums[i][l] - ey[i * dim + c][l]);
            }
        }
        for (j, (g, y)) in
            pair.grad_y.chunks_exact_mut(dim).zip(pair.y.chunks_exact(dim)).enumerate()
        {
            let r = m - 1 - j;
            for c in 0..dim {
                g[c] = two * (y[c] * col_sums[r][l] - ex[r * dim + c][l]);
            }
        }
    }
}

/// Lane `l` of `pack(series)[p * dim + c]` is coordinate `c` of point `p` of `series[l]`
/// (points reversed within the `len` rows if `reverse`); zero past a series' end.
fn pack<'a, T: SoftFloat, const L: usize>(
    out: &mut Vec<[T; L]>,
    len: usize,
    dim: usize,
    series: impl Iterator<Item = &'a [T]>,
    reverse: bool,
) {
    out.clear();
    out.resize(len * dim, [T::ZERO; L]);
    for (l, s) in series.enumerate() {
        for (i, point) in s.chunks_exact(dim).enumerate() {
            let to = if reverse { len - 1 - i } else { i };
            for (c, &v) in point.iter().enumerate() {
                out[to * dim + c][l] = v;
            }
        }
    }
}

/// `[e(0), ..., e(L - 1)]` for an expression `e` of the lane `l`: one vector operation once
/// unrolled. A macro rather than a function taking a closure: a closure that LLVM declines to
/// inline is compiled without the AVX2+FMA features of the kernel that calls it, and its
/// `mul_add` becomes a call to libm's `fma` (three times slower, as a benchmark binary showed).
macro_rules! each {
    ($l:ident => $e:expr) => {{
        let mut out = [T::ZERO; L];
        for ($l, out) in out.iter_mut().enumerate() {
            *out = $e;
        }
        out
    }};
}

/// One diagonal of `R(i, j) = cost(i, j) + min^γ(up, left, diag)`, the cost the squared
/// distance of `xs[t]` and `ys[t]` (`dim` entries each), storing two of the soft-min weights;
/// everything in units of `γ / scale` (`scale = log2(e) / γ`), in which the soft-min is
/// `min - log2 Σ 2^(min - x)`.
#[inline(always)]
fn forward_diagonal<T: SoftFloat, const L: usize, const FMA: bool>(
    cur: &mut [[T; L]],
    [up, left, diag]: [&[[T; L]]; 3],
    [xs, ys]: [&[[T; L]]; 2],
    dim: usize,
    scale: T,
    weights: &mut [[[T; L]; 2]],
) {
    let len = cur.len();
    let (up, left, diag) = (&up[..len], &left[..len], &diag[..len]);
    let weights = &mut weights[..len];
    let points = xs[..len * dim].chunks_exact(dim).zip(ys[..len * dim].chunks_exact(dim));
    for (t, (xp, yp)) in points.enumerate() {
        let mut cost = [T::ZERO; L];
        for (xc, yc) in xp.iter().zip(yp) {
            cost = each!(l => {
                let d = xc[l] - yc[l];
                T::madd::<FMA>(d, d, cost[l])
            });
        }
        let (a, b, c) = (up[t], left[t], diag[t]);
        let min: [T; L] = each!(l => a[l].min2(b[l]).min2(c[l]));
        let ea: [T; L] = each!(l => T::exp2_nonpositive::<FMA>(min[l] - a[l]));
        let eb: [T; L] = each!(l => T::exp2_nonpositive::<FMA>(min[l] - b[l]));
        let ec: [T; L] = each!(l => T::exp2_nonpositive::<FMA>(min[l] - c[l]));
        let sum: [T; L] = each!(l => ea[l] + eb[l] + ec[l]);
        // Only `ea` and `eb` are normalised and stored: the backward pass takes the third weight
        // as `1 - wu - wl`. A third less memory traffic for the weights, which at 256 × 256 no
        // longer fit in L2, made the kernel 7 % faster; in f32 that weight is then off by a
        // few 1e-7 in absolute rather than relative terms, the size of the rounding of `E`.
        let inv = T::recip_lanes::<L, FMA>(sum);
        let log2 = T::log2_1_to_3_lanes::<L, FMA>(sum);
        cur[t] = each!(l => T::madd::<FMA>(cost[l], scale, min[l]) - log2[l]);
        weights[t] = [each!(l => ea[l] * inv[l]), each!(l => eb[l] * inv[l])];
    }
}

/// One diagonal of `E(i, j) = E(i+1, j) w↓ + E(i, j+1) w→ + E(i+1, j+1) w↘`, each `E` added to
/// its row's and column's sums and, times the other sequence's point, to `ey` and `ex`.
#[inline(always)]
fn backward_diagonal<T: SoftFloat, const L: usize, const FMA: bool>(
    cur: &mut [[T; L]],
    [down, right, diag]: [&[[T; L]]; 3],
    [w_down, w_right, w_diag]: [&[[[T; L]; 2]]; 3],
    [xs, ys]: [&[[T; L]]; 2],
    dim: usize,
    [row_sums, col_sums]: [&mut [[T; L]]; 2],
    [ey, ex]: [&mut [[T; L]]; 2],
) {
    let len = cur.len();
    let (down, right, diag) = (&down[..len], &right[..len], &diag[..len]);
    let (w_down, w_right, w_diag) = (&w_down[..len], &w_right[..len], &w_diag[..len]);
    let (row_sums, col_sums) = (&mut row_sums[..len], &mut col_sums[..len]);
    let points = xs[..len * dim].chunks_exact(dim).zip(ys[..len * dim].chunks_exact(dim));
    let folds = ey[..len * dim].chunks_exact_mut(dim).zip(ex[..len * dim].chunks_exact_mut(dim));
    for (t, ((xp, yp), (eyp, exp))) in points.zip(folds).enumerate() {
        prefetch(w_down.as_ptr().wrapping_add(t + PREFETCH));
        let e: [T; L] = each!(l => {
            let [wu, wl] = w_diag[t];
            let wd = (T::ONE - wu[l] - wl[l]).max2(T::ZERO);
            let e = diag[t][l] * wd;
            let e = T::madd::<FMA>(right[t][l], w_right[t][1][l], e);
            T::madd::<FMA>(down[t][l], w_down[t][0][l], e)
        });
        cur[t] = e;
        row_sums[t] = each!(l => row_sums[t][l] + e[l]);
        col_sums[t] = each!(l => col_sums[t][l] + e[l]);
        for c in 0..dim {
            eyp[c] = each!(l => T::madd::<FMA>(e[l], yp[c][l], eyp[c][l]));
            exp[c] = each!(l => T::madd::<FMA>(e[l], xp[c][l], exp[c][l]));
        }
    }
}

/// How many cells ahead the backward pass prefetches the weights it streams (one 64-byte line
/// per cell for 8 f32 lanes). The hardware prefetcher alone left it waiting on them; 16 cells
/// ahead made it 4 % faster, 8 and 48 no different from 16.
const PREFETCH: usize = 16;

/// Asks for the cache line at `p` (a hint, on x86-64 only).
#[inline(always)]
fn prefetch<V>(p: *const V) {
    // SAFETY: a prefetch is a hint; it does not fault, whatever the address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Rng;
    use crate::soft::points::{PointBatch, soft_dtw_points_per_pair};

    type KernelCopy<T, const L: usize> =
        fn(&mut [LanePair<'_, T>], usize, T, &mut LaneScratch<T, L>);

    /// Both copies of the kernel (portable and, where the CPU has it, AVX2+FMA) on one group of
    /// very different boxes, against the per-pair kernel.
    fn check<T: SoftFloat, const L: usize>(lengths: &[(usize, usize)], tol: f64) {
        let (dim, gamma) = (2, T::from_f64(0.2));
        let n = lengths.iter().map(|l| l.0).max().unwrap_or(1);
        let m = lengths.iter().map(|l| l.1).max().unwrap_or(1);
        let mut rng = Rng::new(31);
        let x: Vec<T> = (0..lengths.len() * n * dim).map(|_| T::from_f64(rng.uniform())).collect();
        let y: Vec<T> = (0..lengths.len() * m * dim).map(|_| T::from_f64(rng.uniform())).collect();
        let x_lengths: Vec<usize> = lengths.iter().map(|l| l.0).collect();
        let y_lengths: Vec<usize> = lengths.iter().map(|l| l.1).collect();
        let batch =
            PointBatch { x: &x, y: &y, n, m, dim, x_lengths: &x_lengths, y_lengths: &y_lengths };
        let want = soft_dtw_points_per_pair(batch, gamma);
        let mut copies: Vec<KernelCopy<T, L>> = vec![run::<T, L, false>];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            copies.push(soft_dtw_lanes::<T, L>);
        }
        let mut scratch = LaneScratch::default();
        for copy in copies {
            let mut values = vec![T::ZERO; lengths.len()];
            let mut grad_x = vec![T::ZERO; x.len()];
            let mut grad_y = vec![T::ZERO; y.len()];
            let mut pairs: Vec<LanePair<'_, T>> = values
                .iter_mut()
                .zip(grad_x.chunks_mut(n * dim).zip(grad_y.chunks_mut(m * dim)))
                .enumerate()
                .map(|(b, (value, (gx, gy)))| {
                    let (nb, mb) = lengths[b];
                    LanePair {
                        x: &x[b * n * dim..][..nb * dim],
                        y: &y[b * m * dim..][..mb * dim],
                        value,
                        grad_x: &mut gx[..nb * dim],
                        grad_y: &mut gy[..mb * dim],
                    }
                })
                .collect();
            // Twice on the same scratch: leftovers of a larger grid must not leak.
            copy(&mut pairs, dim, gamma, &mut scratch);
            copy(&mut pairs[..1], dim, gamma, &mut scratch);
            drop(pairs);
            for (got, want, what) in [
                (&values, &want.values, "value"),
                (&grad_x, &want.grad_x, "grad_x"),
                (&grad_y, &want.grad_y, "grad_y"),
            ] {
                for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                    let (g, w) = (g.to_f64(), w.to_f64());
                    assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{k}]: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn pairs_of_any_shape_share_a_group() {
        check::<f64, 4>(&[(1, 1), (9, 1), (1, 8), (9, 8)], 1e-12);
        check::<f64, 4>(&[(4, 6), (9, 8)], 1e-12);
        check::<f32, 8>(&[(9, 8), (1, 1), (9, 1), (1, 8), (2, 3), (8, 8), (9, 7), (5, 5)], 1e-5);
        // Grids longer than the prefetch distance, wide and tall.
        check::<f64, 4>(&[(53, 32), (16, 17), (17, 16), (33, 1)], 1e-12);
        check::<f64, 4>(&[(15, 50), (1, 48), (16, 16), (2, 31)], 1e-12);
        check::<f32, 8>(&[(35, 32); 8], 1e-4);
    }

    #[test]
    #[should_panic(expected = "soft_dtw_lanes: 0 pairs for 4 lanes, dim 2")]
    fn an_empty_group_is_rejected() {
        soft_dtw_lanes::<f64, 4>(&mut [], 2, 1.0, &mut LaneScratch::default());
    }
}
