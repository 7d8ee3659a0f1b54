//! A small SVG writer for [`Scene`]s: one element per shape, heatmap cells merged into one
//! `<path>` per colour.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::scene::{Anchor, Rgb, Scene, Shape, WHITE};

/// The cap height of a monospace font is about 0.72 of its size.
const CAP_RATIO: f64 = 0.72;

/// The scene as a standalone SVG document.
pub(crate) fn render(scene: &Scene) -> String {
    let (w, h) = (scene.width, scene.height);
    let mut out = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="{}"/>"#, WHITE.hex());
    for shape in &scene.shapes {
        shape_svg(&mut out, shape);
    }
    out.push_str("</svg>\n");
    out
}

fn shape_svg(out: &mut String, shape: &Shape) {
    match shape {
        Shape::Rect { x, y, w, h, fill } => {
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                num(*x),
                num(*y),
                num(*w),
                num(*h),
                fill.hex()
            );
        }
        Shape::Cells { x, y, w, h, cols, rows, colors } => {
            cells_svg(out, (*x, *y, *w, *h), *cols, *rows, colors)
        }
        Shape::Polyline { points, stroke, width, class } => {
            let mut list = String::with_capacity(points.len() * 12);
            for (k, (px, py)) in points.iter().enumerate() {
                let sep = if k == 0 { "" } else { " " };
                let _ = write!(list, "{sep}{},{}", num(*px), num(*py));
            }
            let _ = writeln!(
                out,
                r#"<polyline class="{class}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round" stroke-linecap="round" points="{list}"/>"#,
                stroke.hex(),
                num(*width)
            );
        }
        Shape::Lines { segments, stroke, width, class } => {
            let mut d = String::with_capacity(segments.len() * 24);
            for [(x0, y0), (x1, y1)] in segments {
                let _ = write!(d, "M{} {}L{} {}", num(*x0), num(*y0), num(*x1), num(*y1));
            }
            let _ = writeln!(
                out,
                r#"<path class="{class}" fill="none" stroke="{}" stroke-width="{}" d="{d}"/>"#,
                stroke.hex(),
                num(*width)
            );
        }
        Shape::Text { x, y, text, size, anchor, vertical, color } => {
            let anchor = match anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            let rotate = if *vertical {
                format!(r#" transform="rotate(-90 {} {})""#, num(*x), num(*y))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{}" fill="{}" text-anchor="{anchor}"{rotate}>{}</text>"#,
                num(*x),
                num(*y),
                num(size / CAP_RATIO),
                color.hex(),
                escape(text)
            );
        }
    }
}

/// Cells in cell units (`scale`), one `<path>` per colour made of horizontal runs, with crisp
/// edges so that neighbouring cells do not show hairline seams.
fn cells_svg(
    out: &mut String,
    (x, y, w, h): (f64, f64, f64, f64),
    cols: usize,
    rows: usize,
    colors: &[Rgb],
) {
    let _ = writeln!(
        out,
        r#"<g class="cells" shape-rendering="crispEdges" transform="translate({} {}) scale({} {})">"#,
        num(x),
        num(y),
        num6(w / cols as f64),
        num6(h / rows as f64)
    );
    let mut paths: BTreeMap<[u8; 3], String> = BTreeMap::new();
    for (r, row) in colors.chunks_exact(cols).enumerate() {
        let mut c = 0;
        while c < cols {
            let run = row[c..].iter().take_while(|&&k| k == row[c]).count();
            let d = paths.entry([row[c].0, row[c].1, row[c].2]).or_default();
            let _ = write!(d, "M{c} {r}h{run}v1h-{run}z");
            c += run;
        }
    }
    for (rgb, d) in paths {
        let _ = writeln!(out, r#"<path fill="{}" d="{d}"/>"#, Rgb(rgb[0], rgb[1], rgb[2]).hex());
    }
    out.push_str("</g>\n");
}

/// A coordinate with at most two decimals and no trailing zeros.
fn num(v: f64) -> String {
    trim(format!("{v:.2}"))
}

fn num6(v: f64) -> String {
    trim(format!("{v:.6}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" { "0".to_string() } else { t.to_string() }
    } else {
        s
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::scene::INK;

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(1.0 / 3.0), "0.33");
        assert_eq!(num(-0.001), "0");
    }

    #[test]
    fn cells_merge_runs_of_one_colour() {
        let (a, b) = (Rgb(0, 0, 0), Rgb(255, 0, 0));
        let scene = Scene {
            width: 10,
            height: 10,
            shapes: vec![Shape::Cells {
                x: 0.0,
                y: 0.0,
                w: 10.0,
                h: 10.0,
                cols: 3,
                rows: 2,
                colors: vec![a, a, b, b, b, b],
            }],
        };
        let svg = render(&scene);
        assert!(svg.contains(r##"<path fill="#000000" d="M0 0h2v1h-2z"/>"##), "{svg}");
        assert!(svg.contains(r##"<path fill="#ff0000" d="M2 0h1v1h-1zM0 1h3v1h-3z"/>"##), "{svg}");
    }

    #[test]
    fn text_is_escaped() {
        let scene = Scene {
            width: 10,
            height: 10,
            shapes: vec![Shape::Text {
                x: 1.0,
                y: 2.0,
                text: "a<b & \"c\"".into(),
                size: 7.2,
                anchor: Anchor::Middle,
                vertical: true,
                color: INK,
            }],
        };
        let svg = render(&scene);
        assert!(svg.contains(">a&lt;b &amp; &quot;c&quot;</text>"), "{svg}");
        assert!(svg.contains(r#"font-size="10""#) && svg.contains("rotate(-90 1 2)"), "{svg}");
    }
}
