//! Classical dynamic time warping on plain slices, in f32 and f64 — no burn tensors needed.
//!
//! - [`dtw_distance`] / [`dtw_cost`] / [`dtw_cost_bounded`]: DTW between two series in
//!   `O(min(n, m))` memory, with early abandoning. Univariate series take a SIMD kernel that
//!   sweeps anti-diagonals (AVX2 picked at run time on x86-64); everything else a row kernel.
//! - Local costs ([`Cost`]): squared Euclidean, Euclidean, absolute, cosine; univariate or
//!   multivariate ([`Series`], a borrowed row-major view).
//! - Windows ([`Window`]): none, Sakoe-Chiba band, Itakura parallelogram.
//! - Paths: [`dtw_path`] (full matrix), [`dtw_path_low_memory`] (checkpointed recomputation,
//!   `O(sqrt(n) m)`), [`dtw_matrices`] (local and accumulated costs).
//! - [`znormalize`], lower bounds [`lb_kim`] and [`lb_keogh`] with [`envelope`], and the UCR
//!   suite's [`subsequence_search`].
//! - [`distance_matrix`] and [`cross_distance_matrix`] in parallel with rayon;
//!   [`select_window`] (leave-one-out window learning) and [`classify_1nn`].
//! - [`read_series`] / [`parse_series`]: series from text files (UCR archive format or one
//!   series per line), with errors that say file, line and column.
//!
//! Conventions (which number matches dtaidistance, tslearn or aeon) are on the `distance`
//! functions: [`dtw_cost`] sums local costs along the path, [`dtw_distance`] takes its square
//! root for the squared Euclidean cost. Data problems (empty series, NaN, mismatched
//! dimensions, unreachable windows) are [`Error`]s that carry the offending values.
//!
//! - [`plot`]: the accumulated-cost heatmap with the warping path, and the two series with the
//!   alignment drawn between them, as SVG or PNG (no plotting dependency; PNG encoding behind
//!   the `png` feature).
//! - Soft-DTW: [`soft_dtw_cost_matrix`] (value and gradient of a cost matrix, plain f64) and,
//!   with the `burn` feature, [`soft_dtw`] / [`soft_dtw_divergence`] as losses on burn tensors
//!   for batches of sequences of different lengths.
//!
//! Cargo features: `flex` (default), `ndarray`, `wgpu` pick the burn backend through
//! engram-tensor and turn on `burn`; `png` (default) encodes plots as PNG; with
//! `default-features = false` the crate is the classical core alone, without burn.
//! See `docs/architecture.md`.
//!
//! # Example
//! ```
//! use engram_dtw::{DtwOptions, Series, Window, dtw_distance, dtw_path};
//!
//! let a = [0.0, 1.0, 2.0, 3.0, 2.0, 1.0];
//! let b = [0.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0];
//! let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 2 });
//! assert_eq!(dtw_distance(&a, &b, &options)?, 0.0);
//! let alignment = dtw_path(&a, &b, &options)?;
//! assert_eq!(alignment.path[..3], [(0, 0), (0, 1), (1, 2)]);
//!
//! // Two-dimensional points, row-major.
//! let xy = [0.0_f32, 0.0, 1.0, 1.0, 2.0, 2.0];
//! let uv = [0.0_f32, 0.0, 2.0, 2.0];
//! let d = dtw_distance(Series::new(&xy, 2)?, Series::new(&uv, 2)?, &DtwOptions::default())?;
//! assert!((d - 2.0_f32.sqrt()).abs() < 1e-6);
//! # Ok::<(), engram_dtw::Error>(())
//! ```
#![warn(missing_docs)]

mod bounds;
mod cost;
mod distance;
mod error;
mod float;
mod io;
mod knn;
mod matrix;
mod normalize;
mod path;
pub mod plot;
#[cfg(test)]
mod reference;
mod search;
mod series;
mod soft;
mod window;

pub use bounds::{Envelope, envelope, lb_keogh, lb_kim};
pub use cost::Cost;
pub use distance::{DtwOptions, dtw_cost, dtw_cost_bounded, dtw_distance};
pub use error::{Error, Result};
pub use float::Float;
pub use io::{SeriesSet, parse_series, read_series};
pub use knn::{WindowSelection, classify_1nn, error_rate, select_window};
pub use matrix::{DistanceMatrix, cross_distance_matrix, distance_matrix};
pub use normalize::{znormalize, znormalized};
pub use path::{Alignment, DtwMatrices, dtw_matrices, dtw_path, dtw_path_low_memory};
pub use search::{Match, SearchOptions, SearchResult, SearchStats, subsequence_search};
pub use series::Series;
pub use soft::{SoftDtw, soft_dtw_cost_matrix};
#[cfg(feature = "burn")]
pub use soft::{soft_dtw, soft_dtw_divergence};
pub use window::{Window, window_cells};
