"""The machine's limit, for the bench's tables: the best float32 GEMM rate one core reaches here in
the cells' BLAS (a large square product, best of several), and the FLOPs of a cell's matrix
products, so a table can say what fraction of the limit a cell's time comes to."""

from __future__ import annotations

import time

import numpy as np

SIZE = 1024  # 2 GFLOP a product: large enough for any BLAS's peak kernel, short enough to repeat
_peak: dict[str, float] = {}


def gemm_peak() -> float:
    """GFLOP/s of one core on a SIZE-cubed float32 product in the cells' BLAS (`blas.dot`), the
    best of 5; measured once a process (and per backend)."""
    from .. import blas

    if blas.BACKEND not in _peak:
        rng = np.random.default_rng(0)
        a, b = rng.random((SIZE, SIZE), np.float32), rng.random((SIZE, SIZE), np.float32)
        with blas.single_threaded():
            blas.dot(a, b)
            best = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                blas.dot(a, b)
                best = min(best, time.perf_counter() - t)
        _peak[blas.BACKEND] = 2 * SIZE**3 / best / 1e9
    return _peak[blas.BACKEND]


def product_flops(schedule, sizes: dict[str, int], T: int, B: int) -> tuple[float, float]:
    """FLOPs of a cell's matrix products over T steps of B rows: (forward and backward, forward
    alone). Each product is 2*rows*cols per row; the backward runs two more of it (the operand's
    gradient and the weight's)."""
    forward = sum(2 * sum(sizes[d] for d in g.rows) * sizes[g.operand_dim] for g in schedule.groups.values()) * T * B
    return 3.0 * forward, float(forward)
