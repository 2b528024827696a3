"""Cells outside the catalog that exercise the compiler's general features end to end: several
inputs, values hoisted in several phases, products of expressions, outputs that are not state,
output dims of their own, and every op."""

import textwrap

import numpy as np
import pytest

from cellspec.gradcheck import gradcheck

SPECS = {
    # input-only work in two phases (softplus(W@x)*m feeds V@u), a product of an expression of a
    # state and a hoisted value, every op, and an output that is not a state
    "kitchen": """
        name: kitchen
        summary: every feature at once
        cite: none, a test cell
        inputs: {x: input, m: hidden}
        state: {h: hidden, c: hidden}
        params:
          W: [hidden, input]
          V: [hidden, hidden]
          U: [hidden, hidden]
          a: [hidden]
          b: {shape: [hidden], init: zeros}
        equations:
          u: softplus(W @ x) * m
          s: relu(V @ u + a) + 0.1*u
          q: sigmoid(U @ (h*s) + b)
          k: max(q, abs(c)) - min(q, 0.5*exp(-c*c)) + sqrt(1 + q**2)
          c_new: log(1 + q*q) + k*c/2
          h_new: tanh(c_new) * q + s*h
        update: {h: h_new, c: c_new}
        output: k
    """,
    # an output of its own dim, read through a product of the new state (a second loop phase)
    "projected": """
        name: projected
        summary: tanh RNN with a linear read-out
        cite: none, a test cell
        inputs: {x: input}
        state: {h: hidden}
        params:
          W: [hidden, input]
          U: {shape: [hidden, hidden], init: orthogonal}
          P: [out, hidden]
          b: [hidden]
          c: {shape: [out], init: "normal(0.1)"}
        equations:
          h_new: tanh(W @ x + U @ h + b)
          y: P @ h_new + c
        update: {h: h_new}
        output: y
    """,
    # quotients whose derivatives have powers in denominators (printed y/x**2, never y/x*x)
    "quotient": """
        name: quotient
        summary: divisions and powers
        cite: none, a test cell
        inputs: {x: input}
        state: {h: hidden}
        params:
          W: [hidden, input]
          U: [hidden, hidden]
          b: [hidden]
        equations:
          a: W @ x + U @ h + b
          h_new: tanh(a) / (2 + h*h) + a / (1 + a**2)**2 - 1/(3 + a**4)
        update: {h: h_new}
        output: h_new
    """,
    # the same weight used twice (W on x and on the state), one operand shared by two products
    "shared": """
        name: shared
        summary: weight sharing
        cite: none, a test cell
        inputs: {x: hidden}
        state: {h: hidden}
        params:
          W: [hidden, hidden]
          U: [hidden, hidden]
        equations:
          a: W @ x + W @ h
          h_new: tanh(a) * sigmoid(U @ h) + (1 - sigmoid(U @ h)) * h
        update: {h: h_new}
        output: h_new
    """,
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_feature_cell_gradients(name, build_module):
    built, module = build_module(SPECS[name], name)
    result = gradcheck(module, T=4, B=2, seed=5)
    assert result.worst < 1e-7, result.errors


def test_kitchen_schedule_has_two_hoisted_phases(build_module):
    built, _ = build_module(SPECS["kitchen"], "kitchen")
    s = built.schedule
    pre = s.phases["pre"]
    assert len(pre) == 2
    assert [g.weights for g in pre[0].groups] == [("W",)]
    assert pre[0].nodes == ["u"]
    assert [g.weights for g in pre[1].groups] == [("V",)]
    loop = s.phases["loop"]
    # U @ (h*s) needs h*s first: elementwise, then the product, then the rest; exp(-c*c), whose
    # derivative reads its own value, is a node of its own (ir.name_calls) that needs only c
    assert loop[0].groups == [] and [built.cell.label(n) for n in loop[0].nodes] == ["(h*s)", "(exp(-c**2))"]
    assert [g.weights for g in loop[1].groups] == [("U",)]


def test_projected_output_has_its_own_dim(build_module):
    _, module = build_module(SPECS["projected"], "projected")
    cell = module.Cell(input=3, hidden=5, out=2, seed=0)
    u = cell.params["U"]
    assert np.allclose(u @ u.T, np.eye(5))
    y, state, tape = cell.forward(np.zeros((4, 2, 3)))
    assert y.shape == (4, 2, 2) and state["h"].shape == (2, 5)


def test_shared_weight_gets_both_gradients(build_module):
    built, module = build_module(SPECS["shared"], "shared")
    # the duplicate sigmoid(U @ h) is one product
    assert sum(1 for n in built.cell.nodes.values() if getattr(n, "weight", None) == "U") == 1
    cell = module.Cell(hidden=4, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 2, 4))
    y, _, tape = cell.forward(x)
    _, dparams, _ = cell.backward(tape, np.ones_like(y))
    # the same cell with the weight untied (V on the state), V set to W: a shared weight's
    # gradient is the sum of the two untied ones, not either of them
    untied_text = (textwrap.dedent(SPECS["shared"]).replace("name: shared", "name: untied")
                   .replace("  U: [hidden, hidden]", "  U: [hidden, hidden]\n  V: [hidden, hidden]").replace("W @ h", "V @ h"))
    untied = build_module(untied_text, "untied")[1].Cell(hidden=4, seed=0)
    untied.params = {**cell.params, "V": cell.params["W"].copy()}
    y2, _, tape2 = untied.forward(x)
    _, dparams2, _ = untied.backward(tape2, np.ones_like(y2))
    assert np.array_equal(y, y2)
    assert np.allclose(dparams["W"], dparams2["W"] + dparams2["V"], rtol=1e-12, atol=1e-14)
    assert np.abs(dparams2["W"]).max() > 1e-3 and np.abs(dparams2["V"]).max() > 1e-3
    assert np.allclose(dparams["U"], dparams2["U"], rtol=1e-12, atol=1e-14)
