"""Parity of the generated rnn, lstm and gru cells with PyTorch's nn.RNN, nn.LSTM and nn.GRU.

Both sides get the same weights, inputs, initial states and incoming gradients; PyTorch's side
is differentiated by autograd through the loss

    sum(y * dy) + sum(h_T * dh_T) (+ sum(c_T * dc_T) for the LSTM),

so its gradients are exactly what `cell.backward(tape, dy, dstate)` must return. Our single
biases stand for sums of PyTorch's two (b = b_ih + b_hh; for the GRU b_r = b_ir + b_hr,
b_z = b_iz + b_hz, b_n = b_in, b_hn = b_hn), so the gradient of each of our biases must equal
the gradient of every PyTorch bias it stands for.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from generated import gru, lstm, rnn  # noqa: E402

# Relative error: max |ours - torch| / max |torch|.
# float64: both sides compute the same formulas in double precision; only the order of
# summation differs, so agreement is near machine epsilon (~1e-16) times a modest factor.
TOL_FLOAT64 = 1e-10
# float32: roundoff (~6e-8 per operation) accumulates through the T-step recurrence and the
# summed gradients, and both sides sum in different orders, so 1e-4 is the bound.
TOL_FLOAT32 = 1e-4

TOLERANCES = {"float64": TOL_FLOAT64, "float32": TOL_FLOAT32}
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}

# --- how each of our cells maps onto its PyTorch module -----------------------------------------

# Gate suffixes in the order of PyTorch's stacked rows.
GATES = {"rnn": [""], "lstm": ["_i", "_f", "_g", "_o"], "gru": ["_r", "_z", "_n"]}
STATE_NAMES = {"rnn": ["h"], "lstm": ["h", "c"], "gru": ["h"]}
MODULES = {"rnn": rnn, "lstm": lstm, "gru": gru}

# Which of PyTorch's bias rows (by gate index) each of our biases is the sum of:
# our name -> list of (torch bias name, gate index).
BIAS_SOURCES = {
    "rnn": {"b": [("bias_ih_l0", 0), ("bias_hh_l0", 0)]},
    "lstm": {
        f"b{g}": [("bias_ih_l0", k), ("bias_hh_l0", k)] for k, g in enumerate(GATES["lstm"])
    },
    "gru": {
        "b_r": [("bias_ih_l0", 0), ("bias_hh_l0", 0)],
        "b_z": [("bias_ih_l0", 1), ("bias_hh_l0", 1)],
        "b_n": [("bias_ih_l0", 2)],
        "b_hn": [("bias_hh_l0", 2)],
    },
}

ALL_CELLS = ["rnn", "lstm", "gru"]


def make_torch_module(name: str, n_input: int, n_hidden: int, dtype: str, seed: int) -> torch.nn.Module:
    """A one-layer, batch_first=False torch RNN/LSTM/GRU with random weights of scale ~1."""
    torch.manual_seed(seed)
    kw = dict(input_size=n_input, hidden_size=n_hidden, num_layers=1, bias=True, batch_first=False,
              dtype=TORCH_DTYPES[dtype])
    if name == "rnn":
        module = torch.nn.RNN(nonlinearity="tanh", **kw)
    elif name == "lstm":
        module = torch.nn.LSTM(**kw)
    else:
        module = torch.nn.GRU(**kw)
    # larger than the default 1/sqrt(hidden) so the nonlinearities are exercised away from 0
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


def torch_chunks(t: torch.Tensor, name: str) -> list[np.ndarray]:
    """Split a stacked torch weight/bias [gates*hidden, ...] into per-gate numpy arrays."""
    return [c.detach().numpy() for c in torch.chunk(t, len(GATES[name]), dim=0)]


def copy_torch_weights_to_cell(name: str, module: torch.nn.Module, cell) -> None:
    """Assign the module's weights to cell.params (split by gate, biases summed as our spec has them)."""
    sd = dict(module.named_parameters())
    new = {}
    for k, g in enumerate(GATES[name]):
        new[f"W{g}"] = torch_chunks(sd["weight_ih_l0"], name)[k]
        new[f"U{g}"] = torch_chunks(sd["weight_hh_l0"], name)[k]
    for ours, sources in BIAS_SOURCES[name].items():
        new[ours] = sum(torch_chunks(sd[tname], name)[k] for tname, k in sources)
    assert set(new) == set(cell.params), (sorted(new), sorted(cell.params))
    for key, value in new.items():
        value = np.ascontiguousarray(value, dtype=cell.dtype)
        assert value.shape == cell.params[key].shape, (key, value.shape, cell.params[key].shape)
        cell.params[key] = value


def torch_param_grad_for(name: str, ours: str, grads: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The torch gradient(s) our param `ours` must equal, each with a label."""
    if ours in BIAS_SOURCES[name]:
        return [(f"{t}[gate {k}]", torch_chunks(torch.from_numpy(grads[t]), name)[k])
                for t, k in BIAS_SOURCES[name][ours]]
    for k, g in enumerate(GATES[name]):
        if ours == f"W{g}":
            return [(f"weight_ih_l0[gate {k}]", torch_chunks(torch.from_numpy(grads["weight_ih_l0"]), name)[k])]
        if ours == f"U{g}":
            return [(f"weight_hh_l0[gate {k}]", torch_chunks(torch.from_numpy(grads["weight_hh_l0"]), name)[k])]
    raise KeyError(ours)


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref|; the reference must not be all zeros."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.all(np.isfinite(ours)), "non-finite values in ours"
    scale = np.max(np.abs(ref))
    assert scale > 0, "reference is all zeros: the comparison would be meaningless"
    return float(np.max(np.abs(ours - ref)) / scale)


def run_torch(name, module, x, state0, dy, dstate, dtype):
    """Forward and autograd backward in torch. state0/dstate: dict or None (zeros).

    Returns y, final states, input grad, initial-state grads, param grads (all numpy float64)."""
    tdt = TORCH_DTYPES[dtype]
    xt = torch.tensor(x, dtype=tdt, requires_grad=True)
    B, H = x.shape[1], module.hidden_size
    init = {}
    for s in STATE_NAMES[name]:
        value = np.zeros((B, H), dtype) if state0 is None else state0[s]
        init[s] = torch.tensor(value[None], dtype=tdt, requires_grad=True)  # [1,B,H]
    module.zero_grad(set_to_none=True)
    if name == "lstm":
        y, (hT, cT) = module(xt, (init["h"], init["c"]))
        final = {"h": hT[0], "c": cT[0]}
    else:
        y, hT = module(xt, init["h"])
        final = {"h": hT[0]}
    loss = (y * torch.tensor(dy, dtype=tdt)).sum()
    if dstate is not None:
        for s in STATE_NAMES[name]:
            loss = loss + (final[s] * torch.tensor(dstate[s], dtype=tdt)).sum()
    loss.backward()
    as_np = lambda t: t.detach().numpy().astype(np.float64)  # noqa: E731
    return {
        "y": as_np(y),
        "final": {s: as_np(v) for s, v in final.items()},
        "dx": as_np(xt.grad),
        "dstate0": {s: as_np(init[s].grad[0]) for s in STATE_NAMES[name]},
        "dparams": {n: as_np(p.grad) for n, p in module.named_parameters()},
    }


def compare_with_torch(name, dtype, T, B, n_input=5, n_hidden=6, zero_state=False, zero_dstate=False, seed=0):
    """Run both implementations on the same random problem; return {label: relative error}."""
    rng = np.random.default_rng(seed)
    module = make_torch_module(name, n_input, n_hidden, dtype, seed)
    cell = MODULES[name].Cell(input=n_input, hidden=n_hidden, dtype=dtype, seed=seed)
    copy_torch_weights_to_cell(name, module, cell)

    x = rng.normal(size=(T, B, n_input)).astype(dtype)
    state0 = None if zero_state else {s: rng.normal(size=(B, n_hidden)).astype(dtype) for s in STATE_NAMES[name]}
    dy = rng.normal(size=(T, B, n_hidden)).astype(dtype)
    dstate = None if zero_dstate else {s: rng.normal(size=(B, n_hidden)).astype(dtype) for s in STATE_NAMES[name]}

    ref = run_torch(name, module, x, state0, dy, dstate, dtype)

    # ours; pass copies so nothing our cell does can alter the inputs torch saw
    y, final, tape = cell.forward(x.copy(), None if state0 is None else {k: v.copy() for k, v in state0.items()})
    dx, dparams, dstate0 = cell.backward(tape, dy.copy(), None if dstate is None else {k: v.copy() for k, v in dstate.items()})

    assert y.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
    assert set(final) == set(STATE_NAMES[name]) and set(dstate0) == set(STATE_NAMES[name])
    assert set(dparams) == set(cell.params)

    errors = {"y": relative_error(y, ref["y"]), "dx": relative_error(dx, ref["dx"])}
    for s in STATE_NAMES[name]:
        errors[f"final {s}"] = relative_error(final[s], ref["final"][s])
        errors[f"d initial {s}"] = relative_error(dstate0[s], ref["dstate0"][s])
    for p in cell.params:
        assert dparams[p].shape == cell.params[p].shape and dparams[p].dtype == np.dtype(dtype), p
        for label, g in torch_param_grad_for(name, p, ref["dparams"]):
            errors[f"d{p} vs {label}"] = relative_error(dparams[p], g)
    return errors


def assert_errors_below(errors: dict[str, float], tol: float) -> None:
    bad = {k: v for k, v in errors.items() if not v < tol}  # `not <` also catches NaN
    worst = max(errors, key=errors.get)
    assert not bad, f"above {tol:g}: {bad}; worst {worst} = {errors[worst]:.3g}"


# --- the tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_matches_torch(name, dtype):
    """Random initial state and random gradients at the outputs and the final state."""
    errors = compare_with_torch(name, dtype, T=7, B=3)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_matches_torch_single_step(name, dtype):
    """T=1: the recurrence runs once; the initial state feeds the output directly."""
    errors = compare_with_torch(name, dtype, T=1, B=3, seed=1)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_matches_torch_zero_state_and_no_final_gradient(name, dtype):
    """state=None and dstate=None both mean zeros, in forward and in backward."""
    errors = compare_with_torch(name, dtype, T=5, B=2, zero_state=True, zero_dstate=True, seed=2)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("name", ALL_CELLS)
def test_parity_check_detects_a_wrong_weight(name):
    """The comparison is sharp: perturbing one weight entry of ours by 1e-6 shows up above TOL_FLOAT64."""
    rng = np.random.default_rng(3)
    T, B, n_input, n_hidden = 4, 2, 5, 6
    module = make_torch_module(name, n_input, n_hidden, "float64", 3)
    cell = MODULES[name].Cell(input=n_input, hidden=n_hidden, dtype="float64", seed=3)
    copy_torch_weights_to_cell(name, module, cell)
    key = f"U{GATES[name][-1]}"
    cell.params[key] = cell.params[key].copy()
    cell.params[key][0, 0] += 1e-6
    x = rng.normal(size=(T, B, n_input))
    state0 = {s: rng.normal(size=(B, n_hidden)) for s in STATE_NAMES[name]}
    ref = run_torch(name, module, x, state0, np.ones((T, B, n_hidden)), None, "float64")
    y, _, _ = cell.forward(x, state0)
    assert relative_error(y, ref["y"]) > TOL_FLOAT64
