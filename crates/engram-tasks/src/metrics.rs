//! Classification metrics: the confusion matrix and what follows from it — accuracy, per-class
//! precision, recall and F1, and their macro, micro and support-weighted averages.
//!
//! Convention: a ratio whose denominator is 0 is 0 (precision of a class never predicted,
//! recall of a class with no examples, F1 when precision and recall are both 0, accuracy of an
//! empty matrix), as scikit-learn's `zero_division=0`. Averages run over all classes, including
//! those with no examples.
//!
//! ```
//! use engram_tasks::metrics::ConfusionMatrix;
//!
//! // (target, prediction) pairs over 2 classes.
//! let matrix = ConfusionMatrix::from_pairs(2, [(0, 0), (0, 1), (1, 1), (1, 1)]);
//! assert_eq!(matrix.accuracy(), 0.75);
//! let scores = matrix.per_class();
//! assert_eq!((scores[0].precision, scores[0].recall), (1.0, 0.5));
//! assert!((scores[1].f1 - 0.8).abs() < 1e-12); // p = 2/3, r = 1
//! println!("{}", matrix.to_text(&["neg", "pos"]));
//! ```

use serde::{Deserialize, Serialize};

/// Counts of (target, prediction) pairs: `count(t, p)` examples of class `t` were predicted `p`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Row `t`, column `p`.
    counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class or an average.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Of the examples predicted as the class, the fraction that belong to it.
    pub precision: f64,
    /// Of the class's examples, the fraction predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall. For macro averages, the mean of the classes' F1
    /// (scikit-learn's definition), not the F1 of the mean precision and recall.
    pub f1: f64,
    /// Examples of the class (for averages: all examples).
    pub support: u64,
}

/// One class's scores with its label, for [`Report`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelledScores {
    /// The class's label.
    pub label: String,
    /// Its scores.
    #[serde(flatten)]
    pub scores: ClassScores,
}

/// Everything [`ConfusionMatrix`] knows, for JSON output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Fraction of examples predicted correctly.
    pub accuracy: f64,
    /// Number of examples.
    pub total: u64,
    /// Per class, in class-id order.
    pub per_class: Vec<LabelledScores>,
    /// Unweighted mean over classes.
    pub macro_avg: ClassScores,
    /// From summed counts (equals accuracy for single-label classification).
    pub micro_avg: ClassScores,
    /// Mean over classes weighted by support.
    pub weighted_avg: ClassScores,
    /// The class labels, in class-id order.
    pub labels: Vec<String>,
    /// `matrix[target][prediction]`.
    pub matrix: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// An empty matrix over `n_classes` classes.
    ///
    /// # Panics
    ///
    /// If `n_classes` is 0.
    pub fn new(n_classes: usize) -> Self {
        assert!(n_classes > 0, "ConfusionMatrix::new: need at least one class");
        Self { counts: vec![vec![0; n_classes]; n_classes] }
    }

    /// A matrix filled from (target, prediction) pairs.
    ///
    /// # Panics
    ///
    /// As [`Self::new`] and [`Self::add`].
    pub fn from_pairs(n_classes: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut matrix = Self::new(n_classes);
        for (target, prediction) in pairs {
            matrix.add(target, prediction);
        }
        matrix
    }

    /// Counts one example of class `target` predicted as `prediction`.
    ///
    /// # Panics
    ///
    /// If either is not below the number of classes.
    pub fn add(&mut self, target: usize, prediction: usize) {
        let n = self.n_classes();
        assert!(
            target < n && prediction < n,
            "ConfusionMatrix::add: target {target} or prediction {prediction} out of range for \
             {n} classes"
        );
        self.counts[target][prediction] += 1;
    }

    /// Adds another matrix's counts (for instance over the folds of cross-validation).
    ///
    /// # Panics
    ///
    /// If the numbers of classes differ.
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(
            self.n_classes(),
            other.n_classes(),
            "ConfusionMatrix::merge: the matrices have different numbers of classes"
        );
        for (row, other_row) in self.counts.iter_mut().zip(&other.counts) {
            for (count, other_count) in row.iter_mut().zip(other_row) {
                *count += other_count;
            }
        }
    }

    /// The number of classes.
    pub fn n_classes(&self) -> usize {
        self.counts.len()
    }

    /// Examples of class `target` predicted as `prediction`.
    pub fn count(&self, target: usize, prediction: usize) -> u64 {
        self.counts[target][prediction]
    }

    /// The counts, `matrix[target][prediction]`.
    pub fn rows(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// The number of examples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Fraction predicted correctly (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let correct = (0..self.n_classes()).map(|c| self.counts[c][c]).sum();
        ratio(correct, self.total())
    }

    /// Precision, recall, F1 and support of each class, in class-id order.
    pub fn per_class(&self) -> Vec<ClassScores> {
        (0..self.n_classes())
            .map(|c| {
                let (tp, support, predicted) = self.class_counts(c);
                scores(tp, predicted, support)
            })
            .collect()
    }

    /// The unweighted mean of the per-class scores, over all classes.
    pub fn macro_avg(&self) -> ClassScores {
        self.average(|_| 1.0)
    }

    /// The support-weighted mean of the per-class scores (scikit-learn's `weighted avg`).
    pub fn weighted_avg(&self) -> ClassScores {
        self.average(|s| s.support as f64)
    }

    /// Scores from the counts summed over classes. For single-label classification every error
    /// is one false positive and one false negative, so all three equal the accuracy.
    pub fn micro_avg(&self) -> ClassScores {
        let (mut tp, mut predicted, mut support) = (0, 0, 0);
        for c in 0..self.n_classes() {
            let (t, s, p) = self.class_counts(c);
            (tp, support, predicted) = (tp + t, support + s, predicted + p);
        }
        scores(tp, predicted, support)
    }

    /// A text report: scikit-learn's `classification_report` layout, then the matrix with
    /// targets as rows and predictions as columns.
    ///
    /// # Panics
    ///
    /// If `labels` does not have one entry per class.
    pub fn to_text<S: AsRef<str>>(&self, labels: &[S]) -> String {
        let labels = self.check_labels("to_text", labels);
        let width = labels.iter().map(String::len).max().unwrap_or(0).max("weighted avg".len());
        let mut out = format!(
            "{:>width$}  {:>9}  {:>9}  {:>9}  {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        let row = |out: &mut String, name: &str, s: &ClassScores| {
            out.push_str(&format!(
                "{name:>width$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}\n",
                s.precision, s.recall, s.f1, s.support
            ));
        };
        for (label, scores) in labels.iter().zip(self.per_class()) {
            row(&mut out, label, &scores);
        }
        out.push('\n');
        out.push_str(&format!(
            "{:>width$}  {:>9}  {:>9}  {:>9.4}  {:>9}\n",
            "accuracy",
            "",
            "",
            self.accuracy(),
            self.total()
        ));
        row(&mut out, "macro avg", &self.macro_avg());
        row(&mut out, "micro avg", &self.micro_avg());
        row(&mut out, "weighted avg", &self.weighted_avg());

        out.push_str("\nconfusion matrix (rows: target, columns: prediction)\n");
        let cell = self
            .counts
            .iter()
            .flatten()
            .map(|c| c.to_string().len())
            .chain(labels.iter().map(String::len))
            .max()
            .unwrap_or(1);
        out.push_str(&format!("{:>width$}", ""));
        for label in &labels {
            out.push_str(&format!("  {label:>cell$}"));
        }
        out.push('\n');
        for (label, counts) in labels.iter().zip(&self.counts) {
            out.push_str(&format!("{label:>width$}"));
            for count in counts {
                out.push_str(&format!("  {count:>cell$}"));
            }
            out.push('\n');
        }
        out
    }

    /// Everything as one serialisable [`Report`].
    ///
    /// # Panics
    ///
    /// If `labels` does not have one entry per class.
    pub fn report<S: AsRef<str>>(&self, labels: &[S]) -> Report {
        let labels = self.check_labels("report", labels);
        Report {
            accuracy: self.accuracy(),
            total: self.total(),
            per_class: labels
                .iter()
                .zip(self.per_class())
                .map(|(label, scores)| LabelledScores { label: label.clone(), scores })
                .collect(),
            macro_avg: self.macro_avg(),
            micro_avg: self.micro_avg(),
            weighted_avg: self.weighted_avg(),
            labels,
            matrix: self.counts.clone(),
        }
    }

    /// [`Self::report`] as a JSON value.
    ///
    /// # Panics
    ///
    /// If `labels` does not have one entry per class.
    pub fn report_json<S: AsRef<str>>(&self, labels: &[S]) -> serde_json::Value {
        match serde_json::to_value(self.report(labels)) {
            Ok(value) => value,
            // A `Report` holds only strings, numbers and lists; serde_json maps non-finite
            // floats to null rather than failing, and the scores are finite anyway.
            Err(e) => panic!("ConfusionMatrix::report_json: serialisation failed: {e}"),
        }
    }

    fn check_labels<S: AsRef<str>>(&self, op: &str, labels: &[S]) -> Vec<String> {
        assert_eq!(
            labels.len(),
            self.n_classes(),
            "ConfusionMatrix::{op}: {} labels for {} classes",
            labels.len(),
            self.n_classes()
        );
        labels.iter().map(|l| l.as_ref().to_string()).collect()
    }

    /// (true positives, support, predicted) of class `c`.
    fn class_counts(&self, c: usize) -> (u64, u64, u64) {
        let support = self.counts[c].iter().sum();
        let predicted = self.counts.iter().map(|row| row[c]).sum();
        (self.counts[c][c], support, predicted)
    }

    fn average(&self, weight: impl Fn(&ClassScores) -> f64) -> ClassScores {
        let per_class = self.per_class();
        let total_weight: f64 = per_class.iter().map(&weight).sum();
        let mean = |field: fn(&ClassScores) -> f64| {
            let sum: f64 = per_class.iter().map(|s| weight(s) * field(s)).sum();
            if total_weight == 0.0 { 0.0 } else { sum / total_weight }
        };
        ClassScores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
            support: self.total(),
        }
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 { 0.0 } else { numerator as f64 / denominator as f64 }
}

fn scores(tp: u64, predicted: u64, support: u64) -> ClassScores {
    let precision = ratio(tp, predicted);
    let recall = ratio(tp, support);
    let sum = precision + recall;
    let f1 = if sum == 0.0 { 0.0 } else { 2.0 * precision * recall / sum };
    ClassScores { precision, recall, f1, support }
}
