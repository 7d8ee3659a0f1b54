//! Readers on hand-written fixtures: every format, malformed rows under both policies, named
//! datasets on a miniature data folder, and write-then-read round trips.

use std::path::{Path, PathBuf};

use engram_tasks::data::{
    self, ClassificationDataset, ColumnRef, DataError, Example, Format, OnMalformed,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn pairs(examples: &[Example]) -> Vec<(&str, &str)> {
    examples.iter().map(|e| (e.label.as_str(), e.text.as_str())).collect()
}

fn lines(report: &data::ReadReport) -> Vec<usize> {
    report.skipped.iter().map(|m| m.line).collect()
}

/// A fresh folder under the system temp dir for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("engram-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn malformed(error: DataError) -> data::Malformed {
    match error {
        DataError::Malformed(malformed) => malformed,
        other => panic!("expected a malformed row, got {other:?}"),
    }
}

#[test]
fn label_text_skips_and_counts() {
    let path = fixture("label_text.txt");
    let (examples, report) = data::read(&path, &Format::LabelText, OnMalformed::Skip).unwrap();
    assert_eq!(
        pairs(&examples),
        [
            ("0", "how far is it from the lake to the hill ?"),
            ("1", "what county is the old mill in ?"),
            ("2", "who was the first keeper ?"),
            ("1", "what is an élan vital ?"),
        ]
    );
    assert_eq!(report.read, 4);
    assert_eq!(report.blank_lines, 2);
    assert_eq!(report.windows_1252_lines, 1);
    assert_eq!(lines(&report), [6]);
    assert_eq!(report.skipped[0].reason, "no text after the label");
    assert_eq!(report.path, path);
}

#[test]
fn label_text_stops_at_the_first_malformed_line() {
    let path = fixture("label_text.txt");
    let error = data::read(&path, &Format::LabelText, OnMalformed::Stop).unwrap_err();
    assert_eq!(error.to_string(), format!("{}:6: no text after the label", path.display()));
    assert_eq!(malformed(error).line, 6);
}

#[test]
fn csv_by_name_and_by_index_agree() {
    let path = fixture("reviews.csv");
    let by_name =
        Format::csv(ColumnRef::Name("review".into()), ColumnRef::Name("sentiment".into()));
    let (examples, report) = data::read(&path, &by_name, OnMalformed::Stop).unwrap();
    assert_eq!(
        pairs(&examples),
        [
            ("positive", "a fine, funny film"),
            ("negative", "the \"best\" worst film"),
            ("positive", "two lines:\nthe second"),
            ("negative", "plain and unquoted"),
        ]
    );
    assert_eq!(report.blank_lines, 1);
    let by_index = Format::csv(ColumnRef::Index(1), ColumnRef::Index(2));
    assert_eq!(data::read(&path, &by_index, OnMalformed::Stop).unwrap().0, examples);
}

#[test]
fn csv_column_errors_name_the_columns() {
    let path = fixture("reviews.csv");
    let format = Format::csv(ColumnRef::Name("stars".into()), ColumnRef::Index(2));
    let error = data::read(&path, &format, OnMalformed::Stop).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: no column \"stars\" in the header (columns: id, review, sentiment)",
            path.display()
        )
    );
    let format = Format::Delimited {
        delimiter: b',',
        quote: Some(b'"'),
        header: false,
        text_column: ColumnRef::Name("review".into()),
        label_column: ColumnRef::Index(2),
    };
    let error = data::read(&path, &format, OnMalformed::Stop).unwrap_err();
    assert!(matches!(error, DataError::NamedColumnWithoutHeader { column } if column == "review"));
}

#[test]
fn csv_malformed_rows_are_reported_with_their_lines() {
    let path = fixture("bad.csv");
    let format = Format::csv(ColumnRef::Index(1), ColumnRef::Index(2));
    let (examples, report) = data::read(&path, &format, OnMalformed::Skip).unwrap();
    assert_eq!(pairs(&examples), [("positive", "good"), ("positive", "fine again")]);
    assert_eq!(lines(&report), [3, 4, 6, 7]);
    let reasons: Vec<&str> = report.skipped.iter().map(|m| m.reason.as_str()).collect();
    assert_eq!(reasons[0], "expected at least 3 fields, found 2");
    assert!(reasons[1].contains("after a closing quote"), "{}", reasons[1]);
    assert_eq!(reasons[2], "empty text in column 2");
    assert!(reasons[3].contains("not closed"), "{}", reasons[3]);

    let error = data::read(&path, &format, OnMalformed::Stop).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}:3: expected at least 3 fields, found 2", path.display())
    );
}

#[test]
fn glue_tsv_reads_the_header_and_crlf() {
    let (examples, report) =
        data::read(&fixture("glue.tsv"), &Format::GlueTsv, OnMalformed::Stop).unwrap();
    assert_eq!(
        pairs(&examples),
        [("1", "it 's a warm little story ."), ("0", "flat and far too long")]
    );
    assert_eq!(report.read, 2);
}

#[test]
fn glue_tsv_without_a_label_column_is_an_error() {
    // GLUE's unlabelled test.tsv has `index\tsentence`.
    let dir = scratch("glue-unlabelled");
    let path = dir.join("test.tsv");
    std::fs::write(&path, "index\tsentence\n0\tsome text\n").unwrap();
    let error = data::read(&path, &Format::GlueTsv, OnMalformed::Skip).unwrap_err();
    assert!(matches!(&error, DataError::MissingColumn { column, .. } if column == "label"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn jsonl_reports_bad_lines() {
    let path = fixture("reviews.jsonl");
    let format = Format::Jsonl { text_field: "text".into(), label_field: "label".into() };
    let (examples, report) = data::read(&path, &format, OnMalformed::Skip).unwrap();
    assert_eq!(pairs(&examples), [("pos", "a fine film"), ("0", "dull"), ("neg", "last one")]);
    assert_eq!(lines(&report), [4, 5, 6]);
    assert!(report.skipped[0].reason.starts_with("invalid JSON"), "{}", report.skipped[0].reason);
    assert_eq!(report.skipped[1].reason, "no field \"text\"");
    assert_eq!(report.blank_lines, 1);
    assert_eq!(malformed(data::read(&path, &format, OnMalformed::Stop).unwrap_err()).line, 4);
}

#[test]
fn io_and_empty_files_are_errors() {
    let missing = fixture("no-such-file.txt");
    let error = data::read(&missing, &Format::LabelText, OnMalformed::Stop).unwrap_err();
    assert!(matches!(&error, DataError::Io { path, .. } if *path == missing));
    assert!(error.to_string().starts_with(&format!("cannot read {}", missing.display())));

    let dir = scratch("empty");
    let path = dir.join("blank.txt");
    std::fs::write(&path, "\n  \n").unwrap();
    let error = data::read(&path, &Format::LabelText, OnMalformed::Skip).unwrap_err();
    assert_eq!(error.to_string(), format!("{} holds no examples", path.display()));
    // Every row malformed and skipped is empty too, not a silent success.
    std::fs::write(&path, "only-a-label\n").unwrap();
    assert!(matches!(
        data::read(&path, &Format::LabelText, OnMalformed::Skip),
        Err(DataError::Empty { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Texts that exercise quoting: delimiters, quotes, a line break, non-ASCII.
fn tricky_examples() -> Vec<Example> {
    vec![
        Example::new("plain words", "a"),
        Example::new("commas, and \"quotes\", too", "b"),
        Example::new("tabs\there and 'single' quotes", "a"),
        Example::new("über naïve — façade", "c"),
        Example::new("\"starts with a quote", "b"),
    ]
}

#[test]
fn csv_round_trip() {
    let mut examples = tricky_examples();
    examples.push(Example::new("first line\nsecond line", "a"));
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = String::from("label,text\n");
    for e in &examples {
        csv.push_str(&format!("{},{}\n", quote(&e.label), quote(&e.text)));
    }
    let dir = scratch("csv-round-trip");
    let path = dir.join("round.csv");
    std::fs::write(&path, csv).unwrap();
    let format = Format::csv(ColumnRef::Name("text".into()), ColumnRef::Name("label".into()));
    assert_eq!(data::read(&path, &format, OnMalformed::Stop).unwrap().0, examples);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn jsonl_and_label_text_round_trips() {
    let examples = tricky_examples();
    let dir = scratch("round-trips");

    let path = dir.join("round.jsonl");
    let jsonl: String = examples
        .iter()
        .map(|e| serde_json::json!({"sentence": e.text, "y": e.label}).to_string() + "\n")
        .collect();
    std::fs::write(&path, jsonl).unwrap();
    let format = Format::Jsonl { text_field: "sentence".into(), label_field: "y".into() };
    assert_eq!(data::read(&path, &format, OnMalformed::Stop).unwrap().0, examples);

    let path = dir.join("round.txt");
    let text: String = examples.iter().map(|e| format!("{} {}\n", e.label, e.text)).collect();
    std::fs::write(&path, text).unwrap();
    assert_eq!(data::read(&path, &Format::LabelText, OnMalformed::Stop).unwrap().0, examples);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn trec_renames_labels_and_reports_bad_indices() {
    let data_dir = fixture("data");
    let error = ClassificationDataset::Trec.load(&data_dir, OnMalformed::Stop).unwrap_err();
    let bad = malformed(error);
    assert_eq!(bad.line, 2);
    assert!(bad.path.ends_with("classification/trec/TREC.test.all"));
    assert_eq!(bad.reason, "label \"7\" is not a class index 0..5");

    let splits = ClassificationDataset::Trec.load(&data_dir, OnMalformed::Skip).unwrap();
    let labels: Vec<&str> = splits.train.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["DESC", "ENTY", "NUM"]);
    let test = splits.test.unwrap();
    assert_eq!(
        pairs(&test),
        [("HUM", "Who wrote the tide tables ?"), ("LOC", "Where is the old mill ?")]
    );
    assert!(splits.valid.is_none());
    assert_eq!(splits.labels.names(), ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]);
    assert_eq!(splits.reports.len(), 2);
    assert_eq!(lines(&splits.reports[1]), [2]);
    assert_eq!(splits.reports[1].read, 2);
}

#[test]
fn mr_reads_windows_1252_polarity_files() {
    let splits = ClassificationDataset::Mr.load(&fixture("data"), OnMalformed::Stop).unwrap();
    assert_eq!(
        pairs(&splits.train),
        [
            ("negative", "tedious , thin and loud ."),
            ("negative", "it’s so slow … and so long ."),
            ("positive", "a café story with a “big” heart"),
            ("positive", "warm but too short"),
        ]
    );
    assert!(splits.valid.is_none() && splits.test.is_none());
    let decoded: usize = splits.reports.iter().map(|r| r.windows_1252_lines).sum();
    assert_eq!(decoded, 2);
}

#[test]
fn sst2_has_three_splits() {
    let splits = ClassificationDataset::Sst2.load(&fixture("data"), OnMalformed::Stop).unwrap();
    assert_eq!(splits.train.len(), 2);
    assert_eq!(pairs(&splits.valid.unwrap()), [("positive", "it is a warm story .")]);
    assert_eq!(pairs(&splits.test.unwrap()), [("negative", "no ."), ("positive", "yes !")]);
}

#[test]
fn missing_dataset_files_point_at_the_data_flag() {
    let data_dir = fixture("data");
    let error = ClassificationDataset::Sst5.load(&data_dir, OnMalformed::Stop).unwrap_err();
    let expected = data_dir.join("classification/sst/kim-stsa/stsa.fine.train");
    assert!(matches!(&error, DataError::MissingFile { path, .. } if *path == expected));
    let message = error.to_string();
    assert!(message.contains("--data") && message.contains("ENGRAM_DATA"), "{message}");
}
