//! `cargo xtask eval ucr`: 1-NN error rates on the UCR datasets present in the data folder, next
//! to the archive's own table (`DataSummary.csv`), through the release `engram dtw knn`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::UsageError;
use crate::json::Json;
use crate::run::{self, cargo, workspace_root};

/// Error rates differing from the archive's by more than this count as a mismatch (the archive
/// prints four decimals).
const MATCH_TOLERANCE: f64 = 5e-4;

pub fn eval(args: &[String]) -> Result<()> {
    let (what, rest) = args
        .split_first()
        .ok_or_else(|| UsageError("eval needs a task: ucr, classify or babi".into()))?;
    if what == "classify" {
        return crate::eval_classify::classify(rest, data_dir(None));
    }
    if what == "babi" {
        return crate::eval_babi::babi(rest, data_dir(None));
    }
    let data = match rest {
        [] => data_dir(None),
        [flag, dir] if flag == "--data" => data_dir(Some(dir)),
        _ => return Err(UsageError(format!("eval {what} takes only --data DIR")).into()),
    };
    match what.as_str() {
        "ucr" => ucr(&data.join("ucr")),
        other => {
            Err(UsageError(format!("unknown eval task `{other}` (known: ucr, classify, babi)"))
                .into())
        }
    }
}

/// `--data`, else `ENGRAM_DATA`, else `../shared/data` beside the checkout.
fn data_dir(flag: Option<&String>) -> PathBuf {
    flag.map(PathBuf::from)
        .or_else(|| std::env::var_os("ENGRAM_DATA").map(PathBuf::from))
        .unwrap_or_else(|| workspace_root().join("../shared/data"))
}

/// One dataset's row of the archive's table.
struct Archive {
    euclidean: f64,
    learned: f64,
    learned_percent: String,
    full: f64,
}

fn ucr(dir: &Path) -> Result<()> {
    let summary = dir.join("DataSummary.csv");
    let table = fs::read_to_string(&summary)
        .with_context(|| format!("cannot read the archive's table {}", summary.display()))?;
    let mut datasets: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    datasets.sort();
    if datasets.is_empty() {
        bail!("no UCR datasets (folders) in {}", dir.display());
    }

    let engram = engram_binary()?;

    println!(
        "{:<12} {:>15} {:>22} {:>15} {:>8}",
        "dataset", "ED ours/UCR", "DTW learned ours/UCR", "DTW full ours/UCR", "time"
    );
    let mut mismatches = Vec::new();
    for name in &datasets {
        let archive = archive_row(&table, name)
            .with_context(|| format!("{name} is not in {}", summary.display()))?;
        let (train, test) = (
            dir.join(name).join(format!("{name}_TRAIN.tsv")),
            dir.join(name).join(format!("{name}_TEST.tsv")),
        );
        let started = Instant::now();
        let euclidean = knn(&engram, &train, &test, Some("0"))?;
        let learned = knn(&engram, &train, &test, None)?;
        let full = knn(&engram, &train, &test, Some("full"))?;
        let seconds = started.elapsed().as_secs_f64();
        let percent = learned.1.map_or("?".to_owned(), |p| format!("{p}"));
        println!(
            "{:<12} {:>15} {:>22} {:>15} {:>7.1}s",
            name,
            format!("{:.4}/{:.4}", euclidean.0, archive.euclidean),
            format!(
                "{:.4} ({percent})/{:.4} ({})",
                learned.0, archive.learned, archive.learned_percent
            ),
            format!("{:.4}/{:.4}", full.0, archive.full),
            seconds,
        );
        for (what, ours, theirs) in [
            ("ED", euclidean.0, archive.euclidean),
            ("DTW learned", learned.0, archive.learned),
            ("DTW full", full.0, archive.full),
        ] {
            if (ours - theirs).abs() > MATCH_TOLERANCE {
                mismatches.push(format!("{name} {what}: ours {ours:.4}, archive {theirs:.4}"));
            }
        }
    }
    if !mismatches.is_empty() {
        bail!("error rates differ from the archive's:\n  {}", mismatches.join("\n  "));
    }
    println!("all error rates match the archive's table");
    Ok(())
}

/// Test error rate and learned window percent of `engram dtw knn`.
fn knn(
    engram: &Path,
    train: &Path,
    test: &Path,
    window: Option<&str>,
) -> Result<(f64, Option<f64>)> {
    let mut cmd = Command::new(engram);
    cmd.args(["--json", "dtw", "knn", "--train"]).arg(train).arg("--test").arg(test);
    if let Some(window) = window {
        cmd.args(["--window", window]);
    }
    let line = run::display(&cmd);
    eprintln!("$ {line}");
    let output = cmd.output().with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let report = Json::parse(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("`{line}` printed no JSON report"))?;
    let error = report
        .get("test_error")
        .and_then(Json::as_f64)
        .with_context(|| format!("`{line}`: no test_error in the report"))?;
    Ok((error, report.get("learned_percent").and_then(Json::as_f64)))
}

/// The dataset's row of DataSummary.csv: `ID,Type,Name,Train,Test,Class,Length,ED (w=0),
/// DTW (learned_w),DTW (w=100),...`, the learned column written `0.0867 (0)`.
fn archive_row(table: &str, name: &str) -> Option<Archive> {
    let fields: Vec<&str> = table
        .lines()
        .map(|line| line.split(',').map(str::trim).collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&name))?;
    let number = |i: usize| fields.get(i)?.split_whitespace().next()?.parse::<f64>().ok();
    let learned_percent =
        fields.get(8)?.split_whitespace().nth(1)?.trim_matches(|c| c == '(' || c == ')').to_owned();
    Some(Archive { euclidean: number(7)?, learned: number(8)?, learned_percent, full: number(9)? })
}

/// Where cargo puts builds: `CARGO_TARGET_DIR` if set (as `.ci/run` does), else `target/`.
/// The `engram` binary the evaluations run: `$ENGRAM_BIN` if set (a build kept aside, so that
/// rebuilding the workspace during a long evaluation cannot change what later runs use), else
/// the release build, built now.
pub(crate) fn engram_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ENGRAM_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("ENGRAM_BIN={} is not a file", bin.display());
        }
        eprintln!("using ENGRAM_BIN={}", bin.display());
        return Ok(bin);
    }
    run::run(&mut cargo(["build", "--release", "-p", "engram-cli"]))?;
    Ok(target_dir().join("release/engram"))
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_archive_row_including_the_learned_window() {
        let table = "ID,Type,Name,Train ,Test ,Class,Length,ED (w=0),DTW (learned_w) ,DTW (w=100),Default rate,Donor\n\
                     31,Motion,GunPoint,50,150,2,150,0.0867, 0.0867 (0) ,0.0933,0.4933,A. R\n";
        let row = archive_row(table, "GunPoint").unwrap();
        assert_eq!((row.euclidean, row.learned, row.full), (0.0867, 0.0867, 0.0933));
        assert_eq!(row.learned_percent, "0");
        assert!(archive_row(table, "CBF").is_none());
    }
}
