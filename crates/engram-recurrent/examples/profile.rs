//! A loop to profile (`perf record`) and time: the bench's case, batch 32, 128 steps, input
//! 128, hidden 256, forward or forward+backward. `cargo run --release -p engram-recurrent
//! --example profile -- [lstm|gru|rnn] [fwd|fwdbwd] [iterations] [composed]`.
//!
//! Prints each iteration's wall time, then the fastest and the median, and the CPU time per
//! iteration of the whole process (all threads, from `/proc/self/stat` on Linux): on a machine
//! that other work keeps busy, wall time grows with the load and CPU time much less.

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use engram_recurrent::{RecurrentConfig, RecurrentKind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = match args.get(1).map(String::as_str) {
        Some("gru") => RecurrentKind::Gru,
        Some("rnn") => RecurrentKind::RnnTanh,
        _ => RecurrentKind::Lstm,
    };
    let mode = args.get(2).map_or("fwdbwd", String::as_str);
    let backward = mode == "fwdbwd";
    let iterations: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(5);
    let fused = args.get(4).is_none_or(|path| path != "composed");
    let device = engram_tensor::device(None).expect("a backend is compiled in");
    let device = if backward { device.autodiff() } else { device };
    let mut layer = RecurrentConfig::new(kind, 128, 256).init(&device);
    layer.fused = fused;
    let x = Tensor::<3>::random([32, 128, 128], Distribution::Normal(0.0, 1.0), &device);
    let mut times = Vec::with_capacity(iterations);
    let mut cpu = 0.0;
    for i in 0..=iterations {
        let (start, cpu_start) = (Instant::now(), cpu_seconds());
        let y = layer.forward(x.clone(), None, None).output;
        if backward {
            let _grads = y.mean().backward();
        } else {
            let _ = y.into_data();
        }
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        // The first iteration warms up (allocations, page faults) and is not counted.
        if i > 0 {
            times.push(elapsed);
            cpu += cpu_seconds() - cpu_start;
        }
        println!("{kind:?} {mode}: {elapsed:.1} ms");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{kind:?} {mode}: best {:.1} ms, median {:.1} ms, cpu {:.1} ms per iteration",
        times[0],
        times[times.len() / 2],
        cpu * 1e3 / iterations as f64
    );
}

/// User + system time of this process so far, all threads (Linux; zero elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces, so split after its ')').
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
