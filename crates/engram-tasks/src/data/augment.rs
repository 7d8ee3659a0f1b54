//! Token-level augmentation for training: dropping tokens and swapping positions.
//!
//! Apply it to a text's token ids before adding special tokens such as `[CLS]`, so that those
//! are never dropped or moved.
//!
//! ```
//! use engram_tasks::data::Augment;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let augment = Augment { token_dropout: 0.1, swaps: 1 };
//! let ids = augment.apply(&[5, 6, 7, 8, 9], &mut rng);
//! assert!(!ids.is_empty() && ids.len() <= 5);
//! ```

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Augmentation settings (serde, so they sit in a training configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Augment {
    /// Probability of dropping each token (default 0: off); see [`token_dropout`].
    pub token_dropout: f32,
    /// Number of random position swaps per text (default 0: off); see [`random_swaps`].
    pub swaps: usize,
}

impl Augment {
    /// Whether this changes nothing.
    pub fn is_identity(&self) -> bool {
        self.token_dropout == 0.0 && self.swaps == 0
    }

    /// Token dropout, then swaps.
    ///
    /// # Panics
    ///
    /// If `token_dropout` is not in `[0, 1]`.
    pub fn apply<R: Rng + ?Sized>(&self, ids: &[u32], rng: &mut R) -> Vec<u32> {
        let mut ids = token_dropout(ids, self.token_dropout, rng);
        swap_in_place(&mut ids, self.swaps, rng);
        ids
    }
}

/// Drops each token independently with probability `p`, keeping the order of the rest.
///
/// A non-empty input never comes back empty: if every token was dropped, one of them, chosen
/// at random, is kept.
///
/// # Panics
///
/// If `p` is not in `[0, 1]`.
pub fn token_dropout<R: Rng + ?Sized>(ids: &[u32], p: f32, rng: &mut R) -> Vec<u32> {
    assert!((0.0..=1.0).contains(&p), "token_dropout: p must be in [0, 1], got {p}");
    if p == 0.0 {
        return ids.to_vec();
    }
    let kept: Vec<u32> = ids.iter().copied().filter(|_| !rng.random_bool(f64::from(p))).collect();
    if kept.is_empty() && !ids.is_empty() {
        return vec![ids[rng.random_range(0..ids.len())]];
    }
    kept
}

/// Swaps the tokens at two random positions, `n` times (the two may coincide, which leaves the
/// text as it was). Texts shorter than two tokens come back unchanged.
pub fn random_swaps<R: Rng + ?Sized>(ids: &[u32], n: usize, rng: &mut R) -> Vec<u32> {
    let mut ids = ids.to_vec();
    swap_in_place(&mut ids, n, rng);
    ids
}

fn swap_in_place<R: Rng + ?Sized>(ids: &mut [u32], n: usize, rng: &mut R) {
    if ids.len() < 2 {
        return;
    }
    for _ in 0..n {
        let (a, b) = (rng.random_range(0..ids.len()), rng.random_range(0..ids.len()));
        ids.swap(a, b);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn dropout_rate_is_about_p_and_keeps_order() {
        let ids: Vec<u32> = (0..10_000).collect();
        let kept = token_dropout(&ids, 0.3, &mut StdRng::seed_from_u64(1));
        // 7,000 expected; the standard deviation is about 46.
        assert!((6_800..7_200).contains(&kept.len()), "kept {}", kept.len());
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn dropout_extremes() {
        let mut rng = StdRng::seed_from_u64(2);
        assert_eq!(token_dropout(&[1, 2, 3], 0.0, &mut rng), [1, 2, 3]);
        let one = token_dropout(&[1, 2, 3], 1.0, &mut rng);
        assert!(one.len() == 1 && [1, 2, 3].contains(&one[0]), "{one:?}");
        assert!(token_dropout(&[], 0.5, &mut rng).is_empty());
    }

    #[test]
    #[should_panic(expected = "token_dropout: p must be in [0, 1], got 1.5")]
    fn dropout_rejects_bad_probability() {
        token_dropout(&[1], 1.5, &mut StdRng::seed_from_u64(0));
    }

    #[test]
    fn swaps_permute_and_are_seeded() {
        let ids: Vec<u32> = (0..20).collect();
        let swapped = random_swaps(&ids, 3, &mut StdRng::seed_from_u64(5));
        let mut sorted = swapped.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ids);
        assert!(swapped.iter().zip(&ids).filter(|(a, b)| a != b).count() <= 6);
        assert_eq!(random_swaps(&ids, 3, &mut StdRng::seed_from_u64(5)), swapped);
        assert!((0..5).any(|seed| random_swaps(&ids, 3, &mut StdRng::seed_from_u64(seed)) != ids));
        assert_eq!(random_swaps(&[7], 4, &mut StdRng::seed_from_u64(5)), [7]);
    }

    #[test]
    fn identity_config_changes_nothing() {
        let augment = Augment::default();
        assert!(augment.is_identity());
        assert_eq!(augment.apply(&[3, 1, 2], &mut StdRng::seed_from_u64(0)), [3, 1, 2]);
        let json = r#"{"token_dropout": 0.25}"#;
        let parsed: Augment = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, Augment { token_dropout: 0.25, swaps: 0 });
    }
}
