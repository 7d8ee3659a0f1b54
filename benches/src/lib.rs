//! Shared setup for engram's criterion benchmarks: the quick or full profile, and timing that
//! waits for asynchronous backends.
//!
//! The benchmarks live in `benches/engram.rs` and, per crate, in modules here such as [`dtw`]
//! (one binary, groups named
//! `"<crate>/<op>"`, ids `"<impl>/<backend>"` so implementations sit side by side). Run them with
//! `cargo xtask bench [--backend B] [filter]`, which also prints a table of the results.
//!
//! Feature flags: `flex` (default), `ndarray`, `wgpu` forward to engram-tensor; the backend is
//! picked at run time by [`engram_tensor::device`], so `ENGRAM_BACKEND` chooses among the
//! compiled-in ones.
#![warn(missing_docs)]

pub mod attention;
pub mod dtw;
pub mod recurrent;
pub mod tasks;

use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use criterion::Criterion;

/// Environment variable that switches from the quick profile to criterion's full defaults.
pub const FULL_ENV: &str = "ENGRAM_BENCH_FULL";

/// How many results a timed loop keeps alive before it waits for the device (see
/// [`time_synced`]).
const IN_FLIGHT: usize = 4;

/// The criterion configuration for engram's benches.
///
/// By default a quick profile for 2-core machines (10 samples, 1 s warm-up, 3 s measurement,
/// 10 000 bootstrap resamples), which tells regressions of about 10% apart from noise; with
/// `ENGRAM_BENCH_FULL=1` criterion's own defaults (100 samples, 3 s + 5 s, 100 000 resamples).
/// Command-line flags (`--sample-size`, ...) override both.
pub fn criterion() -> Criterion {
    if full_profile() {
        Criterion::default()
    } else {
        Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .nresamples(10_000)
    }
}

/// Whether `ENGRAM_BENCH_FULL` asks for the full profile (`1`, `true` or `yes`).
pub fn full_profile() -> bool {
    std::env::var(FULL_ENV)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Wall-clock time of `iters` calls of `op`, including the time the device needs to finish them:
/// the routine for criterion's `iter_custom`.
///
/// GPU backends (and burn's fusion) only queue work, so the clock would stop long before the
/// kernels ran. The device is synced before the clock starts (so earlier work is not billed
/// here) and before it stops. Results are kept alive until a sync, so that a lazy backend cannot
/// skip work whose output nobody reads; at most a few are held at a time to bound memory.
///
/// # Panics
/// If the device reports an execution error when synced.
pub fn time_synced<T>(device: &Device, iters: u64, mut op: impl FnMut() -> T) -> Duration {
    let mut in_flight = Vec::with_capacity(IN_FLIGHT);
    sync(device);
    let start = Instant::now();
    for _ in 0..iters {
        in_flight.push(black_box(op()));
        if in_flight.len() == IN_FLIGHT {
            sync(device);
            in_flight.clear();
        }
    }
    sync(device);
    let elapsed = start.elapsed();
    drop(in_flight);
    elapsed
}

fn sync(device: &Device) {
    if let Err(err) = device.sync() {
        panic!("benchmark: the device failed to execute queued work: {err:?}");
    }
}
