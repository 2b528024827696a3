"""The IR stage on its own: `lower.build_ir` (a spec lowered to nodes, every shape checked) and
the IR types of `ir.py`. No code is generated or compiled here: each case is a SymPy build."""

import os

import pytest
import sympy

from cellspec.errors import SpecError, UnknownName
from cellspec.ir import Elementwise, Product, symbol
from cellspec.lower import MAX_ARGS, MAX_CALL_DEPTH, build_ir
from cellspec.ops import sigmoid
from cellspec.spec import load_spec
from conftest import ROOT, SPEC_NAMES

PARAMS = "  W: [hidden, input]\n  U: [hidden, hidden]\n  b: [hidden]\n"


def spec_text(equations: dict, params: str = "", output: str = "h_new") -> str:
    """An Elman-like spec (x: input, h: hidden; W, U, b) with these equations, in order."""
    lines = "".join(f"  {name}: '{expr}'\n" for name, expr in equations.items())
    return (
        "name: t\nsummary: a test cell\ncite: none\ninputs: {x: input}\nstate: {h: hidden}\n"
        f"params:\n{PARAMS}{params}equations:\n{lines}update: {{h: h_new}}\noutput: {output}\n"
    )


def cell(equations: dict, **kw):
    return build_ir(load_spec("cell.yaml", spec_text(equations, **kw).encode()))


def catalog(name: str):
    return build_ir(load_spec(os.path.join(ROOT, "specs", f"{name}.yaml")))


def line_of(text: str, needle: str) -> int:
    return next(k for k, line in enumerate(text.splitlines(), 1) if needle in line)


def products(c, weight: str | None = None) -> list[Product]:
    return [n for n in c.nodes.values() if isinstance(n, Product) and weight in (None, n.weight)]


def made(c, why: str) -> list[Elementwise]:
    return [n for n in c.nodes.values() if isinstance(n, Elementwise) and n.made_for == why]


def inlined(c, name: str) -> sympy.Expr:
    """A node's expression with every compiler-made elementwise node it reads written back in."""
    node = c.nodes[name]
    inner = {symbol(a): inlined(c, a) for a in node.args
             if isinstance(c.nodes.get(a), Elementwise) and not c.nodes[a].equation}
    return node.expr.xreplace(inner)


def call_depth(e) -> int:
    return int(isinstance(e, sympy.Function)) + max((call_depth(a) for a in e.args), default=0)


def widest(e) -> int:
    own = len(e.args) if (e.is_Add or e.is_Mul) else 0
    return max([own, *(widest(a) for a in e.args)])


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_catalog_nodes_follow_their_arguments(name):
    c = catalog(name)
    known = set(c.inputs) | set(c.states) | set(c.vectors) | set(c.constants) | c.leaves
    for n in c.nodes.values():
        assert set(n.args) <= known, f"{n.name} reads {set(n.args) - known} before they are computed"
        if isinstance(n, Product):
            assert n.weight in c.matrices
        else:
            assert {s.name for s in n.expr.free_symbols} == set(n.args)
            assert n.equation == (n.made_for == "")
        known.add(n.name)
    assert set(c.updates.values()) | set(c.outputs) <= set(c.nodes)
    assert set(c.updates) == set(c.states)
    # the catalog's cells nest at most two calls and four levels: nothing is split
    assert made(c, "split") == []


def test_products_with_the_same_weight_and_operand_are_one_node():
    c = cell({"h_new": "sigmoid(U @ h) + tanh(U @ h) + W @ x + b"})
    (pu,) = products(c, "U")
    assert pu.args == ("h",) and c.label(pu.name) == "U @ h"
    expr = c.nodes["h_new"].expr
    assert expr.has(sympy.tanh(symbol(pu.name))) and expr.has(sigmoid(symbol(pu.name)))
    assert [c.label(p.name) for p in products(c)] == ["U @ h", "W @ x"]


def test_an_expression_operand_gets_one_node_shared_by_its_products():
    c = cell({"h_new": "tanh(W @ x + U @ (h*b) + b) + V @ (b*h)"}, params="  V: [hidden, hidden]\n")
    (operand,) = made(c, "operand")
    assert not operand.equation and operand.expr == symbol("h") * symbol("b") and operand.dim == "hidden"
    assert c.label(operand.name) == "(b*h)"
    users = [p for p in products(c) if p.operand == operand.name]
    assert sorted(p.weight for p in users) == ["U", "V"]
    assert sorted(c.label(p.name) for p in users) == ["U @ (b*h)", "V @ (b*h)"]
    # the operand is computed before either product reads it
    order = list(c.nodes)
    assert all(order.index(operand.name) < order.index(p.name) for p in users)


def test_mut1_labels_a_product_of_an_expression_with_parentheses():
    c = catalog("mut1")
    assert sorted(c.label(p.name) for p in products(c)) == ["U_n @ (h*r)", "U_r @ h", "W_r @ x", "W_z @ x"]
    assert c.label("h_new") == "h_new" and c.label("x") == "x"


@pytest.mark.parametrize("equations", [
    {"h_new": "tanh(W @ x + U @ h - U @ h + b) + 0*h"},
    {"h_new": "tanh(W @ x + b) + 0*(U @ (h*b))"},
    {"a": "tanh(U @ h)", "h_new": "tanh(W @ x + b) + a*0"},
], ids=["cancelled-product", "product-times-zero", "equation-times-zero"])
def test_cancelled_terms_leave_no_dead_node(equations):
    # U is written, so it counts as used and the spec builds; but nothing may compute it
    c = cell(equations)
    assert products(c, "U") == [] and made(c, "operand") == []
    assert "a" not in c.nodes
    assert [c.label(n) for n in c.nodes] == ["W @ x", "h_new"]


@pytest.mark.parametrize("expr, kinds", [
    ("tanh(W @ x + U @ h + b)*b + h*(1 - b)", ["tanh"]),  # a call of a sum inside a larger expression
    ("b*tanh(h) + W @ x + U @ h", []),  # a call of a value: recomputed, no node
    ("tanh(W @ x + U @ h + b)", []),  # the node itself is the call
    ("exp(W @ x + U @ h)*b", ["exp"]),
    ("where(h > 0, tanh(W @ x + U @ h), b)", ["tanh"]),  # bounded: safe to keep in a branch
    ("where(h > 0, exp(W @ x + U @ h), b)", []),  # exp can be inf, and 0 * inf is NaN
    ("(W @ x + U @ h + b)*h", ["Add"]),  # a factor summing two products
    ("h*(U @ h + b) + W @ x", []),  # a factor with one product
])
def test_name_calls_gives_nodes_to_values_the_backward_pass_reads(expr, kinds):
    c = cell({"h_new": expr})
    named = made(c, "named")
    assert [type(n.expr).__name__ for n in named] == kinds
    assert all(not n.equation and n.name in c.nodes["h_new"].args for n in named)
    # naming changes where values are kept, never what the equation computes
    p = {n.weight: symbol(n.name) for n in products(c)}
    names = {"Wx": p["W"], "Uh": p["U"], "b": symbol("b"), "h": symbol("h"),
             "where": lambda cond, a, other: sympy.Piecewise((a, cond), (other, True))}
    written = sympy.parse_expr(expr.replace("W @ x", "Wx").replace("U @ h", "Uh"), local_dict=names)
    assert sympy.simplify(inlined(c, "h_new") - written) == 0


def test_a_deeply_nested_call_is_split():
    c = cell({"h_new": "tanh(tanh(tanh(tanh(tanh(tanh(W @ x + U @ h + b))))))"})
    assert made(c, "split")
    assert all(call_depth(n.expr) <= MAX_CALL_DEPTH for n in c.nodes.values() if isinstance(n, Elementwise))
    p = {n.weight: symbol(n.name) for n in products(c)}
    expected = p["W"] + p["U"] + symbol("b")
    for _ in range(6):
        expected = sympy.tanh(expected)
    assert inlined(c, "h_new") == expected


def test_a_wide_sum_is_split_into_nodes_of_at_most_max_args_terms():
    terms = [f"{k}*h**{k}" for k in range(1, MAX_ARGS + 6)]
    c = cell({"h_new": " + ".join(terms) + " + W @ x + U @ h + b"})
    assert len(made(c, "split")) >= 2
    assert all(widest(n.expr) <= MAX_ARGS for n in c.nodes.values() if isinstance(n, Elementwise))
    p = {n.weight: symbol(n.name) for n in products(c)}
    h = symbol("h")
    expected = sum(k * h**k for k in range(1, MAX_ARGS + 6)) + p["W"] + p["U"] + symbol("b")
    assert sympy.expand(inlined(c, "h_new") - expected) == 0


def test_a_constraint_makes_dims_one_and_nodes_use_the_canonical_dim():
    c = catalog("mut1")
    assert c.constraints == (("input", "hidden"),)
    # the state's dim is the representative: every node, x's too, is [hidden]
    assert {n.dim for n in c.nodes.values()} == {"hidden"}
    assert "x" in c.nodes["n"].args  # tanh(x) + b_n is elementwise across the two dims
    text = open(os.path.join(ROOT, "specs", "mut1.yaml")).read()
    unconstrained = text.replace('constraints: ["input == hidden"]\n', "")
    assert unconstrained != text
    with pytest.raises(SpecError, match="mixes") as e:
        build_ir(load_spec("mut1.yaml", unconstrained.encode()))
    assert e.value.where.line == line_of(unconstrained, "  n: tanh(")


def test_mixing_dims_in_an_elementwise_op_is_a_located_error():
    text = spec_text({"h_new": "tanh(W @ x + U @ h + b) + x"})
    with pytest.raises(SpecError, match=r"mixes a \[hidden\] vector and a \[input\] vector") as e:
        build_ir(load_spec("cell.yaml", text.encode()))
    line = line_of(text, "h_new: ")
    assert (e.value.where.line, e.value.where.col) == (line, text.splitlines()[line - 1].index("x'") + 1)


def test_dim_of_answers_for_every_kind_of_value():
    c = cell({"h_new": "tanh(W @ x + U @ h + b)", "y": "P @ h_new + c"},
             params="  P: [out, hidden]\n  c: [out]\n", output="y")
    (pp,) = products(c, "P")
    assert [c.dim_of(n) for n in ("x", "h", "b", "c", "h_new", "y", pp.name)] == \
        ["input", "hidden", "hidden", "out", "hidden", "out", "out"]
    assert pp.operand == "h_new" and list(c.nodes).index("h_new") < list(c.nodes).index(pp.name)


def test_an_equation_used_before_it_is_defined_is_an_error_naming_its_line():
    text = spec_text({"h_new": "tanh(W @ x + U @ h + b) + a", "a": "h*b"})
    with pytest.raises(SpecError, match="'a' is used before its equation") as e:
        build_ir(load_spec("cell.yaml", text.encode()))
    assert not isinstance(e.value, UnknownName)
    assert f"(line {line_of(text, '  a: ')})" in e.value.message
    assert e.value.where.line == line_of(text, "h_new: ")


def test_an_unknown_name_is_an_unknown_name_error_with_the_name():
    text = spec_text({"h_new": "tanh(W @ x + U @ h + q)"})
    with pytest.raises(UnknownName) as e:
        build_ir(load_spec("cell.yaml", text.encode()))
    assert isinstance(e.value, SpecError) and e.value.name == "q"
    line = line_of(text, "h_new: ")
    assert (e.value.where.line, e.value.where.col) == (line, text.splitlines()[line - 1].index("q") + 1)


def test_users_lists_every_reader_in_node_order():
    c = catalog("gru")
    users = c.users()
    assert [c.label(u) for u in users["h"]] == ["U_r @ h", "U_z @ h", "U_n @ h", "h_new"]
    assert users["z"] == ["h_new"] and users["r"] == ["n"] and "h_new" not in users
    c = cell({"a": "tanh(W @ x + U @ h + b)", "h_new": "a*h + (1 - a)*b"})
    assert c.users()["b"] == ["a", "h_new"] and c.users()["a"] == ["h_new"]
    assert [c.label(u) for u in c.users()["h"]] == ["U @ h", "h_new"]
