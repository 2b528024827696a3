"""Every function of the spec language at the extremes, through the whole compiler, in both dtypes.

One cell has an output per function, of an input set to extreme values: the forward value and the
derived derivative (the backward pass with dy = 1 for that output) must be finite wherever the math
is, and equal to a float64 reference of the function. This catches, e.g., a softplus derivative
printed as exp(x)/(1 + exp(x)) (inf/inf at 1e4) or a sigmoid computed as 1/(1 + exp(-x)) in a form
that overflows.
"""

import numpy as np
import pytest

from modules import build_module_in

SPEC = """\
name: extremes
summary: one output per function of the spec language
cite: tests/test_extremes.py
inputs: {x: hidden, p: hidden, q: hidden}
state: {h: hidden}
params:
  b: [hidden]
equations:
  y_sigmoid: sigmoid(x)
  y_tanh: tanh(x)
  y_softplus: softplus(x)
  y_relu: relu(x)
  y_abs: abs(x)
  y_max: max(x, q)
  y_min: min(x, q)
  y_exp_gate: where(x > 0, exp(-x), exp(x))
  y_exp: exp(-p)
  y_log: log(p)
  y_sqrt: sqrt(p)
  h_new: tanh(b + y_sigmoid * h)
update: {h: h_new}
output: [y_sigmoid, y_tanh, y_softplus, y_relu, y_abs, y_max, y_min, y_exp_gate, y_exp, y_log, y_sqrt, h_new]
"""

X = np.array([-1e4, -1e3, -100.0, -88.5, -30.0, -1.0, -1e-30, 0.0, 1e-30, 1.0, 30.0, 88.5, 100.0, 1e3, 1e4])
P = np.array([1e-30, 1e-20, 1e-8, 1e-3, 0.5, 1.0, 2.0, 10.0, 30.0, 80.0, 1e3, 1e4, 1e8, 1e20, 1e30])  # > 0
Q = np.array([0.0, -1e4, 1e4, -88.5, 3.0, -1.0, 0.0, 1e-30, -1.0, 1.0, 30.0, 88.5, -100.0, 1e3, 0.0])


def _sigmoid(v):
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1 / (1 + e), e / (1 + e))


# name: (argument, value, derivative with respect to the argument), all float64
REFERENCE = {
    "y_sigmoid": ("x", _sigmoid, lambda v: _sigmoid(v) * (1 - _sigmoid(v))),
    "y_tanh": ("x", np.tanh, lambda v: 1 - np.tanh(v) ** 2),
    "y_softplus": ("x", lambda v: np.logaddexp(0.0, v), _sigmoid),
    "y_relu": ("x", lambda v: np.maximum(v, 0.0), lambda v: (v > 0).astype(float)),
    "y_abs": ("x", np.abs, np.sign),
    "y_max": ("x", lambda v: np.where(v >= Q, v, Q), lambda v: (v >= Q).astype(float)),
    "y_min": ("x", lambda v: np.where(v <= Q, v, Q), lambda v: (v <= Q).astype(float)),
    "y_exp_gate": ("x", lambda v: np.exp(-np.abs(v)), lambda v: np.where(v > 0, -np.exp(-np.abs(v)), np.exp(-np.abs(v)))),
    "y_exp": ("p", lambda v: np.exp(-v), lambda v: -np.exp(-v)),
    "y_log": ("p", np.log, lambda v: 1 / v),
    "y_sqrt": ("p", np.sqrt, lambda v: 0.5 / np.sqrt(v)),
}
TOL = {
    # float64: libm and the stable forms agree with NumPy's to a few ulp
    "float64": dict(rtol=1e-13, atol=1e-300),
    # float32: the rational tanh/sigmoid/softplus approximations are within 1e-6 absolute
    # (tests/test_fastmath.py); the rest within a few float32 ulp, relative
    "float32": dict(rtol=3e-6, atol=1e-6),
}


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    # module-scoped, so not the function-scoped build_module fixture: its one function instead
    return build_module_in(tmp_path_factory.mktemp("extremes"), SPEC, "extremes")[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_function_at_the_extremes(module, dtype):
    n = len(X)
    cell = module.Cell(dtype=dtype, seed=0, hidden=n)
    inputs = {k: v.astype(dtype)[None, None, :] for k, v in {"x": X, "p": P, "q": Q}.items()}
    y, _, tape = cell.forward(inputs)
    zeros = {name: np.zeros((1, 1, n), dtype) for name, _ in cell.OUTPUTS}
    tried = 0
    for name, (arg, value, derivative) in REFERENCE.items():
        v = inputs[arg][0, 0].astype(np.float64)  # the argument as the kernel saw it (rounded to dtype)
        with np.errstate(over="ignore", divide="ignore"):
            want, dwant = value(v), derivative(v)
        finite = np.isfinite(want) & (np.abs(want) < np.finfo(dtype).max)
        got = y[name][0, 0]
        assert np.all(np.isfinite(got[finite])), (name, dtype, got)
        np.testing.assert_allclose(got[finite], want[finite], **TOL[dtype], err_msg=f"{name} {dtype}")
        dx, _, _ = cell.backward(tape, {**zeros, name: np.ones((1, 1, n), dtype)})
        dgot = dx[arg][0, 0]
        dfinite = finite & np.isfinite(dwant) & (np.abs(dwant) < np.finfo(dtype).max)
        assert np.all(np.isfinite(dgot[dfinite])), (name, dtype, dgot)
        np.testing.assert_allclose(dgot[dfinite], dwant[dfinite], **TOL[dtype], err_msg=f"d{name} {dtype}")
        tried += int(finite.sum()) + int(dfinite.sum())
    # exp(-p) underflows to 0 and log/sqrt stay finite on every p > 0: nearly every point counts
    assert tried >= 2 * len(REFERENCE) * n - 10
