//! Batches of token ids: length bucketing, `[CLS]` first, truncation and right padding.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::seq::SliceRandom;

/// One tokenised example: token ids (without `[CLS]`) and the class id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Class id.
    pub label: usize,
}

/// A batch on a device.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[batch, seq]` token ids, `[CLS]` first, right-padded with the pad id.
    pub tokens: Tensor<2, Int>,
    /// `[batch, seq]`, `true` at padding.
    pub padding: Tensor<2, Bool>,
    /// `[batch]` class ids.
    pub labels: Tensor<1, Int>,
    /// The class ids on the host, for metrics.
    pub label_ids: Vec<usize>,
}

/// How samples become batches.
#[derive(Clone, Copy, Debug)]
pub struct Batcher {
    /// Samples per batch.
    pub batch_size: usize,
    /// Longest sequence, `[CLS]` included; longer samples are truncated.
    pub max_len: usize,
    /// Id of `[CLS]`.
    pub cls_id: u32,
    /// Id of `[PAD]`.
    pub pad_id: u32,
}

impl Batcher {
    /// The order of a training epoch: samples of similar length share a batch (less padding),
    /// and both the pools and the batches are shuffled. Pools of 50 batches keep the epoch
    /// random while sorting within each pool.
    ///
    /// # Panics
    /// If `batch_size == 0`.
    pub fn bucketed<R: Rng>(&self, samples: &[Sample], rng: &mut R) -> Vec<Vec<usize>> {
        assert!(self.batch_size > 0, "Batcher::bucketed: batch_size must be positive");
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.shuffle(rng);
        let pool = self.batch_size * 50;
        let mut batches = Vec::with_capacity(samples.len().div_ceil(self.batch_size));
        for chunk in order.chunks_mut(pool) {
            chunk.sort_by_key(|&i| samples[i].ids.len());
            batches.extend(chunk.chunks(self.batch_size).map(<[usize]>::to_vec));
        }
        batches.shuffle(rng);
        batches
    }

    /// Batches in the samples' own order (evaluation).
    ///
    /// # Panics
    /// If `batch_size == 0`.
    pub fn sequential(&self, n_samples: usize) -> Vec<Vec<usize>> {
        assert!(self.batch_size > 0, "Batcher::sequential: batch_size must be positive");
        (0..n_samples).collect::<Vec<_>>().chunks(self.batch_size).map(<[usize]>::to_vec).collect()
    }

    /// The batch of `samples[indices]` on `device`.
    ///
    /// # Panics
    /// If `indices` is empty or `max_len < 1`.
    pub fn batch(&self, samples: &[Sample], indices: &[usize], device: &Device) -> Batch {
        assert!(!indices.is_empty(), "Batcher::batch: no samples");
        assert!(self.max_len >= 1, "Batcher::batch: max_len must be at least 1");
        let rows: Vec<&[u32]> = indices
            .iter()
            .map(|&i| {
                let ids = &samples[i].ids;
                &ids[..ids.len().min(self.max_len - 1)]
            })
            .collect();
        let seq = 1 + rows.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut tokens = Vec::with_capacity(rows.len() * seq);
        let mut padding = Vec::with_capacity(rows.len() * seq);
        for ids in &rows {
            tokens.push(self.cls_id as i64);
            tokens.extend(ids.iter().map(|&id| id as i64));
            tokens.extend(std::iter::repeat_n(self.pad_id as i64, seq - 1 - ids.len()));
            padding.extend((0..seq).map(|position| position > ids.len()));
        }
        let label_ids: Vec<usize> = indices.iter().map(|&i| samples[i].label).collect();
        let labels: Vec<i64> = label_ids.iter().map(|&label| label as i64).collect();
        let batch = rows.len();
        Batch {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch, seq]), device),
            padding: Tensor::from_data(TensorData::new(padding, [batch, seq]), device),
            labels: Tensor::from_data(TensorData::new(labels, [batch]), device),
            label_ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engram_tensor::testing::{test_device, to_bools};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn samples(lengths: &[usize]) -> Vec<Sample> {
        lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| Sample { ids: (10..10 + n as u32).collect(), label: i % 2 })
            .collect()
    }

    #[test]
    fn batch_puts_cls_first_pads_right_and_truncates() {
        let device = test_device();
        let batcher = Batcher { batch_size: 4, max_len: 4, cls_id: 2, pad_id: 0 };
        let data = samples(&[1, 5, 0]);
        let batch = batcher.batch(&data, &[0, 1, 2], &device);
        let tokens: Vec<i64> =
            batch.tokens.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(tokens, [2, 10, 0, 0, 2, 10, 11, 12, 2, 0, 0, 0]);
        let padding = to_bools(batch.padding);
        let expected =
            [false, false, true, true, false, false, false, false, false, true, true, true];
        assert_eq!(padding, expected);
        assert_eq!(batch.label_ids, [0, 1, 0]);
    }

    #[test]
    fn bucketed_covers_every_sample_once_and_groups_lengths() {
        let batcher = Batcher { batch_size: 3, max_len: 64, cls_id: 2, pad_id: 0 };
        let data = samples(&[9, 1, 5, 1, 9, 5, 5, 1, 9]);
        let batches = batcher.bucketed(&data, &mut StdRng::seed_from_u64(3));
        let mut seen: Vec<usize> = batches.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<_>>());
        // One pool, sorted by length: each batch holds three samples of one length.
        for batch in &batches {
            let lengths: Vec<usize> = batch.iter().map(|&i| data[i].ids.len()).collect();
            assert!(lengths.iter().all(|&n| n == lengths[0]), "batch lengths {lengths:?}");
        }
    }

    #[test]
    #[should_panic(expected = "Batcher::batch: no samples")]
    fn empty_batch_panics() {
        let batcher = Batcher { batch_size: 3, max_len: 8, cls_id: 2, pad_id: 0 };
        batcher.batch(&samples(&[1]), &[], &test_device());
    }
}
