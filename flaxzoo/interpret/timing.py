"""How the SNMF solver scales: seconds per iteration and peak memory for a (d, n, k) fit on synthetic GELU data.

Run each size in a fresh process (`python -m flaxzoo.interpret.timing D N K ITERS`) so the peak
resident memory (ru_maxrss) belongs to that fit alone.
"""
from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def synthetic_gelu_activations(d: int, n: int, seed: int = 0, rank: int = 64) -> np.ndarray:
    """GELU(low-rank + noise) (d, n) float32: signed, heavy on the positive side, like real MLP hidden units."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((d, rank), np.float32) / np.float32(np.sqrt(rank))
    A = np.empty((d, n), np.float32)
    for start in range(0, n, 1024):  # in column chunks, so the peak memory measured is the fit's, not this
        m = min(1024, n - start)
        pre = basis @ rng.standard_normal((rank, m), np.float32) + 0.3 * rng.standard_normal((d, m), np.float32)
        A[:, start:start + m] = 0.5 * pre * (1 + np.tanh(0.7978845608 * (pre + 0.044715 * pre ** 3)))
    return A


def time_fit(d: int, n: int, k: int, iters: int, sparsity: float = 0.01) -> dict:
    from flaxzoo.interpret import snmf

    A = synthetic_gelu_activations(d, n)
    snmf.fit(A, k, sparsity=sparsity, max_iter=2, patience=10, chunk=iters)  # compile once, same chunk
    start = time.perf_counter()
    result = snmf.fit(A, k, sparsity=sparsity, max_iter=iters, patience=iters + 1, chunk=iters)
    seconds = time.perf_counter() - start
    return dict(d=d, n=n, k=k, iters=result.n_iter, s_per_iter=seconds / result.n_iter,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                A_mb=A.nbytes / 2 ** 20, relative_error=result.relative_error(A))


if __name__ == "__main__":
    d, n, k, iters = (int(v) for v in sys.argv[1:5])
    print(json.dumps(time_fit(d, n, k, iters)))
