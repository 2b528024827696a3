"""Parity of the generated rnn, lstm, lstm_fb1 and gru cells with PyTorch's nn.RNN, nn.LSTM and
nn.GRU, on the same weights, inputs, initial states and incoming gradients (the harness:
tests/parity.py). What maps onto what is each spec's `torch:` section (the generated
`Cell.TORCH`), so these tests check the declaration too: a wrong gate order fails them.

Our single biases stand for sums of PyTorch's two (b = b_ih + b_hh; for the GRU b_r = b_ir + b_hr,
b_z = b_iz + b_hz, b_n = b_in, b_hn = b_hn), so the gradient of each of our biases must equal
the gradient of every PyTorch bias it stands for.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import generated
from parity import (
    TOL_FLOAT64,
    TOLERANCES,
    assert_errors_below,
    compare_with_torch,
    copy_torch_weights_to_cell,
    make_torch_module,
    relative_error,
    run_torch,
    torch_states,
)

ALL_CELLS = ["rnn", "lstm", "lstm_fb1", "gru"]


def make_module_and_cell(name: str, n_input: int, n_hidden: int, dtype: str, seed: int):
    """Our cell, and the one-layer torch module its spec declares, of its sizes, with random
    weights of scale ~1."""
    cell = generated(name).Cell(input=n_input, hidden=n_hidden, dtype=dtype, seed=seed)
    return make_torch_module(cell, dtype, seed), cell


def compare(name, dtype, T, B, n_input=5, n_hidden=6, zero_state=False, zero_dstate=False, seed=0):
    """Run both implementations on the same random problem; return {label: relative error}."""
    module, cell = make_module_and_cell(name, n_input, n_hidden, dtype, seed)
    return compare_with_torch(cell, module, dtype, T, B, zero_state=zero_state, zero_dstate=zero_dstate, seed=seed)


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
    copy_torch_weights_to_cell(module, cell)
    key = cell.TORCH["weight_hh"][-1]  # the last gate's recurrent weight: U, U_o, U_n
    cell.params[key] = cell.params[key].copy()
    cell.params[key][0, 0] += 1e-6
    x = rng.normal(size=(T, B, n_input))
    states = torch_states(cell)
    state0 = {s: rng.normal(size=(B, n)) for s, n in states.items()}
    ref = run_torch(module, x, state0, np.ones((T, B, n_hidden)), None, states, "float64")
    y, _, _ = cell.forward(x, state0)
    assert relative_error(y, ref["y"]) > TOL_FLOAT64
