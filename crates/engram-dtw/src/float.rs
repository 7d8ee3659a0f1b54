//! The float types DTW runs on: f32 and f64.

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, Mul, Sub};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// f32 or f64. Sealed: the kernels rely on IEEE semantics of exactly these two types.
///
/// The methods are the few the DTW kernels need; `min`/`max` are written as comparisons so that
/// they compile to single SIMD instructions (std's `f64::min` handles NaN, which costs a blend),
/// which is fine because every input is checked to be finite first.
pub trait Float:
    sealed::Sealed
    + Copy
    + PartialOrd
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// +∞, the value of cells outside the window.
    const INFINITY: Self;
    /// Converts from f64 (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64.
    fn to_f64(self) -> f64;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// The smaller of two finite values (`self` on ties).
    #[inline(always)]
    fn min2(self, other: Self) -> Self {
        if other < self { other } else { self }
    }
    /// The larger of two finite values (`self` on ties).
    #[inline(always)]
    fn max2(self, other: Self) -> Self {
        if other > self { other } else { self }
    }
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);
