//! The two transcendental functions soft-DTW needs, written so that LLVM vectorises them: `exp`
//! of a non-positive argument and `ln` on `[1, 3]`.
//!
//! libm's `exp`/`ln` are opaque calls that keep a loop scalar. These are branch-free polynomials
//! (selects compile to blends) on the two ranges the recursions use: every soft-min argument is
//! `-(x - min) / γ ≤ 0`, and the sum of three such exponentials, one of which is `e⁰ = 1`, lies in
//! `[1, 3]`. Accuracy is within a few ulps of the type: Taylor series past the type's epsilon,
//! or (f32 `2^x` and `log2`) polynomials interpolating at Chebyshev nodes, evaluated by
//! Estrin's scheme. The lanes kernel (`lanes.rs`) runs its recursion in base 2 and
//! uses `2^x` and `log2`, which skip the reductions by `ln 2`, and a reciprocal estimate.

use crate::float::Float;

/// f32 or f64 with the soft-DTW kernels' `exp` and `ln`. `FMA` selects fused multiply-adds,
/// which are only fast where the CPU has them (the AVX2+FMA copy of the kernels).
pub(crate) trait SoftFloat: Float {
    /// `e^x` for `x ≤ 0`; exactly 0 below the smallest normal result and for `x = -∞`, exactly
    /// 1 at 0.
    fn exp_nonpositive<const FMA: bool>(x: Self) -> Self;
    /// `ln s` for `s` in `[1, 3]` (accurate somewhat beyond both ends).
    fn ln_1_to_3<const FMA: bool>(s: Self) -> Self;
    /// `a · b + c`, one rounding where `FMA`.
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
    /// `1 / x` lane by lane for `x` in `[1, 8]`: the division, except for f32 lanes (8 at a
    /// time) in the AVX2+FMA copy, where it is the hardware estimate refined by one Newton step
    /// (relative error below 2⁻²², a few ulps), a third of the division's cost.
    fn recip_lanes<const L: usize, const FMA: bool>(x: [Self; L]) -> [Self; L];
    /// `2^x` for `x ≤ 0`, as [`SoftFloat::exp_nonpositive`]: for a recursion kept in base 2,
    /// which needs no reduction `x / ln 2` (a multiply-add and two corrections per call).
    fn exp2_nonpositive<const FMA: bool>(x: Self) -> Self;
    /// `log2 s` for `s` in `[1, 3]`, lane by lane: in f32 from the exponent bits and a
    /// polynomial, in f64 [`SoftFloat::ln_1_to_3`]'s series in base 2, its division done by
    /// [`SoftFloat::recip_lanes`].
    fn log2_1_to_3_lanes<const L: usize, const FMA: bool>(s: [Self; L]) -> [Self; L];
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

/// `(ln 2)^n / n!` for `n < 16`: `2^f = e^(f ln 2)`.
const LN2_POWERS: [f64; 16] = {
    let mut a = [1.0; 16];
    let mut i = 1;
    while i < 16 {
        a[i] = a[i - 1] * std::f64::consts::LN_2 / i as f64;
        i += 1;
    }
    a
};

/// `1 / (2n + 1)` for `n < 16`.
const INV_ODD: [f64; 16] = {
    let mut a = [1.0; 16];
    let mut i = 1;
    while i < 16 {
        a[i] = 1.0 / (2 * i + 1) as f64;
        i += 1;
    }
    a
};

/// The first `N` entries of `a`.
const fn prefix<const N: usize>(a: &[f64; 16]) -> [f64; N] {
    let mut out = [0.0; N];
    let mut i = 0;
    while i < N {
        out[i] = a[i];
        i += 1;
    }
    out
}

/// `Σ coeffs[i] xⁱ` by Estrin's scheme: `(c0 + c1 x) + x² (c2 + c3 x) + x⁴ (...)`, a tree of
/// multiply-adds `log2(n)` deep instead of Horner's chain of `n`. The recursions run many
/// cells' polynomials at once, and on a chain of dependent multiply-adds the out-of-order core
/// runs out of window before it runs out of arithmetic units. Constant coefficients and
/// lengths unroll to straight-line code.
#[inline(always)]
fn estrin<T: Float + MulAdd, const N: usize, const FMA: bool>(x: T, coeffs: &[f64; N]) -> T {
    const { assert!(N > 0 && N <= 16) };
    let mut level = [T::ZERO; 16];
    for (l, &c) in level.iter_mut().zip(coeffs) {
        *l = T::from_f64(c);
    }
    // Four stages with lengths known at compile time (16 coefficients at most): each pairs its
    // neighbours with the next power of x, an odd last one carried up.
    let mut len = N;
    let mut power = x;
    for _ in 0..4 {
        if len > 1 {
            for i in 0..len / 2 {
                level[i] = madd::<T, FMA>(level[2 * i + 1], power, level[2 * i]);
            }
            if len % 2 == 1 {
                level[len / 2] = level[len - 1];
            }
            len = len.div_ceil(2);
            power = power * power;
        }
    }
    level[0]
}

#[inline(always)]
fn madd<T: Float + MulAdd, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add_(b, c) } else { a * b + c }
}

/// `mul_add` for both types (std's is inherent, not a trait method), and the halves of `ln`.
trait MulAdd: Sized {
    fn mul_add_(self, b: Self, c: Self) -> Self;
    /// Two conditional halvings bring `s` in `[1, 3]` to `f · 2^k` with `f` in `[1/√2, √2]`;
    /// there `ln f = 2 atanh(t) = 2 (t + t³/3 + t⁵/5 + ...)` with `t = (f - 1)/(f + 1)`,
    /// `|t| <= 0.172`, which `ln_series` sums.
    fn ln_reduce(s: Self) -> (Self, Self);
    fn ln_series<const FMA: bool>(t: Self, k: Self) -> Self;
    /// `ln_series / ln 2`: `2 t / ln 2 · (...) + k`.
    fn log2_series<const FMA: bool>(t: Self, k: Self) -> Self;
}

/// The hardware reciprocal estimate (12 bits) and one Newton step, `r (2 - x r)`, which squares
/// the relative error: f32 lanes, 8 at a time, in the AVX2+FMA copy of a kernel, else `None`.
#[inline(always)]
fn recip_estimate<T: Float, const L: usize, const FMA: bool>(x: &[T; L]) -> Option<[T; L]> {
    #[cfg(target_arch = "x86_64")]
    if FMA && L.is_multiple_of(8) && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        use std::arch::x86_64::{
            _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_loadu_ps, _mm256_rcp_ps, _mm256_set1_ps,
            _mm256_storeu_ps,
        };
        let mut out = *x;
        for at in (0..L).step_by(8) {
            // SAFETY: `T` is f32 and `L` a multiple of 8, checked above, so `at..at + 8` are 8
            // contiguous f32 of both arrays; `FMA` is true only in the kernels'
            // `#[target_feature(enable = "avx2,fma")]` copies, which run only after the CPU was
            // checked for AVX2 and FMA.
            unsafe {
                let x = _mm256_loadu_ps(x.as_ptr().cast::<f32>().add(at));
                let r = _mm256_rcp_ps(x);
                let residual = _mm256_fnmadd_ps(x, r, _mm256_set1_ps(1.0));
                _mm256_storeu_ps(
                    out.as_mut_ptr().cast::<f32>().add(at),
                    _mm256_fmadd_ps(r, residual, r),
                );
            }
        }
        return Some(out);
    }
    None
}

macro_rules! soft_float {
    ($t:ty, $mant:expr, $bias:expr, $low:expr, $ln2_hi:expr, $ln2_lo:expr,
     $exp_terms:expr, $ln_terms:expr, $exp2_coeffs:expr, $log2:ident) => {
        impl MulAdd for $t {
            #[inline(always)]
            fn mul_add_(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }

            #[inline(always)]
            fn ln_reduce(s: $t) -> ($t, $t) {
                const SQRT2: $t = std::f64::consts::SQRT_2 as $t;
                let (f, k) = if s > SQRT2 { (s * 0.5, 1.0) } else { (s, 0.0) };
                if f > SQRT2 { (f * 0.5, k + 1.0) } else { (f, k) }
            }

            #[inline(always)]
            fn ln_series<const FMA: bool>(t: $t, k: $t) -> $t {
                const LN2: $t = std::f64::consts::LN_2 as $t;
                const COEFFS: [f64; $ln_terms] = prefix(&INV_ODD);
                let p = estrin::<$t, $ln_terms, FMA>(t * t, &COEFFS);
                madd::<$t, FMA>(2.0 * t, p, k * LN2)
            }

            #[inline(always)]
            fn log2_series<const FMA: bool>(t: $t, k: $t) -> $t {
                const TWO_LOG2_E: $t = 2.0 * std::f64::consts::LOG2_E as $t;
                const COEFFS: [f64; $ln_terms] = prefix(&INV_ODD);
                let p = estrin::<$t, $ln_terms, FMA>(t * t, &COEFFS);
                madd::<$t, FMA>(TWO_LOG2_E * t, p, k)
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
                // Taylor series of e^r.
                const COEFFS: [f64; $exp_terms + 1] = prefix(&INV_FACTORIAL);
                let p = estrin::<$t, { $exp_terms + 1 }, FMA>(r, &COEFFS);
                let y = p * scale;
                if x < $low { 0.0 } else { y }
            }

            #[inline(always)]
            fn ln_1_to_3<const FMA: bool>(s: Self) -> Self {
                let (f, k) = <$t as MulAdd>::ln_reduce(s);
                <$t as MulAdd>::ln_series::<FMA>((f - 1.0) / (f + 1.0), k)
            }

            #[inline(always)]
            fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
                madd::<$t, FMA>(a, b, c)
            }

            #[inline(always)]
            fn recip_lanes<const L: usize, const FMA: bool>(x: [Self; L]) -> [Self; L] {
                if let Some(r) = recip_estimate::<$t, L, FMA>(&x) {
                    return r;
                }
                let mut out = x;
                for out in &mut out {
                    *out = 1.0 / *out;
                }
                out
            }

            #[inline(always)]
            fn exp2_nonpositive<const FMA: bool>(x: Self) -> Self {
                // 2^x = 2^k 2^f with k = round(x), |f| <= 1/2, built as in `exp_nonpositive`;
                // f = x - k is exact.
                const SHIFT: $t = 1.5 * (1u64 << $mant) as $t + $bias as $t;
                const LOW: $t = 1.0 - $bias as $t;
                const COEFFS: [f64; $exp2_coeffs.len()] = $exp2_coeffs;
                let xc = if x < LOW { LOW } else { x };
                let kf = xc + SHIFT;
                let scale = <$t>::from_bits(kf.to_bits() << $mant);
                let f = xc - (kf - SHIFT);
                let y = estrin::<$t, { $exp2_coeffs.len() }, FMA>(f, &COEFFS) * scale;
                if x < LOW { 0.0 } else { y }
            }

            #[inline(always)]
            fn log2_1_to_3_lanes<const L: usize, const FMA: bool>(s: [Self; L]) -> [Self; L] {
                $log2::<L, FMA>(s)
            }
        }
    };
}

/// `log2 s` by the `atanh` series of [`MulAdd::ln_reduce`]'s reduced argument, whose division
/// is one [`SoftFloat::recip_lanes`] call: for f64, whose precision a polynomial would reach
/// only at a high degree.
#[inline(always)]
fn log2_atanh_f64<const L: usize, const FMA: bool>(s: [f64; L]) -> [f64; L] {
    let (mut f, mut k, mut den) = ([0.0; L], [0.0; L], [0.0; L]);
    for l in 0..L {
        (f[l], k[l]) = f64::ln_reduce(s[l]);
        den[l] = f[l] + 1.0;
    }
    let inv = f64::recip_lanes::<L, FMA>(den);
    let mut out = [0.0; L];
    for l in 0..L {
        out[l] = f64::log2_series::<FMA>((f[l] - 1.0) * inv[l], k[l]);
    }
    out
}

/// `log2 s` in f32 without a division: the exponent comes from the bits, offset so that the
/// mantissa `f` falls in `[2/3, 4/3)`, and `log2 f = x P(x)`, `x = f - 1`, with `P` of degree 8
/// interpolating `log2(1 + x) / x` at the Chebyshev nodes of `[-1/3, 1/3]` (absolute error
/// below 6e-8 evaluated in f32, from `numpy.polynomial.chebyshev.chebfit`). Integer steps and
/// one Estrin tree: about half the latency of the `atanh` route, which mattered more than the
/// operation count because the forward recursion's cells wait on this value.
#[inline(always)]
fn log2_poly_f32<const L: usize, const FMA: bool>(s: [f32; L]) -> [f32; L] {
    // The constant term is log2(e) to the fit's precision.
    const COEFFS: [f64; 9] = [
        std::f64::consts::LOG2_E,
        -0.721_346_56,
        0.480_897_47,
        -0.360_788_19,
        0.288_643_37,
        -0.236_811_47,
        0.202_782_51,
        -0.222_092_4,
        0.198_346_17,
    ];
    // Bits of 2/3: `s` is `2^e f` with `f` in [2/3, 4/3) for `e = (bits(s) - bits(2/3)) >> 23`.
    const TWO_THIRDS: i32 = 0x3f2a_aaab;
    let mut out = [0.0; L];
    for l in 0..L {
        let bits = s[l].to_bits() as i32;
        let e = bits.wrapping_sub(TWO_THIRDS) >> 23;
        let x = f32::from_bits(bits.wrapping_sub(e << 23) as u32) - 1.0;
        out[l] = madd::<f32, FMA>(x, estrin::<f32, 9, FMA>(x, &COEFFS), e as f32);
    }
    out
}

// Terms: e^r to r^7/7! (f32) and r^14/14! (f64), each below the type's epsilon at |r| = ln 2 / 2
// (f64's 2^f likewise); atanh to t^9 (f32) and t^23 (f64) likewise at |t| = 0.172. f32's 2^f and
// log2 are the fitted polynomials `EXP2_F32` and `log2_poly_f32`.
soft_float!(
    f32,
    23,
    127,
    -87.0,
    0.693_359_4_f32,
    -2.121_944_4e-4_f32,
    7,
    5,
    EXP2_F32,
    log2_poly_f32
);
soft_float!(
    f64,
    52,
    1023,
    -708.0,
    6.931_471_803_691_238e-1,
    1.908_214_929_270_587_7e-10,
    14,
    12,
    prefix::<15>(&LN2_POWERS),
    log2_atanh_f64
);

/// `2^f` on `[-1/2, 1/2]` for f32: `1 + f q(f)` with `q` of degree 4 interpolating
/// `(2^f - 1) / f` at the Chebyshev nodes (`numpy.polynomial.chebyshev.chebfit`; relative error
/// below 3e-7 evaluated in f32). Two multiply-adds fewer than the Taylor series to `f^7`, three
/// times per soft-DTW cell; the constant 1 keeps `2^0` exact (the linear term is `ln 2` to the
/// fit's precision).
const EXP2_F32: [f64; 6] = [
    1.0,
    std::f64::consts::LN_2,
    0.240_223_49,
    0.055_503_810_1,
    0.009_666_368_52,
    0.001_338_130_25,
];

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

    /// The lane versions over `[0.9, 3.2]` (`log2`) and `[2.25, 8]` (`recip`), `L` at a time.
    fn check_lanes<T: SoftFloat, const L: usize, const FMA: bool>(rel: f64) {
        let mut start = 0.9;
        while start <= 3.2 {
            let s: [T; L] = std::array::from_fn(|l| T::from_f64(start + 0.000_71 * l as f64));
            let log2 = T::log2_1_to_3_lanes::<L, FMA>(s);
            let inv = T::recip_lanes::<L, FMA>(s.map(|s| s * T::from_f64(2.5)));
            for l in 0..L {
                let s = s[l].to_f64();
                let want = s.log2();
                let got = log2[l].to_f64();
                assert!((got - want).abs() <= rel * want.abs() + rel, "log2({s}) = {got}");
                let want = 1.0 / (T::from_f64(2.5).to_f64() * s);
                let got = inv[l].to_f64();
                assert!((got - want).abs() <= rel * want, "1 / ({s} · 2.5) = {got}");
            }
            start += 0.000_71 * L as f64;
        }
    }

    fn check_exp2<T: SoftFloat, const FMA: bool>(rel: f64) {
        let mut x = -1100.0;
        while x <= 0.0 {
            let got = T::exp2_nonpositive::<FMA>(T::from_f64(x)).to_f64();
            let want = T::from_f64(x).to_f64().exp2();
            let tiny = if rel > 1e-10 { 1e-37 } else { 1e-306 };
            assert!((got - want).abs() <= rel * want + tiny, "2^{x} = {got}, want {want}");
            x += 0.0137;
        }
        assert_eq!(T::exp2_nonpositive::<FMA>(T::ZERO).to_f64(), 1.0);
        assert_eq!(T::exp2_nonpositive::<FMA>(T::from_f64(f64::NEG_INFINITY)).to_f64(), 0.0);
    }

    #[test]
    fn base_2_versions_are_as_accurate() {
        check_exp2::<f32, false>(4e-7);
        check_exp2::<f32, true>(4e-7);
        check_exp2::<f64, false>(1e-15);
        check_exp2::<f64, true>(1e-15);
    }

    #[test]
    fn lane_versions_are_as_accurate() {
        check_lanes::<f32, 8, false>(3e-7);
        check_lanes::<f64, 4, false>(5e-16);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // The f32 reciprocal is the hardware estimate and a Newton step here.
            check_lanes::<f32, 8, true>(4e-7);
            check_lanes::<f64, 4, true>(5e-16);
        }
    }
}
