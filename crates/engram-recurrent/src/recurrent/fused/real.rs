//! The element types the fused kernel runs in (f32, and f64 for gradient checks), the
//! instruction set it picks at run time, and cache-line-aligned buffers.

use std::marker::PhantomData;
use std::sync::Mutex;

/// The element types the kernel runs in: f32, and f64 for gradient checks.
///
/// Only `f32` and `f64` implement it: [`Buf`] relies on every bit pattern being a valid value.
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
    /// Whether this is `f32`, the type the AVX2/FMA kernels are written for.
    const IS_F32: bool;
    fn tanh(self) -> Self;
    fn relu(self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF: Self = 0.5;
    const IS_F32: bool = true;
    /// Eigen's rational approximation (`ptanh_float`): a few ulp from `f32::tanh`, branch-free
    /// so that the gate loops vectorise (a libm call took a quarter of the LSTM's time).
    #[inline(always)]
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
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF: Self = 0.5;
    const IS_F32: bool = false;
    #[inline]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

/// `(1 + tanh(x / 2)) / 2`: the logistic function without overflow for any `x`.
#[inline(always)]
pub(crate) fn sigmoid<T: Real>(x: T) -> T {
    T::HALF + T::HALF * (T::HALF * x).tanh()
}

/// Whether the AVX2/FMA kernels can run here (checked once per call of the kernel).
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f` compiled for AVX2/FMA when `simd` is true (the caller checked [`has_avx2_fma`]), so
/// that the gate loops inlined into it vectorise 8 lanes wide; otherwise as the crate is built.
#[inline(always)]
pub(crate) fn vectorized<R>(simd: bool, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only true where the CPU has AVX2 and FMA.
        return unsafe { with_avx2_fma(f) };
    }
    let _ = simd;
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// A buffer aligned to a cache line, so that the kernels' 32-byte loads never straddle two
/// lines (large `Vec`s from the system allocator are 16-byte aligned).
///
/// Large buffers go back to a small pool when dropped and serve the next pass of the same
/// size ([`Buf::reused`]): one LSTM layer's pass allocates ~70 MiB of them, and zeroing that
/// (or faulting in fresh pages) took about a tenth of the pass.
pub(crate) struct Buf<T> {
    lines: Vec<Line>,
    len: usize,
    _type: PhantomData<T>,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Buffers of at least [`POOLED_BYTES`] handed back by dropped [`Buf`]s, newest last.
static POOL: Mutex<Vec<Vec<Line>>> = Mutex::new(Vec::new());
const POOLED_BYTES: usize = 64 << 10;
/// What the pool may hold; beyond it the oldest buffers are freed.
const POOL_CAPACITY_BYTES: usize = 512 << 20;

impl<T: Real> Buf<T> {
    /// A buffer whose values are unspecified: zeros, or what an earlier pass left. For buffers
    /// that are written before they are read (padding of blocked layouts may keep old values;
    /// the tiles compute with it but never store the result).
    pub(crate) fn reused(len: usize) -> Self {
        let lines = (len * std::mem::size_of::<T>()).div_ceil(64);
        let pooled = if lines * 64 >= POOLED_BYTES {
            let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.iter().rposition(|b| b.len() == lines).map(|i| pool.swap_remove(i))
        } else {
            None
        };
        let lines = pooled.unwrap_or_else(|| vec![Line([0; 64]); lines]);
        Buf { lines, len, _type: PhantomData }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: the lines hold at least `len` values of `T` (f32 or f64, alignment ≤ 64), and
        // every bit pattern the lines can hold (zeros, or `T`s written earlier) is a valid `T`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

/// Fills every pooled buffer with NaNs (all bits set), so that a test can show that no pass
/// reads a value it did not write.
#[cfg(test)]
pub(crate) fn poison_pool() {
    let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for buffer in pool.iter_mut() {
        buffer.fill(Line([0xff; 64]));
    }
}

impl<T> Drop for Buf<T> {
    fn drop(&mut self) {
        if self.lines.len() * 64 < POOLED_BYTES {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pool.push(lines);
        let mut held: usize = pool.iter().map(|b| b.len() * 64).sum();
        while held > POOL_CAPACITY_BYTES {
            held -= pool.remove(0).len() * 64;
        }
    }
}

impl<T: Real> Clone for Buf<T> {
    fn clone(&self) -> Self {
        let mut copy = Self::reused(self.len);
        copy.lines.copy_from_slice(&self.lines);
        copy
    }
}

impl<T: Real> std::fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf({} × {})", self.len, std::any::type_name::<T>())
    }
}
