//! The fast univariate kernel: anti-diagonals, whose cells are independent, as SIMD lanes.
//!
//! Cell `(i, j)` lies on anti-diagonal `k = i + j` and depends on `(i-1, j)` and `(i, j-1)` on
//! diagonal `k - 1` and on `(i-1, j-1)` on diagonal `k - 2`. Indexed by `i`, a diagonal's cells
//! read three shifted, contiguous slices of the two previous diagonals, `a[i]`, and
//! `b[k - i]`, which is contiguous in `i` once `b` is reversed. The inner loop is then a plain
//! loop over equal-length slices that LLVM vectorises; on x86-64 it is compiled a second time
//! with AVX2 enabled and picked at run time. The arithmetic per cell is the same as the row
//! kernel's, so both give bit-identical results.

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
    // (see the note on `cur[lo + len + 1]` below), so they need no remainder loop.
    let mut b_rev: Vec<T> = b.iter().rev().copied().collect();
    b_rev.resize(m + LANES, T::ZERO);
    let mut a_strip = [T::ZERO; STRIP + LANES];
    // The DP runs in horizontal strips of STRIP rows, each swept by anti-diagonals. `above`
    // holds the row just above the strip (index t = j + 1, t = 0 the virtual column -1), `below`
    // collects the strip's last row for the next strip. Row -1 is 0 at column -1, else out of
    // reach.
    let mut above = vec![inf; m + 1];
    above[0] = T::ZERO;
    let mut below = vec![inf; m + 1];
    // Diagonal buffers indexed by local t = i - i0 + 1; t = 0 is the row above the strip.
    let mut p2 = vec![inf; STRIP + LANES + 2];
    let mut p1 = vec![inf; STRIP + LANES + 2];
    let mut cur = vec![inf; STRIP + LANES + 2];
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
        // ihi = max{i : i + lo(i) <= k}; both only grow with k because the band's row intervals
        // only move right.
        let (mut ilo, mut ihi) = (i0, i0);
        for k in k_first..=k_last {
            while ilo + band.range(ilo).1 < k {
                ilo += 1;
            }
            while ihi < last && ihi + 1 + band.range(ihi + 1).0 <= k {
                ihi += 1;
            }
            if ilo == i0 {
                // The strip's first row reads the row above: up = D[i0-1][j], diag =
                // D[i0-1][j-1] with j = k - i0.
                p1[0] = above[k - i0 + 1];
                p2[0] = above[k - i0];
            }
            let (lo, len) = (ilo - i0, (ihi + 1).saturating_sub(ilo));
            let padded = len.next_multiple_of(LANES);
            // b index j = k - i, reversed index m - 1 - k + i.
            let br0 = m - 1 + ilo - k;
            step::<T, ABS>(
                &mut cur[lo + 1..lo + 1 + padded],
                &p1[lo..lo + padded],
                &p1[lo + 1..lo + 1 + padded],
                &p2[lo..lo + padded],
                &a_strip[lo..lo + padded],
                &b_rev[br0..br0 + padded],
            );
            // The next two diagonals read this one on t in lo..=hi + 2 only: the two cells
            // beside the run are out of reach, whatever the padding or an older diagonal left
            // there. Padding beyond hi + 2 is never read before this buffer is rewritten.
            cur[lo] = inf;
            cur[lo + len + 1] = inf;
            if ihi == last && len > 0 {
                below[k - last + 1] = cur[h];
            }
            std::mem::swap(&mut p2, &mut p1);
            std::mem::swap(&mut p1, &mut cur);
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
        let d = a[t] - br[t];
        let c = if ABS { d.abs() } else { d * d };
        cur[t] = c + up[t].min2(left[t]).min2(diag[t]);
    }
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
