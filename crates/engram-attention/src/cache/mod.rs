//! Key/value caches for causal attention, and the causal self-attention layer that streams with
//! them.

mod layer;

pub use layer::{CausalSelfAttention, CausalSelfAttentionConfig};

use burn::tensor::{Bool, Device, Int, Tensor};
use engram_tensor::{MemoryState, padding_mask};

/// The cached slots of a [`KvCache`]: one per position appended so far, padded ones included.
#[derive(Clone, Debug)]
pub struct KvSlots {
    /// `[batch, n_kv_heads, t, d_head]` keys, rotary positions already applied.
    pub keys: Tensor<4>,
    /// `[batch, n_kv_heads, t, d_head]` values.
    pub values: Tensor<4>,
    /// `[batch, t]`, `true` at slots that hold padding: stored (a batch shares one slot axis)
    /// but never attended to.
    pub padding: Tensor<2, Bool>,
    /// `[batch, t]` position of each slot in its own sequence.
    pub positions: Tensor<2, Int>,
}

/// The keys and values of one attention layer for a batch of sequences of different lengths.
///
/// Slots are appended with `cat` along the time axis, which copies the cache: O(t·d) per
/// append, like a preallocated buffer written with `slice_assign` (burn tensors are values, so
/// that also copies unless the backend reuses the buffer in place), but without a capacity to
/// choose or a maximum length. Past scores are never recomputed: a chunk of `s` queries costs
/// O(s·t·d).
///
/// Rows of a batch advance together on one slot axis, so a row that is padding in a chunk still
/// gets slots there; they are marked in [`KvSlots::padding`] and masked. Positions are kept per
/// slot and per row, so a row's rotary positions and causal order count only its real tokens.
///
/// With a `window`, [`evict`](KvCache::evict) drops the leading slots that no row can attend to
/// any more. That reads the small `[batch, t]` masks back to the host, one synchronisation per
/// chunk; rows that run far apart in length keep the slots the longest-behind row still needs.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// The slots, `None` while empty.
    pub slots: Option<KvSlots>,
    /// `[batch]` number of real positions seen per sequence: the position of its next token.
    pub lengths: Tensor<1, Int>,
    /// Each query sees keys less than `window` positions behind it; `None`: all past keys.
    pub window: Option<usize>,
}

impl MemoryState for KvCache {
    fn detach(self) -> Self {
        let slots = self.slots.map(|s| KvSlots {
            keys: s.keys.detach(),
            values: s.values.detach(),
            padding: s.padding,
            positions: s.positions,
        });
        KvCache { slots, ..self }
    }
}

impl KvCache {
    /// An empty cache for `batch` sequences.
    ///
    /// # Panics
    /// If `window` is `Some(0)`.
    pub fn new(batch: usize, window: Option<usize>, device: &Device) -> Self {
        assert!(window != Some(0), "KvCache: window must be at least 1, got 0");
        KvCache { slots: None, lengths: Tensor::zeros([batch], device), window }
    }

    /// Number of slots held (padded ones included).
    pub fn len_slots(&self) -> usize {
        self.slots.as_ref().map_or(0, |s| s.keys.dims()[2])
    }

    /// Positions of the next `s` tokens of each sequence, `[batch, s]`: `lengths[b] + i`.
    pub fn next_positions(&self, s: usize) -> Tensor<2, Int> {
        let [batch] = self.lengths.dims();
        let device = self.lengths.device();
        let steps = Tensor::<1, Int>::arange(0..s as i64, &device).reshape([1, s]);
        self.lengths.clone().reshape([batch, 1]) + steps
    }

    /// Appends `s` slots at `positions` (from [`next_positions`](KvCache::next_positions));
    /// `padding` marks the ones that are padding (right-padded rows), which do not advance their
    /// row's length.
    ///
    /// # Shapes
    /// - `keys`, `values`: `[batch, n_kv_heads, s, d_head]`; `padding`, `positions`: `[batch, s]`.
    ///
    /// # Panics
    /// If the shapes disagree with each other or with the cache.
    pub fn append(
        self,
        keys: Tensor<4>,
        values: Tensor<4>,
        padding: Option<Tensor<2, Bool>>,
        positions: Tensor<2, Int>,
    ) -> Self {
        self.append_slots(keys, values, padding, positions).0
    }

    /// [`append`](KvCache::append), also returning the slots now held.
    pub(crate) fn append_slots(
        self,
        keys: Tensor<4>,
        values: Tensor<4>,
        padding: Option<Tensor<2, Bool>>,
        positions: Tensor<2, Int>,
    ) -> (Self, KvSlots) {
        let [batch, heads, s, width] = keys.dims();
        assert_eq!(
            values.dims(),
            keys.dims(),
            "KvCache::append: values shape {:?} differs from keys shape {:?}",
            values.dims(),
            keys.dims()
        );
        assert_eq!(
            self.lengths.dims(),
            [batch],
            "KvCache::append: batch {batch} differs from the cache's {}",
            self.lengths.dims()[0]
        );
        assert_eq!(
            positions.dims(),
            [batch, s],
            "KvCache::append: positions shape {:?} are not [batch {batch}, s {s}]",
            positions.dims()
        );
        let padding = padding.unwrap_or_else(|| padding_mask(&vec![s; batch], s, &keys.device()));
        assert_eq!(
            padding.dims(),
            [batch, s],
            "KvCache::append: padding shape {:?} is not [batch {batch}, s {s}]",
            padding.dims()
        );
        let real = padding.clone().bool_not().int().sum_dim(1).reshape([batch]);
        let lengths = self.lengths + real;
        let slots = match self.slots {
            None => KvSlots { keys, values, padding, positions },
            Some(old) => {
                let [_, old_heads, _, old_width] = old.keys.dims();
                assert!(
                    old_heads == heads && old_width == width,
                    "KvCache::append: keys of {heads} heads × {width} do not fit cached keys of \
                     {old_heads} heads × {old_width}"
                );
                KvSlots {
                    keys: Tensor::cat(vec![old.keys, keys], 2),
                    values: Tensor::cat(vec![old.values, values], 2),
                    padding: Tensor::cat(vec![old.padding, padding], 1),
                    positions: Tensor::cat(vec![old.positions, positions], 1),
                }
            }
        };
        (KvCache { slots: Some(slots.clone()), lengths, window: self.window }, slots)
    }

    /// Drops the leading slots that no future query can see under the window (see the type's
    /// doc); a no-op without a window.
    pub fn evict(self) -> Self {
        let (Some(window), Some(slots)) = (self.window, &self.slots) else {
            return self;
        };
        let [batch, t] = slots.positions.dims();
        let positions = int_values(slots.positions.clone());
        let padding = int_values(slots.padding.clone().int());
        let lengths = int_values(self.lengths.clone());
        // The next query of row b is at lengths[b]; it sees positions > lengths[b] - window.
        let needed = |j: usize| {
            (0..batch).any(|b| {
                padding[b * t + j] == 0 && positions[b * t + j] + window as i64 > lengths[b]
            })
        };
        match (0..t).find(|&j| needed(j)) {
            Some(0) => self,
            Some(first) => self.keep(first, t - first),
            None => KvCache { slots: None, ..self },
        }
    }

    /// Keeps the first `t` slots and sets each row's length to one past its last kept real
    /// position (undoing the tokens after them).
    ///
    /// # Panics
    /// If `t` exceeds the number of slots.
    pub fn truncate(self, t: usize) -> Self {
        let held = self.len_slots();
        assert!(t <= held, "KvCache::truncate: {t} slots requested, {held} held");
        if t == 0 {
            let [batch] = self.lengths.dims();
            return KvCache::new(batch, self.window, &self.lengths.device());
        }
        let cache = self.keep(0, t);
        let Some(slots) = &cache.slots else {
            return cache;
        };
        let next = slots.positions.clone().add_scalar(1).mask_fill(slots.padding.clone(), 0);
        let lengths = next.max_dim(1).squeeze_dim(1);
        KvCache { lengths, ..cache }
    }

    /// An empty cache of the same batch and window.
    pub fn reset(self) -> Self {
        let [batch] = self.lengths.dims();
        KvCache::new(batch, self.window, &self.lengths.device())
    }

    fn keep(self, start: usize, len: usize) -> Self {
        let slots = self.slots.map(|s| KvSlots {
            keys: s.keys.narrow(2, start, len),
            values: s.values.narrow(2, start, len),
            padding: s.padding.narrow(1, start, len),
            positions: s.positions.narrow(1, start, len),
        });
        KvCache { slots, ..self }
    }
}

/// The values of a small integer tensor on the host.
fn int_values<const D: usize>(x: Tensor<D, Int>) -> Vec<i64> {
    x.into_data().iter::<i64>().collect()
}

#[cfg(test)]
mod tests;
