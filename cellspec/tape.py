"""What a forward pass saved for its backward pass (`Tape`), described by the generated module's
TAPE table, and that table's shapes read as sizes (`tape_layout`, `size_of`: how cellspec.jax
knows its residuals' shapes at trace time). Imports numpy only."""

from __future__ import annotations

import ast

import numpy as np


def padded_steps(a: np.ndarray, T: int, state: bool) -> np.ndarray:
    """A per-step array of a ragged call whose kernels ran up to its longest sequence's end, as
    `T` rows: a state sequence keeps its last row after that (every state passes through), any
    other array zeros (what the kernels write past a sequence's end). `a` itself when it has T."""
    if a.shape[0] == T:
        return a
    rest = (T - a.shape[0], *a.shape[1:])
    return np.concatenate([a, np.broadcast_to(a[-1:], rest) if state else np.zeros(rest, a.dtype)])


def size_of(text: str, sizes: dict[str, int], what: str) -> int:
    """A size of the TAPE table (`T+1`, `4*hidden`) at `sizes`: integers and names under + - *."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name) and node.id in sizes:
            return sizes[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            a, b = walk(node.left), walk(node.right)
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        raise ValueError(f"{what}: cannot read the size {text!r} of the TAPE table")

    return walk(ast.parse(text, mode="eval"))


def tape_layout(Cell) -> list[tuple[str, list[str], int | None]]:
    """Each array of the cell's TAPE: (name, its size texts, the axis of B or None). B must be a
    whole axis of its own, or absent (a stacked weight matrix)."""
    out = []
    for name, _, _, shape in Cell.TAPE:
        texts = [t.strip() for t in shape.strip()[1:-1].split(",")]
        axes = [i for i, t in enumerate(texts) if t == "B"]
        if len(axes) > 1 or any("B" in _names(t) for i, t in enumerate(texts) if i not in axes):
            raise ValueError(f"{Cell.NAME}: the tape array {name!r} has the shape {shape}, which cellspec.jax cannot cut by batch rows")
        out.append((name, texts, axes[0] if axes else None))
    return out


def _names(text: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}


def as_steps(a: np.ndarray, texts: list[str], T: int) -> np.ndarray:
    """A TAPE array at the shape its size texts give for T steps: a value at every step, or a
    state sequence, as T (T+1) steps where a ragged call's kernels ran fewer (see
    `padded_steps`); others as they are."""
    if texts[0] not in ("T", "T+1"):
        return a
    return padded_steps(a, T + (texts[0] == "T+1"), state=texts[0] == "T+1")


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
