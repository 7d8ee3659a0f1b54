//! Where everything goes: the heatmap and the alignment plot as [`Scene`]s, shared by the SVG
//! writer and the rasteriser so that both formats show the same picture.

use super::PlotOptions;
use super::grid::CostGrid;
use super::scene::{
    AXIS, Anchor, BLANK, FIRST, INK, LINK, PATH, Rgb, SECOND, Scene, Shape, WHITE, viridis,
};

/// Cap height of all text, in pixels (the PNG font at scale 2).
const TEXT: f64 = 14.0;
/// Advance of one character at that size.
const CHAR: f64 = 12.0;
/// Light background behind the series strips.
const STRIP: Rgb = Rgb(246, 246, 246);

/// The accumulated-cost heatmap with the path on top and the series along the left (first
/// series, time upwards) and bottom (second series, time rightwards) edges; cell `(0, 0)` is at
/// the bottom left. `max_cells` caps the grid's blocks per side.
pub(crate) fn heatmap(
    a: &[f64],
    b: &[f64],
    grid: &CostGrid,
    path: &[(usize, usize)],
    options: &PlotOptions,
    max_cells: (usize, usize),
) -> Scene {
    let (n, m) = (a.len(), b.len());
    let (w, h) = (f64::from(options.width), f64::from(options.height));
    let strip = (w.min(h) * 0.11).clamp(40.0, 120.0);
    let mut shapes = Vec::new();
    let mut y = 10.0;
    if let Some(title) = &options.title {
        y += TEXT;
        shapes.push(text(w / 2.0, y, title, Anchor::Middle, INK));
        y += 16.0;
    }
    // Colour bar above the matrix, then the matrix.
    let label_baseline = y + TEXT;
    let bar_top = label_baseline + 6.0;
    let top = bar_top + 12.0 + 14.0;
    let tick_width = digits(n.saturating_sub(1)) as f64 * CHAR + 12.0;
    let left = 12.0 + TEXT + 8.0 + strip + 6.0 + tick_width;
    let right = w - 16.0;
    let bottom = h - (10.0 + TEXT + 8.0 + strip + 6.0 + TEXT + 12.0);
    let (cell_w, cell_h) = ((right - left) / m as f64, (bottom - top) / n as f64);
    let col_x = |j: f64| left + (j + 0.5) * cell_w;
    let row_y = |i: f64| bottom - (i + 0.5) * cell_h;

    // Cells, row 0 of the grid (matrix row 0) at the bottom.
    let shown = grid.shrunk(max_cells.0, max_cells.1);
    let (lo, hi) = finite_range(shown.values());
    let colour = log_colour(lo, hi);
    let mut colors = Vec::with_capacity(shown.rows() * shown.cols());
    for row in shown.values().chunks_exact(shown.cols()).rev() {
        colors.extend(row.iter().map(|&v| if v.is_finite() { colour(v) } else { BLANK }));
    }
    let (rows, cols) = (shown.rows(), shown.cols());
    shapes.push(Shape::Cells {
        x: left,
        y: top,
        w: right - left,
        h: bottom - top,
        cols,
        rows,
        colors,
    });
    shapes.push(frame(left, top, right, bottom));

    // Colour bar.
    let bar: Vec<Rgb> = (0..128).map(|k| viridis(k as f64 / 127.0)).collect();
    let bar_h = 12.0;
    shapes.push(Shape::Cells {
        x: left,
        y: bar_top,
        w: right - left,
        h: bar_h,
        cols: 128,
        rows: 1,
        colors: bar,
    });
    shapes.push(frame(left, bar_top, right, bar_top + bar_h));
    shapes.push(text(left, label_baseline, &number(lo), Anchor::Start, INK));
    shapes.push(text(right, label_baseline, &number(hi), Anchor::End, INK));
    let middle = "accumulated cost, log scale";
    shapes.push(text((left + right) / 2.0, label_baseline, middle, Anchor::Middle, AXIS));

    // The warping path.
    let points = path.iter().map(|&(i, j)| (col_x(j as f64), row_y(i as f64)));
    shapes.push(Shape::Polyline {
        points: thin(points),
        stroke: PATH,
        width: 2.0,
        class: "warping-path",
    });

    // Ticks and tick labels.
    let mut ticks = Vec::new();
    for i in nice_ticks(n) {
        let y = row_y(i as f64);
        ticks.push([(left - 5.0, y), (left, y)]);
        shapes.push(text(left - 8.0, y + TEXT / 2.0, &i.to_string(), Anchor::End, INK));
    }
    for j in nice_ticks(m) {
        let x = col_x(j as f64);
        ticks.push([(x, bottom), (x, bottom + 5.0)]);
        shapes.push(text(x, bottom + 8.0 + TEXT, &j.to_string(), Anchor::Middle, INK));
    }
    shapes.push(Shape::Lines { segments: ticks, stroke: AXIS, width: 1.0, class: "ticks" });

    // The first series along the left edge: time upwards, values growing to the left (the usual
    // plot turned a quarter counter-clockwise, like the axis label).
    let (sx1, sx0) = (left - tick_width - 6.0, left - tick_width - 6.0 - strip);
    shapes.push(Shape::Rect { x: sx0, y: top, w: strip, h: bottom - top, fill: STRIP });
    let (amin, amax) = finite_range(a);
    let a_points = envelope(a, (bottom - top) as usize)
        .into_iter()
        .map(|(i, v)| (sx1 - scaled(v, amin, amax) * strip, row_y(i)));
    shapes.push(series_line(a_points.collect(), FIRST, "series-first"));
    let label = format!("{} (i)", options.names[0]);
    shapes.push(vertical_text(12.0 + TEXT, (top + bottom) / 2.0, &label));

    // The second series along the bottom edge.
    let (sy0, sy1) = (bottom + 8.0 + TEXT + 6.0, bottom + 8.0 + TEXT + 6.0 + strip);
    shapes.push(Shape::Rect { x: left, y: sy0, w: right - left, h: strip, fill: STRIP });
    let (bmin, bmax) = finite_range(b);
    let b_points = envelope(b, (right - left) as usize)
        .into_iter()
        .map(|(j, v)| (col_x(j), sy1 - scaled(v, bmin, bmax) * strip));
    shapes.push(series_line(b_points.collect(), SECOND, "series-second"));
    let label = format!("{} (j)", options.names[1]);
    shapes.push(text((left + right) / 2.0, h - 10.0, &label, Anchor::Middle, INK));

    Scene { width: options.width, height: options.height, shapes }
}

/// The two series one above the other, on a shared time axis, with thin lines joining the
/// points the path aligns (at most about one line per 4 pixels of width, evenly spaced along
/// the path).
pub(crate) fn alignment(
    a: &[f64],
    b: &[f64],
    path: &[(usize, usize)],
    options: &PlotOptions,
) -> Scene {
    let (n, m) = (a.len(), b.len());
    let (w, h) = (f64::from(options.width), f64::from(options.height));
    let mut shapes = Vec::new();
    let mut y = 10.0;
    if let Some(title) = &options.title {
        y += TEXT;
        shapes.push(text(w / 2.0, y, title, Anchor::Middle, INK));
        y += 10.0;
    }
    let (left, right) = (24.0, w - 24.0);
    let bottom = h - (10.0 + TEXT + 8.0 + TEXT + 12.0);
    // Each band gets a label line above it; the gap between the bands holds the links.
    let label = TEXT + 8.0;
    let band = ((bottom - y) - 2.0 * label) / 2.0 * 0.8;
    let gap = (bottom - y) - 2.0 * label - 2.0 * band;
    let (a_top, b_top) = (y + label, y + label + band + gap + label);
    let length = n.max(m);
    let step = if length > 1 { (right - left) / (length - 1) as f64 } else { 0.0 };
    let x_of = |t: f64| if length > 1 { left + t * step } else { (left + right) / 2.0 };
    let (amin, amax) = finite_range(a);
    let (bmin, bmax) = finite_range(b);
    let ya = |v: f64| a_top + band * (0.95 - 0.9 * scaled(v, amin, amax));
    let yb = |v: f64| b_top + band * (0.95 - 0.9 * scaled(v, bmin, bmax));

    let links = ((right - left) / 4.0).max(2.0) as usize;
    let picked: Vec<(usize, usize)> = if path.len() <= links {
        path.to_vec()
    } else {
        (0..links).map(|k| path[k * (path.len() - 1) / (links - 1)]).collect()
    };
    let segments =
        picked.iter().map(|&(i, j)| [(x_of(i as f64), ya(a[i])), (x_of(j as f64), yb(b[j]))]);
    shapes.push(Shape::Lines {
        segments: segments.collect(),
        stroke: LINK,
        width: 1.0,
        class: "links",
    });

    let pixels = (right - left) as usize;
    let a_points = envelope(a, pixels).into_iter().map(|(i, v)| (x_of(i), ya(v))).collect();
    shapes.push(series_line(a_points, FIRST, "series-first"));
    let b_points = envelope(b, pixels).into_iter().map(|(j, v)| (x_of(j), yb(v))).collect();
    shapes.push(series_line(b_points, SECOND, "series-second"));
    // Names above each band, on white so that the links do not run through them.
    for (name, len, top, colour) in
        [(&options.names[0], n, a_top, FIRST), (&options.names[1], m, b_top, SECOND)]
    {
        let label = format!("{name}, {len} points");
        let width = label.chars().count() as f64 * CHAR + 8.0;
        shapes.push(Shape::Rect {
            x: left - 4.0,
            y: top - 12.0 - TEXT,
            w: width,
            h: TEXT + 8.0,
            fill: WHITE,
        });
        shapes.push(text(left, top - 8.0, &label, Anchor::Start, colour));
    }

    // Time axis.
    let mut ticks = vec![[(left, bottom + 4.0), (right, bottom + 4.0)]];
    for t in nice_ticks(length) {
        let x = x_of(t as f64);
        ticks.push([(x, bottom + 4.0), (x, bottom + 9.0)]);
        shapes.push(text(x, bottom + 12.0 + TEXT, &t.to_string(), Anchor::Middle, INK));
    }
    shapes.push(Shape::Lines { segments: ticks, stroke: AXIS, width: 1.0, class: "ticks" });
    shapes.push(text((left + right) / 2.0, h - 10.0, "index", Anchor::Middle, AXIS));

    Scene { width: options.width, height: options.height, shapes }
}

fn text(x: f64, y: f64, text: &str, anchor: Anchor, color: Rgb) -> Shape {
    Shape::Text { x, y, text: text.to_string(), size: TEXT, anchor, vertical: false, color }
}

fn vertical_text(x: f64, y: f64, text: &str) -> Shape {
    let text = text.to_string();
    Shape::Text { x, y, text, size: TEXT, anchor: Anchor::Middle, vertical: true, color: INK }
}

fn series_line(points: Vec<(f64, f64)>, stroke: Rgb, class: &'static str) -> Shape {
    Shape::Polyline { points, stroke, width: 2.0, class }
}

/// A one-pixel outline of the rectangle.
fn frame(x0: f64, y0: f64, x1: f64, y1: f64) -> Shape {
    let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
    let segments = (0..4).map(|k| [corners[k], corners[(k + 1) % 4]]).collect();
    Shape::Lines { segments, stroke: AXIS, width: 1.0, class: "frame" }
}

/// Smallest and largest finite value (`(0, 0)` when there is none).
fn finite_range(values: &[f64]) -> (f64, f64) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo <= hi { (lo, hi) } else { (0.0, 0.0) }
}

/// `v` mapped from `[lo, hi]` to `[0, 1]` (0.5 for a constant series).
fn scaled(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
}

/// Viridis on `ln(v + eps)` between the smallest and largest cost, with `eps` four decades
/// below the largest so that a zero cost (at the start of the path) stays finite.
fn log_colour(lo: f64, hi: f64) -> impl Fn(f64) -> Rgb {
    let eps = (hi.abs() * 1e-4).max(f64::MIN_POSITIVE);
    let (l0, l1) = ((lo + eps).max(eps).ln(), (hi + eps).ln());
    move |v: f64| {
        let t = if l1 > l0 { ((v + eps).max(eps).ln() - l0) / (l1 - l0) } else { 0.0 };
        viridis(t)
    }
}

/// Drops points closer than half a pixel to the last one kept (keeping the last point), so that
/// paths of 20 000 steps do not make 20 000 SVG coordinates.
fn thin(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let all: Vec<(f64, f64)> = points.collect();
    let mut kept: Vec<(f64, f64)> = Vec::with_capacity(all.len());
    for (k, &(x, y)) in all.iter().enumerate() {
        let far = kept.last().is_none_or(|&(px, py)| (x - px).hypot(y - py) >= 0.5);
        if far || k == all.len() - 1 {
            kept.push((x, y));
        }
    }
    kept
}

/// `(index, value)` points of a series for a line `pixels` long: every point when there are at
/// most two per pixel, else the minimum and the maximum of each pixel's bucket in time order,
/// which keeps every peak.
fn envelope(values: &[f64], pixels: usize) -> Vec<(f64, f64)> {
    let buckets = pixels.max(1);
    if values.len() <= 2 * buckets {
        return values.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
    }
    let mut points = Vec::with_capacity(2 * buckets);
    for k in 0..buckets {
        let (start, end) = (k * values.len() / buckets, (k + 1) * values.len() / buckets);
        let chunk = &values[start..end];
        let argmin =
            (0..chunk.len()).fold(0, |best, i| if chunk[i] < chunk[best] { i } else { best });
        let argmax =
            (0..chunk.len()).fold(0, |best, i| if chunk[i] > chunk[best] { i } else { best });
        let (first, second) = (argmin.min(argmax), argmin.max(argmax));
        points.push(((start + first) as f64, chunk[first]));
        if second != first {
            points.push(((start + second) as f64, chunk[second]));
        }
    }
    points
}

/// Five to seven round tick positions in `0..len`: multiples of 1, 2, 2.5 or 5 times a power of
/// ten (whole numbers only, as these are indices).
pub(crate) fn nice_ticks(len: usize) -> Vec<usize> {
    let last = len.saturating_sub(1);
    if last == 0 {
        return vec![0];
    }
    let raw = last as f64 / 6.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|k| k * power)
        .find(|s| *s >= raw && s.fract() == 0.0)
        .unwrap_or(10.0 * power)
        .max(1.0) as usize;
    (0..=last).step_by(step).collect()
}

/// Decimal digits of `x`.
fn digits(x: usize) -> usize {
    x.to_string().len()
}

/// A cost for a label: three significant digits, exponent form outside `[0.01, 1e5)`.
fn number(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if (0.01..1e5).contains(&v.abs()) {
        let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        format!("{v:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_in_range() {
        assert_eq!(nice_ticks(1), [0]);
        assert_eq!(nice_ticks(6), [0, 1, 2, 3, 4, 5]);
        assert_eq!(nice_ticks(150), [0, 25, 50, 75, 100, 125]);
        assert_eq!(nice_ticks(31), [0, 5, 10, 15, 20, 25, 30]);
        assert_eq!(nice_ticks(10_000), [0, 2000, 4000, 6000, 8000]);
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(123.456), "123");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(0.0123), "0.0123");
        assert_eq!(number(123456.0), "1.23e5");
    }

    #[test]
    fn envelope_keeps_the_extremes() {
        let values: Vec<f64> =
            (0..1000).map(|k| if k == 637 { 9.0 } else { (k % 7) as f64 }).collect();
        let points = envelope(&values, 50);
        assert!(points.len() <= 100);
        assert!(points.contains(&(637.0, 9.0)));
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "time order");
        assert_eq!(envelope(&values[..10], 50).len(), 10);
    }

    #[test]
    fn thinning_drops_points_closer_than_half_a_pixel() {
        let points = [(0.0, 0.0), (0.1, 0.0), (1.0, 0.0), (1.2, 0.0)];
        assert_eq!(thin(points.into_iter()), [(0.0, 0.0), (1.0, 0.0), (1.2, 0.0)]);
    }

    #[test]
    fn log_colours_span_viridis() {
        let colour = log_colour(0.0, 100.0);
        assert_eq!(colour(0.0), viridis(0.0));
        assert_eq!(colour(100.0), viridis(1.0));
        // One decade below the top is three quarters of the way on a four-decade scale.
        assert_eq!(colour(10.0), viridis(0.75));
    }
}
