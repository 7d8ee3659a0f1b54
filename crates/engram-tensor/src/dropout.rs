//! Dropout whose mask costs about a nanosecond per element on the CPU backends.
//!
//! burn's [`Dropout`] draws its mask with `Tensor::random_like(Bernoulli)`, which flex and
//! ndarray fill on one thread from a ChaCha generator through `rand`'s distribution sampler.
//! On a `[32, 128, 1024]` input at p = 0.1 (the feed-forward activations of
//! `tasks/classifier_step`), burn's `Dropout::forward` took 76-79 ms and [`dropout`] 12-15 ms
//! (release build, 2 threads, quiet machine, each including a copy of the result to the host).
//! That step draws about 17 million mask elements, so some 0.25 s of its ~2 s went to the
//! sampler. [`dropout`] draws one 64-bit seed from the
//! device's generator (so [`Device::seed`](burn::tensor::Device) still makes runs reproducible)
//! and hashes each element's index with it (SplitMix64, two elements per hash), in parallel.
//! The mask holds `0` or `1 / (1 - p)`, so applying it is one multiplication. Other backends
//! (wgpu) keep burn's own mask, drawn on the device.

use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::backend::{Backend, backend_of};

/// Elements per parallel task; a multiple of 2 (each hash serves two elements).
pub(crate) const CHUNK: usize = 1 << 16;

/// Applies `layer` to `input` as burn's `Dropout::forward` does — only when the layer is in
/// training, the device records gradients, and `p > 0` — with a fast mask on the CPU backends.
///
/// # Example
/// ```
/// use burn::nn::DropoutConfig;
/// use burn::tensor::Tensor;
///
/// let device = engram_tensor::device(None).unwrap().autodiff();
/// let layer = DropoutConfig::new(0.5).init();
/// let x = Tensor::<2>::ones([4, 256], &device);
/// let y = engram_tensor::dropout(&layer, x);
/// // Every value is either dropped or scaled by 1 / (1 - 0.5).
/// let values = y.into_data().to_vec::<f32>().unwrap();
/// assert!(values.iter().all(|&v| v == 0.0 || v == 2.0));
/// ```
pub fn dropout<const D: usize>(layer: &Dropout, input: Tensor<D>) -> Tensor<D> {
    if !layer.training.is_enabled() || !input.device().is_autodiff() || layer.prob == 0.0 {
        return input;
    }
    dropout_with(input, layer.prob)
}

/// Zeroes each element of `input` with probability `prob` and scales the rest by
/// `1 / (1 - prob)`, whatever the device (the caller decides whether it is training): the mask
/// [`dropout`] uses, for code that has a probability rather than a layer.
///
/// # Panics
/// If `prob` is not in `[0, 1)`.
pub fn dropout_with<const D: usize>(input: Tensor<D>, prob: f64) -> Tensor<D> {
    assert!((0.0..1.0).contains(&prob), "dropout_with: probability {prob} is outside [0, 1)");
    if prob == 0.0 {
        return input;
    }
    let device = input.device();
    if !matches!(backend_of(&device), Some(Backend::Flex | Backend::NdArray)) {
        let keep = 1.0 - prob;
        let mask = input.random_like(Distribution::Bernoulli(keep));
        return (input * mask).div_scalar(keep);
    }
    let shape = input.shape();
    let mask = DropMask::draw(&device, prob).values(shape.num_elements());
    let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &device).cast(input.dtype());
    input * mask
}

/// A 64-bit seed from the device's generator: four 16-bit draws.
fn draw_seed(device: &Device) -> u64 {
    let draws = Tensor::<1, Int>::random([4], Distribution::Uniform(0.0, 65536.0), device);
    let draws = draws.into_data().convert::<i64>();
    let draws = draws.as_slice::<i64>().expect("dropout: the seed draws are i64 after convert");
    draws.iter().fold(0u64, |seed, &d| (seed << 16) | (d as u64 & 0xffff))
}

/// A dropout mask as a function of the element index, the one [`dropout_with`] draws: element
/// `i` is kept when its 32-bit draw (half of the SplitMix64 hash of `i / 2` under the mask's
/// seed) is below `(1 - prob) · 2³²`, and then scaled by `1 / (1 - prob)`.
///
/// Because an element's value depends only on the seed and its index, a kernel can regenerate
/// any part of the mask where it needs it (fused GELU and dropout, attention dropout inside
/// memory-efficient attention) instead of storing it for the backward pass, and the result is
/// the mask [`dropout_with`] would have applied to the whole tensor with the same seed.
///
/// # Example
/// ```
/// use engram_tensor::DropMask;
///
/// let mask = DropMask::new(7, 0.25);
/// let all = mask.values(10);
/// // Any stretch of the mask, from any index, is the same stretch of the whole.
/// let mut part = vec![1.0f32; 4];
/// mask.apply(3, &mut part);
/// assert_eq!(part, all[3..7]);
/// assert!(all.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropMask {
    seed: u64,
    threshold: u32,
    scale: f32,
}

impl DropMask {
    /// The mask of dropout probability `prob` under `seed`.
    ///
    /// # Panics
    /// If `prob` is not in `[0, 1)`.
    pub fn new(seed: u64, prob: f64) -> Self {
        assert!((0.0..1.0).contains(&prob), "DropMask: probability {prob} is outside [0, 1)");
        let keep = 1.0 - prob;
        let threshold = (keep * 4_294_967_296.0).round().min(4_294_967_295.0) as u32;
        Self { seed, threshold, scale: (1.0 / keep) as f32 }
    }

    /// A mask whose seed is drawn from `device`'s generator, so that
    /// [`Device::seed`](burn::tensor::Device) makes it reproducible.
    ///
    /// # Panics
    /// If `prob` is not in `[0, 1)`.
    pub fn draw(device: &Device, prob: f64) -> Self {
        Self::new(draw_seed(device), prob)
    }

    /// Multiplies `values`, the elements from index `start` on, by the mask.
    pub fn apply(&self, start: usize, values: &mut [f32]) {
        // An odd start takes the second half of its pair's hash.
        let values = match values.split_first_mut() {
            Some((first, rest)) if start % 2 == 1 => {
                let bits = splitmix64(self.seed, (start / 2) as u64);
                *first *= self.factor((bits >> 32) as u32);
                rest
            }
            _ => values,
        };
        let mut first_pair = start.div_ceil(2) as u64;
        #[cfg(target_arch = "x86_64")]
        let values = if values.len() >= 8 && std::arch::is_x86_feature_detected!("avx2") {
            let whole = values.len() / 8 * 8;
            let (vector, tail) = values.split_at_mut(whole);
            // SAFETY: AVX2 was detected at run time.
            unsafe { avx2::apply(self, first_pair, vector) };
            first_pair += (whole / 2) as u64;
            tail
        } else {
            values
        };
        for (pair, two) in values.chunks_mut(2).enumerate() {
            let bits = splitmix64(self.seed, first_pair + pair as u64);
            for (value, draw) in two.iter_mut().zip([bits as u32, (bits >> 32) as u32]) {
                *value *= self.factor(draw);
            }
        }
    }

    /// The first `n` elements of the mask, each `0` or `1 / (1 - prob)`, computed in parallel.
    pub fn values(&self, n: usize) -> Vec<f32> {
        let mut values = vec![1.0f32; n];
        values.par_chunks_mut(CHUNK).enumerate().for_each(|(chunk, values)| {
            self.apply(chunk * CHUNK, values);
        });
        values
    }

    /// `1 / keep` for a kept draw, `0` otherwise, selected with bit operations: a branch
    /// mispredicts on every dropped element (and the compiler turned a comparison cast to a
    /// float back into one).
    #[inline(always)]
    fn factor(&self, draw: u32) -> f32 {
        let kept = u32::from(draw < self.threshold).wrapping_neg();
        f32::from_bits(kept & self.scale.to_bits())
    }
}

/// [`DropMask::apply`] eight elements (four SplitMix64 hashes) at a time. AVX2 has no 64-bit
/// multiply, so each one is three 32-bit ones; the 64-bit lanes of the hashes, read as 32-bit
/// lanes, are the draws of consecutive elements in order (low half first).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{DropMask, GOLDEN, MIX1, MIX2};

    /// `a · b` modulo 2⁶⁴ in each 64-bit lane.
    #[inline(always)]
    unsafe fn mul64(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller runs with AVX2.
        unsafe {
            let low = _mm256_mul_epu32(a, b);
            let cross = _mm256_add_epi64(
                _mm256_mul_epu32(_mm256_srli_epi64(a, 32), b),
                _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)),
            );
            _mm256_add_epi64(low, _mm256_slli_epi64(cross, 32))
        }
    }

    /// Multiplies `values` (a multiple of 8 long), the elements of pairs `first_pair..` on.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn apply(mask: &DropMask, first_pair: u64, values: &mut [f32]) {
        debug_assert!(values.len().is_multiple_of(8));
        // SAFETY (the whole body): AVX2 is present; every load and store is one chunk of 8.
        unsafe {
            let at = |k: u64| (first_pair + k + 1).wrapping_mul(GOLDEN) as i64;
            let seed = _mm256_set1_epi64x(mask.seed as i64);
            // z = seed + (pair + 1) · GOLDEN for four consecutive pairs; each step adds 4 · GOLDEN.
            let mut z0 = _mm256_add_epi64(seed, _mm256_setr_epi64x(at(0), at(1), at(2), at(3)));
            let step = _mm256_set1_epi64x(GOLDEN.wrapping_mul(4) as i64);
            let (mix1, mix2) = (_mm256_set1_epi64x(MIX1 as i64), _mm256_set1_epi64x(MIX2 as i64));
            // Unsigned `draw < threshold` as a signed comparison with both sign bits flipped.
            let flip = _mm256_set1_epi32(i32::MIN);
            let threshold = _mm256_xor_si256(_mm256_set1_epi32(mask.threshold as i32), flip);
            let scale = _mm256_castps_si256(_mm256_set1_ps(mask.scale));
            for chunk in values.chunks_exact_mut(8) {
                let mut z = z0;
                z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), mix1);
                z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), mix2);
                z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
                let kept = _mm256_cmpgt_epi32(threshold, _mm256_xor_si256(z, flip));
                let factor = _mm256_castsi256_ps(_mm256_and_si256(kept, scale));
                let x = _mm256_loadu_ps(chunk.as_ptr());
                _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_mul_ps(x, factor));
                z0 = _mm256_add_epi64(z0, step);
            }
        }
    }
}

/// SplitMix64's increment and mixing multipliers.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
const MIX1: u64 = 0xbf58_476d_1ce4_e5b9;
const MIX2: u64 = 0x94d0_49bb_1331_11eb;

/// The `index`-th output of a SplitMix64 stream started at `seed` (Steele, Lea and Flood, 2014).
fn splitmix64(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(MIX1);
    z = (z ^ (z >> 27)).wrapping_mul(MIX2);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_device;
    use burn::nn::DropoutConfig;
    use burn::tensor::Tensor;

    #[test]
    fn masks_keep_the_asked_share_and_scale_it() {
        for keep in [0.9, 0.5, 0.1] {
            let n = 1 << 18;
            let mask = DropMask::new(42, 1.0 - keep).values(n);
            let kept = mask.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
            // Four standard deviations of a binomial share at this size.
            let tolerance = 4.0 * (keep * (1.0 - keep) / n as f64).sqrt();
            assert!((kept - keep).abs() < tolerance, "keep {keep}: kept {kept}");
            assert!(mask.iter().all(|&v| v == 0.0 || v == (1.0 / keep) as f32));
        }
    }

    #[test]
    fn masks_depend_on_index_not_chunking() {
        let n = 3 * CHUNK + 5;
        let mask = DropMask::new(7, 0.5).values(n);
        // An element's value is fixed by (seed, index): recompute a few outside any chunk logic.
        for i in [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 3, n - 1] {
            let bits = splitmix64(7, (i / 2) as u64);
            let draw = if i % 2 == 0 { bits as u32 } else { (bits >> 32) as u32 };
            assert_eq!(mask[i] != 0.0, draw < (0.5 * 4_294_967_296.0) as u32, "index {i}");
        }
        // Neighbouring elements are not correlated: adjacent pairs agree about half the time.
        let agree = mask.windows(2).filter(|w| (w[0] == 0.0) == (w[1] == 0.0)).count();
        let share = agree as f64 / (n - 1) as f64;
        assert!((share - 0.5).abs() < 0.01, "adjacent agreement {share}");
    }

    #[test]
    fn any_stretch_of_the_mask_is_that_stretch_of_the_whole() {
        let mask = DropMask::new(5, 0.5);
        let whole = mask.values(40);
        for (start, len) in [(0, 40), (1, 1), (3, 8), (6, 7), (39, 1), (11, 0)] {
            let mut part = vec![1.0f32; len];
            mask.apply(start, &mut part);
            assert_eq!(part, whole[start..start + len], "start {start}, len {len}");
        }
    }

    /// Every element of stretches long enough for the vector loop, from odd and even starts,
    /// against SplitMix64 computed here, with seeds whose additions wrap.
    #[test]
    fn every_element_is_its_splitmix_draw() {
        for (seed, prob) in [(3, 0.1), (u64::MAX - 5, 0.5), (1 << 63, 0.9)] {
            let mask = DropMask::new(seed, prob);
            let threshold = ((1.0 - prob) * 4_294_967_296.0).round() as u64;
            for (start, len) in [(0, 64), (1, 37), (18, 9), (u32::MAX as usize * 3, 21)] {
                let mut part = vec![2.0f32; len];
                mask.apply(start, &mut part);
                for (k, &v) in part.iter().enumerate() {
                    let i = start + k;
                    let bits = splitmix64(seed, (i / 2) as u64);
                    let draw = if i % 2 == 0 { bits & 0xffff_ffff } else { bits >> 32 };
                    let want =
                        if draw < threshold { 2.0 * (1.0 / (1.0 - prob)) as f32 } else { 0.0 };
                    assert_eq!(v, want, "seed {seed}, element {i}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "DropMask: probability 1 is outside [0, 1)")]
    fn masks_refuse_a_probability_of_one() {
        DropMask::new(0, 1.0);
    }

    #[test]
    fn seeding_the_device_reproduces_the_mask_and_calls_differ() {
        let device = test_device().autodiff();
        let layer = DropoutConfig::new(0.3).init();
        let x = || Tensor::<2>::ones([8, 64], &device);
        device.seed(3);
        let a = dropout(&layer, x()).into_data();
        let b = dropout(&layer, x()).into_data();
        device.seed(3);
        let c = dropout(&layer, x()).into_data();
        assert_eq!(a, c);
        assert_ne!(a, b);
    }

    #[test]
    fn gradient_is_the_mask_and_inference_is_identity() {
        let device = test_device().autodiff();
        let layer = DropoutConfig::new(0.25).init();
        let x = Tensor::<1>::ones([1000], &device).require_grad();
        let y = dropout(&layer, x.clone());
        let grad = x.grad(&y.clone().sum().backward()).unwrap();
        assert_eq!(grad.into_data(), y.inner().into_data());

        let plain = Tensor::<1>::ones([10], &test_device());
        assert_eq!(dropout(&layer, plain.clone()).into_data(), plain.into_data());
        let off = DropoutConfig::new(0.0).init();
        let x = Tensor::<1>::ones([10], &device);
        assert_eq!(dropout(&off, x.clone()).into_data(), x.into_data());
    }
}
