//! End-To-End Memory Networks (Sukhbaatar, Szlam, Weston and Fergus, 2015) for bAbI.
//!
//! Each statement is a bag of word embeddings, weighted by position encoding, plus a temporal
//! embedding of its memory slot. Each hop attends with the controller state `u` over the input
//! memories `m_i = Σ_j l_j ⊙ A x_ij + T_A(i)`, reads `o = Σ_i p_i c_i` from the output memories, and
//! sets `u ← u + o` (adjacent tying) or `u ← H u + o` (layer-wise tying), optionally followed by a
//! ReLU (the paper's "non-linearity", used for its 10k results). The answer is `softmax(W u_K)`
//! over the vocabulary. Under linear start (the first epochs of training) the memory softmax is
//! left out.
//!
//! With `slots` set, the memory has that many slots, as in the authors' code, and the unused ones
//! take part in the softmax: they hold zero vectors, so each scores 0 and adds nothing to `o`,
//! but takes its share of the attention. That lets a hop attend to (almost) nothing; `k` unused
//! slots are computed as one extra score `ln k` per row. Without `slots` they are masked out.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::activation;
use burn::tensor::module::embedding;
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use engram_tensor::masked_softmax;
use serde::{Deserialize, Serialize};

use super::encode::HostBatch;

/// How the words of a sentence become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SentenceEncoding {
    /// The sum of word embeddings.
    BagOfWords,
    /// The sum weighted by position encoding; see [`position_encoding`].
    Position,
}

/// Which weights the hops share (section 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tying {
    /// `A^{k+1} = C^k`, `B = A^1`, `W^T = C^K`.
    Adjacent,
    /// `A^1 = … = A^K`, `C^1 = … = C^K`, `u^{k+1} = H u^k + o^k`; `B` and `W` separate.
    LayerWise,
}

/// Configuration of a [`MemN2N`].
#[derive(Config, Debug)]
pub struct MemN2NConfig {
    /// Vocabulary size (words and answer labels, padding included).
    pub vocab_size: usize,
    /// Embedding width `d`. Default: 20 (the paper's per-task 1k setting; 50 joint).
    #[config(default = 20)]
    pub d_model: usize,
    /// Number of hops `K`. Default: 3.
    #[config(default = 3)]
    pub n_hops: usize,
    /// Memory slots, the most statements read (and temporal embeddings). Default: 50.
    #[config(default = 50)]
    pub memory_size: usize,
    /// Sentence encoding. Default: position encoding.
    #[config(default = "SentenceEncoding::Position")]
    pub encoding: SentenceEncoding,
    /// Add learned temporal embeddings `T_A`, `T_C` to the memories. Default: true.
    #[config(default = true)]
    pub temporal: bool,
    /// Weight tying. Default: adjacent.
    #[config(default = "Tying::Adjacent")]
    pub tying: Tying,
    /// Standard deviation of the Gaussian initialisation. Default: 0.1.
    #[config(default = 0.1)]
    pub init_std: f64,
    /// Apply a ReLU to the controller state after each hop (`add_nonlin` in the authors' code,
    /// the "non-linearity" of the paper's 10k results). Default: false.
    #[config(default = false)]
    pub relu: bool,
    /// Slots of a fixed-size memory whose unused ones take part in the softmax with score 0 (see
    /// the module documentation); `None` masks them out. Default: `None`.
    #[config(default = "None")]
    pub slots: Option<usize>,
}

/// An end-to-end memory network; see the module documentation.
#[derive(Module, Debug)]
pub struct MemN2N {
    /// `[vocab, d]` embeddings: adjacent `E_0..E_K` (`A^k = E_{k-1}`, `C^k = E_k`, `B = E_0`,
    /// `W^T = E_K`); layer-wise `[A, C, B, W^T]`.
    pub embeddings: Vec<Param<Tensor<2>>>,
    /// `[memory_size, d]` temporal embeddings, indexed like `embeddings` (adjacent `T_0..T_K`,
    /// layer-wise `[T_A, T_C]`); empty without temporal encoding.
    pub temporal: Vec<Param<Tensor<2>>>,
    /// `[d, d]` layer-wise controller map `H`.
    pub h: Option<Param<Tensor<2>>>,
    /// Hops.
    pub n_hops: usize,
    /// Embedding width.
    pub d_model: usize,
    /// Memory slots.
    pub memory_size: usize,
    /// Position encoding (`true`) or bag of words.
    pub position: bool,
    /// ReLU on the controller state after each hop.
    pub relu: bool,
    /// Slots of the fixed-size memory whose unused ones the softmax sees; `None`: masked.
    pub slots: Option<usize>,
}

/// What [`MemN2N::forward`] returns.
#[derive(Debug)]
pub struct MemN2NOutput {
    /// `[batch, vocab]` answer logits.
    pub logits: Tensor<2>,
    /// Per hop, `[batch, memory]` attention over the memory slots (raw scores under linear
    /// start).
    pub attention: Vec<Tensor<2>>,
}

/// A [`HostBatch`] on a device, with the encoding weights of its words.
#[derive(Clone, Debug)]
pub struct MemoryBatch {
    /// `[batch, memory · words]` ids.
    pub story: Tensor<2, Int>,
    /// `[batch, memory, words, d]` encoding weight of each word (0 at padding).
    pub story_weights: Tensor<4>,
    /// `[batch, question_words]` ids.
    pub question: Tensor<2, Int>,
    /// `[batch, question_words, d]` encoding weights.
    pub question_weights: Tensor<3>,
    /// `[batch, memory]`, `true` at unused slots.
    pub padding: Tensor<2, Bool>,
}

/// Position encoding of a `J`-word sentence, row-major `[J, d]`: word `j`, dimension `k` (both
/// 1-based) is weighted by `l_kj = 1 + 4 (k − (d+1)/2) (j − (J+1)/2) / (d J)`.
///
/// This is the formula of the authors' released code. The paper (section 4.1) prints
/// `l_kj = (1 − j/J) − (k/d)(1 − 2j/J)`, whose weights fall from 1 to 0 along the sentence
/// instead of varying by ±1 around 1; trained with it here, task 4 (two-argument relations) kept
/// 17 % test error against 1.2 % with the code's formula (`engram train babi --tasks 4 --runs 2`,
/// 2026-11-29).
pub fn position_encoding(n_words: usize, d: usize) -> Vec<f32> {
    let (big_j, big_d) = (n_words as f64, d as f64);
    let mut out = Vec::with_capacity(n_words * d);
    for j in 1..=n_words {
        for k in 1..=d {
            let centred = (k as f64 - (big_d + 1.0) / 2.0) * (j as f64 - (big_j + 1.0) / 2.0);
            out.push((1.0 + 4.0 * centred / (big_d * big_j)) as f32);
        }
    }
    out
}

/// Encoding weights `[n_sentences · width, d]` for sentences of the given lengths, padded to
/// `width` words with zeros.
fn word_weights(lengths: &[usize], width: usize, d: usize, position: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; lengths.len() * width * d];
    let mut cache: Vec<Option<Vec<f32>>> = vec![None; width + 1];
    for (s, &len) in lengths.iter().enumerate() {
        let len = len.min(width);
        if len == 0 {
            continue;
        }
        let dst = &mut out[s * width * d..(s * width + len) * d];
        if position {
            let pe = cache[len].get_or_insert_with(|| position_encoding(len, d));
            dst.copy_from_slice(pe);
        } else {
            dst.fill(1.0);
        }
    }
    out
}

impl MemoryBatch {
    /// Moves `host` to `device` with weights for width `d`.
    pub fn new(host: &HostBatch, d: usize, position: bool, device: &Device) -> Self {
        let (b, m, l, q) = (host.batch, host.memory, host.words, host.question_words);
        let story = Tensor::from_data(TensorData::new(host.story.clone(), [b, m * l]), device);
        let story_weights = Tensor::from_data(
            TensorData::new(word_weights(&host.sentence_len, l, d, position), [b, m, l, d]),
            device,
        );
        let question = Tensor::from_data(TensorData::new(host.question.clone(), [b, q]), device);
        let question_weights = Tensor::from_data(
            TensorData::new(word_weights(&host.question_len, q, d, position), [b, q, d]),
            device,
        );
        Self {
            story,
            story_weights,
            question,
            question_weights,
            padding: host.memory_padding(device),
        }
    }
}

impl MemN2NConfig {
    /// Creates the network with `N(0, init_std²)` weights.
    ///
    /// # Panics
    /// If `vocab_size`, `d_model`, `n_hops` or `memory_size` is 0.
    pub fn init(&self, device: &Device) -> MemN2N {
        assert!(
            self.vocab_size > 0 && self.d_model > 0 && self.n_hops > 0 && self.memory_size > 0,
            "MemN2NConfig::init: vocab_size {}, d_model {}, n_hops {}, memory_size {} must be positive",
            self.vocab_size,
            self.d_model,
            self.n_hops,
            self.memory_size
        );
        let normal = |rows: usize, cols: usize| {
            Param::from_tensor(Tensor::random(
                [rows, cols],
                Distribution::Normal(0.0, self.init_std),
                device,
            ))
        };
        let (n_emb, n_time) = match self.tying {
            Tying::Adjacent => (self.n_hops + 1, self.n_hops + 1),
            Tying::LayerWise => (4, 2),
        };
        MemN2N {
            embeddings: (0..n_emb).map(|_| normal(self.vocab_size, self.d_model)).collect(),
            temporal: if self.temporal {
                (0..n_time).map(|_| normal(self.memory_size, self.d_model)).collect()
            } else {
                Vec::new()
            },
            h: (self.tying == Tying::LayerWise).then(|| normal(self.d_model, self.d_model)),
            n_hops: self.n_hops,
            d_model: self.d_model,
            memory_size: self.memory_size,
            position: self.encoding == SentenceEncoding::Position,
            relu: self.relu,
            slots: self.slots,
        }
    }
}

impl MemN2N {
    fn layer_wise(&self) -> bool {
        self.h.is_some()
    }

    /// Embeds every memory slot with embedding `e` and temporal embedding `t`: `[b, m, d]`.
    fn memories(&self, batch: &MemoryBatch, e: usize, t: Option<usize>) -> Tensor<3> {
        let [b, m, l, d] = batch.story_weights.dims();
        let words = embedding(self.embeddings[e].val(), batch.story.clone()).reshape([b, m, l, d]);
        let sentences = (words * batch.story_weights.clone()).sum_dim(2).reshape([b, m, d]);
        match t.and_then(|t| self.temporal.get(t)) {
            Some(time) => sentences + time.val().narrow(0, 0, m).unsqueeze_dim::<3>(0),
            None => sentences,
        }
    }

    /// Answers a batch; `linear` leaves out the memory softmax (linear start).
    ///
    /// # Shapes
    /// See [`MemoryBatch`]; logits `[batch, vocab]`.
    ///
    /// # Panics
    /// If the batch's memory is wider than `memory_size` or its weights are not `d_model` wide.
    pub fn forward(&self, batch: &MemoryBatch, linear: bool) -> MemN2NOutput {
        let [_, m, _, d] = batch.story_weights.dims();
        assert!(
            m <= self.memory_size && d == self.d_model,
            "MemN2N::forward: batch memory {m} (max {}) and width {d} (model {})",
            self.memory_size,
            self.d_model
        );
        let [b, q] = batch.question.dims();
        let question_emb = if self.layer_wise() { 2 } else { 0 };
        let mut u = (embedding(self.embeddings[question_emb].val(), batch.question.clone())
            * batch.question_weights.clone())
        .sum_dim(1)
        .reshape([b, d]);
        let _ = q;
        // Adjacent tying: memories of E_0..E_K, each used as the output of one hop and the input
        // of the next, so each is embedded once.
        let (inputs, outputs): (Vec<Tensor<3>>, Vec<Tensor<3>>) = if self.layer_wise() {
            let a = self.memories(batch, 0, Some(0));
            let c = self.memories(batch, 1, Some(1));
            (vec![a; self.n_hops], vec![c; self.n_hops])
        } else {
            let all: Vec<Tensor<3>> =
                (0..=self.n_hops).map(|k| self.memories(batch, k, Some(k))).collect();
            (all[..self.n_hops].to_vec(), all[1..].to_vec())
        };
        // `ln k` for the `k` unused slots of a fixed-size memory, masked where there are none.
        let unused = self.slots.map(|slots| {
            let used = batch.padding.clone().bool_not().float().sum_dim(1);
            let k = used.neg().add_scalar(slots as f64);
            (k.clone().clamp_min(1.0).log(), k.lower_equal_elem(0.0))
        });
        let mut attention = Vec::with_capacity(self.n_hops);
        for (a, c) in inputs.into_iter().zip(outputs) {
            let scores = a.matmul(u.clone().unsqueeze_dim::<3>(2)).reshape([b, m]);
            let p = match &unused {
                _ if linear => scores.mask_fill(batch.padding.clone(), 0.0),
                None => masked_softmax(scores, batch.padding.clone(), 1),
                Some((score, none)) => {
                    let scores = Tensor::cat(vec![scores, score.clone()], 1);
                    let padding = Tensor::cat(vec![batch.padding.clone(), none.clone()], 1);
                    masked_softmax(scores, padding, 1).narrow(1, 0, m)
                }
            };
            let o = p.clone().unsqueeze_dim::<3>(1).matmul(c).reshape([b, d]);
            u = match &self.h {
                Some(h) => u.matmul(h.val()) + o,
                None => u + o,
            };
            if self.relu {
                u = activation::relu(u);
            }
            attention.push(p);
        }
        let answer = if self.layer_wise() { 3 } else { self.n_hops };
        let logits = u.matmul(self.embeddings[answer].val().transpose());
        MemN2NOutput { logits, attention }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::babi::encode::fixtures::{batch, example};
    use engram_tensor::testing::test_device;

    #[test]
    fn position_encoding_matches_hand_computed_values() {
        // J = 2, d = 2: l_kj = 1 + (k - 1.5)(j - 1.5).
        // j=1: k=1 -> 1.25; k=2 -> 0.75.   j=2: k=1 -> 0.75; k=2 -> 1.25.
        assert_eq!(position_encoding(2, 2), vec![1.25, 0.75, 0.75, 1.25]);
        // J = 3, d = 4, j = 1, k = 4: 1 + 4·(1.5)(−1)/12 = 0.5.
        let pe = position_encoding(3, 4);
        assert!((pe[3] - 0.5).abs() < 1e-6, "{pe:?}");
        // j = 3, k = 2: 1 + 4·(−0.5)(1)/12 = 5/6.
        assert!((pe[2 * 4 + 1] - 5.0 / 6.0).abs() < 1e-6, "{pe:?}");
        // A one-word sentence is a plain sum: j − (J+1)/2 = 0.
        assert_eq!(position_encoding(1, 4), vec![1.0; 4]);
    }

    #[test]
    fn relu_clamps_a_negative_controller_state_to_zero() {
        // With every weight negative (position weights are positive), the question embedding and
        // every hop's read-out are negative, so each ReLU'd state, and the logits, are exactly 0.
        let device = test_device();
        let host = batch(&[example(&["a b", "c"], "b c")]);
        let batch = MemoryBatch::new(&host, 3, true, &device);
        for tying in [Tying::Adjacent, Tying::LayerWise] {
            let config = MemN2NConfig::new(4).with_d_model(3).with_n_hops(2).with_tying(tying);
            let mut model = config.init(&device);
            let negate = |p: &Param<Tensor<2>>| Param::from_tensor(p.val().abs().neg());
            model.embeddings = model.embeddings.iter().map(negate).collect();
            model.temporal = model.temporal.iter().map(negate).collect();
            model.h = model.h.as_ref().map(|h| Param::from_tensor(h.val().abs()));
            let linear = model.forward(&batch, false).logits;
            assert!(linear.abs().max().into_scalar::<f32>() > 1e-3, "{tying:?}: no ReLU, no zeros");
            model.relu = true;
            let logits = model.forward(&batch, false).logits.into_data();
            assert_eq!(logits.try_to_vec::<f32>().unwrap(), vec![0.0; 4], "{tying:?}");
        }
    }

    #[test]
    fn unused_slots_of_a_fixed_memory_take_their_share_of_attention() {
        // Zero embeddings score every slot 0: attention is uniform over the used slots when the
        // rest are masked, and 1/slots per used slot when the unused ones count.
        let device = test_device();
        let host = batch(&[example(&["a", "b"], "a"), example(&["c"], "b")]);
        let batch = MemoryBatch::new(&host, 3, true, &device);
        let attention = |slots: Option<usize>| {
            let mut model = MemN2NConfig::new(4)
                .with_d_model(3)
                .with_n_hops(1)
                .with_temporal(false)
                .with_slots(slots)
                .init(&device);
            let zero = |p: &Param<Tensor<2>>| Param::from_tensor(p.val().zeros_like());
            model.embeddings = model.embeddings.iter().map(zero).collect();
            let p = model.forward(&batch, false).attention.remove(0);
            p.into_data().try_to_vec::<f32>().unwrap()
        };
        assert_eq!(attention(None), [0.5, 0.5, 1.0, 0.0]);
        assert_eq!(attention(Some(4)), [0.25, 0.25, 0.25, 0.0]);
        // As many slots as used ones: nothing left over, the same as masking.
        assert_eq!(attention(Some(2)), [0.5, 0.5, 0.5, 0.0]);
    }

    #[test]
    fn word_weights_pad_with_zeros_and_bag_of_words_is_ones() {
        let w = word_weights(&[1, 0], 2, 2, false);
        assert_eq!(w, vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let w = word_weights(&[2], 3, 2, true);
        assert_eq!(w, vec![1.25, 0.75, 0.75, 1.25, 0.0, 0.0]);
    }
}
