//! Loading PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU` weights from a `.safetensors` state_dict.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::cell::RecurrentCell;
use super::{BiRecurrent, Recurrent, RecurrentConfig};
use crate::Error;

/// The parameter names of one layer and direction in PyTorch's state_dict.
const NAMES: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

impl RecurrentConfig {
    /// Loads a unidirectional stack from the state_dict of a PyTorch `nn.RNN`, `nn.LSTM` or
    /// `nn.GRU` saved as safetensors (`safetensors.torch.save_file(m.state_dict(), path)`).
    ///
    /// The configuration must describe the PyTorch module: `kind` (with `nonlinearity` for an
    /// RNN, which the weights cannot tell), `d_input` (`input_size`), `d_hidden`
    /// (`hidden_size`) and `n_layers` (`num_layers`); `batch_first` does not touch the weights.
    /// Keys are `{prefix}weight_ih_l{k}` and so on, so `prefix` is `""` for the module's own
    /// state_dict and `"encoder.rnn."` for a submodule of a larger model. Weights of
    /// `bias=False` modules have no bias keys and load as zero biases. PyTorch's `[G·h, in]`
    /// weights are transposed into this crate's fused `[in, G·h]` layout; gate order is the same.
    /// F64 weights are rounded to f32.
    ///
    /// # Errors
    /// [`Error`] naming the file and key when the file cannot be read or parsed, a key is
    /// missing, has the wrong shape or type, or the file holds recurrent weights this
    /// configuration has no place for (more layers, a reverse direction, LSTM projections).
    pub fn load_pytorch(
        &self,
        path: impl AsRef<Path>,
        prefix: &str,
        device: &Device,
    ) -> Result<Recurrent, Error> {
        let cells = self.read_pytorch(path.as_ref(), prefix, 1, device)?;
        let mut layer = self.init(device);
        layer.cells = cells;
        Ok(layer)
    }

    /// Loads a bidirectional stack (`bidirectional=True`, keys with and without `_reverse`);
    /// see [`load_pytorch`](RecurrentConfig::load_pytorch).
    ///
    /// # Errors
    /// As [`load_pytorch`](RecurrentConfig::load_pytorch).
    pub fn load_pytorch_bidirectional(
        &self,
        path: impl AsRef<Path>,
        prefix: &str,
        device: &Device,
    ) -> Result<BiRecurrent, Error> {
        let cells = self.read_pytorch(path.as_ref(), prefix, 2, device)?;
        let mut layer = self.init_bidirectional(device);
        layer.cells = cells;
        Ok(layer)
    }

    fn read_pytorch(
        &self,
        path: &Path,
        prefix: &str,
        directions: usize,
        device: &Device,
    ) -> Result<Vec<RecurrentCell>, Error> {
        let bytes =
            std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|err| Error::Format { path: path.into(), message: err.to_string() })?;
        let reader = Reader { file, path: path.to_path_buf(), layer: self.describe(directions) };
        reader.check_no_unexpected_keys(self, prefix, directions)?;

        let (h, width) = (self.d_hidden, self.kind.n_gates() * self.d_hidden);
        let mut cells = Vec::with_capacity(self.n_layers * directions);
        for layer in 0..self.n_layers {
            let d_in = if layer == 0 { self.d_input } else { directions * h };
            for direction in 0..directions {
                let [w_ih, w_hh, b_ih, b_hh] = NAMES.map(|n| key(prefix, n, layer, direction));
                let rows = format!(
                    "{}·d_hidden = {width} rows for a {:?}",
                    self.kind.n_gates(),
                    self.kind
                );
                let inputs = if layer == 0 { "d_input" } else { "directions·d_hidden" };
                let why_ih = format!("{rows}, {inputs} = {d_in} columns");
                let weight_ih = reader.matrix(&w_ih, [width, d_in], &why_ih, device)?;
                let why_hh = format!("{rows}, d_hidden = {h} columns");
                let weight_hh = reader.matrix(&w_hh, [width, h], &why_hh, device)?;
                let (bias_ih, bias_hh) = match (reader.has(&b_ih), reader.has(&b_hh)) {
                    (true, true) => (
                        reader.vector(&b_ih, width, &rows, device)?,
                        reader.vector(&b_hh, width, &rows, device)?,
                    ),
                    // `bias=False`: PyTorch stores no biases at all.
                    (false, false) => {
                        (Tensor::zeros([width], device), Tensor::zeros([width], device))
                    }
                    (true, false) => return Err(reader.half_bias(b_ih, b_hh)),
                    (false, true) => return Err(reader.half_bias(b_hh, b_ih)),
                };
                cells.push(RecurrentCell {
                    weight_ih: Param::from_tensor(weight_ih),
                    weight_hh: Param::from_tensor(weight_hh),
                    bias_ih: Param::from_tensor(bias_ih),
                    bias_hh: Param::from_tensor(bias_hh),
                    kind: self.kind,
                });
            }
        }
        Ok(cells)
    }

    /// "a bidirectional Lstm of 2 layers (d_input 3, d_hidden 4)", for error messages.
    fn describe(&self, directions: usize) -> String {
        let direction = if directions == 2 { "bidirectional" } else { "unidirectional" };
        format!(
            "a {direction} {:?} of {} layer(s) (d_input {}, d_hidden {})",
            self.kind, self.n_layers, self.d_input, self.d_hidden
        )
    }
}

/// PyTorch's key for a parameter: `weight_ih_l1_reverse` and the like.
fn key(prefix: &str, name: &str, layer: usize, direction: usize) -> String {
    let suffix = if direction == 1 { "_reverse" } else { "" };
    format!("{prefix}{name}_l{layer}{suffix}")
}

struct Reader<'a> {
    file: SafeTensors<'a>,
    path: PathBuf,
    layer: String,
}

impl Reader<'_> {
    fn has(&self, key: &str) -> bool {
        self.file.tensor(key).is_ok()
    }

    /// Recurrent keys under `prefix` that the configuration does not expect are an error: a
    /// silent partial load (a 2-layer file into a 1-layer stack) would give wrong outputs.
    fn check_no_unexpected_keys(
        &self,
        config: &RecurrentConfig,
        prefix: &str,
        directions: usize,
    ) -> Result<(), Error> {
        let expected: BTreeSet<String> = (0..config.n_layers)
            .flat_map(|l| (0..directions).flat_map(move |d| NAMES.map(|n| key(prefix, n, l, d))))
            .collect();
        let mut names = self.file.names();
        names.sort_unstable();
        for name in names {
            let Some(rest) = name.strip_prefix(prefix) else { continue };
            let recurrent = ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l", "weight_hr_l"]
                .iter()
                .any(|stem| rest.starts_with(stem));
            if recurrent && !expected.contains(name) {
                return Err(Error::UnexpectedKey {
                    path: self.path.clone(),
                    key: name.to_owned(),
                    layer: self.layer.clone(),
                });
            }
        }
        Ok(())
    }

    /// Reads `[rows, cols]` (PyTorch's layout) and returns it transposed, `[cols, rows]`.
    fn matrix(
        &self,
        key: &str,
        [rows, cols]: [usize; 2],
        why: &str,
        device: &Device,
    ) -> Result<Tensor<2>, Error> {
        let values = self.read(key, &[rows, cols], why)?;
        let mut transposed = vec![0.0f32; values.len()];
        for r in 0..rows {
            for c in 0..cols {
                transposed[c * rows + r] = values[r * cols + c];
            }
        }
        Ok(Tensor::from_data(TensorData::new(transposed, [cols, rows]), device))
    }

    fn vector(
        &self,
        key: &str,
        len: usize,
        why: &str,
        device: &Device,
    ) -> Result<Tensor<1>, Error> {
        let values = self.read(key, &[len], why)?;
        Ok(Tensor::from_data(TensorData::new(values, [len]), device))
    }

    fn read(&self, key: &str, expected: &[usize], why: &str) -> Result<Vec<f32>, Error> {
        let view = self.file.tensor(key).map_err(|_| Error::MissingKey {
            path: self.path.clone(),
            key: key.to_owned(),
            needed_by: self.layer.clone(),
        })?;
        if view.shape() != expected {
            return Err(Error::Shape {
                path: self.path.clone(),
                key: key.to_owned(),
                found: view.shape().to_vec(),
                expected: expected.to_vec(),
                why: why.to_owned(),
            });
        }
        // safetensors stores little-endian values.
        let data = view.data();
        match view.dtype() {
            Dtype::F32 => Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            Dtype::F64 => Ok(data
                .chunks_exact(8)
                .map(|b| {
                    let bytes = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                    f64::from_le_bytes(bytes) as f32
                })
                .collect()),
            other => Err(Error::Dtype {
                path: self.path.clone(),
                key: key.to_owned(),
                dtype: format!("{other:?}"),
            }),
        }
    }

    fn half_bias(&self, present: String, missing: String) -> Error {
        Error::HalfBias { path: self.path.clone(), present, missing }
    }
}
