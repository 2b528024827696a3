import math
"""Golden tests of the equation and init parsers (cellspec.parse), in the style of SymPy's
test_pycode: one accepted expression and the SymPy it gives, or one refused expression and the
message and column of its SpecError, per line."""

import time

import pytest
import sympy
from sympy import Float, Integer, Rational, exp, log, sqrt, tanh

from cellspec.errors import Location, SpecError
from cellspec.ops import absolute, maximum, minimum, relu, sigmoid, softplus
from cellspec.parse import MAX_DEPTH, MAX_EXPR_CHARS, parse_equation
from cellspec.parse_sizes import parse_init
from cellspec.spec import Text

x, y, h, b = (sympy.Symbol(n, real=True) for n in ("x", "y", "h", "b"))
SYMBOLS = {"x": x, "y": y, "h": h, "b": b}
MATRICES = {"W", "U"}

hidden = sympy.Symbol("hidden", positive=True, integer=True)
inp = sympy.Symbol("input", positive=True, integer=True)
DIMS = {"hidden": hidden, "input": inp}

# Where the text starts in an imaginary spec file: errors are checked relative to it.
PATH, LINE, COL = "cell.yaml", 7, 11

KNOWN = "abs, exp, log, max, min, relu, sigmoid, softplus, sqrt, tanh, where"
INITS = "zeros, ones, constant, uniform, normal, orthogonal"


def text(src):
    where = Location(PATH, LINE, COL)
    return Text(src, where, where)


class Products:
    """An on_product callback: records (weight, operand) and the locations it was given, and
    stands for each product with a fresh symbol p1, p2, ..."""

    def __init__(self):
        self.calls = []
        self.wheres = []

    def __call__(self, weight, weight_where, operand, operand_where):
        self.calls.append((weight, operand))
        self.wheres.append((weight_where, operand_where))
        return p(len(self.calls))


def p(i):
    return sympy.Symbol(f"p{i}", real=True)


def parse(src, products=None):
    return parse_equation(text(src), "e", SYMBOLS, MATRICES, products if products is not None else Products())


def products(src):
    """The expression and the recorded (weight, operand) pairs."""
    rec = Products()
    return parse(src, rec), rec.calls


def col(where):
    """A location on the text's first line, as a 1-based column inside the text."""
    assert where.path == PATH and where.line == LINE, where
    return where.col - COL + 1


def _refused(fn, src):
    with pytest.raises(SpecError) as info:
        fn(src)
    e = info.value
    assert isinstance(e.where, Location)
    assert str(e) == f"{e.where!r}: error: {e.message}"
    return col(e.where), e.message


def error(src):
    """(column inside the expression, message) of the SpecError that refuses `src`."""
    return _refused(parse, src)


def init(src):
    return parse_init(text(src), "W", DIMS)


def init_error(src):
    return _refused(init, src)


# --- accepted equations --------------------------------------------------------------------


def test_names_and_arithmetic():
    assert parse("x") == x
    assert parse("x + y") == x + y
    assert parse("x - y") == x - y
    assert parse("x*y") == x * y
    assert parse("x/y") == x / y
    assert parse("-x") == -x
    assert parse("+x") == x
    assert parse("x - -y") == x + y
    assert parse("(x + y)*h") == (x + y) * h
    assert parse("(1 - y)*x + y*h") == (1 - y) * x + y * h
    assert parse("x - 2*y/3") == x - Rational(2, 3) * y
    assert parse("1/x") == 1 / x


def test_whitespace_and_comments():
    assert parse("x ") == x
    assert parse("x\t") == x
    assert parse("x  +   y") == x + y
    assert parse("x # a comment") == x
    assert parse("tanh(x\n  + y)") == tanh(x + y)


def test_numbers_are_exact():
    assert parse("0.1*x") == Rational(1, 10) * x
    assert parse("x + 0.1 + 0.2") == x + Rational(3, 10)
    assert parse("1.5*x") == Rational(3, 2) * x
    assert parse("1e-3*x") == Rational(1, 1000) * x
    assert parse("1.5e-5*x") == Rational(3, 200000) * x
    assert parse("2.0*x") == 2 * x
    assert parse("x*1e30") == Integer(10) ** 30 * x
    assert parse("1_000*x") == 1000 * x
    assert parse("0x10*x") == 16 * x
    assert parse("2**3*x") == 8 * x
    assert parse("x*(2**64)") == Integer(2) ** 64 * x
    assert isinstance(parse("0.1*x").coeff(x), Rational)


def test_powers():
    assert parse("x**2") == x**2
    assert parse("x**-1") == 1 / x
    assert parse("x**(-2)") == x**-2
    assert parse("x**0.5") == sqrt(x)
    assert parse("x**(1/2)") == sqrt(x)
    assert parse("x**2.5") == x ** Rational(5, 2)
    assert parse("x**2**2**2") == x**16
    assert parse("x**64") == x**64
    assert parse("x**-64") == x**-64
    assert parse("sqrt(x)**3") == x ** Rational(3, 2)


def test_ops():
    assert parse("sigmoid(x)") == sigmoid(x)
    assert parse("tanh(x)") == tanh(x)
    assert parse("relu(x)") == relu(x)
    assert parse("exp(x)") == exp(x)
    assert parse("log(x)") == log(x)
    assert parse("softplus(x)") == softplus(x)
    assert parse("abs(x)") == absolute(x)
    assert parse("sqrt(x)") == sqrt(x)
    assert parse("max(x, y)") == maximum(x, y)
    assert parse("min(x, 0)") == minimum(x, 0)
    assert parse("sigmoid(x,)") == sigmoid(x)
    assert parse("sigmoid(x)*(1 - sigmoid(x))") == sigmoid(x) * (1 - sigmoid(x))
    assert parse("y*tanh(h)") == y * tanh(h)


def test_ops_are_the_cellspec_classes():
    assert type(parse("sigmoid(x)")) is sigmoid
    assert type(parse("softplus(x)")) is softplus
    assert type(parse("relu(x)")) is relu
    assert type(parse("max(x, y)")) is maximum
    assert type(parse("min(x, y)")) is minimum
    # sigmoid is a function of its own, never rewritten into exp
    assert not parse("sigmoid(x)").has(exp)


def test_constant_ops_that_evaluate():
    assert parse("sigmoid(0)*x") == x / 2
    assert parse("sigmoid(-0.0)*x") == x / 2
    # constants are evaluated as they are parsed, in floating point unless exact
    assert parse("tanh(1)*x") == Float(math.tanh(1)) * x
    assert parse("abs(-2)*x") == 2 * x
    assert parse("log(2)*x") == Float(math.log(2)) * x
    assert parse("sqrt(4)*x") == 2 * x
    assert parse("sqrt(2)*x") == Float(math.sqrt(2)) * x
    assert parse("exp(-1)*x") == Float(math.exp(-1)) * x
    assert parse("sigmoid(1)*x") == Float(1 / (1 + math.exp(-1))) * x
    assert parse("softplus(1)*x") == Float(math.log1p(math.e)) * x
    assert parse("relu(-1)*x") == 0
    assert parse("max(1, 2)*x") == 2 * x
    assert parse("min(0, 1)*x") == 0


def test_products():
    assert products("W @ x") == (p(1), [("W", x)])
    assert products("W@x") == (p(1), [("W", x)])
    assert products("W @ x + U @ h + b") == (p(1) + p(2) + b, [("W", x), ("U", h)])
    assert products("U @ (y*h)") == (p(1), [("U", y * h)])
    assert products("W @ (U @ h)") == (p(2), [("U", h), ("W", p(1))])
    assert products("W@-x") == (p(1), [("W", -x)])
    assert products("W @ x * 2") == (2 * p(1), [("W", x)])
    assert products("tanh(W @ x + b)") == (tanh(p(1) + b), [("W", x)])
    assert products("sigmoid(W @ x) * (U @ h)") == (sigmoid(p(1)) * p(2), [("W", x), ("U", h)])
    assert products("x") == (x, [])


def test_product_locations():
    rec = Products()
    parse("h + U @ (y*h)", rec)
    (weight_where, operand_where), = rec.wheres
    assert (col(weight_where), col(operand_where)) == (5, 10)
    rec = Products()
    parse("W @ x + U @ h", rec)
    assert [(col(w), col(o)) for w, o in rec.wheres] == [(1, 5), (9, 13)]


# --- refused equations ---------------------------------------------------------------------


def test_refused_calls():
    assert error("__import__('os')") == (1, f"unknown function '__import__'; known: {KNOWN}")
    assert error("foo(x)") == (1, f"unknown function 'foo'; known: {KNOWN}")
    assert error("h + eval('1')") == (5, f"unknown function 'eval'; known: {KNOWN}")
    assert error("sum(x)") == (1, f"unknown function 'sum'; known: {KNOWN}")
    assert error("sigmoid(x=1)") == (11, "keyword arguments are not allowed in equation 'e'")
    assert error("max(x, y=1)") == (10, "keyword arguments are not allowed in equation 'e'")
    assert error("tanh(*x)") == (6, "starred arguments are not allowed in equation 'e'")
    assert error("max(x, *y)") == (8, "starred arguments are not allowed in equation 'e'")
    assert error("tanh(x, y)") == (1, "tanh() takes 1 argument, got 2")
    assert error("sigmoid()") == (1, "sigmoid() takes 1 argument, got 0")
    assert error("max(x)") == (1, "max() takes 2 arguments, got 1")
    assert error("min(x, y, h)") == (1, "min() takes 2 arguments, got 3")
    assert error("x * sigmoid") == (5, "function 'sigmoid' must be called")
    assert error("f(x)(y)") == (1, "only named functions can be called in equation 'e'")
    assert error("x.y(h)") == (1, "only named functions can be called in equation 'e'")


def test_refused_attribute_access():
    # the column is exact; the message's grammar is checked loosely (see the report)
    c, message = error("x.real")
    assert (c, message) == (1, "attributes are not allowed in equation 'e'")
    c, message = error("h + x.__class__")
    assert (c, message) == (5, "attributes are not allowed in equation 'e'")


def test_refused_syntax_kinds():
    assert error("x[0]") == (1, "subscripts are not allowed in equation 'e'")
    assert error("h + x[1:2]") == (5, "subscripts are not allowed in equation 'e'")
    assert error("lambda: x") == (1, "lambdas are not allowed in equation 'e'")
    assert error("[x for x in y]") == (1, "comprehensions are not allowed in equation 'e'")
    assert error("(x for x in y)") == (1, "comprehensions are not allowed in equation 'e'")
    assert error("{x for x in y}") == (1, "comprehensions are not allowed in equation 'e'")
    assert error("{x: y for x in y}") == (1, "comprehensions are not allowed in equation 'e'")
    assert error("x < y") == (1, "comparisons are allowed only in a condition, the first argument of where(), in equation 'e'")
    assert error("x == y") == (1, "comparisons are allowed only in a condition, the first argument of where(), in equation 'e'")
    assert error("x is y") == (1, "comparisons are allowed only in a condition, the first argument of where(), in equation 'e'")
    assert error("h + (x in y)") == (6, "comparisons are allowed only in a condition, the first argument of where(), in equation 'e'")
    assert error("x and y") == (1, "'and' and 'or' are not allowed in equation 'e'")
    assert error("x or y") == (1, "'and' and 'or' are not allowed in equation 'e'")
    assert error("not x") == (1, "'not' is not allowed in equation 'e'")
    assert error("~x") == (1, "'~' is not allowed in equation 'e'")
    assert error("x if y else h") == (1, "'if' expressions are not allowed in equation 'e'")
    assert error("[x]") == (1, "lists are not allowed in equation 'e'")
    assert error("(x, y)") == (1, "tuples are not allowed in equation 'e'")
    assert error("{x}") == (1, "sets are not allowed in equation 'e'")
    assert error("{1: 2}") == (1, "dicts are not allowed in equation 'e'")
    assert error("(x := 1)") == (2, "assignment expressions are not allowed in equation 'e'")
    assert error("f'{x}'") == (1, "f-strings are not allowed in equation 'e'")
    assert error("await x") == (1, "'await' expressions are not allowed in equation 'e'")
    assert error("x // y") == (1, "operator '//' is not allowed in equation 'e'")
    assert parse("x % y") == sympy.Mod(x, y)
    assert error("h + (x << 1)") == (6, "operator '<<' is not allowed in equation 'e'")


def test_refused_constants():
    assert error("'s'") == (1, "string constants are not allowed in equation 'e'; only numbers")
    assert error("x * 'os'") == (5, "string constants are not allowed in equation 'e'; only numbers")
    assert error("b'x'") == (1, "string constants are not allowed in equation 'e'; only numbers")
    assert error("True") == (1, "boolean constants are not allowed in equation 'e'; only numbers")
    assert error("1j*x") == (1, "complex constants are not allowed in equation 'e'; only numbers")
    assert error("...") == (1, "ellipsis constants are not allowed in equation 'e'; only numbers")
    assert error("None") == (1, "None constants are not allowed in equation 'e'; only numbers")
    assert error("1e999*x") == (1, "constant inf is too large")


def test_refused_names():
    assert error("z") == (1, "unknown name 'z'")
    assert error("x * zz") == (5, "unknown name 'zz'")
    assert error("pi*x") == (1, "unknown name 'pi'")
    assert error("np") == (1, "unknown name 'np'")
    assert error("tanh(x + hidden)") == (10, "unknown name 'hidden'")


def test_refused_matrix_use():
    assert error("W") == (1, "matrix 'W' can only be the left operand of '@'")
    assert error("x + W") == (5, "matrix 'W' can only be the left operand of '@'")
    assert error("sigmoid(W)") == (9, "matrix 'W' can only be the left operand of '@'")
    assert error("W @ W") == (5, "matrix 'W' can only be the left operand of '@'")
    assert error("W @ (x + U)") == (10, "matrix 'U' can only be the left operand of '@'")
    assert error("x @ W") == (1, "the left operand of '@' must be a matrix param, not 'x'")
    assert error("h + x @ x") == (5, "the left operand of '@' must be a matrix param, not 'x'")
    assert error("(W + x) @ x") == (2, "the left operand of '@' must be a matrix param, not an expression")
    assert error("2*W @ x") == (1, "the left operand of '@' must be a matrix param, not an expression")
    assert error("W @ x @ x") == (1, "the left operand of '@' must be a matrix param, not an expression")
    assert error("W @ 1") == (5, "the right operand of '@' must be a vector, not a number")
    assert error("W @ (x - x)") == (6, "the right operand of '@' must be a vector, not a number")


def test_refused_non_ascii():
    assert error("tanh(\u0445)") == (6, "non-ASCII character '\u0445' in equation 'e'; names are ASCII identifiers")  # Cyrillic ha
    assert error("\u0445 + y") == (1, "non-ASCII character '\u0445' in equation 'e'; names are ASCII identifiers")
    assert error("\uff58 + y") == (1, "non-ASCII character '\uff58' in equation 'e'; names are ASCII identifiers")  # fullwidth x
    assert error("x + \uff42") == (5, "non-ASCII character '\uff42' in equation 'e'; names are ASCII identifiers")  # fullwidth b
    assert error("x + y\u200b") == (6, "non-ASCII character '\\u200b' in equation 'e'; names are ASCII identifiers")  # zero width space
    assert error("\u03b1*x") == (1, "non-ASCII character '\u03b1' in equation 'e'; names are ASCII identifiers")  # Greek alpha
    assert error("x \u2212 y") == (3, "non-ASCII character '\u2212' in equation 'e'; names are ASCII identifiers")  # minus sign


def test_refused_syntax_errors():
    assert error("(x") == (1, "invalid syntax in equation 'e': '(' is never closed")
    assert error("tanh(x + y") == (5, "invalid syntax in equation 'e': '(' is never closed")
    assert error("x)") == (2, "invalid syntax in equation 'e': unmatched ')'")
    assert error("tanh(x) x") == (9, "invalid syntax in equation 'e': invalid syntax")
    assert error("x = 1") == (3, "invalid syntax in equation 'e': invalid syntax")
    assert error("import os")[1] == "invalid syntax in equation 'e': invalid syntax"
    assert error("x;y")[1] == "invalid syntax in equation 'e': invalid syntax"
    assert error("x +")[1] == "invalid syntax in equation 'e': invalid syntax"


def test_refused_empty():
    assert error("") == (1, "equation 'e' is empty")
    assert error("   ") == (1, "equation 'e' is empty")


def test_refused_exponents():
    assert error("x**y") == (4, "the exponent of ** must be a number")
    assert error("x**x**2") == (4, "the exponent of ** must be a number")
    assert error("x**65") == (4, "the exponent of ** must be at most 64 in size")
    assert error("x**-65") == (4, "the exponent of ** must be at most 64 in size")
    assert error("2**100") == (4, "the exponent of ** must be at most 64 in size")
    assert error("x ** (2**100)") == (10, "the exponent of ** must be at most 64 in size")
    assert error("x ** (2**60)") == (7, "the exponent of ** must be at most 64 in size")
    assert error("x**1e100") == (4, "constant 1e+100 is too large")


def test_huge_exponent_refused_quickly():
    start = time.perf_counter()
    assert error("9**9**9") == (4, "the exponent of ** must be at most 64 in size")
    assert error("x * 9**9**9**9") == (11, "the exponent of ** must be at most 64 in size")
    assert error("2**2**2**2**2**2") == (7, "the exponent of ** must be at most 64 in size")
    assert time.perf_counter() - start < 2


def test_refused_division_by_zero():
    assert error("x/0") == (1, "division by zero")
    assert error("x/0.0") == (1, "division by zero")
    assert error("x/(1 - 1)") == (1, "division by zero")
    assert error("h + x/(y - y)") == (5, "division by zero")
    assert error("0**-1") == (1, "division by zero")
    assert error("x**(1/0)") == (5, "division by zero")


def test_refused_constant_values():
    assert error("1e40*x") == (1, "constant 1e+40 is too large")
    assert error("x + 1e31") == (5, "constant 1e+31 is too large")
    assert error("x*123456789012345678901234567890123") == (3, "constant 123456789012345678901234567890123 is too large")
    assert error("x*(10**31)") == (4, "constant is too large (at most 1e+30 in size)")
    assert error("1e30*1e30*x") == (1, "constant is too large (at most 1e+30 in size)")
    assert error("x*(1e30 + 1e30)") == (4, "constant is too large (at most 1e+30 in size)")
    assert error("log(0)*x") == (1, "log() of this constant is not a finite real number")
    assert error("sqrt(-1)*x") == (1, "sqrt() of this constant is not a finite real number")
    assert error("(-8)**(1/3)*x") == (1, "this constant is not a finite real number")
    assert error("x*(-1)**0.5") == (3, "this constant is not a finite real number")
    # nested constants are bounded as they are built: no overflow, no long computation
    start = time.perf_counter()
    assert error("exp(exp(exp(exp(100))))*x") == (13, "constant is too large (at most 1e+30 in size)")
    assert error("exp(exp(exp(100)))+1+x") == (9, "constant is too large (at most 1e+30 in size)")
    assert error("exp(1000)*x") == (1, "exp() of this constant is not a finite real number")
    assert error("x*1e30*10") == (1, "constant is too large (at most 1e+30 in size)")
    assert error("(x*1e30)*1e30") == (1, "constant is too large (at most 1e+30 in size)")
    assert error("(1e20)**2*x") == (1, "constant is too large (at most 1e+30 in size)")
    assert time.perf_counter() - start < 2


def test_deep_nesting_is_a_spec_error():
    # 10,000 deep: too long before it is even parsed
    assert error("(" * 10_000 + "x" + ")" * 10_000) == (1, f"equation 'e' is longer than {MAX_EXPR_CHARS} characters")
    assert error("tanh(" * 10_000 + "x" + ")" * 10_000) == (1, f"equation 'e' is longer than {MAX_EXPR_CHARS} characters")
    # deep, but short enough to reach Python's parser or the whitelist walk
    assert error("-" * 9_999 + "x") == (1, "equation 'e' is nested more than 200 deep (a chain of + or * counts too): split it into several equations")
    assert error("(" * 4_000 + "x" + ")" * 4_000) == (201, "invalid syntax in equation 'e': too many nested parentheses")
    assert error("abs(" * 1_999 + "x" + ")" * 1_999)[1] == "invalid syntax in equation 'e': too many nested parentheses"
    assert error("-" * 300 + "x") == (MAX_DEPTH + 2, f"equation 'e' is nested more than {MAX_DEPTH} deep (a chain of + or * counts too): split it into several equations")
    assert parse("-" * 150 + "x") == x
    assert parse("(" * 150 + "x" + ")" * 150) == x


def test_megabyte_expression_refused_quickly():
    start = time.perf_counter()
    assert error("x+" * 500_000 + "x") == (1, f"equation 'e' is longer than {MAX_EXPR_CHARS} characters")
    assert error("x" * (1 << 20)) == (1, f"equation 'e' is longer than {MAX_EXPR_CHARS} characters")
    assert time.perf_counter() - start < 2
    assert parse("+".join(["x"] * 100)) == 100 * x


def test_error_location_in_the_file():
    with pytest.raises(SpecError) as info:
        parse("tanh(W @ x + zz)")
    assert str(info.value) == f"{PATH}:{LINE}:{COL + 13}: error: unknown name 'zz'"
    # a text on several lines: the error is on the text's second line
    with pytest.raises(SpecError) as info:
        parse("tanh(x\n + zz)")
    assert (info.value.where.line, info.value.where.col) == (LINE + 1, 4)
    assert info.value.message == "unknown name 'zz'"


def test_names_come_only_from_the_caller():
    # a name the caller does not pass is unknown, even one of SymPy's or Python's
    for name in ("E", "I", "oo", "pi", "Symbol", "os", "builtins"):
        assert error(name) == (1, f"unknown name {name!r}")
    assert parse_equation(text("q*2"), "e", {"q": x}, set(), Products()) == 2 * x


# --- parse_init ----------------------------------------------------------------------------


def test_init_accepted():
    assert init("zeros") == ("zeros", ())
    assert init("ones") == ("ones", ())
    assert init("orthogonal") == ("orthogonal", ())
    assert init(" zeros ") == ("zeros", ())
    assert init("zeros()") == ("zeros", ())
    assert init("orthogonal()") == ("orthogonal", ())
    assert init("orthogonal(2)") == ("orthogonal", (Integer(2),))
    assert init("orthogonal(sqrt(2))") == ("orthogonal", (sqrt(2),))
    assert init("uniform(1/sqrt(hidden))") == ("uniform", (1 / sqrt(hidden),))
    assert init("uniform(1/sqrt(hidden*input))") == ("uniform", (1 / sqrt(hidden * inp),))
    assert init("uniform(-0.1, 0.1)") == ("uniform", (Rational(-1, 10), Rational(1, 10)))
    assert init("uniform(1/hidden)") == ("uniform", (1 / hidden,))
    assert init("normal(0.01)") == ("normal", (Rational(1, 100),))
    assert init("normal(sqrt(2/input))") == ("normal", (sqrt(2) / sqrt(inp),))
    assert init("constant(2)") == ("constant", (Integer(2),))
    assert init("constant(-1.5)") == ("constant", (Rational(-3, 2),))
    assert init("(uniform(1))") == ("uniform", (Integer(1),))


def test_init_refused():
    assert init_error("constant") == (1, "init 'constant' needs 1 argument")
    assert init_error("uniform") == (1, "init 'uniform' needs 1 argument")
    assert init_error("normal") == (1, "init 'normal' needs 1 argument")
    assert init_error("glorot") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("glorot(1)") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("1") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("hidden") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("sqrt(hidden)") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("uniform(1) + 1") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("-uniform(1)") == (1, f"the init of param 'W' must be one of {INITS}")
    assert init_error("uniform()") == (1, "init uniform() takes 1 or 2 arguments, got 0")
    assert init_error("uniform(1, 2, 3)") == (1, "init uniform() takes 1 or 2 arguments, got 3")
    assert init_error("constant(1, 2)") == (1, "init constant() takes 1 argument, got 2")
    assert init_error("normal()") == (1, "init normal() takes 1 argument, got 0")
    assert init_error("uniform(x)") == (9, "unknown name 'x' in the init of param 'W'; it may use the dims: hidden, input")
    assert init_error("uniform(W)") == (9, "unknown name 'W' in the init of param 'W'; it may use the dims: hidden, input")
    assert init_error("constant(nan)") == (10, "unknown name 'nan' in the init of param 'W'; it may use the dims: hidden, input")
    assert init_error("uniform(exp(1))") == (9, "function 'exp' is not allowed in the init of param 'W'; use numbers, dims and sqrt")
    assert init_error("uniform(uniform(1))") == (9, "function 'uniform' is not allowed in the init of param 'W'; use numbers, dims and sqrt")
    assert init_error("uniform('a')") == (9, "string constants are not allowed in the init of param 'W'; only numbers")
    assert init_error("uniform(k=1)") == (11, "keyword arguments are not allowed in the init of param 'W'")
    assert init_error("uniform(*a)") == (9, "starred arguments are not allowed in the init of param 'W'")
    assert init_error("uniform(hidden @ input)") == (9, "operator '@' is not allowed in the init of param 'W'")
    assert init_error("uniform(1/0)") == (9, "division by zero")
    assert init_error("uniform(1/sqrt(0))") == (9, "division by zero")
    assert init_error("uniform(1e40)") == (9, "constant 1e+40 is too large")
    assert init_error("uniform(2**hidden)") == (12, "the exponent of ** must be a number")
    assert init_error("uniform(\u0445)") == (9, "non-ASCII character '\u0445' in the init of param 'W'; names are ASCII identifiers")
    assert init_error("") == (1, "the init of param 'W' is empty")
    assert init_error("   ") == (1, "the init of param 'W' is empty")
    assert init_error("uniform(1") == (8, "invalid syntax in the init of param 'W': '(' is never closed")


def test_init_zero_arity_refused():
    c, message = init_error("zeros(1)")
    assert c == 1 and message.startswith("init zeros() takes 0 ") and message.endswith(", got 1")
