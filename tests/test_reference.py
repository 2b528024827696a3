"""The generated code of every catalog spec against the plain NumPy interpreter of its IR: the
same forward values and the same gradients, in float64. The interpreter has none of the schedule
(no hoisting, fusion or shared gradients), so this checks the schedule and the emitted kernels."""

import os

import numpy as np
import pytest

from cellspec.autodiff import differentiate
from cellspec.build import compile_spec
from cellspec.gradcheck import default_sizes
from cellspec.reference import Reference

from conftest import ROOT, SPEC_NAMES, generated


def close(a, b):
    if isinstance(a, dict):
        return all(close(a[k], b[k]) for k in a)
    scale = max(np.max(np.abs(b)), 1e-300)
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) <= 1e-12 * scale + 1e-300


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_generated_code_equals_the_reference_interpreter(name):
    built = compile_spec(os.path.join(ROOT, "specs", f"{name}.yaml"))
    module = generated(name)
    sizes = default_sizes(module)
    cell = module.Cell(dtype="float64", seed=0, **sizes)
    ref = Reference(built.cell, differentiate(built.cell), sizes, cell.params, cell.constants, cell.masks)
    rng = np.random.default_rng(7)
    T, B = 4, 3
    x = {n: rng.normal(size=(T, B, sizes[d])) for n, d in cell.INPUTS}
    x = x if len(x) > 1 else next(iter(x.values()))
    state = {n: rng.normal(size=(B, sizes[d])) for n, d in cell.STATES}
    y, final, tape = cell.forward(x, state)
    y_ref, final_ref, tape_ref = ref.forward(x, state)
    assert close(y, y_ref) and close(final, final_ref)
    dy = {k: rng.normal(size=v.shape) for k, v in y.items()} if isinstance(y, dict) else rng.normal(size=y.shape)
    dstate = {k: rng.normal(size=v.shape) for k, v in final.items()}
    dx, dparams, ds = cell.backward(tape, dy, dstate)
    dx_ref, dparams_ref, ds_ref = ref.backward(tape_ref, dy, dstate)
    assert close(dx, dx_ref)
    assert close(dparams, dparams_ref)
    assert close(ds, ds_ref)
