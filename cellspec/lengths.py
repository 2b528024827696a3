"""A batch of sequences of different lengths, as the generated kernels run it.

The time-loop kernels take `_active`, [T] integers: at step t they run the first `_active[t]`
rows of the batch and pass the others through (a state stays as it was, every other array of the
step gets zeros; see `Kernels.past_the_end`). For the rows still running to be a prefix, the batch
runs sorted by length, longest first. `Ragged` is that arrangement: the checked lengths, the
permutation into the kernels' order (None when the batch is in it already, as a `Layer` leaves it), the
active counts and the padded positions. A batch whose sequences all run T steps is no `Ragged`
(`arrange` returns None): it runs exactly as a call without lengths. Imports numpy only.
"""

from __future__ import annotations

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


class Ragged:
    """A batch of variable lengths, arranged for the kernels: each of its `chunks` contiguous
    parts (one per thread of a batch-parallel call, `parallel.chunks`) sorted longest first.
    The parts are dealt round-robin from the batch sorted by length, so that each thread gets
    as many steps of work as the others: cut from one sorted batch, the first thread would get
    all the long sequences and the call would take as long as a full-length one."""

    __slots__ = ("lengths", "order", "inverse", "sorted", "padded")

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
        # a batch dealt so already (a Layer's, for each of its cells) stays as it is, ties
        # between equal lengths included: the rows' lengths in the dealt order are its own
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
        # [T, B] in the kernels' order: the steps past each sequence's end
        self.padded = np.arange(T)[:, None] >= self.sorted[None, :]

    def active(self, rows: slice = slice(None)) -> np.ndarray:
        return active(self.sorted[rows], self.padded.shape[0])

    def to_sorted(self, arrays: dict, axis: int) -> dict:
        """Rows (batch on `axis`) into sorted order: copies; the arrays themselves if sorted."""
        if self.order is None:
            return arrays
        return {k: np.take(v, self.order, axis=axis) for k, v in arrays.items()}

    def from_sorted(self, arrays: dict, axis: int) -> dict:
        if self.order is None:
            return arrays
        return {k: np.take(v, self.inverse, axis=axis) for k, v in arrays.items()}

    def zero_padding(self, arrays: dict) -> dict:
        """[T, B, ..] arrays (sorted order) with zeros past each sequence's end, written in place
        (the caller owns them)."""
        for v in arrays.values():
            v[self.padded] = 0
        return arrays


def arrange(lengths, T: int, B: int, chunks: list[slice] | None = None) -> Ragged | None:
    """The checked arrangement of a batch run as `chunks` parts, or None when every sequence
    runs all T steps."""
    if lengths is None:
        return None
    lengths = checked(lengths, T, B)
    if np.all(lengths == T):
        return None
    return Ragged(lengths, T, chunks)
