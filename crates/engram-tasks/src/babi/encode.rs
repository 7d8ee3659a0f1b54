//! Words to ids and questions to padded host batches: the vocabulary (answers are classes over it)
//! and the `[batch, memory, words]` layout every bAbI model reads.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::read::QaExample;

/// Id of padding and of unknown words.
pub const PAD: usize = 0;

/// Words and answer labels with ids; id 0 is padding (and stands for unknown words).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    words: Vec<String>,
    #[serde(skip)]
    ids: BTreeMap<String, usize>,
}

impl Vocab {
    /// Every word of the stories and questions and every answer label (a list answer such as
    /// `s,e` is one label), sorted, after the padding entry `<pad>`.
    pub fn build<'a>(examples: impl IntoIterator<Item = &'a QaExample>) -> Self {
        let mut set = std::collections::BTreeSet::new();
        for ex in examples {
            for s in &ex.story {
                set.extend(s.words.iter().cloned());
            }
            set.extend(ex.question.iter().cloned());
            set.insert(ex.answer_label());
        }
        Self::from_words(std::iter::once("<pad>".to_owned()).chain(set).collect())
    }

    /// A vocabulary from its word list (index = id), as saved.
    pub fn from_words(words: Vec<String>) -> Self {
        let ids = words.iter().enumerate().map(|(i, w)| (w.clone(), i)).collect();
        Self { words, ids }
    }

    /// The words, index = id.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Number of entries, padding included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when only padding is there.
    pub fn is_empty(&self) -> bool {
        self.words.len() <= 1
    }

    /// The id of `word`, [`PAD`] when unknown.
    pub fn id(&self, word: &str) -> usize {
        self.ids.get(word).copied().unwrap_or(PAD)
    }

    /// The word of `id`.
    ///
    /// # Panics
    /// If `id` is out of range.
    pub fn word(&self, id: usize) -> &str {
        &self.words[id]
    }

    /// Rebuilds the lookup after deserialising.
    pub fn reindex(self) -> Self {
        Self::from_words(self.words)
    }
}

/// A batch on the host: `story[b][m][l]` word ids, sentence `m` of row `b` being the `m`-th most
/// recent statement (memory slot `m`, temporal index `m`); padded to the batch's maxima.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    /// Rows.
    pub batch: usize,
    /// Memory slots (the most statements of any row, at least 1).
    pub memory: usize,
    /// Words per statement (the longest, at least 1).
    pub words: usize,
    /// Words per question (the longest).
    pub question_words: usize,
    /// `[batch · memory · words]` ids.
    pub story: Vec<i64>,
    /// `[batch · memory]` statement lengths in words (0 for empty and padding slots).
    pub sentence_len: Vec<usize>,
    /// `[batch]` number of memory slots in use (empty noise memories included).
    pub n_memories: Vec<usize>,
    /// `[batch · question_words]` ids.
    pub question: Vec<i64>,
    /// `[batch]` question lengths.
    pub question_len: Vec<usize>,
    /// `[batch]` answer ids.
    pub answer: Vec<i64>,
    /// `[batch]` for each slot, the statement's index in `QaExample::story` (`None` for an
    /// empty noise memory); `slots[b][m]`.
    pub slots: Vec<Vec<Option<usize>>>,
}

impl HostBatch {
    /// Encodes `examples`. With `noise > 0` (training), empty memories are inserted at random
    /// places, `round(noise · n)` of them for a story of `n` statements (at least one with
    /// probability `noise · n` when that rounds to 0), which shifts the temporal indices of
    /// older statements: the paper's "random noise" regulariser for temporal encoding.
    pub fn new(
        examples: &[&QaExample],
        vocab: &Vocab,
        noise: f64,
        max_memory: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let mut slots: Vec<Vec<Option<usize>>> = Vec::with_capacity(examples.len());
        for ex in examples {
            let n = ex.story.len();
            // Most recent first.
            let mut row: Vec<Option<usize>> = (0..n).rev().map(Some).collect();
            if noise > 0.0 && n > 0 {
                let expected = noise * n as f64;
                let mut k = expected.floor() as usize;
                if rng.random::<f64>() < expected - k as f64 {
                    k += 1;
                }
                for _ in 0..k {
                    let at = rng.random_range(0..=row.len());
                    row.insert(at, None);
                }
            }
            row.truncate(max_memory);
            slots.push(row);
        }
        let batch = examples.len();
        let memory = slots.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let words = examples
            .iter()
            .flat_map(|ex| ex.story.iter().map(|s| s.words.len()))
            .max()
            .unwrap_or(0)
            .max(1);
        let question_words = examples.iter().map(|ex| ex.question.len()).max().unwrap_or(0).max(1);
        let mut story = vec![PAD as i64; batch * memory * words];
        let mut sentence_len = vec![0; batch * memory];
        let mut question = vec![PAD as i64; batch * question_words];
        let mut question_len = vec![0; batch];
        let mut answer = vec![0; batch];
        for (b, ex) in examples.iter().enumerate() {
            for (m, slot) in slots[b].iter().enumerate() {
                if let Some(s) = slot {
                    let sentence = &ex.story[*s].words;
                    sentence_len[b * memory + m] = sentence.len();
                    for (l, w) in sentence.iter().enumerate() {
                        story[(b * memory + m) * words + l] = vocab.id(w) as i64;
                    }
                }
            }
            question_len[b] = ex.question.len();
            for (l, w) in ex.question.iter().enumerate() {
                question[b * question_words + l] = vocab.id(w) as i64;
            }
            answer[b] = vocab.id(&ex.answer_label()) as i64;
        }
        let n_memories = slots.iter().map(Vec::len).collect();
        Self {
            batch,
            memory,
            words,
            question_words,
            story,
            sentence_len,
            n_memories,
            question,
            question_len,
            answer,
            slots,
        }
    }

    /// `[batch, memory]` mask, `true` at memory slots that hold nothing (not even noise).
    pub fn memory_padding(&self, device: &Device) -> Tensor<2, Bool> {
        let values: Vec<bool> = (0..self.batch * self.memory)
            .map(|i| i % self.memory >= self.n_memories[i / self.memory])
            .collect();
        Tensor::from_data(TensorData::new(values, [self.batch, self.memory]), device)
    }

    /// `[batch]` answer ids.
    pub fn answers(&self, device: &Device) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(self.answer.clone(), [self.batch]), device)
    }
}

/// Batches of short stories for unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::{HostBatch, Vocab};
    use crate::babi::read::{QaExample, Sentence};

    /// A question over `story` (statements of space-separated words) whose answer is `c`.
    pub(crate) fn example(story: &[&str], question: &str) -> QaExample {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        QaExample {
            story: story
                .iter()
                .enumerate()
                .map(|(i, s)| Sentence { id: i + 1, words: words(s) })
                .collect(),
            question: words(question),
            answer: vec!["c".into()],
            supporting: vec![],
            line: 0,
        }
    }

    /// `examples` batched over the vocabulary `<pad> a b c`, without noise memories.
    pub(crate) fn batch(examples: &[QaExample]) -> HostBatch {
        let vocab = Vocab::from_words(["<pad>", "a", "b", "c"].map(String::from).to_vec());
        let refs: Vec<&QaExample> = examples.iter().collect();
        HostBatch::new(&refs, &vocab, 0.0, 50, &mut StdRng::seed_from_u64(0))
    }
}
