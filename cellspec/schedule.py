"""Decide where every value of a cell lives and in what order the work runs.

The schedule is the one cuDNN-class kernels use:

* Values that depend only on the inputs and params (not on any state) form the *pre* region. It
  runs once over all T*B rows before the time loop, so `W @ x` is one large matrix product.
* The rest is the *loop* region, one time step at a time. A step alternates product phases and
  elementwise phases: P1 E1 P2 E2 ..., each product as early as its operand allows, so every
  product reading a state is in P1.
* Products in one phase that share an operand are one group: one matrix product with the
  weights stacked by rows (`[W_i; W_f; W_g; W_o] @ x`). In the loop that is one BLAS call per
  step per operand.
* Each elementwise phase is one fused loop over batch and units per dim.
* Backward, the step runs the phases in reverse; only the products that carry gradient to the
  previous step (d_operand = d_P @ W) stay in the time loop. Weight gradients (d_W = d_P^T @ v)
  and the gradient of hoisted operands are single products over all T*B rows afterwards.
* The tape keeps what the backward plan reads, except values cheaper to recompute from what it
  keeps anyway (`f = 1 - i` from i): so how a spec is split into equations does not change it.

Everything here is data (`Buffer` says what each array holds, by its `Role`); `codegen` turns it
into code. The regions and phases are `phases.py`, the storage of every value `storage.py`, the
arrays `buffers.py`; this module puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .autodiff import Plan, Sink
from .buffers import Access, Buffer, Role
from .ir import Cell
from .phases import Group, Phase, phase_of, phases, regions
from .storage import backward_storage, forward_storage, gradient_windows, recomputed


@dataclass
class Schedule:
    cell: Cell
    plan: Plan
    region: dict[str, str]
    phases: dict[str, list[Phase]]
    groups: dict[str, Group]                 # by operand
    group_of: dict[str, Group]               # by product
    buffers: dict[tuple[Role, str], Buffer]  # every array, by role and value
    read_fwd: dict[str, Access]              # where the forward reads each value
    read_bwd: dict[str, Access]              # where the backward reads each value it keeps
    recompute: tuple[str, ...]               # values the backward recomputes instead, in node order
    stores: dict[str, list[Access]]          # where the forward writes each node
    tape: list[Buffer]                       # arrays the backward reads, the stacked weights last
    forward_arrays: list[Buffer]             # what the forward pass allocates
    backward_arrays: list[Buffer]            # what the backward pass allocates
    adjoint: dict[str, Access]               # where elementwise gradient of a value accumulates
    gemm_adjoint: dict[str, Access]          # where d_operand = d_P @ W lands, per operand
    sink: dict[Sink, Access]                 # where gradient from outside the step is read
    users_outside: dict[str, bool]           # value gets gradient from elementwise users in another phase
    # gradients that equal others, computed once: a product whose gradient is another product's
    # (LSTM: d(W_i @ x) = d(U_i @ h)), the gradient array of a group that is another group's, and
    # a vector param whose gradient is a product's summed over all rows (a bias)
    alias: dict[str, str] = field(default_factory=dict)
    dG_of: dict[str, Buffer] = field(default_factory=dict)
    bias_of: dict[str, str] = field(default_factory=dict)
    # groups whose gradients are column windows of one array (a GRU's d[U_n h; U_r h; U_z h] and
    # d[W_r x; W_z x; W_n x], equal in r and z): group -> (the group whose array it is, the dims
    # before the window's first column); see storage.gradient_windows
    dG_windows: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def dG_columns(self, group: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(the dims before, the dims of) a group's window of its gradient array; None where the
        group's gradient is the whole array."""
        if group not in self.dG_windows:
            return None
        return self.dG_windows[group][1], self.groups[group].rows

    def buf(self, role: Role, value: str) -> Buffer:
        return self.buffers[(role, value)]

    def saved(self) -> list[Buffer]:
        """The tape's arrays that hold values per step: all but the stacked weights."""
        return [b for b in self.tape if b.role is not Role.WEIGHTS]


def make_schedule(cell: Cell, plan: Plan) -> Schedule:
    region = regions(cell)
    phase_index = phase_of(cell, region)
    by_region, groups, group_of = phases(cell, region, phase_index)
    groups, windows = gradient_windows(cell, plan, groups)
    for phs in by_region.values():
        for ph in phs:
            ph.groups = [groups[g.name] for g in ph.groups]
    group_of = {p: g for g in groups.values() for p in g.products}
    s = Schedule(cell=cell, plan=plan, region=region, phases=by_region, groups=groups, group_of=group_of,
                 buffers={}, read_fwd={}, read_bwd={}, recompute=(), stores={}, tape=[],
                 forward_arrays=[], backward_arrays=[], adjoint={}, gemm_adjoint={}, sink={}, users_outside={},
                 dG_windows=windows)
    s.recompute = recomputed(cell, plan, s)
    forward_storage(s, phase_index)
    backward_storage(s, phase_index)
    return s


def saved_per_step(cell: Cell, s: Schedule) -> list[tuple[str, str]]:
    """(value, dim) for each value the tape keeps per step: what the backward pass reads."""
    out = []
    for b in s.saved():
        if b.role is Role.PRODUCTS:
            group = s.groups[b.value]
            out += [(cell.label(p), d) for p, d in zip(group.products, group.rows)]
        else:
            out.append((cell.label(b.value), cell.dim_of(b.value)))
    return out


def tape_formula(saved: list[tuple[str, str]]) -> str:
    """The number of values of `saved_per_step` as a formula of the dims: "6*hidden"."""
    counts: dict[str, int] = {}
    for _, d in saved:
        counts[d] = counts.get(d, 0) + 1
    return " + ".join(f"{c}*{d}" if c > 1 else d for d, c in counts.items())
