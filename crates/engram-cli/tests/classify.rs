//! `engram train classify`, `predict` and `eval` end to end on the built-in demo corpus and on a
//! CSV file: these write model directories, so they run in scratch folders of their own.

mod common;

use std::fs;

use common::{engram, stdout};

fn scratch(name: &str) -> std::path::PathBuf {
    common::scratch(&format!("classify-{name}"))
}

#[test]
fn demo_trains_predicts_and_evaluates() {
    let dir = scratch("demo");
    let out = stdout(&engram(&dir, &["train", "classify", "--demo", "--out", "model"], ""));
    assert!(out.starts_with("model written to model (epoch "), "{out}");
    assert!(out.contains("confusion matrix"), "{out}");
    for file in ["config.json", "tokenizer.json", "labels.json", "model.bpk", "history.jsonl"] {
        assert!(dir.join("model").join(file).exists(), "{file} is missing");
    }
    assert!(fs::read_to_string(dir.join("model/curves.svg")).unwrap().contains("<polyline"));

    let texts = "what a truly wonderful film\nthe ending felt utterly tedious\n";
    let predicted = stdout(&engram(&dir, &["--json", "predict", "--model", "model"], texts));
    let lines: Vec<serde_json::Value> =
        predicted.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], "positive", "{predicted}");
    assert_eq!(lines[1]["label"], "negative", "{predicted}");
    let p = &lines[0]["probabilities"];
    let total = p["positive"].as_f64().unwrap() + p["negative"].as_f64().unwrap();
    assert!((total - 1.0).abs() < 1e-5, "{p}");

    let report = stdout(&engram(&dir, &["--json", "eval", "--model", "model", "--demo"], ""));
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert!(report["accuracy"].as_f64().unwrap() > 0.9, "{report}");
}

#[test]
fn own_csv_file_trains_and_unknown_test_labels_are_reported() {
    let dir = scratch("csv");
    let mut csv = String::from("text,label\n");
    for i in 0..20 {
        csv += &format!("\"a good, fine film {i}\",good\nthe dull plot {i},bad\n");
    }
    fs::write(dir.join("train.csv"), &csv).unwrap();
    fs::write(dir.join("test.csv"), "text,label\na fine film,good\nsome plot,meh\n").unwrap();
    let args = ["train", "classify", "--train", "train.csv", "--format", "csv", "--epochs", "2"];
    let trained = engram(&dir, &[&args[..], &["--out", "m", "--memory", "gru"]].concat(), "");
    stdout(&trained);
    let config = fs::read_to_string(dir.join("m/config.json")).unwrap();
    assert!(config.contains("\"memory\": \"gru\""), "{config}");

    let eval =
        engram(&dir, &["eval", "--model", "m", "--train", "test.csv", "--format", "csv"], "");
    assert_eq!(eval.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&eval.stderr);
    assert!(stderr.contains("label \"meh\""), "{stderr}");
}
