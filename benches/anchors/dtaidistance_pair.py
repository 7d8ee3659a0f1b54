"""dtaidistance on the dtw/pair cases (random walks, f64, full and 10 % band), one thread.

Side-by-side anchor for `cargo xtask bench dtw/pair`; ../shared/anchors/dtw/bench_pair.py does the
same for dtaidistance, tslearn and aeon together but needs all three installed.
Setup: python3 -m venv /tmp/venv-dtw && /tmp/venv-dtw/bin/pip install dtaidistance numpy
Run:   /tmp/venv-dtw/bin/python benches/anchors/dtaidistance_pair.py
"""
import time, statistics, numpy as np
from dtaidistance import dtw
rng = np.random.default_rng(0)
for n in (1000, 10000):
    a = np.cumsum(rng.uniform(-1, 1, n)); b = np.cumsum(rng.uniform(-1, 1, n))
    for name, r in (("full", None), ("band10", n // 10)):
        kw = {} if r is None else {"window": r + 1}
        cells = n * n if r is None else sum(min(n, i + r + 1) - max(0, i - r) for i in range(n))
        dtw.distance_fast(a, b, **kw)
        ts = []
        for _ in range(7 if n == 1000 else 3):
            t = time.perf_counter(); dtw.distance_fast(a, b, **kw); ts.append(time.perf_counter() - t)
        m = statistics.median(ts)
        print(f"n{n}_{name}\t{m*1e3:.3f} ms\t{m/cells*1e9:.2f} ns/cell")
