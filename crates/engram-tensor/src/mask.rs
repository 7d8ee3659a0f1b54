//! Boolean masks in burn's convention: `true` marks an entry to leave out.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// Padding mask for right-padded sequences: `mask[b, t]` is `true` where `t >= lengths[b]`.
///
/// # Shapes
/// - output: `[lengths.len(), max_len]`.
///
/// # Panics
/// If a length exceeds `max_len`.
///
/// # Example
/// ```
/// let device = engram_tensor::device(None).unwrap();
/// let mask = engram_tensor::padding_mask(&[2, 3], 3, &device);
/// let values = engram_tensor::testing::to_bools(mask);
/// assert_eq!(values, [false, false, true, false, false, false]);
/// ```
pub fn padding_mask(lengths: &[usize], max_len: usize, device: &Device) -> Tensor<2, Bool> {
    if let Some(&too_long) = lengths.iter().find(|&&l| l > max_len) {
        panic!("padding_mask: length {too_long} exceeds max_len {max_len}");
    }
    let values: Vec<bool> =
        lengths.iter().flat_map(|&len| (0..max_len).map(move |t| t >= len)).collect();
    Tensor::from_data(TensorData::new(values, [lengths.len(), max_len]), device)
}

/// Lengths of right-padded sequences from a padding mask: the number of `false` entries per row.
///
/// # Shapes
/// - `mask`: `[batch, seq]`; output: `[batch]`.
pub fn lengths_from_mask(mask: Tensor<2, Bool>) -> Tensor<1, Int> {
    mask.bool_not().int().sum_dim(1).squeeze_dim(1)
}

/// Causal mask: `mask[i, j]` is `true` where key `j` lies in the future of query `i` (`j > i`).
///
/// # Shapes
/// - output: `[seq, seq]`.
pub fn causal_mask(seq: usize, device: &Device) -> Tensor<2, Bool> {
    // burn's `tril_mask` is `false` on and below the diagonal, so `true` strictly above it.
    Tensor::<2, Bool>::tril_mask([seq, seq], 0, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_device, to_bools};

    #[test]
    fn padding_mask_and_lengths_round_trip() {
        let device = test_device();
        let mask = padding_mask(&[3, 1, 0, 4], 4, &device);
        let lengths = lengths_from_mask(mask).into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(lengths, [3, 1, 0, 4]);
    }

    #[test]
    fn causal_mask_hides_the_future() {
        let values = to_bools(causal_mask(3, &test_device()));
        assert_eq!(values, [false, true, true, false, false, true, false, false, false]);
    }

    #[test]
    #[should_panic(expected = "padding_mask: length 5 exceeds max_len 4")]
    fn padding_mask_rejects_long_sequences() {
        let _ = padding_mask(&[5], 4, &test_device());
    }
}
