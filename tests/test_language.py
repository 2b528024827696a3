"""The spec language beyond inputs, states, products and elementwise ops: where() and
comparisons, the step index, constants, weight masks, dim constraints, several outputs. Each
feature is checked where it is parsed, refused where it is misused, and run end to end."""

import numpy as np
import pytest
import sympy

from cellspec.build import compile_spec
from cellspec.errors import Location, SpecError
from cellspec.gradcheck import gradcheck
from cellspec.ir import symbol
from cellspec.parse import parse_equation
from cellspec.parse_sizes import parse_index_formula
from cellspec.yamltext import Text

from test_spec_errors import EQ, edit

x, h, t, p = (symbol(n) for n in "xhtp")


def parse(src):
    where = Location("e.yaml", 1, 1)
    names = {"x": x, "h": h, "p": p, "t": sympy.Symbol("t", integer=True, nonnegative=True)}
    return parse_equation(Text(src, where, where), "e", names, set(), lambda *a: None)


def error(src, fn=parse):
    with pytest.raises(SpecError) as e:
        fn(src)
    return e.value.where.col, e.value.message


def index(src, condition=False):
    where = Location("e.yaml", 1, 1)
    names = {n: sympy.Symbol(n, integer=True, nonnegative=True) for n in ("i", "j", "hidden", "modules")}
    return parse_index_formula(Text(src, where, where), "the formula", names, condition)


def test_where_is_a_piecewise_of_one_comparison():
    assert parse("where(x > 0, x, h)") == sympy.Piecewise((x, x > 0), (h, True))
    assert parse("where(x % 2 == 0, h, 0)") == sympy.Piecewise((h, sympy.Eq(sympy.Mod(x, 2), 0)), (0, True))
    assert error("x > 0") == (1, "comparisons are allowed only in a condition, the first argument of where(), in equation 'e'")
    assert error("where(x, h, x)") == (7, "the first argument of where() must be a comparison")
    assert error("where(0 < x < 1, h, x)") == (7, "chained comparisons are not allowed in equation 'e': write one at a time")
    assert error("where(x > 0, h)") == (1, "where() takes 3 arguments (condition, value if true, value if false), got 2")
    assert error("where(x > 0, x > 1, h)") == (14, "comparisons are allowed only in a condition, the first argument of where(), in equation 'e'")
    assert error("where((x > 0) + 1 > 0, x, h)") == (8, "a comparison is a condition, not a number, in equation 'e'")
    assert error("where(1 > 0, x, h)") == (7, "this condition is always true")


def test_index_formulas():
    i, j, hidden, modules = (sympy.Symbol(n, integer=True, nonnegative=True) for n in ("i", "j", "hidden", "modules"))
    assert index("2**(i*modules // hidden)") == 2 ** sympy.floor(i * modules / hidden)
    assert index("i % 3 + min(i, 2)") == sympy.Mod(i, 3) + sympy.Min(i, 2)
    assert index("j >= i and i < 4", condition=True) == sympy.And(j >= i, i < 4)
    assert error("i > 2", fn=index) == (1, "the formula must be a number, not a condition")
    assert error("i + 2", fn=lambda s: index(s, condition=True)) == (1, "the formula must be a condition, such as i // 4 <= j // 4")
    assert error("i / 2", fn=index) == (1, "operator '/' is not allowed in the formula")
    assert error("k + 1", fn=index) == (1, "unknown name 'k' in the formula; it may use i, j, hidden, modules")
    assert error("tanh(i)", fn=index)[1].startswith("function 'tanh' is not allowed in the formula")


def spec_error(text, tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    return str(e.value).split(":", 1)[1]


@pytest.mark.parametrize(
    "edits, expected",
    [
        ([("inputs: {x: input}", "constraints: [input = hidden]\ninputs: {x: input}")], "4:15: error: a constraint is written `dim_a == dim_b`"),
        ([("inputs: {x: input}", "constraints: [input == width]\ninputs: {x: input}")], "4:24: error: unknown dim 'width' in a constraint; the dims are hidden, input"),
        ([("inputs: {x: input}", "constraints: [input == input]\ninputs: {x: input}")], "4:15: error: a constraint must name two different dims"),
        ([(EQ, "  h_new: tanh(W @ x + U @ h + b) + x")], "12:36: error: elementwise operation mixes a [hidden] vector and a [input] vector"),
        ([("state: {h: hidden}", "state: {h: hidden}\nstep: t")], "6:7: error: step index 't' is never used"),
        ([("state: {h: hidden}", "state: {h: hidden}\nstep: np")], "6:7: error: step index 'np' is reserved: it is a Python name or one the generated code uses"),
        ([("state: {h: hidden}", "state: {h: hidden}\nconstants:\n  k: {shape: [hidden], value: i}")], "7:3: error: constant 'k' is never used"),
        ([("state: {h: hidden}", "state: {h: hidden}\nconstants:\n  k: {shape: [hidden]}")], "7:6: error: constant 'k' has no value"),
        ([("state: {h: hidden}", "state: {h: hidden}\nconstants:\n  k: {shape: [hidden], value: i, init: ones}")], "7:34: error: unknown field 'init' of constant 'k'; a constant has shape, value"),
        ([("state: {h: hidden}", "state: {h: hidden}\nconstants:\n  k: {shape: [hidden], value: i > 1}")], "7:31: error: the value of constant 'k' must be a number, not a condition"),
        ([("  U: [hidden, hidden]", "  U: {shape: [hidden, hidden], mask: i + j}")], "8:38: error: the mask of param 'U' must be a condition, such as i // 4 <= j // 4"),
        ([("  b: [hidden]", "  b: {shape: [hidden], mask: i > 0}")], "10:30: error: only a matrix can have a mask, and 'b' is a vector"),
        ([("output: h_new", "output: [h_new, b]")], "14:17: error: an output must name an equation, and 'b' is not one"),
    ],
)
def test_language_errors(tmp_path, edits, expected):
    assert spec_error(edit(*edits), tmp_path) == expected


def test_constraint_lets_input_and_hidden_mix_and_cell_checks_sizes(build_module):
    _, module = build_module(edit(("inputs: {x: input}", "constraints: [input == hidden]\ninputs: {x: input}"), (EQ, EQ + " * x")))
    assert module.Cell.CONSTRAINTS == [("input", "hidden")]
    with pytest.raises(ValueError, match="needs input == hidden, got input=3, hidden=4"):
        module.Cell(input=3, hidden=4)
    assert module.Cell(hidden=4).dims == {"input": 4, "hidden": 4}
    assert gradcheck(module, T=3).worst < 1e-7


def test_several_outputs_and_a_time_dependent_gate(build_module):
    _, module = build_module("""
        name: two_outputs
        summary: a tanh RNN that writes only on even steps, reading out two values
        cite: none, a test cell
        inputs: {x: input}
        state: {h: hidden}
        step: t
        constants:
          scale: {shape: [hidden], value: "1 + i % 2"}
        params:
          W: [hidden, input]
          U: {shape: [hidden, hidden], mask: "i != j"}
        equations:
          h_run: tanh(W @ x + U @ h)
          h_new: where(t % 2 == 0, h_run, h)
          y2: scale * h_new
        update: {h: h_new}
        output: [h_new, y2]
    """)
    cell = module.Cell(input=3, hidden=4, seed=0)
    assert np.array_equal(np.diag(cell.params["U"]), np.zeros(4))
    assert np.array_equal(cell.constants["scale"], [1, 2, 1, 2])
    xs = np.random.default_rng(0).normal(size=(4, 2, 3))
    y, state, _ = cell.forward(xs)
    assert set(y) == {"h_new", "y2"}
    assert np.array_equal(y["h_new"][1], y["h_new"][0])      # odd steps keep h
    assert not np.array_equal(y["h_new"][2], y["h_new"][1])
    assert np.allclose(y["y2"], y["h_new"] * [1, 2, 1, 2])
    result = gradcheck(module, T=4)
    assert result.worst < 1e-7, result.errors
