//! ALiBi: attention with linear biases (Press et al., 2022).

use burn::tensor::{Device, Tensor, TensorData};

/// The per-head slopes of ALiBi ("Train Short, Test Long", Press et al., 2022): for a power of
/// two `n`, the geometric sequence starting at and with ratio `2^(-8/n)`; otherwise the slopes
/// of the largest power of two below `n`, followed by every other slope of twice that power
/// (the paper's reference code, `get_slopes`).
///
/// # Panics
/// If `n_heads` is 0.
pub fn alibi_slopes(n_heads: usize) -> Vec<f64> {
    assert!(n_heads > 0, "alibi_slopes: n_heads must be positive, got 0");
    fn power_of_two(n: usize) -> Vec<f64> {
        let start = 2f64.powf(-8.0 / n as f64);
        (0..n).map(|i| start.powi(i as i32 + 1)).collect()
    }
    if n_heads.is_power_of_two() {
        return power_of_two(n_heads);
    }
    let closest = 1usize << n_heads.ilog2();
    let mut slopes = power_of_two(closest);
    slopes.extend(alibi_slopes(2 * closest).into_iter().step_by(2).take(n_heads - closest));
    slopes
}

/// The ALiBi bias `-slope_h · |p_query - p_key|` for queries at positions
/// `query_offset .. query_offset + tq` and keys at `0 .. tk`; pass it as the `bias` of
/// [`attention`](crate::attention). With a causal mask only past keys count, where this is the
/// paper's `slope · (j - i)`; without one it is the symmetric variant.
///
/// # Shapes
/// - output: `[1, n_heads, tq, tk]` (broadcasts over the batch).
///
/// # Panics
/// If `n_heads` is 0.
pub fn alibi_bias(
    n_heads: usize,
    tq: usize,
    tk: usize,
    query_offset: usize,
    device: &Device,
) -> Tensor<4> {
    let slopes = alibi_slopes(n_heads);
    let values: Vec<f64> = slopes
        .iter()
        .flat_map(|&slope| {
            (0..tq).flat_map(move |i| {
                (0..tk).map(move |j| -slope * ((query_offset + i) as f64 - j as f64).abs())
            })
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, n_heads, tq, tk]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engram_tensor::testing::{Tolerance, assert_close, test_device};

    #[test]
    fn slopes_match_the_papers_code() {
        // get_slopes(8) and get_slopes(6) from the ALiBi repository (attention_with_linear_biases):
        // >>> get_slopes(8)  -> [0.5, 0.25, ..., 0.00390625]
        // >>> get_slopes(6)  -> [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]
        let eight: Vec<f64> = (1..=8).map(|i| 0.5f64.powi(i)).collect();
        assert_eq!(alibi_slopes(8), eight);
        let six = alibi_slopes(6);
        let expected = [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125];
        assert!(six.iter().zip(expected).all(|(a, e)| (a - e).abs() < 1e-15), "{six:?}");
        assert_eq!(alibi_slopes(1), vec![2f64.powf(-8.0)]);
    }

    #[test]
    fn bias_is_linear_in_distance() {
        let bias = alibi_bias(2, 2, 3, 1, &test_device());
        assert_eq!(bias.dims(), [1, 2, 2, 3]);
        // Head 0 slope 1/16, head 1 slope 1/256; queries at 1 and 2.
        let mut expected = Vec::new();
        for slope in [1.0 / 16.0, 1.0 / 256.0] {
            for q in [1.0, 2.0] {
                for k in [0.0, 1.0, 2.0] {
                    expected.push(-slope * f64::abs(q - k));
                }
            }
        }
        assert_close(bias, &expected, Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "alibi_slopes: n_heads must be positive, got 0")]
    fn panics_without_heads() {
        alibi_slopes(0);
    }
}
