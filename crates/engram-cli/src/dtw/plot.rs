//! `engram dtw plot`: the accumulated-cost heatmap or the alignment of two series, written as
//! SVG or PNG (chosen by the extension of `--out`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use engram_dtw::plot::{self, CostGrid, PlotOptions};
use engram_dtw::{DtwOptions, dtw_path, dtw_path_low_memory};
use serde_json::json;

use super::{Compare, Inputs, Pick, pick_pair, print_json};

/// Series longer than this (product of the lengths) get their path by checkpointed
/// recomputation instead of the full matrix (4 M cells, 32 MB).
const FULL_MATRIX_CELLS: usize = 4 << 20;

#[derive(Debug, Args)]
pub(super) struct PlotArgs {
    #[command(flatten)]
    inputs: Inputs,
    #[command(flatten)]
    pick: Pick,
    #[command(flatten)]
    compare: Compare,
    /// The file to write: `.svg` or `.png`.
    #[arg(long, value_name = "FILE", value_parser = parse_out)]
    out: OutFile,
    /// What to draw.
    #[arg(long, value_enum, default_value_t = Kind::Heatmap)]
    kind: Kind,
    /// Width in pixels (default 800 for the heatmap, 1000 for the alignment).
    #[arg(long, value_parser = clap::value_parser!(u32).range(200..=10_000))]
    width: Option<u32>,
    /// Height in pixels (default 800 for the heatmap, 500 for the alignment).
    #[arg(long, value_parser = clap::value_parser!(u32).range(200..=10_000))]
    height: Option<u32>,
    /// A title above the plot (default: the window, metric and distance).
    #[arg(long)]
    title: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// The accumulated-cost matrix (log colour scale) with the warping path, the first series
    /// along the left edge and the second along the bottom.
    Heatmap,
    /// The two series one above the other, with lines joining aligned points.
    Alignment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

#[derive(Debug, Clone)]
struct OutFile {
    path: PathBuf,
    format: Format,
}

fn parse_out(text: &str) -> Result<OutFile, String> {
    let path = PathBuf::from(text);
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("svg") => Format::Svg,
        Some("png") => Format::Png,
        _ => return Err(format!("`{text}` must end in .svg or .png (the format comes from it)")),
    };
    Ok(OutFile { path, format })
}

pub(super) fn run(args: PlotArgs, json: bool) -> anyhow::Result<()> {
    let set = super::read_inputs(&args.inputs)?;
    let (a, b, names) = pick_pair(&set, &args.pick)?;
    let window = args.compare.window.resolve(a.len().max(b.len()))?;
    let options = DtwOptions::new().with_cost(args.compare.metric.cost()).with_window(window);
    let alignment = if a.len().saturating_mul(b.len()) <= FULL_MATRIX_CELLS {
        dtw_path(a, b, &options)?
    } else {
        dtw_path_low_memory(a, b, &options)?
    };
    let distance = options.cost_to_distance(alignment.cost);
    let (width, height) = match args.kind {
        Kind::Heatmap => (800, 800),
        Kind::Alignment => (1000, 500),
    };
    let title = args.title.unwrap_or_else(|| {
        let metric = args.compare.metric.to_possible_value().map(|v| v.get_name().to_owned());
        format!(
            "DTW {}, window {}: distance {distance:.4}",
            metric.unwrap_or_default(),
            super::describe_window(window)
        )
    });
    let look = PlotOptions::new()
        .with_size(args.width.unwrap_or(width), args.height.unwrap_or(height))
        .with_title(title)
        .with_names(names[0].clone(), names[1].clone());
    let path = &alignment.path;
    let bytes = match (args.kind, args.out.format) {
        (Kind::Heatmap, format) => {
            // One block per pixel at most; the SVG writer shrinks further.
            let grid = CostGrid::accumulated(a, b, &options, 800, 800)?;
            match format {
                Format::Svg => plot::heatmap_svg(a, b, &grid, path, &look).into_bytes(),
                Format::Png => plot::heatmap_png(a, b, &grid, path, &look),
            }
        }
        (Kind::Alignment, Format::Svg) => plot::alignment_svg(a, b, path, &look).into_bytes(),
        (Kind::Alignment, Format::Png) => plot::alignment_png(a, b, path, &look),
    };
    write_atomically(&args.out.path, &bytes)?;
    let file = args.out.path.display().to_string();
    if json {
        return print_json(&json!({
            "distance": distance,
            "cost": alignment.cost,
            "path_length": path.len(),
            "window": format!("{window:?}"),
            "kind": format!("{:?}", args.kind).to_lowercase(),
            "file": file,
        }));
    }
    println!("distance {distance} path length {} wrote {file}", path.len());
    Ok(())
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so that a
/// reader never sees half a picture and a failed run leaves any old file in place.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let Some(name) = path.file_name() else {
        bail!("`{}` names no file", path.display());
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        // Best effort: the temporary file may not exist.
        let _ = fs::remove_file(&temp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_extension() {
        assert_eq!(parse_out("a/b.SVG").unwrap().format, Format::Svg);
        assert_eq!(parse_out("b.png").unwrap().format, Format::Png);
        assert!(parse_out("b.jpg").unwrap_err().contains("must end in .svg or .png"));
        assert!(parse_out("png").is_err());
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = std::env::temp_dir().join(format!("engram-plot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("p.svg");
        write_atomically(&target, b"old").unwrap();
        write_atomically(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no/such/dir/p.svg");
        let err = write_atomically(&missing, b"x").unwrap_err();
        assert!(format!("{err}").starts_with("cannot write "), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
