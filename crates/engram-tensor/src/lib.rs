//! Numerics on burn tensors, the backend switch, and the memory contract that every engram
//! mechanism implements.
//!
//! - [`device`] is the one function in engram that creates a burn device: it picks among the
//!   compiled-in backends (cargo features `flex` — the default —, `ndarray`, `wgpu`), honouring
//!   `ENGRAM_BACKEND`.
//! - Stable [`softmax`], [`log_softmax`], [`logsumexp`], [`masked_softmax`] (fully masked rows
//!   give zeros, never NaN), [`softmin`] and the smoothed minimum [`soft_min`]; [`entropy`],
//!   [`CrossEntropy`] with padding and label smoothing, [`kl_divergence`], [`perplexity`].
//! - [`dropout`] and [`dropout_with`], with a mask drawn in parallel on the CPU backends (burn's
//!   draws one element at a time from a ChaCha generator); [`gelu_dropout`], GELU and dropout in
//!   one parallel pass each way on flex; [`layer_norm`], the same for layer normalisation;
//!   [`adamw_step`], an AdamW update in one parallel pass on flex.
//! - Masks ([`padding_mask`], [`causal_mask`]), seeding ([`seed_everything`]) and initialisers
//!   burn lacks ([`orthogonal_blocks`], [`recurrent_uniform`], [`scaled_residual_normal`]).
//! - The memory contract ([`SequenceMemory`], [`StreamingMemory`], [`check_streaming`]), see
//!   `docs/architecture.md`.
//! - [`testing`]: tolerance comparison with f64 references and finite-difference gradient
//!   checks, for the tests of every engram crate.
//!
//! burn's own pieces are used where they fit (its `Initializer`, tensor ops and autodiff); the
//! functions here exist because engram needs guarantees burn does not state (NaN-free masking,
//! padding-aware losses, reproducible seeding of device and host together).
//!
//! # Example
//! ```
//! use burn::tensor::Tensor;
//! use engram_tensor::{device, masked_softmax, padding_mask};
//!
//! let device = device(None).expect("a backend is compiled in");
//! let scores = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [1e4, -1e4, 0.0]], &device);
//! let mask = padding_mask(&[2, 0], 3, &device); // the second row is all padding
//! let weights = masked_softmax(scores, mask, 1);
//! let row = engram_tensor::testing::to_f64(weights);
//! assert_eq!(&row[3..], &[0.0, 0.0, 0.0]);
//! ```
#![warn(missing_docs)]

mod adamw;
mod alloc;
mod backend;
mod dropout;
mod error;
mod gelu;
mod init;
mod layer_norm;
mod loss;
mod mask;
mod memory;
mod softmax;
pub mod testing;

pub use adamw::{AdamWStep, adamw_step};
pub use backend::{
    BACKEND_ENV, Backend, backend_of, cpu_threads, device, select_backend, supports_f64,
};
pub use dropout::{DropMask, dropout, dropout_with};
pub use error::Error;
pub use gelu::gelu_dropout;
pub use init::{orthogonal_blocks, recurrent_uniform, scaled_residual_normal, seed_everything};
pub use layer_norm::layer_norm;
pub use loss::{CrossEntropy, entropy, kl_divergence, perplexity};
pub use mask::{causal_mask, lengths_from_mask, padding_mask};
pub use memory::{
    ConformanceReport, Encoded, MemoryState, SequenceMemory, Stepped, StreamingMemory,
    check_streaming,
};
pub use softmax::{log_softmax, logsumexp, masked_softmax, soft_min, softmax, softmin};
