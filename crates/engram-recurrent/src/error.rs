//! The error type of engram-recurrent: what can go wrong reading PyTorch weights.

use std::path::PathBuf;

/// Errors from loading a PyTorch `state_dict` (see
/// [`RecurrentConfig::load_pytorch`](crate::RecurrentConfig::load_pytorch)); each names the file
/// and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{} is not a safetensors file: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader said.
        message: String,
    },
    /// A weight the configuration needs is not in the file.
    #[error("{}: missing key `{key}`, which {needed_by} needs", path.display())]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key, prefix included.
        key: String,
        /// The layer that needs it, described by its configuration.
        needed_by: String,
    },
    /// A weight in the file is not the shape the configuration implies.
    #[error("{}: `{key}` has shape {found:?}, expected {expected:?} ({why})", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The key, prefix included.
        key: String,
        /// Its shape in the file (PyTorch's layout).
        found: Vec<usize>,
        /// The shape the configuration implies (PyTorch's layout).
        expected: Vec<usize>,
        /// Which sizes decide the expected shape.
        why: String,
    },
    /// A weight is stored in a type other than f32 or f64.
    #[error("{}: `{key}` is {dtype}; only F32 and F64 weights are read", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The key, prefix included.
        key: String,
        /// The stored type as safetensors names it.
        dtype: String,
    },
    /// The file holds recurrent weights the configuration has no place for (more layers, the
    /// other direction, LSTM projections).
    #[error("{}: key `{key}` does not belong to {layer}", path.display())]
    UnexpectedKey {
        /// The file.
        path: PathBuf,
        /// The key, prefix included.
        key: String,
        /// The layer being loaded, described by its configuration.
        layer: String,
    },
    /// Only one of a layer's two biases is in the file.
    #[error("{}: `{present}` is present but `{missing}` is not", path.display())]
    HalfBias {
        /// The file.
        path: PathBuf,
        /// The bias that is there.
        present: String,
        /// The bias that is missing.
        missing: String,
    },
}
