"""Evaluate the formulas of a generated cell (its constants, weight masks and init arguments) at
the sizes it is instantiated with: exactly, or with a clear error. Imports numpy only.

The compiler writes each formula as a literal tree of tuples (`cellspec/codegen/printer.py`):

    7, ('frac', 1, 3)            numbers: an int, or the fraction p/q
    ('dim', 'hidden')            a dim's size
    ('index', 'i')               the unit index: i over a vector or a mask's rows, j over its columns
    ('+', a, b, ...)  ('*', a, b, ...)  ('/', a, b)  ('//', a, b)  ('%', a, b)  ('**', a, b)
    ('min', a, b, ...)  ('max', a, b, ...)  ('sqrt', a)
    ('<', a, b)  ('<=', a, b)  ('>', a, b)  ('>=', a, b)  ('==', a, b)  ('!=', a, b)
    ('and', a, b, ...)  ('or', a, b, ...)

Arithmetic is Python's on ints and `fractions.Fraction`, so it is exact: `//` and `%` floor as
Python's do, and a power with a negative exponent is a fraction. Only `sqrt` of a number that is
no square, and a power with a fractional exponent, leave the exact numbers: they are floats,
rounded once each, and so is what is computed from them (`1/sqrt(hidden)` is `1.0/math.sqrt(n)`).
A formula over an index is first tried in int64 arrays, where each operation is proven not to
overflow from bounds of its operands (int64 arithmetic without overflow is the exact integer
arithmetic); where that proof fails, or a fraction or division by zero turns up, it is evaluated
again over numpy object arrays of Python numbers.

An error is a ValueError (the one Cell() raises) naming what failed and the sizes: a division or
modulo by zero, a power beyond MAX_BITS bits (refused before it is computed), a value that does
not fit the cell's float type, or one that is not a real number.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

# the most bits of an exact intermediate value (of a numerator or denominator); a float64 holds
# numbers of about 1024 bits, but a comparison or a floor division may bring larger ones back
MAX_BITS = 8192
# the most bits all the values of one power may take together, checked before it is computed
MAX_TOTAL_BITS = 2**28
# the int64 evaluation's bound on every intermediate magnitude
_INT64_BOUND = 2**63 - 1

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal}


class _Refused(Exception):
    """Why a formula has no value; `evaluate` adds what it was and the sizes."""


def dims_of(tree) -> set[str]:
    """The dims a formula reads."""
    if not isinstance(tree, tuple):
        return set()
    if tree[0] == "dim":
        return {tree[1]}
    if tree[0] in ("frac", "index"):
        return set()
    return set().union(*(dims_of(a) for a in tree[1:]))


def sizes(trees, dims: dict[str, int], shape: tuple[str, ...] = ()) -> str:
    """The sizes that formulas (and the shape they fill) depend on: 'hidden=4, modules=4'."""
    names = set(shape).union(*(dims_of(t) for t in trees))
    return ", ".join(f"{d}={dims[d]}" for d in sorted(names))


def evaluate(tree, dims: dict[str, int], shape: tuple[str, ...] = (), dtype=np.float64, what: str = "a formula") -> np.ndarray:
    """The formula's value as an array of `dtype` over `shape` (dim names: i runs over the first
    axis, j over the second); a 0-d array for an init argument. Raises ValueError
    "<what> at <sizes>: <why>"."""
    dtype = np.dtype(dtype)
    n = tuple(int(dims[d]) for d in shape)
    try:
        value = _fast(tree, dims, n) if n else None
        if value is None:
            value = _exact(tree, dims, n)
            if not isinstance(value, np.ndarray):
                value = np.array(value, dtype=object)
        return _to_float(np.broadcast_to(value, n), dtype, shape)
    except _Refused as e:
        at = sizes([tree], dims, shape)
        raise ValueError(f"{what} at {at}: {e}" if at else f"{what}: {e}") from None


# --- int64, where it is provably exact ----------------------------------------------------------


def _fast(tree, dims: dict[str, int], shape: tuple[int, ...]) -> np.ndarray | None:
    """The value in int64 (or bool) arrays, or None where this evaluation cannot prove it exact."""
    try:
        return _int64(tree, dims, shape)[0]
    except _NotProven:
        return None


class _NotProven(Exception):
    pass


def _int64(tree, dims, shape):
    """(array, bound on its magnitude) of a formula, in int64; raises _NotProven. Bounds come
    from the operands' bounds, and where those are too loose to prove an operation safe, from
    the operands' measured magnitudes (exact: the operands themselves were proven exact)."""
    if isinstance(tree, int):
        if abs(tree) > _INT64_BOUND:
            raise _NotProven
        return np.int64(tree), abs(tree)
    op, args = tree[0], tree[1:]
    if op == "dim":
        return np.int64(dims[args[0]]), int(dims[args[0]])
    if op == "index":
        axis = "ij".index(args[0])
        n = shape[axis]
        return np.arange(n, dtype=np.int64).reshape([n if k == axis else 1 for k in range(len(shape))]), n - 1
    if op in ("frac", "/", "sqrt"):
        raise _NotProven
    values = [_int64(a, dims, shape) for a in args]
    if op in _COMPARE:
        (a, _), (b, _) = values
        return _COMPARE[op](a, b), 1
    if op in ("and", "or"):
        out = values[0][0]
        for v, _ in values[1:]:
            out = (out & v) if op == "and" else (out | v)
        return out, 1
    if op in ("+", "*"):
        combine = (lambda x, y: x + y) if op == "+" else (lambda x, y: x * y)
        out, bound = values[0]
        for v, b in values[1:]:
            if combine(bound, b) > _INT64_BOUND:
                bound, b = _measured(out), _measured(v)
                if combine(bound, b) > _INT64_BOUND:
                    raise _NotProven
            out, bound = combine(out, v), combine(bound, b)
        return out, bound
    if op in ("min", "max"):
        fn = np.minimum if op == "min" else np.maximum
        out, bound = values[0]
        for v, b in values[1:]:
            out, bound = fn(out, v), max(bound, b)
        return out, bound
    (a, ba), (b, bb) = values
    if op in ("//", "%"):
        if np.any(b == 0):
            raise _NotProven  # the exact evaluation says what is wrong
        # |a // b| <= |a| and |a % b| < |b| for integers with b != 0
        return (a // b, ba) if op == "//" else (a % b, bb)
    if op == "**":
        if np.any(b < 0):
            raise _NotProven  # a fraction
        if not _power_fits(ba, bb):
            ba, bb = _measured(a), _measured(b)
            if not _power_fits(ba, bb):
                raise _NotProven
        return a**b, 1 if ba <= 1 else ba**bb
    raise _Refused(f"unknown operation {op!r} (a cellspec bug)")


def _measured(x) -> int:
    return int(np.max(np.abs(x)))


def _power_fits(base: int, exp: int) -> bool:
    """Whether |b**e| <= the int64 bound for every |b| <= base and 0 <= e <= exp."""
    if base <= 1:
        return True
    # base**exp >= 2**((bit_length - 1)*exp): decide the large cases without computing them
    return (base.bit_length() - 1) * exp < 63 and base**exp <= _INT64_BOUND


# --- Python numbers, exact ----------------------------------------------------------------------


def _exact(tree, dims, shape):
    """The value as a Python number, or a numpy object array of them."""
    if isinstance(tree, int):
        return tree
    op, args = tree[0], tree[1:]
    if op == "frac":
        return Fraction(args[0], args[1])
    if op == "dim":
        return int(dims[args[0]])
    if op == "index":
        axis = "ij".index(args[0])
        n = shape[axis]
        return np.arange(n, dtype=object).reshape([n if k == axis else 1 for k in range(len(shape))])
    values = [_exact(a, dims, shape) for a in args]
    try:
        if op == "**":
            _check_power(*values)
        fn = _OPS.get(op)
        if fn is None:
            raise _Refused(f"unknown operation {op!r} (a cellspec bug)")
        out = values[0]
        if op == "sqrt":
            return _apply(fn, out)
        for v in values[1:]:
            out = _apply(fn, out, v)
        return out
    except ZeroDivisionError:
        raise _Refused("division by zero") from None
    except OverflowError:
        raise _Refused("a value is too large for a float") from None


def _apply(fn, *args):
    if any(isinstance(a, np.ndarray) for a in args):
        return np.frompyfunc(fn, len(args), 1)(*args)
    return fn(*args)


def _bits(x) -> int:
    if isinstance(x, Fraction):
        return max(x.numerator.bit_length(), x.denominator.bit_length())
    return x.bit_length() if isinstance(x, int) else 0


def _fit(x):
    """x, if it is a value this evaluation may carry on with."""
    if isinstance(x, float):
        if not math.isfinite(x):
            raise _Refused("a value is not a finite number")
    elif _bits(x) > MAX_BITS:
        raise _Refused(f"a value has more than {MAX_BITS} bits, too large to compute exactly")
    return x


def _power_bits(base, exp) -> int:
    """A lower bound on the bits of base**exp, for exact base and integer exp."""
    if isinstance(base, float) or not _integral(exp):
        return 0
    return max(_bits(base) - 1, 0) * abs(int(exp))


def _check_power(base, exp) -> None:
    """Refuse a power whose exact value would be too large before computing it."""
    bits = _apply(_power_bits, base, exp)
    total = int(np.sum(bits)) if isinstance(bits, np.ndarray) else bits
    largest = int(np.max(bits)) if isinstance(bits, np.ndarray) and bits.size else total
    if largest > MAX_BITS or total > MAX_TOTAL_BITS:
        raise _Refused(f"a power is too large to compute exactly (more than {MAX_BITS} bits)")


def _integral(x) -> bool:
    return isinstance(x, int) or (isinstance(x, Fraction) and x.denominator == 1)


def _power(base, exp):
    if _integral(exp) and not isinstance(base, float):
        e = int(exp)
        return _fit(Fraction(base) ** e if e < 0 else base**e)
    if _integral(exp):
        e = int(exp)
        # as the printed code had it: a negative power is 1/x**k
        return _fit(1.0 / base ** (-e) if e < 0 else base**e)
    if base < 0 and not float(exp).is_integer():
        raise _Refused("a negative number to a fractional power is not a real number")
    return _fit(float(base) ** float(exp))


def _sqrt(x):
    if x < 0:
        raise _Refused("the square root of a negative number is not a real number")
    if isinstance(x, (int, Fraction)):
        x = Fraction(x)
        p, q = math.isqrt(x.numerator), math.isqrt(x.denominator)
        if p * p == x.numerator and q * q == x.denominator:
            return Fraction(p, q)
    return _fit(math.sqrt(float(x)))


def _divide(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return _fit(a / b)
    return _fit(Fraction(a) / b)


_OPS = {
    "+": lambda a, b: _fit(a + b),
    "*": lambda a, b: _fit(a * b),
    "/": _divide,
    "//": lambda a, b: _fit(a // b),
    "%": lambda a, b: _fit(a % b),
    "**": _power,
    "sqrt": _sqrt,
    "min": min,
    "max": max,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "and": lambda a, b: bool(a and b),
    "or": lambda a, b: bool(a or b),
}


# --- the cell's float type ----------------------------------------------------------------------


def _to_float(value: np.ndarray, dtype: np.dtype, shape: tuple[str, ...]) -> np.ndarray:
    """value in `dtype`, through float64 (as the cells have always rounded), checked finite."""
    if value.dtype == bool:
        return np.array(value, dtype=dtype, order="C")
    if value.dtype == np.int64:
        # below 2**63: finite in float32 too
        return np.array(np.asarray(value, dtype=np.float64), dtype=dtype, order="C")
    if value.dtype == object:
        flat = value.ravel()
        out = np.empty(flat.shape, np.float64)
        for k, v in enumerate(flat):
            try:
                out[k] = float(v)
            except OverflowError:
                raise _Refused(f"{_where(value.shape, k, shape)}the value {_approx(v)} does not fit float64") from None
        value = out.reshape(value.shape)
    wide = np.asarray(value, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(wide, dtype=dtype, order="C")
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        k = int(bad[0])
        raise _Refused(f"{_where(out.shape, k, shape)}the value {wide.ravel()[k]:.6g} does not fit {dtype.name}")
    return out


def _where(array_shape, k: int, shape: tuple[str, ...]) -> str:
    if not shape:
        return ""
    index = np.unravel_index(k, array_shape)
    return "at " + ", ".join(f"{axis}={int(v)}" for axis, v in zip("ij", index)) + ", "


def _approx(v) -> str:
    v = abs(Fraction(v))
    return f"about 2**{v.numerator.bit_length() - v.denominator.bit_length()}"
