//! Label strings to class ids and back.

use serde::{Deserialize, Serialize};

use super::{DataError, Example};

/// The classes of a task: label string ↔ class id.
///
/// Saved next to a model (it serialises as `{"labels": [...]}`) so that predictions map back to
/// the same strings.
///
/// ```
/// use engram_tasks::data::{Example, LabelSet};
///
/// let train = [Example::new("a", "10"), Example::new("b", "2"), Example::new("c", "2")];
/// let labels = LabelSet::from_examples(&train);
/// assert_eq!(labels.names(), ["2", "10"]); // integers sort as numbers
/// assert_eq!(labels.id("10"), Some(1));
/// assert_eq!(labels.name(0), "2");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct LabelSet {
    labels: Vec<String>,
}

/// A label set as read from a file, before the duplicate check.
#[derive(Deserialize)]
struct Unchecked {
    labels: Vec<String>,
}

impl TryFrom<Unchecked> for LabelSet {
    type Error = String;

    fn try_from(unchecked: Unchecked) -> Result<Self, Self::Error> {
        let labels = unchecked.labels;
        match labels.iter().enumerate().find(|(i, label)| labels[..*i].contains(label)) {
            Some((_, label)) => Err(format!("label {label:?} appears twice in the label set")),
            None => Ok(Self { labels }),
        }
    }
}

impl LabelSet {
    /// A label set in the given order: class `i` is `labels[i]`.
    ///
    /// # Panics
    ///
    /// If a label appears twice.
    pub fn new(labels: Vec<String>) -> Self {
        for (i, label) in labels.iter().enumerate() {
            assert!(
                !labels[..i].contains(label),
                "LabelSet::new: label {label:?} appears twice in {labels:?}"
            );
        }
        Self { labels }
    }

    /// The distinct labels of `examples`, sorted so that the ids do not depend on file order:
    /// numerically when every label is an integer, else as strings.
    pub fn from_examples(examples: &[Example]) -> Self {
        let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
            labels.sort_by_key(|l| l.parse::<i64>().unwrap_or_default());
        }
        Self { labels }
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no classes.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The class id of `label`, if it is one of the set.
    pub fn id(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The label of class `id`.
    ///
    /// # Panics
    ///
    /// If `id >= self.len()`.
    pub fn name(&self, id: usize) -> &str {
        match self.labels.get(id) {
            Some(label) => label,
            None => panic!("LabelSet::name: class id {id} out of range for {} labels", self.len()),
        }
    }

    /// The labels in class-id order.
    pub fn names(&self) -> &[String] {
        &self.labels
    }

    /// The class id of every example, in order.
    ///
    /// # Errors
    ///
    /// [`DataError::UnknownLabel`] for the first example whose label is not in the set.
    pub fn ids(&self, examples: &[Example]) -> Result<Vec<usize>, DataError> {
        examples
            .iter()
            .enumerate()
            .map(|(i, example)| {
                self.id(&example.label).ok_or_else(|| DataError::UnknownLabel {
                    label: example.label.clone(),
                    example: i,
                    known: self.labels.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_labels_sort_and_dedup() {
        let examples =
            [Example::new("x", "pos"), Example::new("y", "neg"), Example::new("z", "pos")];
        let labels = LabelSet::from_examples(&examples);
        assert_eq!(labels.names(), ["neg", "pos"]);
        assert_eq!(labels.ids(&examples).unwrap(), [1, 0, 1]);
    }

    #[test]
    fn mixed_labels_sort_as_strings() {
        let examples = [Example::new("x", "10"), Example::new("y", "9"), Example::new("z", "a")];
        assert_eq!(LabelSet::from_examples(&examples).names(), ["10", "9", "a"]);
    }

    #[test]
    fn unknown_labels_name_the_example() {
        let labels = LabelSet::new(vec!["a".into(), "b".into()]);
        let error = labels.ids(&[Example::new("x", "a"), Example::new("y", "c")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "label \"c\" of example 1 is not among the known labels [a, b]"
        );
    }

    #[test]
    fn serde_round_trip() {
        let labels = LabelSet::new(vec!["b".into(), "a".into()]);
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(json, r#"{"labels":["b","a"]}"#);
        assert_eq!(serde_json::from_str::<LabelSet>(&json).unwrap(), labels);
        let error = serde_json::from_str::<LabelSet>(r#"{"labels":["a","b","a"]}"#).unwrap_err();
        assert!(error.to_string().contains("label \"a\" appears twice"), "{error}");
    }

    #[test]
    #[should_panic(expected = "LabelSet::new: label \"a\" appears twice")]
    fn duplicate_labels_panic() {
        LabelSet::new(vec!["a".into(), "a".into()]);
    }

    #[test]
    #[should_panic(expected = "LabelSet::name: class id 2 out of range for 2 labels")]
    fn out_of_range_name_panics() {
        LabelSet::new(vec!["a".into(), "b".into()]).name(2);
    }
}
