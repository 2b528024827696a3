"""cellspec.Layer: a numpy layer over any generated cell, used the way nn.LSTM is: layers,
directions, dropout, batch-first arrays, lengths, params, files and torch's layout."""

import pathlib

import numpy as np
import pytest

import cellspec
from cellspec.gradcheck import check_model
from cellspec.layer_parts import spec_sha256
from cellspec.lengths import LengthsError
from cellspec.runtime import ShapeError, tied
from cellspec.stack import Stack

from conftest import ROOT, SPEC_NAMES, generated

lstm = generated("lstm")
lstmp = generated("lstmp")
gru = generated("gru")
depth_gated = generated("lstm_depth_gated")

# central differences with eps=1e-6 carry ~1e-9 noise here (losses over several layers and both
# directions); a wrong gradient gives errors of order 1 (as in test_gradients)
TOL = 1e-7

def random_inputs(layer, T, B, rng):
    """x as the layer takes it (a dict for a cell with several inputs), time-major."""
    xs = {n: rng.normal(size=(T, B, layer.dims[d])) for n, d in layer.module.Cell.INPUTS}
    return xs if len(xs) > 1 else xs[layer.module.Cell.INPUTS[0][0]]


def random_state(layer, B, rng):
    n = layer.num_layers * layer.num_directions
    return {s: 0.5 * rng.normal(size=(n, B, layer.dims[d])) for s, d in layer.module.Cell.STATES}


class FixedDropout:
    """A layer whose every forward draws the same dropout masks (it reseeds `layer.rng`), so
    that finite differences see one function."""

    def __init__(self, layer, seed=5):
        self.layer, self.seed, self.params = layer, seed, layer.params

    def forward(self, x, state):
        self.layer.rng = np.random.default_rng(self.seed)
        return self.layer.forward(x, state)

    def backward(self, tape, dy, dstate):
        return self.layer.backward(tape, dy, dstate)


# --- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("module, dims", [(lstm, dict(input=3, hidden=4)), (lstmp, dict(input=3, hidden=4, proj=2))])
def test_two_bidirectional_layers_with_dropout_match_finite_differences(module, dims):
    layer = cellspec.Layer(module, num_layers=2, bidirectional=True, dropout=0.4, seed=1, **dims)
    rng = np.random.default_rng(0)
    x, state = random_inputs(layer, 4, 3, rng), random_state(layer, 3, rng)
    model = FixedDropout(layer)
    result = check_model(model, x, state, rng)
    # every entry of every param group of both layers and directions, x and the initial state
    assert set(result.errors) == {f"param {k}" for k in layer.params} | {"input x"} | {f"state {s}" for s in state}
    assert result.worst < TOL, result.errors
    # and the dropout was on: the mask between the layers dropped some entries
    _, _, tape = model.forward(x, state)
    assert 0 < np.mean(tape.masks[0] == 0) < 1 and tape.masks[1] is None


def test_depth_gated_layers_link_the_lower_memory_and_match_finite_differences():
    layer = cellspec.Layer(depth_gated, num_layers=2, bidirectional=True, links={"c_low": "c"}, input=3, hidden=4, seed=2)
    rng = np.random.default_rng(1)
    x, state = random_inputs(layer, 4, 2, rng), random_state(layer, 2, rng)
    result = check_model(layer, x, state, rng)
    assert result.worst < TOL, result.errors
    # the upper cells read the lower cells' c, each in its own direction's frame: zero the depth
    # gate of an upper cell and its output changes
    y, _, _ = layer.forward(x, state)
    for d in range(2):
        layer.params[f"w_ld_l1{'_reverse' if d else ''}"][:] = 0.0
        layer.params[f"b_d_l1{'_reverse' if d else ''}"][:] = -50.0
        y2, _, _ = layer.forward(x, state)
        part = slice(4 * d, 4 * d + 4)
        assert not np.allclose(y[..., part], y2[..., part])
        y = y2


def test_gradients_with_lengths_match_finite_differences():
    layer = cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4, seed=3)
    rng = np.random.default_rng(12)
    x, state = random_inputs(layer, 4, 3, rng), random_state(layer, 3, rng)

    class WithLengths:
        params = layer.params

        def forward(self, x, state):
            return layer.forward(x, state, lengths=np.array([2, 4, 3]))

        def backward(self, tape, dy, dstate):
            return layer.backward(tape, dy, dstate)

    result = check_model(WithLengths(), x, state, rng)
    assert result.worst < TOL, result.errors


def test_a_missing_link_points_at_links():
    with pytest.raises(ValueError, match=r"layer 1 input 'c_low' needs a link to an output or state of layer 0 \(h_new, h, c\) in links="):
        cellspec.Layer(depth_gated, num_layers=2, input=3, hidden=4)
    with pytest.raises(ValueError, match="layer 0 has no output or state 'q'"):
        cellspec.Layer(depth_gated, num_layers=2, links={"c_low": "q"}, input=3, hidden=4)
    with pytest.raises(ValueError, match="layer 1 input 'x' reads the output of layer 0: it takes no link"):
        cellspec.Layer(depth_gated, num_layers=2, links={"c_low": "c", "x": "h"}, input=3, hidden=4)


def test_inference_below_a_state_link_equals_the_taped_forward():
    layer = cellspec.Layer(depth_gated, num_layers=3, bidirectional=True, links={"c_low": "c"}, input=3, hidden=4, seed=3)
    x = random_inputs(layer, 5, 2, np.random.default_rng(2))
    y, final, _ = layer.forward(x)
    y_i, final_i, tape = layer.forward(x, train=False)
    assert tape is None
    np.testing.assert_array_equal(y, y_i)
    for k in final:
        np.testing.assert_array_equal(final[k], final_i[k])


# --- what a layer computes ------------------------------------------------------------------


def test_two_bidirectional_layers_equal_their_cells_run_by_hand():
    layer = cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4, seed=4)
    rng = np.random.default_rng(3)
    x, state = random_inputs(layer, 5, 3, rng), random_state(layer, 3, rng)
    y, final, _ = layer.forward(x, state)
    below = x
    for k in range(2):
        fwd, rev = layer.cells[k]
        s = [{n: v[2 * k + d] for n, v in state.items()} for d in range(2)]
        y_f, final_f, _ = fwd.forward(below, s[0])
        y_r, final_r, _ = rev.forward(np.ascontiguousarray(below[::-1]), s[1])
        below = np.concatenate([y_f, y_r[::-1]], axis=-1)
        # the state's entry k*num_directions + d is layer k, direction d, as nn.LSTM's h_n
        for n in final:
            np.testing.assert_array_equal(final[n][2 * k], final_f[n])
            np.testing.assert_array_equal(final[n][2 * k + 1], final_r[n])
    np.testing.assert_array_equal(y, below)
    assert y.shape == (5, 3, 8) and final["h"].shape == (4, 3, 4)


def test_layers_of_lstmp_read_twice_the_projection():
    layer = cellspec.Layer(lstmp, num_layers=3, bidirectional=True, input=3, hidden=5, proj=2)
    assert [row[0].dims for row in layer.cells] == [{"input": 3, "proj": 2, "hidden": 5}] + [{"input": 4, "proj": 2, "hidden": 5}] * 2
    assert layer.params["W_i_l1_reverse"].shape == (5, 4)


@pytest.mark.parametrize("cells, links", [
    ([lstm.Cell(input=3, hidden=4, seed=0), lstm.Cell(input=4, hidden=4, seed=1), lstm.Cell(input=4, hidden=4, seed=2)], None),
    ([depth_gated.Cell(input=3, hidden=4, seed=0), depth_gated.Cell(input=4, hidden=4, seed=1)], {"c_low": "c"}),
])
@pytest.mark.parametrize("lengths", [None, np.array([2, 5, 3])], ids=["full", "lengths"])
def test_a_unidirectional_layer_gives_exactly_what_a_stack_gives(cells, links, lengths):
    module = generated(cells[0].NAME)
    layer = cellspec.Layer(module, num_layers=len(cells), links=links, **cells[0].dims)
    for k, cell in enumerate(cells):
        for n, v in cell.params.items():
            layer.params[f"{n}_l{k}"] = v.copy()
    stack = Stack(cells, [{}] + [links or {}] * (len(cells) - 1))
    rng = np.random.default_rng(4)
    x, state = random_inputs(layer, 5, 3, rng), random_state(layer, 3, rng)
    flat = {f"{k}.{n}": v[k] for n, v in state.items() for k in range(len(cells))}
    # the layer sorts the batch once, each cell of the stack sorts it alike: the same rows
    y, final, tape = layer.forward(x, state, lengths=lengths)
    y_s, final_s, tape_s = stack.forward(x, flat, lengths=lengths)
    np.testing.assert_array_equal(y, y_s)
    dy = rng.normal(size=y.shape)
    dfinal = {n: rng.normal(size=v.shape) for n, v in final.items()}
    dx, dparams, dstate = layer.backward(tape, dy, dfinal)
    dx_s, dparams_s, dstate_s = stack.backward(tape_s, dy, {f"{k}.{n}": v[k] for n, v in dfinal.items() for k in range(len(cells))})
    dx, dx_s = (dx, dx_s) if isinstance(dx, dict) else ({"x": dx}, {"x": dx_s})
    for n in dx:
        np.testing.assert_array_equal(dx[n], dx_s[n])
    for key, v in dparams_s.items():
        k, _, n = key.partition(".")
        np.testing.assert_array_equal(dparams[f"{n}_l{k}"], v)
    for k in range(len(cells)):
        for n in final:
            np.testing.assert_array_equal(final[n][k], final_s[f"{k}.{n}"])
            np.testing.assert_array_equal(dstate[n][k], dstate_s[f"{k}.{n}"])


def test_batch_first_is_time_major_transposed():
    kw = dict(num_layers=2, bidirectional=True, dropout=0.3, input=3, hidden=4, seed=5)
    tm, bf = cellspec.Layer(lstm, **kw), cellspec.Layer(lstm, batch_first=True, **kw)
    rng = np.random.default_rng(5)
    x, state = random_inputs(tm, 5, 3, rng), random_state(tm, 3, rng)
    # the dropout masks are drawn time-major in both: reseed both alike
    y, final, tape = FixedDropout(tm).forward(x, state)
    y_b, final_b, tape_b = FixedDropout(bf).forward(x.transpose(1, 0, 2), state)
    np.testing.assert_array_equal(y_b, y.transpose(1, 0, 2))
    dy = rng.normal(size=y.shape)
    dx, dparams, dstate = tm.backward(tape, dy)
    dx_b, dparams_b, dstate_b = bf.backward(tape_b, dy.transpose(1, 0, 2))
    np.testing.assert_array_equal(dx_b, dx.transpose(1, 0, 2))
    for k in dparams:
        np.testing.assert_array_equal(dparams_b[k], dparams[k])
    for n in final:
        np.testing.assert_array_equal(final_b[n], final[n])
        np.testing.assert_array_equal(dstate_b[n], dstate[n])


def test_without_dropout_training_and_inference_agree_and_inference_has_no_tape():
    rng = np.random.default_rng(6)
    for dropout in (0.0, 0.5):
        layer = cellspec.Layer(gru, num_layers=2, bidirectional=True, dropout=dropout, input=3, hidden=4, seed=6)
        x = random_inputs(layer, 5, 3, rng)
        y_i, final_i, tape = layer.forward(x, train=False)
        assert tape is None
        y, final, _ = layer.forward(x)
        # dropout is for training only: at inference a layer with dropout is the one without
        assert np.array_equal(y, y_i) == (dropout == 0.0)
        assert np.array_equal(final["h"][2:], final_i["h"][2:]) == (dropout == 0.0)
        np.testing.assert_array_equal(final["h"][:2], final_i["h"][:2])


def test_dropout_is_seeded_and_inverted():
    kw = dict(num_layers=3, dropout=0.25, input=3, hidden=4)
    x = random_inputs(cellspec.Layer(lstm, **kw), 5, 3, np.random.default_rng(7))
    a, b, c = cellspec.Layer(lstm, seed=8, **kw), cellspec.Layer(lstm, seed=8, **kw), cellspec.Layer(lstm, seed=9, **kw)
    (y_a, _, tape_a), (y_b, _, tape_b) = a.forward(x), b.forward(x)
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_array_equal(tape_a.masks[0], tape_b.masks[0])
    assert not np.array_equal(tape_a.masks[0], c.forward(x)[2].masks[0])
    # inverted dropout: dropped entries are 0, kept ones scaled by 1/(1-p)
    for mask in tape_a.masks[:2]:
        assert set(np.unique(mask)) == {0.0, 1 / 0.75}
    assert tape_a.masks[2] is None
    # each call draws new masks
    assert not np.array_equal(a.forward(x)[2].masks[0], tape_a.masks[0])


def test_dropout_on_sets_the_dropout_apart_from_the_tape():
    kw = dict(num_layers=2, bidirectional=True, dropout=0.5, input=3, hidden=4, seed=11)
    layer = cellspec.Layer(lstm, **kw)
    x = random_inputs(layer, 5, 3, np.random.default_rng(9))
    y_eval, final_eval, _ = layer.forward(x, train=False)
    # a tape without dropout (a torch module in eval mode under autograd): the inference outputs
    y, final, tape = layer.forward(x, dropout_on=False)
    assert all(m is None for m in tape.masks)
    np.testing.assert_array_equal(y, y_eval)
    for n in final:
        np.testing.assert_array_equal(final[n], final_eval[n])
    # dropout without a tape (training mode under no_grad): the same masks as a taped call
    layer.rng = np.random.default_rng(3)
    y_drop, _, none = layer.forward(x, train=False, dropout_on=True)
    assert none is None
    layer.rng = np.random.default_rng(3)
    y_taped, _, tape = layer.forward(x)
    assert 0 < np.mean(tape.masks[0] == 0) < 1
    np.testing.assert_array_equal(y_drop, y_taped)
    assert not np.array_equal(y_drop, y_eval)
    with pytest.raises(TypeError, match="dropout_on must be None, True or False"):
        layer.forward(x, dropout_on="yes")


# --- params -----------------------------------------------------------------------------------


def test_params_are_keyed_by_layer_and_direction_and_write_through():
    layer = cellspec.Layer(gru, num_layers=2, bidirectional=True, input=3, hidden=4, seed=10)
    names = list(gru.Cell(input=3, hidden=4).params)
    assert list(layer.params) == [f"{n}_l{k}{s}" for k in range(2) for s in ("", "_reverse") for n in names]
    assert layer.params["W_r_l1_reverse"] is layer.cells[1][1].params["W_r"]
    x = random_inputs(layer, 4, 2, np.random.default_rng(8))
    y0, _, _ = layer.forward(x)
    new = np.zeros((4, 8))
    layer.params["W_r_l1_reverse"] = new
    assert layer.cells[1][1].params["W_r"] is new
    layer.params["b_n_l0"] += 1.0
    assert np.array_equal(layer.cells[0][0].params["b_n"], layer.params["b_n_l0"])
    assert not np.allclose(layer.forward(x)[0], y0)


@pytest.mark.parametrize("key, value, error, message", [
    ("W_r_l1", np.zeros((4, 3)), ShapeError, r"param 'W_r_l1' has shape \[4, 3\], expected \[hidden,input\] = \[4, 8\]"),
    ("W_r_l0", np.zeros((4, 3), np.float32), ShapeError, "param 'W_r_l0' has dtype float32, but this cell is float64"),
    ("W_r_l2", np.zeros((4, 3)), KeyError, "'W_r_l2' is not a param of this layer"),
])
def test_setting_a_param_is_checked(key, value, error, message):
    layer = cellspec.Layer(gru, num_layers=2, bidirectional=True, input=3, hidden=4)
    with pytest.raises(error, match=message):
        layer.params[key] = value
    with pytest.raises(TypeError, match="fixed by its spec"):
        del layer.params["W_r_l0"]


# --- checks -----------------------------------------------------------------------------------


@pytest.fixture
def guarded():
    """A 2-layer bidirectional LSTM layer whose kernels fail the test if anything reaches them."""
    layer = cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4, seed=0)

    def reached(*args):
        raise AssertionError("a kernel ran before the arguments were checked")

    for row in layer.cells:
        for cell in row:
            cell._forward = cell._backward = reached
    return layer


X = np.zeros((5, 3, 3))
STATE = {"h": np.zeros((4, 3, 4)), "c": np.zeros((4, 3, 4))}


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lengths=np.array([1.0, 2.0, 3.0])), LengthsError, "lengths has dtype float64: it must hold integers"),
    (dict(lengths=[1.0, 2.0, 3.0]), LengthsError, "lengths must hold integers"),
    (dict(lengths=np.array([True, True, True])), LengthsError, "lengths has dtype bool: it must hold integers"),
    (dict(lengths=np.array([1, 2])), LengthsError, r"lengths has shape \[2\], expected \[B\] = \[3\]"),
    (dict(lengths=np.array([[1, 2, 3]])), LengthsError, r"lengths has shape \[1, 3\]"),
    (dict(lengths=np.array([1, 0, 3])), LengthsError, r"lengths holds 0: every length must be in 1..T = 1..5"),
    (dict(lengths=[6, 1, 3]), LengthsError, r"lengths holds 6: every length must be in 1..T = 1..5"),
    (dict(state={"h": STATE["h"]}), ShapeError, "state must have the keys c, h; missing c"),
    (dict(state={**STATE, "m": STATE["h"]}), ShapeError, "state must have the keys c, h; unknown m"),
    (dict(state={**STATE, "h": STATE["h"][:1]}), ShapeError, "state 'h' has 1 entries on axis 0, this layer needs num_layers[*]num_directions = 4"),
    (dict(state={**STATE, "c": STATE["c"][:, :2]}), ShapeError, "state 'c' has batch size 2 on axis 1, but x has B = 3"),
    (dict(state={**STATE, "c": STATE["c"][..., :3]}), ShapeError, r"state 'c' has shape \[4, 3, 3\], expected \[num_layers[*]num_directions,B,hidden\]"),
    (dict(state=STATE["h"]), ShapeError, "state must be None or a dict with the keys c, h"),
    (dict(x=np.zeros((5, 3, 2))), ShapeError, r"input 'x' has shape \[5, 3, 2\], expected \[T,B,input\] = \[5, 3, 3\]"),
    (dict(x=np.zeros((5, 3, 3), np.float32)), ShapeError, "input 'x' has dtype float32"),
])
def test_bad_forward_arguments_are_refused_before_any_kernel(guarded, kwargs, error, message):
    kwargs = {"x": X, **kwargs}
    with pytest.raises(error, match=message):
        guarded.forward(**kwargs)


def test_bad_backward_arguments_are_refused_before_any_kernel(guarded):
    real = cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4)
    _, _, other_tape = real.forward(X)
    with pytest.raises(ShapeError, match="tape must be the one this layer's forward returned"):
        guarded.backward(other_tape, np.zeros((5, 3, 8)))
    for row, real_row in zip(guarded.cells, real.cells):
        for cell, real_cell in zip(row, real_row):
            cell._forward = real_cell._forward
    _, _, tape = guarded.forward(X)
    with pytest.raises(ShapeError, match=r"dy has shape \[5, 3, 4\], expected \[T,B,2[*]hidden\] = \[5, 3, 8\]"):
        guarded.backward(tape, np.zeros((5, 3, 4)))
    with pytest.raises(ShapeError, match="dstate 'h' has batch size 2 on axis 1, but the forward pass had B = 3"):
        guarded.backward(tape, np.zeros((5, 3, 8)), {"h": np.zeros((4, 2, 4)), "c": np.zeros((4, 2, 4))})


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dropout=1.0), ValueError, r"dropout must be a probability in \[0, 1\), not 1.0"),
    (dict(dropout=-0.1), ValueError, r"dropout must be a probability in \[0, 1\), not -0.1"),
    (dict(dropout=float("nan")), ValueError, "dropout must be a probability"),
    (dict(num_layers=0), ValueError, "num_layers must be at least 1, not 0"),
    (dict(num_layers=2.0), TypeError, "num_layers must be an integer"),
    (dict(bidirectional="yes"), TypeError, "bidirectional must be True or False"),
    (dict(hidden=None), TypeError, "missing hidden"),
])
def test_bad_construction_arguments_are_refused(kwargs, error, message):
    # hidden=None: left out
    kwargs = {k: v for k, v in {"input": 3, "hidden": 4, **kwargs}.items() if v is not None}
    with pytest.raises(error, match=message):
        cellspec.Layer(lstm, **kwargs)


@pytest.mark.parametrize("name", ["mut1", "mut2"])
def test_a_tied_input_cannot_read_two_directions(name):
    with pytest.raises(ValueError, match=f"layer 1: dim 'input' must be 8, since its input 'x' is the output of layer 0 .both directions, 2[*]hidden = 8., but {name} needs input == hidden"):
        cellspec.Layer(generated(name), num_layers=2, bidirectional=True, hidden=4)
    # one direction is as wide as the state: allowed
    assert cellspec.Layer(generated(name), num_layers=2, hidden=4).cells[1][0].dims == {"input": 4, "hidden": 4}


def test_an_input_dim_that_sizes_a_state_is_refused(build_module):
    _, module = build_module("""
        name: trace
        summary: an RNN that reads a running average of its input
        cite: a test of cellspec.Layer
        inputs: {x: input}
        state: {h: hidden, m: input}
        params: {W: [hidden, input], U: [hidden, hidden], b: [hidden]}
        equations:
          m_new: 0.5*m + 0.5*x
          h_new: tanh(W @ m_new + U @ h + b)
        update: {h: h_new, m: m_new}
        output: h_new
        """, "trace")
    with pytest.raises(ValueError, match=r"layer 1: dim 'input' must be 4, since its input 'x' is the output of layer 0 \(hidden = 4\), but input also sizes state 'm'"):
        cellspec.Layer(module, num_layers=2, input=3, hidden=4)
    assert cellspec.Layer(module, num_layers=2, input=4, hidden=4).cells[1][0].dims == {"input": 4, "hidden": 4}


def test_a_spec_path_is_built_with_load(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLSPEC_CACHE", str(tmp_path / "cache"))
    layer = cellspec.Layer(pathlib.Path(ROOT) / "specs" / "rnn.yaml", bidirectional=True, input=2, hidden=3, seed=0)
    y, _, _ = layer.forward(np.ones((3, 2, 2)))
    assert layer.module.Cell.NAME == "rnn" and y.shape == (3, 2, 6)
    with pytest.raises(TypeError, match="spec must be the path of a spec"):
        cellspec.Layer(42, input=2, hidden=3)


# --- files ------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    layer = cellspec.Layer(depth_gated, num_layers=2, bidirectional=True, dropout=0.2, batch_first=True, links={"c_low": "c"}, input=3, hidden=4, seed=11)
    path = tmp_path / "layer.npz"
    layer.save(path)
    with np.load(path, allow_pickle=False) as f:
        assert "W_d_l1_reverse" in f.files
    x = {"x": np.random.default_rng(9).normal(size=(2, 5, 3)), "c_low": np.random.default_rng(10).normal(size=(2, 5, 4))}
    y, _, _ = layer.forward(x, train=False)
    for loaded in (cellspec.Layer.load(path), cellspec.Layer.load(path, spec=depth_gated)):
        assert (loaded.num_layers, loaded.bidirectional, loaded.dropout, loaded.batch_first, loaded.links, loaded.dims) == (2, True, 0.2, True, {"c_low": "c"}, {"input": 3, "hidden": 4})
        for k, v in layer.params.items():
            np.testing.assert_array_equal(loaded.params[k], v)
        np.testing.assert_array_equal(loaded.forward(x, train=False)[0], y)
    other = cellspec.Layer(depth_gated, num_layers=2, bidirectional=True, links={"c_low": "c"}, input=3, hidden=4, seed=12)
    other.load_params(path)
    np.testing.assert_array_equal(other.params["U_o_l1_reverse"], layer.params["U_o_l1_reverse"])
    # a float32 layer takes the params cast
    single = cellspec.Layer(depth_gated, num_layers=2, bidirectional=True, links={"c_low": "c"}, input=3, hidden=4, dtype="float32")
    single.load_params(path)
    assert single.params["W_i_l0"].dtype == np.float32


@pytest.mark.parametrize("module, kwargs, message", [
    (lstm, dict(input=3, hidden=5), "dim 'hidden' is 4 there, 5 here"),
    (lstm, dict(input=2, hidden=4, num_layers=3), "dim 'input' is 3 there, 2 here; num_layers is 2 there, 3 here"),
    (lstm, dict(input=3, hidden=4, bidirectional=False), r"2 direction\(s\) there, 1 here"),
    (gru, dict(input=3, hidden=4), "it is of spec 'lstm', this layer of 'gru'"),
])
def test_load_params_says_what_does_not_fit(tmp_path, module, kwargs, message):
    path = tmp_path / "lstm.npz"
    cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4).save(path)
    layer = cellspec.Layer(module, **{"num_layers": 2, "bidirectional": True, **kwargs})
    with pytest.raises(ValueError, match=f"lstm.npz does not fit this layer: {message}"):
        layer.load_params(path)


def test_load_refuses_a_changed_spec(tmp_path):
    class Changed(lstm.Cell):
        SPEC_SHA256 = "0" * 64

    changed = type("module", (), {"Cell": Changed, "__doc__": lstm.__doc__})
    path = tmp_path / "lstm.npz"
    cellspec.Layer(lstm, input=3, hidden=4).save(path)
    with pytest.raises(ValueError, match=f"spec 'lstm' has changed: sha256 [0-9a-f]{{64}} there, {'0' * 64} here"):
        cellspec.Layer.load(path, spec=changed)
    # a module without SPEC_SHA256 is known by the sha256 its generated docstring names
    class Unnamed(lstm.Cell):
        SPEC_SHA256 = ""

    assert spec_sha256(type("module", (), {"Cell": Unnamed, "__doc__": lstm.__doc__})) == lstm.Cell.SPEC_SHA256
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="plain.npz is not a file of Layer.save"):
        cellspec.Layer.load(tmp_path / "plain.npz")


# --- torch ------------------------------------------------------------------------------------


def test_a_spec_without_a_torch_section_says_so():
    layer = cellspec.Layer(depth_gated, input=3, hidden=4)
    assert getattr(depth_gated.Cell, "TORCH", None) is None
    with pytest.raises(ValueError, match="spec 'lstm_depth_gated' declares no `torch:` section"):
        layer.torch_state_dict()
    with pytest.raises(ValueError, match="declares no `torch:` section"):
        layer.load_torch({})


def test_torch_weights_load_and_give_torchs_outputs():
    pytest.importorskip("cellspec.torch_layout", reason="waits on cellspec/torch_layout.py (branch torch-layout)")
    torch = pytest.importorskip("torch")
    if getattr(lstm.Cell, "TORCH", None) is None:
        pytest.skip("waits on the generated Cell.TORCH (branch torch-layout)")
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    layer = cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4)
    layer.load_torch(reference)
    x = np.random.default_rng(11).normal(size=(5, 2, 3))
    y, final, _ = layer.forward(x, train=False)
    y_t, (h_t, c_t) = reference(torch.from_numpy(x))
    # the same operations up to summation order: rounding of float64
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(final["h"], h_t.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(final["c"], c_t.detach().numpy(), rtol=0, atol=1e-12)
    again = cellspec.Layer(lstm, num_layers=2, bidirectional=True, input=3, hidden=4)
    again.load_torch(layer.torch_state_dict())
    # to torch, a summed bias goes whole into bias_ih beside zeros: back, the sum is exact
    for k, v in layer.params.items():
        np.testing.assert_array_equal(again.params[k], v)


# --- lengths over the whole catalog -----------------------------------------------------------


def catalog_layer(name):
    """A 2-layer layer of a catalog cell at tiny sizes: bidirectional, unless a constraint ties the
    first input's dim (mut1 and mut2: input == hidden), and with the depth gate linked."""
    Cell = generated(name).Cell
    sizes = tied(Cell.CONSTRAINTS, {d: 2 if d in ("modules", "proj") else 3 if d == "input" else 4 for d in Cell.DIMS})
    bidirectional = not any(Cell.INPUTS[0][1] in c for c in Cell.CONSTRAINTS)
    links = {"c_low": "c"} if len(Cell.INPUTS) > 1 else None
    return cellspec.Layer(generated(name), num_layers=2, bidirectional=bidirectional, links=links, seed=13, **sizes)


def as_dict(layer, x):
    return x if isinstance(x, dict) else {layer.module.Cell.INPUTS[0][0]: x}


def padded(layer, x, extra, fill):
    return {n: np.concatenate([v, np.full((extra, *v.shape[1:]), fill)]) for n, v in as_dict(layer, x).items()}


def run(layer, x, state, lengths, dy, dfinal):
    xs = as_dict(layer, x)
    y, final, tape = layer.forward(xs if len(xs) > 1 else next(iter(xs.values())), state, lengths=lengths)
    dx, dparams, dstate = layer.backward(tape, dy, dfinal)
    return y, final, as_dict(layer, dx), dparams, dstate


def assert_close(a, b, what):
    # a product over every step and row runs before each time loop, and BLAS may block T*B rows
    # differently from (T+k)*B rows or from one row: rounding of float64, nothing more
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=what)


LENGTHS = np.array([2, 4, 1])   # T = 4, B = 3, not sorted


@pytest.mark.parametrize("name", SPEC_NAMES)
@pytest.mark.parametrize("fill", [0.0, np.nan], ids=["zeros", "nan"])
def test_padding_changes_nothing(name, fill):
    """The same batch padded by 3 steps, with zeros or NaN, gives the same outputs (zeros on the
    padding), final states and gradients; the gradient reaching the padding is zero."""
    layer = catalog_layer(name)
    rng = np.random.default_rng(14)
    T, B, extra = 4, 3, 3
    x, state = random_inputs(layer, T, B, rng), random_state(layer, B, rng)
    width = layer.num_directions * layer.cells[0][0].dims[layer.module.Cell.OUTPUTS[0][1]]
    dy = rng.normal(size=(T + extra, B, width))
    dfinal = {n: rng.normal(size=v.shape) for n, v in state.items()}
    # dy on the padding is random too: the outputs there are zeros whatever dy says
    y, final, dx, dparams, dstate = run(layer, x, state, LENGTHS, dy[:T], dfinal)
    y_p, final_p, dx_p, dparams_p, dstate_p = run(layer, padded(layer, x, extra, fill), state, LENGTHS, dy, dfinal)
    for what, v in [("y", y_p), *((f"final {n}", a) for n, a in final_p.items()), *((f"dx {n}", a) for n, a in dx_p.items()),
                    *((f"d{k}", a) for k, a in dparams_p.items()), *((f"dstate {n}", a) for n, a in dstate_p.items())]:
        assert np.all(np.isfinite(v)), what
    assert_close(y_p[:T], y, "y")
    assert np.all(y_p[T:] == 0)
    for n in final:
        assert_close(final_p[n], final[n], f"final {n}")
        assert_close(dstate_p[n], dstate[n], f"dstate {n}")
    for n in dx:
        assert_close(dx_p[n][:T], dx[n], f"dx {n}")
        assert np.all(dx_p[n][T:] == 0), n
    for k in dparams:
        assert_close(dparams_p[k], dparams[k], k)
    # past its own length, a sequence's output is zero within T too
    for b, n in enumerate(LENGTHS):
        assert np.all(y[n:, b] == 0)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_a_batch_with_lengths_equals_each_sequence_alone(name):
    layer = catalog_layer(name)
    rng = np.random.default_rng(15)
    T, B = 4, 3
    x, state = random_inputs(layer, T, B, rng), random_state(layer, B, rng)
    width = layer.num_directions * layer.cells[0][0].dims[layer.module.Cell.OUTPUTS[0][1]]
    dy = rng.normal(size=(T, B, width))
    dfinal = {n: rng.normal(size=v.shape) for n, v in state.items()}
    y, final, dx, dparams, dstate = run(layer, x, state, LENGTHS, dy, dfinal)
    total = {k: np.zeros_like(v) for k, v in dparams.items()}
    for b, n in enumerate(LENGTHS):
        row = lambda a: np.ascontiguousarray(a[:, b:b + 1])
        x_b = {k: np.ascontiguousarray(v[:n, b:b + 1]) for k, v in as_dict(layer, x).items()}
        y_b, final_b, dx_b, dparams_b, dstate_b = run(layer, x_b, {k: row(v) for k, v in state.items()}, None,
                                                      np.ascontiguousarray(dy[:n, b:b + 1]), {k: row(v) for k, v in dfinal.items()})
        assert_close(y[:n, b:b + 1], y_b, f"y of sequence {b}")
        for k in final:
            assert_close(final[k][:, b:b + 1], final_b[k], f"final {k} of sequence {b}")
            assert_close(dstate[k][:, b:b + 1], dstate_b[k], f"dstate {k} of sequence {b}")
        for k in dx:
            assert_close(dx[k][:n, b:b + 1], dx_b[k], f"dx {k} of sequence {b}")
        for k in total:
            total[k] += dparams_b[k]
    # the batch's param gradients are the sums of the sequences'
    for k in dparams:
        assert_close(dparams[k], total[k], k)
