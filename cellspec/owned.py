"""The step kernel that keeps its weights: an inference pass whose time loop runs on P threads at
once, each owning a slice of the hidden units (every gate of those units), so that each thread
reads only its columns of the recurrent weights, step after step, and keeps them in its own
core's cache; the threads meet once per step (`meet`), when every unit of the new state is there
for the next step's products. This is how oneDNN's LSTM runs below the plain-BLAS floor and how
cuDNN's persistent kernels work. The generated kernels (`_loop_infer_owned`, emitted where a
cell's time loop is one stage of products of the dim its loops run over, `OWNED`) take the slice
`_u0:_u1`, the thread count and the barrier's counter before their other arguments.

When it runs (`unit_slices`): an inference call (tape=False) on a CBLAS backend that does not
thread its own products (MKL's sequential layer), with 2 or more threads, where the batch-chunked
schedule would leave a thread idle (fewer chunks than threads: on MKL, under 8 rows a chunk, so a
batch of under 16 rows on 2 threads), the recurrent weights are at least `MIN_CACHES` of one
core's L2 cache, and each unit evaluates at least `MIN_WORK` transcendentals a step. Measured on
MKL, 2 threads, Intel Xeon (2 MiB of L2 a core), inference forward, against the batch-chunked
schedule in one process (interleaved, medians of 15 rounds, no other library between calls):
lstm at H=512 (T=50) 0.86, 0.77 and 0.88 of its time at B = 1, 4 and 8, at H=384 (B=8) 0.91; gru
at H=512 (B=8) 0.94; lstm_peephole 0.97; but the Elman RNN (one tanh a unit) 1.29, and lstm at
H=256 (weights half an L2) 1.11-1.18. Where the batch splits into a chunk per thread the chunks
need no barrier and win or tie: S3 (B=16, H=512) 1.03-1.14 for lstm, gru and lstm_peephole, S1,
S2 and S5 1.5-2.7; lstm at H=768 and 1024 (B=16) 1.00 and 0.94 (gru 0.87), left to the chunks.
Those were measured before the kernels' loop over the owned units was vectorised (`range(_u1 -
_u0)` through views of the thread's units; the README has the measure); after it, at S3, lstm
1.09, gru 1.08 and lstm_peephole 0.94 of the chunks' time (31 rounds): the rule stands. A
training call (tape=True) keeps the chunks: its backward pass would otherwise run on one core.

Imports numpy, numba and cellspec's blas and parallel, never the compiler."""

from __future__ import annotations

import contextlib
import glob
import os

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import blas, parallel

# the owned path where the recurrent weights are at least this many L2 caches of one core: it lost
# at 0.5 (H=256) and won at 1.1 (H=384), measured as in the docstring
MIN_CACHES = 1.0
# and where each unit evaluates this many transcendentals a step: the Elman RNN (1) lost, the GRU
# (3) and the LSTMs (5) won
MIN_WORK = 3
# each thread's slice of units is a multiple of this many (64 bytes of float32), so that no two
# threads write one cache line of a state's row
ALIGN = 16
# a thread's slice has at least this many units: the barrier costs more than a smaller step
MIN_UNITS = 64
_FALLBACK_L2 = 1 << 20
_forced: bool | None = None


def l2_bytes() -> int:
    """One core's L2 cache in bytes, from Linux's sysfs; 1 MiB where it cannot be read."""
    for folder in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(os.path.join(folder, "level")) as f:
                level = f.read().strip()
            with open(os.path.join(folder, "size")) as f:
                text = f.read().strip()
        except OSError:
            continue
        if level == "2" and text[:-1].isdigit():
            scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1])
            if scale:
                return int(text[:-1]) * scale
    return _FALLBACK_L2


_L2 = l2_bytes()


@contextlib.contextmanager
def forced(on: bool | None):
    """Inside the block, inference calls take the owned path wherever the cell has it (True),
    never (False), or by the rule (None), on any CBLAS backend and at any size: for tests and
    benchmarks."""
    global _forced
    before, _forced = _forced, on
    try:
        yield
    finally:
        _forced = before


def slices(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous slices of range(n), each a multiple of ALIGN units but the last."""
    step = -(-n // parts)
    step = -(-step // ALIGN) * ALIGN
    edges = [min(n, i * step) for i in range(parts)] + [n]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def unit_slices(cell, B: int) -> list[tuple[int, int]] | None:
    """The slices of the owned dim's units that an inference call of `cell` with B rows runs its
    time loop's threads on, or None for the batch-chunked schedule (see the module docstring)."""
    owned = cell.OWNED
    if owned is None or _forced is False or not blas.CBLAS:
        return None
    threads = cell.threads if cell.threads is not None else blas.threads()
    n = cell.dims[owned["dim"]]
    if _forced is None:
        if blas.threads_its_products() or len(cell.batch_chunks(B)) >= threads:
            return None
        weights = sum(cell.dims[d] * blocks for d, blocks in owned["weights"]) * n * np.dtype(cell.dtype).itemsize
        work = sum(count for d, count in cell.TRANSCENDENTALS if d == owned["dim"])
        if weights < MIN_CACHES * _L2 or work < MIN_WORK:
            return None
        threads = min(threads, n // MIN_UNITS)
    out = slices(n, min(threads, n))
    return out if len(out) > 1 else None


def run(kernel, units: list[tuple[int, int]], args: tuple) -> None:
    """kernel(u0, u1, P, counter, *args) on one thread per slice of `units`, BLAS single-threaded
    on each (parallel.on_threads); they meet on `counter` once a step."""
    counter = np.zeros(1, np.int64)
    parallel.on_threads(lambda u0, u1: kernel(u0, u1, len(units), counter, *args), units)


def _first(context, builder, aryty, ary):
    a = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, a, [context.get_constant(types.intp, 0)])


@intrinsic
def _add(typingctx, counter, value):
    """counter[0] += value, atomically (sequentially consistent); the old value."""

    def codegen(context, builder, sig, args):
        return builder.atomic_rmw("add", _first(context, builder, sig.args[0], args[0]), args[1], "seq_cst")

    return types.int64(counter, types.int64), codegen


@intrinsic
def _load(typingctx, counter):
    """counter[0], read atomically with acquire order: what the threads wrote before their `_add`
    is seen after it."""

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_first(context, builder, sig.args[0], args[0]), "acquire", 8)

    return types.int64(counter), codegen


def meet(counter, target):
    """Count this thread in at the barrier, then wait until `target` threads have (njit only)."""
    raise NotImplementedError("meet runs inside jitted kernels only")



@overload(meet, inline="always")
def _meet(counter, target):
    def impl(counter, target):
        _add(counter, 1)
        while _load(counter) < target:
            pass

    return impl
