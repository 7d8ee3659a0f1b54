//! Soft-DTW (Cuturi & Blondel, 2017): the differentiable relaxation of DTW, on a cost matrix
//! (plain f64) and, with the `burn` feature, as a loss on burn tensors.
//!
//! `kernel.rs` runs both recursions on anti-diagonals with a vectorised `exp` (`math.rs`);
//! `recursion.rs` feeds it a cost matrix, `points.rs` a batch of point sequences (costs computed
//! on the fly, gradients folded into the points', rayon over the batch), which `tensor.rs` turns
//! into a burn loss. `lanes.rs` runs the same recursions on several pairs at once, one pair per
//! SIMD lane, which is how `points.rs` computes most batches.

mod kernel;
#[cfg_attr(not(feature = "burn"), allow(dead_code))]
mod lanes;
mod math;
#[cfg_attr(not(feature = "burn"), allow(dead_code))]
mod points;
mod recursion;
#[cfg(feature = "burn")]
mod tensor;

pub use recursion::{SoftDtw, soft_dtw_cost_matrix};
#[cfg(feature = "burn")]
pub use tensor::{soft_dtw, soft_dtw_divergence};
