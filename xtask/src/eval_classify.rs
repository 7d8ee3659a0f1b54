//! `cargo xtask eval classify`: trains and evaluates the recipes in `recipes/classify/` on TREC,
//! SST-2 (trained on sentences, and on phrases as Kim did) and MR (10-fold cross-validation)
//! through the release `engram train classify`, and writes the rows into the table of
//! `docs/results.md` next to published numbers (rows of other datasets and models stay).
//!
//! The recipe of a model is `recipes/classify/<dataset>/<model>.json` where that file exists,
//! else `recipes/classify/<model>.json`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::UsageError;
use crate::json::Json;
use crate::run::{self, workspace_root};

/// Published test accuracies of models trained from scratch, for the table.
const ANCHORS: [(&str, &str); 4] = [
    ("trec", "Kim CNN-rand 91.2; C-LSTM 94.6"),
    ("sst2", "Kim CNN-rand 82.7; BiLSTM + GloVe 87.5"),
    ("sst2-phrases", "Kim CNN-rand 82.7; BiLSTM + GloVe 87.5"),
    ("mr", "Kim CNN-rand 76.1"),
];
const START: &str = "<!-- eval classify: start -->";
const END: &str = "<!-- eval classify: end -->";

struct Options {
    data: PathBuf,
    datasets: Vec<String>,
    models: Vec<String>,
    folds: usize,
}

fn parse(args: &[String], data: PathBuf) -> Result<Options> {
    let mut options = Options {
        data,
        datasets: ["trec", "sst2", "sst2-phrases", "mr"].map(String::from).to_vec(),
        models: ["transformer", "bilstm"].map(String::from).to_vec(),
        folds: 10,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| UsageError(format!("eval classify: {flag} needs a value")))?;
        let list = || value.split(',').map(String::from).collect::<Vec<_>>();
        match flag.as_str() {
            "--data" => options.data = PathBuf::from(value),
            "--datasets" => options.datasets = list(),
            "--models" => options.models = list(),
            "--folds" => {
                options.folds = value.parse().ok().filter(|&n| n >= 2).ok_or_else(|| {
                    UsageError(format!("eval classify: --folds must be at least 2, got {value}"))
                })?
            }
            _ => return Err(UsageError(format!("eval classify: unknown flag {flag}")).into()),
        }
    }
    for model in &options.models {
        if !recipe("", model).exists() {
            let known = "transformer, bilstm (files in recipes/classify/)";
            return Err(
                UsageError(format!("eval classify: no recipe `{model}`; known: {known}")).into()
            );
        }
    }
    Ok(options)
}

/// The recipe of `model` for `dataset`: the dataset's own if there is one, else the default.
fn recipe(dataset: &str, model: &str) -> PathBuf {
    let dir = workspace_root().join("recipes/classify");
    let file = format!("{model}.json");
    let own = dir.join(dataset).join(&file);
    if !dataset.is_empty() && own.exists() { own } else { dir.join(file) }
}

/// One row of the results table.
struct Row {
    dataset: String,
    model: String,
    accuracy: f64,
    spread: Option<f64>,
    seconds: f64,
    command: String,
}

pub fn classify(args: &[String], data: PathBuf) -> Result<()> {
    let options = parse(args, data)?;
    let engram = crate::eval::engram_binary()?;
    let out = crate::eval::target_dir().join("eval/classify");
    let mut rows = Vec::new();
    for dataset in &options.datasets {
        for model in &options.models {
            let started = Instant::now();
            let folds = if dataset == "mr" { Some(options.folds) } else { None };
            let mut accuracies = Vec::new();
            for fold in folds.map_or(vec![None], |n| (1..=n).map(Some).collect()) {
                let name =
                    fold.map_or(format!("{dataset}-{model}"), |k| format!("{dataset}-{model}-{k}"));
                let dir = out.join(name);
                // A finished run is trained again from scratch; an interrupted one resumes.
                if dir.join("model.bpk").exists() {
                    fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot clear {}", dir.display()))?;
                }
                let mut cmd = Command::new(&engram);
                cmd.args(["--json", "train", "classify", "--dataset", dataset, "--data"])
                    .arg(&options.data)
                    .arg("--config")
                    .arg(recipe(dataset, model))
                    .arg("--out")
                    .arg(&dir);
                if let (Some(n), Some(k)) = (folds, fold) {
                    cmd.args(["--folds", &n.to_string(), "--fold", &k.to_string()]);
                }
                accuracies.push(test_accuracy(&mut cmd)?);
            }
            let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
            let spread = (accuracies.len() > 1).then(|| {
                let var = accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>()
                    / (accuracies.len() - 1) as f64;
                var.sqrt()
            });
            let seconds = started.elapsed().as_secs_f64();
            println!("{dataset} {model}: test accuracy {:.2}% in {seconds:.0}s", 100.0 * mean);
            let command = format!(
                "cargo xtask eval classify --datasets {dataset} --models {model}{}",
                folds.map_or(String::new(), |n| format!(" --folds {n}"))
            );
            rows.push(Row {
                dataset: dataset.clone(),
                model: model.clone(),
                accuracy: mean,
                spread,
                seconds,
                command,
            });
        }
    }
    println!("\n{}", table(&rows));
    write_results(&rows)
}

fn test_accuracy(cmd: &mut Command) -> Result<f64> {
    let line = run::display(cmd);
    eprintln!("$ {line}");
    let output = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed with {}", output.status);
    }
    let report = Json::parse(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("`{line}` printed no JSON summary"))?;
    report
        .path(&["test", "accuracy"])
        .and_then(Json::as_f64)
        .with_context(|| format!("`{line}`: no test.accuracy in the summary"))
}

const HEADER: &str = "| dataset | model | test accuracy (ours) | published (from scratch) | time | \
                      command |\n|---|---|---|---|---|---|\n";

fn table(rows: &[Row]) -> String {
    let mut text = String::from(HEADER);
    for row in rows {
        text += &line(row);
    }
    text
}

fn line(row: &Row) -> String {
    let anchor = ANCHORS.iter().find(|(d, _)| *d == row.dataset).map_or("", |(_, a)| a);
    let accuracy = match row.spread {
        Some(sd) => format!("{:.1} ± {:.1}", 100.0 * row.accuracy, 100.0 * sd),
        None => format!("{:.1}", 100.0 * row.accuracy),
    };
    format!(
        "| {} | {} | {accuracy} | {anchor} | {:.1} min | `{}` |\n",
        row.dataset,
        row.model,
        row.seconds / 60.0,
        row.command
    )
}

/// The table between the markers of `text` with `rows` put in: a row replaces the line of the
/// same dataset and model, or is added after the last line of its dataset, or at the end.
fn merged(text: &str, rows: &[Row]) -> String {
    let old = match (text.find(START), text.find(END)) {
        (Some(start), Some(end)) if start < end => &text[start + START.len()..end],
        _ => "",
    };
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| dataset |"))
        .map(|l| format!("{l}\n"))
        .collect();
    for row in rows {
        let key = format!("| {} | {} |", row.dataset, row.model);
        let same_dataset = format!("| {} |", row.dataset);
        if let Some(at) = lines.iter().position(|l| l.starts_with(&key)) {
            lines[at] = line(row);
        } else if let Some(at) = lines.iter().rposition(|l| l.starts_with(&same_dataset)) {
            lines.insert(at + 1, line(row));
        } else {
            lines.push(line(row));
        }
    }
    format!("{HEADER}{}", lines.concat())
}

/// Puts `rows` into the table between the markers in docs/results.md (or appends a section).
fn write_results(rows: &[Row]) -> Result<()> {
    let path = workspace_root().join("docs/results.md");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let block = format!("{START}\n{}{END}", merged(&text, rows));
    let updated = match (text.find(START), text.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{block}{}", &text[..start], &text[end + END.len()..])
        }
        _ => format!("{}\n## Text classification (engram-tasks)\n\n{block}\n", text.trim_end()),
    };
    fs::write(&path, updated).with_context(|| format!("cannot write {}", path.display()))?;
    println!("updated {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_mean_and_spread_with_the_anchor() {
        let rows = [Row {
            dataset: "mr".into(),
            model: "bilstm".into(),
            accuracy: 0.7712,
            spread: Some(0.011),
            seconds: 90.0,
            command: "cargo xtask eval classify --datasets mr".into(),
        }];
        let text = table(&rows);
        assert!(
            text.contains("| mr | bilstm | 77.1 ± 1.1 | Kim CNN-rand 76.1 | 1.5 min |"),
            "{text}"
        );
    }

    #[test]
    fn new_rows_replace_their_line_and_keep_the_others() {
        let row = |dataset: &str, model: &str, accuracy| Row {
            dataset: dataset.into(),
            model: model.into(),
            accuracy,
            spread: None,
            seconds: 60.0,
            command: "c".into(),
        };
        let doc = format!(
            "x\n{START}\n{}{END}\ny\n",
            table(&[row("trec", "bilstm", 0.9), row("mr", "bilstm", 0.7)])
        );
        let table = merged(&doc, &[row("trec", "bilstm", 0.93), row("trec", "gru", 0.91)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[2].starts_with("| trec | bilstm | 93.0 |"), "{table}");
        assert!(lines[3].starts_with("| trec | gru | 91.0 |"), "{table}");
        assert!(lines[4].starts_with("| mr | bilstm | 70.0 |"), "{table}");
    }

    #[test]
    fn unknown_flags_and_recipes_are_usage_errors() {
        let err = parse(&["--bogus".into(), "1".into()], PathBuf::new()).err().unwrap();
        assert!(err.to_string().contains("unknown flag --bogus"));
        let err = parse(&["--models".into(), "cnn".into()], PathBuf::new()).err().unwrap();
        assert!(err.to_string().contains("no recipe `cnn`"));
    }

    #[test]
    fn the_shipped_recipes_parse_as_json() {
        for model in ["transformer", "bilstm"] {
            let text = fs::read_to_string(recipe("", model)).unwrap();
            let json = Json::parse(&text).unwrap();
            assert!(json.path(&["model", "memory"]).is_some(), "{model}");
        }
    }
}
