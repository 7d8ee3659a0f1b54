//! Test support: a seeded generator and brute-force references written straight from the
//! definitions, independent of the kernels they check.

use crate::{Cost, Window};

/// SplitMix64: small, seeded, good enough for test inputs.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn series(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.uniform()).collect()
    }

    /// A random walk, closer to real series than white noise.
    pub(crate) fn walk(&mut self, len: usize) -> Vec<f64> {
        let mut x = 0.0;
        (0..len)
            .map(|_| {
                x += self.uniform();
                x
            })
            .collect()
    }
}

/// Whether cell `(i, j)` of an `n × m` matrix is inside `window`, from the definitions in
/// [`Window`]'s documentation.
pub(crate) fn allowed(window: &Window, n: usize, m: usize, i: usize, j: usize) -> bool {
    let (i, j, n, m) = (i as f64, j as f64, n as f64, m as f64);
    match *window {
        Window::Full => true,
        Window::SakoeChiba { radius } => {
            let r = radius as f64;
            let d = j - i;
            -(r + (n - m).max(0.0)) <= d && d <= r + (m - n).max(0.0)
        }
        Window::Itakura { max_slope: s } => {
            if n == 1.0 || m == 1.0 {
                return true;
            }
            let (nf, mf, e) = (n - 1.0, m - 1.0, 1e-9);
            j >= i * mf / (nf * s) - e
                && j <= i * mf * s / nf + e
                && mf - j >= (nf - i) * mf / (nf * s) - e
                && mf - j <= (nf - i) * mf * s / nf + e
        }
    }
}

/// The cheapest warping path by enumerating all of them (tiny inputs only); `None` when no path
/// stays inside the window. Returns the cost and the path.
pub(crate) fn brute_force(
    a: &[f64],
    b: &[f64],
    dim: usize,
    cost: Cost,
    window: &Window,
) -> Option<(f64, Vec<(usize, usize)>)> {
    let (n, m) = (a.len() / dim, b.len() / dim);
    let local = |i: usize, j: usize| cost.local(&a[i * dim..][..dim], &b[j * dim..][..dim]);
    let ok = |i: usize, j: usize| allowed(window, n, m, i, j);
    if !ok(0, 0) {
        return None;
    }
    let mut walker = Walker { ok: &ok, local: &local, n, m, path: vec![(0, 0)], best: None };
    walker.walk(0, 0, local(0, 0));
    walker.best
}

struct Walker<'a> {
    ok: &'a dyn Fn(usize, usize) -> bool,
    local: &'a dyn Fn(usize, usize) -> f64,
    n: usize,
    m: usize,
    path: Vec<(usize, usize)>,
    best: Option<(f64, Vec<(usize, usize)>)>,
}

impl Walker<'_> {
    fn walk(&mut self, i: usize, j: usize, acc: f64) {
        if (i, j) == (self.n - 1, self.m - 1) {
            if self.best.as_ref().is_none_or(|(c, _)| acc < *c) {
                self.best = Some((acc, self.path.clone()));
            }
            return;
        }
        for (di, dj) in [(1, 1), (1, 0), (0, 1)] {
            let (ni, nj) = (i + di, j + dj);
            if ni < self.n && nj < self.m && (self.ok)(ni, nj) {
                self.path.push((ni, nj));
                self.walk(ni, nj, acc + (self.local)(ni, nj));
                self.path.pop();
            }
        }
    }
}

/// `|x - y| <= tol * (1 + |y|)`, with a message naming `what`.
pub(crate) fn assert_close(x: f64, y: f64, tol: f64, what: &str) {
    assert!(
        (x - y).abs() <= tol * (1.0 + y.abs()) || (x.is_infinite() && x == y),
        "{what}: {x} vs reference {y} (tolerance {tol})"
    );
}
