"""Every spec of the catalog, discovered from specs/, against finite differences in float64."""

import numpy as np
import pytest

from cellspec.gradcheck import gradcheck

from conftest import SPEC_NAMES, generated

# Central differences with eps=1e-6 carry ~1e-10 truncation and rounding error per entry;
# a wrong derivative gives errors of order 1.
TOL = 1e-7


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_gradients_match_finite_differences(name):
    result = gradcheck(generated(name), T=5, B=2, seed=3)
    assert result.worst < TOL, result.errors


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_gradients_single_step(name):
    result = gradcheck(generated(name), T=1, B=1, seed=4)
    assert result.worst < TOL, result.errors


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    module = generated("lstm")
    real = module.Cell._backward

    def broken(self, tape, dy, dstate, dseq, dseq_given):
        dx, dparams, ds = real(self, tape, dy, dstate, dseq, dseq_given)
        dparams["b_f"] = dparams["b_f"] * 1.01
        return dx, dparams, ds

    monkeypatch.setattr(module.Cell, "_backward", broken)
    result = gradcheck(module, T=3, B=2)
    assert result.errors["param b_f"] > 1e-3
    assert result.errors["param b_i"] < TOL


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_float32_agrees_with_float64(name):
    module = generated(name)
    sizes = {d: 8 + 3 * i for i, d in enumerate(module.Cell.DIMS)}
    for a, b in module.Cell.CONSTRAINTS:
        sizes[b] = sizes[a]
    c64 = module.Cell(dtype="float64", seed=1, **sizes)
    c32 = module.Cell(dtype="float32", seed=1, **sizes)
    T, B = 50, 4
    rng = np.random.default_rng(0)
    x = {n: rng.normal(size=(T, B, sizes[d])) for n, d in c64.INPUTS}
    dy = {n: rng.normal(size=(T, B, sizes[d])) for n, d in c64.OUTPUTS}
    if len(c64.OUTPUTS) == 1:
        dy = dy[c64.OUTPUTS[0][0]]
    y64, s64, tape64 = c64.forward(x)
    y32, s32, tape32 = c32.forward({k: v.astype(np.float32) for k, v in x.items()})
    if isinstance(y64, dict):
        y64, y32 = np.concatenate(list(y64.values()), -1), np.concatenate(list(y32.values()), -1)
    assert y32.dtype == np.float32
    # float32 carries ~6e-8 relative rounding per operation; over 50 steps of a contracting
    # recurrence the error stays within a few 1e-6 of values of order 1
    assert np.max(np.abs(y32 - y64)) < 1e-5
    dx64, dp64, ds64 = c64.backward(tape64, dy)
    dy32 = {k: v.astype(np.float32) for k, v in dy.items()} if isinstance(dy, dict) else dy.astype(np.float32)
    dx32, dp32, ds32 = c32.backward(tape32, dy32)
    for k in dp64:
        assert dp32[k].dtype == np.float32
        scale = np.max(np.abs(dp64[k]))
        # weight gradients sum T*B products: relative error grows like sqrt(T*B) * 6e-8
        assert np.max(np.abs(dp32[k] - dp64[k])) <= 1e-4 * scale, k
