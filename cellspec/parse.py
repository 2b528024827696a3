"""Turn one equation of a spec into SymPy, through Python's `ast` and a whitelist. The walk
(`Parser`) is shared with `parse_sizes`, which parses inits, constants, masks and constraints.

Spec text never reaches `eval`, `exec`, `sympify` or `parse_expr`. Each allowed node has one
`visit_<Node>` method; any other node is an error that points at it. Names resolve only to what
the caller declares, calls only to the op table.
"""

from __future__ import annotations

import ast
from typing import Callable

import sympy

from .errors import Location, SpecError, UnknownName
from .ops import OPS
from .yamltext import Text

MAX_EXPR_CHARS = 10_000
MAX_DEPTH = 200
MAX_NODES = 5_000
MAX_CONSTANT = 1e30
MAX_EXPONENT = 64

# What a refused node is called in messages: "<kind> are not allowed in ...".
_DESCRIBE = {
    ast.Attribute: "attributes",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and' and 'or'",
    ast.IfExp: "'if' expressions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions",
    ast.Await: "'await' expressions",
    ast.JoinedStr: "f-strings",
    ast.Yield: "'yield' expressions",
    ast.YieldFrom: "'yield' expressions",
    ast.Slice: "slices",
}

_BINOPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@", ast.Mod: "%",
    ast.FloorDiv: "//", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
}
def is_condition(value) -> bool:
    # sympy's Symbol is a Boolean too, so test for the condition classes themselves
    return isinstance(value, (sympy.core.relational.Relational, sympy.And, sympy.Or, sympy.Not, sympy.logic.boolalg.BooleanAtom))


_NOT_FINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)

_COMPARE = {ast.Lt: sympy.Lt, ast.LtE: sympy.Le, ast.Gt: sympy.Gt, ast.GtE: sympy.Ge, ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne}


class Parser:
    """The shared whitelist walk; subclasses say what names and calls mean, and which operators
    they take."""

    what = "an expression"
    binops = frozenset({ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow})
    # comparisons are allowed where this is positive (inside a condition)
    conditions = 0
    # exponents must be numbers, except in index formulas (2**(i // 4))
    symbolic_exponent = False

    # the symbols '%' may take outside a where() condition; None: any (index formulas, and
    # equations parsed on their own, without an IR)
    mod_operands: set | None = None

    def __init__(self, text: Text):
        self.text = text
        self.source = text.value
        self.nodes = 0

    def where(self, node) -> Location:
        return self.position(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))

    def position(self, line: int, col: int) -> Location:
        """The spec location of (1-based line, 0-based column) of the parsed source. The source
        is ASCII (checked first), so ast's byte columns are character columns."""
        lines = self.parsed.split("\n")
        index = self.lead + sum(len(ln) + 1 for ln in lines[: line - 1]) + col
        return self.text.at(index)

    def fail(self, message: str, node) -> SpecError:
        return SpecError(message, self.where(node))

    def parse(self):
        src = self.source
        bad = next((i for i, ch in enumerate(src) if not ch.isascii()), None)
        if bad is not None:
            raise SpecError(f"non-ASCII character {src[bad]!r} in {self.what}; names are ASCII identifiers", self.text.at(bad))
        if len(src) > MAX_EXPR_CHARS:
            raise SpecError(f"{self.what} is longer than {MAX_EXPR_CHARS} characters", self.text.start)
        if not src.strip():
            raise SpecError(f"{self.what} is empty", self.text.start)
        # a block or folded scalar may start or end with blanks; ast would read them as indentation
        self.parsed = src.strip()
        self.lead = len(src) - len(src.lstrip())
        try:
            tree = ast.parse(self.parsed, mode="eval")
        except SyntaxError as e:
            message = (e.msg or "invalid syntax").replace("was never closed", "is never closed")
            if "int_max_str_digits" in message or "Exceeds the limit" in message:
                raise SpecError(f"a constant in {self.what} is too large", self.text.start) from None
            where = self.position(e.lineno or 1, max((e.offset or 1) - 1, 0))
            raise SpecError(f"invalid syntax in {self.what}: {message}", where) from None
        except (RecursionError, MemoryError, ValueError):
            # Python's own parser gave up on the depth before our walk could count it
            raise SpecError(self.too_deep(), self.text.start) from None
        return self.visit(tree.body, 0)

    def too_deep(self) -> str:
        return f"{self.what} is nested more than {MAX_DEPTH} deep (a chain of + or * counts too): split it into several equations"

    def visit(self, node, depth: int):
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise self.fail(self.too_deep(), node)
        if self.nodes > MAX_NODES:
            raise self.fail(f"{self.what} has more than {MAX_NODES} parts", node)
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            kind = _DESCRIBE.get(type(node), f"{type(node).__name__} nodes")
            raise self.fail(f"{kind} are not allowed in {self.what}", node)
        return method(node, depth + 1)

    def constant(self, value: sympy.Expr, node) -> sympy.Expr:
        """Keep every constant a finite real of bounded size, checked in floating point as it is
        built, so no constant sub-expression can overflow or make SymPy compute for long."""
        try:
            v = float(value)
        except (TypeError, OverflowError, ValueError):
            raise self.fail("this constant is not a finite real number", node) from None
        if v != v or abs(v) > MAX_CONSTANT:
            raise self.fail(f"constant is too large (at most {MAX_CONSTANT:g} in size)", node)
        return value

    def coefficient(self, value: sympy.Expr, node) -> sympy.Expr:
        """Bound the numeric coefficient of a non-constant result, e.g. x*1e30*10."""
        coeff = value.as_coeff_Mul()[0] if value.is_Mul else value.as_coeff_Add()[0] if value.is_Add else None
        if coeff is not None and abs(float(coeff)) > MAX_CONSTANT:
            raise self.fail(f"constant is too large (at most {MAX_CONSTANT:g} in size)", node)
        return value

    def visit_Constant(self, node, depth):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = {str: "string", bytes: "string", bool: "boolean", type(None): "None", type(...): "ellipsis"}.get(type(v), type(v).__name__)
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
        if op not in self.binops:
            spelled = f"'{_BINOPS[op]}'" if op in _BINOPS else type(node.op).__name__
            raise self.fail(f"operator {spelled} is not allowed in {self.what}", node)
        if op is ast.MatMult:
            return self.matmul(node, depth)
        a = self.numeric(self.visit(node.left, depth), node.left)
        b = self.numeric(self.visit(node.right, depth), node.right)
        self.check_operands(node.right, a, b)
        if op is ast.Add:
            out = a + b
        elif op is ast.Sub:
            out = a - b
        elif op is ast.Mult:
            out = a * b
        elif op in (ast.Div, ast.Mod, ast.FloorDiv):
            if b.is_zero:
                raise self.fail("division by zero", node)
            if op is ast.Mod and self.mod_operands is not None and self.conditions <= 0 and not (a.free_symbols | b.free_symbols) <= self.mod_operands:
                # a % b jumps: SymPy leaves its derivative unevaluated, and so would the kernels;
                # in a where() condition nothing is differentiated, so there it takes anything
                raise self.fail("'%' takes only the step, constants and numbers: it has no derivative", node)
            out = a / b if op is ast.Div else sympy.Mod(a, b) if op is ast.Mod else sympy.floor(a / b)
        else:
            if not b.is_number and not self.symbolic_exponent:
                raise self.fail("the exponent of ** must be a number", node.right)
            if b.is_number and abs(float(b)) > MAX_EXPONENT:
                raise self.fail(f"the exponent of ** must be at most {MAX_EXPONENT} in size", node.right)
            if a.is_zero and b.is_negative:
                raise self.fail("division by zero", node)
            if a.is_number and b.is_number:
                try:
                    v = float(a) ** float(b)
                except (OverflowError, ZeroDivisionError):
                    raise self.fail(f"constant is too large (at most {MAX_CONSTANT:g} in size)", node) from None
                if isinstance(v, complex):
                    raise self.fail("this constant is not a finite real number", node)
            out = a ** b
        if op in (ast.Div, ast.Mod, ast.FloorDiv, ast.Pow) and out.has(*_NOT_FINITE):
            # a zero in one branch of a where(): SymPy divides branch by branch
            if op is ast.Pow:
                raise self.fail("a negative power of zero in a branch of this base", node.left)
            raise self.fail("division by zero in a branch of this divisor", node.right)
        return self.constant(out, node) if out.is_number else self.coefficient(out, node)

    def numeric(self, value, node):
        """Comparisons are conditions, not numbers: refuse arithmetic on them."""
        if is_condition(value):
            raise self.fail(f"a comparison is a condition, not a number, in {self.what}", node)
        return value

    def visit_Compare(self, node, depth):
        if self.conditions <= 0:
            raise self.fail(f"comparisons are allowed only in a condition, the first argument of where(), in {self.what}", node)
        if len(node.ops) != 1:
            raise self.fail(f"chained comparisons are not allowed in {self.what}: write one at a time", node)
        a = self.numeric(self.visit(node.left, depth), node.left)
        b = self.numeric(self.visit(node.comparators[0], depth), node.comparators[0])
        self.check_operands(node.comparators[0], a, b)
        out = _COMPARE[type(node.ops[0])](a, b)
        if out in (sympy.true, sympy.false):
            raise self.fail("this condition is always " + ("true" if out == sympy.true else "false"), node)
        return out

    def check_operands(self, right, a: sympy.Expr, b: sympy.Expr) -> None:
        """A hook for subclasses: refuse operands that cannot be combined elementwise, pointing
        at the right one."""

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


class EquationParser(Parser):
    """An equation: elementwise SymPy over declared names; `W @ v` is handed to `on_product`,
    which returns the symbol that stands for the product's value. `where(cond, a, b)` is a
    Piecewise whose condition is one comparison."""

    binops = frozenset({ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult, ast.Mod})

    def __init__(self, text: Text, name: str, symbols: dict[str, sympy.Symbol], matrices: set[str], on_product: ProductMaker, dims: dict[sympy.Symbol, str] | None = None, no_gradient: set[str] | None = None):
        super().__init__(text)
        self.what = f"equation {name!r}"
        self.mod_operands = None if no_gradient is None else {symbols[n] for n in no_gradient if n in symbols}
        self.symbols = symbols
        self.dims = dims if dims is not None else {}
        # every declared name the text mentions, even where SymPy cancels it (h - h)
        self.referenced: set[str] = set()
        self.matrices = matrices
        self.on_product = on_product

    def visit_Name(self, node, depth):
        name = node.id
        if name in self.matrices:
            raise self.fail(f"matrix {name!r} can only be the left operand of '@'", node)
        if name in self.symbols:
            self.referenced.add(name)
            return self.symbols[name]
        if name in OPS:
            raise self.fail(f"function {name!r} must be called", node)
        raise UnknownName(name, self.where(node))

    def matmul(self, node, depth):
        left = node.left
        if isinstance(left, ast.Name) and left.id not in self.matrices and left.id not in self.symbols and left.id not in OPS:
            raise UnknownName(left.id, self.where(left))
        if not isinstance(left, ast.Name) or left.id not in self.matrices:
            what = f"{left.id!r}" if isinstance(left, ast.Name) else "an expression"
            raise self.fail(f"the left operand of '@' must be a matrix param, not {what}", left)
        # the operand is a value the backward pass differentiates, even inside a where()
        # condition: the rules of a value (no comparisons, '%' only of leaves) hold in it
        conditions, self.conditions = self.conditions, 0
        try:
            operand = self.visit(node.right, depth)
        finally:
            self.conditions = conditions
        if operand.is_number:
            raise self.fail("the right operand of '@' must be a vector, not a number", node.right)
        return self.on_product(left.id, self.where(left), operand, self.where(node.right))

    def dim(self, expr: sympy.Expr) -> str | None:
        dims = {self.dims[s] for s in expr.free_symbols if s in self.dims}
        return dims.pop() if len(dims) == 1 else None

    def check_operands(self, right, a, b):
        da, db = self.dim(a), self.dim(b)
        if da is not None and db is not None and da != db:
            raise self.fail(f"elementwise operation mixes a [{da}] vector and a [{db}] vector", right)

    def where_call(self, node, depth):
        if len(node.args) != 3:
            raise self.fail(f"where() takes 3 arguments (condition, value if true, value if false), got {len(node.args)}", node)
        self.conditions += 1
        try:
            cond = self.visit(node.args[0], depth)
        finally:
            self.conditions -= 1
        if not isinstance(cond, sympy.core.relational.Relational):
            raise self.fail("the first argument of where() must be a comparison", node.args[0])
        a = self.numeric(self.visit(node.args[1], depth), node.args[1])
        b = self.numeric(self.visit(node.args[2], depth), node.args[2])
        self.check_operands(node.args[2], a, b)
        self.check_operands(node.args[0], a if a.free_symbols else b, cond.lhs - cond.rhs)
        return sympy.Piecewise((a, cond), (b, True))

    def call(self, node, name, depth):
        if name == "where":
            return self.where_call(node, depth)
        op = OPS.get(name)
        if op is None:
            raise self.fail(f"unknown function {name!r}; known: {', '.join(sorted([*OPS, 'where']))}", node.func)
        if len(node.args) != op.arity:
            raise self.fail(f"{name}() takes {count_args(op.arity)}, got {len(node.args)}", node)
        args = [self.numeric(self.visit(a, depth), a) for a in node.args]
        if len(args) == 2:
            self.check_operands(node.args[1], args[0], args[1])
        if all(a.is_number for a in args):
            try:
                value = op.numeric(*(float(a) for a in args))
            except (OverflowError, ValueError, ZeroDivisionError):
                raise self.fail(f"{name}() of this constant is not a finite real number", node) from None
            exact = op.build(*args)
            if not exact.is_Rational:
                exact = sympy.Integer(int(value)) if float(value).is_integer() and abs(value) < 2**53 else sympy.Float(value)
            return self.constant(exact, node)
        return op.build(*args)


def count_args(n: int) -> str:
    return f"{n} argument" if n == 1 else f"{n} arguments"


def parse_equation(text: Text, name: str, symbols: dict[str, sympy.Symbol], matrices: set[str], on_product: ProductMaker, dims: dict[sympy.Symbol, str] | None = None, referenced: set[str] | None = None, no_gradient: set[str] | None = None) -> sympy.Expr:
    """`dims` gives each symbol's dim, so that mixing dims is refused where it is written;
    `referenced`, if given, receives every declared name the text mentions; `no_gradient` names
    the values that carry no gradient (constants, the step), the only ones '%' may take."""
    parser = EquationParser(text, name, symbols, matrices, on_product, dims, no_gradient)
    expr = parser.parse()
    if referenced is not None:
        referenced.update(parser.referenced)
    return expr
