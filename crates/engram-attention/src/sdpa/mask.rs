//! Which keys each query may see: key padding, causal order and sliding windows, combined.

use burn::tensor::{Bool, Device, Int, Tensor};

/// Where queries and keys sit in their sequences, for causal and window masks.
// Built once per attention call and moved, never stored in bulk: boxing the tensors of the large
// variant would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Positions {
    /// Key `j` is at position `j` and query `i` at `query_offset + i` in every row: a prompt
    /// (`query_offset = 0`) or a chunk that continues after `query_offset` cached keys.
    Aligned {
        /// Position of the first query.
        query_offset: usize,
    },
    /// Explicit per-row positions, for caches whose rows have different lengths or hold padded
    /// slots: `query` is `[batch, tq]`, `key` is `[batch, tk]`.
    PerRow {
        /// `[batch, tq]` position of each query in its sequence.
        query: Tensor<2, Int>,
        /// `[batch, tk]` position of each key in its sequence.
        key: Tensor<2, Int>,
    },
}

/// A combination of key padding, causal and sliding-window masks, built lazily into one boolean
/// mask (`true` leaves a key out, burn's convention).
///
/// - *Key padding*: `[batch, tk]`, `true` at keys that are padding.
/// - *Causal*: a query at position `p` sees keys at positions `<= p`.
/// - *Window* `w`: a query at position `p` sees keys at positions `> p - w`, so with causal
///   order it sees at most the `w` most recent keys (itself included).
///
/// Positions come from [`Positions`] (default: aligned with offset 0).
///
/// # Example
/// ```
/// use engram_attention::AttentionMask;
/// // A decoding step: one query after 5 cached keys, seeing the 3 most recent.
/// let mask = AttentionMask::causal(5).with_window(3);
/// assert!(mask.is_causal());
/// ```
#[derive(Clone, Debug)]
pub struct AttentionMask {
    key_padding: Option<Tensor<2, Bool>>,
    causal: bool,
    window: Option<usize>,
    positions: Positions,
}

impl Default for AttentionMask {
    fn default() -> Self {
        Self::none()
    }
}

impl AttentionMask {
    /// No mask: every query sees every key.
    pub fn none() -> Self {
        AttentionMask {
            key_padding: None,
            causal: false,
            window: None,
            positions: Positions::Aligned { query_offset: 0 },
        }
    }

    /// Causal order with the first query at position `query_offset` (the number of keys that
    /// precede the queries, e.g. cached ones).
    pub fn causal(query_offset: usize) -> Self {
        AttentionMask {
            causal: true,
            positions: Positions::Aligned { query_offset },
            ..Self::none()
        }
    }

    /// Adds a key padding mask, `[batch, tk]`, `true` at padding.
    pub fn with_key_padding(mut self, key_padding: Tensor<2, Bool>) -> Self {
        self.key_padding = Some(key_padding);
        self
    }

    /// Adds a sliding window: each query sees keys less than `window` positions behind it.
    ///
    /// # Panics
    /// If `window` is 0.
    pub fn with_window(mut self, window: usize) -> Self {
        assert!(window > 0, "AttentionMask: window must be at least 1, got 0");
        self.window = Some(window);
        self
    }

    /// Turns causal order on or off.
    pub fn with_causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Replaces the positions used by the causal and window masks.
    pub fn with_positions(mut self, positions: Positions) -> Self {
        self.positions = positions;
        self
    }

    /// Whether causal order is on.
    pub fn is_causal(&self) -> bool {
        self.causal
    }

    /// The sliding window, if any.
    pub fn window(&self) -> Option<usize> {
        self.window
    }

    /// Key padding, causal order, window and positions, for paths that apply them blockwise.
    pub(crate) fn parts(&self) -> (Option<&Tensor<2, Bool>>, bool, Option<usize>, &Positions) {
        (self.key_padding.as_ref(), self.causal, self.window, &self.positions)
    }

    /// True when the mask leaves nothing out.
    pub fn is_empty(&self) -> bool {
        self.key_padding.is_none() && !self.causal && self.window.is_none()
    }

    /// Builds the mask for `batch` rows, `tq` queries and `tk` keys, `true` where a key is left
    /// out; `None` when nothing is.
    ///
    /// # Shapes
    /// - output: `[batch or 1, 1, tq, tk]` (broadcast over heads, and over the batch when neither
    ///   padding nor per-row positions are given).
    ///
    /// # Panics
    /// If the key padding is not `[batch, tk]` or per-row positions are not `[batch, tq]` and
    /// `[batch, tk]`.
    pub fn build(
        &self,
        batch: usize,
        tq: usize,
        tk: usize,
        device: &Device,
    ) -> Option<Tensor<4, Bool>> {
        let order = self.order_mask(batch, tq, tk, device);
        let padding = self.key_padding.clone().map(|padding| {
            assert_eq!(
                padding.dims(),
                [batch, tk],
                "AttentionMask: key padding shape {:?} is not [batch {batch}, tk {tk}]",
                padding.dims()
            );
            padding.reshape([batch, 1, 1, tk])
        });
        match (order, padding) {
            (None, None) => None,
            (Some(m), None) | (None, Some(m)) => Some(m),
            (Some(order), Some(padding)) => {
                let rows = order.dims()[0].max(batch);
                let order = order.expand([rows, 1, tq, tk]);
                Some(order.bool_or(padding.expand([rows, 1, tq, tk])))
            }
        }
    }

    /// Causal and window masks from positions, `[batch or 1, 1, tq, tk]`; `None` without either.
    fn order_mask(
        &self,
        batch: usize,
        tq: usize,
        tk: usize,
        device: &Device,
    ) -> Option<Tensor<4, Bool>> {
        if !self.causal && self.window.is_none() {
            return None;
        }
        let (query, key) = match &self.positions {
            Positions::Aligned { query_offset } => {
                let query = Tensor::<1, Int>::arange(0..tq as i64, device)
                    .add_scalar(*query_offset as i64)
                    .reshape([1, 1, tq, 1]);
                let key = Tensor::<1, Int>::arange(0..tk as i64, device).reshape([1, 1, 1, tk]);
                (query, key)
            }
            Positions::PerRow { query, key } => {
                assert_eq!(
                    query.dims(),
                    [batch, tq],
                    "AttentionMask: query positions shape {:?} are not [batch {batch}, tq {tq}]",
                    query.dims()
                );
                assert_eq!(
                    key.dims(),
                    [batch, tk],
                    "AttentionMask: key positions shape {:?} are not [batch {batch}, tk {tk}]",
                    key.dims()
                );
                (query.clone().reshape([batch, 1, tq, 1]), key.clone().reshape([batch, 1, 1, tk]))
            }
        };
        let rows = query.dims()[0];
        let query = query.expand([rows, 1, tq, tk]);
        let key = key.expand([rows, 1, tq, tk]);
        // key - query: positive in the future, <= -window too far in the past.
        let delta = key - query;
        let future = self.causal.then(|| delta.clone().greater_elem(0));
        let old = self.window.map(|window| delta.lower_equal_elem(-(window as i64)));
        match (future, old) {
            (Some(future), Some(old)) => Some(future.bool_or(old)),
            (future, old) => future.or(old),
        }
    }
}
