"""Random well-formed cells through the whole compiler: the test that says the compiler, not a list
of cells, is correct.

A hypothesis strategy writes random specs: random DAGs of equations over one or two inputs and one
or two states, products whose operand is any vector expression (another product among them, with
a weight used again or a new one), every function, where() (nested too), and a step index `t`
in float functions (`log(1 + t)`, `/ max(t, 1)`). Each is built, and
* its derivative is checked against finite differences through the NumPy reference interpreter
  (RANDOM_CELLS of them, 200 by default);
* the generated, Numba-compiled module of some (COMPILED_CELLS, 40 by default, shallower) is run
  forward and backward at several small sizes and compared with the interpreter and with finite
  differences (tests/run_built.py); their failures are collected, not shrunk (each shrink step
  would be a compile), and reported together.
Set CELLSPEC_RANDOM_CELLS / CELLSPEC_COMPILED_CELLS for more. Hypothesis is derandomized, so every
run tries the same cells.
"""

import os
import textwrap

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cellspec.autodiff import differentiate
from cellspec.build import compile_spec
from cellspec.errors import SpecError
from cellspec.gradcheck import check_model
from cellspec.reference import Reference
from run_built import RunFailure, run_built

RANDOM_CELLS = int(os.environ.get("CELLSPEC_RANDOM_CELLS", "200"))
# each compiled cell costs a Numba compile of its two kernels, about 2 s: the 40 take 80-100 s
# here; set more to run more
COMPILED_CELLS = int(os.environ.get("CELLSPEC_COMPILED_CELLS", "40"))
SIZES = {"input": 2, "hidden": 3}


class SpecWriter:
    """Draws one random cell: params are declared as expressions use them, so every param is
    used; each equation feeds the next, so every equation is used; a cell with a step index uses
    it in its first equation."""

    UNARY = ["sigmoid({})", "tanh({})", "relu({})", "softplus({})", "exp(tanh({}))", "log(1 + ({})**2)", "abs({})", "sqrt(1 + ({})**2)", "0.5*({})"]
    BINARY = ["({}) + ({})", "({}) - ({})", "({})*({})", "max({}, {})", "min({}, {})", "({})/(2 + ({})**2)",
              # log of a value SymPy cannot prove positive, in the branch where it is
              "where(({0}) > 0.1, log({0}), {1})"]
    # float functions of the step, for a cell that declares one
    STEP = ["({})*log(1 + t)", "({}) / max(t, 1)", "({})*exp(-0.5*t)"]
    STEP_BINARY = ["where(t % 2 == 0, {}, {})", "({}) + ({})*t/(1 + t)"]

    def __init__(self, draw, depth: int = 3):
        self.draw = draw
        self.depth = depth
        self.params: dict[str, str] = {}
        self.names: list[str] = []
        self.step = False

    def param(self, kind: str) -> str:
        # a matrix may be one used already: products that share a weight, or nest in each other
        used = [p for p in self.params if p[0] == kind]
        if kind in "WU" and used and self.draw(st.integers(0, 2)) == 0:
            return self.draw(st.sampled_from(used))
        name = f"{kind}{len(self.params)}"
        self.params[name] = {"W": "[hidden, input]", "U": "[hidden, hidden]", "b": "[hidden]"}[kind]
        return name

    def product(self, depth: int) -> str:
        """`U @ (operand)`, the operand any vector expression of a value, or a product."""
        kind = self.draw(st.integers(0, 3 if depth > 0 else 0))
        operand = self.draw(st.sampled_from(self.names))
        if kind == 1:
            # an expression of a value, never a bare param (W @ b is refused: a constant)
            operand = f"{self.expr(depth - 1)} + {operand}"
        elif kind == 2:
            operand = f"{self.param('W')} @ x"
        elif kind == 3:
            operand = self.product(depth - 1)
        return f"{self.param('U')} @ ({operand})"

    def expr(self, depth: int) -> str:
        choice = self.draw(st.integers(0, 11 if depth > 0 else 3))
        if choice == 0:
            return self.draw(st.sampled_from(self.names))
        if choice == 1:
            return self.param("b")
        if choice == 2:
            return f"{self.param('W')} @ x"
        if choice == 3:
            return self.product(depth)
        if choice <= 5:
            return self.draw(st.sampled_from(self.UNARY)).format(self.expr(depth - 1))
        if choice <= 7:
            return self.draw(st.sampled_from(self.BINARY)).format(self.expr(depth - 1), self.expr(depth - 1))
        if choice == 8:
            return f"where(({self.expr(depth - 1)}) > ({self.expr(depth - 1)}), {self.expr(depth - 1)}, {self.expr(depth - 1)})"
        if choice == 9:
            inner = f"where(({self.expr(depth - 1)}) > 0, {self.expr(depth - 1)}, {self.expr(depth - 1)})"
            return f"where(({self.expr(depth - 1)}) > ({self.expr(depth - 1)}), {inner}, {self.expr(depth - 1)})"
        if choice == 10 and self.step:
            return self.draw(st.sampled_from(self.STEP)).format(self.expr(depth - 1))
        if choice == 11 and self.step:
            return self.draw(st.sampled_from(self.STEP_BINARY)).format(self.expr(depth - 1), self.expr(depth - 1))
        return self.product(depth)

    def spec(self) -> str:
        draw = self.draw
        two_inputs = draw(st.booleans())
        self.step = draw(st.integers(0, 2)) == 0
        states = ["h", "c"][: draw(st.integers(1, 2))]
        self.names = list(states) + (["u"] if two_inputs else [])
        count = draw(st.integers(len(states), len(states) + 2))
        equations = []
        for k in range(count):
            body = self.expr(draw(st.integers(1, self.depth)))
            if k == 0:
                body = f"{body} + {self.param('W')} @ x" + (" + u" if two_inputs else "")
                if self.step:
                    # the step is used at least once, in a float function
                    body = draw(st.sampled_from(self.STEP)).format(body)
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
            """
        ) + ("step: t\n" if self.step else "") + "params:\n" + "".join(f"  {p}: {shape}\n" for p, shape in self.params.items()) + (
            "equations:\n" + "\n".join(equations)
            + f"\nupdate: {{{', '.join(f'{s}: {e}' for s, e in updates.items())}}}\noutput: e{count - 1}\n"
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
    # eps 1e-5: central differences then carry ~1e-10 of rounding and ~1e-10 of truncation, so
    # that a gradient of 1e-3 (nested quotients, a step that divides) still resolves to 1e-6
    # (with eps 1e-6, e0: (b0/(2 + (b1/(2 + (W2 @ x)**2))**2) + W3 @ x) / max(t, 1) measured
    # 1.4e-6 on W2 from rounding alone); random points sit away from the kinks of relu, abs,
    # max, min and where with probability one
    result = check_model(ref, x, state, rng, eps=1e-5, directions=2)
    assert result.worst < 1e-6, (text, result.errors)


def test_random_cells_compile_and_equal_the_reference(tmp_path):
    texts = []

    @settings(max_examples=COMPILED_CELLS, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(text=random_specs(depth=2))
    def draw(text):
        texts.append(text)

    draw()
    counts = {"ran": 0, "sizes refused": 0, "constant condition": 0}
    failures = []
    texts = list(dict.fromkeys(texts))
    for text in texts:
        folder = tmp_path / f"cell{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        path = folder / "random_cell.yaml"
        path.write_text(text)
        try:
            built = compile_spec(str(path))
            counts[{"ran": "ran", "refused": "sizes refused"}[run_built(built, text=text)]] += 1
        except SpecError as e:
            # the one refusal the generator can meet: where(h > h, ...) has a constant condition
            if "this condition is always" in e.message:
                counts["constant condition"] += 1
            else:
                failures.append(f"build: SpecError: {e}\n{text}")
        except RunFailure as e:
            failures.append(str(e))
        except Exception as e:  # noqa: BLE001 - a build that crashes is a failure like the others
            failures.append(f"build: {type(e).__name__}: {e}\n{text}")
    print(f"compiled random cells: {counts}, {len(failures)} failed")
    assert not failures, f"{len(failures)} of {len(texts)} cells failed:\n\n" + "\n\n".join(failures)
    assert counts["ran"] >= len(texts) // 2, counts
