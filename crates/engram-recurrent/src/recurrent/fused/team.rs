//! A team of threads that run the same function on their own share of the work (SPMD), meeting
//! at a spinning barrier once per time step, and the buffers they share.
//!
//! The time loop needs one barrier per step (128 per pass in the benchmark, ~100 µs of work
//! between them), so the barrier spins instead of sleeping: `std::sync::Barrier` parks on a
//! futex, and a wake-up costs tens of microseconds. The threads are scoped OS threads, not rayon
//! tasks: a barrier between tasks deadlocks when rayon runs two of them on one worker.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One member of a team: its index, the team's size and the barrier they share.
#[derive(Clone, Copy)]
pub(crate) struct Team<'a> {
    pub(crate) index: usize,
    pub(crate) size: usize,
    barrier: &'a SpinBarrier,
}

impl Team<'_> {
    /// Waits until every member has called `sync` as often as this one; everything written
    /// before it is visible to every member after it.
    pub(crate) fn sync(&self) {
        if self.size > 1 {
            self.barrier.wait();
        }
    }

    /// This member's part of `0..n`: contiguous, in order, boundaries at multiples of `align`
    /// (so that no two members write the same cache line); possibly empty.
    pub(crate) fn share(&self, n: usize, align: usize) -> Range<usize> {
        split(n, self.size, align, self.index)
    }
}

/// Part `index` of `0..n` cut into `parts` contiguous pieces at multiples of `align`.
pub(crate) fn split(n: usize, parts: usize, align: usize, index: usize) -> Range<usize> {
    let chunk = n.div_ceil(parts).div_ceil(align) * align;
    (index * chunk).min(n)..((index + 1) * chunk).min(n)
}

/// Runs `f` on `threads` members at once: the calling thread is member 0, the others are
/// scoped threads. A panic in any member makes the others panic at their next barrier instead
/// of waiting forever, and is then propagated by the scope.
pub(crate) fn run<F: Fn(Team) + Sync>(threads: usize, f: F) {
    let barrier = SpinBarrier::new(threads.max(1));
    let member = |index| {
        let _guard = PoisonOnPanic(&barrier);
        f(Team { index, size: barrier.size, barrier: &barrier });
    };
    if barrier.size == 1 {
        member(0);
        return;
    }
    std::thread::scope(|scope| {
        for index in 1..barrier.size {
            let member = &member;
            scope.spawn(move || member(index));
        }
        member(0);
    });
}

struct SpinBarrier {
    size: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
}

impl SpinBarrier {
    fn new(size: usize) -> Self {
        SpinBarrier {
            size,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.size {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("recurrent kernel: another thread of the team panicked");
            }
            // On a busy machine the member we wait for may have lost its core; after a few
            // microseconds of spinning, give ours away instead of burning the time slice.
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

struct PoisonOnPanic<'a>(&'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// A buffer that the members of a team write in disjoint parts and read after a barrier.
///
/// It hands out raw pointers and slices without borrow checking across threads; each use says
/// why no other member writes the part it touches at the same time.
pub(crate) struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _buffer: PhantomData<&'a mut [T]>,
}

// SAFETY: `Shared` is a pointer to a buffer borrowed mutably for `'a`; the members only touch
// disjoint parts at a time (see each use), and `T` values move between threads.
unsafe impl<T: Send> Send for Shared<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    pub(crate) fn new(buffer: &'a mut [T]) -> Self {
        Shared { ptr: buffer.as_mut_ptr(), len: buffer.len(), _buffer: PhantomData }
    }

    /// A pointer to element `offset`.
    pub(crate) fn ptr(&self, offset: usize) -> *mut T {
        assert!(offset <= self.len, "recurrent kernel: offset {offset} past {}", self.len);
        // SAFETY: in bounds (or one past the end), checked above.
        unsafe { self.ptr.add(offset) }
    }

    /// `len` elements from `offset`, to write.
    ///
    /// # Safety
    /// No other member reads or writes these elements while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part_mut(&self, offset: usize, len: usize) -> &mut [T] {
        assert!(offset + len <= self.len, "recurrent kernel: {offset}+{len} past {}", self.len);
        // SAFETY: in bounds (checked above); exclusive by the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset), len) }
    }

    /// `len` elements from `offset`, to read.
    ///
    /// # Safety
    /// No member writes these elements while the slice lives.
    pub(crate) unsafe fn part(&self, offset: usize, len: usize) -> &[T] {
        assert!(offset + len <= self.len, "recurrent kernel: {offset}+{len} past {}", self.len);
        // SAFETY: in bounds (checked above); no writer by the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr.add(offset), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_range_in_order() {
        for (n, parts, align) in [(256, 2, 16), (37, 3, 1), (5, 4, 16), (1024, 3, 16), (0, 2, 1)] {
            let shares: Vec<_> = (0..parts).map(|i| split(n, parts, align, i)).collect();
            assert_eq!(shares[0].start, 0);
            assert_eq!(shares[parts - 1].end, n);
            for pair in shares.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "{n} {parts} {align}");
            }
        }
    }

    #[test]
    fn members_see_each_others_writes_after_sync() {
        const STEPS: usize = 30;
        let mut buffer = vec![0u64; 3 * STEPS];
        let shared = Shared::new(&mut buffer);
        run(3, |team| {
            for step in 1..STEPS {
                // SAFETY: member i writes element (step, i) only; the row read was written
                // before the last barrier and is not written again.
                unsafe {
                    let sum: u64 = shared.part((step - 1) * 3, 3).iter().sum();
                    shared.part_mut(step * 3 + team.index, 1)[0] = sum + 1;
                }
                team.sync();
            }
        });
        // Row s holds three copies of 3 · (row s-1) + 1 = (3^s - 1) / 2.
        for (step, row) in buffer.chunks_exact(3).enumerate() {
            let expected = (3u64.pow(step as u32) - 1) / 2;
            assert_eq!(row, [expected; 3], "row {step}");
        }
    }

    #[test]
    #[should_panic]
    fn a_panicking_member_does_not_leave_the_others_waiting() {
        run(2, |team| {
            if team.index == 1 {
                panic!("member 1 fails");
            }
            team.sync();
        });
    }
}
