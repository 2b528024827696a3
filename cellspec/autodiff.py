"""Reverse-mode derivative of one step of a cell, and the forward values the backward pass reads.

An elementwise node's partial derivatives come from SymPy, then are written in terms of saved
forward values: wherever a node's defining expression appears in a derivative it is replaced by the
node's own name, so sigmoid' becomes i*(1 - i) and tanh' becomes 1 - g**2. A product
`p = W @ v` is linear: its rules are the transposes (d_v += W^T d_p, d_W += d_p v^T), applied by
the schedule as matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .errors import SpecError
from .ir import Cell, Elementwise, Product, symbol
from .ops import unsupported


@dataclass(frozen=True)
class Backward:
    # (node, arg) -> d node / d arg, as an expression of forward values; zero partials are absent
    partials: dict[tuple[str, str], sympy.Expr]
    # forward values that some partial reads
    reads: frozenset[str]


def differentiate(cell: Cell) -> Backward:
    outputs = {}
    for n in cell.nodes.values():
        # a node that is just another value's name would rewrite that value everywhere: skip it
        if isinstance(n, Elementwise) and not n.expr.is_Symbol:
            outputs[n.expr] = symbol(n.name)
    partials = {}
    reads: set[str] = set()
    for n in cell.nodes.values():
        if not isinstance(n, Elementwise):
            continue
        for a in n.args:
            if a in cell.leaves:
                continue
            d = sympy.diff(n.expr, symbol(a) if a != cell.step else sympy.Symbol(a, integer=True, nonnegative=True))
            d = d.xreplace(outputs)
            # a structural zero: asking SymPy's assumptions (d.is_zero) costs more than the rest
            if d == 0:
                continue
            bad = unsupported(d)
            if bad is not None:
                raise SpecError(f"cellspec cannot differentiate {_what(n)} with respect to {a!r}: the derivative needs {bad}, which no kernel computes", n.where)
            partials[(n.name, a)] = d
            reads.update(s.name for s in d.free_symbols)
    return Backward(partials, frozenset(reads))


def _what(node: Elementwise) -> str:
    return f"equation {node.name!r}" if node.equation else "this expression"


def backward_equations(cell: Cell, bw: Backward) -> list[str]:
    """The derived backward pass of one step, as readable lines, for the generated docstring.
    Products and their operands are spelled out: d(U @ h) is the gradient of U @ h."""
    users = cell.users()
    label = {n: cell.label(n) for n in cell.nodes if n.startswith("_")}
    rename = {symbol(k): sympy.Symbol(f"({v})" if " " in v else v) for k, v in label.items()}

    def grad(name: str) -> str:
        if name not in label:
            return f"d_{name}"
        return f"d{label[name]}" if label[name].startswith("(") else f"d({label[name]})"

    def partial(u: str, a: str) -> str:
        return sympy.sstr(bw.partials[(u, a)].xreplace(rename))

    sinks: dict[str, list[str]] = {}
    for state, node in cell.updates.items():
        sinks.setdefault(node, []).append(f"d_{state}[t+1]")
    for out in cell.outputs:
        sinks.setdefault(out, []).append("dy[t]" if len(cell.outputs) == 1 else f"dy_{out}[t]")
    lines = []
    for name in reversed([*cell.states, *cell.inputs, *cell.nodes]):
        terms = list(sinks.get(name, []))
        for u in users.get(name, []):
            un = cell.nodes[u]
            if isinstance(un, Product):
                terms.append(f"{un.weight}^T @ {grad(u)}")
            elif (u, name) in bw.partials:
                terms.append(f"{grad(u)}*({partial(u, name)})")
        if terms:
            target = f"d_{name}[t]" if name in cell.states else grad(name)
            lines.append(f"{target} = " + " + ".join(terms))
    for p in cell.params:
        terms = [f"{grad(u)}*({partial(u, p.name)})" for u in users.get(p.name, []) if (u, p.name) in bw.partials]
        terms += [f"{grad(n.name)} {label.get(n.operand, n.operand)}^T" for n in cell.nodes.values() if isinstance(n, Product) and n.weight == p.name]
        lines.append(f"d_{p.name} += " + " + ".join(terms))
    return lines
