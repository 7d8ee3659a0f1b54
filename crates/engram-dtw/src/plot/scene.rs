//! What a plot is made of, independent of the output format: a list of shapes in pixel
//! coordinates (origin top left, `y` down) that the SVG writer and the rasteriser both draw.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`, as SVG wants it.
    pub(crate) fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

pub(crate) const WHITE: Rgb = Rgb(255, 255, 255);
pub(crate) const INK: Rgb = Rgb(34, 34, 34);
pub(crate) const AXIS: Rgb = Rgb(120, 120, 120);
/// Cells outside the window.
pub(crate) const BLANK: Rgb = Rgb(221, 221, 221);
/// The warping path on the heatmap: red reads on every part of viridis.
pub(crate) const PATH: Rgb = Rgb(230, 40, 40);
/// The first series (matplotlib's tab:blue) and the second (tab:orange).
pub(crate) const FIRST: Rgb = Rgb(31, 119, 180);
pub(crate) const SECOND: Rgb = Rgb(255, 127, 14);
/// The lines joining aligned points.
pub(crate) const LINK: Rgb = Rgb(150, 150, 150);

/// Viridis at nine evenly spaced stops (R's `viridisLite::viridis(9)`), interpolated linearly:
/// close enough to matplotlib's 256-entry table for a heatmap, and perceptually uniform.
const VIRIDIS: [Rgb; 9] = [
    Rgb(0x44, 0x01, 0x54),
    Rgb(0x47, 0x2d, 0x7b),
    Rgb(0x3b, 0x52, 0x8b),
    Rgb(0x2c, 0x72, 0x8e),
    Rgb(0x21, 0x90, 0x8c),
    Rgb(0x27, 0xad, 0x81),
    Rgb(0x5d, 0xc8, 0x63),
    Rgb(0xaa, 0xdc, 0x32),
    Rgb(0xfd, 0xe7, 0x25),
];

/// Viridis at `t` in `[0, 1]` (clamped), quantised to 256 levels so that equal-looking cells
/// share one colour (the SVG writer merges runs of equal colour).
pub(crate) fn viridis(t: f64) -> Rgb {
    let level = (t.clamp(0.0, 1.0) * 255.0).round() / 255.0;
    let x = level * (VIRIDIS.len() - 1) as f64;
    let k = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Where a text's `x` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing to draw. Coordinates are pixels, origin top left.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// A filled rectangle.
    Rect { x: f64, y: f64, w: f64, h: f64, fill: Rgb },
    /// A `cols × rows` grid of cells filling the rectangle, row 0 at the top.
    Cells { x: f64, y: f64, w: f64, h: f64, cols: usize, rows: usize, colors: Vec<Rgb> },
    /// Connected line segments; `class` names it in the SVG.
    Polyline { points: Vec<(f64, f64)>, stroke: Rgb, width: f64, class: &'static str },
    /// Separate line segments.
    Lines { segments: Vec<[(f64, f64); 2]>, stroke: Rgb, width: f64, class: &'static str },
    /// One line of text; `size` is the cap height in pixels; `vertical` turns it 90° counter-
    /// clockwise (reading upwards), about `(x, y)`.
    Text { x: f64, y: f64, text: String, size: f64, anchor: Anchor, vertical: bool, color: Rgb },
}

/// A whole picture.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scene {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) shapes: Vec<Shape>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), VIRIDIS[0]);
        assert_eq!(viridis(1.0), VIRIDIS[8]);
        assert_eq!(viridis(0.5), VIRIDIS[4]);
        assert_eq!(viridis(-3.0), VIRIDIS[0]);
        assert_eq!(viridis(f64::INFINITY), VIRIDIS[8]);
        // Brightness (the green channel here) grows monotonically.
        let greens: Vec<u8> = (0..=20).map(|k| viridis(k as f64 / 20.0).1).collect();
        assert!(greens.windows(2).all(|w| w[0] <= w[1]), "{greens:?}");
    }

    #[test]
    fn hex_is_lowercase_rrggbb() {
        assert_eq!(Rgb(255, 0, 16).hex(), "#ff0010");
    }
}
