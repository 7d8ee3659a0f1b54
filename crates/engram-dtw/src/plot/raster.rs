//! A small rasteriser for [`Scene`]s into an RGB buffer: rectangles and cells snapped to whole
//! pixels (crisp), lines anti-aliased by their distance to each pixel centre, text from the
//! built-in bitmap font at an integer scale (crisp at any size).

use super::font::{self, HEIGHT, WIDTH};
use super::scene::{Anchor, Rgb, Scene, Shape, WHITE};

/// An RGB image, 8 bits per channel, row-major from the top-left corner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `3 * width * height` bytes: red, green, blue of each pixel.
    pub pixels: Vec<u8>,
}

impl Image {
    fn new(width: u32, height: u32, background: Rgb) -> Image {
        let mut pixels = Vec::with_capacity(3 * width as usize * height as usize);
        for _ in 0..width as usize * height as usize {
            pixels.extend([background.0, background.1, background.2]);
        }
        Image { width, height, pixels }
    }

    /// The colour of pixel `(x, y)`.
    ///
    /// # Panics
    /// When `(x, y)` is outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        assert!(
            x < self.width && y < self.height,
            "Image::pixel: ({x}, {y}) is outside the {} x {} image",
            self.width,
            self.height
        );
        let k = 3 * (y as usize * self.width as usize + x as usize);
        Rgb(self.pixels[k], self.pixels[k + 1], self.pixels[k + 2])
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && x < i64::from(self.width) && y < i64::from(self.height) {
            let k = 3 * (y as usize * self.width as usize + x as usize);
            self.pixels[k..k + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// Blends `c` over pixel `(x, y)` with opacity `alpha`.
    fn blend(&mut self, x: usize, y: usize, c: Rgb, alpha: f32) {
        let k = 3 * (y * self.width as usize + x);
        for (d, s) in self.pixels[k..k + 3].iter_mut().zip([c.0, c.1, c.2]) {
            *d = (f32::from(*d) + (f32::from(s) - f32::from(*d)) * alpha).round() as u8;
        }
    }

    /// Fills the pixels whose centres lie in `[x0, x1) × [y0, y1)`.
    fn fill(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb) {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let (xa, xb) = (x0.round().clamp(0.0, w) as i64, x1.round().clamp(0.0, w) as i64);
        let (ya, yb) = (y0.round().clamp(0.0, h) as i64, y1.round().clamp(0.0, h) as i64);
        for y in ya..yb {
            for x in xa..xb {
                self.set(x, y, c);
            }
        }
    }
}

/// Draws the scene on a white image.
pub(crate) fn render(scene: &Scene) -> Image {
    let mut image = Image::new(scene.width, scene.height, WHITE);
    for shape in &scene.shapes {
        match shape {
            Shape::Rect { x, y, w, h, fill } => image.fill(*x, *y, x + w, y + h, *fill),
            Shape::Cells { x, y, w, h, cols, rows, colors } => {
                // Cell edges rounded to pixels, so that every cell is a crisp block.
                for r in 0..*rows {
                    let (y0, y1) =
                        (y + h * r as f64 / *rows as f64, y + h * (r + 1) as f64 / *rows as f64);
                    for c in 0..*cols {
                        let x0 = x + w * c as f64 / *cols as f64;
                        let x1 = x + w * (c + 1) as f64 / *cols as f64;
                        image.fill(x0, y0, x1, y1, colors[r * cols + c]);
                    }
                }
            }
            Shape::Polyline { points, stroke, width, .. } => {
                let segments: Vec<[(f64, f64); 2]> =
                    points.windows(2).map(|w| [w[0], w[1]]).collect();
                let segments =
                    if points.len() == 1 { vec![[points[0], points[0]]] } else { segments };
                stroke_segments(&mut image, &segments, *stroke, *width);
            }
            Shape::Lines { segments, stroke, width, .. } => {
                stroke_segments(&mut image, segments, *stroke, *width)
            }
            Shape::Text { x, y, text, size, anchor, vertical, color } => {
                draw_text(&mut image, (*x, *y), text, *size, *anchor, *vertical, *color)
            }
        }
    }
    image
}

/// Strokes segments of `width` pixels with round caps. Coverage is computed into a mask over
/// the segments' bounding box first (the maximum over segments), then blended once, so joints
/// and crossings are not painted twice.
fn stroke_segments(image: &mut Image, segments: &[[(f64, f64); 2]], color: Rgb, width: f64) {
    if segments.is_empty() {
        return;
    }
    let half = width / 2.0;
    let reach = half + 1.0;
    let (mut x_lo, mut y_lo, mut x_hi, mut y_hi) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for [(x0, y0), (x1, y1)] in segments {
        x_lo = x_lo.min(x0.min(*x1) - reach);
        x_hi = x_hi.max(x0.max(*x1) + reach);
        y_lo = y_lo.min(y0.min(*y1) - reach);
        y_hi = y_hi.max(y0.max(*y1) + reach);
    }
    let bx0 = x_lo.floor().max(0.0) as usize;
    let by0 = y_lo.floor().max(0.0) as usize;
    let bx1 = (x_hi.ceil().max(0.0) as usize).min(image.width as usize);
    let by1 = (y_hi.ceil().max(0.0) as usize).min(image.height as usize);
    if bx0 >= bx1 || by0 >= by1 {
        return;
    }
    let bw = bx1 - bx0;
    let mut mask = vec![0f32; bw * (by1 - by0)];
    for &[(x0, y0), (x1, y1)] in segments {
        let xa = ((x0.min(x1) - reach).floor().max(bx0 as f64) as usize).min(bx1);
        let xb = ((x0.max(x1) + reach).ceil().max(0.0) as usize).min(bx1);
        let ya = ((y0.min(y1) - reach).floor().max(by0 as f64) as usize).min(by1);
        let yb = ((y0.max(y1) + reach).ceil().max(0.0) as usize).min(by1);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        for py in ya..yb {
            for px in xa..xb {
                // Distance from the pixel centre to the segment.
                let (cx, cy) = (px as f64 + 0.5, py as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (ex, ey) = (cx - (x0 + t * dx), cy - (y0 + t * dy));
                let coverage = (half + 0.5 - (ex * ex + ey * ey).sqrt()).clamp(0.0, 1.0) as f32;
                let m = &mut mask[(py - by0) * bw + px - bx0];
                *m = m.max(coverage);
            }
        }
    }
    for py in by0..by1 {
        for px in bx0..bx1 {
            let alpha = mask[(py - by0) * bw + px - bx0];
            if alpha > 0.0 {
                image.blend(px, py, color, alpha);
            }
        }
    }
}

/// The bitmap-font scale for a cap height of `size` pixels (at least 1).
pub(crate) fn text_scale(size: f64) -> i64 {
    ((size / HEIGHT as f64).round() as i64).max(1)
}

/// Draws `text` with its baseline through `(x, y)`; `vertical` reads upwards.
fn draw_text(
    image: &mut Image,
    (x, y): (f64, f64),
    text: &str,
    size: f64,
    anchor: Anchor,
    vertical: bool,
    color: Rgb,
) {
    let s = text_scale(size);
    let advance = (WIDTH as i64 + 1) * s;
    let chars = text.chars().count() as i64;
    let length = (chars * advance - s).max(0);
    let start = match anchor {
        Anchor::Start => 0,
        Anchor::Middle => -length / 2,
        Anchor::End => -length,
    };
    let (x, y) = (x.round() as i64, y.round() as i64);
    for (k, c) in text.chars().enumerate() {
        let rows = font::glyph(c);
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..WIDTH {
                if bits & (1 << (WIDTH - 1 - col)) == 0 {
                    continue;
                }
                // (u, v): along the text from its start, and up from the baseline.
                let u0 = start + k as i64 * advance + col as i64 * s;
                let v0 = (HEIGHT - 1 - r) as i64 * s;
                for du in 0..s {
                    for dv in 0..s {
                        let (u, v) = (u0 + du, v0 + dv);
                        if vertical {
                            image.set(x - v - 1, y - u - 1, color);
                        } else {
                            image.set(x + u, y - v - 1, color);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::scene::INK;

    fn scene(shapes: Vec<Shape>) -> Scene {
        Scene { width: 20, height: 10, shapes }
    }

    #[test]
    fn rectangles_snap_to_whole_pixels() {
        let red = Rgb(255, 0, 0);
        let image = render(&scene(vec![Shape::Rect { x: 1.6, y: 2.0, w: 3.0, h: 1.0, fill: red }]));
        assert_eq!(image.pixel(1, 2), WHITE);
        assert_eq!(image.pixel(2, 2), red);
        assert_eq!(image.pixel(4, 2), red);
        assert_eq!(image.pixel(5, 2), WHITE);
        assert_eq!(image.pixel(2, 3), WHITE);
    }

    #[test]
    fn a_horizontal_line_covers_its_pixels_and_fades_at_the_edges() {
        let line = Shape::Polyline {
            points: vec![(2.0, 5.0), (18.0, 5.0)],
            stroke: INK,
            width: 2.0,
            class: "l",
        };
        let image = render(&scene(vec![line]));
        // Pixels 4 and 5 (centres 4.5 and 5.5) are fully covered; 3 and 6 not at all.
        assert_eq!(image.pixel(10, 4), INK);
        assert_eq!(image.pixel(10, 5), INK);
        assert_eq!(image.pixel(10, 3), WHITE);
        assert_eq!(image.pixel(10, 6), WHITE);
        // The round cap: the pixel just past the end is partly covered.
        let cap = image.pixel(18, 4);
        assert!(cap != INK && cap != WHITE, "{cap:?}");
    }

    #[test]
    fn text_is_drawn_upright_and_rotated() {
        let text = |vertical| Shape::Text {
            x: 2.0,
            y: 9.0,
            text: "1".into(),
            size: 7.0,
            anchor: Anchor::Start,
            vertical,
            color: INK,
        };
        // '1' has its bottom row ".###." and its top row "..#..".
        let upright = render(&scene(vec![text(false)]));
        assert_eq!(upright.pixel(2 + 1, 8), INK);
        assert_eq!(upright.pixel(2, 8), WHITE);
        assert_eq!(upright.pixel(2 + 2, 2), INK);
        assert_eq!(upright.pixel(2 + 1, 2), WHITE);
        let rotated = render(&scene(vec![text(true)]));
        // Reading upwards: the bottom row is the column just left of x, going up from y.
        assert_eq!(rotated.pixel(1, 9 - 2), INK);
        assert_eq!(rotated.pixel(1, 9 - 1), WHITE);
    }

    #[test]
    #[should_panic(expected = "Image::pixel: (20, 0) is outside the 20 x 10 image")]
    fn pixel_outside_panics() {
        render(&scene(vec![])).pixel(20, 0);
    }
}
