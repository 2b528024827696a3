"""A batch of sequences of different lengths, as the generated kernels run it.

The time-loop kernels take `_active`, [T] integers: at step t they run the first `_active[t]`
rows of the batch and pass the others through (a state stays as it was, every other per-step
array of the step gets zeros; see `Kernels.past_the_end`). For the rows still running to be a
prefix, the batch runs sorted by length, longest first. `Ragged` is that arrangement: the checked
lengths, the permutation into the kernels' order (None when the batch is in it already) and the
active counts; each chunk's thread takes its rows in that order and puts its outputs back in the
caller's (`gather`, `scatter`). A batch whose sequences all run T steps is no `Ragged` (`arrange`
returns None): it runs exactly as a call without lengths. `Rows` is what the products over all
steps read of a batch: only the rows that ran, packed. Imports numpy and numba (the copies are
jitted loops that release the GIL).
"""

from __future__ import annotations

import numba as nb
import numpy as np


class LengthsError(ValueError):
    """`lengths` is not [B] integers in 1..T; nothing ran."""


def checked(lengths, T: int, B: int, what: str = "lengths") -> np.ndarray:
    """lengths as int64 [B], each in 1..T, or a LengthsError naming `what`."""
    if isinstance(lengths, (list, tuple)):
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in lengths):
            raise LengthsError(f"{what} must hold integers")
        lengths = np.asarray(lengths, dtype=np.int64)
    if not isinstance(lengths, np.ndarray) and hasattr(lengths, "__array__"):
        lengths = np.asarray(lengths)
    if not isinstance(lengths, np.ndarray):
        raise LengthsError(f"{what} must be a numpy array of integers, not {type(lengths).__name__}")
    if lengths.dtype == np.bool_ or not np.issubdtype(lengths.dtype, np.integer):
        raise LengthsError(f"{what} has dtype {lengths.dtype}: it must hold integers (one length per sequence)")
    if lengths.shape != (B,):
        raise LengthsError(f"{what} has shape {list(lengths.shape)}, expected [B] = [{B}]")
    if B and (lengths.min() < 1 or lengths.max() > T):
        bad = int(lengths[(lengths < 1) | (lengths > T)][0])
        raise LengthsError(f"{what} holds {bad}: every length must be in 1..T = 1..{T}")
    return lengths.astype(np.int64)


def full(T: int, B: int) -> np.ndarray:
    """`_active` for a batch whose sequences all run T steps."""
    return np.full(T, B, np.int64)


def active(sorted_lengths: np.ndarray, T: int) -> np.ndarray:
    """How many of a batch sorted longest first are still running at each step."""
    return np.count_nonzero(sorted_lengths[None, :] > np.arange(T)[:, None], axis=1).astype(np.int64)


class Rows:
    """The rows of a [T,B,..] array that a batch run with `active` (longest first) computes:
    step t's first `active[t]`. The products over all steps (the hoisted input products, the
    input and weight gradients, the bias sums) run on these alone, packed step after step as
    PyTorch's PackedSequence holds them, so that a ragged batch's products cost its share of the
    steps. For a batch whose sequences all run T steps every row is one, and `pack`/`spread` are
    the reshapes the products always ran on: such a batch does what it did before lengths.

    The copies are jitted loops that release the GIL: as numpy slice assignments, one per step,
    the two chunk threads of a call queued for the GIL between them (the LSTM's hoisted product,
    [T,B,4*hidden], spread so at S2: 8-10 ms a chunk, jitted 3.5; the packed layout has since
    made that spread unneeded).
    """

    __slots__ = ("active", "T", "B", "full", "count")

    def __init__(self, active: np.ndarray, T: int, B: int):
        self.active, self.T, self.B = active, T, B
        self.full = bool(np.all(active == B))
        self.count = int(active.sum())

    def pack(self, a: np.ndarray) -> np.ndarray:
        """[T,B,K] -> [rows, K]: the rows that ran, step after step (a view when all did)."""
        if self.full:
            return a.reshape(self.T * self.B, a.shape[2])
        out = np.empty((self.count, a.shape[2]), a.dtype)
        _take_packed(a, np.arange(self.B), self.active, out)
        return out

    def spread(self, p: np.ndarray, steps: int | None = None) -> np.ndarray:
        """[rows, K] -> [T,B,K], zeros in the rows that did not run; with `steps` (>= T), as
        that many steps, zeros after the T that ran (a view when every row ran all of them)."""
        steps = self.T if steps is None else steps
        if self.full and steps == self.T:
            return p.reshape(self.T, self.B, p.shape[1])
        out = np.empty((steps, self.B, p.shape[1]), p.dtype)
        out[self.T:] = 0
        _put_packed(np.ascontiguousarray(p), np.arange(self.B), self.active, out[:self.T])
        return out


# element by element, as the kernels' own copies are (an array-wide assignment compiles into
# Numba's broadcasting code, slow to compile); compiled on a ragged batch's first call
@nb.njit(cache=True, nogil=True)
def _take(a, rows, active, zero, out):
    for t in range(out.shape[0]):
        for b in range(out.shape[1]):
            if zero and b >= active[t]:
                for j in range(out.shape[2]):
                    out[t, b, j] = 0.0
            else:
                for j in range(out.shape[2]):
                    out[t, b, j] = a[t, rows[b], j]


@nb.njit(cache=True, nogil=True)
def _put(v, rows, active, out):
    for t in range(v.shape[0]):
        for b in range(v.shape[1]):
            if b >= active[t]:
                for j in range(v.shape[2]):
                    out[t, rows[b], j] = 0.0
            else:
                for j in range(v.shape[2]):
                    out[t, rows[b], j] = v[t, b, j]


@nb.njit(cache=True, nogil=True)
def _take_packed(a, rows, active, out):
    at = 0
    for t in range(active.shape[0]):
        for b in range(active[t]):
            src = a[t, rows[b]]
            for j in range(out.shape[1]):
                out[at, j] = src[j]
            at += 1


@nb.njit(cache=True, nogil=True)
def _put_packed(p, rows, active, out):
    at = 0
    for t in range(active.shape[0]):
        for b in range(active[t]):
            dst = out[t, rows[b]]
            for j in range(p.shape[1]):
                dst[j] = p[at, j]
            at += 1
        for b in range(active[t], rows.shape[0]):
            dst = out[t, rows[b]]
            for j in range(p.shape[1]):
                dst[j] = 0.0


class Ragged:
    """A batch of variable lengths, arranged for the kernels: each of its `chunks` contiguous
    parts (one per thread of a batch-parallel call, `parallel.chunks`) sorted longest first.
    The parts are dealt round-robin from the batch sorted by length, so that each thread gets
    as many steps of work as the others: cut from one sorted batch, the first thread would get
    all the long sequences and the call would take as long as a full-length one."""

    __slots__ = ("lengths", "order", "inverse", "sorted", "steps")

    def __init__(self, lengths: np.ndarray, T: int, chunks: list[slice] | None = None):
        by_length = np.argsort(-lengths, kind="stable")
        room = [sl.stop - sl.start for sl in chunks] if chunks else [len(lengths)]
        parts: list[list[int]] = [[] for _ in room]
        c = 0
        for row in by_length:
            while len(parts[c]) == room[c]:
                c = (c + 1) % len(room)
            parts[c].append(int(row))
            c = (c + 1) % len(room)
        order = np.array([r for p in parts for r in p], dtype=np.int64)
        # a batch dealt so already stays as it is, ties between equal lengths included: the
        # rows' lengths in the dealt order are its own
        self._arrange(lengths, T, None if np.array_equal(lengths[order], lengths) else order)

    @classmethod
    def rebuilt(cls, lengths: np.ndarray, T: int, order: np.ndarray | None) -> Ragged:
        """The arrangement of `lengths` that a `Ragged` made with this `order` (None or the
        identity: the batch in order already), from the arrays alone: its rows are not dealt again."""
        ragged = cls.__new__(cls)
        ragged._arrange(lengths, T, order)
        return ragged

    def _arrange(self, lengths: np.ndarray, T: int, order: np.ndarray | None) -> None:
        self.lengths = lengths
        identity = order is None or bool(np.array_equal(order, np.arange(len(lengths))))
        self.order = None if identity else order
        self.inverse = None if identity else np.argsort(order)
        self.sorted = lengths if identity else lengths[order]
        # the kernels run the steps up to the longest sequence's end: no row runs after it
        self.steps = int(lengths.max())

    def active(self, rows: slice = slice(None)) -> np.ndarray:
        """The rows `rows` still running at each of the `steps` steps the kernels run."""
        return active(self.sorted[rows], self.steps)

    def rows(self, part: slice) -> np.ndarray:
        """The caller's rows of the kernels' rows `part`."""
        return (np.arange(len(self.lengths)) if self.order is None else self.order)[part]


def gather(arrays: dict, rows: np.ndarray, active: np.ndarray, zero: bool = True, packed=()) -> dict:
    """The `rows` of [T,B,..] arrays (batch on axis 1), in that order: C-contiguous copies, with
    zeros where a row no longer runs (`active[t]`: the first rows still running at step t) unless
    not `zero`; the arrays named in `packed` as the packed rows that run ([rows, n], as
    `Rows.pack` makes them), straight from the caller's order in one pass. Run by each chunk's
    thread on its own rows, the GIL released: sorting a ragged batch costs no serial pass over it."""
    out = {}
    for k, v in arrays.items():
        if k in packed:
            out[k] = np.empty((int(active.sum()), v.shape[2]), v.dtype)
            _take_packed(v, rows, active, out[k])
        else:
            out[k] = np.empty((v.shape[0], len(rows), v.shape[2]), v.dtype)
            _take(v, rows, active, zero, out[k])
    return out


def scatter(parts: dict, rows: np.ndarray, active: np.ndarray, arrays: dict) -> None:
    """Write [T,b,..] arrays, or packed rows ([rows, n], 2-d), into the `rows` of the whole
    batch's `arrays`, zeros where a row no longer runs."""
    for k, v in parts.items():
        (_put_packed if v.ndim == 2 else _put)(v, rows, active, arrays[k])


def arrange(lengths, T: int, B: int, chunks: list[slice] | None = None) -> Ragged | None:
    """The checked arrangement of a batch run as `chunks` parts, or None when every sequence
    runs all T steps."""
    if lengths is None:
        return None
    lengths = checked(lengths, T, B)
    if np.all(lengths == T):
        return None
    return Ragged(lengths, T, chunks)
