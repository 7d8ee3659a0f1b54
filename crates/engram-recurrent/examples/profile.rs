//! A loop to profile (`perf record`): the bench's case, batch 32, 128 steps, input 128, hidden
//! 256, forward or forward+backward. `cargo run --release -p engram-recurrent --example profile
//! -- [lstm|gru|rnn] [fwd|fwdbwd] [iterations]`.

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
    let backward = args.get(2).is_none_or(|mode| mode == "fwdbwd");
    let iterations: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(5);
    let device = engram_tensor::device(None).expect("a backend is compiled in");
    let device = if backward { device.autodiff() } else { device };
    let layer = RecurrentConfig::new(kind, 128, 256).init(&device);
    let x = Tensor::<3>::random([32, 128, 128], Distribution::Normal(0.0, 1.0), &device);
    for _ in 0..iterations {
        let start = Instant::now();
        let y = layer.forward(x.clone(), None, None).output;
        if backward {
            let _grads = y.mean().backward();
        } else {
            let _ = y.into_data();
        }
        println!(
            "{kind:?} {}: {:.1} ms",
            args.get(2).map_or("fwdbwd", String::as_str),
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}
