//! Learned absolute positional embeddings (as in BERT and GPT-2).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};

/// Configuration of a [`LearnedPositionalEncoding`].
#[derive(Config, Debug)]
pub struct LearnedPositionalEncodingConfig {
    /// Number of positions that have an embedding.
    pub max_len: usize,
    /// Width of each embedding.
    pub d_model: usize,
    /// Initialiser of the table. Default: normal with standard deviation 0.02 (GPT-2).
    #[config(default = "Initializer::Normal { mean: 0.0, std: 0.02 }")]
    pub initializer: Initializer,
}

/// A learned embedding per absolute position, added to the input (Devlin et al., 2019; Radford
/// et al., 2019).
#[derive(Module, Debug)]
pub struct LearnedPositionalEncoding {
    /// `[max_len, d_model]` table.
    pub table: Param<Tensor<2>>,
}

impl LearnedPositionalEncodingConfig {
    /// Creates the table on `device`.
    pub fn init(&self, device: &Device) -> LearnedPositionalEncoding {
        let table = self.initializer.init_with(
            [self.max_len, self.d_model],
            Some(self.d_model),
            Some(self.d_model),
            device,
        );
        LearnedPositionalEncoding { table }
    }
}

impl LearnedPositionalEncoding {
    /// Adds the embeddings of positions `offset .. offset + seq` to `x`.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`; output: the same.
    ///
    /// # Panics
    /// If the width of `x` is not `d_model` or `offset + seq` exceeds `max_len`.
    pub fn forward(&self, x: Tensor<3>, offset: usize) -> Tensor<3> {
        let [_, seq, d_model] = x.dims();
        let [max_len, width] = self.table.dims();
        assert_eq!(
            d_model, width,
            "LearnedPositionalEncoding: input width {d_model} is not d_model {width}"
        );
        assert!(
            offset + seq <= max_len,
            "LearnedPositionalEncoding: positions up to {} exceed max_len {max_len}",
            offset + seq
        );
        x + self.table.val().narrow(0, offset, seq).unsqueeze_dim(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

    fn encoding() -> LearnedPositionalEncoding {
        LearnedPositionalEncodingConfig::new(5, 3).init(&test_device())
    }

    #[test]
    fn adds_the_rows_of_its_positions() {
        let pe = encoding();
        let table = to_f64(pe.table.val());
        let x = Tensor::<3>::zeros([2, 2, 3], &test_device());
        let out = pe.forward(x, 3);
        assert_eq!(out.dims(), [2, 2, 3]);
        let row: Vec<f64> = table[9..15].to_vec();
        let expected: Vec<f64> = row.iter().chain(&row).copied().collect();
        assert_close(out, &expected, Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "LearnedPositionalEncoding: positions up to 6 exceed max_len 5")]
    fn panics_past_max_len() {
        encoding().forward(Tensor::<3>::zeros([1, 2, 3], &test_device()), 4);
    }

    #[test]
    #[should_panic(expected = "LearnedPositionalEncoding: input width 4 is not d_model 3")]
    fn panics_on_wrong_width() {
        encoding().forward(Tensor::<3>::zeros([1, 2, 4], &test_device()), 0);
    }
}
