//! The general DTW kernel: row by row over two buffers, any cost, any dimension, any window,
//! with early abandoning.

use crate::float::Float;
use crate::window::Band;

/// DTW cost of an `n × m` problem whose local cost is `cost(i, j)`, row by row over `i`, in
/// `O(m)` memory.
///
/// Returns `None` as soon as the cost is known to exceed `bound`: when, after row `i`, the
/// smallest accumulated cost in the row plus `tail(i)` is above it (`tail(i)` is a lower bound
/// on what the path must still pay after row `i`, 0 when nothing better is known), or at the
/// end. `Some(cost)` iff `cost <= bound`; pass `T::INFINITY` for no bound.
///
/// Buffers hold `m + 1` cells: index `t = j + 1`, with `t = 0` the virtual column -1.
pub(crate) fn rows_cost<T: Float, C, R>(
    n: usize,
    m: usize,
    band: &Band,
    cost: C,
    bound: T,
    tail: R,
) -> Option<T>
where
    C: Fn(usize, usize) -> T,
    R: Fn(usize) -> T,
{
    let inf = T::INFINITY;
    // Row -1: D[-1][-1] = 0 starts the path, the rest of the row is out of reach.
    let mut prev = vec![inf; m + 1];
    prev[0] = T::ZERO;
    let mut cur = vec![inf; m + 1];
    let bounded = bound < inf;
    let (mut lo, mut hi) = band.range(0);
    for i in 0..n {
        cur[lo] = inf;
        let mut left = inf;
        let mut row_min = inf;
        for t in lo + 1..=hi + 1 {
            let best = prev[t - 1].min2(prev[t]).min2(left);
            let v = cost(i, t - 1) + best;
            cur[t] = v;
            left = v;
            row_min = row_min.min2(v);
        }
        if bounded && row_min + tail(i) > bound {
            return None;
        }
        if i + 1 < n {
            // Row i + 1 reads this row up to its own hi + 1: cells right of this row's band are
            // out of reach, but the buffer still holds row i - 1's values there.
            let (next_lo, next_hi) = band.range(i + 1);
            for v in &mut cur[(hi + 2).min(m + 1)..(next_hi + 2).min(m + 1)] {
                *v = inf;
            }
            (lo, hi) = (next_lo, next_hi);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let total = prev[m];
    (total <= bound).then_some(total)
}
