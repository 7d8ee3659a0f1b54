//! The fast univariate kernel: anti-diagonals, whose cells are independent, as SIMD lanes.
//!
//! Cell `(i, j)` lies on anti-diagonal `k = i + j` and depends on `(i-1, j)` and `(i, j-1)` on
//! diagonal `k - 1` and on `(i-1, j-1)` on diagonal `k - 2`. Indexed by `i`, a diagonal's cells
//! read three shifted, contiguous slices of the two previous diagonals, `a[i]`, and
//! `b[k - i]`, which is contiguous in `i` once `b` is reversed. The inner loop is then a plain
//! loop over equal-length slices that LLVM vectorises; on x86-64 it is compiled a second time
//! with AVX2 enabled and picked at run time. Diagonals go in pairs: the second reads the
//! first from registers (one lane shift) instead of memory, six loads per two cells instead
//! of ten, and a narrow band pays the per-pass set-up half as often. The arithmetic per cell
//! is the same as the row kernel's, so both give bit-identical results.

use crate::float::Float;
use crate::window::Band;

/// DTW cost of univariate `a` (rows) and `b` (columns) with cost `|a_i - b_j|` (`ABS`) or
/// `(a_i - b_j)²`, in `O(m)` memory. `Some(cost)` iff `cost <= bound`; with a finite bound it
/// stops after a strip whose last row exceeds it everywhere.
pub(crate) fn diagonal_cost<T: Float>(
    a: &[T],
    b: &[T],
    band: &Band,
    abs: bool,
    bound: T,
) -> Option<T> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { diagonal_avx2(a, b, band, abs, bound) };
        }
    }
    diagonal_portable(a, b, band, abs, bound)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn diagonal_avx2<T: Float>(a: &[T], b: &[T], band: &Band, abs: bool, bound: T) -> Option<T> {
    match (abs, bound < T::INFINITY) {
        (false, false) => diagonals::<T, false, false>(a, b, band, bound),
        (false, true) => diagonals::<T, false, true>(a, b, band, bound),
        (true, false) => diagonals::<T, true, false>(a, b, band, bound),
        (true, true) => diagonals::<T, true, true>(a, b, band, bound),
    }
}

fn diagonal_portable<T: Float>(a: &[T], b: &[T], band: &Band, abs: bool, bound: T) -> Option<T> {
    match (abs, bound < T::INFINITY) {
        (false, false) => diagonals::<T, false, false>(a, b, band, bound),
        (false, true) => diagonals::<T, false, true>(a, b, band, bound),
        (true, false) => diagonals::<T, true, false>(a, b, band, bound),
        (true, true) => diagonals::<T, true, true>(a, b, band, bound),
    }
}

/// Rows per strip: the strip's three diagonal buffers and its slice of `a` (about 16 KiB in
/// f64) stay in L1; without strips, long series stream five arrays through L2 per diagonal.
const STRIP: usize = 512;

#[inline(always)]
fn diagonals<T: Float, const ABS: bool, const BOUNDED: bool>(
    a: &[T],
    b: &[T],
    band: &Band,
    bound: T,
) -> Option<T> {
    let (n, m) = (a.len(), b.len());
    let inf = T::INFINITY;
    // Runs are computed in whole chunks of LANES cells, past their end into padding: the extra
    // cells read and write only positions that no later diagonal reads before rewriting them
    // (see the note on the sentinels below), so they need no remainder loop.
    // `b` reversed, with one cell in front: the second diagonal of a pair reads one cell
    // before the first's start (a cell outside its band, overwritten afterwards).
    let mut b_rev = Vec::with_capacity(m + LANES + 1);
    b_rev.push(T::ZERO);
    b_rev.extend(b.iter().rev().copied());
    b_rev.resize(m + LANES + 1, T::ZERO);
    let mut a_strip = [T::ZERO; STRIP + LANES];
    // The DP runs in horizontal strips of STRIP rows, each swept by anti-diagonals. `above`
    // holds the row just above the strip (index t = j + 1, t = 0 the virtual column -1), `below`
    // collects the strip's last row for the next strip. Row -1 is 0 at column -1, else out of
    // reach.
    let mut above = vec![inf; m + 1];
    above[0] = T::ZERO;
    let mut below = vec![inf; m + 1];
    // Diagonal buffers indexed by local t = i - i0 + 1; t = 0 is the row above the strip.
    let buffer = || vec![inf; STRIP + LANES + 2];
    let (mut p2, mut p1, mut c0, mut c1) = (buffer(), buffer(), buffer(), buffer());
    let mut i0 = 0;
    while i0 < n {
        let last = (i0 + STRIP).min(n) - 1;
        let h = last + 1 - i0;
        p1.fill(inf);
        p2.fill(inf);
        below.fill(inf);
        a_strip[..h].copy_from_slice(&a[i0..=last]);
        let k_first = i0 + band.range(i0).0;
        let k_last = last + band.range(last).1;
        // Rows of the strip on diagonal k: ilo = min{i : i + hi(i) >= k},
        // ihi = max{i : i + lo(i) <= k}; both only grow with k, by at most one, because the
        // band's row intervals only move right and `i + lo(i)`, `i + hi(i)` grow strictly.
        let runs = |k: usize, (mut ilo, mut ihi): (usize, usize)| {
            while ilo + band.range(ilo).1 < k {
                ilo += 1;
            }
            while ihi < last && ihi + 1 + band.range(ihi + 1).0 <= k {
                ihi += 1;
            }
            (ilo, ihi)
        };
        let mut rows = (i0, i0);
        let mut k = k_first;
        while k <= k_last {
            rows = runs(k, rows);
            // The strip's first row reads the row above: on diagonal k - 2 + x, local t = 0 is
            // row i0 - 1 at column k - 2 + x - i0 + 1, `above[k + x - i0]`; outside the
            // matrix it is out of reach. (Only read when the run starts on the strip's first
            // row.)
            let edge = |x: usize| (k + x).checked_sub(i0).and_then(|t| above.get(t)).copied();
            p2[0] = edge(0).unwrap_or(inf);
            p1[0] = edge(1).unwrap_or(inf);
            if k == k_last {
                let (lo, len) = (rows.0 - i0, (rows.1 + 1).saturating_sub(rows.0));
                let padded = len.next_multiple_of(LANES);
                // b index j = k - i, reversed index m - 1 - k + i, one more for the front cell.
                let br0 = m + rows.0 - k;
                step::<T, ABS>(
                    &mut c0[lo + 1..lo + 1 + padded],
                    &p1[lo..lo + padded],
                    &p1[lo + 1..lo + 1 + padded],
                    &p2[lo..lo + padded],
                    &a_strip[lo..lo + padded],
                    &b_rev[br0..br0 + padded],
                );
                c0[lo] = inf;
                c0[lo + len + 1] = inf;
                if rows.1 == last && len > 0 {
                    below[k - last + 1] = c0[h];
                }
                std::mem::swap(&mut p1, &mut c0);
                break;
            }
            let next = runs(k + 1, rows);
            // Diagonals k and k + 1 in one pass over the union of their runs, lo..=hi.
            let (lo, hi) = (rows.0 - i0 + 1, next.1 - i0 + 1);
            let padded = (hi + 1 - lo).next_multiple_of(PAIR_LANES);
            let br0 = m + rows.0 - k;
            // Diagonal k's cell before the run, carried into k + 1's first cell.
            let first = if lo == 1 { edge(2).unwrap_or(inf) } else { inf };
            pair::<T, ABS>(
                (&mut c0[lo..lo + padded], &mut c1[lo..lo + padded]),
                first,
                &p1[lo - 1..lo + padded],
                &p2[lo - 1..lo - 1 + padded],
                &a_strip[lo - 1..lo - 1 + padded],
                &b_rev[br0 - 1..br0 + padded],
            );
            // Cells of the union outside a diagonal's run were computed from neighbours outside
            // the band. Diagonal k's tail (at most one cell, the run's end moves by at most one)
            // becomes out of reach, and k + 1's cell that read it is recomputed. k + 1's head
            // (at most one cell) is its sentinel, set below.
            let (hi0, lo1) = (rows.1 - i0 + 1, next.0 - i0 + 1);
            c0[lo - 1] = first;
            for t in hi0 + 1..=hi {
                c0[t] = inf;
                let c = local::<T, ABS>(a_strip[t - 1], b_rev[br0 - 1 + t - lo]);
                c1[t] = c + c0[t - 1].min2(c0[t]).min2(p1[t - 1]);
            }
            // Sentinels: the two cells beside each run are out of reach for the diagonals that
            // read them next, whatever the padding or an older diagonal left there. Padding
            // beyond them is never read before the buffer is rewritten.
            c0[lo - 1] = inf;
            c0[hi0 + 1] = inf;
            c1[lo1 - 1] = inf;
            c1[hi + 1] = inf;
            if rows.1 == last && rows.0 <= rows.1 {
                below[k - last + 1] = c0[h];
            }
            if next.1 == last && next.0 <= next.1 {
                below[k + 1 - last + 1] = c1[h];
            }
            std::mem::swap(&mut p2, &mut c0);
            std::mem::swap(&mut p1, &mut c1);
            rows = next;
            k += 2;
        }
        // Every path crosses the strip's last row: if all of it is above the bound, so is the
        // DTW cost.
        if BOUNDED && slice_min(&below) > bound {
            return None;
        }
        std::mem::swap(&mut above, &mut below);
        i0 = last + 1;
    }
    let total = above[m];
    (total <= bound).then_some(total)
}

/// Runs are padded to a multiple of this many cells: LLVM's vectorised loop (four AVX2
/// registers of f64 per iteration) then covers them without a scalar remainder.
const LANES: usize = 16;

/// The same for [`pair`], which LLVM vectorises one register per iteration (eight f32 or
/// four f64 lanes): less padding, which matters on the short runs of narrow bands.
const PAIR_LANES: usize = 8;

/// Two anti-diagonals in one pass: `c0[t]` as [`step`] computes it, and the next diagonal's
/// `c1[t] = cost(a[t], br[t]) + min(c0[t - 1], c0[t], p1[t])`, which reads `c0` from
/// registers. Slices are indexed from one cell before the run: `p1[t]` and `p1[t + 1]` are the
/// previous diagonal's up and left neighbours of `c0[t]`, `p2[t]` the diagonal before that,
/// `a[t]` the row's point, `br[t + 1]` and `br[t]` the column points of the two diagonals;
/// `first` is `c0`'s cell just before the run. Per pair of cells this loads six values
/// instead of ten, and the carried `c0[t - 1]` becomes one lane shift per vector.
#[inline(always)]
fn pair<T: Float, const ABS: bool>(
    (c0, c1): (&mut [T], &mut [T]),
    first: T,
    p1: &[T],
    p2: &[T],
    a: &[T],
    br: &[T],
) {
    let len = c0.len();
    let (up, left) = (&p1[..len], &p1[1..len + 1]);
    let (br1, br0) = (&br[..len], &br[1..len + 1]);
    let (c1, p2, a) = (&mut c1[..len], &p2[..len], &a[..len]);
    let mut prev = first;
    for t in 0..len {
        let x0 = local::<T, ABS>(a[t], br0[t]) + up[t].min2(left[t]).min2(p2[t]);
        c1[t] = local::<T, ABS>(a[t], br1[t]) + prev.min2(x0).min2(up[t]);
        c0[t] = x0;
        prev = x0;
    }
}

/// One anti-diagonal: `cur[t] = cost(a[t], br[t]) + min(up[t], left[t], diag[t])`.
///
/// A plain indexed loop over equal-length slices: LLVM vectorises it (the `min2` comparisons
/// become `vminpd`). Hand-chunked variants defeated its SLP vectoriser and ran scalar.
#[inline(always)]
fn step<T: Float, const ABS: bool>(
    cur: &mut [T],
    up: &[T],
    left: &[T],
    diag: &[T],
    a: &[T],
    br: &[T],
) {
    let len = cur.len();
    let (up, left, diag, a, br) = (&up[..len], &left[..len], &diag[..len], &a[..len], &br[..len]);
    for t in 0..len {
        cur[t] = local::<T, ABS>(a[t], br[t]) + up[t].min2(left[t]).min2(diag[t]);
    }
}

/// The local cost: `|a - b|` (`ABS`) or `(a - b)²`.
#[inline(always)]
fn local<T: Float, const ABS: bool>(a: T, b: T) -> T {
    let d = a - b;
    if ABS { d.abs() } else { d * d }
}

/// Minimum of a slice with eight independent accumulators, which LLVM turns into SIMD.
#[inline(always)]
fn slice_min<T: Float>(x: &[T]) -> T {
    let mut acc = [T::INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] = acc[l].min2(c[l]);
        }
    }
    let mut best = T::INFINITY;
    for &v in acc.iter().chain(rest) {
        best = best.min2(v);
    }
    best
}
