//! Plots of an alignment, as SVG or PNG, with no plotting dependency: the accumulated-cost
//! matrix as a heatmap with the warping path on top, and the two series one above the other
//! with lines joining the points the path aligns.
//!
//! - [`heatmap_svg`] / [`heatmap_image`] / `heatmap_png`: the accumulated costs of a
//!   [`CostGrid`] on a log-scaled viridis colour map (cells outside the window in light grey),
//!   a colour bar with the smallest and largest cost, the path in red, the first series along
//!   the left edge (time upwards) and the second along the bottom (time rightwards). Matrix
//!   cell `(0, 0)` is at the bottom left, so the path runs from the bottom-left corner to the
//!   top-right one.
//! - [`alignment_svg`] / [`alignment_image`] / `alignment_png`: both series on one index axis,
//!   the first above the second, each scaled to its own band, joined by grey lines at (at most)
//!   one aligned pair per 4 pixels of width, evenly spaced along the path.
//!
//! Long series stay fast and small: [`CostGrid::accumulated`] computes the matrix row by row and
//! keeps the minimum of each block (at most one block per pixel is useful; the SVG heatmap
//! shrinks to [`PlotOptions::max_svg_cells`] per side), series lines keep the minimum and
//! maximum of each pixel column, and path points closer than half a pixel are merged.
//!
//! Multivariate series: the curves show the first dimension of each point; the heatmap's costs
//! use every dimension (they are the DTW matrix).
//!
//! The SVG is written by hand (`<polyline class="warping-path">` holds the path); PNGs are
//! rasterised here (crisp rectangles and cells, anti-aliased lines, a built-in 5 × 7 bitmap
//! font that draws letters as capitals) and encoded by the `png` crate behind the `png` cargo
//! feature (on by default): it is already in the workspace's dependency tree, compresses with
//! deflate (an uncompressed 800 × 800 picture would be 1.9 MB) and decodes in the tests.
//!
//! # Example
//! ```
//! use engram_dtw::plot::{self, CostGrid, PlotOptions};
//! use engram_dtw::{DtwOptions, Window, dtw_path};
//!
//! let a: Vec<f64> = (0..60).map(|k| (k as f64 / 6.0).sin()).collect();
//! let b: Vec<f64> = (0..80).map(|k| (k as f64 / 8.0 - 0.5).sin()).collect();
//! let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 20 });
//! let path = dtw_path(&a, &b, &options)?.path;
//! let grid = CostGrid::accumulated(&a, &b, &options, 800, 800)?;
//! let look = PlotOptions::default().with_title("two sines");
//! let svg = plot::heatmap_svg(&a, &b, &grid, &path, &look);
//! assert!(svg.starts_with("<svg") && svg.contains(r#"class="warping-path""#));
//! let picture = plot::alignment_image(&a, &b, &path, &look.with_size(1000, 400));
//! assert_eq!(picture.pixels.len(), 3 * 1000 * 400);
//! # #[cfg(feature = "png")]
//! # assert!(plot::heatmap_png(&a, &b, &grid, &path, &PlotOptions::default()).starts_with(b"\x89PNG"));
//! # Ok::<(), engram_dtw::Error>(())
//! ```

mod font;
mod grid;
mod layout;
mod raster;
mod scene;
mod svg;

pub use grid::CostGrid;
pub use raster::Image;
pub use scene::Rgb;

use crate::float::Float;
use crate::series::Series;

/// Size, title and names of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Width in pixels, at least 200 (default 800).
    pub width: u32,
    /// Height in pixels, at least 200 (default 800; alignment plots read better wide, say
    /// 1000 × 500).
    pub height: u32,
    /// A line of text above the plot (default none).
    pub title: Option<String>,
    /// What to call the first and the second series on the axes (default `"x"` and `"y"`).
    pub names: [String; 2],
    /// The SVG heatmap draws at most this many cells per side (default 200, at most 40 000
    /// cells and a few hundred kB), shrinking the grid further when it is larger; the PNG draws
    /// at most one block per pixel.
    pub max_svg_cells: usize,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 800,
            height: 800,
            title: None,
            names: ["x".to_string(), "y".to_string()],
            max_svg_cells: 200,
        }
    }
}

impl PlotOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this size in pixels.
    pub fn with_size(self, width: u32, height: u32) -> Self {
        PlotOptions { width, height, ..self }
    }

    /// With this title.
    pub fn with_title(self, title: impl Into<String>) -> Self {
        PlotOptions { title: Some(title.into()), ..self }
    }

    /// With these names for the first and the second series.
    pub fn with_names(self, first: impl Into<String>, second: impl Into<String>) -> Self {
        PlotOptions { names: [first.into(), second.into()], ..self }
    }

    fn check(&self, op: &str) {
        assert!(
            self.width >= 200 && self.height >= 200,
            "{op}: the plot must be at least 200 x 200 pixels, got {} x {}",
            self.width,
            self.height
        );
        assert!(self.max_svg_cells > 0, "{op}: max_svg_cells must be at least 1, got 0");
    }
}

/// The heatmap of `grid` (the accumulated costs of `a` against `b`) with `path` on top, as an
/// SVG document. See the module doc for what it shows.
///
/// # Panics
/// When the grid was not made for series of these lengths, when the path is empty or leaves the
/// `n × m` matrix, or when the options are smaller than 200 × 200 pixels.
pub fn heatmap_svg<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    grid: &CostGrid,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> String {
    let (a, b) = checked_heatmap("heatmap_svg", a.into(), b.into(), grid, path, options);
    let cells = options.max_svg_cells;
    svg::render(&layout::heatmap(&a, &b, grid, path, options, (cells, cells)))
}

/// The heatmap as an RGB [`Image`] (what `heatmap_png` encodes).
///
/// # Panics
/// As [`heatmap_svg`].
pub fn heatmap_image<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    grid: &CostGrid,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> Image {
    heatmap_raster("heatmap_image", a.into(), b.into(), grid, path, options)
}

/// The heatmap as a PNG file's bytes.
///
/// # Panics
/// As [`heatmap_svg`].
#[cfg(feature = "png")]
pub fn heatmap_png<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    grid: &CostGrid,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> Vec<u8> {
    encode_png(&heatmap_raster("heatmap_png", a.into(), b.into(), grid, path, options))
}

/// The two series one above the other with lines joining the points that `path` aligns, as an
/// SVG document.
///
/// # Panics
/// When the path is empty or leaves the `n × m` matrix of the series' lengths, or when the
/// options are smaller than 200 × 200 pixels.
pub fn alignment_svg<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> String {
    let (a, b) = checked("alignment_svg", a.into(), b.into(), path, options);
    svg::render(&layout::alignment(&a, &b, path, options))
}

/// The alignment plot as an RGB [`Image`].
///
/// # Panics
/// As [`alignment_svg`].
pub fn alignment_image<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> Image {
    let (a, b) = checked("alignment_image", a.into(), b.into(), path, options);
    raster::render(&layout::alignment(&a, &b, path, options))
}

/// The alignment plot as a PNG file's bytes.
///
/// # Panics
/// As [`alignment_svg`].
#[cfg(feature = "png")]
pub fn alignment_png<'a, 'b, T: Float>(
    a: impl Into<Series<'a, T>>,
    b: impl Into<Series<'b, T>>,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> Vec<u8> {
    let (a, b) = checked("alignment_png", a.into(), b.into(), path, options);
    encode_png(&raster::render(&layout::alignment(&a, &b, path, options)))
}

/// An image as PNG bytes (8-bit RGB, deflate).
#[cfg(feature = "png")]
pub fn encode_png(image: &Image) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    // Writing to a Vec cannot fail, and `Image` always holds 3 * width * height bytes, which is
    // all the encoder checks.
    let mut writer = encoder.write_header().expect("encode_png: header of an in-memory PNG");
    writer.write_image_data(&image.pixels).expect("encode_png: RGB data matches the header");
    writer.finish().expect("encode_png: finishing an in-memory PNG");
    bytes
}

fn heatmap_raster<T: Float>(
    op: &str,
    a: Series<'_, T>,
    b: Series<'_, T>,
    grid: &CostGrid,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> Image {
    let (a, b) = checked_heatmap(op, a, b, grid, path, options);
    // At most one block per pixel (rows down the height, columns across the width): more
    // would only alias.
    let cells = (options.height as usize, options.width as usize);
    raster::render(&layout::heatmap(&a, &b, grid, path, options, cells))
}

/// The first dimension of each point, in f64, after checking the path against the lengths.
fn checked<T: Float>(
    op: &str,
    a: Series<'_, T>,
    b: Series<'_, T>,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> (Vec<f64>, Vec<f64>) {
    options.check(op);
    let (n, m) = (a.len(), b.len());
    assert!(n > 0 && m > 0, "{op}: the series need at least one point each, got {n} and {m}");
    assert!(!path.is_empty(), "{op}: the path is empty");
    if let Some(&(i, j)) = path.iter().find(|&&(i, j)| i >= n || j >= m) {
        panic!("{op}: path cell ({i}, {j}) is outside the {n} x {m} matrix");
    }
    let first = |s: Series<'_, T>| (0..s.len()).map(|k| s.point(k)[0].to_f64()).collect();
    (first(a), first(b))
}

fn checked_heatmap<T: Float>(
    op: &str,
    a: Series<'_, T>,
    b: Series<'_, T>,
    grid: &CostGrid,
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> (Vec<f64>, Vec<f64>) {
    assert!(
        (grid.n(), grid.m()) == (a.len(), b.len()),
        "{op}: the grid is for a {} x {} matrix, the series have lengths {} and {}",
        grid.n(),
        grid.m(),
        a.len(),
        b.len()
    );
    checked(op, a, b, path, options)
}

#[cfg(test)]
mod tests;
