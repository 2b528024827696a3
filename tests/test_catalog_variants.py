"""The variant cells rnn_relu, lstmp, lstm_coupled_tf, lstm_fb1, mut1, mut2 and mut3.

Each is checked against a NumPy forward pass written here from its source's equations, in the
source's own notation, not from the spec or the generated code: the paper's gate names, the
framework's stacked weight layout where the source is a framework. The generated cell's params are
mapped into that notation, both sides run on the same random input and initial state, and y and
the final states must agree to float64 roundoff.

lstmp is also checked against PyTorch's nn.LSTM(proj_size=...) on the same weights, outputs and
every gradient, like tests/test_torch_parity.py; rnn_relu against nn.RNN(nonlinearity='relu').
Gradients against finite differences run for every spec in tests/test_gradients.py.
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

# PyTorch's CPU LSTM has no oneDNN kernel for proj_size > 0 and says so once; it falls back to its
# reference implementation, which is what the parity tests want anyway
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

# --- forward references, from the sources' equations ----------------------------------------------
#
# Each reference takes the cell's params `p`, the input x [T,B,input] and the initial states, and
# returns y [T,B,out] and the final states. Vectors are rows of a batch, so `W v` is `v @ W.T`.


def sigm(a):
    return 1.0 / (1.0 + np.exp(-a))


def ref_rnn_relu(p, x, s):
    """PyTorch's nn.RNN(nonlinearity='relu'): h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),
    with our b standing for b_ih + b_hh."""
    W_ih, W_hh, b = p["W"], p["U"], p["b"]
    h = s["h"]
    ys = []
    for x_t in x:
        h = np.maximum(x_t @ W_ih.T + h @ W_hh.T + b, 0.0)
        ys.append(h)
    return np.stack(ys), {"h": h}


def ref_lstmp(p, x, s):
    """PyTorch's nn.LSTM with proj_size (Sak et al. 2014 without peepholes), in PyTorch's stacked
    layout: gates = W_ih x + b_ih + W_hh h_{t-1} + b_hh split into i, f, g, o;
    c_t = f*c_{t-1} + i*g; h_t = W_hr (o * tanh(c_t))."""
    W_ih = np.concatenate([p["W_i"], p["W_f"], p["W_g"], p["W_o"]])  # [4H, input]
    W_hh = np.concatenate([p["U_i"], p["U_f"], p["U_g"], p["U_o"]])  # [4H, proj]
    bias = np.concatenate([p["b_i"], p["b_f"], p["b_g"], p["b_o"]])  # b_ih + b_hh
    W_hr = p["P"]  # [proj, H]
    h, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        gi, gf, gg, go = np.split(x_t @ W_ih.T + h @ W_hh.T + bias, 4, axis=1)
        c = sigm(gf) * c + sigm(gi) * np.tanh(gg)
        h = (sigm(go) * np.tanh(c)) @ W_hr.T
        ys.append(h)
    return np.stack(ys), {"h": h, "c": c}


def ref_lstm_coupled_tf(p, x, s):
    """TensorFlow's CoupledInputForgetGateLSTMCell.call with its defaults (no peepholes, no
    projection, no layer norm), in its own layout: one kernel W [input + num_proj, 3*num_units]
    over concat([inputs, m_prev]), a bias B initialised to zeros, and the constant
    forget_bias = 1.0 added inside the forget sigmoid:
        j, f, o = split(concat([x, m_prev]) @ W + B)
        f_act = sigm(f + forget_bias); c = f_act*c_prev + (1 - f_act)*tanh(j); m = sigm(o)*tanh(c)
    Our b_f stands for B_f + forget_bias (its init, ones, is TF's zeros plus 1)."""
    forget_bias = 1.0
    W = np.concatenate(
        [
            np.concatenate([p["W_g"].T, p["W_f"].T, p["W_o"].T], axis=1),  # rows for the inputs
            np.concatenate([p["U_g"].T, p["U_f"].T, p["U_o"].T], axis=1),  # rows for m_prev
        ]
    )
    B = np.concatenate([p["b_g"], p["b_f"] - forget_bias, p["b_o"]])
    c_prev, m_prev = s["c"], s["h"]
    ys = []
    for x_t in x:
        j, f, o = np.split(np.concatenate([x_t, m_prev], axis=1) @ W + B, 3, axis=1)
        f_act = sigm(f + forget_bias)
        c = f_act * c_prev + (1 - f_act) * np.tanh(j)
        m = sigm(o) * np.tanh(c)
        ys.append(m)
        c_prev, m_prev = c, m
    return np.stack(ys), {"h": m_prev, "c": c_prev}


def ref_lstm_fb1(p, x, s):
    """Jozefowicz et al. 2015, section 2.2, in the paper's names: i is the tanh candidate, j the
    sigmoid input gate; c_t = c_{t-1}*f_t + i_t*j_t, h_t = tanh(c_t)*o_t. The paper prints
    o_t = tanh(...); the spec (and this reference) keeps the usual sigmoid output gate."""
    W_xi, W_hi, b_i = p["W_g"], p["U_g"], p["b_g"]
    W_xj, W_hj, b_j = p["W_i"], p["U_i"], p["b_i"]
    W_xf, W_hf, b_f = p["W_f"], p["U_f"], p["b_f"]
    W_xo, W_ho, b_o = p["W_o"], p["U_o"], p["b_o"]
    h, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        i_t = np.tanh(x_t @ W_xi.T + h @ W_hi.T + b_i)
        j_t = sigm(x_t @ W_xj.T + h @ W_hj.T + b_j)
        f_t = sigm(x_t @ W_xf.T + h @ W_hf.T + b_f)
        o_t = sigm(x_t @ W_xo.T + h @ W_ho.T + b_o)
        c = c * f_t + i_t * j_t
        h = np.tanh(c) * o_t
        ys.append(h)
    return np.stack(ys), {"h": h, "c": c}


# Jozefowicz, Zaremba & Sutskever 2015, section 3, in the paper's names (h_t -> h_{t+1}).


def ref_mut1(p, x, s):
    """z = sigm(W_xz x_t + b_z); r = sigm(W_xr x_t + W_hr h_t + b_r);
    h_{t+1} = tanh(W_hh (r*h_t) + tanh(x_t) + b_h)*z + h_t*(1 - z)."""
    W_xz, b_z = p["W_z"], p["b_z"]
    W_xr, W_hr, b_r = p["W_r"], p["U_r"], p["b_r"]
    W_hh, b_h = p["U_n"], p["b_n"]
    h = s["h"]
    ys = []
    for x_t in x:
        z = sigm(x_t @ W_xz.T + b_z)
        r = sigm(x_t @ W_xr.T + h @ W_hr.T + b_r)
        h = np.tanh((r * h) @ W_hh.T + np.tanh(x_t) + b_h) * z + h * (1 - z)
        ys.append(h)
    return np.stack(ys), {"h": h}


def ref_mut2(p, x, s):
    """z = sigm(W_xz x_t + W_hz h_t + b_z); r = sigm(x_t + W_hr h_t + b_r);
    h_{t+1} = tanh(W_hh (r*h_t) + W_xh x_t + b_h)*z + h_t*(1 - z)."""
    W_xz, W_hz, b_z = p["W_z"], p["U_z"], p["b_z"]
    W_hr, b_r = p["U_r"], p["b_r"]
    W_xh, W_hh, b_h = p["W_n"], p["U_n"], p["b_n"]
    h = s["h"]
    ys = []
    for x_t in x:
        z = sigm(x_t @ W_xz.T + h @ W_hz.T + b_z)
        r = sigm(x_t + h @ W_hr.T + b_r)
        h = np.tanh((r * h) @ W_hh.T + x_t @ W_xh.T + b_h) * z + h * (1 - z)
        ys.append(h)
    return np.stack(ys), {"h": h}


def ref_mut3(p, x, s):
    """z = sigm(W_xz x_t + W_hz tanh(h_t) + b_z); r = sigm(W_xr x_t + W_hr h_t + b_r);
    h_{t+1} = tanh(W_hh (r*h_t) + W_xh x_t + b_h)*z + h_t*(1 - z)."""
    W_xz, W_hz, b_z = p["W_z"], p["U_z"], p["b_z"]
    W_xr, W_hr, b_r = p["W_r"], p["U_r"], p["b_r"]
    W_xh, W_hh, b_h = p["W_n"], p["U_n"], p["b_n"]
    h = s["h"]
    ys = []
    for x_t in x:
        z = sigm(x_t @ W_xz.T + np.tanh(h) @ W_hz.T + b_z)
        r = sigm(x_t @ W_xr.T + h @ W_hr.T + b_r)
        h = np.tanh((r * h) @ W_hh.T + x_t @ W_xh.T + b_h) * z + h * (1 - z)
        ys.append(h)
    return np.stack(ys), {"h": h}


# name -> (reference, sizes, {state: dim}); mut1 and mut2 add x_t elementwise, so input == hidden
CELLS = {
    "rnn_relu": (ref_rnn_relu, {"input": 5, "hidden": 6}, {"h": "hidden"}),
    "lstmp": (ref_lstmp, {"input": 5, "hidden": 7, "proj": 4}, {"h": "proj", "c": "hidden"}),
    "lstm_coupled_tf": (ref_lstm_coupled_tf, {"input": 5, "hidden": 6}, {"h": "hidden", "c": "hidden"}),
    "lstm_fb1": (ref_lstm_fb1, {"input": 5, "hidden": 6}, {"h": "hidden", "c": "hidden"}),
    "mut1": (ref_mut1, {"input": 6, "hidden": 6}, {"h": "hidden"}),
    "mut2": (ref_mut2, {"input": 6, "hidden": 6}, {"h": "hidden"}),
    "mut3": (ref_mut3, {"input": 5, "hidden": 6}, {"h": "hidden"}),
}

# Both sides compute the same formulas in float64, in different orders of summation (BLAS, fused
# products): agreement is a few ulps of values of order 1 after T steps, far below 1e-12; a wrong
# gate, sign or index gives errors of order 0.1.
TOL_REFERENCE = 1e-12


def forward_errors(name, *, scaled_params, zero_state, T=6, B=3, seed=0):
    ref, sizes, states = CELLS[name]
    cell = generated(name).Cell(seed=seed, dtype="float64", **sizes)
    rng = np.random.default_rng(seed + 100)
    if scaled_params:
        # the init scale 1/sqrt(hidden) keeps every gate near 0.5; weights of scale ~1 drive the
        # sigmoids and tanhs into their curved and saturated ranges
        cell.params = {k: rng.uniform(-1.0, 1.0, size=v.shape) for k, v in cell.params.items()}
    x = rng.normal(size=(T, B, sizes["input"]))
    state0 = None if zero_state else {s: rng.normal(size=(B, sizes[d])) for s, d in states.items()}

    y, final, _ = cell.forward(x.copy(), None if state0 is None else {k: v.copy() for k, v in state0.items()})
    y_ref, final_ref = ref(
        {k: v.copy() for k, v in cell.params.items()},
        x,
        {s: np.zeros((B, sizes[d])) for s, d in states.items()} if state0 is None else state0,
    )
    assert set(final) == set(states)
    errors = {"y": relative_error(y, y_ref)}
    for s in states:
        errors[f"final {s}"] = relative_error(final[s], final_ref[s])
    return errors


@pytest.mark.parametrize("scaled_params", [False, True], ids=["init-params", "scaled-params"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_forward_matches_reference(name, scaled_params):
    """Random input and random initial states, with the cell's own params as initialised and
    with params of scale ~1."""
    assert_errors_below(forward_errors(name, scaled_params=scaled_params, zero_state=False), TOL_REFERENCE)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_forward_from_zero_state_matches_reference(name):
    """state=None means zeros."""
    assert_errors_below(forward_errors(name, scaled_params=True, zero_state=True, T=3, seed=1), TOL_REFERENCE)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_reference_comparison_detects_a_wrong_weight(name):
    """The comparison is sharp: perturbing one recurrent weight of the cell by 1e-6 (after the
    reference saw the unperturbed params) shows up far above TOL_REFERENCE."""
    ref, sizes, states = CELLS[name]
    cell = generated(name).Cell(seed=2, dtype="float64", **sizes)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 2, sizes["input"]))
    state0 = {s: rng.normal(size=(2, sizes[d])) for s, d in states.items()}
    y_ref, _ = ref({k: v.copy() for k, v in cell.params.items()}, x, state0)
    key = next(k for k in cell.params if k.startswith("U"))
    cell.params[key] = cell.params[key].copy()
    cell.params[key][0, 0] += 1e-6
    y, _, _ = cell.forward(x, state0)
    assert relative_error(y, y_ref) > 1e3 * TOL_REFERENCE


@pytest.mark.parametrize("name", ["mut1", "mut2"])
def test_mut1_mut2_need_input_equal_to_hidden(name):
    """x_t enters elementwise (tanh(x_t) in MUT1, x_t in MUT2's reset gate): sizes must agree."""
    with pytest.raises(ValueError):
        generated(name).Cell(input=5, hidden=6)


# --- initialisation ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 7])
def test_lstm_fb1_forget_bias_initialises_to_one(seed, dtype):
    """Jozefowicz et al.'s LSTM-b: b_f starts at 1, every other param keeps the default init."""
    cell = generated("lstm_fb1").Cell(input=5, hidden=6, seed=seed, dtype=dtype)
    assert cell.params["b_f"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(cell.params["b_f"], np.ones(6, dtype))
    for k in ("b_i", "b_g", "b_o"):
        v = cell.params[k]
        assert np.all(np.abs(v) <= 1 / np.sqrt(6)) and np.unique(v).size == v.size, k


def test_lstm_coupled_tf_forget_bias_initialises_to_one():
    """TensorFlow's zero-initialised B plus its constant forget_bias=1.0."""
    cell = generated("lstm_coupled_tf").Cell(input=5, hidden=6, seed=0, dtype="float64")
    np.testing.assert_array_equal(cell.params["b_f"], np.ones(6))


def test_lstmp_initialises_like_torch():
    """nn.LSTM draws every param, projection included, from uniform(1/sqrt(hidden_size)), not
    1/sqrt(proj_size)."""
    cell = generated("lstmp").Cell(input=5, hidden=100, proj=4, seed=0, dtype="float64")
    for k, v in cell.params.items():
        assert np.max(np.abs(v)) <= 0.1, k
        assert np.max(np.abs(v)) > 0.05, k  # a bound of 1/sqrt(4) = 0.5 would exceed 0.1 somewhere


# --- PyTorch parity: lstmp vs nn.LSTM(proj_size=...), rnn_relu vs nn.RNN(nonlinearity='relu') --
#
# The harness and its tolerances are tests/parity.py's, as in tests/test_torch_parity.py. Our
# biases are b = b_ih + b_hh, so the gradient of each of ours must equal that of both PyTorch
# biases it stands for.

# the sizes of the parity runs; what maps onto what is each spec's `torch:` section
TORCH_SIZES = {"lstmp": {"input": 5, "hidden": 6, "proj": 3}, "rnn_relu": {"input": 5, "hidden": 6}}


def make_module_and_cell(name, dtype, seed):
    """Our cell, and the torch module its spec declares, of its sizes, with random weights of
    scale ~1."""
    cell = generated(name).Cell(dtype=dtype, seed=seed, **TORCH_SIZES[name])
    return make_torch_module(cell, dtype, seed), cell


def compare(name, dtype, T, B, zero_state=False, zero_dstate=False, seed=0):
    module, cell = make_module_and_cell(name, dtype, seed)
    return compare_with_torch(cell, module, dtype, T, B, zero_state=zero_state, zero_dstate=zero_dstate, seed=seed)


TORCH_CELLS = ["lstmp", "rnn_relu"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH_CELLS)
def test_matches_torch(name, dtype):
    """Random initial states and random gradients at the outputs and the final states."""
    assert_errors_below(compare(name, dtype, T=7, B=3), TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH_CELLS)
def test_matches_torch_single_step(name, dtype):
    """T=1: the initial state feeds the output directly."""
    assert_errors_below(compare(name, dtype, T=1, B=3, seed=1), TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH_CELLS)
def test_matches_torch_zero_state_and_no_final_gradient(name, dtype):
    """state=None and dstate=None both mean zeros, in forward and in backward."""
    errors = compare(name, dtype, T=5, B=2, zero_state=True, zero_dstate=True, seed=2)
    assert_errors_below(errors, TOLERANCES[dtype])


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_torch_parity_detects_a_wrong_weight(name):
    """Perturbing one entry of our projection (lstmp) or recurrent weight (rnn_relu) by 1e-6
    shows up above TOL_FLOAT64."""
    rng = np.random.default_rng(3)
    module, cell = make_module_and_cell(name, "float64", 3)
    copy_torch_weights_to_cell(module, cell)
    key = "P" if name == "lstmp" else "U"
    cell.params[key] = cell.params[key].copy()
    cell.params[key][0, 0] += 1e-6
    x = rng.normal(size=(4, 2, TORCH_SIZES[name]["input"]))
    states = torch_states(cell)
    state0 = {s: rng.normal(size=(2, n)) for s, n in states.items()}
    (_, out_dim), = cell.OUTPUTS
    ref = run_torch(module, x, state0, np.ones((4, 2, cell.dims[out_dim])), None, states, "float64")
    y, _, _ = cell.forward(x, state0)
    assert relative_error(y, ref["y"]) > TOL_FLOAT64
