//! `y = x·W + b` for a few rows of `x` on host buffers: the products of a decoding step.
//!
//! With one to a few dozen rows, a linear layer is a stream of its weight matrix: `[k, n]`
//! floats read once, a few multiply-adds each. gemm (flex's matmul) does not pack the weight at
//! this size and walks it 6 columns at a time down all `k` rows, a new cache line and often a
//! new page per row; at one row it runs a single-threaded matrix-vector product. Here the
//! weight is read a few rows at a time, each a contiguous segment of its row, and the outputs
//! of a chunk of columns stay in L1 while the weight streams past. Threads take chunks of
//! columns. AVX2/FMA where the CPU has them, a portable loop elsewhere.
//!
//! - One or two rows: four weight rows at a time, every weight vector serving both rows.
//! - More rows: blocks of 16 weight rows, over which `6 × 16` register tiles of outputs
//!   accumulate before going back to L1, and a software prefetch a line ahead in each of the
//!   16 weight rows.
//!
//! Measured against gemm (flex's arguments) on the decoder benchmark's 17 products in sequence
//! (`attention/decode`; one thread, thread CPU time per step, load 6-7 on 2 cores): at 16 rows
//! 8.3-9.0 ms against 16-22 ms; at one row 1.6-1.7 ms against 2.0-2.3 ms. The register tiles
//! and the prefetch then took 16 rows through the decoder's five product shapes (`[256, 768]`,
//! `[256, 256]`, `[256, 1024]`, `[1024, 256]`, `[256, 8000]`) in 3.0-3.5 ms of one thread's CPU
//! time against 4.4-5.0 ms for the two-row blocks (alternating runs at load 4-5; the tiles
//! without the prefetch were no faster, their loads waiting on memory).

/// Columns per chunk with more than [`WIDE_ROWS`] rows: the outputs of 16 rows (16 KiB) stay
/// in L1 while the weight passes.
const NC: usize = 256;
/// Up to this many rows, a thread takes one contiguous share of every weight row instead: the
/// outputs are small, and long contiguous segments are what the prefetchers follow best.
const WIDE_ROWS: usize = 2;
/// Fewest columns a thread takes when sharing out whole rows.
const WIDE_MIN_NC: usize = 256;
/// Below this many multiply-adds (about 100 µs of one thread's work) one thread does the whole
/// product. A fork-join waits for its slowest member, and on a loaded machine that member may
/// be descheduled for a whole time slice: at one row, splitting every product (from 2^17) made
/// decoding slower than one thread at load 5 on 2 cores; from 2^20 only the output head (and
/// at 16 rows every product) is split.
const PARALLEL_MIN: usize = 1 << 20;

/// `x · w + bias` with `x` `[m, k]`, `w` `[k, n]` and `bias` `[n]`, all row-major; returns
/// `[m, n]`. Threads share the column chunks when `parallel` and the product is large enough.
///
/// # Panics
/// If a buffer is shorter than its shape.
pub(crate) fn linear_rows(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    [m, k, n]: [usize; 3],
    parallel: bool,
) -> Vec<f32> {
    assert!(
        x.len() >= m * k && w.len() >= k * n && bias.is_none_or(|b| b.len() >= n),
        "linear_rows: buffers of {}, {} and {:?} values do not hold [{m}, {k}] · [{k}, {n}]",
        x.len(),
        w.len(),
        bias.map(<[f32]>::len)
    );
    let mut y = vec![0.0f32; m * n];
    if let Some(bias) = bias {
        for row in y.chunks_exact_mut(n.max(1)) {
            row.copy_from_slice(&bias[..n]);
        }
    }
    if m == 0 || n == 0 || k == 0 {
        return y;
    }
    let threads =
        if parallel && m * n * k >= PARALLEL_MIN { rayon::current_num_threads().max(1) } else { 1 };
    let nc = if m <= WIDE_ROWS {
        n.div_ceil(threads).next_multiple_of(8).max(WIDE_MIN_NC)
    } else {
        // At most NC columns, in a number of chunks that the threads share evenly: with NC
        // itself a 256-column product ran on one thread and a 768-column one split 2:1.
        let chunks = n.div_ceil(NC * threads) * threads;
        n.div_ceil(chunks).next_multiple_of(16)
    };
    let out = Out(y.as_mut_ptr());
    let chunk = |c: usize| {
        let cols = c * nc..((c + 1) * nc).min(n);
        // SAFETY: chunks write disjoint column ranges of `y`, which outlives the loop, and
        // the shapes were checked against the buffers above.
        unsafe { columns(x, w, out, [m, k, n], cols) };
    };
    let chunks = n.div_ceil(nc);
    if threads > 1 && chunks > 1 {
        use rayon::prelude::*;
        (0..chunks).into_par_iter().with_min_len(chunks.div_ceil(threads)).for_each(chunk);
    } else {
        (0..chunks).for_each(chunk);
    }
    y
}

/// The output buffer, shared by the threads that write its column chunks.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: threads write disjoint columns through it (see `linear_rows`).
unsafe impl Send for Out {}
// SAFETY: as above.
unsafe impl Sync for Out {}

/// Adds `x · w[:, cols]` to `y[:, cols]`.
///
/// # Safety
/// `y` holds `[m, n]` values that nothing else reads or writes in `cols` meanwhile; `x` and `w`
/// hold `[m, k]` and `[k, n]`; `cols` lies within `0..n`.
unsafe fn columns(
    x: &[f32],
    w: &[f32],
    y: Out,
    [m, k, n]: [usize; 3],
    cols: std::ops::Range<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA; the rest is the caller's contract.
            unsafe { avx2::columns(x, w, y.0, [m, k, n], cols) };
            return;
        }
    }
    for r in 0..m {
        for p in 0..k {
            let a = x[r * k + p];
            for j in cols.clone() {
                // SAFETY: `r * n + j < m * n` and the caller grants exclusive access to `cols`.
                unsafe { *y.0.add(r * n + j) += a * w[p * n + j] };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Weight rows per block.
    const KB: usize = 4;

    /// [`super::columns`] with AVX2 and FMA.
    ///
    /// # Safety
    /// As [`super::columns`], on a CPU with AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn columns(
        x: &[f32],
        w: &[f32],
        y: *mut f32,
        [m, k, n]: [usize; 3],
        cols: std::ops::Range<usize>,
    ) {
        if m > super::WIDE_ROWS {
            // SAFETY: the caller's contract, and the CPU has AVX2 and FMA.
            unsafe { tiles(x, w, y, [m, k, n], cols) };
            return;
        }
        let (j0, nv) = (cols.start, cols.len() / 8);
        let mut p = 0;
        while p < k {
            let depth = KB.min(k - p);
            let mut r = 0;
            // SAFETY (both calls): rows `r..r + R` of `x` and `y`, weight rows `p..p + depth`
            // and columns `j0..j0 + 8 nv` are in bounds (the caller's contract).
            while r + 2 <= m {
                unsafe { block::<2>(x, w, y, [r, p, depth], [k, n], [j0, nv]) };
                r += 2;
            }
            if r < m {
                unsafe { block::<1>(x, w, y, [r, p, depth], [k, n], [j0, nv]) };
            }
            p += depth;
        }
        // SAFETY: the caller's contract.
        unsafe { tail(x, w, y, [m, k, n], j0 + nv * 8..cols.end) };
    }

    /// Columns `cols` past the last full vector, one dot product each.
    ///
    /// # Safety
    /// As [`super::columns`] for `cols`.
    unsafe fn tail(
        x: &[f32],
        w: &[f32],
        y: *mut f32,
        [m, k, n]: [usize; 3],
        cols: std::ops::Range<usize>,
    ) {
        for j in cols {
            for r in 0..m {
                let acc: f32 = (0..k).map(|p| x[r * k + p] * w[p * n + j]).sum();
                // SAFETY: `(r, j)` lies in `y`, within the caller's columns.
                unsafe { *y.add(r * n + j) += acc };
            }
        }
    }

    /// Rows of a register tile: `TR × 16` accumulators (12 registers), so that each step
    /// loads two weight vectors and `TR` broadcasts for `2 TR` multiply-adds.
    const TR: usize = 6;
    /// Weight rows a tile runs through before its outputs go back to `y` (in L1): enough to
    /// amortise that load and store over many multiply-adds, few enough that the weight rows
    /// are read as short contiguous segments, which the prefetchers follow. A tile that runs
    /// down all `k` rows instead (each step a new 4 KiB page of a `[k, 1024]` weight) made
    /// decoding at 16 rows about 40 % slower (alternating runs at load 5).
    const TK: usize = 16;

    /// [`columns`] for more than a couple of rows: per block of [`TK`] weight rows, `TR × 16`
    /// register tiles over 16-column panels (which stay in L1 while every row tile passes
    /// over them), then 8-column vectors, then single columns.
    ///
    /// # Safety
    /// As [`super::columns`], on a CPU with AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tiles(
        x: &[f32],
        w: &[f32],
        y: *mut f32,
        [m, k, n]: [usize; 3],
        cols: std::ops::Range<usize>,
    ) {
        let mut p = 0;
        while p < k {
            let depth = TK.min(k - p);
            let mut j = cols.start;
            // SAFETY (all calls): rows `r..r + R`, weight rows `p..p + depth` and columns
            // `j..j + 8 V` lie in the buffers by the caller's contract; AVX2 and FMA.
            while j + 16 <= cols.end {
                // The same line of each weight row, PREFETCH columns on: with 16 rows read side
                // by side the hardware prefetchers fall behind, and the loads wait on memory.
                for d in 0..depth {
                    prefetch(w.as_ptr().wrapping_add((p + d) * n + j + PREFETCH));
                }
                let mut r = 0;
                while r + TR <= m {
                    unsafe { tile::<TR, 2>(x, w, y, [r, j, p, depth], [k, n]) };
                    r += TR;
                }
                unsafe { rest::<2>(x, w, y, [r, j, p, depth], [m, k, n]) };
                j += 16;
            }
            if j + 8 <= cols.end {
                let mut r = 0;
                while r + TR <= m {
                    unsafe { tile::<TR, 1>(x, w, y, [r, j, p, depth], [k, n]) };
                    r += TR;
                }
                unsafe { rest::<1>(x, w, y, [r, j, p, depth], [m, k, n]) };
            }
            p += depth;
        }
        let j0 = cols.start + (cols.len() / 8) * 8;
        // SAFETY: the caller's contract.
        unsafe { tail(x, w, y, [m, k, n], j0..cols.end) };
    }

    /// How far ahead along a weight row [`tiles`] asks for the next line.
    const PREFETCH: usize = 64;

    /// Asks for the cache line at `p`: a hint, which never faults.
    #[inline(always)]
    fn prefetch(p: *const f32) {
        // SAFETY: a prefetch does not access memory architecturally, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }

    /// The rows `r..m` (fewer than [`TR`]) of a panel of `V` vectors at column `j`.
    ///
    /// # Safety
    /// As [`tile`] for those rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rest<const V: usize>(
        x: &[f32],
        w: &[f32],
        y: *mut f32,
        at: [usize; 4],
        [m, k, n]: [usize; 3],
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            match m - at[0] {
                0 => {}
                1 => tile::<1, V>(x, w, y, at, [k, n]),
                2 => tile::<2, V>(x, w, y, at, [k, n]),
                3 => tile::<3, V>(x, w, y, at, [k, n]),
                4 => tile::<4, V>(x, w, y, at, [k, n]),
                _ => tile::<5, V>(x, w, y, at, [k, n]),
            }
        }
    }

    /// `y[r..r + R, j..j + 8 V] += x[r..r + R, p..p + depth] · w[p..p + depth, j..j + 8 V]`,
    /// the `R × V` accumulators in registers.
    ///
    /// # Safety
    /// Rows `r..r + R` of `x` `[.., k]` and `y` `[.., n]`, weight rows `p..p + depth` and
    /// columns `j..j + 8 V` of `w` `[k, n]` and `y` are in bounds; the CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize, const V: usize>(
        x: &[f32],
        w: &[f32],
        y: *mut f32,
        [r, j, p, depth]: [usize; 4],
        [k, n]: [usize; 2],
    ) {
        // SAFETY (block): in bounds by the caller's contract; the CPU has AVX2 and FMA.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); V]; R];
            for (i, acc) in acc.iter_mut().enumerate() {
                for (v, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_loadu_ps(y.add((r + i) * n + j + v * 8));
                }
            }
            let xs = x.as_ptr().add(r * k + p);
            let mut wp = w.as_ptr().add(p * n + j);
            for d in 0..depth {
                let mut wv = [_mm256_setzero_ps(); V];
                for (v, wv) in wv.iter_mut().enumerate() {
                    *wv = _mm256_loadu_ps(wp.add(v * 8));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let a = _mm256_broadcast_ss(&*xs.add(i * k + d));
                    for v in 0..V {
                        acc[v] = _mm256_fmadd_ps(a, wv[v], acc[v]);
                    }
                }
                wp = wp.add(n);
            }
            for (i, acc) in acc.iter().enumerate() {
                for (v, acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(y.add((r + i) * n + j + v * 8), *acc);
                }
            }
        }
    }

    /// `y[r..r + R, cols] += x[r..r + R, p..p + depth] · w[p..p + depth, cols]` for the `nv`
    /// vectors of columns from `j0`: each weight vector is loaded once for the `R` rows, and
    /// each output once per `depth` multiply-adds.
    ///
    /// # Safety
    /// The rows, depths and columns named lie within `x` `[.., k]`, `w` `[k, n]` and `y`
    /// `[.., n]`; `1 <= depth <= KB`; the CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const R: usize>(
        x: &[f32],
        w: &[f32],
        y: *mut f32,
        [r, p, depth]: [usize; 3],
        [k, n]: [usize; 2],
        [j0, nv]: [usize; 2],
    ) {
        // Plain loops, not `array::from_fn`: a closure does not inherit this function's
        // target features, so its intrinsics would not be inlined into the loop.
        // SAFETY (block): in bounds by the caller's contract; the CPU has AVX2 and FMA.
        unsafe {
            // Weight rows past `depth` repeat the last one with a zero factor.
            let mut a = [[_mm256_setzero_ps(); KB]; R];
            let mut rows = [w.as_ptr(); KB];
            for d in 0..KB {
                let row = p + d.min(depth - 1);
                rows[d] = w.as_ptr().add(row * n + j0);
                if d < depth {
                    for (i, a) in a.iter_mut().enumerate() {
                        a[d] = _mm256_set1_ps(x[(r + i) * k + row]);
                    }
                }
            }
            for v in 0..nv {
                let mut wv = [_mm256_setzero_ps(); KB];
                for d in 0..KB {
                    wv[d] = _mm256_loadu_ps(rows[d].add(v * 8));
                }
                for (i, a) in a.iter().enumerate() {
                    let out = y.add((r + i) * n + j0 + v * 8);
                    let mut acc = _mm256_loadu_ps(out);
                    for d in 0..KB {
                        acc = _mm256_fmadd_ps(a[d], wv[d], acc);
                    }
                    _mm256_storeu_ps(out, acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], bias: Option<&[f32]>, [m, k, n]: [usize; 3]) -> Vec<f64> {
        let mut y = vec![0.0; m * n];
        for r in 0..m {
            for j in 0..n {
                let mut acc = bias.map_or(0.0, |b| b[j] as f64);
                for p in 0..k {
                    acc += x[r * k + p] as f64 * w[p * n + j] as f64;
                }
                y[r * n + j] = acc;
            }
        }
        y
    }

    fn values(seed: usize, len: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 37 + seed * 11) % 101) as f32 - 50.0) / 50.0).collect()
    }

    #[test]
    fn matches_a_reference_on_ragged_shapes() {
        // Rows below, at and above a register tile; columns with partial tiles, partial vectors
        // and several chunks; depths below and above a panel.
        for m in [1, 2, 3, 4, 5, 16, 17] {
            for (k, n) in [(1, 1), (7, 9), (130, 24), (256, 200), (300, 97), (600, 300)] {
                let (x, w, b) = (values(1, m * k), values(2, k * n), values(3, n));
                for bias in [None, Some(&b[..])] {
                    for parallel in [false, true] {
                        let got = linear_rows(&x, &w, bias, [m, k, n], parallel);
                        let want = reference(&x, &w, bias, [m, k, n]);
                        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                            let tol = 1e-5 * (1.0 + e.abs()) * (k as f64).sqrt();
                            assert!(
                                (*g as f64 - e).abs() <= tol,
                                "m {m} k {k} n {n} at {i}: {g} against {e}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn empty_shapes_give_the_bias() {
        assert_eq!(linear_rows(&[], &[], Some(&[1.0, 2.0]), [1, 0, 2], true), [1.0, 2.0]);
        assert!(linear_rows(&[], &[0.0; 6], None, [0, 3, 2], false).is_empty());
    }

    #[test]
    #[should_panic(expected = "linear_rows: buffers of 2, 6 and None values do not hold")]
    fn panics_on_short_buffers() {
        linear_rows(&[1.0, 2.0], &[0.0; 6], None, [1, 3, 2], false);
    }
}
