"""The nine LSTM variants of Greff et al. 2017, "LSTM: A search space odyssey" (IEEE TNNLS 28(10),
arXiv 1503.04069), against NumPy references written here from the paper's equations.

The paper's vanilla LSTM (Section II), per step, with y the block output (the state `h` of the
specs) and g = h = tanh:

    z = g(W_z x + R_z y[t-1] + b_z)                          block input
    i = sigmoid(W_i x + R_i y[t-1] + p_i * c[t-1] + b_i)     input gate
    f = sigmoid(W_f x + R_f y[t-1] + p_f * c[t-1] + b_f)     forget gate
    c = z * i + c[t-1] * f                                   cell
    o = sigmoid(W_o x + R_o y[t-1] + p_o * c + b_o)          output gate (peeps at the new c)
    y = h(c) * o                                             block output

and its eight variants (Section III): NIG i = 1, NFG f = 1, NOG o = 1, NIAF g(x) = x,
NOAF h(x) = x, NP no peepholes, CIFG f = 1 - i, FGR the gates' pre-activations also take
R_<a><b> a[t-1] for every pair of gates a, b in {i, f, o}.

Each reference below is written out by hand, one time step at a time, independently of the
specs and of the generated code; only the parameter values are taken from the generated cell.
"""

import numpy as np
import pytest

from conftest import generated
from parity import relative_error

T, B, N_IN, N_HID = 7, 3, 5, 6
TOL = 1e-12


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def affine(p, gate, x_t, y_prev):
    """W_gate x + R_gate y[t-1] + b_gate for a batch: x_t [B, input], y_prev [B, hidden]."""
    return x_t @ p["W_" + gate].T + y_prev @ p["R_" + gate].T + p["b_" + gate]


# ---------------------------------------------------------------- references, one per variant


def ref_v(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c)
        f = sigmoid(affine(p, "f", x_t, y) + p["p_f"] * c)
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c)
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_nig(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = 1.0
        f = sigmoid(affine(p, "f", x_t, y) + p["p_f"] * c)
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c)
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_nfg(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c)
        f = 1.0
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c)
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_nog(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c)
        f = sigmoid(affine(p, "f", x_t, y) + p["p_f"] * c)
        c = z * i + c * f
        o = 1.0
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_niaf(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = affine(p, "z", x_t, y)  # g(x) = x
        i = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c)
        f = sigmoid(affine(p, "f", x_t, y) + p["p_f"] * c)
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c)
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_noaf(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c)
        f = sigmoid(affine(p, "f", x_t, y) + p["p_f"] * c)
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c)
        y = c * o  # h(x) = x
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_np(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = sigmoid(affine(p, "i", x_t, y))
        f = sigmoid(affine(p, "f", x_t, y))
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y))
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_cifg(p, x, s):
    y, c = s["h"], s["c"]
    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c)
        f = 1.0 - i
        c = z * i + c * f
        o = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c)
        y = np.tanh(c) * o
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c}


def ref_fgr(p, x, s):
    y, c, i, f, o = s["h"], s["c"], s["i"], s["f"], s["o"]

    def gates_in(to, i_prev, f_prev, o_prev):
        # R_<from><to>: the previous step's gate <from> into gate <to>
        return i_prev @ p["R_i" + to].T + f_prev @ p["R_f" + to].T + o_prev @ p["R_o" + to].T

    ys = []
    for x_t in x:
        z = np.tanh(affine(p, "z", x_t, y))
        i_new = sigmoid(affine(p, "i", x_t, y) + p["p_i"] * c + gates_in("i", i, f, o))
        f_new = sigmoid(affine(p, "f", x_t, y) + p["p_f"] * c + gates_in("f", i, f, o))
        c = z * i_new + c * f_new
        o_new = sigmoid(affine(p, "o", x_t, y) + p["p_o"] * c + gates_in("o", i, f, o))
        y = np.tanh(c) * o_new
        i, f, o = i_new, f_new, o_new
        ys.append(y)
    return np.stack(ys), {"h": y, "c": c, "i": i, "f": f, "o": o}


VARIANTS = {
    "greff_v": ref_v,
    "greff_nig": ref_nig,
    "greff_nfg": ref_nfg,
    "greff_nog": ref_nog,
    "greff_niaf": ref_niaf,
    "greff_noaf": ref_noaf,
    "greff_np": ref_np,
    "greff_cifg": ref_cifg,
    "greff_fgr": ref_fgr,
}

# The parameters each variant has, in the paper's names: what the variant removes is absent.
_W = {"W_z", "W_i", "W_f", "W_o", "R_z", "R_i", "R_f", "R_o", "b_z", "b_i", "b_f", "b_o"}
_P = {"p_i", "p_f", "p_o"}
_FGR = {"R_" + a + b for a in "ifo" for b in "ifo"}


def _without(gate):
    return {n for n in _W | _P if not n.endswith("_" + gate)}


PARAMS = {
    "greff_v": _W | _P,
    "greff_nig": _without("i"),
    "greff_nfg": _without("f"),
    "greff_nog": _without("o"),
    "greff_niaf": _W | _P,
    "greff_noaf": _W | _P,
    "greff_np": _W,
    "greff_cifg": _without("f"),
    "greff_fgr": _W | _P | _FGR,
}


def _random_state(cell, rng):
    state = {}
    for name, _dim in cell.STATES:
        if name in ("i", "f", "o"):
            state[name] = rng.uniform(0.0, 1.0, size=(B, N_HID))  # gate activations lie in (0, 1)
        else:
            state[name] = rng.normal(size=(B, N_HID))
    return state


def _check(name, cell, x, state):
    y, final, _tape = cell.forward(x, state=state)
    start = state if state is not None else {n: np.zeros((B, N_HID)) for n, _ in cell.STATES}
    y_ref, final_ref = VARIANTS[name](cell.params, x, start)
    assert y.shape == (T, B, N_HID)
    assert relative_error(y, y_ref) < TOL, (name, "y", relative_error(y, y_ref))
    assert set(final) == set(final_ref)
    for k in final_ref:
        assert relative_error(final[k], final_ref[k]) < TOL, (name, k, relative_error(final[k], final_ref[k]))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_params_are_the_papers(name):
    cell = generated(name).Cell(input=N_IN, hidden=N_HID, seed=0, dtype="float64")
    assert set(cell.params) == PARAMS[name]
    expected_states = {"h", "c", "i", "f", "o"} if name == "greff_fgr" else {"h", "c"}
    assert {n for n, _ in cell.STATES} == expected_states


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forward_matches_reference(name):
    cell = generated(name).Cell(input=N_IN, hidden=N_HID, seed=0, dtype="float64")
    rng = np.random.default_rng(sorted(VARIANTS).index(name))
    x = rng.normal(size=(T, B, N_IN))
    _check(name, cell, x, _random_state(cell, rng))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forward_matches_reference_zero_state_large_weights(name):
    """From the zero state (state=None), with weights three times the default init so the
    sigmoids and tanhs leave their linear range."""
    cell = generated(name).Cell(input=N_IN, hidden=N_HID, seed=1, dtype="float64")
    for k in cell.params:
        cell.params[k] = 3.0 * cell.params[k]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(T, B, N_IN))
    _check(name, cell, x, None)
