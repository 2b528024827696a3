"""Golden tests of NumbaPrinter, in the style of SymPy's test_pycode: one expression and the
Numba-friendly Python it prints, per line. Most print untyped (`typed=False`) to read plainly;
kernels print typed, where each number is `_F(...)`, the kernel's float type."""

import math

import pytest
import sympy
from sympy import E, Float, Integer, Rational, exp, log, sign, sqrt, tanh

from cellspec.codegen.cpu.printer import NumbaPrinter, print_expr
from cellspec import fastmath
from cellspec.ops import KERNEL_FUNCTION, absolute, maximum, minimum, relu, sigmoid, softplus, step

x, y = (sympy.Symbol(n, real=True) for n in ("x", "y"))


def pr(expr):
    return NumbaPrinter(typed=False).doprint(expr)


def helpers(*exprs):
    printer = NumbaPrinter()
    for e in exprs:
        printer.doprint(e)
    return printer.functions


def test_typed_numbers_keep_the_kernel_float_type():
    printer = NumbaPrinter()
    assert printer.doprint(1 - x**2) == "_F(1.0) - x**2"
    assert printer.doprint(x / 2) == "(_F(0.5))*x"
    assert printer.doprint(1 / x) == "_F(1.0)/x"
    assert printer.doprint(1 / sqrt(x)) == "_F(1.0)/math.sqrt(x)"
    assert printer.doprint(sympy.Piecewise((x, x > 0), (0, True))) == "((x) if (x > _F(0.0)) else (_F(0.0)))"


def test_cell_ops():
    assert pr(sigmoid(x)) == "sigmoid(x)"
    assert pr(tanh(x)) == "tanh(x)"
    assert pr(exp(x)) == "exp(x)"
    assert pr(log(x)) == "log(x)"
    assert pr(absolute(x)) == "abs(x)"
    assert pr(relu(x)) == "relu(x)"
    assert pr(softplus(x)) == "softplus(x)"
    assert pr(sqrt(x)) == "math.sqrt(x)"
    assert pr(maximum(x, y)) == "maximum(x, y)"
    assert pr(minimum(x, y)) == "minimum(x, y)"
    assert pr(maximum(x, 0)) == "maximum(x, 0.0)"
    assert pr(minimum(x, 1)) == "minimum(x, 1.0)"


def test_derived_functions():
    assert pr(step(x)) == "step(x)"
    assert pr(sign(x)) == "sign(x)"


def test_nested_calls():
    assert pr(relu(sigmoid(x))) == "relu(sigmoid(x))"
    assert pr(tanh(x + y)) == "tanh(x + y)"
    assert pr(exp(-x)) == "exp(-x)"
    assert pr(exp(2 * x)) == "exp(2.0*x)"
    assert pr(log(1 + x)) == "log(x + 1.0)"
    assert pr(1 / (1 + exp(-x))) == "1.0/(1.0 + exp(-x))"
    assert pr(sigmoid(x) * (1 - sigmoid(x))) == "(1.0 - sigmoid(x))*sigmoid(x)"
    assert pr(maximum(sigmoid(x), tanh(y))) == "maximum(sigmoid(x), tanh(y))"


def test_integer_powers_stay_powers():
    # Numba lowers a constant integer exponent to multiplications
    assert pr(x**2) == "x**2"
    assert pr(x**3) == "x**3"
    assert pr((x + y) ** 2) == "(x + y)**2"
    assert pr(tanh(x) ** 2) == "tanh(x)**2"
    assert pr(x**2 * y**2) == "x**2*y**2"
    assert pr(-(x**2)) == "-x**2"
    assert pr(x**64) == "x**64"


def test_powers_in_denominators_keep_their_meaning():
    # the printed code must evaluate to the expression: y/x*x would be (y/x)*x
    assert pr(y / x**2) == "y/x**2"
    assert pr(-1 / x**2) == "-1.0/x**2"
    assert pr(y / (x + 1) ** 2) == "y/(x + 1.0)**2"
    assert pr(x**2 / y**3) == "x**2/y**3"
    assert pr(x**-2) == "1.0/x**2"


def test_negative_powers():
    assert pr(x**-1) == "1.0/x"
    assert pr(1 / (x + y)) == "1.0/(x + y)"
    assert pr(1 / (x - 1)) == "1.0/(x - 1.0)"
    assert pr(1 / sigmoid(x)) == "1.0/sigmoid(x)"
    assert pr(-1 / x) == "-1.0/x"
    assert pr(y / x) == "y/x"
    assert pr(2 / x) == "2.0/x"
    assert pr(x - 1 / y) == "x - 1.0/y"


def test_roots_and_other_powers():
    assert pr(sqrt(x)) == "math.sqrt(x)"
    assert pr(x ** Rational(1, 2)) == "math.sqrt(x)"
    assert pr(1 / sqrt(x)) == "1.0/math.sqrt(x)"
    assert pr(1 / sqrt(x + y**2)) == "1.0/math.sqrt(x + y**2)"
    assert pr(sqrt(x * y)) == "math.sqrt(x*y)"
    assert pr(y / sqrt(x)) == "y/math.sqrt(x)"
    assert pr(sqrt(2)) == "math.sqrt(2.0)"
    assert pr(x ** Rational(3, 2)) == "x**(1.5)"
    assert pr(x**y) == "x**y"


def test_numbers_are_float_literals():
    assert pr(Integer(3)) == "3.0"
    assert pr(Integer(-2)) == "-2.0"
    assert pr(Integer(10) ** 30) == "1000000000000000000000000000000.0"
    assert pr(sympy.S.One) == "1.0"
    assert pr(sympy.S.NegativeOne) == "-1.0"
    assert pr(sympy.S.Zero) == "0.0"
    assert pr(sympy.S.Half) == "0.5"
    assert pr(Rational(1, 10)) == "0.1"
    assert pr(Rational(1, 3)) == "0.3333333333333333"
    assert pr(Rational(-3, 2)) == "-1.5"
    assert pr(Rational(1, 10**40)) == "1e-40"
    assert pr(Float(0.25)) == "0.25"
    assert pr(2 * x) == "2.0*x"
    assert pr(x + 1) == "x + 1.0"
    assert pr(x / 10) == "(0.1)*x"
    assert pr(-x / 2) == "-0.5*x"
    assert pr(x / (2 * y)) == "(0.5)*x/y"


def test_symbols_and_constants():
    assert pr(x) == "x"
    assert pr(-x) == "-x"
    assert pr(x - y) == "x - y"
    assert pr(E) == "math.e"
    assert pr(E * x) == "math.e*x"
    assert pr(sympy.pi) == "math.pi"


def test_print_expr():
    assert print_expr(sigmoid(x) + x**2) == "x**2 + sigmoid(x)"
    printer = NumbaPrinter()
    assert print_expr(relu(x), printer) == "relu(x)"
    assert printer.functions == {"relu"}


def test_helpers_recorded():
    assert helpers(sigmoid(x)) == {"sigmoid"}
    assert helpers(relu(x)) == {"relu"}
    assert helpers(softplus(x)) == {"softplus"}
    assert helpers(maximum(x, y)) == {"maximum"}
    assert helpers(minimum(x, y)) == {"minimum"}
    assert helpers(step(x)) == {"step"}
    assert helpers(sign(x)) == {"sign"}
    assert helpers(relu(sigmoid(x))) == {"relu", "sigmoid"}
    assert helpers(sigmoid(x) * (1 - sigmoid(x))) == {"sigmoid"}
    assert helpers(sigmoid(x), maximum(x, y), softplus(y)) == {"sigmoid", "maximum", "softplus"}


def test_math_functions_are_the_fastmath_ones():
    assert helpers(tanh(x)) == {"tanh"}
    assert helpers(exp(x), log(x), sqrt(x)) == {"exp", "log"}
    assert helpers(absolute(x)) == set()
    assert helpers(x**2 + 1 / x, Rational(1, 3) * y) == set()


def test_every_kernel_function_exists():
    # every function the printer can call is one cellspec.fastmath defines
    for name in set(KERNEL_FUNCTION.values()):
        assert callable(getattr(fastmath, name))


def test_fresh_printer_has_no_functions():
    printer = NumbaPrinter()
    assert printer.functions == set()
    printer.doprint(x + y)
    assert printer.functions == set()


_ENV = {
    "math": math,
    "tanh": math.tanh,
    "exp": math.exp,
    "log": math.log,
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "relu": lambda v: max(v, 0.0),
    "softplus": lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v))),
    "maximum": lambda a, b: a if a >= b else b,
    "minimum": lambda a, b: a if a <= b else b,
}


@pytest.mark.parametrize(
    "expr",
    [
        x**2 + y**3,
        1 / (x * y),
        (x - y) ** -3,
        -((x + y) ** 2),
        y / sqrt(x),
        1 / sqrt(x + y**2),
        x ** Rational(3, 2),
        (1 - y) * tanh(x) + y * x,
        Rational(1, 10) * x - Rational(2, 3) * y,
        exp(-x) * log(y),
        1 / (1 + exp(-x)),
    ],
)
def test_printed_code_computes_the_expression(expr):
    values = {x: 0.7, y: 1.3}
    got = eval(pr(expr), dict(_ENV), {"x": 0.7, "y": 1.3})
    want = float(expr.subs(values))
    assert got == pytest.approx(want, rel=1e-12)


def test_printed_ops_compute_the_ops():
    values = {"x": 0.7, "y": -1.3}
    assert eval(pr(sigmoid(x)), dict(_ENV), values) == pytest.approx(1 / (1 + math.exp(-0.7)))
    assert eval(pr(softplus(y)), dict(_ENV), values) == pytest.approx(math.log(1 + math.exp(-1.3)))
    assert eval(pr(relu(y) + maximum(x, y) + minimum(x, y)), dict(_ENV), values) == pytest.approx(0.7 - 1.3)
