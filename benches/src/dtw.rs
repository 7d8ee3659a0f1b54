//! Benchmarks of engram-dtw: one pair of long series (`dtw/pair`), multivariate series
//! (`dtw/multivariate`), a pairwise distance matrix on 1 and 2 threads (`dtw/matrix`) and
//! soft-DTW value and gradient (`dtw/softdtw`), on the cases of the DTW anchors
//! (`shared/anchors/dtw`) so that the ns/cell figures compare with dtaidistance's, tslearn's,
//! aeon's and pysdtw's.
//!
//! Throughput is counted in DP cells (`n * m`, or the band's area), so criterion's
//! elements/s read directly as cells/s. Random walks as in the anchors; the kernels have no
//! data-dependent branches, so the values do not change the speed.

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::{DType, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use engram_dtw::{
    DtwOptions, Series, Window, distance_matrix, dtw_distance, soft_dtw, window_cells,
};

/// A seeded random walk with uniform steps in [-1, 1) (SplitMix64).
fn random_walk(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut x = 0.0;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            x += (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            x
        })
        .collect()
}

fn cells(window: &Window, n: usize, m: usize) -> u64 {
    match window_cells(window, n, m) {
        Ok(cells) => cells as u64,
        Err(err) => panic!("dtw bench: bad window {window:?}: {err}"),
    }
}

/// `dtw/pair`: univariate f64, 1000 and 10000 points, no window and a 10 % Sakoe-Chiba band.
pub fn dtw_pair(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtw/pair");
    for n in [1000, 10_000] {
        let (a, b) = (random_walk(n, 1), random_walk(n, 2));
        for (name, window) in
            [("full", Window::Full), ("band10", Window::SakoeChiba { radius: n / 10 })]
        {
            let options = DtwOptions::default().with_window(window);
            group.throughput(Throughput::Elements(cells(&window, n, n)));
            let id = BenchmarkId::new("engram/f64", format!("n{n}_{name}"));
            group.bench_function(id, |bench| {
                bench.iter(|| dtw_distance(black_box(&a), black_box(&b), &options))
            });
        }
    }
    group.finish();
    dtw_multivariate(c);
}

/// `dtw/multivariate`: dependent DTW, squared Euclidean cost between 16-dimensional points,
/// 512 × 512, no window and a 10 % band (the anchors' `bench_multivariate.py`). Run from
/// `dtw_pair` so that the list of bench functions in `benches/engram.rs` stays as it is.
fn dtw_multivariate(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtw/multivariate");
    let (n, dim) = (512, 16);
    // Each channel its own random walk, interleaved row-major.
    let interleave = |seed: u64| -> Vec<f64> {
        let channels: Vec<Vec<f64>> =
            (0..dim).map(|c| random_walk(n, seed * 100 + c as u64)).collect();
        (0..n * dim).map(|k| channels[k % dim][k / dim]).collect()
    };
    let (a, b) = (interleave(1), interleave(2));
    let series = |data| match Series::new(data, dim) {
        Ok(series) => series,
        Err(err) => panic!("dtw bench: bad multivariate series: {err}"),
    };
    let (a, b) = (series(&a), series(&b));
    for (name, window) in [("full", Window::Full), ("band10", Window::SakoeChiba { radius: 51 })] {
        let options = DtwOptions::default().with_window(window);
        group.throughput(Throughput::Elements(cells(&window, n, n)));
        let id = BenchmarkId::new("engram/f64", format!("n{n}_d{dim}_{name}"));
        group.bench_function(id, |bench| {
            bench.iter(|| dtw_distance(black_box(a), black_box(b), &options))
        });
    }
    group.finish();
}

/// `dtw/matrix`: the upper triangle of the distance matrix of 200 series of 256 points, no
/// window, on 1 and 2 threads.
pub fn dtw_matrix(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtw/matrix");
    let (count, len) = (200, 256);
    let data: Vec<Vec<f64>> = (0..count).map(|s| random_walk(len, 100 + s as u64)).collect();
    let series: Vec<Series<'_, f64>> = data.iter().map(Series::from).collect();
    let pairs = (count * (count - 1) / 2) as u64;
    group.throughput(Throughput::Elements(pairs * (len * len) as u64));
    for threads in [1, 2] {
        let id = BenchmarkId::new("engram/f64", format!("s{count}_n{len}_t{threads}"));
        group.bench_function(id, |bench| {
            bench
                .iter(|| distance_matrix(black_box(&series), &DtwOptions::default(), Some(threads)))
        });
    }
    group.finish();
}

/// `dtw/softdtw`: soft-DTW value and gradient with respect to `x` for a batch of 32 pairs of
/// 256 points in 8 dimensions, γ = 0.1: the anchors' case (tslearn, pysdtw), in f32 (the
/// backend's default float) and, where the backend has it, f64 (the anchors' precision).
/// Throughput counts the DP cells of the forward recursion, `32 · 256 · 256`. The batch runs on
/// rayon's global pool, whose size the id ends with: `RAYON_NUM_THREADS=1` for one thread.
///
/// With `ENGRAM_BENCH_CPU=1` the time is the process's CPU time (all threads; ids end `_cpu`),
/// as the anchors' `cpu_ns_per_cell`: on a shared machine it is the steadier measure of the
/// work, while wall time measures the share of the cores the job got.
pub fn dtw_softdtw(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtw/softdtw");
    let backend = match engram_tensor::select_backend(None) {
        Ok(backend) => backend,
        Err(err) => panic!("dtw bench: no usable backend: {err}"),
    };
    let device = match backend.device() {
        Ok(device) => device.autodiff(),
        Err(err) => panic!("dtw bench: cannot create the {backend} device: {err}"),
    };
    let (batch, len, dim) = (32, 256, 8);
    let threads = engram_tensor::cpu_threads();
    let x = Tensor::<3>::random([batch, len, dim], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<3>::random([batch, len, dim], Distribution::Normal(0.0, 1.0), &device);
    let mut dtypes = vec![("f32", DType::F32)];
    if engram_tensor::supports_f64(&device) {
        dtypes.push(("f64", DType::F64));
    }
    group.throughput(Throughput::Elements((batch * len * len) as u64));
    for (name, dtype) in dtypes {
        let (x, y) = (x.clone().cast(dtype), y.clone().cast(dtype));
        let cpu = std::env::var_os("ENGRAM_BENCH_CPU").is_some_and(|v| v == "1");
        let suffix = if cpu { "_cpu" } else { "" };
        let params = format!("b{batch}_n{len}_d{dim}_{name}_t{threads}{suffix}");
        let id = BenchmarkId::new(format!("engram/{backend}"), params);
        group.bench_function(id, |bench| {
            bench.iter_custom(|iters| {
                let start = process_cpu_time();
                let wall = crate::time_synced(&device, iters, || {
                    let x = x.clone().require_grad();
                    let loss = soft_dtw(x.clone(), y.clone(), None, None, 0.1).sum();
                    x.grad(&loss.backward())
                });
                match (cpu, start, process_cpu_time()) {
                    (true, Some(start), Some(end)) => end.saturating_sub(start),
                    _ => wall,
                }
            })
        });
    }
    group.finish();
}

/// The CPU time of this process, all threads (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`);
/// `None` where it is not read (other than 64-bit Linux) or fails.
fn process_cpu_time() -> Option<Duration> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            tv_sec: i64,
            tv_nsec: i64,
        }
        unsafe extern "C" {
            fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
        }
        const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
        let mut time = Timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: the C library's `clock_gettime` on 64-bit Linux, where `struct timespec` is
        // two 64-bit integers; `time` is a valid, writable one.
        let status = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut time) };
        if status == 0 {
            return Some(Duration::new(time.tv_sec as u64, time.tv_nsec as u32));
        }
    }
    None
}
