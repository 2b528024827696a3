"""Parse the formulas of a spec that are fixed when a cell is made: a param's init
(`uniform(1/sqrt(hidden))`), a constant's value or a weight mask (formulas of the unit indices `i`,
`j` and the dims), and a constraint between dims. The same whitelist walk as the equations'
(`parse.Parser`), with the operators and names each kind takes."""

from __future__ import annotations

import ast

import sympy

from .errors import SpecError
from .parse import MAX_CONSTANT, Parser, count_args, is_condition
from .yamltext import Text


# Initialisers: name -> (min args, max args). Arguments are numbers or formulas of the dims.
INITS = {
    "zeros": (0, 0),
    "ones": (0, 0),
    "constant": (1, 1),
    "uniform": (1, 2),
    "normal": (1, 1),
    "orthogonal": (0, 1),
}


class InitParser(Parser):
    """An init expression: `zeros`, `ones`, `constant(v)`, `uniform(k)` (on [-k, k]),
    `uniform(a, b)`, `normal(std)`, `orthogonal` or `orthogonal(gain)`; arguments may use the
    dims' sizes and sqrt, e.g. `uniform(1/sqrt(hidden))`."""

    def __init__(self, text: Text, param: str, dims: dict[str, sympy.Symbol]):
        super().__init__(text)
        self.what = f"the init of param {param!r}"
        self.dims = dims
        self.kind: str | None = None

    def parse_init(self) -> tuple[str, tuple[sympy.Expr, ...]]:
        src = self.source.strip()
        if src in INITS:
            lo, _ = INITS[src]
            if lo:
                raise SpecError(f"init {src!r} needs {count_args(lo)}", self.text.start)
            return src, ()
        self.kind = None
        expr = self.parse()
        if self.kind is None or not isinstance(expr, tuple):
            raise SpecError(f"{self.what} must be one of {', '.join(INITS)}", self.text.start)
        kind, args = expr
        self.check_values(kind, args)
        return kind, args

    def check_values(self, kind: str, args: tuple[sympy.Expr, ...]) -> None:
        """Arguments must be finite reals for every size of the dims (tried at 1 and 1000), and
        bounds and spreads must make sense."""
        for size in (1, 1000):
            try:
                values = [float(a.subs({d: size for d in self.dims.values()})) for a in args]
            except (TypeError, OverflowError, ValueError):
                raise SpecError(f"the arguments of {self.what} must be finite real numbers", self.text.start) from None
            if any(v != v or abs(v) > MAX_CONSTANT for v in values):
                raise SpecError(f"the arguments of {self.what} must be finite real numbers", self.text.start)
            if kind in ("normal", "orthogonal") or (kind == "uniform" and len(values) == 1):
                if values and values[0] <= 0:
                    raise SpecError(f"{kind}() needs a positive argument in {self.what}", self.text.start)
            if kind == "uniform" and len(values) == 2 and not values[0] < values[1]:
                raise SpecError(f"uniform(a, b) needs a < b in {self.what}", self.text.start)

    def parse(self):
        try:
            return super().parse()
        except RecursionError:
            raise SpecError(self.too_deep(), self.text.start) from None

    def visit(self, node, depth):
        if depth == 0 and not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in INITS):
            raise self.fail(f"{self.what} must be one of {', '.join(INITS)}", node)
        return super().visit(node, depth)

    def visit_Name(self, node, depth):
        if node.id in self.dims:
            return self.dims[node.id]
        raise self.fail(f"unknown name {node.id!r} in {self.what}; it may use the dims: {', '.join(self.dims)}", node)

    def call(self, node, name, depth):
        if depth == 1 and name in INITS:
            lo, hi = INITS[name]
            if not lo <= len(node.args) <= hi:
                want = count_args(lo) if lo == hi else f"{lo} or {count_args(hi)}"
                raise self.fail(f"init {name}() takes {want}, got {len(node.args)}", node)
            self.kind = name
            return name, tuple(self.visit(a, depth) for a in node.args)
        if name == "sqrt":
            if len(node.args) != 1:
                raise self.fail(f"sqrt() takes 1 argument, got {len(node.args)}", node)
            return sympy.sqrt(self.visit(node.args[0], depth))
        raise self.fail(f"function {name!r} is not allowed in {self.what}; use numbers, dims and sqrt", node.func)


class IndexParser(Parser):
    """A formula of unit indices and dims, fixed when a cell is instantiated: the value of a
    constant vector (index `i`), or the mask of a matrix param (row `i`, column `j`), which is a
    condition. Integer arithmetic: + - * // % ** and min/max; a mask adds comparisons joined by
    `and` and `or`."""

    binops = frozenset({ast.Add, ast.Sub, ast.Mult, ast.Pow, ast.Mod, ast.FloorDiv})
    symbolic_exponent = True

    def __init__(self, text: Text, what: str, names: dict[str, sympy.Symbol], condition: bool):
        super().__init__(text)
        self.what = what
        self.names = names
        self.condition = condition
        self.conditions = 1 if condition else 0

    def parse(self):
        out = super().parse()
        a_condition = is_condition(out)
        if self.condition and not a_condition:
            raise SpecError(f"{self.what} must be a condition, such as i // 4 <= j // 4", self.text.start)
        if not self.condition and a_condition:
            raise SpecError(f"{self.what} must be a number, not a condition", self.text.start)
        return out

    def visit_Name(self, node, depth):
        if node.id in self.names:
            return self.names[node.id]
        raise self.fail(f"unknown name {node.id!r} in {self.what}; it may use {', '.join(self.names)}", node)

    def visit_Compare(self, node, depth):
        if not self.condition:
            raise self.fail(f"{self.what} must be a number, not a condition", node)
        return super().visit_Compare(node, depth)

    def visit_BoolOp(self, node, depth):
        if not self.condition:
            raise self.fail(f"'and' and 'or' are not allowed in {self.what}", node)
        parts = []
        for v in node.values:
            part = self.visit(v, depth)
            if not is_condition(part):
                raise self.fail(f"'and' and 'or' join comparisons in {self.what}", v)
            parts.append(part)
        return sympy.And(*parts) if isinstance(node.op, ast.And) else sympy.Or(*parts)

    def call(self, node, name, depth):
        if name in ("min", "max") and len(node.args) == 2:
            a, b = (self.numeric(self.visit(x, depth), x) for x in node.args)
            return sympy.Min(a, b) if name == "min" else sympy.Max(a, b)
        raise self.fail(f"function {name!r} is not allowed in {self.what}; use integer arithmetic, min(a, b) and max(a, b)", node.func)


def parse_index_formula(text: Text, what: str, names: dict[str, sympy.Symbol], condition: bool) -> sympy.Expr:
    return IndexParser(text, what, names, condition).parse()


def parse_constraint(text: Text, dims: set[str]) -> tuple[str, str]:
    """`a == b`, two dim names whose sizes must be equal."""
    try:
        tree = ast.parse(text.value.strip(), mode="eval").body
    except SyntaxError:
        tree = None
    ok = (
        isinstance(tree, ast.Compare)
        and len(tree.ops) == 1
        and isinstance(tree.ops[0], ast.Eq)
        and isinstance(tree.left, ast.Name)
        and isinstance(tree.comparators[0], ast.Name)
    )
    if not ok:
        raise SpecError("a constraint is written `dim_a == dim_b`", text.start)
    a, b = tree.left.id, tree.comparators[0].id
    for name, node in ((a, tree.left), (b, tree.comparators[0])):
        if name not in dims:
            raise SpecError(f"unknown dim {name!r} in a constraint; the dims are {', '.join(sorted(dims))}", text.at(node.col_offset))
    if a == b:
        raise SpecError("a constraint must name two different dims", text.start)
    return a, b


def parse_init(text: Text, param: str, dims: dict[str, sympy.Symbol]) -> tuple[str, tuple[sympy.Expr, ...]]:
    return InitParser(text, param, dims).parse_init()
