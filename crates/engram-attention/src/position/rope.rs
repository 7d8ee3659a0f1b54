//! Rotary position embedding (RoPE, Su et al., 2021).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};

/// Configuration of a [`RotaryEncoding`].
#[derive(Config, Debug)]
pub struct RotaryEncodingConfig {
    /// Width of each head, `d_head`; must be even.
    pub d_head: usize,
    /// Base of the frequencies. Default: 10000.
    #[config(default = 10000.0)]
    pub theta: f64,
}

/// Rotary position embedding ("RoFormer", Su et al., 2021): rotates each pair of features
/// `(x_i, x_{i + d/2})` of a query or key at position `p` by the angle `p · theta^(-2i/d)`, so
/// that `<rope(q, m), rope(k, n)>` depends on `m - n` only. Pairs are the two halves of the head
/// (GPT-NeoX and Hugging Face LLaMA layout), not adjacent features.
///
/// Unlike burn-nn's `RotaryEncoding` it takes positions per sequence (`[batch, t]`), which a
/// batch of cached sequences of different lengths needs, and keeps no table: angles are computed
/// from the positions, so there is no maximum length.
#[derive(Module, Debug)]
pub struct RotaryEncoding {
    /// Width of each head.
    pub d_head: usize,
    /// Base of the frequencies.
    pub theta: f64,
}

impl RotaryEncodingConfig {
    /// Creates the encoding.
    ///
    /// # Panics
    /// If `d_head` is odd or 0, or `theta <= 1`.
    pub fn init(&self) -> RotaryEncoding {
        assert!(
            self.d_head > 0 && self.d_head.is_multiple_of(2),
            "RotaryEncoding: d_head {} must be even and positive",
            self.d_head
        );
        assert!(self.theta > 1.0, "RotaryEncoding: theta {} must exceed 1", self.theta);
        RotaryEncoding { d_head: self.d_head, theta: self.theta }
    }
}

impl RotaryEncoding {
    /// Rotates `x` with per-sequence positions.
    ///
    /// # Shapes
    /// - `x`: `[batch, n_heads, t, d_head]`; `positions`: `[batch, t]`; output: as `x`.
    ///
    /// # Panics
    /// If the last dim of `x` is not `d_head` or `positions` is not `[batch, t]`.
    pub fn forward(&self, x: Tensor<4>, positions: Tensor<2, Int>) -> Tensor<4> {
        let [batch, _, t, d_head] = x.dims();
        assert_eq!(
            d_head, self.d_head,
            "RotaryEncoding: input width {d_head} is not d_head {}",
            self.d_head
        );
        assert_eq!(
            positions.dims(),
            [batch, t],
            "RotaryEncoding: positions shape {:?} are not [batch {batch}, t {t}]",
            positions.dims()
        );
        let half = d_head / 2;
        let device = x.device();
        let inverse: Vec<f64> =
            (0..half).map(|i| self.theta.powf(-2.0 * i as f64 / d_head as f64)).collect();
        let inverse =
            Tensor::<1>::from_data(TensorData::new(inverse, [half]), (&device, x.dtype()))
                .reshape([1, 1, 1, half]);
        let angles = positions.float().cast(x.dtype()).reshape([batch, 1, t, 1]) * inverse;
        let (cos, sin) = (angles.clone().cos(), angles.sin());
        let first = x.clone().narrow(3, 0, half);
        let second = x.narrow(3, half, half);
        Tensor::cat(
            vec![
                first.clone() * cos.clone() - second.clone() * sin.clone(),
                second * cos + first * sin,
            ],
            3,
        )
    }

    /// Rotates `x` whose sequences all start at position `offset` (a prompt, or a decoding step
    /// after `offset` positions).
    ///
    /// # Shapes
    /// - `x`: `[batch, n_heads, t, d_head]`; output: as `x`.
    ///
    /// # Panics
    /// If the last dim of `x` is not `d_head`.
    pub fn forward_from(&self, x: Tensor<4>, offset: usize) -> Tensor<4> {
        let [batch, _, t, _] = x.dims();
        let positions = Tensor::<1, Int>::arange(offset as i64..(offset + t) as i64, &x.device())
            .reshape([1, t])
            .expand([batch, t]);
        self.forward(x, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::tensor4;
    use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

    fn rope() -> RotaryEncoding {
        RotaryEncodingConfig::new(4).init()
    }

    #[test]
    fn rotates_by_hand_computed_angles() {
        // d_head 4: frequencies 1 and 1/100; position 2.
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0, 3.0, 4.0]]]], &test_device());
        let out = rope().forward_from(x, 2);
        let (a, b) = (2.0f64, 0.02f64);
        let expected = [
            a.cos() - 3.0 * a.sin(),
            2.0 * b.cos() - 4.0 * b.sin(),
            3.0 * a.cos() + a.sin(),
            4.0 * b.cos() + 2.0 * b.sin(),
        ];
        assert_close(out, &expected, Tolerance::F32);
    }

    #[test]
    fn dot_products_depend_on_relative_position_only() {
        let (q, _) = tensor4(11, [1, 1, 1, 4]);
        let (k, _) = tensor4(12, [1, 1, 1, 4]);
        let dot = |m: usize, n: usize| {
            let q = rope().forward_from(q.clone(), m);
            let k = rope().forward_from(k.clone(), n);
            to_f64((q * k).sum())[0]
        };
        for (m, n) in [(3, 1), (7, 5), (102, 100)] {
            assert!((dot(m, n) - dot(2, 0)).abs() < 1e-4, "m {m} n {n}");
        }
        assert!((dot(5, 1) - dot(2, 0)).abs() > 1e-3, "a different offset must differ");
    }

    #[test]
    fn per_row_positions_match_offsets() {
        let device = test_device();
        let (x, _) = tensor4(13, [2, 2, 3, 4]);
        let positions = Tensor::<2, Int>::from_data([[0, 1, 2], [5, 6, 7]], &device);
        let out = rope().forward(x.clone(), positions);
        let row1 = rope().forward_from(x.narrow(0, 1, 1), 5);
        assert_close(out.narrow(0, 1, 1), &to_f64(row1), Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "RotaryEncoding: d_head 3 must be even and positive")]
    fn panics_on_odd_width() {
        RotaryEncodingConfig::new(3).init();
    }

    #[test]
    #[should_panic(expected = "RotaryEncoding: theta 1 must exceed 1")]
    fn panics_on_small_theta() {
        RotaryEncodingConfig::new(4).with_theta(1.0).init();
    }

    #[test]
    #[should_panic(expected = "RotaryEncoding: input width 6 is not d_head 4")]
    fn panics_on_wrong_width() {
        let (x, _) = tensor4(1, [1, 1, 2, 6]);
        rope().forward_from(x, 0);
    }

    #[test]
    #[should_panic(expected = "RotaryEncoding: positions shape [1, 2] are not [batch 2, t 2]")]
    fn panics_on_wrong_positions() {
        let (x, _) = tensor4(1, [2, 1, 2, 4]);
        rope().forward(x, Tensor::<2, Int>::zeros([1, 2], &test_device()));
    }
}
