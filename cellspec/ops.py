"""The op table: every function a spec may call, its SymPy form, its derivative and its spelling in
kernels, in numpy (the reference and the JAX peer) and in TorchScript (the bench).

Each op keeps its derivative rule next to its definition (SymPy's `fdiff`), written in the stable
form: sigmoid' = sigmoid*(1-sigmoid), softplus' = sigmoid. SymPy never rewrites these functions into
exponentials, because they are functions of their own rather than expressions built from `exp`.
The other tables (the printers', the reference's, the runtime's count of transcendentals) are
derived from `FUNCTIONS`: adding a function to the language is a class, a row and an op here, and a
function of `cellspec.fastmath` for kernels to call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

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
class Function:
    """One SymPy function class that kernels compute, with its spelling in every consumer: the
    one row that the printer, the reference, the bench's TorchScript peer and the runtime's cost
    measure all read. Its derivative is the class's own (`fdiff`, or SymPy's for tanh, exp, log).

    `kernel` is the name a kernel calls: a function of `cellspec.fastmath`, or with `builtin` a
    Python builtin that needs no import. `numpy(xp)` gives the function on arrays of the namespace
    `xp` (numpy for the reference, jax.numpy for the JAX peer), in its stable form. `torch` is a
    format string of the arguments (`{0}`, `{1}`) in TorchScript, None where that peer cannot
    express it. `transcendental` marks what counts as heavy elementwise work (exp, log and what
    is built from them). `bounded` marks a function finite for every argument (sigmoid, tanh)."""

    cls: type
    kernel: str
    numpy: Callable[[object], Callable]
    torch: str | None
    transcendental: bool = False
    builtin: bool = False
    bounded: bool = False


def _numpy_sigmoid(xp):
    def sigmoid_(v):
        e = xp.exp(-xp.abs(v))
        return xp.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    return sigmoid_


FUNCTIONS: dict[type, Function] = {
    f.cls: f
    for f in (
        Function(sigmoid, "sigmoid", _numpy_sigmoid, "torch.sigmoid({0})", transcendental=True, bounded=True),
        Function(sympy.tanh, "tanh", lambda xp: xp.tanh, "torch.tanh({0})", transcendental=True, bounded=True),
        Function(relu, "relu", lambda xp: lambda v: xp.maximum(v, 0.0), "torch.relu({0})"),
        Function(sympy.exp, "exp", lambda xp: xp.exp, "torch.exp({0})", transcendental=True),
        Function(sympy.log, "log", lambda xp: xp.log, "torch.log({0})", transcendental=True),
        Function(
            softplus,
            "softplus",
            lambda xp: lambda v: xp.maximum(v, 0.0) + xp.log1p(xp.exp(-xp.abs(v))),
            "torch.nn.functional.softplus({0})",
            transcendental=True,
        ),
        Function(absolute, "abs", lambda xp: xp.abs, "torch.abs({0})", builtin=True),
        Function(maximum, "maximum", lambda xp: lambda a, b: xp.where(a >= b, a, b), "torch.maximum({0}, {1})"),
        Function(minimum, "minimum", lambda xp: lambda a, b: xp.where(a <= b, a, b), "torch.minimum({0}, {1})"),
        # only in derivatives
        Function(step, "step", lambda xp: lambda v: xp.where(v > 0, 1.0, 0.0), "({0} > 0).to(torch.float32)"),
        Function(sympy.sign, "sign", lambda xp: xp.sign, "torch.sign({0})"),
    )
}

def transcendental() -> tuple[type, ...]:
    """The SymPy classes that count as heavy elementwise work, read from the table when asked
    (a row added later counts too)."""
    return tuple(cls for cls, row in FUNCTIONS.items() if row.transcendental)


# The function of `cellspec.fastmath` that kernels call for each SymPy class that has one.
KERNEL_FUNCTION = {f.cls: f.kernel for f in FUNCTIONS.values() if not f.builtin}


@dataclass(frozen=True)
class Op:
    """A function callable from a spec.

    `build` makes the SymPy expression from the arguments: a class of `FUNCTIONS`, which holds
    its spellings, or for sqrt a power that the printers spell themselves. `numeric` evaluates it
    on Python floats, for constant arguments (it raises OverflowError or ValueError where the
    result is not a finite real)."""

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

# What a kernel can compute besides the functions of `FUNCTIONS`: arithmetic, where() and its conditions.
_STRUCTURE = (
    sympy.Symbol, sympy.Integer, sympy.Rational, sympy.Float, sympy.Add, sympy.Mul, sympy.Pow, sympy.Mod,
    sympy.Piecewise, sympy.ITE, sympy.logic.boolalg.BooleanAtom, sympy.And, sympy.Or, sympy.Not,
    sympy.core.relational.Relational,
)


@functools.cache
def reads_own_value(cls: type) -> bool:
    """Whether a one-argument function's derivative is written in its own value alone (tanh' =
    1 - tanh**2, sigmoid, exp, relu): its backward pass needs the call's value, not its argument."""
    u = sympy.Symbol("u", real=True)
    try:
        y = cls(u)
    except (TypeError, ValueError):
        return False
    if y.func is not cls:
        return False
    d = sympy.diff(y, u)
    return d.has(y) and u not in d.xreplace({y: sympy.Symbol("y")}).free_symbols


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
        if not (isinstance(e, _STRUCTURE) or type(e) in FUNCTIONS):
            return e
        stack.extend(e.args)
    return None
