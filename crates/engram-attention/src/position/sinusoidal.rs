//! Sinusoidal absolute positional encoding (Vaswani et al., 2017, section 3.5).

use burn::tensor::{Device, Tensor, TensorData};

/// The sinusoidal encoding of positions `offset .. offset + seq`:
/// `pe[p, 2i] = sin(p / 10000^(2i / d_model))`, `pe[p, 2i + 1] = cos(p / 10000^(2i / d_model))`
/// ("Attention Is All You Need", Vaswani et al., 2017). Add it to embeddings `[batch, seq,
/// d_model]`; it broadcasts over the batch. `offset` continues a sequence while decoding.
///
/// # Shapes
/// - output: `[seq, d_model]`.
///
/// # Panics
/// If `d_model` is 0.
pub fn sinusoidal_encoding(
    seq: usize,
    d_model: usize,
    offset: usize,
    device: &Device,
) -> Tensor<2> {
    assert!(d_model > 0, "sinusoidal_encoding: d_model must be positive, got 0");
    // Computed on the host in f64: positions times frequencies lose precision in f32 for long
    // sequences, and the table is small.
    let values: Vec<f64> = (offset..offset + seq)
        .flat_map(|p| {
            (0..d_model).map(move |k| {
                let pair = (k / 2 * 2) as f64;
                let angle = p as f64 / 10000f64.powf(pair / d_model as f64);
                if k % 2 == 0 { angle.sin() } else { angle.cos() }
            })
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [seq, d_model]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engram_tensor::testing::{Tolerance, assert_close, test_device};

    #[test]
    fn matches_hand_values_and_continues_with_offset() {
        let device = test_device();
        // d_model 4: frequencies 1 and 1/100.
        let pe = sinusoidal_encoding(3, 4, 0, &device);
        assert_eq!(pe.dims(), [3, 4]);
        let expected: Vec<f64> = (0..3)
            .flat_map(|p| {
                let p = p as f64;
                [p.sin(), p.cos(), (p / 100.0).sin(), (p / 100.0).cos()]
            })
            .collect();
        assert_close(pe.clone(), &expected, Tolerance::F32);
        let tail = sinusoidal_encoding(2, 4, 1, &device);
        assert_close(tail, &expected[4..], Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "sinusoidal_encoding: d_model must be positive, got 0")]
    fn panics_on_zero_width() {
        sinusoidal_encoding(3, 0, 0, &test_device());
    }
}
