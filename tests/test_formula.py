"""Constants, masks and init arguments: compiled into formula trees (codegen/printer.py) and
evaluated exactly at the cell's sizes (cellspec/formula.py), or refused with an error naming the
cell, the constant or param, and the sizes. SymPy, evaluating the parsed formula in exact
rationals, is the oracle."""

import math
import textwrap
import time

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from cellspec import formula
from cellspec.codegen.cpu.printer import formula_tree
from cellspec.errors import Location
from cellspec.parse_sizes import parse_index_formula
from cellspec.yamltext import Text

from conftest import SPEC_NAMES, generated

SPEC = """
    name: NAME
    summary: a cell whose constant, mask and inits are formulas
    cite: none, a test cell
    inputs: {x: input}
    state: {h: hidden}
    constants:
      scale: {shape: [hidden], value: "VALUE"}
    params:
      W: [hidden, input]
      U: {shape: [hidden, hidden], mask: "MASK", init: "INIT_U"}
      b: {shape: [hidden], init: "INIT_B"}
    equations:
      h_new: tanh(W @ x + U @ h + b) * scale
    update: {h: h_new}
    output: h_new
"""
DEFAULTS = {"VALUE": "1 + i % 2", "MASK": "i != j", "INIT_U": "uniform(0.1)", "INIT_B": "zeros"}


def build(build_module, name, **fields):
    """Compile the spec with some fields replaced and import it, from a folder of its own."""
    text = textwrap.dedent(SPEC).replace("NAME", name)
    for key, default in DEFAULTS.items():
        text = text.replace(key, fields.get(key.lower(), default))
    if "modules" in "".join(fields.values()):
        text = text.replace("inputs:", "dims: [modules]\ninputs:")
    return build_module(text, name)[1]


def cell(module, hidden, dtype="float64", modules=1):
    sizes = {"modules": modules} if "modules" in module.Cell.DIMS else {}
    return module.Cell(input=2, hidden=hidden, dtype=dtype, seed=0, **sizes)


# --- end to end ---------------------------------------------------------------------------------


def test_powers_of_the_index_are_exact_past_int64(build_module):
    scale = cell(build(build_module, "pow_i", value="2**i"), hidden=70).constants["scale"]
    assert scale.tolist() == [2.0**k for k in range(70)]
    assert np.all(scale > 0)


def test_a_mask_of_huge_powers_keeps_what_python_ints_keep(build_module):
    mask = cell(build(build_module, "pow_mask", mask="2**(i*hidden) >= j"), hidden=70).masks["U"]
    expected = sum(2 ** (i * 70) >= j for i in range(70) for j in range(70))
    assert expected == 4832
    assert mask.sum() == expected


def test_a_constant_undefined_at_one_size_is_refused_by_name(build_module):
    module = build(build_module, "div_const", value="1 // (hidden - 4)")
    with pytest.raises(ValueError, match=r"^div_const: constant 'scale' at hidden=4: division by zero$"):
        cell(module, hidden=4)
    assert cell(module, hidden=5).constants["scale"].tolist() == [1.0] * 5
    assert cell(module, hidden=3).constants["scale"].tolist() == [-1.0] * 3


def test_an_init_undefined_at_one_size_is_refused_by_name(build_module):
    module = build(build_module, "div_init", init_b="constant((hidden-3)**-1)")
    with pytest.raises(ValueError, match=r"^div_init: the init of param 'b' at hidden=3: division by zero$"):
        cell(module, hidden=3)
    assert cell(module, hidden=5).params["b"].tolist() == [0.5] * 5


def test_a_mask_undefined_at_one_size_is_refused_by_name(build_module):
    module = build(build_module, "div_mask", mask="i % (hidden - 4) <= j")
    with pytest.raises(ValueError, match=r"^div_mask: the mask of param 'U' at hidden=4: division by zero$"):
        cell(module, hidden=4)
    assert cell(module, hidden=6).masks["U"].sum() == sum(i % 2 <= j for i in range(6) for j in range(6))


def test_negative_powers_are_fractions(build_module):
    module = build(build_module, "neg_pow", value="2**(i - hidden)")
    for dtype in ("float32", "float64"):
        scale = cell(module, hidden=8, dtype=dtype).constants["scale"]
        assert scale.tolist() == [2.0 ** (k - 8) for k in range(8)]


def test_huge_powers_are_refused_before_they_are_computed(build_module):
    module = build(build_module, "huge", value="2**(hidden**3) // 2**(hidden**3 - 1)")
    assert cell(module, hidden=12).constants["scale"].tolist() == [2.0] * 12   # 1728 bits: computed
    with pytest.raises(ValueError, match=r"^huge: constant 'scale' at hidden=30: a power is too large to compute exactly \(more than 8192 bits\)$"):
        cell(module, hidden=30)
    tower = build(build_module, "tower", value="modules**(modules**5) % 2")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="tower: constant 'scale' at hidden=4, modules=1000000: a power is too large"):
        cell(tower, hidden=4, modules=10**6)
    assert time.perf_counter() - start < 1.0


def test_floor_division_is_exact_at_large_values(build_module):
    # np.floor((m**3 - 1)/m**3) is 1.0 at m = 10**6: the division rounds to 1 first
    module = build(build_module, "floor_big", value="(i + modules**3 - 1) // modules**3")
    for m in (10**6, 10**7):   # int64 holds the intermediates of the first, not of the second
        assert cell(module, hidden=4, modules=m).constants["scale"].tolist() == [0.0, 1.0, 1.0, 1.0]
    blocks = build(build_module, "floor_blocks", value="i*modules // hidden", mask="j*modules // hidden >= i*modules // hidden")
    c = cell(blocks, hidden=7, modules=3)
    assert c.constants["scale"].tolist() == [float(i * 3 // 7) for i in range(7)]
    assert c.masks["U"].tolist() == [[float(j * 3 // 7 >= i * 3 // 7) for j in range(7)] for i in range(7)]


def test_values_must_fit_the_cells_float_type(build_module):
    module = build(build_module, "fits", value="2**i")
    assert cell(module, hidden=200).constants["scale"][-1] == 2.0**199
    with pytest.raises(ValueError, match=r"^fits: constant 'scale' at hidden=200: at i=128, the value 3.40282e\+38 does not fit float32$"):
        cell(module, hidden=200, dtype="float32")
    with pytest.raises(ValueError, match=r"^fits: constant 'scale' at hidden=1100: at i=1024, the value about 2\*\*1024 does not fit float64$"):
        cell(module, hidden=1100)


@pytest.mark.parametrize(
    "init, message",
    [
        ("uniform((hidden - 3)**2)", "uniform() needs a positive argument, got 0.0"),
        ("normal((hidden - 3)**2)", "normal() needs a positive argument, got 0.0"),
        ("orthogonal((hidden - 3)**2)", "orthogonal() needs a positive argument, got 0.0"),
        ("uniform(0, (hidden - 3)**2)", "uniform(a, b) needs a < b, got a=0.0, b=0.0"),
    ],
)
def test_init_arguments_are_checked_at_the_real_sizes(build_module, init, message):
    module = build(build_module, "init_args", init_u=init)
    with pytest.raises(ValueError, match=r"^init_args: the init of param 'U' at hidden=3: " + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        cell(module, hidden=3)
    assert np.all(np.isfinite(cell(module, hidden=5).params["U"]))


def test_init_arguments_must_fit_the_float_type(build_module):
    # the compiler tries sizes 1 and 1000, where this is 0
    module = build(build_module, "init_big", init_b="constant(((hidden - 1)*(hidden - 1000))**14)")
    assert cell(module, hidden=10).params["b"][0] == float((9 * 990) ** 14)
    with pytest.raises(ValueError, match=r"^init_big: the init of param 'b' at hidden=10: the argument 1.98\d*e\+55 of constant\(\) is not a finite float32$"):
        cell(module, hidden=10, dtype="float32")


# --- the catalog --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_catalog_inits_are_one_over_sqrt_as_printed_before(name):
    """Every catalog init argument is 1/sqrt(hidden), which cells computed as 1.0/math.sqrt(n):
    the same float, squares and non-squares alike."""
    cls = generated(name).Cell
    assert {args for _, kind, args in cls.INITS if kind == "uniform"} == {(("/", 1, ("sqrt", ("dim", "hidden"))),)}
    for n in (1, 3, 4, 8, 10, 49, 1000, 1024, 12345):
        assert float(formula.evaluate(("/", 1, ("sqrt", ("dim", "hidden"))), {"hidden": n})) == 1.0 / math.sqrt(n)


def test_clockwork_period_and_mask_are_the_integer_formulas():
    cls = generated("clockwork").Cell
    for hidden, modules in ((8, 4), (13, 5), (1024, 8), (1000, 7)):
        c = cls(input=2, hidden=hidden, modules=modules, seed=0)
        module = [u * modules // hidden for u in range(hidden)]
        assert c.constants["period"].tolist() == [2.0**m for m in module]
        assert np.array_equal(c.masks["U"], np.array(module)[None, :] >= np.array(module)[:, None])


# --- trees against SymPy ------------------------------------------------------------------------

I, J = (sympy.Symbol(n, integer=True, nonnegative=True) for n in "ij")
DIMS = {d: sympy.Symbol(d, positive=True, integer=True) for d in ("hidden", "modules")}
FORMULAS = [
    "2**(i*modules // hidden)",
    "i*modules // hidden",
    "(2*i + 1) // (2*hidden)",
    "-i // 3 + (-i) % 4",
    "(i - hidden) // 2",
    "i // 2 // 3 * 5",
    "i % hidden // 2",
    "min(i, 3) * max(hidden - i, 2)",
    "2**(i - hidden) + 3**-2",
    "(i + 1)**-2 * 3",
    "0.5*i + 0.25",
    "i**3 - 7*i**2 + modules",
]
CONDITIONS = [
    "j*modules // hidden >= i*modules // hidden",
    "i < j and j < 3 or i == 0",
    "i % 3 != j % 2",
    "2**(i*hidden) >= j",
    "i // 2 > j - hidden",
]


def _parse(src, condition):
    where = Location("f.yaml", 1, 1)
    return parse_index_formula(Text(src, where, where), "the formula", {**DIMS, "i": I, "j": J}, condition)


@pytest.mark.parametrize("src", FORMULAS + CONDITIONS)
def test_trees_evaluate_as_sympy_does(src):
    condition = src in CONDITIONS
    expr = _parse(src, condition)
    tree = formula_tree(expr, ("i", "j"))
    for hidden, modules in ((5, 2), (12, 5), (70, 3)):
        sizes = {"hidden": hidden, "modules": modules}
        got = formula.evaluate(tree, sizes, ("hidden", "hidden"))
        fixed = expr.subs({DIMS["hidden"]: hidden, DIMS["modules"]: modules})
        for i in range(0, hidden, max(1, hidden // 9)):
            for j in range(0, hidden, max(1, hidden // 7)):
                want = fixed.subs({I: i, J: j})
                assert got[i, j] == (float(bool(want)) if condition else float(want)), (src, i, j)


def test_tree_spelling():
    assert formula_tree(_parse("2**(i*modules // hidden)", False), ("i",)) == ("**", 2, ("//", ("*", ("index", "i"), ("dim", "modules")), ("dim", "hidden")))
    assert formula_tree(_parse("1 // (hidden - 4)", False), ("i",)) == ("//", 1, ("+", -4, ("dim", "hidden")))
    assert formula_tree(_parse("0.5*i", False), ("i",)) == ("/", ("index", "i"), 2)
    assert formula_tree(1 / sympy.sqrt(DIMS["hidden"])) == ("/", 1, ("sqrt", ("dim", "hidden")))
    assert formula_tree(sympy.Rational(1, 3)) == ("frac", 1, 3)
    assert formula_tree(_parse("i < j or i == 0", True), ("i", "j"))[0] == "or"
    # a dim that is not an index here is a dim
    assert set(formula_tree(DIMS["hidden"] + I)[1:]) == {("dim", "hidden"), ("dim", "i")}


# --- the evaluator --------------------------------------------------------------------------------


def test_errors_of_the_evaluator():
    def error(tree, dims=None, shape=()):
        with pytest.raises(ValueError) as e:
            formula.evaluate(tree, dims or {"n": 4}, shape, what="f")
        return str(e.value)

    assert error(("%", ("index", "i"), ("+", ("dim", "n"), -4)), shape=("n",)) == "f at n=4: division by zero"
    assert error(("sqrt", ("+", ("dim", "n"), -5))) == "f at n=4: the square root of a negative number is not a real number"
    assert error(("**", -2, ("frac", 1, 2))) == "f: a negative number to a fractional power is not a real number"
    assert error(("**", ("sqrt", 2), 5000)) == "f: a value is too large for a float"
    assert error(("*", ("**", 3, 5000), ("**", 3, 5000))).startswith("f: a value has more than 8192 bits")
    assert float(formula.evaluate(("**", 4, ("frac", 1, 2)), {})) == 2.0
    assert float(formula.evaluate(("sqrt", ("frac", 9, 4)), {})) == 1.5


SMALL = st.integers(-9, 9)
LEAVES = st.one_of(SMALL, st.just(("index", "i")), st.just(("index", "j")), st.just(("dim", "n")))


def _trees(children):
    binary = st.sampled_from(["+", "*", "//", "%", "min", "max"])
    return st.one_of(
        st.tuples(binary, children, children),
        st.tuples(st.just("**"), children, st.integers(0, 12)),
        st.tuples(st.just("**"), st.integers(-3, 3), st.tuples(st.just("%"), children, st.integers(1, 40))),
    )


TREES = st.recursive(LEAVES, _trees, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(TREES, st.integers(1, 12))
def test_int64_evaluation_equals_the_exact_one(tree, n):
    """Where the int64 evaluation returns a value it is the exact one; where it cannot prove
    that, it declines (None)."""
    try:
        exact = formula._exact(tree, {"n": n}, (n, n))
    except formula._Refused:
        return
    fast = formula._fast(tree, {"n": n}, (n, n))
    if fast is not None:
        want = np.broadcast_to(np.array(exact, dtype=object), (n, n))
        assert np.broadcast_to(fast, (n, n)).tolist() == want.tolist()


def test_int64_evaluation_declines_at_the_edge_of_int64():
    power = ("**", 3, ("index", "i"))
    assert formula._fast(power, {}, (40,)) is not None          # 3**39 < 2**63
    assert formula._fast(power, {}, (41,)) is None              # 3**40 > 2**63
    assert formula.evaluate(power, {"n": 41}, ("n",)).tolist() == [float(3**k) for k in range(41)]
    assert formula._fast(("*", ("**", 2, 62), ("+", ("index", "i"), -1)), {}, (3,)) is not None   # |2**62 * ±1| fits
    assert formula._fast(("*", ("**", 2, 62), ("+", ("index", "i"), -1)), {}, (4,)) is None       # 2**62 * 2 does not
