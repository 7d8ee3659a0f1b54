//! `engram train babi`, `eval babi` and `ask` end to end on a tiny fixture: these write model
//! directories, so they run in a scratch folder of their own.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{engram, stdout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/babi")
}

#[test]
fn trains_evaluates_and_answers_with_attention() {
    let dir = common::scratch("babi-ask");
    let data = fixtures();
    let data = data.to_str().unwrap();
    let train = ["train", "babi", "--data", data, "--tasks", "1", "--epochs", "3"];
    let output = engram(&dir, &[&train[..], &["--out", "models"]].concat(), "");
    let out = stdout(&output);
    assert!(out.starts_with("task 1 single-supporting-fact: test error "), "{out}");
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(progress.starts_with("task 1: run 1/1 done, last epoch's valid acc "), "{progress}");
    assert!(
        dir.join("models/task-1/babi.json").exists()
            && dir.join("models/task-1/model.bpk").exists()
    );

    let eval = ["--json", "eval", "babi", "--model", "models", "--data", data, "--tasks", "1"];
    let report: serde_json::Value =
        serde_json::from_str(stdout(&engram(&dir, &eval, "")).trim()).unwrap();
    assert_eq!(report["tasks"][0]["task"], 1);
    assert!(report["mean_error"].as_f64().is_some(), "{report}");

    let story = fixtures().join("story.txt");
    let ask = ["ask", "--model", "models/task-1", "--story", story.to_str().unwrap()];
    let text = stdout(&engram(
        &dir,
        &[&ask[..], &["--heatmap", "where.svg"]].concat(),
        "Where is Mary?\n",
    ));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("answer: "), "{text}");
    assert_eq!(lines[1], " hop 1 hop 2 hop 3  statement", "{text}");
    assert!(lines[2].ends_with("  Mary went to the kitchen.") && lines.len() == 5, "{text}");
    let svg = fs::read_to_string(dir.join("where.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Mary went to the office."), "{svg}");

    let json = stdout(&engram(
        &dir,
        &["--json", ask[0], ask[1], ask[2], ask[3], ask[4]],
        "Where is John?",
    ));
    let asked: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(asked["hops"].as_array().unwrap().len(), 3);
    assert_eq!(asked["statements"].as_array().unwrap().len(), 3);

    let empty = engram(&dir, &ask, "  \n");
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no question"));
}

#[test]
fn memn2n_options_on_a_reader_are_usage_errors() {
    let dir = common::scratch("babi-reader-flags");
    let data = fixtures();
    let args = ["train", "babi", "--data", data.to_str().unwrap(), "--model", "lstm", "--relu"];
    let output = engram(&dir, &args, "");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--relu is a MemN2N option; --model is lstm"), "{stderr}");
}
