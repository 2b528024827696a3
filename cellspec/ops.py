"""The op table: every function a spec may call, its SymPy form, its derivative and its Numba spelling.

Each op keeps its derivative rule next to its definition (SymPy's `fdiff`), written in the stable
form: sigmoid' = sigmoid*(1-sigmoid), softplus' = sigmoid. SymPy never rewrites these functions into
exponentials, because they are functions of their own rather than expressions built from `exp`.
The Numba helpers are source text, emitted into each generated module that calls them, so that a
generated module stands without the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import sympy


class _RealFunction(sympy.Function):
    """A function that is real wherever its arguments are, so that SymPy differentiates, e.g.,
    abs(sigmoid(x)) as a real function, without re() and im()."""

    def _eval_is_real(self):
        return True if all(a.is_real for a in self.args) else None


class sigmoid(_RealFunction):
    """The logistic function 1/(1+exp(-x))."""

    nargs = 1

    def fdiff(self, argindex=1):
        return self * (1 - self)

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Rational(1, 2)
        return None


class softplus(_RealFunction):
    """log(1+exp(x)), computed without overflow."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


class step(_RealFunction):
    """1 where x > 0, else 0: the derivative of relu, with relu'(0) = 0 as PyTorch has it."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sympy.S.Zero


class relu(_RealFunction):
    """max(x, 0)."""

    nargs = 1

    def fdiff(self, argindex=1):
        # step(relu(x)) = step(x) everywhere, relu'(0) = 0 included; written in relu's own value
        # so that the backward pass reads the saved output, not the pre-activation
        return step(self)


class absolute(_RealFunction):
    """|x|. Every value of a cell is real, so its derivative is sign(x); SymPy's own Abs
    differentiates an argument it cannot prove real (log(h), a where()) through re() and im(),
    which no kernel can compute."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sympy.sign(self.args[0])

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return abs(x)
        if isinstance(x, absolute):
            return x
        return None


class maximum(_RealFunction):
    """The larger of two values; at a tie the gradient goes to the first."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return 1 - step(b - a) if argindex == 1 else step(b - a)


class minimum(_RealFunction):
    """The smaller of two values; at a tie the gradient goes to the first."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return 1 - step(a - b) if argindex == 1 else step(a - b)


@dataclass(frozen=True)
class Op:
    """A function callable from a spec.

    `build` makes the SymPy expression from the arguments; `numeric` evaluates it on Python
    floats, for constant arguments (it raises OverflowError or ValueError where the result is not
    a finite real). Kernels call the function of the same name in `cellspec.fastmath`, or a
    builtin (`abs`, `math.sqrt`)."""

    name: str
    arity: int
    build: object
    numeric: object
    doc: str = ""


def _sigmoid(v: float) -> float:
    e = math.exp(-abs(v))
    return 1.0 / (1.0 + e) if v >= 0 else e / (1.0 + e)


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("sigmoid", 1, sigmoid, _sigmoid, "logistic sigmoid"),
        Op("tanh", 1, sympy.tanh, math.tanh, "hyperbolic tangent"),
        Op("relu", 1, relu, lambda v: max(v, 0.0), "max(x, 0)"),
        Op("exp", 1, sympy.exp, math.exp, "exponential"),
        Op("log", 1, sympy.log, math.log, "natural logarithm"),
        Op("softplus", 1, softplus, lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v))), "log(1 + exp(x))"),
        Op("abs", 1, absolute, abs, "absolute value"),
        Op("sqrt", 1, sympy.sqrt, math.sqrt, "square root"),
        Op("max", 2, maximum, max, "elementwise maximum"),
        Op("min", 2, minimum, min, "elementwise minimum"),
    )
}

# The function of `cellspec.fastmath` that kernels call for each SymPy class, including those
# that appear only in derivatives (step, sign).
KERNEL_FUNCTION = {
    sigmoid: "sigmoid",
    softplus: "softplus",
    relu: "relu",
    step: "step",
    maximum: "maximum",
    minimum: "minimum",
    sympy.tanh: "tanh",
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.sign: "sign",
}

# What a kernel can compute besides the functions above: arithmetic, where() and its conditions.
_STRUCTURE = (
    sympy.Symbol, sympy.Integer, sympy.Rational, sympy.Float, sympy.Add, sympy.Mul, sympy.Pow, sympy.Mod,
    sympy.Piecewise, sympy.ITE, sympy.logic.boolalg.BooleanAtom, sympy.And, sympy.Or, sympy.Not,
    sympy.core.relational.Relational, absolute,
)


def unsupported(expr: sympy.Basic) -> sympy.Basic | None:
    """The first part of `expr` that no kernel computes (re(), an unevaluated Derivative, zoo,
    nan), or None. Every expression the compiler emits passes this first, so a SymPy form that
    slips past the parser is a located error, never a printer's traceback."""
    seen = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if isinstance(e, sympy.Tuple) or (isinstance(e, sympy.Basic) and type(e).__name__ == "ExprCondPair"):
            stack.extend(e.args)
            continue
        if e.is_Number and not e.is_finite:
            return e
        if not (isinstance(e, _STRUCTURE) or type(e) in KERNEL_FUNCTION):
            return e
        stack.extend(e.args)
    return None
