"""Random well-formed cells through the whole compiler: the test that says the compiler, not a list
of cells, is correct.

A hypothesis strategy writes random specs: random DAGs of equations over one or two inputs and one
or two states, products whose operand is any vector expression, every function and where().
Each is built, and
* its derivative is checked against finite differences through the NumPy reference interpreter
  (RANDOM_CELLS of them, 200 by default);
* the generated, Numba-compiled module of some (COMPILED_CELLS, 40 by default, shallower) is run
  forward and backward and compared with the interpreter.
Set CELLSPEC_RANDOM_CELLS / CELLSPEC_COMPILED_CELLS for more. Hypothesis is derandomized, so every
run tries the same cells.
"""

import os
import textwrap
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cellspec.autodiff import differentiate
from cellspec.build import compile_spec, import_file
from cellspec.errors import SpecError
from cellspec.gradcheck import check_model
from cellspec.reference import Reference

RANDOM_CELLS = int(os.environ.get("CELLSPEC_RANDOM_CELLS", "200"))
# each compiled cell costs a Numba compile of its two kernels, about 2 s: the 40 take 80-100 s
# here; set more to run more
COMPILED_CELLS = int(os.environ.get("CELLSPEC_COMPILED_CELLS", "40"))
SIZES = {"input": 2, "hidden": 3}


class SpecWriter:
    """Draws one random cell: params are declared as expressions use them, so every param is
    used; each equation feeds the next, so every equation is used."""

    UNARY = ["sigmoid({})", "tanh({})", "relu({})", "softplus({})", "exp(tanh({}))", "log(1 + ({})**2)", "abs({})", "sqrt(1 + ({})**2)", "0.5*({})"]
    BINARY = ["({}) + ({})", "({}) - ({})", "({})*({})", "max({}, {})", "min({}, {})", "({})/(2 + ({})**2)"]

    def __init__(self, draw, depth: int = 3):
        self.draw = draw
        self.depth = depth
        self.params: dict[str, str] = {}
        self.names: list[str] = []

    def param(self, kind: str) -> str:
        name = f"{kind}{len(self.params)}"
        self.params[name] = {"W": "[hidden, input]", "U": "[hidden, hidden]", "b": "[hidden]"}[kind]
        return name

    def expr(self, depth: int) -> str:
        choice = self.draw(st.integers(0, 9 if depth > 0 else 3))
        if choice == 0:
            return self.draw(st.sampled_from(self.names))
        if choice == 1:
            return self.param("b")
        if choice == 2:
            return f"{self.param('W')} @ x"
        if choice == 3:
            operand = self.draw(st.sampled_from(self.names))
            if depth > 0:
                # an expression of a value, never a bare param (W @ b is refused: a constant)
                operand = f"{self.expr(depth - 1)} + {operand}"
            return f"{self.param('U')} @ ({operand})"
        if choice <= 6:
            return self.draw(st.sampled_from(self.UNARY)).format(self.expr(depth - 1))
        if choice <= 8:
            return self.draw(st.sampled_from(self.BINARY)).format(self.expr(depth - 1), self.expr(depth - 1))
        return f"where(({self.expr(depth - 1)}) > ({self.expr(depth - 1)}), {self.expr(depth - 1)}, {self.expr(depth - 1)})"

    def spec(self) -> str:
        draw = self.draw
        two_inputs = draw(st.booleans())
        states = ["h", "c"][: draw(st.integers(1, 2))]
        self.names = list(states) + (["u"] if two_inputs else [])
        count = draw(st.integers(len(states), len(states) + 2))
        equations = []
        for k in range(count):
            body = self.expr(draw(st.integers(1, self.depth)))
            if k == 0:
                body = f"{body} + {self.param('W')} @ x" + (" + u" if two_inputs else "")
            else:
                body = f"{body} + 0.5*e{k - 1}"
            equations.append(f"  e{k}: {body}")
            self.names.append(f"e{k}")
        updates = {s: f"e{count - len(states) + i}" for i, s in enumerate(states)}
        inputs = "{x: input, u: hidden}" if two_inputs else "{x: input}"
        return textwrap.dedent(
            f"""\
            name: random_cell
            summary: a random cell
            cite: none, drawn by hypothesis
            inputs: {inputs}
            state: {{{", ".join(f"{s}: hidden" for s in states)}}}
            params:
            """
        ) + "".join(f"  {p}: {shape}\n" for p, shape in self.params.items()) + "equations:\n" + "\n".join(equations) + (
            f"\nupdate: {{{', '.join(f'{s}: {e}' for s, e in updates.items())}}}\noutput: e{count - 1}\n"
        )


@st.composite
def random_specs(draw, depth=3):
    return SpecWriter(draw, depth).spec()


def build(tmp_path, text):
    # a folder per example: tmp_path is shared by all of a test's examples, and Numba's cache
    # of a module is keyed by its file
    folder = tmp_path / f"cell{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    path = folder / "random_cell.yaml"
    path.write_text(text)
    try:
        return compile_spec(str(path))
    except SpecError as e:
        # the one refusal the generator can meet: where(h > h, ...) has a constant condition
        assume("this condition is always" not in e.message)
        raise


def reference_for(built, seed):
    rng = np.random.default_rng(seed)
    params = {}
    for p in built.cell.params:
        shape = (SIZES[p.rows], SIZES[p.cols]) if p.name in built.cell.matrices else (SIZES[p.dim],)
        params[p.name] = rng.normal(size=shape) * 0.7
    return Reference(built.cell, differentiate(built.cell), SIZES, params), rng


def inputs_for(cell, rng, T=3, B=2):
    x = {n: rng.normal(size=(T, B, SIZES[d])) for n, d in cell.inputs.items()}
    state = {s: 0.5 * rng.normal(size=(B, SIZES[d])) for s, d in cell.states.items()}
    return (x if len(x) > 1 else next(iter(x.values()))), state


RUN = settings(max_examples=RANDOM_CELLS, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@RUN
@given(text=random_specs())
def test_random_cells_derivatives_match_finite_differences(tmp_path, text):
    built = build(tmp_path, text)
    ref, rng = reference_for(built, 0)
    x, state = inputs_for(built.cell, rng)
    # each param, input and state along two random directions: the catalog specs get the full
    # entry-by-entry check, random cells this cheaper one, so that hundreds of them fit in CI
    result = check_model(ref, x, state, rng, directions=2)
    # central differences (eps 1e-6) carry ~1e-9 noise; random points sit away from the kinks of
    # relu, abs, max, min and where with probability one
    assert result.worst < 1e-6, (text, result.errors)


@settings(max_examples=COMPILED_CELLS, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=random_specs(depth=2))
def test_random_cells_compile_and_equal_the_reference(tmp_path, text):
    built = build(tmp_path, text)
    target = Path(built.cell.path).parent / "random_cell.py"
    target.write_text(built.source)
    module = import_file(str(target), f"random_cell_{abs(hash(text))}")
    ref, rng = reference_for(built, 1)
    cell = module.Cell(dtype="float64", **SIZES)
    cell.params = {k: v.copy() for k, v in ref.params.items()}
    x, state = inputs_for(built.cell, rng)
    y, final, tape = cell.forward(x, state)
    y_ref, final_ref, tape_ref = ref.forward(x, state)
    assert np.allclose(y, y_ref, rtol=1e-10, atol=1e-12), text
    dy = rng.normal(size=y.shape)
    got = cell.backward(tape, dy)
    want = ref.backward(tape_ref, dy)
    for a, b in zip(got, want):
        a, b = (a, b) if isinstance(a, dict) else ({"": a}, {"": b})
        for k in b:
            assert np.allclose(a[k], b[k], rtol=1e-9, atol=1e-11), (text, k)
