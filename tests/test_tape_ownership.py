"""The tape owns what the backward pass reads (see `cellspec.runtime`): writing to y, to the input
or to cell.params between forward and backward leaves the gradients as they were, in a one-pass
call, a batch-parallel one and a stack."""

import numpy as np
import pytest

from cellspec import runtime
from cellspec.stack import Stack

from conftest import SPEC_NAMES, generated, small_dims

CELLS = ["rnn", "gru", "lstm"]


def write_y(cell, x, y):
    np.tanh(y, out=y)


def write_x(cell, x, y):
    x *= -3.0


def step_params(cell, x, y):
    # an optimizer step in place, as `cell.params['W'] -= lr * g` does it
    for p in cell.params.values():
        p -= 0.5 * (p + 1.0)


WRITES = [write_y, write_x, step_params]


def run(name, write, T=5, B=3, threads=1):
    """forward, then `write`, then backward; returns what backward gave and the tape."""
    cell = generated(name).Cell(input=3, hidden=4, seed=0)
    cell.threads = threads
    rng = np.random.default_rng(1)
    x = rng.normal(size=(T, B, 3))
    dy = rng.normal(size=(T, B, 4))
    y, _, tape = cell.forward(x)
    if write is not None:
        write(cell, x, y)
    return cell.backward(tape, dy), tape


def assert_same(got, want):
    dx, dparams, dstate = got
    np.testing.assert_array_equal(dx, want[0])
    assert list(dparams) == list(want[1])
    for k in dparams:
        np.testing.assert_array_equal(dparams[k], want[1][k], err_msg=k)
    for k in dstate:
        np.testing.assert_array_equal(dstate[k], want[2][k], err_msg=k)


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("name", CELLS)
def test_a_write_between_forward_and_backward_changes_no_gradient(name, write):
    want, _ = run(name, None)
    got, tape = run(name, write)
    assert not tape.parts
    assert_same(got, want)


@pytest.mark.parametrize("T", [5, 1])  # with one step, a chunk of the batch is contiguous: no copy by itself
@pytest.mark.parametrize("write", WRITES)
def test_a_write_changes_no_gradient_of_a_batch_parallel_call(write, T):
    B = 2 * runtime.MIN_ROWS
    want, _ = run("lstm", None, T=T, B=B, threads=2)
    got, tape = run("lstm", write, T=T, B=B, threads=2)
    assert len(tape.parts) == 2
    assert_same(got, want)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_tape_shares_no_memory_with_what_the_caller_holds(threads):
    cell = generated("lstm").Cell(input=3, hidden=4, seed=0)
    cell.threads = threads
    x = np.zeros((4, 2 * runtime.MIN_ROWS, 3))
    y, state, tape = cell.forward(x)
    held = [x, y, *state.values(), *cell.params.values()]
    kept = [a for t in tape.pieces() for a in (*t.arrays.values(), *t.inputs.values(), *t.params.values())]
    assert kept
    for a in kept:
        assert not any(np.shares_memory(a, h) for h in held)


def test_a_sequence_from_the_tape_is_read_only():
    cell = generated("lstm").Cell(input=3, hidden=4, seed=0)
    _, _, tape = cell.forward(np.zeros((4, 2, 3)))
    before = tape.arrays[tape.saved("states", "c")].copy()
    seq = tape.sequence("c")
    with pytest.raises(ValueError, match="read-only"):
        seq[0] = 1.0
    np.testing.assert_array_equal(tape.arrays[tape.saved("states", "c")], before)


@pytest.mark.parametrize("write", WRITES)
def test_a_write_changes_no_gradient_of_a_stack(write):
    """A depth-gated layer reads the lower layer's memory cell from its tape."""
    peephole, depth_gated = generated("lstm_peephole"), generated("lstm_depth_gated")

    def grads(write):
        layers = [peephole.Cell(input=3, hidden=4, seed=0), depth_gated.Cell(input=4, hidden=4, seed=1)]
        stack = Stack(layers, links=[{}, {"c_low": "c"}])
        rng = np.random.default_rng(2)
        x, dy = rng.normal(size=(5, 3, 3)), rng.normal(size=(5, 3, 4))
        y, _, tape = stack.forward(x)
        if write is not None:
            for layer in layers:
                write(layer, x, y)
        return stack.backward(tape, dy)

    want, got = grads(None), grads(write)
    np.testing.assert_array_equal(got[0], want[0])
    for k in want[1]:
        np.testing.assert_array_equal(got[1][k], want[1][k], err_msg=k)


@pytest.mark.parametrize("lengths", [None, [4, 2, 3] * runtime.MIN_ROWS])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_one_layer_layer_hands_out_no_memory_of_its_tape(threads, lengths):
    """A Layer of one cell hands out the cell's final state as views of the cell's own arrays
    (`layer._stacked`), not copies: they must share nothing with the tape."""
    import cellspec

    layer = cellspec.Layer(generated("lstm"), input=3, hidden=4, seed=0)
    layer.cells[0][0].threads = threads
    B = 3 * runtime.MIN_ROWS
    x = np.random.default_rng(0).normal(size=(4, B, 3))
    y, final, tape = layer.forward(x, lengths=None if lengths is None else np.array(lengths))
    (piece,) = [t for row in tape.tapes for t in row]
    kept = [a for t in piece.pieces() for a in (*t.arrays.values(), *t.inputs.values(), *t.params.values())]
    assert kept and all(v.shape == (1, B, 4) for v in final.values())
    for a in kept:
        assert not any(np.shares_memory(a, h) for h in [x, y, *final.values()])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_tape_copies_the_params_the_backward_reads(name, threads):
    """Every catalog cell, one-pass and batch-parallel: a taped call copies only its TAPE_PARAMS
    (the backward reads every other weight in its group's stacked copy), and NaN written into
    every param between forward and backward changes no gradient, so no param the backward reads
    was left uncopied."""
    module = generated(name)
    B = 2 * runtime.MIN_ROWS

    def grads(poison):
        cell = module.Cell(seed=0, **small_dims(module))
        cell.threads = threads
        rng = np.random.default_rng(1)
        xs = {n: rng.normal(size=(4, B, cell.dims[d])) for n, d in cell.INPUTS}
        dy = {n: rng.normal(size=(4, B, cell.dims[d])) for n, d in cell.OUTPUTS}
        _, _, tape = cell.forward(xs)
        assert sorted(tape.params) == sorted(cell.TAPE_PARAMS)
        assert not any(np.shares_memory(a, p) for a in tape.params.values() for p in cell.params.values())
        if poison:
            for p in cell.params.values():
                p[...] = np.nan
        return cell.backward(tape, dy if len(dy) > 1 else next(iter(dy.values())))

    want, got = grads(False), grads(True)
    dx, dparams, dstate = got
    for k, v in (dx if isinstance(dx, dict) else {"x": dx}).items():
        np.testing.assert_array_equal(v, (want[0] if isinstance(want[0], dict) else {"x": want[0]})[k], err_msg=k)
    for k in want[1]:
        assert np.all(np.isfinite(want[1][k])), k
        np.testing.assert_array_equal(dparams[k], want[1][k], err_msg=k)
    for k in want[2]:
        np.testing.assert_array_equal(dstate[k], want[2][k], err_msg=k)
