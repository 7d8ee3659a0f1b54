//! The matrix products of the fused time loop, in BLIS's structure: the right operand in
//! panels of `NR` columns, the left one read in place (per step) or in strips of `MR` rows (the
//! large products after the loop), and an `MR × NR` register tile computed by a micro-kernel:
//! AVX2/FMA intrinsics for f32, a portable loop otherwise.
//!
//! The weights are packed once per pass; the large products' operands that the time loop
//! produces (the states and the gate gradients) are written straight into that blocked layout
//! ([`Blocked`]) as they are computed, so that only the input needs packing after the loop.
//!
//! Why not the `gemm` crate: it packs `W_hh` again on every call, i.e. every step, and reached
//! 40–60 GFLOP/s on one core here on the per-step shape `[32, 256] × [256, 1024]`; packing the
//! weight once per pass is what oneDNN's RNN primitive does too.

use std::marker::PhantomData;

use super::real::{Buf, Real};

/// Rows of the register tile.
pub(crate) const MR: usize = 6;
/// Columns of the register tile (two AVX registers of f32).
pub(crate) const NR: usize = 16;
/// Depth of a block: an `MR × KC` slice of the left operand and a `KC × NR` panel (16 KiB in
/// f32) stay in L1 while a tile is computed.
const KC: usize = 256;
/// Rows of a block of the left operand (144 KiB in f32 at `KC`): it stays in L2 while every
/// panel of the right operand passes over it (and, per step, more than the batch).
const MC: usize = 144;

/// A matrix in a buffer with strides: element `(i, j)` at `i * rs + j * cs`.
///
/// It keeps a pointer rather than a slice so that one member of a team can read rows of a
/// buffer between which another member writes (see [`Mat::shared`]).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    ptr: *const T,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    rs: usize,
    cs: usize,
    _buffer: PhantomData<&'a [T]>,
}

// SAFETY: a `Mat` only reads, like `&[T]`.
unsafe impl<T: Sync> Send for Mat<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Mat<'_, T> {}

impl<'a, T: Copy> Mat<'a, T> {
    /// # Panics
    /// If the last element lies outside `data`.
    pub(crate) fn new(data: &'a [T], [rows, cols]: [usize; 2], [rs, cs]: [usize; 2]) -> Self {
        Self::check(data.len(), [rows, cols], [rs, cs]);
        Mat { ptr: data.as_ptr(), rows, cols, rs, cs, _buffer: PhantomData }
    }

    /// A matrix in part of a buffer that a team shares: `len` elements from `ptr`.
    ///
    /// # Safety
    /// `ptr..ptr + len` lies in one allocation that outlives `'a`, and nothing writes the
    /// matrix's elements (those are the only ones read) while the `Mat` lives.
    pub(crate) unsafe fn shared(
        ptr: *const T,
        len: usize,
        [rows, cols]: [usize; 2],
        [rs, cs]: [usize; 2],
    ) -> Self {
        Self::check(len, [rows, cols], [rs, cs]);
        Mat { ptr, rows, cols, rs, cs, _buffer: PhantomData }
    }

    fn check(len: usize, [rows, cols]: [usize; 2], [rs, cs]: [usize; 2]) {
        let end = if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
        assert!(
            end <= len,
            "recurrent kernel: a [{rows}, {cols}] matrix with strides [{rs}, {cs}] needs {end} \
             elements, the buffer has {len}"
        );
    }

    /// A row-major `[rows, cols]` matrix.
    pub(crate) fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::new(data, [rows, cols], [cols, 1])
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Mat { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> T {
        debug_assert!(i < self.rows && j < self.cols);
        // SAFETY: (i, j) lies inside the matrix, whose elements the constructor checked.
        unsafe { *self.ptr.add(i * self.rs + j * self.cs) }
    }
}

/// A `[k, n]` matrix stored as column panels `W` wide: panel `p` holds rows `0..k` of columns
/// `p·W..(p+1)·W`, `W` values per row, zero beyond `n`. With `W = NR` it is a right operand,
/// with `W = MR` the transpose of a left one (`[k, m]`, strips of `MR` rows of `m`).
#[derive(Clone, Copy)]
pub(crate) struct Blocked<'a, T, const W: usize> {
    ptr: *const T,
    pub(crate) k: usize,
    pub(crate) n: usize,
    _buffer: PhantomData<&'a [T]>,
}

// SAFETY: a `Blocked` only reads, like `&[T]`.
unsafe impl<T: Sync, const W: usize> Send for Blocked<'_, T, W> {}
// SAFETY: as above.
unsafe impl<T: Sync, const W: usize> Sync for Blocked<'_, T, W> {}

impl<'a, T, const W: usize> Blocked<'a, T, W> {
    /// Values a `[k, n]` matrix takes in this layout.
    pub(crate) fn len(k: usize, n: usize) -> usize {
        n.div_ceil(W) * k * W
    }

    /// Where element `(r, j)` of a `[k, ·]` matrix lies.
    #[inline(always)]
    pub(crate) fn offset(k: usize, r: usize, j: usize) -> usize {
        ((j / W) * k + r) * W + j % W
    }

    /// # Panics
    /// If `data` is shorter than [`Blocked::len`].
    pub(crate) fn new(data: &'a [T], k: usize, n: usize) -> Self {
        assert!(data.len() >= Self::len(k, n), "recurrent kernel: blocked [{k}, {n}] too short");
        Blocked { ptr: data.as_ptr(), k, n, _buffer: PhantomData }
    }

    /// A view of a buffer that a team shares.
    ///
    /// # Safety
    /// `ptr` points to [`Blocked::len`] values in one allocation that outlives `'a`, which
    /// nothing writes while the view lives.
    pub(crate) unsafe fn shared(ptr: *const T, k: usize, n: usize) -> Self {
        Blocked { ptr, k, n, _buffer: PhantomData }
    }

    /// Rows `k0..k0 + kc` of panel `p`.
    fn panel(&self, p: usize, k0: usize, kc: usize) -> &'a [T] {
        assert!(p < self.n.div_ceil(W) && k0 + kc <= self.k);
        // SAFETY: inside the `len(k, n)` values the constructor was promised.
        unsafe { std::slice::from_raw_parts(self.ptr.add((p * self.k + k0) * W), kc * W) }
    }
}

/// A right operand packed once: the columns `col(0..n)` of a matrix, in [`Blocked`] panels.
pub(crate) struct PackedB<T> {
    data: Buf<T>,
    k: usize,
    n: usize,
}

impl<T: Real> PackedB<T> {
    /// Packs the columns `col(0), …, col(n - 1)` of `b`, in that order.
    pub(crate) fn pack(b: Mat<T>, n: usize, col: impl Fn(usize) -> usize) -> Self {
        let k = b.rows;
        let panels = n.div_ceil(NR);
        let mut data = Buf::reused(Blocked::<T, NR>::len(k, n));
        let out = data.as_mut_slice();
        // Read along whichever axis of `b` is contiguous: one panel at a time walks the rows
        // with a stride of a whole row, which ran at ~300 MB/s.
        if b.cs == 1 {
            for kk in 0..k {
                for p in 0..panels {
                    let width = NR.min(n - p * NR);
                    let dst = &mut out[(p * k + kk) * NR..][..width];
                    for (jj, v) in dst.iter_mut().enumerate() {
                        *v = b.at(kk, col(p * NR + jj));
                    }
                }
            }
        } else {
            for p in 0..panels {
                let width = NR.min(n - p * NR);
                for jj in 0..width {
                    let j = col(p * NR + jj);
                    for kk in 0..k {
                        out[(p * k + kk) * NR + jj] = b.at(kk, j);
                    }
                }
            }
        }
        PackedB { data, k, n }
    }

    pub(crate) fn view(&self) -> Blocked<'_, T, NR> {
        Blocked::new(self.data.as_slice(), self.k, self.n)
    }
}

/// `c[m, n] (+)= a[m, k] · b`, with `a` read in place (its rows contiguous) and `b` packed.
///
/// # Safety
/// `c` points to `a.rows` rows `ldc` apart of at least `b.n` writable elements that nothing
/// else reads or writes meanwhile.
pub(crate) unsafe fn mul_packed<T: Real>(
    simd: bool,
    a: Mat<T>,
    b: Blocked<T, NR>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    assert!(
        a.cols == b.k && (a.cs == 1 || a.cols <= 1),
        "recurrent kernel: [{}, {}] (column stride {}) times packed [{}, {}]",
        a.rows,
        a.cols,
        a.cs,
        b.k,
        b.n
    );
    let (m, k, n) = (a.rows, b.k, b.n);
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i of `c` has `n` writable elements (the caller's promise).
                unsafe { std::ptr::write_bytes(c.add(i * ldc), 0, n) };
            }
        }
        return;
    }
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        for i0 in (0..m).step_by(MC) {
            let mc = MC.min(m - i0);
            for p in 0..n.div_ceil(NR) {
                let width = NR.min(n - p * NR);
                let panel = b.panel(p, k0, kc);
                for i in (i0..i0 + mc).step_by(MR) {
                    let rows = MR.min(i0 + mc - i);
                    // SAFETY: rows i.. of `a` hold `kc` values from column k0 (checked by `Mat`);
                    // the panel holds `kc` rows of NR; `c` as the caller promised.
                    unsafe {
                        let a_tile = a.ptr.add(i * a.rs + k0);
                        tile(
                            simd,
                            Left::Rows { ptr: a_tile, rs: a.rs, rows },
                            panel,
                            kc,
                            c.add(i * ldc + p * NR),
                            ldc,
                            width,
                            accumulate || k0 > 0,
                        );
                    }
                }
            }
        }
    }
}

/// Rows `rows` of `c[m, n] (+)= aᵀ · b` for `a` `[k, m]` in strips and `b` `[k, n]` in panels,
/// both [`Blocked`] as the time loop wrote them: nothing is packed here.
///
/// # Safety
/// `c` points to row 0 of the product; its `rows`, `ldc` apart, each have `n` writable elements
/// that nothing else reads or writes meanwhile.
///
/// # Panics
/// If the sizes disagree or `rows` does not start at a strip (a multiple of `MR`).
pub(crate) unsafe fn gemm_rows<T: Real>(
    simd: bool,
    a: Blocked<T, MR>,
    rows: std::ops::Range<usize>,
    b: Blocked<T, NR>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let (m, k, n) = (a.n, a.k, b.n);
    assert!(
        k == b.k && rows.end <= m && (rows.is_empty() || rows.start.is_multiple_of(MR)),
        "recurrent kernel: [{m}, {k}] times [{}, {n}], rows {rows:?}",
        b.k
    );
    if rows.is_empty() || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in rows {
                // SAFETY: the caller's promise on `c`.
                unsafe { std::ptr::write_bytes(c.add(i * ldc), 0, n) };
            }
        }
        return;
    }
    let panels = n.div_ceil(NR);
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        for i0 in rows.clone().step_by(MC) {
            let mc = MC.min(rows.end - i0);
            for p in 0..panels {
                let width = NR.min(n - p * NR);
                let panel = b.panel(p, k0, kc);
                for s in 0..mc.div_ceil(MR) {
                    let stored = MR.min(mc - s * MR);
                    let strip = a.panel(i0 / MR + s, k0, kc);
                    // SAFETY: the strip holds kc × MR values, the panel kc × NR; `c` as the
                    // caller promised.
                    unsafe {
                        tile(
                            simd,
                            Left::Packed { data: strip, rows: stored },
                            panel,
                            kc,
                            c.add((i0 + s * MR) * ldc + p * NR),
                            ldc,
                            width,
                            accumulate || k0 > 0,
                        );
                    }
                }
            }
        }
    }
}

/// The left operand of one tile.
#[derive(Clone, Copy)]
enum Left<'a, T> {
    /// `rows` (≤ MR) rows `rs` apart, each contiguous, as many values as the tile's depth.
    Rows { ptr: *const T, rs: usize, rows: usize },
    /// A packed strip: MR values per step of k, of which the first `rows` are stored.
    Packed { data: &'a [T], rows: usize },
}

/// One register tile: `c[rows, width] (+)= left[rows, k] · panel[k, NR]`.
///
/// # Safety
/// `left` and `panel` hold `k` steps (checked by the callers' slicing); `c` points to `rows`
/// rows `ldc` apart of `width` writable elements.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile<T: Real>(
    simd: bool,
    left: Left<T>,
    panel: &[T],
    k: usize,
    c: *mut T,
    ldc: usize,
    width: usize,
    accumulate: bool,
) {
    debug_assert!(panel.len() >= k * NR && width <= NR);
    #[cfg(target_arch = "x86_64")]
    if T::IS_F32 && simd {
        // SAFETY: T is f32 (IS_F32), so the casts keep the element type; the CPU has AVX2 and
        // FMA (`simd`); bounds as this function's contract.
        unsafe {
            let (b, c) = (panel.as_ptr().cast::<f32>(), c.cast::<f32>());
            match left {
                Left::Packed { data, rows } => {
                    let a = data.as_ptr().cast::<f32>();
                    avx2::tile::<MR, true>(k, a, 0, b, c, ldc, rows, width, accumulate);
                }
                Left::Rows { ptr, rs, rows } => {
                    let a = ptr.cast::<f32>();
                    match rows {
                        1 => avx2::tile::<1, false>(k, a, rs, b, c, ldc, 1, width, accumulate),
                        2 => avx2::tile::<2, false>(k, a, rs, b, c, ldc, 2, width, accumulate),
                        3 => avx2::tile::<3, false>(k, a, rs, b, c, ldc, 3, width, accumulate),
                        4 => avx2::tile::<4, false>(k, a, rs, b, c, ldc, 4, width, accumulate),
                        5 => avx2::tile::<5, false>(k, a, rs, b, c, ldc, 5, width, accumulate),
                        _ => avx2::tile::<6, false>(k, a, rs, b, c, ldc, 6, width, accumulate),
                    }
                }
            }
            return;
        }
    }
    let _ = simd;
    // SAFETY: this function's contract.
    unsafe { portable_tile(left, panel, k, c, ldc, width, accumulate) }
}

/// The tile in plain Rust (f64, or f32 without AVX2/FMA); the compiler vectorises the
/// `NR`-wide rows.
///
/// # Safety
/// As [`tile`].
unsafe fn portable_tile<T: Real>(
    left: Left<T>,
    panel: &[T],
    k: usize,
    c: *mut T,
    ldc: usize,
    width: usize,
    accumulate: bool,
) {
    let mut acc = [[T::ZERO; NR]; MR];
    let rows = match left {
        Left::Rows { rows, .. } | Left::Packed { rows, .. } => rows,
    };
    for kk in 0..k {
        let b: &[T; NR] = panel[kk * NR..][..NR].try_into().expect("a panel row has NR values");
        for (i, acc) in acc.iter_mut().enumerate().take(rows) {
            let a = match left {
                // SAFETY: the caller's promise that the rows hold `k` values.
                Left::Rows { ptr, rs, .. } => unsafe { *ptr.add(i * rs + kk) },
                Left::Packed { data, .. } => data[kk * MR + i],
            };
            for (acc, &b) in acc.iter_mut().zip(b) {
                *acc += a * b;
            }
        }
    }
    for (i, acc) in acc.iter().enumerate().take(rows) {
        for (j, &v) in acc.iter().enumerate().take(width) {
            // SAFETY: element (i, j < width) of `c` is writable (the caller's promise).
            unsafe {
                let dst = c.add(i * ldc + j);
                *dst = if accumulate { *dst + v } else { v };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// `M × 16` tile: 2·M accumulators, two loads of the panel and M broadcasts per step of k.
    /// `PACKED`: `a` is a strip (MR values per step); otherwise M rows `lda` apart.
    ///
    /// # Safety
    /// AVX2 and FMA present; `a` holds k steps of M rows, `b` k rows of NR; `c` holds `rows`
    /// (≤ M) rows `ldc` apart of `width` (≤ NR) writable values.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile<const M: usize, const PACKED: bool>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        width: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm256_setzero_ps(); M];
        let mut hi = [_mm256_setzero_ps(); M];
        // SAFETY (all pointer arithmetic below): within the bounds of this function's contract.
        unsafe {
            for kk in 0..k {
                let b0 = _mm256_loadu_ps(b.add(kk * NR));
                let b1 = _mm256_loadu_ps(b.add(kk * NR + 8));
                for i in 0..M {
                    let ai = if PACKED { a.add(kk * MR + i) } else { a.add(i * lda + kk) };
                    let av = _mm256_broadcast_ss(&*ai);
                    lo[i] = _mm256_fmadd_ps(av, b0, lo[i]);
                    hi[i] = _mm256_fmadd_ps(av, b1, hi[i]);
                }
            }
            for i in 0..M.min(rows) {
                let ci = c.add(i * ldc);
                if width == NR {
                    let (mut l, mut h) = (lo[i], hi[i]);
                    if accumulate {
                        l = _mm256_add_ps(l, _mm256_loadu_ps(ci));
                        h = _mm256_add_ps(h, _mm256_loadu_ps(ci.add(8)));
                    }
                    _mm256_storeu_ps(ci, l);
                    _mm256_storeu_ps(ci.add(8), h);
                } else {
                    let mut row = [0f32; NR];
                    _mm256_storeu_ps(row.as_mut_ptr(), lo[i]);
                    _mm256_storeu_ps(row.as_mut_ptr().add(8), hi[i]);
                    for (j, &v) in row.iter().enumerate().take(width) {
                        let dst = ci.add(j);
                        *dst = if accumulate { *dst + v } else { v };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recurrent::fused::real::has_avx2_fma;

    fn values(n: usize, seed: u64) -> Vec<f64> {
        engram_tensor::testing::seeded_values(seed, n)
    }

    /// `a[m, k] · b[k, n]` in f64, row-major.
    fn reference(a: &[f64], b: &[f64], [m, k, n]: [usize; 3]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|kk| a[i * k + kk] * b[kk * n + j]).sum();
            }
        }
        c
    }

    fn check<T: Real + Into<f64>>(got: &[T], want: &[f64], tol: f64, what: &str) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let g: f64 = g.into();
            assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: {g} vs {w}");
        }
    }

    fn both_products<T: Real + Into<f64>>(cast: fn(f64) -> T, simd: bool, tol: f64) {
        for [m, k, n] in [[1, 1, 1], [7, 5, 17], [32, 300, 33], [13, 520, 40], [80, 3, 70]] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = reference(&a, &b, [m, k, n]);
            let (at, bt): (Vec<T>, Vec<T>) =
                (a.iter().map(|&v| cast(v)).collect(), b.iter().map(|&v| cast(v)).collect());
            // Prepacked, a read in place.
            let packed = PackedB::pack(Mat::rows(&bt, k, n), n, |j| j);
            let mut c = vec![T::ZERO; m * n];
            // SAFETY: c is [m, n].
            unsafe {
                mul_packed(simd, Mat::rows(&at, m, k), packed.view(), c.as_mut_ptr(), n, false)
            };
            check(&c, &want, tol, &format!("mul_packed {m}x{k}x{n}"));
            // Accumulating adds the product again.
            // SAFETY: as above.
            unsafe {
                mul_packed(simd, Mat::rows(&at, m, k), packed.view(), c.as_mut_ptr(), n, true)
            };
            let twice: Vec<f64> = want.iter().map(|w| 2.0 * w).collect();
            check(&c, &twice, tol, &format!("mul_packed accumulate {m}x{k}x{n}"));
            // Both operands as the time loop writes them: a's transpose in strips, b in panels,
            // element by element; the product in two parts of rows.
            let mut strips = vec![T::ZERO; Blocked::<T, MR>::len(k, m)];
            for i in 0..m {
                for kk in 0..k {
                    strips[Blocked::<T, MR>::offset(k, kk, i)] = at[i * k + kk];
                }
            }
            let mut panels = vec![T::ZERO; Blocked::<T, NR>::len(k, n)];
            for kk in 0..k {
                for j in 0..n {
                    panels[Blocked::<T, NR>::offset(k, kk, j)] = bt[kk * n + j];
                }
            }
            let (a_b, b_b) = (Blocked::new(&strips, k, m), Blocked::new(&panels, k, n));
            let split = (m / 2).div_ceil(MR) * MR;
            let mut c = vec![T::ZERO; m * n];
            for rows in [0..split.min(m), split.min(m)..m] {
                // SAFETY: c is [m, n]; the row parts are disjoint.
                unsafe { gemm_rows(simd, a_b, rows, b_b, c.as_mut_ptr(), n, false) };
            }
            check(&c, &want, tol, &format!("gemm_rows {m}x{k}x{n}"));
        }
    }

    #[test]
    fn products_match_a_plain_f64_loop() {
        both_products::<f64>(|v| v, false, 1e-12);
        both_products::<f32>(|v| v as f32, false, 1e-4);
        if has_avx2_fma() {
            both_products::<f32>(|v| v as f32, true, 1e-4);
        }
    }
}
