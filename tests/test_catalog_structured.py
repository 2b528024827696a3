"""Independent NumPy references, written from the papers, for the catalog cells that need the
structured features: the Clockwork RNN (Koutník et al. 2014) and the depth-gated LSTM (Yao et al.
2015)."""

import numpy as np

from conftest import generated
from parity import relative_error


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def clockwork_reference(W_I, W_H, b, x, h0, modules):
    """CW-RNN: g modules of k units with periods T_i = 2^i; at step t only modules with
    t mod T_i == 0 are executed; W_H is block upper-triangular (module i reads modules j >= i)."""
    hidden = W_H.shape[0]
    k = hidden // modules
    periods = [2**i for i in range(modules)]
    block = np.zeros((hidden, hidden))
    for i in range(modules):
        block[i * k:(i + 1) * k, i * k:] = 1.0
    W_H = W_H * block
    h = h0.copy()
    ys = []
    for t in range(x.shape[0]):
        new = np.tanh(x[t] @ W_I.T + h @ W_H.T + b)
        for i, period in enumerate(periods):
            if t % period == 0:
                h[:, i * k:(i + 1) * k] = new[:, i * k:(i + 1) * k]
        ys.append(h.copy())
    return np.stack(ys), h


def test_clockwork_matches_the_paper():
    module = generated("clockwork")
    cell = module.Cell(input=3, hidden=8, modules=4, seed=0)
    rng = np.random.default_rng(0)
    # weights outside the blocks are zero from the init on; put noise there to prove the
    # forward pass masks them
    cell.params["U"] = cell.params["U"] + rng.normal(size=(8, 8)) * (1 - cell.masks["U"])
    x = rng.normal(size=(9, 2, 3))
    h0 = rng.normal(size=(2, 8))
    y, state, _ = cell.forward(x, {"h": h0})
    y_ref, h_ref = clockwork_reference(cell.params["W"], cell.params["U"], cell.params["b"], x, h0, modules=4)
    assert relative_error(y, y_ref) < 1e-12
    assert relative_error(state["h"], h_ref) < 1e-12
    # the slowest module (period 8) changes only at t = 0 and t = 8
    assert np.array_equal(y[1:8, :, 6:], np.repeat(y[:1, :, 6:], 7, axis=0))


def test_clockwork_gradient_respects_the_mask():
    cell = generated("clockwork").Cell(input=3, hidden=8, modules=4, seed=0)
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    y, _, tape = cell.forward(x)
    _, dparams, _ = cell.backward(tape, np.ones_like(y))
    assert np.all(dparams["U"][cell.masks["U"] == 0] == 0)
    assert np.any(dparams["U"][cell.masks["U"] == 1] != 0)


def depth_gated_reference(p, x, c_low, h0, c0):
    """Yao et al. 2015: LSTM with peepholes plus the depth gate
    d = sigmoid(b_d + W_xd x + w_cd*c[t-1] + w_ld*c_low[t]), c = d*c_low + f*c[t-1] + i*tanh(...)."""
    h, c = h0.copy(), c0.copy()
    ys = []
    for t in range(x.shape[0]):
        xt = x[t]
        i = sigmoid(xt @ p["W_i"].T + h @ p["U_i"].T + p["p_i"] * c + p["b_i"])
        f = sigmoid(xt @ p["W_f"].T + h @ p["U_f"].T + p["p_f"] * c + p["b_f"])
        d = sigmoid(p["b_d"] + xt @ p["W_d"].T + p["w_cd"] * c + p["w_ld"] * c_low[t])
        c = d * c_low[t] + f * c + i * np.tanh(xt @ p["W_c"].T + h @ p["U_c"].T + p["b_c"])
        o = sigmoid(xt @ p["W_o"].T + h @ p["U_o"].T + p["p_o"] * c + p["b_o"])
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys), h, c


def test_depth_gated_lstm_matches_the_paper():
    cell = generated("lstm_depth_gated").Cell(input=3, hidden=5, seed=0)
    rng = np.random.default_rng(2)
    x, c_low = rng.normal(size=(6, 2, 3)), rng.normal(size=(6, 2, 5))
    h0, c0 = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    y, state, _ = cell.forward({"x": x, "c_low": c_low}, {"h": h0, "c": c0})
    y_ref, h_ref, c_ref = depth_gated_reference(cell.params, x, c_low, h0, c0)
    assert relative_error(y, y_ref) < 1e-12
    assert relative_error(state["h"], h_ref) < 1e-12 and relative_error(state["c"], c_ref) < 1e-12
