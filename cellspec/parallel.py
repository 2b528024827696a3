"""The batch-parallel driver's machinery: one thread pool kept for later calls, a batch cut into
contiguous chunks (each chunk's rows a `Part`), and a function run on threads with numpy's BLAS
single-threaded. When a call is split is the runtime's decision (`CellBase.batch_chunks`)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import blas, lengths


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


class Part:
    """The rows `sl` of a batch as one chunk's thread runs them: a plain cut of the batch, or,
    for a ragged batch (a `lengths.Ragged`), those rows in the kernels' order, longest first,
    with zeros past each sequence's end where a kernel must read none of the caller's. `take`
    and `take_rows` make the chunk's arrays ([T,B,..] and [B,..], or an input the generated
    passes read as packed rows alone, the cell's PACKED_INPUTS, as those rows: [rows, n]); `put`
    and `put_rows` write its results back into the whole batch's, in the caller's order."""

    __slots__ = ("sl", "ragged", "rows", "active")

    def __init__(self, sl: slice, active: np.ndarray, ragged=None):
        # active: the kernels' `_active` for these rows, one entry per step they run
        self.sl, self.ragged, self.active = sl, ragged, active
        self.rows = sl if ragged is None else ragged.rows(sl)

    def take(self, arrays: dict, own: bool = False, zero: bool = True, packed=()) -> dict:
        """[T,B,..] arrays' rows (a ragged batch's: always copies, of the steps the kernels run,
        zeroed past each end unless not `zero`); those named in `packed` as packed rows."""
        if self.ragged is None:
            out = cut(arrays, self.sl, 1, own)
            return {k: v.reshape(-1, v.shape[2]) if k in packed else v for k, v in out.items()}
        steps = len(self.active)
        return lengths.gather({k: v[:steps] for k, v in arrays.items()}, self.rows, self.active, zero, packed)

    def take_rows(self, arrays: dict) -> dict:
        """[B,..] arrays' rows."""
        return cut(arrays, self.sl, 0) if self.ragged is None else {k: np.ascontiguousarray(v[self.rows]) for k, v in arrays.items()}

    def put(self, parts: dict, arrays: dict) -> None:
        """The chunk's [T,B,..] results, or packed rows ([rows, n]), into `arrays` (a ragged
        batch's: the steps its kernels ran, zeros past each end; later steps are left as `arrays`
        has them)."""
        if self.ragged is None:
            for k, v in parts.items():
                target = arrays[k][:, self.sl]
                target[...] = v.reshape(target.shape) if v.ndim == 2 else v
        else:
            lengths.scatter(parts, self.rows, self.active, arrays)

    def put_rows(self, parts: dict, arrays: dict) -> None:
        for k, v in parts.items():
            arrays[k][self.rows] = v


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
    thread is a core's worth of work already) and restored afterwards; each thread is in a
    `single_threaded()` block of its own, so that `blas.threads()` says 1 there too."""

    def one(a):
        with blas.single_threaded():
            return fn(*a)

    with blas.single_threaded():
        return list(pool(len(args)).map(one, args))
