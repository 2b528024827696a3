"""The derivative stage: the reverse sweep of one step of a cell, as data (`Plan`).

An elementwise node's partial derivatives come from SymPy, then are written in terms of saved
forward values: wherever a node's defining expression appears in a derivative it is replaced by the
node's own name, so sigmoid' becomes i*(1 - i) and tanh' becomes 1 - g**2. A product
`p = W @ v` is linear: its rules are the transposes (d_v += W^T d_p, d_W += d_p v^T).

The plan lists, for every value that gradient reaches, in reverse order, its adjoint as a sum of
terms, and for every param the terms of its gradient. It is the one account of the backward pass:
the reference interpreter evaluates it (`reference.py`), the emitter places each of its terms into
a kernel (`codegen/emit.py`, which checks that it placed them all), and the generated docstring
prints it (`backward_equations`).

Time indices: d_s[t] is the gradient of the loss with respect to state s after step t (s[t], as the
forward pass writes it), so step t receives d_s[t] on the values that update s, and gives d_s[t-1]
to the s it reads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy

from .errors import SpecError
from .ir import Cell, Elementwise, Product, symbol
from .ops import unsupported


@dataclass(frozen=True)
class Sink:
    """Gradient from outside the step: d_s[t] of the state s that `value` updates, or the
    output gradient dy[t] of the output `value`."""

    kind: str        # "state" or "output"
    name: str        # the state, or the output


@dataclass(frozen=True)
class Transpose:
    """`W^T @ d_p` for a product p = W @ value."""

    product: str
    weight: str


@dataclass(frozen=True)
class Chain:
    """`d_user * partial`, the partial derivative of `user` with respect to the value."""

    user: str
    partial: sympy.Expr


@dataclass(frozen=True)
class Outer:
    """`d_p operand^T` summed over all rows: a matrix param's gradient from its product p."""

    product: str
    operand: str


Term = Sink | Transpose | Chain


@dataclass(frozen=True)
class Adjoint:
    """d_value = the sum of `terms`."""

    value: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class ParamGradient:
    """d_param += the sum of `terms` over all steps and rows: `Outer` terms for a matrix, `Chain`
    terms (summed over the batch) for a vector."""

    param: str
    terms: tuple[Outer | Chain, ...]


@dataclass(frozen=True)
class Plan:
    # (node, arg) -> d node / d arg, as an expression of forward values; zero partials are absent
    partials: dict[tuple[str, str], sympy.Expr]
    # forward values that some partial reads
    reads: frozenset[str]
    # in reverse order: every node, then the inputs, then the states (d_s[t-1]), that gradient reaches
    adjoints: tuple[Adjoint, ...]
    params: tuple[ParamGradient, ...]

    def adjoint(self, value: str) -> Adjoint | None:
        return self._by_value.get(value)

    @functools.cached_property
    def _by_value(self) -> dict[str, Adjoint]:
        return {a.value: a for a in self.adjoints}

    def gradient(self, param: str) -> ParamGradient:
        return next(p for p in self.params if p.param == param)

    def terms(self):
        """Every (value or param, term) of the plan, in its order."""
        for a in self.adjoints:
            for t in a.terms:
                yield a.value, t
        for p in self.params:
            for t in p.terms:
                yield p.param, t


def partial_derivatives(cell: Cell) -> dict[tuple[str, str], sympy.Expr]:
    """(node, arg) -> d node / d arg for every elementwise node, written in forward values."""
    outputs = {}
    for n in cell.nodes.values():
        # a node that is just another value's name would rewrite that value everywhere: skip it
        if isinstance(n, Elementwise) and not n.expr.is_Symbol:
            outputs[n.expr] = symbol(n.name)
    partials = {}
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
    return partials


def differentiate(cell: Cell) -> Plan:
    partials = partial_derivatives(cell)
    users = cell.users()
    sinks: dict[str, list[Sink]] = {}
    for state, node in cell.updates.items():
        sinks.setdefault(node, []).append(Sink("state", state))
    for out in cell.outputs:
        sinks.setdefault(out, []).append(Sink("output", out))
    reached: set[str] = set()
    adjoints = []
    for name in reversed([*cell.states, *cell.inputs, *cell.nodes]):
        terms: list[Term] = list(sinks.get(name, []))
        for u in users.get(name, []):
            if u not in reached:
                continue
            un = cell.nodes[u]
            if isinstance(un, Product):
                terms.append(Transpose(u, un.weight))
            elif (u, name) in partials:
                terms.append(Chain(u, partials[(u, name)]))
        if terms:
            reached.add(name)
            adjoints.append(Adjoint(name, tuple(terms)))
    params = []
    for p in cell.params:
        if p.name in cell.matrices:
            terms = [Outer(n.name, n.operand) for n in cell.nodes.values() if isinstance(n, Product) and n.weight == p.name and n.name in reached]
        else:
            terms = [Chain(u, partials[(u, p.name)]) for u in users.get(p.name, []) if u in reached and (u, p.name) in partials]
        params.append(ParamGradient(p.name, tuple(terms)))
    # a partial reads forward values only where its user's gradient is reached
    reads = {s.name for (u, _), d in partials.items() if u in reached for s in d.free_symbols}
    return Plan(partials, frozenset(reads), tuple(adjoints), tuple(params))


def _what(node: Elementwise) -> str:
    return f"equation {node.name!r}" if node.equation else "this expression"


def backward_equations(cell: Cell, plan: Plan) -> list[str]:
    """The plan as readable lines, for the generated docstring. Products and their operands are
    spelled out: d(U @ h) is the gradient of U @ h."""
    # the compiler's own nodes (products, operands, split parts) are spelled out
    label = {n: cell.label(n) for n, node in cell.nodes.items() if not (isinstance(node, Elementwise) and node.equation)}
    rename = {symbol(k): sympy.Symbol(f"({v})" if " " in v and not v.startswith("(") else v) for k, v in label.items()}

    def grad(name: str) -> str:
        if name not in label:
            return f"d_{name}"
        return f"d{label[name]}" if label[name].startswith("(") else f"d({label[name]})"

    def term(t) -> str:
        if isinstance(t, Sink):
            if t.kind == "state":
                return f"d_{t.name}[t]"
            return "dy[t]" if len(cell.outputs) == 1 else f"dy_{t.name}[t]"
        if isinstance(t, Transpose):
            return f"{t.weight}^T @ {grad(t.product)}"
        if isinstance(t, Outer):
            return f"{grad(t.product)} {label.get(t.operand, t.operand)}^T"
        return f"{grad(t.user)}*({sympy.sstr(t.partial.xreplace(rename))})"

    lines = []
    for a in plan.adjoints:
        target = f"d_{a.value}[t-1]" if a.value in cell.states else grad(a.value)
        lines.append(f"{target} = " + " + ".join(term(t) for t in a.terms))
    for p in plan.params:
        if p.terms:
            lines.append(f"d_{p.param} += " + " + ".join(term(t) for t in p.terms))
    return lines

