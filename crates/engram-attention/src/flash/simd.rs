//! The two inner loops of the host kernel ([`super::host`]): a small matrix product on
//! row-major tiles and `exp` over a row, with AVX2/FMA where the CPU has them and portable
//! loops elsewhere.
//!
//! The products of attention tiles are small (64 × 64 × head width 32–128): too small for a
//! packing gemm to pay off, large enough that a register-blocked loop (6 rows × 16 columns of
//! accumulators, one broadcast and two loads per step) runs near the FMA units' rate from L1.
//! `exp` has no vector form in std; the AVX2 one is Cephes' `expf` (relative error about 2e-7),
//! eight lanes at a time.

/// Whether the CPU has AVX2 and FMA (checked once per kernel call).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Isa {
    avx2: bool,
}

impl Isa {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            Isa { avx2: is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Isa { avx2: false }
        }
    }

    /// The portable loops only (tests compare them with the AVX2 ones).
    #[cfg(test)]
    pub(crate) fn portable() -> Self {
        Isa { avx2: false }
    }
}

/// A read-only matrix operand: element `(i, p)` is `data[i * rs + p * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with row stride `ld`.
    pub(crate) fn rows(data: &'a [f32], ld: usize) -> Self {
        Mat { data, rs: ld, cs: 1 }
    }

    /// The transpose of a row-major matrix with row stride `ld`.
    pub(crate) fn cols(data: &'a [f32], ld: usize) -> Self {
        Mat { data, rs: 1, cs: ld }
    }
}

/// `c[i * ldc + j] (+)= Σ_p a(i, p) · b[p * ldb + j]` for `i < m`, `j < n`, `p < k`; adds to
/// `c` when `accumulate`, overwrites it otherwise.
///
/// # Panics
/// If a buffer is too short for its shape and strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    isa: Isa,
    [m, n, k]: [usize; 3],
    a: Mat<'_>,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, rs: usize, cols: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        (k == 0 || (a.data.len() > last(m, a.rs, k, a.cs) && b.len() > last(k, ldb, n, 1)))
            && c.len() > last(m, ldc, n, 1),
        "matmul: buffers of {}, {} and {} values do not hold [{m}, {k}] · [{k}, {n}]",
        a.data.len(),
        b.len(),
        c.len()
    );
    #[cfg(target_arch = "x86_64")]
    if isa.avx2 && k > 0 {
        // SAFETY: AVX2 and FMA were detected at run time, and the assertion above checked that
        // every index the kernel reads or writes is inside its buffer.
        unsafe { avx2::matmul([m, n, k], a, b, ldb, c, ldc, accumulate) };
        return;
    }
    if !accumulate {
        for i in 0..m {
            c[i * ldc..i * ldc + n].fill(0.0);
        }
    }
    let _ = isa;
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        for p in 0..k {
            let x = a.data[i * a.rs + p * a.cs];
            for (y, &w) in row.iter_mut().zip(&b[p * ldb..p * ldb + n]) {
                *y += x * w;
            }
        }
    }
}

/// The largest value of `row` (`-inf` when empty). std's `f32::max` orders NaNs, which keeps
/// the compiler from vectorizing a fold of it.
pub(crate) fn max(isa: Isa, row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa.avx2 {
        // SAFETY: AVX2 was detected at run time; the kernel stays inside `row`.
        return unsafe { avx2::max(row) };
    }
    let _ = isa;
    row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

/// `row[j] = exp(row[j] - shift)`, with `exp(-inf) = 0`; returns the sum of the new values.
pub(crate) fn exp_shifted(isa: Isa, row: &mut [f32], shift: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa.avx2 {
        // SAFETY: AVX2 and FMA were detected at run time; the kernel stays inside `row`.
        return unsafe { avx2::exp_shifted(row, shift) };
    }
    let _ = isa;
    let mut sum = 0.0;
    for x in row {
        *x = (*x - shift).exp();
        sum += *x;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Mat;

    /// Rows of accumulators per step of the register-blocked product: 6 × 2 vectors keep 12
    /// FMAs in flight, enough to cover the FMA latency on two ports (8 left a fifth idle).
    const MR: usize = 6;

    /// [`super::matmul`].
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the buffers hold every index of the shapes and strides.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul(
        [m, n, k]: [usize; 3],
        a: Mat<'_>,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(MR);
            let a_rows = a.data[i * a.rs..].as_ptr();
            let c_rows = c[i * ldc..].as_mut_ptr();
            // SAFETY: (every arm) rows i..i + rows of `a` and `c` are in bounds, as
            // the caller promised for all m rows.
            unsafe {
                let args = Block {
                    n,
                    k,
                    a: a_rows,
                    rs: a.rs,
                    cs: a.cs,
                    b: b.as_ptr(),
                    ldb,
                    c: c_rows,
                    ldc,
                    accumulate,
                };
                match rows {
                    6 => block::<6>(args),
                    5 => block::<5>(args),
                    4 => block::<4>(args),
                    3 => block::<3>(args),
                    2 => block::<2>(args),
                    _ => block::<1>(args),
                }
            }
            i += rows;
        }
    }

    /// The operands of [`block`]: `R` rows from `a` and `c`.
    #[derive(Clone, Copy)]
    struct Block {
        n: usize,
        k: usize,
        a: *const f32,
        rs: usize,
        cs: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    }

    /// `R` rows of the product: 16 columns at a time, then 8, then one by one; stores into
    /// `c` or adds to it.
    ///
    /// # Safety
    /// As [`matmul`], for `R` rows starting at `a` and `c`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const R: usize>(args: Block) {
        let Block { n, k, a, rs, cs, b, ldb, c, ldc, accumulate } = args;
        // SAFETY: `out` points at 8 floats of `c`.
        let store = |out: *mut f32, acc: __m256| unsafe {
            let acc = if accumulate { _mm256_add_ps(_mm256_loadu_ps(out), acc) } else { acc };
            _mm256_storeu_ps(out, acc);
        };
        // SAFETY: every pointer below stays within rows < R of `a`/`c`, p < k, j < n, which
        // the caller guarantees are in bounds.
        unsafe {
            let mut j = 0;
            while j + 16 <= n {
                let mut acc = [[_mm256_setzero_ps(); 2]; R];
                for p in 0..k {
                    let b0 = _mm256_loadu_ps(b.add(p * ldb + j));
                    let b1 = _mm256_loadu_ps(b.add(p * ldb + j + 8));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = _mm256_broadcast_ss(&*a.add(r * rs + p * cs));
                        acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    store(c.add(r * ldc + j), acc[0]);
                    store(c.add(r * ldc + j + 8), acc[1]);
                }
                j += 16;
            }
            if j + 8 <= n {
                let mut acc = [_mm256_setzero_ps(); R];
                for p in 0..k {
                    let b0 = _mm256_loadu_ps(b.add(p * ldb + j));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = _mm256_broadcast_ss(&*a.add(r * rs + p * cs));
                        *acc = _mm256_fmadd_ps(x, b0, *acc);
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    store(c.add(r * ldc + j), *acc);
                }
                j += 8;
            }
            for j in j..n {
                for r in 0..R {
                    let mut sum = 0.0;
                    for p in 0..k {
                        sum += *a.add(r * rs + p * cs) * *b.add(p * ldb + j);
                    }
                    let out = c.add(r * ldc + j);
                    *out = if accumulate { *out + sum } else { sum };
                }
            }
        }
    }

    /// Cephes' `expf` on eight lanes; lanes below -87.3 (where f32 underflows), `-inf`
    /// included, give 0.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn exp8(x: __m256) -> __m256 {
        let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-87.3));
        let x = _mm256_min_ps(x, _mm256_set1_ps(88.0));
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.3));
        // x = n·ln 2 + r, |r| <= ln 2 / 2, with ln 2 split in two for precision.
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut y = _mm256_set1_ps(1.987_569_1e-4);
        for coefficient in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(coefficient));
        }
        let y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
        let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(pow2)))
    }

    /// [`super::max`].
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max(row: &[f32]) -> f32 {
        let mut max8 = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut chunks = row.chunks_exact(8);
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds exactly 8 floats.
            max8 = _mm256_max_ps(max8, unsafe { _mm256_loadu_ps(chunk.as_ptr()) });
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), max8) };
        lanes.iter().chain(chunks.remainder()).fold(f32::NEG_INFINITY, |a, &b| a.max(b))
    }

    /// [`super::exp_shifted`].
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shifted(row: &mut [f32], shift: f32) -> f32 {
        let shift8 = _mm256_set1_ps(shift);
        // Two independent chains of vectors in flight: one `exp8` is a long dependent chain.
        let (mut sum_a, mut sum_b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut pairs = row.chunks_exact_mut(16);
        for pair in &mut pairs {
            // SAFETY: `pair` holds exactly 16 floats.
            unsafe {
                let p = pair.as_mut_ptr();
                let a = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), shift8));
                let b = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(8)), shift8));
                _mm256_storeu_ps(p, a);
                _mm256_storeu_ps(p.add(8), b);
                sum_a = _mm256_add_ps(sum_a, a);
                sum_b = _mm256_add_ps(sum_b, b);
            }
        }
        let mut tail = pairs.into_remainder();
        let mut sum = 0.0;
        while !tail.is_empty() {
            let n = tail.len().min(8);
            let mut lanes = [f32::NEG_INFINITY; 8];
            lanes[..n].copy_from_slice(&tail[..n]);
            // SAFETY: `lanes` holds 8 floats; the padding lanes give exp(-inf) = 0.
            unsafe {
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(lanes.as_ptr()), shift8));
                _mm256_storeu_ps(lanes.as_mut_ptr(), e);
            }
            tail[..n].copy_from_slice(&lanes[..n]);
            sum += lanes[..n].iter().sum::<f32>();
            tail = &mut tail[n..];
        }
        let mut sums = [0.0f32; 8];
        // SAFETY: `sums` holds 8 floats.
        unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), _mm256_add_ps(sum_a, sum_b)) };
        sums.iter().sum::<f32>() + sum
    }
}
