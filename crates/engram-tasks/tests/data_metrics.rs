//! Metrics against values computed by hand.

use engram_tasks::metrics::{ClassScores, ConfusionMatrix};

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-12, "{what}: {actual} != {expected}");
}

fn assert_scores(actual: &ClassScores, expected: [f64; 3], support: u64, what: &str) {
    assert_close(actual.precision, expected[0], &format!("{what} precision"));
    assert_close(actual.recall, expected[1], &format!("{what} recall"));
    assert_close(actual.f1, expected[2], &format!("{what} f1"));
    assert_eq!(actual.support, support, "{what} support");
}

/// Rows are targets, columns predictions:
///
/// ```text
///        p0 p1 p2   support
///   t0    3  1  0   4
///   t1    1  2  1   4
///   t2    0  0  2   2
/// predicted 4  3  3
/// ```
fn three_classes() -> ConfusionMatrix {
    let mut pairs = Vec::new();
    for (target, row) in [[3, 1, 0], [1, 2, 1], [0, 0, 2]].iter().enumerate() {
        for (prediction, &count) in row.iter().enumerate() {
            pairs.extend(std::iter::repeat_n((target, prediction), count));
        }
    }
    ConfusionMatrix::from_pairs(3, pairs)
}

#[test]
fn per_class_scores_match_hand_computation() {
    let matrix = three_classes();
    assert_eq!(matrix.total(), 10);
    assert_eq!(matrix.count(1, 2), 1);
    assert_close(matrix.accuracy(), 0.7, "accuracy");
    let scores = matrix.per_class();
    // Class 0: p = 3/4, r = 3/4, f1 = 3/4.
    assert_scores(&scores[0], [0.75, 0.75, 0.75], 4, "class 0");
    // Class 1: p = 2/3, r = 2/4, f1 = 2·(2/3)(1/2) / (2/3 + 1/2) = 4/7.
    assert_scores(&scores[1], [2.0 / 3.0, 0.5, 4.0 / 7.0], 4, "class 1");
    // Class 2: p = 2/3, r = 1, f1 = 2·(2/3) / (5/3) = 4/5.
    assert_scores(&scores[2], [2.0 / 3.0, 1.0, 0.8], 2, "class 2");
}

#[test]
fn averages_match_hand_computation() {
    let matrix = three_classes();
    // Macro: means of the per-class values.
    let macro_f1 = (0.75 + 4.0 / 7.0 + 0.8) / 3.0;
    let macro_p = (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0;
    assert_scores(&matrix.macro_avg(), [macro_p, 0.75, macro_f1], 10, "macro");
    // Weighted by support 4, 4, 2: p = (3 + 8/3 + 4/3)/10 = 0.7, r = (3 + 2 + 2)/10 = 0.7,
    // f1 = (3 + 16/7 + 1.6)/10.
    let weighted_f1 = (3.0 + 16.0 / 7.0 + 1.6) / 10.0;
    assert_scores(&matrix.weighted_avg(), [0.7, 0.7, weighted_f1], 10, "weighted");
    // Micro: 7 true positives of 10 predictions and 10 targets.
    assert_scores(&matrix.micro_avg(), [0.7, 0.7, 0.7], 10, "micro");
}

#[test]
fn zero_denominators_give_zero() {
    // Class 2 never occurs and is never predicted; class 1 occurs but is never predicted.
    let matrix = ConfusionMatrix::from_pairs(3, [(0, 0), (1, 0)]);
    let scores = matrix.per_class();
    assert_scores(&scores[0], [0.5, 1.0, 2.0 / 3.0], 1, "class 0");
    assert_scores(&scores[1], [0.0, 0.0, 0.0], 1, "class 1");
    assert_scores(&scores[2], [0.0, 0.0, 0.0], 0, "class 2");
    // The macro average still counts the empty class.
    assert_close(matrix.macro_avg().recall, 1.0 / 3.0, "macro recall");

    let empty = ConfusionMatrix::new(2);
    assert_eq!(empty.accuracy(), 0.0);
    assert_scores(&empty.macro_avg(), [0.0, 0.0, 0.0], 0, "empty macro");
    assert_scores(&empty.weighted_avg(), [0.0, 0.0, 0.0], 0, "empty weighted");
}

#[test]
fn merge_adds_counts() {
    let mut a = ConfusionMatrix::from_pairs(2, [(0, 0), (1, 0)]);
    a.merge(&ConfusionMatrix::from_pairs(2, [(1, 1), (1, 0)]));
    assert_eq!(a.rows(), [vec![1, 0], vec![2, 1]]);
}

#[test]
fn text_report_is_aligned() {
    let matrix = ConfusionMatrix::from_pairs(2, [(0, 0), (0, 1), (1, 1), (1, 1)]);
    let expected = "              precision     recall   f1-score    support

         neg     1.0000     0.5000     0.6667          2
    positive     0.6667     1.0000     0.8000          2

    accuracy                           0.7500          4
   macro avg     0.8333     0.7500     0.7333          4
   micro avg     0.7500     0.7500     0.7500          4
weighted avg     0.8333     0.7500     0.7333          4

confusion matrix (rows: target, columns: prediction)
                   neg  positive
         neg         1         1
    positive         0         2
";
    assert_eq!(matrix.to_text(&["neg", "positive"]), expected);
}

#[test]
fn json_report_holds_everything() {
    let matrix = three_classes();
    let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let json = matrix.report_json(&labels);
    assert_close(json["accuracy"].as_f64().unwrap(), 0.7, "accuracy");
    assert_eq!(json["total"], 10);
    assert_eq!(json["labels"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(json["matrix"], serde_json::json!([[3, 1, 0], [1, 2, 1], [0, 0, 2]]));
    assert_eq!(json["per_class"][2]["label"], "c");
    assert_close(json["per_class"][2]["f1"].as_f64().unwrap(), 0.8, "c f1");
    assert_eq!(json["per_class"][1]["support"], 4);
    assert_close(json["micro_avg"]["precision"].as_f64().unwrap(), 0.7, "micro");
    assert!(json["macro_avg"]["recall"].is_f64() && json["weighted_avg"]["f1"].is_f64());
    // The matrix itself serialises and comes back.
    let text = serde_json::to_string(&matrix).unwrap();
    assert_eq!(serde_json::from_str::<ConfusionMatrix>(&text).unwrap(), matrix);
}

#[test]
#[should_panic(expected = "ConfusionMatrix::add: target 0 or prediction 2 out of range for 2")]
fn out_of_range_prediction_panics() {
    ConfusionMatrix::new(2).add(0, 2);
}

#[test]
#[should_panic(expected = "ConfusionMatrix::to_text: 1 labels for 2 classes")]
fn wrong_label_count_panics() {
    ConfusionMatrix::new(2).to_text(&["only"]);
}

#[test]
#[should_panic(expected = "ConfusionMatrix::merge: the matrices have different numbers of classes")]
fn merging_different_sizes_panics() {
    ConfusionMatrix::new(2).merge(&ConfusionMatrix::new(3));
}
