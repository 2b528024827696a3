"""Turn one expression string of a spec into SymPy, through Python's `ast` and a whitelist.

Spec text never reaches `eval`, `exec`, `sympify` or `parse_expr`. Each allowed node has one
`visit_<Node>` method; any other node is an error that points at it. Names resolve only to what
the caller declares, calls only to the op table.
"""

from __future__ import annotations

import ast
from typing import Callable

import sympy

from .errors import Location, SpecError
from .ops import OPS
from .spec import Text

MAX_EXPR_CHARS = 10_000
MAX_DEPTH = 200
MAX_NODES = 5_000
MAX_CONSTANT = 1e30
MAX_EXPONENT = 64

_DESCRIBE = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "'if' expressions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions",
    ast.Await: "await",
    ast.JoinedStr: "f-strings",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}


class _Parser:
    """The shared whitelist walk; subclasses say what names and calls mean."""

    what = "an expression"

    def __init__(self, text: Text):
        self.text = text
        self.source = text.value
        self.nodes = 0

    def where(self, node) -> Location:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        # ast columns count UTF-8 bytes; the text is ASCII here, so bytes are characters.
        return self.text.start.shifted(line - 1, col + 1)

    def fail(self, message: str, node) -> SpecError:
        return SpecError(message, self.where(node))

    def parse(self) -> sympy.Expr:
        src = self.source
        bad = next((i for i, ch in enumerate(src) if not ch.isascii()), None)
        if bad is not None:
            raise SpecError(f"non-ASCII character {src[bad]!r} in {self.what}; names are ASCII identifiers", self.text.start.shifted(0, bad + 1))
        if len(src) > MAX_EXPR_CHARS:
            raise SpecError(f"{self.what} is longer than {MAX_EXPR_CHARS} characters", self.text.start)
        if not src.strip():
            raise SpecError(f"{self.what} is empty", self.text.start)
        try:
            tree = ast.parse(src.strip() if "\n" in src else src, mode="eval")
        except SyntaxError as e:
            message = (e.msg or "invalid syntax").replace("'(' was never closed", "'(' is never closed")
            raise SpecError(f"invalid syntax in {self.what}: {message}", self.text.start.shifted((e.lineno or 1) - 1, e.offset or 1)) from None
        except (RecursionError, MemoryError, ValueError):
            raise SpecError(f"{self.what} is nested too deeply", self.text.start) from None
        return self.visit(tree.body, 0)

    def visit(self, node, depth: int):
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise self.fail(f"{self.what} is nested more than {MAX_DEPTH} deep", node)
        if self.nodes > MAX_NODES:
            raise self.fail(f"{self.what} has more than {MAX_NODES} parts", node)
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            kind = _DESCRIBE.get(type(node), type(node).__name__)
            raise self.fail(f"{kind} are not allowed in {self.what}" if kind.endswith("s") else f"{kind} is not allowed in {self.what}", node)
        return method(node, depth + 1)

    def visit_Constant(self, node, depth):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = "string" if isinstance(v, (str, bytes)) else type(v).__name__
            raise self.fail(f"{kind} constants are not allowed in {self.what}; only numbers", node)
        if abs(v) > MAX_CONSTANT:
            raise self.fail(f"constant {v!r} is too large", node)
        if isinstance(v, int):
            return sympy.Integer(v)
        if v != v or v in (float("inf"), float("-inf")):
            raise self.fail("constants must be finite", node)
        # Exact rationals keep 0.1 as 1/10, so printed code and derivatives carry no float noise.
        return sympy.Rational(repr(v))

    def visit_UnaryOp(self, node, depth):
        if isinstance(node.op, ast.USub):
            return -self.visit(node.operand, depth)
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand, depth)
        op = {ast.Not: "'not'", ast.Invert: "'~'"}.get(type(node.op), "this operator")
        raise self.fail(f"{op} is not allowed in {self.what}", node)

    def visit_BinOp(self, node, depth):
        op = type(node.op)
        if op not in _BINOPS:
            raise self.fail(f"operator {type(node.op).__name__} is not allowed in {self.what}", node)
        if op is ast.MatMult:
            return self.matmul(node, depth)
        a = self.visit(node.left, depth)
        b = self.visit(node.right, depth)
        if op is ast.Add:
            out = a + b
        elif op is ast.Sub:
            out = a - b
        elif op is ast.Mult:
            out = a * b
        elif op is ast.Div:
            if b.is_zero:
                raise self.fail("division by zero", node)
            out = a / b
        else:
            if not b.is_number:
                raise self.fail("the exponent of ** must be a number", node.right)
            if abs(float(b)) > MAX_EXPONENT:
                raise self.fail(f"the exponent of ** must be at most {MAX_EXPONENT} in size", node.right)
            if a.is_zero and b.is_negative:
                raise self.fail("division by zero", node)
            out = a ** b
        if out.is_number:
            if out.has(sympy.zoo, sympy.nan, sympy.oo, sympy.I) or not out.is_real:
                raise self.fail("this constant is not a finite real number", node)
            if abs(float(out)) > MAX_CONSTANT:
                raise self.fail("constant is too large", node)
        return out

    def matmul(self, node, depth):
        raise self.fail(f"'@' is not allowed in {self.what}", node)

    def visit_Call(self, node, depth):
        if node.keywords:
            raise self.fail(f"keyword arguments are not allowed in {self.what}", node.keywords[0].value)
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"only named functions can be called in {self.what}", node.func)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail(f"starred arguments are not allowed in {self.what}", a)
        return self.call(node, node.func.id, depth)


ProductMaker = Callable[[str, Location, sympy.Expr, Location], sympy.Symbol]


class EquationParser(_Parser):
    """An equation: elementwise SymPy over declared names; `W @ v` is handed to `on_product`,
    which returns the symbol that stands for the product's value."""

    def __init__(self, text: Text, name: str, symbols: dict[str, sympy.Symbol], matrices: set[str], on_product: ProductMaker):
        super().__init__(text)
        self.what = f"equation {name!r}"
        self.symbols = symbols
        self.matrices = matrices
        self.on_product = on_product

    def visit_Name(self, node, depth):
        name = node.id
        if name in self.matrices:
            raise self.fail(f"matrix {name!r} can only be the left operand of '@'", node)
        if name in self.symbols:
            return self.symbols[name]
        if name in OPS:
            raise self.fail(f"function {name!r} must be called", node)
        raise self.fail(f"unknown name {name!r}", node)

    def matmul(self, node, depth):
        left = node.left
        if not isinstance(left, ast.Name) or left.id not in self.matrices:
            what = f"{left.id!r}" if isinstance(left, ast.Name) else "an expression"
            raise self.fail(f"the left operand of '@' must be a matrix param, not {what}", left)
        operand = self.visit(node.right, depth)
        if operand.is_number:
            raise self.fail("the right operand of '@' must be a vector, not a number", node.right)
        return self.on_product(left.id, self.where(left), operand, self.where(node.right))

    def call(self, node, name, depth):
        op = OPS.get(name)
        if op is None:
            raise self.fail(f"unknown function {name!r}; known: {', '.join(sorted(OPS))}", node.func)
        if len(node.args) != op.arity:
            raise self.fail(f"{name}() takes {op.arity} argument{'s' if op.arity > 1 else ''}, got {len(node.args)}", node)
        args = [self.visit(a, depth) for a in node.args]
        out = op.build(*args)
        if out.is_number and (out.has(sympy.zoo, sympy.nan, sympy.oo, sympy.I) or not out.is_real):
            raise self.fail(f"{name}() of this constant is not a finite real number", node)
        return out


# Initialisers: name -> (min args, max args). Arguments are numbers or formulas of the dims.
INITS = {
    "zeros": (0, 0),
    "ones": (0, 0),
    "constant": (1, 1),
    "uniform": (1, 2),
    "normal": (1, 1),
    "orthogonal": (0, 1),
}


class InitParser(_Parser):
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
                raise SpecError(f"init {src!r} needs {lo} argument{'s' if lo > 1 else ''}", self.text.start)
            return src, ()
        self.kind = None
        expr = self.parse()
        if self.kind is None or not isinstance(expr, tuple):
            raise SpecError(f"{self.what} must be one of {', '.join(INITS)}", self.text.start)
        return expr

    def parse(self):
        try:
            return super().parse()
        except RecursionError:
            raise SpecError(f"{self.what} is nested too deeply", self.text.start) from None

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
                want = f"{lo}" if lo == hi else f"{lo} or {hi}"
                raise self.fail(f"init {name}() takes {want} argument{'s' if hi > 1 else ''}, got {len(node.args)}", node)
            self.kind = name
            return name, tuple(self.visit(a, depth) for a in node.args)
        if name == "sqrt" and len(node.args) == 1:
            return sympy.sqrt(self.visit(node.args[0], depth))
        raise self.fail(f"function {name!r} is not allowed in {self.what}; use numbers, dims and sqrt", node.func)


def parse_equation(text: Text, name: str, symbols: dict[str, sympy.Symbol], matrices: set[str], on_product: ProductMaker) -> sympy.Expr:
    return EquationParser(text, name, symbols, matrices, on_product).parse()


def parse_init(text: Text, param: str, dims: dict[str, sympy.Symbol]) -> tuple[str, tuple[sympy.Expr, ...]]:
    return InitParser(text, param, dims).parse_init()
