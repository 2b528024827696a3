"""The catalog table of the README, generated from the specs: name, what it is, source,
parameters and the tape's values per step as formulas of the dims, and the spec-language
features it needs."""

from __future__ import annotations

import math
import os
import re

import sympy

from .autodiff import differentiate
from .ir import Cell, Elementwise, Product
from .schedule import make_schedule, saved_per_step, tape_formula

START, END = "<!-- catalog:start (cellspec catalog writes this table) -->", "<!-- catalog:end -->"


def short_cite(cite: str) -> str:
    """The authors and year: the citation up to its title or first separator."""
    head = re.split(r',\s*"|;|:\s|\(', cite, maxsplit=1)[0].strip().rstrip(",")
    return head


def param_formula(cell: Cell) -> str:
    dims = {d: sympy.Symbol(d, positive=True) for d in cell.dims}
    total = sum((math.prod(dims[d] for d in p.shape) for p in cell.params), sympy.S.Zero)
    return sympy.sstr(sympy.expand(total)).replace("**", "^")


def needs(cell: Cell) -> list[str]:
    """The spec-language features beyond inputs, states, products and elementwise ops."""
    out = []
    if len(cell.inputs) > 1:
        out.append("several inputs")
    if len(set(cell.states.values())) > 1:
        out.append("states of different dims")
    if cell.constraints:
        out += [f"{a} == {b}" for a, b in cell.constraints]
    operands = [cell.nodes.get(n.operand) for n in cell.nodes.values() if isinstance(n, Product)]
    if any(isinstance(o, Elementwise) and not o.equation for o in operands):
        out.append("product of an expression")
    if cell.step:
        out.append("step index")
    if any(isinstance(n, Elementwise) and n.expr.has(sympy.Piecewise) for n in cell.nodes.values()):
        out.append("where")
    if cell.constants:
        out.append("constants")
    if any(m.mask is not None for m in cell.matrices.values()):
        out.append("weight mask")
    if len(cell.outputs) > 1 or any(o not in cell.updates.values() for o in cell.outputs):
        out.append("output not a state")
    if any(p.init.kind != "uniform" for p in cell.params):
        out.append("init")
    return out


def tape_values(cell: Cell) -> str:
    """The values the tape keeps per step and sequence (what the derived backward pass reads),
    as a formula of the dims; times the dtype's size, the tape's bytes per step and sequence."""
    return tape_formula(saved_per_step(cell, make_schedule(cell, differentiate(cell))))


def table(cells: list[tuple[str, Cell]]) -> str:
    lines = ["| spec | cell | source | parameters | tape per step and sequence | needs |", "|---|---|---|---|---|---|"]
    for path, cell in sorted(cells, key=lambda c: c[1].name):
        summary = cell.summary.replace("|", "\\|")
        lines.append(f"| [`{cell.name}`](specs/{os.path.basename(path)}) | {summary} | {short_cite(cell.cite)} | {param_formula(cell)} | {tape_values(cell)} | {', '.join(needs(cell)) or '-'} |")
    return "\n".join(lines) + "\n"


def replace_section(readme: str, new_table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no catalog section between {START} and {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{new_table}{END}{tail}"
