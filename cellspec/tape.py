"""What a forward pass saved for its backward pass (`Tape`), described by the generated module's
TAPE table. Imports numpy only."""

from __future__ import annotations

import numpy as np


def padded_steps(a: np.ndarray, T: int, state: bool) -> np.ndarray:
    """A per-step array of a ragged call whose kernels ran up to its longest sequence's end, as
    `T` rows: a state sequence keeps its last row after that (every state passes through), any
    other array zeros (what the kernels write past a sequence's end). `a` itself when it has T."""
    if a.shape[0] == T:
        return a
    rest = (T - a.shape[0], *a.shape[1:])
    return np.concatenate([a, np.broadcast_to(a[-1:], rest) if state else np.zeros(rest, a.dtype)])


class Tape:
    """What the forward pass saved for the backward pass of one call.

    `arrays` holds only what the derived backward pass reads (see the generated module's TAPE).
    A batch-parallel call keeps one tape per chunk in `parts`, as (batch slice, tape), and no
    arrays of its own."""

    __slots__ = ("cell", "T", "B", "inputs", "params", "arrays", "parts", "active", "ragged")

    def __init__(self, cell, T, B, inputs, params, arrays, parts=(), active=None):
        self.cell = cell
        self.T = T
        self.B = B
        self.inputs = inputs
        self.params = params
        self.arrays = arrays
        self.parts = list(parts)
        # the kernels' `_active` for this tape's rows; and for a call with lengths, the batch's
        # arrangement (a `lengths.Ragged`: the tape's rows are in its sorted order), else None
        self.active = active
        self.ragged = None

    def pieces(self) -> list[Tape]:
        """The tapes that hold arrays: this one, or its chunks' in batch order."""
        return [t for _, t in self.parts] if self.parts else [self]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for t in self.pieces() for a in t.arrays.values())

    def saved(self, role: str, value: str) -> str:
        """The name of the tape's array of a role (see the generated TAPE: "states", "values",
        "products", "weights") for a value; KeyError if the tape keeps none."""
        for name, r, v, _ in self.cell.TAPE:
            if r == role and v == value:
                return name
        raise KeyError(f"the tape of {self.cell.NAME} keeps no {role} of {value!r}")

    @property
    def per_step_nbytes(self) -> int:
        """The bytes of what the tape keeps per step (all but the stacked weights)."""
        weights = {name for name, role, _, _ in self.cell.TAPE if role == "weights"}
        return sum(a.nbytes for t in self.pieces() for k, a in t.arrays.items() if k not in weights)

    def sequence(self, state: str) -> np.ndarray:
        """A state after every step, [T,B,dim], from the tape (no copy unless batch-parallel,
        ragged or trimmed). The view is read-only: the backward pass reads the same memory."""
        name = self.saved("states", state)
        parts = [t.arrays[name][1:] for t in self.pieces()]
        seq = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if self.ragged is not None and self.ragged.order is not None:
            # the tape's rows are sorted longest first: a copy in the caller's order
            seq = np.take(seq, self.ragged.inverse, axis=1)
        seq = padded_steps(seq, self.T, state=True)
        if seq is not parts[0]:
            return seq
        view = seq.view()
        view.flags.writeable = False
        return view
