//! Attention of a decoding step on flex: one query per row and head over the live slots of a
//! [`KvCache`](super::KvCache)'s buffers, read in place.
//!
//! burn's fused attention op takes contiguous keys and values, so it is given the whole
//! preallocated buffer (a view of the live slots would be copied) and attends over `capacity`
//! slots, up to twice the live ones, with every slot past them masked. At one query per row the
//! op is a stream of the keys and values, so that waste is most of its cost: at batch 16 and
//! 272 positions the cache holds as many bytes as the model's weights. This kernel reads only
//! the live slots, skips masked ones, and needs no query reshapes or mask expansions.

use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Bool, DType, Device, Tensor};

/// One query per row and head over the cache's buffers. (This module is compiled with the
/// `flex` feature only.)
#[backend_extension(Flex)]
pub trait StepAttentionBackend: Backend {
    /// `softmax(q·kᵀ·scale, masked)·v` for `q` `[b, h, 1, d]` and keys/values
    /// `[b, h_kv, capacity, d]`, over slots `0..live`; `hidden` is `[b, capacity]`, `true` at
    /// slots a row's query must not see. A query that sees no slot gives zeros.
    fn step_attention(
        q: FloatTensor<Self>,
        keys: FloatTensor<Self>,
        values: FloatTensor<Self>,
        hidden: BoolTensor<Self>,
        live: usize,
        scale: f64,
    ) -> FloatTensor<Self>;
}

impl StepAttentionBackend for burn::backend::Flex {
    fn step_attention(
        q: FloatTensor<Self>,
        keys: FloatTensor<Self>,
        values: FloatTensor<Self>,
        hidden: BoolTensor<Self>,
        live: usize,
        scale: f64,
    ) -> FloatTensor<Self> {
        use burn::backend::flex::{FlexTensor, Layout};
        use burn::tensor::Shape;

        let shape = |t: &FlexTensor| -> [usize; 4] {
            let s = t.layout().shape();
            [s[0], s[1], s[2], s[3]]
        };
        let [batch, heads, _, width] = shape(&q);
        let [_, kv_heads, capacity, _] = shape(&keys);
        let (q, keys, values, hidden) = (
            q.to_contiguous(),
            keys.to_contiguous(),
            values.to_contiguous(),
            hidden.to_contiguous(),
        );
        let dims = Dims { batch, heads, kv_heads, capacity, width, live, scale: scale as f32 };
        // Booleans are bytes in flex; `as_slice` only hands out the tensor's own dtype.
        let (start, end) = hidden.layout().contiguous_offsets().expect("a contiguous mask");
        let out = kernel::attend(
            q.as_slice::<f32>().expect("step_attention: f32 queries"),
            keys.as_slice::<f32>().expect("step_attention: f32 keys"),
            values.as_slice::<f32>().expect("step_attention: f32 values"),
            &hidden.storage::<u8>()[start..end],
            dims,
        );
        FlexTensor::new(
            burn::tensor::Bytes::from_elems(out),
            Layout::contiguous(Shape::new([batch, heads, 1, width])),
            DType::F32,
        )
    }
}

/// Sizes of a step.
#[derive(Clone, Copy, Debug)]
struct Dims {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    capacity: usize,
    width: usize,
    live: usize,
    scale: f32,
}

/// Whether [`step_attention`] runs on `device` for this dtype: the plain flex device in f32.
pub(crate) fn supported(device: &Device, dtype: DType) -> bool {
    dtype == DType::F32
        && !device.is_autodiff()
        && engram_tensor::backend_of(device) == Some(engram_tensor::Backend::Flex)
}

/// One query per row and head, `[b, h, 1, d]`, over slots `0..live` of `[b, h_kv, capacity, d]`
/// keys and values, with `hidden` `[b, capacity]`.
///
/// # Panics
/// If the shapes disagree, `live` exceeds the capacity, or (through the extension) the device is
/// not one [`supported`] accepts.
pub(crate) fn step_attention(
    q: Tensor<4>,
    keys: Tensor<4>,
    values: Tensor<4>,
    hidden: Tensor<2, Bool>,
    live: usize,
    scale: f64,
) -> Tensor<4> {
    let [batch, heads, s, width] = q.dims();
    let [kb, kv_heads, capacity, kw] = keys.dims();
    assert!(
        s == 1
            && kb == batch
            && kw == width
            && values.dims() == keys.dims()
            && kv_heads > 0
            && heads.is_multiple_of(kv_heads)
            && hidden.dims() == [batch, capacity]
            && live <= capacity,
        "step_attention: query {:?}, keys {:?}, values {:?}, mask {:?} and {live} live slots do not fit",
        q.dims(),
        keys.dims(),
        values.dims(),
        hidden.dims()
    );
    Tensor::from_dispatch(<Dispatch as StepAttentionBackend>::step_attention(
        q.into_dispatch(),
        keys.into_dispatch(),
        values.into_dispatch(),
        hidden.into_dispatch(),
        live,
        scale,
    ))
}

mod kernel {
    use super::Dims;

    /// Below this many multiply-adds (`b·h·live·d`) one thread attends for every head.
    const PARALLEL_MIN: usize = 1 << 16;

    /// The attention of every row and head; returns `[b, h, 1, d]`.
    pub(super) fn attend(q: &[f32], k: &[f32], v: &[f32], hidden: &[u8], d: Dims) -> Vec<f32> {
        let mut out = vec![0.0f32; d.batch * d.heads * d.width];
        let pair = |(i, out): (usize, &mut [f32])| {
            let mut scores = Vec::with_capacity(d.live);
            // The AVX2 copy where the CPU has it.
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA.
                    unsafe { head_avx2(q, k, v, hidden, d, i, out, &mut scores) };
                    return;
                }
            }
            head(q, k, v, hidden, d, i, out, &mut scores);
        };
        if d.batch * d.heads * d.live * d.width >= PARALLEL_MIN && d.batch * d.heads > 1 {
            use rayon::prelude::*;
            out.par_chunks_exact_mut(d.width).enumerate().for_each(pair);
        } else {
            out.chunks_exact_mut(d.width).enumerate().for_each(pair);
        }
        out
    }

    /// [`head`] compiled for AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn head_avx2(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        hidden: &[u8],
        d: Dims,
        pair: usize,
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        head(q, k, v, hidden, d, pair, out, scores);
    }

    /// Query `pair` (`b · heads + h`) against its key/value head.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn head(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        hidden: &[u8],
        d: Dims,
        pair: usize,
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let (b, h) = (pair / d.heads, pair % d.heads);
        let kv = h / (d.heads / d.kv_heads);
        let query = &q[pair * d.width..][..d.width];
        let base = (b * d.kv_heads + kv) * d.capacity * d.width;
        let mask = &hidden[b * d.capacity..][..d.live];
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        for (j, &hide) in mask.iter().enumerate() {
            let s = if hide != 0 {
                f32::NEG_INFINITY
            } else {
                dot(query, &k[base + j * d.width..][..d.width]) * d.scale
            };
            max = max.max(s);
            scores.push(s);
        }
        if max == f32::NEG_INFINITY {
            return; // No visible key: zeros.
        }
        let mut sum = 0.0;
        for (j, s) in scores.iter().enumerate() {
            if *s == f32::NEG_INFINITY {
                continue;
            }
            let p = (s - max).exp();
            sum += p;
            for (o, x) in out.iter_mut().zip(&v[base + j * d.width..][..d.width]) {
                *o += p * x;
            }
        }
        out.iter_mut().for_each(|o| *o /= sum);
    }

    /// `Σ a_i b_i` with eight partial sums, so that the loop vectorises.
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in ac.zip(bc) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        acc.iter().sum::<f32>() + tail
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;
    use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

    use super::*;
    use crate::sdpa::{AttentionMask, AttentionOptions, attention};
    use crate::test_util::tensor4;

    #[test]
    fn matches_masked_attention_over_the_live_slots() {
        let device = test_device();
        if !supported(&device, DType::F32) {
            return;
        }
        // 3 rows, 4 query heads over 2 key/value heads, 9 slots of which 7 are live.
        let (q, _) = tensor4(1, [3, 4, 1, 8]);
        let (k, _) = tensor4(2, [3, 2, 9, 8]);
        let (v, _) = tensor4(3, [3, 2, 9, 8]);
        let mut hidden = vec![false; 3 * 9];
        for (i, h) in hidden.iter_mut().enumerate() {
            *h = i % 9 >= 7 || i % 5 == 0;
        }
        // Row 2 sees nothing.
        hidden[18..27].iter_mut().for_each(|h| *h = true);
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(hidden, [3, 9]), &device);
        let want = attention(
            q.clone(),
            k.clone(),
            v.clone(),
            &AttentionMask::none().with_key_padding(mask.clone()),
            None,
            AttentionOptions::default(),
        )
        .output;
        let got = step_attention(q, k, v, mask, 7, 1.0 / 8f64.sqrt());
        assert_close(got, &to_f64(want), Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "step_attention: query [1, 2, 2, 4]")]
    fn panics_on_more_than_one_query() {
        let device = test_device();
        let (q, _) = tensor4(1, [1, 2, 2, 4]);
        let (k, _) = tensor4(2, [1, 2, 3, 4]);
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 3], [1, 3]), &device);
        step_attention(q, k.clone(), k, mask, 3, 0.5);
    }
}
