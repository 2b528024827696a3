"""Parity of the generated rnn, lstm and gru cells with PyTorch's nn.RNN, nn.LSTM and nn.GRU, on
the same weights, inputs, initial states and incoming gradients (the harness: tests/parity.py).

Our single biases stand for sums of PyTorch's two (b = b_ih + b_hh; for the GRU b_r = b_ir + b_hr,
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
from parity import (  # noqa: E402
    TOL_FLOAT64,
    TOLERANCES,
    assert_errors_below,
    compare_with_torch,
    copy_torch_weights_to_cell,
    make_torch_module,
    relative_error,
    run_torch,
)

# --- how each of our cells maps onto its PyTorch module -----------------------------------------

# Gate suffixes in the order of PyTorch's stacked rows.
GATES = {"rnn": [""], "lstm": ["_i", "_f", "_g", "_o"], "gru": ["_r", "_z", "_n"]}
STATE_NAMES = {"rnn": ["h"], "lstm": ["h", "c"], "gru": ["h"]}
MODULES = {"rnn": rnn, "lstm": lstm, "gru": gru}
TORCH_KINDS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}

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
# our name -> list of (torch param name, gate index)
PARAM_MAPS = {
    name: {
        **{f"W{g}": [("weight_ih_l0", k)] for k, g in enumerate(gates)},
        **{f"U{g}": [("weight_hh_l0", k)] for k, g in enumerate(gates)},
        **BIAS_SOURCES[name],
    }
    for name, gates in GATES.items()
}

ALL_CELLS = ["rnn", "lstm", "gru"]


def make_module_and_cell(name: str, n_input: int, n_hidden: int, dtype: str, seed: int):
    """A one-layer torch RNN/LSTM/GRU with random weights of scale ~1, and our cell of its sizes."""
    sizes = {"nonlinearity": "tanh"} if name == "rnn" else {}
    module = make_torch_module(TORCH_KINDS[name], dtype, seed, input_size=n_input, hidden_size=n_hidden, **sizes)
    return module, MODULES[name].Cell(input=n_input, hidden=n_hidden, dtype=dtype, seed=seed)


def compare(name, dtype, T, B, n_input=5, n_hidden=6, zero_state=False, zero_dstate=False, seed=0):
    """Run both implementations on the same random problem; return {label: relative error}."""
    module, cell = make_module_and_cell(name, n_input, n_hidden, dtype, seed)
    states = {s: n_hidden for s in STATE_NAMES[name]}
    return compare_with_torch(cell, module, PARAM_MAPS[name], len(GATES[name]), states, n_hidden, dtype,
                              T, B, zero_state=zero_state, zero_dstate=zero_dstate, seed=seed)


# --- the tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_matches_torch(name, dtype):
    """Random initial state and random gradients at the outputs and the final state."""
    errors = compare(name, dtype, T=7, B=3)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_matches_torch_single_step(name, dtype):
    """T=1: the recurrence runs once; the initial state feeds the output directly."""
    errors = compare(name, dtype, T=1, B=3, seed=1)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_matches_torch_zero_state_and_no_final_gradient(name, dtype):
    """state=None and dstate=None both mean zeros, in forward and in backward."""
    errors = compare(name, dtype, T=5, B=2, zero_state=True, zero_dstate=True, seed=2)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("name", ALL_CELLS)
def test_parity_check_detects_a_wrong_weight(name):
    """The comparison is sharp: perturbing one weight entry of ours by 1e-6 shows up above TOL_FLOAT64."""
    rng = np.random.default_rng(3)
    T, B, n_input, n_hidden = 4, 2, 5, 6
    module, cell = make_module_and_cell(name, n_input, n_hidden, "float64", 3)
    copy_torch_weights_to_cell(module, cell, PARAM_MAPS[name], len(GATES[name]))
    key = f"U{GATES[name][-1]}"
    cell.params[key] = cell.params[key].copy()
    cell.params[key][0, 0] += 1e-6
    x = rng.normal(size=(T, B, n_input))
    state0 = {s: rng.normal(size=(B, n_hidden)) for s in STATE_NAMES[name]}
    ref = run_torch(module, x, state0, np.ones((T, B, n_hidden)), None, {s: n_hidden for s in STATE_NAMES[name]}, "float64")
    y, _, _ = cell.forward(x, state0)
    assert relative_error(y, ref["y"]) > TOL_FLOAT64
