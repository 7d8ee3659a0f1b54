//! Training curves as SVG: loss and accuracy per epoch, training beside validation.

use std::fmt::Write;

use crate::train::EpochLog;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 240.0;
const MARGIN: f64 = 48.0;
const TRAIN_COLOUR: &str = "#1f77b4";
const VALID_COLOUR: &str = "#d62728";

/// Two panels, loss and accuracy against the epoch, each with a training and a validation
/// curve; `title` goes on top. An empty history gives empty axes.
///
/// # Example
/// ```
/// use engram_tasks::train::EpochLog;
/// let log = |epoch, loss, accuracy| EpochLog {
///     epoch, train_loss: loss, train_accuracy: accuracy, valid_loss: loss * 1.1,
///     valid_accuracy: accuracy * 0.9, lr: 1e-3, seconds: 1.0,
/// };
/// let svg = engram_tasks::plot::curves_svg("TREC, transformer", &[log(1, 1.2, 0.5), log(2, 0.6, 0.8)]);
/// assert!(svg.starts_with("<svg") && svg.contains("accuracy"));
/// ```
pub fn curves_svg(title: &str, history: &[EpochLog]) -> String {
    let width = 2.0 * (PANEL_W + MARGIN) + MARGIN;
    let height = PANEL_H + 2.0 * MARGIN + 24.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        width / 2.0,
        escape(title)
    );
    let epochs: Vec<f64> = history.iter().map(|log| log.epoch as f64).collect();
    let series = |f: fn(&EpochLog) -> f64| history.iter().map(f).collect::<Vec<f64>>();
    let panels = [
        ("loss", series(|l| l.train_loss), series(|l| l.valid_loss)),
        ("accuracy", series(|l| l.train_accuracy), series(|l| l.valid_accuracy)),
    ];
    for (i, (name, train, valid)) in panels.iter().enumerate() {
        let x0 = MARGIN + i as f64 * (PANEL_W + MARGIN);
        panel(&mut svg, x0, MARGIN + 8.0, name, &epochs, train, valid);
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(svg: &mut String, x0: f64, y0: f64, name: &str, x: &[f64], a: &[f64], b: &[f64]) {
    let finite = a.iter().chain(b).copied().filter(|v| v.is_finite());
    let (lo, hi) =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { pad_range(lo, hi) } else { (0.0, 1.0) };
    let x_max = x.last().copied().unwrap_or(1.0).max(1.0);
    let px = |e: f64| x0 + if x_max > 1.0 { (e - 1.0) / (x_max - 1.0) * PANEL_W } else { 0.0 };
    let py = |v: f64| y0 + PANEL_H - (v - lo) / (hi - lo) * PANEL_H;
    let _ = writeln!(
        svg,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" \
         stroke=\"#888\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{name}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>",
        x0 + PANEL_W / 2.0,
        y0 - 6.0,
        x0 + PANEL_W / 2.0,
        y0 + PANEL_H + 32.0
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{v:.3}</text>",
            x0 - 4.0,
            py(v) + 3.0
        );
    }
    let ticks = x.len().clamp(1, 6);
    for k in 0..ticks {
        let e = 1.0 + (x_max - 1.0) * k as f64 / (ticks.max(2) - 1) as f64;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
            px(e),
            y0 + PANEL_H + 14.0,
            e.round()
        );
    }
    for (values, colour, label, row) in
        [(a, TRAIN_COLOUR, "train", 0.0), (b, VALID_COLOUR, "valid", 1.0)]
    {
        let points: Vec<String> = x
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .map(|(&e, &v)| format!("{:.1},{:.1}", px(e), py(v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>",
            points.join(" "),
            x0 + PANEL_W - 40.0,
            y0 + 16.0 + 14.0 * row
        );
    }
}

fn pad_range(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).max(1e-6);
    (lo - 0.05 * span, hi + 0.05 * span)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epoch: usize, loss: f64, accuracy: f64) -> EpochLog {
        EpochLog {
            epoch,
            train_loss: loss,
            train_accuracy: accuracy,
            valid_loss: loss + 0.1,
            valid_accuracy: accuracy - 0.1,
            lr: 1e-3,
            seconds: 1.0,
        }
    }

    #[test]
    fn draws_one_point_per_epoch_for_each_curve() {
        let svg = curves_svg("a <b>", &[log(1, 2.0, 0.4), log(2, 1.0, 0.7), log(3, 0.5, 0.9)]);
        let polylines: Vec<&str> = svg.split("<polyline").skip(1).collect();
        assert_eq!(polylines.len(), 4);
        for line in polylines {
            let points = line.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
            assert_eq!(points.split(' ').count(), 3, "{points}");
        }
        assert!(svg.contains("a &lt;b&gt;"));
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    }

    #[test]
    fn empty_history_still_gives_a_document() {
        let svg = curves_svg("nothing yet", &[]);
        assert!(svg.ends_with("</svg>\n"));
    }
}
