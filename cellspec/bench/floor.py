"""The bench's floor: a cell's matrix products alone, as its call runs them, in the cells' BLAS
(`cellspec.blas`: the cell's own per-step product and `dot`) or in PyTorch's GEMM; what no
schedule over that GEMM can beat."""

from __future__ import annotations

import numba as nb
import numpy as np

from ..blas import dot, matmul, step_operand


# not cached: Numba would key its cache on this file alone, and keep the `matmul` of an older
# cellspec/blas.py (the generated modules name that file's sha256 instead); compiling it once a
# bench process takes a fraction of a second
@nb.njit(nogil=True)
def step_products(T, B, v, WT, out):
    """out = v[t*B:(t+1)*B] @ WT for each step t, as the time loops call their product: the
    kernels' own `matmul`, in the backend in use (MKL or numpy's OpenBLAS, `cellspec.blas`), with
    no Python between the steps."""
    for t in range(T):
        matmul(v[t * B:(t + 1) * B], WT, out)


class _Numpy:
    """The floor's products in the cells' BLAS: their per-step product and `dot`."""

    def __init__(self):
        self.steps = step_products
        self.dot = dot
        self.array = np.ascontiguousarray
        self.empty = lambda shape: np.empty(shape, np.float32)
        self.layout = step_operand  # the per-step products' weights as the time loops lay them out


class _Torch:
    """The floor's products in PyTorch's own GEMM (MKL in its x86 CPU builds)."""

    def __init__(self, torch):
        def steps(T, B, v, WT, out):
            for t in range(T):
                torch.mm(v[t * B:(t + 1) * B], WT, out=out)

        self.steps = steps
        self.dot = torch.mm
        self.array = lambda a: torch.from_numpy(np.ascontiguousarray(a))
        self.empty = lambda shape: torch.empty(shape)
        self.layout = lambda b, rows: b


def _products(schedule, sizes: dict[str, int], T: int, B: int, seed: int, lib):
    """The cell's matrix products over T steps of B rows in `lib`: a hoisted group as one product
    over all T*B rows, a loop group as one product per step, and the gradients of weights and
    hoisted operands as products over all rows. Returns run(backward)."""
    rng = np.random.default_rng(seed)
    R = T * B
    work = []
    for g in schedule.groups.values():
        width = sum(sizes[d] for d in g.rows)
        n = sizes[g.operand_dim]
        W = rng.normal(size=(width, n)).astype(np.float32)
        v = rng.normal(size=(R, n)).astype(np.float32)
        d = rng.normal(size=(R, width)).astype(np.float32)
        W, WT = lib.array(W), lib.array(W.T)
        if g.region != "pre":  # laid out once, as a call lays them out before its time loop
            W, WT = lib.layout(W, B), lib.layout(WT, B)
        work.append((g.region, W, WT, lib.array(v), lib.array(d)))

    def run(backward: bool):
        for region, W, WT, v, d in work:
            if region == "pre":
                lib.dot(v, WT)
                if backward:
                    lib.dot(d, W)
            else:
                out = lib.empty((B, WT.shape[1]))
                back = lib.empty((B, W.shape[1]))
                lib.steps(T, B, v, WT, out)
                if backward:
                    lib.steps(T, B, d, W, back)
            if backward:
                lib.dot(d.T, v)

    return run


def floor(schedule, sizes: dict[str, int], T: int, chunks: list[slice]):
    """The cell's matrix products alone (see `_products`), run as the generated call runs them:
    for a batch-parallel call, those of each chunk of the batch on a thread of its own with
    single-threaded BLAS. Returns (forward and backward, forward alone)."""
    from ..parallel import on_threads
    from ..runtime import blas_for_one_pass

    parts = [_products(schedule, sizes, T, sl.stop - sl.start, 1 + i, _Numpy()) for i, sl in enumerate(chunks)]
    if len(parts) == 1:
        B = chunks[0].stop - chunks[0].start

        def one(backward: bool):
            with blas_for_one_pass(B):
                parts[0](backward)

        return lambda: one(True), lambda: one(False)
    return (lambda: on_threads(lambda p: p(True), [(p,) for p in parts]),
            lambda: on_threads(lambda p: p(False), [(p,) for p in parts]))


def floor_torch(torch, schedule, sizes: dict[str, int], T: int, B: int):
    """The same products in one pass through PyTorch's GEMM on its threads: what the products
    would cost with the BLAS that PyTorch's fused cells use. (forward and backward, forward.)"""
    run = _products(schedule, sizes, T, B, 1, _Torch(torch))
    return lambda: run(True), lambda: run(False)
