//! Soft-DTW (Cuturi & Blondel, 2017): the differentiable relaxation of DTW, on a cost matrix
//! (plain f64) and, with the `burn` feature, as a loss on burn tensors.

mod recursion;
#[cfg(feature = "burn")]
mod tensor;

pub use recursion::{SoftDtw, soft_dtw_cost_matrix};
#[cfg(feature = "burn")]
pub use tensor::{soft_dtw, soft_dtw_divergence};
