"""Specs that the compiler once built into modules that failed at their first call, built after
minutes or crashed with a traceback, each of them now built and run (forward, backward, the
finite-difference check) or refused with a located error.

Each compiled case costs a Numba compile of a small module, 2-4 s here."""

import time
from pathlib import Path

import pytest
import sympy

from cellspec.build import compile_spec
from cellspec.errors import SpecError
from cellspec.gradcheck import gradcheck
from cellspec.lower import build_ir
from cellspec.ops import absolute, unsupported
from cellspec.parse import MAX_DEPTH
from cellspec.spec import load_spec

# the rnn spec without its `torch:` section: the cells built here add params nn.RNN has not
RNN = (Path(__file__).resolve().parent.parent / "specs" / "rnn.yaml").read_text().split("torch:\n")[0]
EQUATION = "h_new: tanh(W @ x + U @ h + b)"


def spec(equation: str, step: bool = False, params: str = "", equations: str = "", constants: str = "") -> str:
    text = RNN.replace(EQUATION, f"h_new: '{equation}'")
    if step:
        text = text.replace("state: {h: hidden}\n", "state: {h: hidden}\nstep: t\n")
    if constants:
        text = text.replace("state: {h: hidden}\n", f"state: {{h: hidden}}\nconstants:\n{constants}")
    text = text.replace("  b: [hidden]\n", "  b: [hidden]\n" + params)
    return text.replace("equations:\n", "equations:\n" + equations)


def build_and_check(build_module, text: str):
    """Build the text, import its module, run the float64 gradient check at small sizes."""
    built, module = build_module(text)
    return built, gradcheck(module)


@pytest.mark.parametrize("equation, params", [
    ("tanh(W @ x + U @ (U @ h) + b)", ""),
    ("tanh(V @ (W @ x) + U @ h + b)", "  V: [hidden, hidden]\n"),
    ("tanh(W @ x + U @ (tanh(U @ h) + h) + b)", ""),
], ids=["state-product-of-a-product", "input-product-of-a-product", "product-inside-an-operand"])
def test_a_product_whose_operand_holds_a_product_runs(build_module, equation, params):
    # these built and then raised NameError: name '_G_h' is not defined in backward
    _, result = build_and_check(build_module, spec(equation, params=params))
    assert result.passed(1e-6), result.errors


@pytest.mark.parametrize("equation", [
    "tanh(W @ x + U @ h + b) / max(t, 1)",
    "tanh(W @ x + U @ h + b) * log(1 + t) + min(t, 2) * b",
])
def test_the_step_index_in_float_functions_runs(build_module, equation):
    # max(t, 1) met a Numba TypingError: maximum(int64, float64)
    _, result = build_and_check(build_module, spec(equation, step=True))
    assert result.passed(1e-6), result.errors


def test_abs_of_a_value_sympy_cannot_prove_real_differentiates_with_sign(build_module):
    # SymPy's Abs differentiated log(h) and where() through re() and im(), which crashed the printer
    built, result = build_and_check(build_module, spec("tanh(W @ x + U @ h + b) + 0.1*abs(where(h < b, tanh(h), b))"))
    assert result.passed(1e-6), result.errors
    partials = built.schedule.plan.partials.values()
    assert all(not e.has(sympy.re, sympy.im) for e in partials)
    assert any(e.has(sympy.sign) for e in partials)
    for equation in ("tanh(W @ x + U @ h + b) + abs(where(h < b, log(h), b))",):
        compile_spec("cell.yaml", spec(equation).encode())
    compile_spec("cell.yaml", spec("tanh(W @ x + U @ h + b) + abs(h / (2 % t))", step=True).encode())


def test_an_equation_that_cancels_leaves_no_dead_node(build_module):
    # `a` is written (so it counts as used) but cancels: it once left a kernel with no arrays
    text = spec("tanh(W @ x + U @ h + b) + a*0", equations="  a: c0*2\n", constants="  c0: {shape: [hidden], value: 'i'}\n")
    built, result = build_and_check(build_module, text)
    assert "a" not in built.cell.nodes
    assert result.passed(1e-6), result.errors


def located(text: str) -> SpecError:
    with pytest.raises(SpecError) as e:
        compile_spec("cell.yaml", text.encode())
    line = text.splitlines()[e.value.where.line - 1]
    assert e.value.where.path == "cell.yaml" and 1 <= e.value.where.col <= len(line)
    return e.value


def test_a_division_by_a_branch_that_is_zero_is_refused_where_written():
    # SymPy divides branch by branch: zoo, then `zoo >= 0.5` raised TypeError
    e = located(spec("tanh(W @ x + U @ h + b) + where(h / where(h > 0, b - b, b) >= 0.5, 1, b)"))
    assert e.message == "division by zero in a branch of this divisor"


def test_a_product_operand_inside_a_condition_keeps_the_rules_of_a_value():
    # the operand of U is differentiated though it sits in a condition: '%' of a state is refused
    e = located(spec("where(U @ (h % 3) > 0, tanh(W @ x + b), h)"))
    assert "'%' takes only the step" in e.message


def test_unsupported_names_what_no_kernel_computes():
    x = sympy.Symbol("x", real=True)
    assert unsupported(sympy.Piecewise((x, x > 0), (absolute(x) * sympy.sign(x), True))) is None
    assert unsupported(sympy.Derivative(sympy.Mod(x, 3), x)) == sympy.Derivative(sympy.Mod(x, 3), x)
    assert unsupported(x + sympy.zoo) == sympy.zoo
    assert unsupported(sympy.im(sympy.Symbol("z")) + 1) is not None


def nest(depth: int) -> str:
    e = "W @ x + U @ h + b"
    for k in range(depth):
        e = ("tanh({})", "sigmoid({})", "softplus({})", "abs({})")[k % 4].format(e)
    return e


# Not a benchmark: a bound far above the measured times (0.2-3 s here, whatever the depth), so
# that what fails is a hang or an exponential, which took 139 s at 12 levels and never finished
# at 13.
BUILD_BOUND_S = 30


@pytest.mark.parametrize("depth", [8, 13, 40, 100, 150, MAX_DEPTH - 10, MAX_DEPTH - 3, MAX_DEPTH, MAX_DEPTH + 10])
def test_nested_functions_build_quickly_or_are_refused_where_written(depth):
    # up to the parser's limit (the equation's own few levels count too) a nesting builds; past
    # it, the parser refuses it where the nesting passes the limit
    text = spec(nest(depth))
    start = time.perf_counter()
    try:
        built = compile_spec("cell.yaml", text.encode())
    except SpecError as e:
        # ours, or Python's own parser's limit of 200 nested parentheses
        assert depth >= MAX_DEPTH - 3 and "nested" in e.message and e.where.line == 12, e
    else:
        assert depth <= MAX_DEPTH
        # every node is small: the nesting was split into nodes of at most three calls
        assert len(built.cell.nodes) >= depth // 3
    assert time.perf_counter() - start < BUILD_BOUND_S
    if depth <= MAX_DEPTH - 10:
        assert "built" in locals()


@pytest.mark.parametrize("terms", [40, 190])
def test_wide_sums_and_products_build_quickly(terms):
    wide = " + ".join(f"tanh(h*{k}) * sigmoid(b*{k})" for k in range(1, terms // 2))
    long = " * ".join(f"tanh(h + {k})" for k in range(1, terms))
    for e in (wide, long):
        start = time.perf_counter()
        compile_spec("cell.yaml", spec(f"tanh(W @ x + U @ h + b) + 0.01*({e})").encode())
        assert time.perf_counter() - start < BUILD_BOUND_S


def test_deep_nesting_runs_and_checks(build_module):
    # tanh alone: through 40 levels that mix in sigmoid the gradient is ~1e-12, below what
    # finite differences resolve
    e = "W @ x + U @ h + b"
    for _ in range(40):
        e = f"tanh({e})"
    _, result = build_and_check(build_module, spec(e))
    assert result.passed(1e-6), result.errors


def test_the_catalog_nests_too_little_to_split():
    # splitting changes what the tape keeps: the catalog's cells must keep theirs
    for path in sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml")):
        cell = build_ir(load_spec(str(path)))
        assert not [n for n, node in cell.nodes.items() if getattr(node, "made_for", "") == "split"], path.name


def test_a_where_inside_a_where_condition_runs(build_module):
    # SymPy folds a comparison with a where() into ITE conditions, which its Python printer
    # rewrote into a Piecewise of conditions it cannot build (TypeError: expecting bool)
    equation = "where(b > where(h > b, where(where(h > 0.1, b, h) > 0, h, b), h), h, b) + tanh(W @ x + U @ h + b)"
    built, result = build_and_check(build_module, spec(equation))
    assert any(e.has(sympy.ITE) for n in built.cell.nodes.values() for e in [getattr(n, "expr", sympy.S.Zero)])
    assert result.passed(1e-6), result.errors


def test_a_product_read_only_in_a_condition_gives_its_weight_no_nan(build_module):
    # log(k) is NaN at odd units (k = -1); U @ (log(k) % 3) sits only in a where() condition, so
    # it carries no gradient: its block of dU was 0 @ NaN = NaN, though dU is finite
    text = spec("tanh(W @ x + U @ h + b) * where(U @ (log(k) % 3) > 0, tanh(log(k)), h)",
                constants="  k: {shape: [hidden], value: '(-1)**i'}\n")
    built, result = build_and_check(build_module, text)
    assert result.passed(1e-6), (result.errors, result.nonfinite)


def test_a_deep_part_of_only_the_step_stays_inline():
    # Mod counts as a call: max(where((2 % t) % 2 > 1, 1, 2), h) once split off a node of no
    # dim (KeyError: None); a node must be a vector
    built = compile_spec("cell.yaml", spec("tanh(W @ x + U @ h + b) * max(where((2 % t) % 2 > 1, 1, 2), h)", step=True).encode())
    assert all(n.dim == "hidden" for n in built.cell.nodes.values())
