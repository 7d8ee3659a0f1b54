//! A tiny built-in sentiment corpus, generated from templates, so that training and prediction
//! can be tried on a fresh machine without any dataset.
//!
//! Sentences combine a subject, an optional intensifier and a positive or negative adjective in
//! one of a few templates ("the plot was truly gripping"); the label is the adjective's polarity.
//! The test set holds adjective–subject–template combinations the training set never shows.

use crate::classify::{ClassifyConfig, ClassifyData};
use crate::model::{ClassifierConfig, MemoryKind, Pooling, Positions};
use crate::train::{Schedule, TrainConfig};

const SUBJECTS: [&str; 10] = [
    "film",
    "movie",
    "story",
    "plot",
    "acting",
    "soundtrack",
    "ending",
    "cast",
    "script",
    "pacing",
];
const POSITIVE: [&str; 10] = [
    "wonderful",
    "brilliant",
    "moving",
    "delightful",
    "superb",
    "charming",
    "gripping",
    "beautiful",
    "funny",
    "clever",
];
const NEGATIVE: [&str; 10] =
    ["dull", "boring", "awful", "clumsy", "tedious", "terrible", "bland", "messy", "weak", "flat"];
const INTENSIFIERS: [&str; 5] = ["", "really ", "truly ", "quite ", "utterly "];
const TEMPLATES: [&str; 5] = [
    "the {s} was {i}{a}",
    "a {i}{a} {s}",
    "i found the {s} {i}{a}",
    "what a {i}{a} {s} !",
    "the {s} felt {i}{a} from start to finish",
];

/// The demo corpus: 800 training and 200 test sentences, labelled `positive` or `negative`.
///
/// # Example
/// ```
/// let data = engram_tasks::demo::corpus();
/// assert_eq!((data.train.len(), data.test.as_ref().unwrap().len()), (800, 200));
/// assert!(data.train.iter().all(|e| e.label == "positive" || e.label == "negative"));
/// ```
pub fn corpus() -> ClassifyData {
    let mut train = Vec::new();
    let mut test = Vec::new();
    // A fixed walk through the combinations (a linear congruential sequence), so the corpus is
    // the same everywhere without a random generator.
    let mut state: u64 = 17;
    while train.len() < 800 || test.len() < 200 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let pick = |shift: u32, n: usize| ((state >> shift) % n as u64) as usize;
        let (s, a, i, t) = (pick(11, 10), pick(21, 10), pick(31, 5), pick(41, 5));
        let positive = pick(51, 2) == 0;
        let adjective = if positive { POSITIVE[a] } else { NEGATIVE[a] };
        let text = TEMPLATES[t]
            .replace("{s}", SUBJECTS[s])
            .replace("{i}", INTENSIFIERS[i])
            .replace("{a}", adjective);
        let example =
            crate::data::Example::new(text, if positive { "positive" } else { "negative" });
        // Held-out combinations: the test set's adjective–subject–template triples never occur
        // in training.
        if (s + a + t) % 5 == 0 {
            if test.len() < 200 {
                test.push(example);
            }
        } else if train.len() < 800 {
            train.push(example);
        }
    }
    ClassifyData { train, valid: None, test: Some(test), labels: None }
}

/// A configuration that learns [`corpus`] in seconds: a one-layer transformer of width 32.
pub fn config() -> ClassifyConfig {
    ClassifyConfig {
        model: ClassifierConfig {
            d_model: 32,
            memory: MemoryKind::Transformer,
            n_layers: 1,
            n_heads: 2,
            d_ff: 64,
            pooling: Pooling::Mean,
            positions: Positions::Sinusoidal,
            max_len: 16,
            dropout: 0.1,
            embedding_dropout: 0.0,
            ..ClassifierConfig::default()
        },
        train: TrainConfig {
            epochs: 6,
            batch_size: 32,
            lr: 3e-3,
            schedule: Schedule::WarmupCosine { warmup_steps: 20 },
            patience: None,
            ..TrainConfig::default()
        },
        ..ClassifyConfig::default()
    }
}
