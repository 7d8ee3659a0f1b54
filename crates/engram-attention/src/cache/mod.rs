//! Key/value caches for causal attention, and the causal self-attention layer that streams with
//! them.

mod layer;
#[cfg(feature = "flex")]
mod step;

pub use layer::{CausalSelfAttention, CausalSelfAttentionConfig};

use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};
use engram_tensor::MemoryState;

/// The live slots of a [`KvCache`], as [`KvCache::slots`] returns them: one per position
/// appended and not evicted, padded ones included.
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
/// Keys and values live in preallocated `[batch, n_kv_heads, capacity, d_head]` buffers that
/// appends write in place (`slice_assign` on a buffer the cache holds alone does not copy on
/// flex); when a chunk does not fit, the live slots move to new buffers of at least twice the
/// size, so appending costs amortised O(s·d) per chunk of `s` positions, whatever the length.
/// [`reserve`](KvCache::reserve) allocates up front when the final length is known. Past
/// scores are never recomputed: a chunk of `s` queries costs O(s·capacity·d).
///
/// Rows of a batch advance together on one slot axis, so a row that is padding in a chunk still
/// gets slots there; they are marked padding and masked. Positions are kept per slot and per
/// row, so a row's rotary positions and causal order count only its real tokens. This
/// bookkeeping (lengths, positions, padding) is kept on the host: masks are built there and
/// uploaded, one small tensor per chunk, instead of being recomputed from `[batch, t]` integer
/// tensors with a dozen device ops. A chunk that comes with a padding mask reads it to the host
/// (one synchronisation); chunks without padding never wait for the device.
///
/// With a `window`, [`evict`](KvCache::evict) drops the leading slots that no row can attend to
/// any more (they stay in the buffer, masked, until the next reallocation reclaims them); rows
/// that run far apart in length keep the slots the longest-behind row still needs.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Keys and values, `[batch, n_kv_heads, capacity, d_head]`; `None` until the first append.
    buffers: Option<(Tensor<4>, Tensor<4>)>,
    /// First live slot: the ones before it were evicted.
    start: usize,
    /// One past the last live slot.
    end: usize,
    /// Position of slot `j` in row `b` at `j * batch + b`, for slots `0..end`.
    positions: Vec<i64>,
    /// Whether slot `j` of row `b` is padding, laid out as `positions`.
    padding: Vec<bool>,
    /// Real positions seen per row: the position of its next token.
    lengths: Vec<usize>,
    /// Capacity to allocate at least, from [`reserve`](KvCache::reserve).
    reserved: usize,
    /// Each query sees keys less than `window` positions behind it; `None`: all past keys.
    window: Option<usize>,
    device: Device,
}

impl MemoryState for KvCache {
    fn detach(self) -> Self {
        let buffers = self.buffers.map(|(k, v)| (k.detach(), v.detach()));
        KvCache { buffers, ..self }
    }
}

impl KvCache {
    /// An empty cache for `batch` sequences.
    ///
    /// # Panics
    /// If `window` is `Some(0)`.
    pub fn new(batch: usize, window: Option<usize>, device: &Device) -> Self {
        assert!(window != Some(0), "KvCache: window must be at least 1, got 0");
        KvCache {
            buffers: None,
            start: 0,
            end: 0,
            positions: Vec::new(),
            padding: Vec::new(),
            lengths: vec![0; batch],
            reserved: 0,
            window,
            device: device.clone(),
        }
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.lengths.len()
    }

    /// The sliding window, if any.
    pub fn window(&self) -> Option<usize> {
        self.window
    }

    /// Number of live slots (padded ones included).
    pub fn len_slots(&self) -> usize {
        self.end - self.start
    }

    /// Slots the buffers hold before the next append reallocates them (0 before the first
    /// append).
    pub fn capacity(&self) -> usize {
        self.buffers.as_ref().map_or(0, |(k, _)| k.dims()[2])
    }

    /// Number of real positions seen per sequence: the position of its next token.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Makes room for `slots` more slots without a reallocation (now if the buffers exist,
    /// otherwise at the first append): for decoding up to a known length.
    pub fn reserve(mut self, slots: usize) -> Self {
        let needed = self.len_slots() + slots;
        self.reserved = self.reserved.max(needed);
        if let Some((keys, _)) = &self.buffers
            && self.end + slots > keys.dims()[2]
        {
            let [batch, heads, _, width] = keys.dims();
            let dtype = keys.dtype();
            self.reallocate(needed, [batch, heads, width], dtype);
        }
        self
    }

    /// Positions of the next `s` tokens of each sequence, `[batch, s]`: `lengths[b] + i`.
    pub fn next_positions(&self, s: usize) -> Tensor<2, Int> {
        int_tensor(self.next_positions_host(s), [self.batch(), s], &self.device)
    }

    /// Appends `s` slots at `positions` (from [`next_positions`](KvCache::next_positions));
    /// `padding` marks the ones that are padding (right-padded rows), which do not advance their
    /// row's length. Reads `padding` and `positions` to the host.
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
        let [batch, _, s, _] = keys.dims();
        self.check_chunk(&keys, &values);
        assert_eq!(
            positions.dims(),
            [batch, s],
            "KvCache::append: positions shape {:?} are not [batch {batch}, s {s}]",
            positions.dims()
        );
        let padding = padding.map(|padding| {
            assert_eq!(
                padding.dims(),
                [batch, s],
                "KvCache::append: padding shape {:?} is not [batch {batch}, s {s}]",
                padding.dims()
            );
            bool_values(padding)
        });
        let positions = int_values(positions);
        self.push(keys, values, padding.as_deref(), &positions)
    }

    /// The live slots, `None` when there are none.
    pub fn slots(&self) -> Option<KvSlots> {
        let (keys, values) = self.buffers.as_ref()?;
        let live = self.len_slots();
        if live == 0 {
            return None;
        }
        let batch = self.batch();
        let mut positions = Vec::with_capacity(batch * live);
        let mut padding = Vec::with_capacity(batch * live);
        for b in 0..batch {
            for j in self.start..self.end {
                positions.push(self.positions[j * batch + b]);
                padding.push(self.padding[j * batch + b]);
            }
        }
        Some(KvSlots {
            keys: keys.clone().narrow(2, self.start, live),
            values: values.clone().narrow(2, self.start, live),
            padding: Tensor::from_data(TensorData::new(padding, [batch, live]), &self.device),
            positions: int_tensor(positions, [batch, live], &self.device),
        })
    }

    /// Drops the leading slots that no future query can see under the window (see the type's
    /// doc); a no-op without a window.
    pub fn evict(mut self) -> Self {
        let Some(window) = self.window else {
            return self;
        };
        let batch = self.batch();
        // The next query of row b is at lengths[b]; it sees positions > lengths[b] - window.
        let needed = |j: usize| {
            (0..batch).any(|b| {
                let i = j * batch + b;
                !self.padding[i] && self.positions[i] + window as i64 > self.lengths[b] as i64
            })
        };
        while self.start < self.end && !needed(self.start) {
            self.start += 1;
        }
        self
    }

    /// Keeps the first `t` live slots and sets each row's length to one past its last kept real
    /// position (undoing the tokens after them). The buffers keep their capacity.
    ///
    /// # Panics
    /// If `t` exceeds the number of slots.
    pub fn truncate(mut self, t: usize) -> Self {
        let held = self.len_slots();
        assert!(t <= held, "KvCache::truncate: {t} slots requested, {held} held");
        if t == 0 {
            return self.reset();
        }
        let batch = self.batch();
        self.end = self.start + t;
        self.positions.truncate(self.end * batch);
        self.padding.truncate(self.end * batch);
        for (b, length) in self.lengths.iter_mut().enumerate() {
            *length = (self.start..self.end)
                .map(|j| j * batch + b)
                .filter(|&i| !self.padding[i])
                .map(|i| self.positions[i] as usize + 1)
                .max()
                .unwrap_or(0);
        }
        self
    }

    /// An empty cache of the same batch and window; the buffers keep their capacity.
    pub fn reset(mut self) -> Self {
        self.start = 0;
        self.end = 0;
        self.positions.clear();
        self.padding.clear();
        self.lengths.iter_mut().for_each(|l| *l = 0);
        self
    }

    /// Checks a chunk of keys and values against each other and the cache.
    fn check_chunk(&self, keys: &Tensor<4>, values: &Tensor<4>) {
        let [batch, heads, _, width] = keys.dims();
        assert_eq!(
            values.dims(),
            keys.dims(),
            "KvCache::append: values shape {:?} differs from keys shape {:?}",
            values.dims(),
            keys.dims()
        );
        assert_eq!(
            batch,
            self.batch(),
            "KvCache::append: batch {batch} differs from the cache's {}",
            self.batch()
        );
        if let Some((cached, _)) = &self.buffers {
            let [_, old_heads, _, old_width] = cached.dims();
            assert!(
                old_heads == heads && old_width == width,
                "KvCache::append: keys of {heads} heads × {width} do not fit cached keys of \
                 {old_heads} heads × {old_width}"
            );
        }
    }

    /// `lengths[b] + i` for `i < s`, row-major `[batch, s]`.
    pub(crate) fn next_positions_host(&self, s: usize) -> Vec<i64> {
        self.lengths.iter().flat_map(|&l| (0..s).map(move |i| (l + i) as i64)).collect()
    }

    /// Writes a chunk after the live slots. `padding` and `positions` are row-major
    /// `[batch, s]` host values.
    pub(crate) fn push(
        mut self,
        keys: Tensor<4>,
        values: Tensor<4>,
        padding: Option<&[bool]>,
        positions: &[i64],
    ) -> Self {
        self.check_chunk(&keys, &values);
        let [batch, heads, s, width] = keys.dims();
        if s == 0 {
            return self;
        }
        if self.end + s > self.capacity() {
            let needed = self.len_slots() + s;
            let size =
                if self.buffers.is_some() { (2 * needed).max(self.capacity()) } else { needed };
            self.reallocate(size.max(self.reserved), [batch, heads, width], keys.dtype());
        }
        let (key_buffer, value_buffer) =
            self.buffers.take().expect("KvCache: buffers exist after reallocation");
        let slots = [0..batch, 0..heads, self.end..self.end + s, 0..width];
        self.buffers = Some((
            key_buffer.slice_assign(slots.clone(), keys),
            value_buffer.slice_assign(slots, values),
        ));
        for i in 0..s {
            for b in 0..batch {
                let pad = padding.is_some_and(|p| p[b * s + i]);
                self.positions.push(positions[b * s + i]);
                self.padding.push(pad);
                if !pad {
                    self.lengths[b] += 1;
                }
            }
        }
        self.end += s;
        self
    }

    /// Moves the live slots to the front of new `[batch, heads, capacity, width]` buffers
    /// (`capacity` at least the live slots).
    fn reallocate(&mut self, capacity: usize, [batch, heads, width]: [usize; 3], dtype: DType) {
        let live = self.len_slots();
        let capacity = capacity.max(live);
        let fresh = || Tensor::<4>::zeros([batch, heads, capacity, width], (&self.device, dtype));
        let moved = |old: Tensor<4>| {
            let new = fresh();
            if live == 0 {
                return new;
            }
            let old = old.narrow(2, self.start, live);
            new.slice_assign([0..batch, 0..heads, 0..live, 0..width], old)
        };
        let buffers = match self.buffers.take() {
            Some((keys, values)) => (moved(keys), moved(values)),
            None => (fresh(), fresh()),
        };
        self.buffers = Some(buffers);
        let dead = self.start * self.batch();
        self.positions.drain(..dead);
        self.padding.drain(..dead);
        self.end = live;
        self.start = 0;
    }

    /// One past the last live slot of the buffers.
    #[cfg(feature = "flex")]
    pub(crate) fn end(&self) -> usize {
        self.end
    }

    /// The whole key and value buffers, `[batch, n_kv_heads, capacity, d_head]`.
    pub(crate) fn buffers(&self) -> (Tensor<4>, Tensor<4>) {
        self.buffers.clone().expect("KvCache: buffers exist after an append")
    }

    /// `[batch, capacity]`, `true` at keys that one query per row, at `query[b]`, must not see:
    /// slots that are not live or are padding, keys after the query and keys outside the
    /// window.
    pub(crate) fn step_mask(&self, query: &[i64]) -> Tensor<2, Bool> {
        let (batch, capacity) = (self.batch(), self.capacity());
        let window = self.window.map_or(i64::MAX, |w| w as i64);
        let mut hidden = vec![true; batch * capacity];
        for (b, row) in hidden.chunks_exact_mut(capacity).enumerate() {
            for (j, hidden) in row.iter_mut().enumerate().take(self.end).skip(self.start) {
                let i = j * batch + b;
                let distance = query[b] - self.positions[i];
                *hidden = self.padding[i] || distance < 0 || distance >= window;
            }
        }
        Tensor::from_data(TensorData::new(hidden, [batch, capacity]), &self.device)
    }

    /// Per-row positions of every slot, `[batch, capacity]`, and which slots hold no key
    /// (not live, or padding), `[batch, capacity]`.
    pub(crate) fn key_positions(&self) -> (Tensor<2, Int>, Tensor<2, Bool>) {
        let (batch, capacity) = (self.batch(), self.capacity());
        let mut positions = vec![0i64; batch * capacity];
        let mut hidden = vec![true; batch * capacity];
        for b in 0..batch {
            for j in self.start..self.end {
                let i = j * batch + b;
                positions[b * capacity + j] = self.positions[i];
                hidden[b * capacity + j] = self.padding[i];
            }
        }
        (
            int_tensor(positions, [batch, capacity], &self.device),
            Tensor::from_data(TensorData::new(hidden, [batch, capacity]), &self.device),
        )
    }
}

/// An integer tensor from host values.
pub(crate) fn int_tensor(values: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The values of a small integer tensor on the host.
fn int_values<const D: usize>(x: Tensor<D, Int>) -> Vec<i64> {
    x.into_data().iter::<i64>().collect()
}

/// The values of a small boolean tensor on the host.
pub(crate) fn bool_values<const D: usize>(x: Tensor<D, Bool>) -> Vec<bool> {
    x.into_data().iter::<bool>().collect()
}

#[cfg(test)]
mod tests;
