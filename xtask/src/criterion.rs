//! Criterion's result files: finding the ones a run wrote, and the table `xtask bench` prints.
//!
//! Criterion keeps each benchmark in `<home>/<group>/<function>/<value>/new/` with
//! `benchmark.json` (ids and throughput) and `estimates.json` (mean, median, ... in ns). The
//! folder names are mangled ids, so the ids are read from the files instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::backend::Backend;
use crate::json::Json;

/// One benchmark's result, from `<id>/new/benchmark.json` and `estimates.json`.
#[derive(Debug, PartialEq)]
pub struct Estimate {
    pub group: String,
    /// `function/value`, e.g. `engram/flex/b8h8s128`.
    pub case: String,
    /// The value part of the id (`b8h8s128`), which orders the rows.
    pub params: String,
    pub median_ns: f64,
    /// Criterion's throughput kind (`Elements`, `Bytes`, ...) and amount per iteration.
    pub throughput: Option<(String, f64)>,
}

/// The results under `dir` written at or after `since`, sorted by group, then parameters, then
/// function, so that implementations run on the same input sit on adjacent rows.
pub fn collect(dir: &Path, since: SystemTime) -> Result<Vec<Estimate>> {
    let mut found = Vec::new();
    find_new_benchmarks(dir, since, &mut found)?;
    let mut estimates = found.iter().map(|d| read_estimate(d)).collect::<Result<Vec<_>>>()?;
    estimates.sort_by(|a, b| (&a.group, &a.params, &a.case).cmp(&(&b.group, &b.params, &b.case)));
    Ok(estimates)
}

/// Folders named `new` holding a `benchmark.json` no older than `since`.
fn find_new_benchmarks(dir: &Path, since: SystemTime, found: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let benchmark = path.join("benchmark.json");
        if path.file_name().is_some_and(|n| n == "new") && benchmark.is_file() {
            let modified = fs::metadata(&benchmark)?.modified()?;
            if modified >= since {
                found.push(path);
            }
        } else {
            find_new_benchmarks(&path, since, found)?;
        }
    }
    Ok(())
}

fn read_estimate(dir: &Path) -> Result<Estimate> {
    let read = |name: &str| -> Result<Json> {
        let path = dir.join(name);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Json::parse(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let benchmark = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let text = |key: &str| benchmark.get(key).and_then(Json::as_str).map(str::to_owned);
    let group = text("group_id").with_context(|| format!("no group_id in {}", dir.display()))?;
    let case = [text("function_id"), text("value_str")].into_iter().flatten().collect::<Vec<_>>();
    let median_ns = estimates
        .path(&["median", "point_estimate"])
        .and_then(Json::as_f64)
        .with_context(|| format!("no median in {}/estimates.json", dir.display()))?;
    // Serialized as `{"Elements": 1048576}`, or null without a throughput.
    let throughput = match benchmark.get("throughput") {
        Some(Json::Object(entries)) => {
            entries.first().and_then(|(kind, amount)| Some((kind.clone(), amount.as_f64()?)))
        }
        _ => None,
    };
    let params = text("value_str").unwrap_or_default();
    Ok(Estimate { group, case: case.join("/"), params, median_ns, throughput })
}

/// A plain-text table: group, case, median time, throughput.
pub fn table(backend: Backend, results: &[Estimate]) -> String {
    let mut out = format!("backend: {backend}\n");
    if results.is_empty() {
        out.push_str("(no benchmark results from this run: did the filter match anything?)\n");
        return out;
    }
    let mut rows = vec![["group".to_owned(), "case".into(), "median".into(), "throughput".into()]];
    for r in results {
        let throughput =
            r.throughput.as_ref().map(|(kind, amount)| rate(kind, amount * 1e9 / r.median_ns));
        rows.push([
            r.group.clone(),
            r.case.clone(),
            duration(r.median_ns),
            throughput.unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> =
        (0..4).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        // Text columns align left, numbers right, as in criterion's own summaries.
        let line = format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1.23 ms` from nanoseconds, with three significant digits.
fn duration(ns: f64) -> String {
    let (value, unit) = match ns {
        n if n >= 1e9 => (n / 1e9, "s"),
        n if n >= 1e6 => (n / 1e6, "ms"),
        n if n >= 1e3 => (n / 1e3, "µs"),
        n => (n, "ns"),
    };
    format!("{} {unit}", significant(value))
}

/// `85.1 Melem/s` from a rate per second, in SI prefixes (criterion's `Bytes` uses binary ones;
/// SI keeps the columns comparable and the table says which it is).
fn rate(kind: &str, per_second: f64) -> String {
    let unit = match kind {
        "Elements" => "elem/s",
        "Bytes" | "BytesDecimal" => "B/s",
        "Bits" => "bit/s",
        other => other,
    };
    let (value, prefix) = match per_second {
        r if r >= 1e12 => (r / 1e12, "T"),
        r if r >= 1e9 => (r / 1e9, "G"),
        r if r >= 1e6 => (r / 1e6, "M"),
        r if r >= 1e3 => (r / 1e3, "k"),
        r => (r, ""),
    };
    format!("{} {prefix}{unit}", significant(value))
}

fn significant(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Writes a result in criterion's layout under a fresh temporary folder.
    fn write_result(home: &Path, dir: &str, benchmark: &str, median_ns: f64) {
        let new = home.join(dir).join("new");
        fs::create_dir_all(&new).unwrap();
        fs::write(new.join("benchmark.json"), benchmark).unwrap();
        let estimate = format!(r#"{{"median":{{"point_estimate":{median_ns}}}}}"#);
        fs::write(new.join("estimates.json"), estimate).unwrap();
    }

    fn temp_home(name: &str) -> PathBuf {
        let home = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&home);
        home
    }

    #[test]
    fn collects_this_runs_results_into_a_table() {
        let home = temp_home("criterion");
        write_result(
            &home,
            "tensor_softmax/engram_flex/b8h8s128",
            r#"{"group_id":"tensor/softmax","function_id":"engram/flex","value_str":"b8h8s128",
                "throughput":{"Elements":524288},"full_id":"x","directory_name":"x","title":"x"}"#,
            2_000_000.0,
        );
        write_result(
            &home,
            "misc/plain",
            r#"{"group_id":"misc","function_id":null,"value_str":"plain","throughput":null}"#,
            850.0,
        );
        let results = collect(&home, SystemTime::now() - Duration::from_secs(60)).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].case, "engram/flex/b8h8s128");
        assert_eq!(results[1].throughput, Some(("Elements".into(), 524288.0)));
        let table = table(Backend::Flex, &results);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "backend: flex");
        assert_eq!(lines[2], "misc            plain                  850 ns");
        assert_eq!(lines[3], "tensor/softmax  engram/flex/b8h8s128  2.00 ms  262 Melem/s");
        // Results older than the run are someone else's.
        let later = SystemTime::now() + Duration::from_secs(60);
        assert!(collect(&home, later).unwrap().is_empty());
        fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn units_scale_with_the_value() {
        assert_eq!(duration(1.5e9), "1.50 s");
        assert_eq!(duration(12_345.0), "12.3 µs");
        assert_eq!(rate("Bytes", 2.5e9), "2.50 GB/s");
        assert_eq!(rate("Elements", 999.0), "999 elem/s");
    }
}
