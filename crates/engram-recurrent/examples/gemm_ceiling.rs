//! What the `gemm` crate reaches on the shapes of the recurrent kernel, single-threaded and on
//! rayon: `cargo run --release -p engram-recurrent --example gemm_ceiling`.

use std::time::Instant;

fn run(m: usize, k: usize, n: usize, par: gemm::Parallelism, reps: usize) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0f32; m * n];
    let mut best = f64::MAX;
    for _ in 0..reps {
        let start = Instant::now();
        // SAFETY: row-major buffers of exactly the sizes given.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

fn main() {
    let shapes = [
        ("step [32,256]x[256,1024]", 32, 256, 1024, 200),
        ("step half [32,256]x[256,512]", 32, 256, 512, 200),
        ("proj [4096,128]x[128,1024]", 4096, 128, 1024, 10),
        ("dW_hh [256,4096]x[4096,1024]", 256, 4096, 1024, 5),
        ("matmul 1024^3", 1024, 1024, 1024, 5),
    ];
    for (name, m, k, n, reps) in shapes {
        let none = run(m, k, n, gemm::Parallelism::None, reps);
        let rayon = run(m, k, n, gemm::Parallelism::Rayon(2), reps);
        println!("{name:32} none {none:6.1} GFLOP/s   rayon(2) {rayon:6.1} GFLOP/s");
    }
}
