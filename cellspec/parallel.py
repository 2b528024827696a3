"""The batch-parallel driver's machinery: one thread pool kept for later calls, a batch cut into
contiguous chunks, and a function run on threads with numpy's BLAS single-threaded. When a call is
split is the runtime's decision (`CellBase.batch_chunks`)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import blas


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()  # two threads' calls may ask for a pool at once


def pool(n: int) -> ThreadPoolExecutor:
    """A pool of at least n threads, kept for later calls."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] < n:
            _POOL = (n, ThreadPoolExecutor(n, thread_name_prefix="cellspec"))
        return _POOL[1]


def chunks(B: int, n: int) -> list[slice]:
    """n nearly equal, contiguous slices of range(B)."""
    edges = [B * i // n for i in range(n + 1)]
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


def cut(arrays: dict, sl: slice, axis: int, own: bool = False) -> dict:
    """The batch slice sl of each array (batch on `axis`), C-contiguous for the kernels; with
    `own`, always a copy (a slice of a one-step sequence is contiguous already, so it would
    otherwise be a view)."""
    out = {}
    for k, v in arrays.items():
        part = v[:, sl] if axis == 1 else v[sl]
        out[k] = np.array(part, order="C") if own else np.ascontiguousarray(part)
    return out


def on_threads(fn, args: list) -> list:
    """fn(*a) for each a in args, on as many threads, with numpy's BLAS single-threaded (each
    thread is a core's worth of work already) and restored afterwards."""
    with blas.single_threaded():
        return list(pool(len(args)).map(lambda a: fn(*a), args))
