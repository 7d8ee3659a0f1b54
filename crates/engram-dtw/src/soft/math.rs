//! The two transcendental functions soft-DTW needs, written so that LLVM vectorises them: `exp`
//! of a non-positive argument and `ln` on `[1, 3]`.
//!
//! libm's `exp`/`ln` are opaque calls that keep a loop scalar. These are branch-free polynomials
//! (selects compile to blends) on the two ranges the recursions use: every soft-min argument is
//! `-(x - min) / γ ≤ 0`, and the sum of three such exponentials, one of which is `e⁰ = 1`, lies in
//! `[1, 3]`. Accuracy is within a few ulps of the type: Taylor series past the type's epsilon.

use crate::float::Float;

/// f32 or f64 with the soft-DTW kernels' `exp` and `ln`. `FMA` selects fused multiply-adds,
/// which are only fast where the CPU has them (the AVX2+FMA copy of the kernels).
pub(crate) trait SoftFloat: Float {
    /// `e^x` for `x ≤ 0`; exactly 0 below the smallest normal result and for `x = -∞`, exactly
    /// 1 at 0.
    fn exp_nonpositive<const FMA: bool>(x: Self) -> Self;
    /// `ln s` for `s` in `[1, 3]` (accurate somewhat beyond both ends).
    fn ln_1_to_3<const FMA: bool>(s: Self) -> Self;
}

/// `1 / n!` for `n < 16`.
const INV_FACTORIAL: [f64; 16] = {
    let mut a = [1.0; 16];
    let mut i = 1;
    while i < 16 {
        a[i] = a[i - 1] / i as f64;
        i += 1;
    }
    a
};

#[inline(always)]
fn madd<T: Float + MulAdd, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add_(b, c) } else { a * b + c }
}

/// `mul_add` for both types (std's is inherent, not a trait method).
trait MulAdd {
    fn mul_add_(self, b: Self, c: Self) -> Self;
}

macro_rules! soft_float {
    ($t:ty, $mant:expr, $bias:expr, $low:expr, $ln2_hi:expr, $ln2_lo:expr,
     $exp_terms:expr, $ln_terms:expr) => {
        impl MulAdd for $t {
            #[inline(always)]
            fn mul_add_(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }
        }

        impl SoftFloat for $t {
            #[inline(always)]
            fn exp_nonpositive<const FMA: bool>(x: Self) -> Self {
                // e^x = 2^k e^r with k = round(x / ln 2), |r| <= ln 2 / 2. Adding 1.5·2^MANT
                // rounds x / ln 2 to an integer held in the low mantissa bits; with the bias
                // added too, shifting those bits into the exponent field builds 2^k directly.
                // x >= LOW keeps k + bias >= 1, a normal number.
                const SHIFT: $t = 1.5 * (1u64 << $mant) as $t + $bias as $t;
                let xc = if x < $low { $low } else { x };
                let kf = madd::<$t, FMA>(xc, std::f64::consts::LOG2_E as $t, SHIFT);
                let scale = <$t>::from_bits(kf.to_bits() << $mant);
                let k = kf - SHIFT;
                let r = madd::<$t, FMA>(-k, $ln2_hi, xc);
                let r = madd::<$t, FMA>(-k, $ln2_lo, r);
                // Taylor series of e^r by Horner, coefficients 1/n! highest first (constants
                // once the loop is unrolled).
                let mut p = INV_FACTORIAL[$exp_terms] as $t;
                let mut n = $exp_terms;
                while n > 0 {
                    n -= 1;
                    p = madd::<$t, FMA>(p, r, INV_FACTORIAL[n] as $t);
                }
                let y = p * scale;
                if x < $low { 0.0 } else { y }
            }

            #[inline(always)]
            fn ln_1_to_3<const FMA: bool>(s: Self) -> Self {
                // Two conditional halvings bring s into [1/√2, √2]; there
                // ln f = 2 atanh(t) = 2 (t + t³/3 + t⁵/5 + ...), t = (f - 1)/(f + 1), |t| <= 0.172.
                const SQRT2: $t = std::f64::consts::SQRT_2 as $t;
                const LN2: $t = std::f64::consts::LN_2 as $t;
                let (f, k) = if s > SQRT2 { (s * 0.5, 1.0) } else { (s, 0.0) };
                let (f, k) = if f > SQRT2 { (f * 0.5, k + 1.0) } else { (f, k) };
                let t = (f - 1.0) / (f + 1.0);
                let t2 = t * t;
                let mut p: $t = 0.0;
                let mut n = $ln_terms;
                while n > 0 {
                    p = madd::<$t, FMA>(p, t2, 1.0 / (2 * n - 1) as $t);
                    n -= 1;
                }
                madd::<$t, FMA>(2.0 * t, p, k * LN2)
            }
        }
    };
}

// Terms: e^r to r^7/7! (f32) and r^14/14! (f64), each below the type's epsilon at |r| = ln 2 / 2;
// atanh to t^9 (f32) and t^23 (f64) likewise at |t| = 0.172.
soft_float!(f32, 23, 127, -87.0, 0.693_359_4_f32, -2.121_944_4e-4_f32, 7, 5);
soft_float!(f64, 52, 1023, -708.0, 6.931_471_803_691_238e-1, 1.908_214_929_270_587_7e-10, 14, 12);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_exp<T: SoftFloat, const FMA: bool>(rel: f64) {
        let mut x = -750.0;
        while x <= 0.0 {
            let got = T::exp_nonpositive::<FMA>(T::from_f64(x)).to_f64();
            let want = T::from_f64(x).to_f64().exp();
            let tiny = if rel > 1e-10 { 1e-37 } else { 1e-306 };
            assert!(
                (got - want).abs() <= rel * want + tiny,
                "exp({x}) = {got}, want {want} (FMA {FMA})"
            );
            x += 0.0137;
        }
        assert_eq!(T::exp_nonpositive::<FMA>(T::ZERO).to_f64(), 1.0);
        assert_eq!(T::exp_nonpositive::<FMA>(T::from_f64(f64::NEG_INFINITY)).to_f64(), 0.0);
    }

    fn check_ln<T: SoftFloat, const FMA: bool>(rel: f64) {
        let mut s = 0.9;
        while s <= 3.2 {
            let got = T::ln_1_to_3::<FMA>(T::from_f64(s)).to_f64();
            let want = T::from_f64(s).to_f64().ln();
            assert!((got - want).abs() <= rel * want.abs() + rel, "ln({s}) = {got}, want {want}");
            s += 0.000_71;
        }
        assert_eq!(T::ln_1_to_3::<FMA>(T::ONE).to_f64(), 0.0);
    }

    #[test]
    fn exp_is_accurate_on_the_whole_nonpositive_range() {
        check_exp::<f32, false>(4e-7);
        check_exp::<f32, true>(4e-7);
        check_exp::<f64, false>(1e-15);
        check_exp::<f64, true>(1e-15);
    }

    #[test]
    fn ln_is_accurate_between_one_and_three() {
        check_ln::<f32, false>(3e-7);
        check_ln::<f32, true>(3e-7);
        check_ln::<f64, false>(5e-16);
        check_ln::<f64, true>(5e-16);
    }
}
