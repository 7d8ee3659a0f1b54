//! Time and peak memory of one causal attention forward+backward at long lengths (batch 1, 8
//! heads, head width 64), one child process per case so that each peak (VmHWM) is its own.
//!
//! ```sh
//! cargo run --release -p engram-attention --example long_train -- 4096 16384
//! cargo run --release -p engram-attention --example long_train -- --naive 4096
//! ```
//!
//! `--naive` runs the explicit path (scores, masked softmax, matmul) that burn's autodiff
//! differentiates op by op, for comparison; the default is the memory-efficient path.

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use engram_attention::{AttentionMask, AttentionOptions, AttentionPath, attention};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path, seq] = args.as_slice()
        && flag == "--child"
    {
        child(path, seq.parse().expect("long_train: the length is a number"));
        return;
    }
    let naive = args.iter().any(|a| a == "--naive");
    let path = if naive { "naive" } else { "memory-efficient" };
    let exe = std::env::current_exe().expect("long_train: the path of this executable");
    println!("path\tseq\tforward+backward_s\tpeak_rss_MiB\tbaseline_rss_MiB");
    for seq in args.iter().filter(|a| !a.starts_with("--")) {
        let out = Command::new(&exe)
            .args(["--child", path, seq])
            .output()
            .expect("long_train: cannot start the child process");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{path} seq {seq} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// One forward+backward in this process, then its peak resident memory.
fn child(path: &str, seq: usize) {
    let device = engram_tensor::device(None).expect("a backend is compiled in").autodiff();
    let baseline = vm_kib("VmRSS");
    let shape = [1, 8, seq, 64];
    let [q, k, v] =
        [0; 3].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device));
    let [q, k, v] = [q, k, v].map(|x| x.require_grad());
    let options = AttentionOptions {
        path: if path == "naive" {
            AttentionPath::Explicit
        } else {
            AttentionPath::MemoryEfficient
        },
        ..Default::default()
    };
    let start = Instant::now();
    let out = attention(q.clone(), k.clone(), v.clone(), &AttentionMask::causal(0), None, options);
    let grads = out.output.mean().backward();
    let grad = q.grad(&grads).expect("a gradient for the queries");
    device.sync().expect("the device finishes its work");
    let seconds = start.elapsed().as_secs_f64();
    // Read one value back so that nothing above can have been skipped.
    let _: f32 = grad.sum().into_scalar();
    let peak = vm_kib("VmHWM");
    println!("{path}\t{seq}\t{seconds:.2}\t{:.0}\t{:.0}", peak / 1024.0, baseline / 1024.0);
}

/// A `Vm*` line of `/proc/self/status`, in KiB (0 where there is none).
fn vm_kib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}
