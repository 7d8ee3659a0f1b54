//! `engram dtw plot` writing real files: trycmd's cases run without a sandbox here, so the cases
//! that write a picture run the binary in a scratch folder of their own.

mod common;

use std::fs;
use std::path::Path;

use common::{engram, stdout};

fn scratch(name: &str) -> std::path::PathBuf {
    common::scratch(&format!("dtw-plot-{name}"))
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read scratch")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const PAIR: &str = "0 1 2 3 2 1\n0 0 1 2 3 2 1\n";

#[test]
fn heatmap_svg_holds_the_path_and_leaves_no_temporary_file() {
    let dir = scratch("svg");
    let out = stdout(&engram(&dir, &["dtw", "plot", "--out", "plot.svg", "--window", "1"], PAIR));
    assert_eq!(out, "distance 0 path length 7 wrote plot.svg\n");
    let svg = fs::read_to_string(dir.join("plot.svg")).expect("plot.svg");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\""), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    let line = svg.lines().find(|l| l.contains(r#"class="warping-path""#)).expect("path");
    let points = line.split("points=\"").nth(1).expect("points").trim_end_matches("\"/>");
    assert_eq!(points.split(' ').count(), 7, "{line}");
    assert!(svg.contains("window radius 1: distance 0.0000"), "the default title");
    assert_eq!(files(&dir), ["plot.svg"]);
}

#[test]
fn alignment_png_reports_json_and_writes_a_png() {
    let dir = scratch("png");
    let args = ["dtw", "plot", "--kind", "alignment", "--out", "aligned.png", "--json"];
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&engram(&dir, &args, PAIR))).expect("json");
    assert_eq!(report["path_length"], 7);
    assert_eq!(report["distance"], 0.0);
    assert_eq!(report["kind"], "alignment");
    assert_eq!(report["file"], "aligned.png");
    let png = fs::read(dir.join("aligned.png")).expect("aligned.png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width 1000, height 500, 8-bit RGB.
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1000);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 500);
    assert_eq!(png[24..26], [8, 2]);
    assert_eq!(files(&dir), ["aligned.png"]);
}

#[test]
fn rows_pick_two_labelled_series_and_name_them() {
    let dir = scratch("rows");
    let args = ["dtw", "plot", "--labelled", "--rows", "2,0", "--metric", "abs", "--out", "r.svg"];
    let out = stdout(&engram(&dir, &args, "1 0 1 2\n2 5 5 5\n1 0 0 1 2\n"));
    assert_eq!(out, "distance 0 path length 4 wrote r.svg\n");
    let svg = fs::read_to_string(dir.join("r.svg")).expect("r.svg");
    assert!(svg.contains(">row 2 (class 1) (i)</text>"), "{svg}");
    assert!(svg.contains(">row 0 (class 1) (j)</text>"), "{svg}");
}

#[test]
fn an_existing_file_is_replaced_and_an_unwritable_one_fails_with_exit_1() {
    let dir = scratch("replace");
    fs::write(dir.join("p.svg"), "old").expect("old file");
    stdout(&engram(&dir, &["dtw", "plot", "--out", "p.svg"], PAIR));
    assert!(fs::read_to_string(dir.join("p.svg")).expect("p.svg").starts_with("<svg"));
    let output = engram(&dir, &["dtw", "plot", "--out", "missing/p.png"], PAIR);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: cannot write missing/p.png\n  caused by: "), "{stderr}");
    assert_eq!(files(&dir), ["p.svg"]);
}
