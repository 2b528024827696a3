"""The derivative stage: one backward plan, which the reference evaluates, the emitter places and
the docstring prints. These tests check that the three follow the plan by construction: every term
placed, nothing placed that the plan lacks, and a change to the plan changing all three."""

import dataclasses
import os
import re

import numpy as np
import pytest

from cellspec.autodiff import Chain, Outer, Sink, Transpose, backward_equations, differentiate
from cellspec.build import compile_spec
from cellspec.codegen.cpu.emit import Emitter
from cellspec.reference import Reference
from cellspec.schedule import make_schedule

from conftest import ROOT, SPEC_NAMES, generated


def built(name):
    return compile_spec(os.path.join(ROOT, "specs", f"{name}.yaml"))


def docstring_backward(module) -> list[str]:
    doc = module.__doc__
    block = doc[doc.index("Backward, one step"):doc.index("\nSchedule:")]
    return [ln.strip() for ln in block.splitlines() if ln.startswith("    ")]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_docstring_prints_the_plan(name):
    b = built(name)
    plan = b.schedule.plan
    lines = backward_equations(b.cell, plan)
    assert docstring_backward(generated(name)) == lines
    # one line per adjoint and per param that gets gradient, in the plan's order
    assert len(lines) == len(plan.adjoints) + sum(1 for p in plan.params if p.terms)
    states = [a.value for a in plan.adjoints if a.value in b.cell.states]
    assert [ln.split(" = ")[0] for ln in lines if ln.split("[")[0][2:] in states] == [f"d_{s}[t-1]" for s in states]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_emitter_places_every_term_of_the_plan_and_nothing_else(name):
    b = built(name)
    e = Emitter(b.schedule)
    e.module()
    terms = set(b.schedule.plan.terms())
    assert e.unplaced() == [] and terms
    assert e.placed <= terms, e.placed - terms


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_plan_runs_in_reverse_order(name):
    cell = built(name).cell
    plan = differentiate(cell)
    order = [a.value for a in plan.adjoints]
    forward = [*cell.states, *cell.inputs, *cell.nodes]
    assert order == sorted(order, key=forward.index, reverse=True)
    for a in plan.adjoints:
        for t in a.terms:
            if isinstance(t, (Chain, Transpose)):
                user = t.user if isinstance(t, Chain) else t.product
                # a term reads an adjoint the plan computed before this one
                assert order.index(user) < order.index(a.value)
            else:
                assert isinstance(t, Sink) and a.value in (*cell.updates.values(), *cell.outputs)
    for p in plan.params:
        kinds = {type(t) for t in p.terms}
        assert kinds <= ({Outer} if p.param in cell.matrices else {Chain}), (p.param, kinds)


def lstm_without_the_output_sink():
    """The LSTM's plan with dy[t] dropped from d_h_new: what the consumers do with a changed plan."""
    b = built("lstm")
    plan = b.schedule.plan
    adjoints = tuple(dataclasses.replace(a, terms=tuple(t for t in a.terms if not (isinstance(t, Sink) and t.kind == "output"))) for a in plan.adjoints)
    return b, dataclasses.replace(plan, adjoints=adjoints)


def test_the_emitted_kernels_follow_the_plan():
    b, changed = lstm_without_the_output_sink()
    assert "_dy_h_new[" in b.source
    source = Emitter(make_schedule(b.cell, changed)).module()
    # the output gradient is read nowhere in the kernels, and the docstring says so
    kernels = source[source.index("@nb.njit"):source.index("class Cell")]
    assert "_dy_h_new" not in kernels
    assert "d_h_new = d_h[t]\n" in source and "d_h_new = d_h[t] + dy[t]" not in source


def test_the_reference_follows_the_plan():
    b, changed = lstm_without_the_output_sink()
    module = generated("lstm")
    sizes = {"input": 3, "hidden": 4}
    cell = module.Cell(seed=1, **sizes)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 2, 3))
    dy = rng.normal(size=(3, 2, 4))
    grads = []
    for plan in (b.schedule.plan, changed):
        ref = Reference(b.cell, plan, sizes, cell.params)
        y, final, tape = ref.forward(x)
        grads.append(ref.backward(tape, dy, {k: np.zeros_like(v) for k, v in final.items()})[0])
    # with dy dropped and no gradient on the final state, nothing reaches x
    assert np.max(np.abs(grads[0])) > 1e-3 and np.max(np.abs(grads[1])) == 0


def test_a_value_gradient_does_not_reach_gets_no_adjoint_and_is_not_read(build_module):
    # U @ (log(k) % 3) sits only in a where() condition: gradient reaches neither the product
    # nor its operand, so the plan has no adjoint for them and the backward reads neither
    text = """\
        name: cell
        summary: a cell with a product read only in a condition
        cite: none
        inputs: {x: input}
        state: {h: hidden}
        params: {W: [hidden, input], U: [hidden, hidden], b: [hidden]}
        constants:
          k: {shape: [hidden], value: '(-1)**i'}
        equations:
          h_new: tanh(W @ x + U @ h + b) * where(U @ (log(k) % 3) > 0, 1, h)
        update: {h: h_new}
        output: h_new
    """
    b, _ = build_module(text)
    plan = b.schedule.plan
    operand = next(n.operand for n in b.cell.nodes.values() if getattr(n, "operand", None) not in (None, "x", "h"))
    assert plan.adjoint(operand) is None
    assert operand not in plan.reads
    assert not any(re.search(rf"\bd_{operand}\b", ln) for ln in backward_equations(b.cell, plan))
