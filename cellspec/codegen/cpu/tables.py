"""What a generated module says about its cell besides the kernels: the literal tables of its
`Cell` (init, constant and mask formulas as trees; the transcendental count) and the shapes and
schedule its docstring lists."""

from __future__ import annotations

import sympy

from ...ir import Cell, Elementwise
from ...ops import transcendental
from ...buffers import Role, shape_text
from ...phases import LOOP, PRE
from ...schedule import Schedule
from .printer import formula_tree


def inits(cell: Cell) -> list[tuple]:
    """The INITS table: (param, init kind, its arguments as formula trees), in spec order;
    the runtime evaluates the arguments at the cell's sizes (`cellspec.formula`)."""
    return [(p.name, p.init.kind, tuple(formula_tree(a) for a in p.init.args)) for p in cell.params]

def fixed(cell: Cell) -> dict[str, list[tuple]]:
    """The CONSTANT_VALUES and MASKS tables: each constant's value, a formula of its unit
    index i, and each mask, a condition of the row i and column j, as formula trees that the
    runtime evaluates exactly at the cell's sizes."""
    return {
        "constant_values": [(c.name, formula_tree(c.value, ("i",))) for c in cell.constants.values()],
        "masks": [(m.name, formula_tree(m.mask, ("i", "j"))) for m in cell.matrices.values() if m.mask is not None],
    }

def transcendentals(cell: Cell) -> list[tuple[str, int]]:
    """The forward pass's evaluations of exp, log, tanh, sigmoid and softplus per step and
    batch row, by dim: the runtime's measure of a cell's elementwise work."""
    heavy = transcendental()
    counts: dict[str, int] = {}
    for node in cell.nodes.values():
        if isinstance(node, Elementwise):
            n = sum(1 for e in sympy.preorder_traversal(node.expr) if isinstance(e, heavy))
            if n:
                counts[node.dim] = counts.get(node.dim, 0) + n
    return sorted(counts.items())

def tape(s: Schedule) -> list[tuple[str, str, str, str]]:
    """The TAPE table: each array the forward pass saves for the backward pass, as (name, role,
    the value or group it belongs to, shape), the stacked weights last. Roles: "states" (a
    state before step 0 and after every step), "values" (a value at every step), "products" (a
    hoisted group's products at every step) and "weights" (a group's weights, stacked by rows)."""
    return [(b.name, b.role.name.lower(), b.value, shape_text(b.shape)) for b in s.tape]

def tape_params(cell: Cell, s: Schedule) -> list[str]:
    """The TAPE_PARAMS table: the params the backward pass reads as the caller's arrays, which a
    taped call copies for the tape: the vector params (the backward's elementwise work may read
    them) and each weight the tape keeps as it is (the stacked weights of a group of one unmasked
    weight are that param: rnn's U is its `_W_h`). Every other weight reaches the tape only in its
    group's stacked copy, which the forward pass makes anyway, so it is not copied twice."""
    kept = {b.value for b in s.tape if b.role is Role.WEIGHTS}
    alone = {g.weights[0] for g in s.groups.values() if g.name in kept and len(g.weights) == 1 and cell.matrices[g.weights[0]].mask is None}
    return [p.name for p in cell.params if p.name in cell.vectors or p.name in alone]

def shapes(cell: Cell) -> list[str]:
    lines = [f"input {x}: [T,B,{d}]" for x, d in cell.inputs.items()]
    lines += [f"output {o}: [T,B,{cell.dim_of(o)}]" for o in cell.outputs]
    lines += [f"state {st}: [B,{d}]" for st, d in cell.states.items()]
    for p in cell.params:
        shape = ",".join(p.shape)
        args = f"({', '.join(sympy.sstr(a) for a in p.init.args)})" if p.init.args else ""
        lines.append(f"param {p.name}: [{shape}], init {p.init.kind}{args}")
    return lines

def schedule_summary(s: Schedule) -> list[str]:
    lines = []
    for r, label in ((PRE, "before the time loop, over all T*B rows"), (LOOP, "in the time loop, per step")):
        for ph in s.phases[r]:
            for g in ph.groups:
                lines.append(f"{label}: [{'; '.join(g.weights)}] @ {s.cell.label(g.operand)}  (one matrix product)")
            if ph.nodes:
                lines.append(f"{label}: {', '.join(s.cell.label(n) for n in ph.nodes)}  (fused elementwise loop)")
    return lines
