"""Stacks of layers: a depth-gated LSTM reads the memory cell of the layer below, and gradients
flow back through every link."""

import numpy as np
import pytest

from cellspec.gradcheck import check_model
from cellspec.stack import Stack

from conftest import generated

peephole = generated("lstm_peephole")
depth_gated = generated("lstm_depth_gated")
lstm = generated("lstm")
gru = generated("gru")


def depth_gated_stack(dtype="float64"):
    layers = [
        peephole.Cell(input=3, hidden=4, seed=0, dtype=dtype),
        depth_gated.Cell(input=4, hidden=4, seed=1, dtype=dtype),
        depth_gated.Cell(input=4, hidden=4, seed=2, dtype=dtype),
    ]
    return Stack(layers, links=[{}, {"c_low": "c"}, {"c_low": "c"}])


def test_depth_gated_stack_gradients_match_finite_differences():
    stack = depth_gated_stack()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2, 3))
    state = {k: 0.5 * rng.normal(size=(2, 4)) for k, _ in stack.STATES}
    result = check_model(stack, x, state, rng)
    # central differences with eps=1e-6: ~1e-9 noise; a missing link would give errors of order 1
    assert result.worst < 1e-7, result.errors
    # the gradient reaches the bottom layer through the depth gate too
    assert result.errors["param 0.W_i"] < 1e-7


def test_depth_gate_reads_the_lower_cell_at_the_same_step():
    stack = depth_gated_stack()
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    y, final, tape = stack.forward(x)
    lower_c = tape.tapes[0].sequence("c")
    assert np.array_equal(tape.fed[1]["c_low"], lower_c)
    assert np.array_equal(tape.fed[1]["x"], tape.tapes[0].sequence("h"))
    # zeroing the depth gate's share changes the upper cell
    stack.layers[1].params["w_ld"][:] = 0.0
    stack.layers[1].params["b_d"][:] = -50.0
    y2, _, _ = stack.forward(x)
    assert not np.allclose(y, y2)


def test_plain_stack_equals_running_layers_by_hand():
    a, b = lstm.Cell(input=3, hidden=5, seed=0), gru.Cell(input=5, hidden=4, seed=1)
    stack = Stack([a, b])
    x = np.random.default_rng(2).normal(size=(6, 2, 3))
    y, final, _ = stack.forward(x)
    y_a, s_a, _ = a.forward(x)
    y_b, s_b, _ = b.forward(y_a)
    assert np.array_equal(y, y_b)
    assert set(final) == {"0.h", "0.c", "1.h"}
    assert np.array_equal(final["1.h"], s_b["h"])


def test_dseq_is_the_gradient_at_every_step_of_a_state():
    cell = lstm.Cell(input=3, hidden=4, seed=0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 2, 3))
    w = rng.normal(size=(5, 2, 4))
    y, _, tape = cell.forward(x)
    # a loss on every step's c: sum(c[1:] * w)
    dx, dparams, _ = cell.backward(tape, np.zeros_like(y), dseq={"c": w})
    eps, i = 1e-6, (2, 1, 0)
    x_up, x_down = x.copy(), x.copy()
    x_up[i] += eps
    x_down[i] -= eps
    loss = lambda x_: np.sum(cell.forward(x_)[2].sequence("c") * w)
    assert abs((loss(x_up) - loss(x_down)) / (2 * eps) - dx[i]) < 1e-8


@pytest.mark.parametrize(
    "links, message",
    [
        ([{}, {}, {"c_low": "c"}], "layer 1 input 'c_low' needs a link"),
        ([{}, {"c_low": "q"}, {"c_low": "c"}], "layer 0 has no output or state 'q'"),
        ([{}, {"c_low": "c", "z": "c"}, {"c_low": "c"}], "layer 1 has no input z"),
        ([{"x": "h"}, {"c_low": "c"}, {"c_low": "c"}], "layer 0 reads the stack's input"),
    ],
)
def test_bad_links_are_refused(links, message):
    layers = depth_gated_stack().layers
    with pytest.raises(ValueError, match=message):
        Stack(layers, links)


def test_sizes_must_agree_across_links():
    with pytest.raises(ValueError, match=r"layer 1 input 'x' is \[input=3\]"):
        Stack([lstm.Cell(input=3, hidden=5), gru.Cell(input=3, hidden=4)])
