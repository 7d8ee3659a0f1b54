//! Tests of the plots through the public API: well-formed SVG that holds the path, PNGs that
//! decode, orientation, and long series that stay small.

use super::*;
use crate::{DtwOptions, Window, dtw_path, dtw_path_low_memory};

fn wave(len: usize, speed: f64, phase: f64) -> Vec<f64> {
    (0..len).map(|k| (k as f64 * speed + phase).sin()).collect()
}

/// Checks that every tag is closed in order and every attribute quote is paired; returns the
/// number of elements.
fn assert_well_formed(svg: &str) -> usize {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        assert!(!rest[..open].contains('>'), "stray '>' before {:?}", &rest[open..open + 20]);
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        assert_eq!(tag.matches('"').count() % 2, 0, "unpaired quote in <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "</{name}> closes the wrong element");
        } else {
            elements += 1;
            if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    elements
}

/// The points of the polyline with this class.
fn polyline(svg: &str, class: &str) -> Vec<(f64, f64)> {
    let start = svg.find(&format!(r#"<polyline class="{class}""#)).expect("no such polyline");
    let tag = &svg[start..start + svg[start..].find("/>").unwrap()];
    let points = tag.split(r#"points=""#).nth(1).unwrap().trim_end_matches('"');
    points
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

/// Two series, their path and their accumulated-cost grid.
type Pair = (Vec<f64>, Vec<f64>, Vec<(usize, usize)>, CostGrid);

fn small_pair() -> Pair {
    let (a, b) = (wave(30, 0.3, 0.0), wave(40, 0.25, 0.5));
    let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 8 });
    let path = dtw_path(&a, &b, &options).unwrap().path;
    let grid = CostGrid::accumulated(&a, &b, &options, 800, 800).unwrap();
    (a, b, path, grid)
}

#[test]
fn heatmap_svg_is_well_formed_and_draws_the_path_from_the_bottom_left() {
    let (a, b, path, grid) = small_pair();
    let svg = heatmap_svg(&a, &b, &grid, &path, &PlotOptions::new().with_title("a <b> & c"));
    assert!(assert_well_formed(&svg) > 10);
    let points = polyline(&svg, "warping-path");
    assert_eq!(points.len(), path.len());
    let (first, last) = (points[0], points[points.len() - 1]);
    assert!(first.0 < last.0 && first.1 > last.1, "bottom left to top right: {first:?} {last:?}");
    assert_eq!(polyline(&svg, "series-first").len(), a.len());
    assert_eq!(polyline(&svg, "series-second").len(), b.len());
    // Cells outside the band are grey, and the title is escaped.
    assert!(svg.contains(r##"fill="#dddddd""##));
    assert!(svg.contains("a &lt;b&gt; &amp; c"));
}

#[test]
fn alignment_svg_joins_every_aligned_pair_of_a_short_path() {
    let (a, b, path, _) = small_pair();
    let svg = alignment_svg(&a, &b, &path, &PlotOptions::new().with_size(1000, 500));
    assert_well_formed(&svg);
    let start = svg.find(r#"<path class="links""#).unwrap();
    let links = &svg[start..start + svg[start..].find("/>").unwrap()];
    assert_eq!(links.matches('M').count(), path.len());
    // The first series is drawn above the second.
    let top = polyline(&svg, "series-first");
    let below = polyline(&svg, "series-second");
    let lowest_of_top = top.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    assert!(below.iter().all(|p| p.1 > lowest_of_top));
}

#[test]
fn multivariate_series_plot_their_first_dimension() {
    let xy = [0.0, 5.0, 1.0, 5.0, 2.0, 5.0];
    let uv = [0.0, -5.0, 2.0, -5.0];
    let (x, u) = (Series::new(&xy[..], 2).unwrap(), Series::new(&uv[..], 2).unwrap());
    let path = dtw_path(x, u, &DtwOptions::default()).unwrap().path;
    let svg = alignment_svg(x, u, &path, &PlotOptions::default());
    let first = polyline(&svg, "series-first");
    // First dimension 0, 1, 2 rises (y falls); the second dimension is constant.
    assert!(first[0].1 > first[1].1 && first[1].1 > first[2].1, "{first:?}");
}

#[cfg(feature = "png")]
fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    (info, pixels)
}

#[cfg(feature = "png")]
#[test]
fn pngs_decode_to_the_rasterised_images() {
    let (a, b, path, grid) = small_pair();
    let options = PlotOptions::new().with_size(640, 480);
    let image = heatmap_image(&a, &b, &grid, &path, &options);
    let (info, pixels) = decode(&heatmap_png(&a, &b, &grid, &path, &options));
    assert_eq!((info.width, info.height, info.color_type), (640, 480, png::ColorType::Rgb));
    assert_eq!(pixels, image.pixels);
    let (info, pixels) = decode(&alignment_png(&a, &b, &path, &options));
    assert_eq!((info.width, info.height), (640, 480));
    assert_eq!(pixels, alignment_image(&a, &b, &path, &options).pixels);
}

#[test]
fn heatmap_image_is_dark_where_the_path_starts_and_grey_outside_the_window() {
    let (a, b, path, grid) = small_pair();
    let image = heatmap_image(&a, &b, &grid, &path, &PlotOptions::default());
    let colours: std::collections::HashSet<Rgb> =
        image.pixels.chunks_exact(3).map(|p| Rgb(p[0], p[1], p[2])).collect();
    assert!(colours.contains(&scene::BLANK), "cells outside the band");
    assert!(colours.contains(&scene::PATH), "the path");
    assert!(colours.contains(&scene::viridis(0.0)), "the cheapest cell");
}

#[test]
fn long_series_plot_small_and_keep_the_path_corner_to_corner() {
    let (a, b) = (wave(4000, 0.01, 0.0), wave(3000, 0.013, 0.2));
    let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 60 });
    let path = dtw_path_low_memory(&a, &b, &options).unwrap().path;
    let grid = CostGrid::accumulated(&a, &b, &options, 800, 800).unwrap();
    assert_eq!((grid.rows(), grid.cols()), (800, 800));
    let svg = heatmap_svg(&a, &b, &grid, &path, &PlotOptions::default());
    assert!(svg.len() < 400_000, "{} bytes", svg.len());
    assert_well_formed(&svg);
    let points = polyline(&svg, "warping-path");
    assert!(points.len() < path.len() / 2, "{} of {} points kept", points.len(), path.len());
    let cells = svg.split(r#"<g class="cells""#).nth(1).unwrap();
    // 200 x 200 cells: the last row is 199.
    assert!(cells.contains(" 199h") && !cells.contains(" 200h"), "200 x 200 cells");
    // The first and last points are the centres of the corner cells: well inside the picture,
    // bottom left and top right.
    let (first, last) = (points[0], points[points.len() - 1]);
    assert_eq!(
        first,
        polyline(&heatmap_svg(&a, &b, &grid, &path[..1], &PlotOptions::default()), "warping-path")
            [0]
    );
    assert!(
        first.0 < 300.0 && first.1 > 500.0 && last.0 > 700.0 && last.1 < 150.0,
        "{first:?} {last:?}"
    );
    #[cfg(feature = "png")]
    {
        let bytes = heatmap_png(&a, &b, &grid, &path, &PlotOptions::default());
        assert!(bytes.len() < 300_000, "{} bytes", bytes.len());
    }
}

#[test]
#[should_panic(
    expected = "heatmap_svg: the grid is for a 30 x 40 matrix, the series have lengths 40 and 30"
)]
fn heatmap_rejects_a_grid_of_other_series() {
    let (a, b, path, grid) = small_pair();
    heatmap_svg(&b, &a, &grid, &path, &PlotOptions::default());
}

#[test]
#[should_panic(expected = "alignment_png: path cell (3, 0) is outside the 3 x 2 matrix")]
#[cfg(feature = "png")]
fn alignment_rejects_a_path_outside_the_matrix() {
    alignment_png(&[0.0, 1.0, 2.0], &[0.0, 1.0], &[(0, 0), (3, 0)], &PlotOptions::default());
}

#[test]
#[should_panic(expected = "alignment_svg: the path is empty")]
fn alignment_rejects_an_empty_path() {
    alignment_svg(&[0.0, 1.0], &[0.0, 1.0], &[], &PlotOptions::default());
}

#[test]
#[should_panic(
    expected = "alignment_image: the plot must be at least 200 x 200 pixels, got 100 x 800"
)]
fn tiny_plots_panic() {
    alignment_image(&[0.0], &[0.0], &[(0, 0)], &PlotOptions::new().with_size(100, 800));
}
