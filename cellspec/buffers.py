"""The arrays of generated code, as data: each has a `Role` (what it holds), the value it belongs
to and its shape, and one function names it (`buffer_name`). An `Access` is how kernel code reads
or writes an element of one. The schedule makes them; the emitter, the runtime's TAPE, the
catalog and the bench read them, none of them by a name's prefix."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Role(Enum):
    """What an array of the generated code holds; `prefix` is the start of its name."""

    INPUT = "in"               # a step's input, as the caller gave it
    VECTOR = "w"               # a vector param or a constant
    STATES = "seq"             # a state before step 0 and after every step
    PRODUCTS = "G"             # a group's products, stacked
    VALUES = "all"             # a value at every step
    CURRENT = "cur"            # a value of this step, read by a later phase
    WEIGHTS = "W"              # a group's weights, stacked by rows
    WEIGHTS_T = "WT"           # their transpose, contiguous, for the per-step product
    D_PRODUCTS = "dG"          # the gradient of a group's products
    D_OPERAND = "dgemm"        # the gradient of a group's operand, d_G @ W
    D_VALUE = "d"              # the gradient a value gets from elementwise users in other phases
    D_VECTOR = "acc"           # a vector param's gradient, summed in float64
    D_CARRY = "dcarry"         # the gradient of a state carried to the previous step
    D_OUTPUT = "dy"            # the caller's gradient of an output
    D_SEQUENCE = "dseq"        # the gradient of a state from another layer that reads it

    @property
    def prefix(self) -> str:
        return self.value


def buffer_name(role: Role, value: str) -> str:
    """The one spelling of an array's name: `_G_x` holds the products of the group of x."""
    return f"_{role.prefix}_{value}"


@dataclass(frozen=True)
class Buffer:
    """An array of the generated code: its role, the value (or group operand) it belongs to, and its
    shape, whose entries are "T", "T+1", "B", "rows" (the rows of the steps each sequence ran,
    step after step: `storage.packed`) or a tuple of dims whose sizes add up (stacked).
    `holds` says in words what it holds, for the kernels' docstrings and the TAPE table."""

    role: Role
    value: str
    shape: tuple
    holds: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return buffer_name(self.role, self.value)

    @property
    def float64(self) -> bool:
        """Float64 whatever the cell's dtype: accumulators."""
        return self.role is Role.D_VECTOR

    @property
    def width(self) -> tuple:
        return self.shape[-1]

    @property
    def packed(self) -> bool:
        """[rows, n]: a step's rows at the step's offset in the rows that ran."""
        return self.shape[0] == "rows"


def shape_text(shape: tuple) -> str:
    """A buffer's shape as people write it: [T+1,B,hidden], [B,3*hidden]."""
    parts = []
    for entry in shape:
        if isinstance(entry, str):
            parts.append(entry)
        else:
            counts: dict[str, int] = {}
            for d in entry:
                counts[d] = counts.get(d, 0) + 1
            parts.append(" + ".join(d if c == 1 else f"{c}*{d}" for d, c in counts.items()).replace(" ", ""))
    return "[" + ",".join(parts) + "]"


@dataclass(frozen=True)
class Access:
    """An array element as kernel code reads or writes it.

    `index` is one of: "tbj" [t, b, j]; "next" [t+1, b, j]; "bj" [b, j]; "j" [j]; "step" for the
    step index itself, which is no array (`array` None). `offset` lists the dims whose sizes are
    added to j (a column block of a stacked array)."""

    array: Buffer | None
    index: str
    offset: tuple[str, ...] = ()
