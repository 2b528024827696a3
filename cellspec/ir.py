"""The IR: a cell as a DAG of values: inputs, states (at t-1), params, matrix-vector products and
elementwise SymPy nodes. `lower.build_ir` makes it from a spec, every shape checked.

Each `W @ v` of a spec is a `Product` node whose operand is a named value; an operand that is an
expression (`U @ (r*h)`) has a node of its own. Products with the same weight and operand are one
node. Nodes are kept in an order where every node follows its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from .errors import Location


def symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


@dataclass(frozen=True)
class Product:
    """`name = weight @ operand`: a [rows] vector from a [rows, cols] matrix and a [cols] vector."""

    name: str
    weight: str
    operand: str
    dim: str

    @property
    def args(self) -> tuple[str, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Elementwise:
    """`name = expr`, elementwise over vectors of one dim. `equation` is False for the nodes the
    compiler makes for product operands."""

    name: str
    expr: sympy.Expr
    dim: str
    args: tuple[str, ...]
    equation: bool = True
    # where the spec wrote it, for errors found by later stages
    where: Location | None = field(default=None, compare=False)
    # why the compiler made it: "operand" (of a product), "split" (a part of a node too deep or
    # too wide), "named" (a part whose value the backward pass reads); "" for an equation
    made_for: str = field(default="", compare=False)


@dataclass(frozen=True)
class Init:
    kind: str
    args: tuple[sympy.Expr, ...]


@dataclass(frozen=True)
class MatrixParam:
    name: str
    rows: str
    cols: str
    init: Init
    # where the weight may be nonzero, a condition of row i, column j and the dims
    mask: sympy.Expr | None = None

    @property
    def shape(self) -> tuple[str, ...]:
        return (self.rows, self.cols)


@dataclass(frozen=True)
class Constant:
    """A vector fixed at instantiation: `value` is a formula of the unit index i and the dims."""

    name: str
    dim: str
    value: sympy.Expr


@dataclass(frozen=True)
class VectorParam:
    name: str
    dim: str
    init: Init

    @property
    def shape(self) -> tuple[str, ...]:
        return (self.dim,)


@dataclass
class Cell:
    name: str
    summary: str
    cite: str
    path: str
    sha256: str
    dims: tuple[str, ...]
    inputs: dict[str, str]                      # name -> dim
    states: dict[str, str]                      # name -> dim
    matrices: dict[str, MatrixParam]
    vectors: dict[str, VectorParam]
    nodes: dict[str, Product | Elementwise]     # in dependency order
    updates: dict[str, str]                     # state -> node
    outputs: tuple[str, ...]
    param_order: tuple[str, ...] = ()
    constants: dict[str, Constant] = field(default_factory=dict)
    step: str | None = None                     # the name of the step index, if the spec uses it
    constraints: tuple[tuple[str, str], ...] = ()
    equations_text: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # the spec's `torch:` section as the generated Cell's TORCH table (spec_torch), or None
    torch: dict[str, str | list[str]] | None = None

    def dim_of(self, name: str) -> str:
        if name in self.inputs:
            return self.inputs[name]
        if name in self.states:
            return self.states[name]
        if name in self.vectors:
            return self.vectors[name].dim
        if name in self.constants:
            return self.constants[name].dim
        return self.nodes[name].dim

    @property
    def leaves(self) -> set[str]:
        """Values with no gradient: constants and the step index."""
        return set(self.constants) | ({self.step} if self.step else set())

    @property
    def params(self) -> list[MatrixParam | VectorParam]:
        """Every param, in the spec's order."""
        return [self.matrices.get(n) or self.vectors[n] for n in self.param_order]

    def label(self, name: str) -> str:
        """How a value reads to a person: compiler-made names are spelled out, `_p3` as
        `U_n @ h` and `_v0` as `(h*r)`."""
        node = self.nodes.get(name)
        if isinstance(node, Product):
            return f"{node.weight} @ {self.label(node.operand)}"
        if isinstance(node, Elementwise) and not node.equation:
            # the compiler's nodes inside spelled out too: (tanh((W_c @ x) + (U_c @ h) + b_c))
            inner = {}
            for a in node.args:
                made = self.nodes.get(a)
                if isinstance(made, Product) or (isinstance(made, Elementwise) and not made.equation):
                    text = self.label(a)
                    inner[symbol(a)] = sympy.Symbol(text if text.startswith("(") else f"({text})")
            return f"({sympy.sstr(node.expr.xreplace(inner))})"
        return name

    def users(self) -> dict[str, list[str]]:
        """value name -> the nodes that read it, in node order."""
        out: dict[str, list[str]] = {}
        for n in self.nodes.values():
            for a in n.args:
                out.setdefault(a, []).append(n.name)
        return out
