//! Seeded train/validation splits and k-fold cross-validation.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::Example;

/// Splits `examples` into training and validation sets, stratified by label.
///
/// Each label keeps `round(valid_fraction · n_label)` of its examples for validation, chosen by
/// a [`StdRng`] seeded with `seed`, so class proportions match in both parts (the total may
/// differ from `round(valid_fraction · n)` by the rounding of each class). Both parts keep the
/// original order of the examples; shuffle per epoch when training.
///
/// # Panics
///
/// If `valid_fraction` is not in `[0, 1)`.
pub fn train_valid_split(
    examples: Vec<Example>,
    valid_fraction: f64,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    assert!(
        (0.0..1.0).contains(&valid_fraction),
        "train_valid_split: valid_fraction must be in [0, 1), got {valid_fraction}"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut in_valid = vec![false; examples.len()];
    for mut group in by_label(&examples).into_values() {
        group.shuffle(&mut rng);
        let n_valid = (valid_fraction * group.len() as f64).round() as usize;
        for &i in &group[..n_valid] {
            in_valid[i] = true;
        }
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (example, valid_row) in examples.into_iter().zip(in_valid) {
        if valid_row { valid.push(example) } else { train.push(example) }
    }
    (train, valid)
}

/// One fold of k-fold cross-validation: indices into the data, both sorted ascending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// The indices to train on.
    pub train: Vec<usize>,
    /// The held-out indices to evaluate on.
    pub test: Vec<usize>,
}

/// Splits `0..n` into `k` folds after a shuffle seeded with `seed`.
///
/// Every index is in exactly one fold's `test`; fold sizes differ by at most one.
///
/// # Panics
///
/// If `k < 2` or `k > n`.
pub fn k_folds(n: usize, k: usize, seed: u64) -> Vec<Fold> {
    check_k("k_folds", n, k);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    deal(n, k, [order])
}

/// [`k_folds`] stratified by label: each label's examples are shuffled and dealt round the folds
/// in turn, continuing where the previous label stopped, so every fold has about the same class
/// proportions and fold sizes differ by at most one.
///
/// # Panics
///
/// If `k < 2` or `k > examples.len()`.
pub fn stratified_k_folds(examples: &[Example], k: usize, seed: u64) -> Vec<Fold> {
    check_k("stratified_k_folds", examples.len(), k);
    let mut rng = StdRng::seed_from_u64(seed);
    let groups = by_label(examples).into_values().map(|mut group| {
        group.shuffle(&mut rng);
        group
    });
    deal(examples.len(), k, groups)
}

fn check_k(op: &str, n: usize, k: usize) {
    assert!(k >= 2 && k <= n, "{op}: need 2 <= k <= n, got k = {k} for n = {n}");
}

/// Example indices per label, the labels in sorted order so that the result is deterministic.
fn by_label(examples: &[Example]) -> BTreeMap<&str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, example) in examples.iter().enumerate() {
        groups.entry(example.label.as_str()).or_default().push(i);
    }
    groups
}

/// Deals the indices of `groups`, in order, round the `k` folds.
fn deal(n: usize, k: usize, groups: impl IntoIterator<Item = Vec<usize>>) -> Vec<Fold> {
    let mut fold_of = vec![0; n];
    for (position, i) in groups.into_iter().flatten().enumerate() {
        fold_of[i] = position % k;
    }
    (0..k)
        .map(|fold| {
            let (test, train) = (0..n).partition(|&i| fold_of[i] == fold);
            Fold { train, test }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(labels: &[&str]) -> Vec<Example> {
        labels.iter().enumerate().map(|(i, l)| Example::new(format!("t{i}"), *l)).collect()
    }

    #[test]
    fn split_is_stratified_seeded_and_order_preserving() {
        let data = examples(&["a", "a", "a", "a", "b", "b", "b", "b", "b", "b", "b", "b"]);
        let (train, valid) = train_valid_split(data.clone(), 0.25, 3);
        assert_eq!(valid.iter().filter(|e| e.label == "a").count(), 1);
        assert_eq!(valid.iter().filter(|e| e.label == "b").count(), 2);
        assert_eq!(train.len(), 9);
        // Order preserved: the texts' indices increase within each part.
        let index = |e: &Example| e.text[1..].parse::<usize>().unwrap();
        assert!(train.windows(2).all(|w| index(&w[0]) < index(&w[1])));
        assert!(valid.windows(2).all(|w| index(&w[0]) < index(&w[1])));
        assert_eq!(train_valid_split(data.clone(), 0.25, 3), (train.clone(), valid.clone()));
        // Another seed picks other examples (checked over a few seeds so that the test does not
        // rest on one draw).
        assert!((4..10).any(|seed| train_valid_split(data.clone(), 0.25, seed).1 != valid));
    }

    #[test]
    fn zero_fraction_keeps_everything_for_training() {
        let (train, valid) = train_valid_split(examples(&["a", "b"]), 0.0, 1);
        assert_eq!((train.len(), valid.len()), (2, 0));
    }

    #[test]
    #[should_panic(expected = "train_valid_split: valid_fraction must be in [0, 1), got 1")]
    fn full_fraction_panics() {
        train_valid_split(examples(&["a"]), 1.0, 0);
    }

    #[test]
    fn folds_partition_the_indices() {
        let folds = k_folds(10, 3, 42);
        assert_eq!(folds.len(), 3);
        let mut all_test: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all_test.sort_unstable();
        assert_eq!(all_test, (0..10).collect::<Vec<_>>());
        for fold in &folds {
            assert!([3, 4].contains(&fold.test.len()));
            assert_eq!(fold.train.len() + fold.test.len(), 10);
            assert!(fold.train.iter().all(|i| !fold.test.contains(i)));
            assert!(fold.test.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(k_folds(10, 3, 42), folds);
        assert!((43..48).any(|seed| k_folds(10, 3, seed) != folds));
    }

    #[test]
    fn stratified_folds_balance_classes() {
        let data = examples(&["a", "a", "a", "a", "b", "b", "b", "b", "b", "b", "b", "b"]);
        let folds = stratified_k_folds(&data, 4, 9);
        for fold in &folds {
            let count = |label: &str| fold.test.iter().filter(|&&i| data[i].label == label).count();
            assert_eq!((count("a"), count("b")), (1, 2));
        }
    }

    #[test]
    #[should_panic(expected = "k_folds: need 2 <= k <= n, got k = 5 for n = 4")]
    fn too_many_folds_panic() {
        k_folds(4, 5, 0);
    }
}
