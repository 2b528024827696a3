"""Batch-parallel calls (see `cellspec.runtime`): a call whose batch runs as chunks on threads
gives what one pass gives, for every cell of the catalog and for stacks; the rule that decides
when to split; numpy's BLAS threads as they were afterwards."""

import threading

import numpy as np
import pytest

from cellspec import blas, runtime
from cellspec.stack import Stack

from conftest import SPEC_NAMES, generated, small_dims

# float64, the same rows through the same kernels: only the order of additions differs (BLAS may
# block a chunk's rows differently, and each chunk sums its own rows of a parameter gradient)
TOL = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture
def split_everything(monkeypatch):
    """Let any cell split any batch, down to one row a chunk, so that small tests reach the
    chunked path; the rule itself is tested below."""
    monkeypatch.setattr(runtime, "MIN_ROWS", 1)
    monkeypatch.setattr(runtime, "MIN_TRANSCENDENTALS", 0)


def run(cell, xs, state, dy, dstate, dseq):
    y, final, tape = cell.forward(xs, state)
    dx, dparams, dstate0 = cell.backward(tape, dy, dstate, dseq)
    return y, final, dx, dparams, dstate0, tape


def assert_same(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(a[k], b[k], **TOL, err_msg=k)
    else:
        np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_chunked_call_equals_one_pass(name, split_everything):
    module = generated(name)
    cell = module.Cell(seed=0, **small_dims(module))
    rng = np.random.default_rng(1)
    T, B = 4, 7
    xs = {n: rng.normal(size=(T, B, cell.dims[d])) for n, d in cell.INPUTS}
    state = {n: rng.normal(size=(B, cell.dims[d])) for n, d in cell.STATES}
    dstate = {n: rng.normal(size=(B, cell.dims[d])) for n, d in cell.STATES}
    dseq = {n: rng.normal(size=(T, B, cell.dims[d])) for n, d in cell.STATES}
    dys = {n: rng.normal(size=(T, B, cell.dims[d])) for n, d in cell.OUTPUTS}
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    dy = dys if len(dys) > 1 else next(iter(dys.values()))

    cell.threads = 1
    assert len(cell.batch_chunks(B)) == 1
    whole = run(cell, x, state, dy, dstate, dseq)
    cell.threads = 3  # uneven chunks: rows 0-1, 2-3, 4-6
    assert [(s.start, s.stop) for s in cell.batch_chunks(B)] == [(0, 2), (2, 4), (4, 7)]
    split = run(cell, x, state, dy, dstate, dseq)
    assert not whole[5].parts and len(split[5].parts) == 3
    for a, b in zip(whole[:5], split[:5]):
        assert_same(a, b)
    # inference, chunked
    y_i, final_i, none = cell.forward(x, state, tape=False)
    assert none is None
    assert_same(y_i, whole[0])
    assert_same(final_i, whole[1])
    # without dseq too: the kernels take their other path
    assert_same(cell.backward(split[5], dy, dstate)[1], cell.backward(whole[5], dy, dstate)[1])
    # the tape of a chunked call holds the same arrays, cut by rows (and a copy of the stacked
    # weights per chunk)
    for st in cell.STATES:
        np.testing.assert_array_equal(split[5].sequence(st[0]), whole[5].sequence(st[0]))


def test_chunked_stack_equals_one_pass(split_everything):
    """A depth-gated stack reads the memory cell of the layer below (dseq on the way back)."""
    peephole, depth_gated = generated("lstm_peephole"), generated("lstm_depth_gated")

    def stack(threads):
        layers = [peephole.Cell(input=3, hidden=4, seed=0), depth_gated.Cell(input=4, hidden=4, seed=1)]
        for layer in layers:
            layer.threads = threads
        return Stack(layers, links=[{}, {"c_low": "c"}])

    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(5, 6, 3)), rng.normal(size=(5, 6, 4))
    out = []
    for threads in (1, 2):
        s = stack(threads)
        y, final, tape = s.forward(x)
        out.append((y, final, *s.backward(tape, dy)))
    for a, b in zip(*out):
        assert_same(a, b)


def test_the_rule_splits_only_heavy_cells_with_enough_rows():
    lstm = generated("lstm").Cell(input=8, hidden=8)
    rnn = generated("rnn").Cell(input=8, hidden=8)
    lstm.threads = rnn.threads = 2
    assert len(lstm.batch_chunks(2 * runtime.MIN_ROWS)) == 2
    assert len(lstm.batch_chunks(2 * runtime.MIN_ROWS - 1)) == 1  # a chunk would have too few rows
    # an Elman RNN evaluates one tanh per value of its state: memory-bound, never split
    assert generated("rnn").Cell.TRANSCENDENTALS == [("hidden", 1)]
    assert len(rnn.batch_chunks(64)) == 1
    lstm.threads = 1
    assert len(lstm.batch_chunks(64)) == 1
    lstm.threads = 3
    assert len(lstm.batch_chunks(100)) == 3


def test_on_a_blas_that_does_not_thread_its_products_every_cell_splits_down_to_half_the_rows(monkeypatch):
    """MKL's sequential layer runs a one-pass call's whole time loop on one core: there a batch
    splits whatever its cell (the Elman RNN too), down to MIN_ROWS // 2 rows a chunk."""
    lstm = generated("lstm").Cell(input=8, hidden=8)
    rnn = generated("rnn").Cell(input=8, hidden=8)
    lstm.threads = rnn.threads = 2
    assert len(rnn.batch_chunks(64)) == 1   # numpy's OpenBLAS threads each product itself
    monkeypatch.setattr(blas, "threads_its_products", lambda: False)
    half = runtime.MIN_ROWS // 2
    assert [len(rnn.batch_chunks(B)) for B in (64, 2 * half, 2 * half - 1, 1)] == [2, 2, 1, 1]
    assert [len(lstm.batch_chunks(B)) for B in (2 * half, 2 * half - 1)] == [2, 1]
    rnn.threads = 1
    assert len(rnn.batch_chunks(64)) == 1


def test_chunks_run_with_single_threaded_blas_which_is_restored_after(split_everything):
    before = blas.threads()
    blas.set_threads(2)
    try:
        settable = blas.threads() == 2  # not under SciPy's BLAS fallback, which has no setter
        cell = generated("lstm").Cell(input=3, hidden=4, seed=0, dtype="float32")
        cell.threads = 2
        seen = []
        forward = cell._forward

        def spy(inputs, state, tape, active):
            seen.append(blas.threads())
            return forward(inputs, state, tape, active)

        cell._forward = spy
        y, _, tape = cell.forward(np.ones((3, 4, 3), np.float32))
        cell.backward(tape, np.ones_like(y))
        assert len(tape.parts) == 2 and seen == [1, 1]
        assert blas.threads() == (2 if settable else 1)
    finally:
        blas.set_threads(before)


def test_a_batch_of_one_row_runs_its_pass_with_single_threaded_blas():
    """A one-pass call keeps BLAS's threads for its per-step products, except with one row a step
    (matrix-vector products, too small to split: runtime.blas_for_one_pass); either way the
    thread count is restored after."""
    before = blas.threads()
    blas.set_threads(2)
    try:
        settable = blas.threads() == 2  # not under SciPy's BLAS fallback, which has no setter
        cell = generated("rnn").Cell(input=3, hidden=4, seed=0, dtype="float32")
        seen = []
        forward, backward = cell._forward, cell._backward

        def spy_forward(*args):
            seen.append(blas.threads())
            return forward(*args)

        def spy_backward(*args):
            seen.append(blas.threads())
            return backward(*args)

        cell._forward, cell._backward = spy_forward, spy_backward
        for B in (1, 2):
            y, _, tape = cell.forward(np.ones((3, B, 3), np.float32))
            cell.backward(tape, np.ones_like(y))
            assert not tape.parts
        assert seen == ([1, 1, 2, 2] if settable else [1, 1, 1, 1])
        assert blas.threads() == (2 if settable else 1)
    finally:
        blas.set_threads(before)


def overlapping(work, rounds: int = 40):
    """work(k) on two Python threads at once, `rounds` times, a barrier lining up each round's
    starts so that the calls overlap; returns the first exception a thread raised, if any."""
    barrier = threading.Barrier(2)
    errors = []

    def loop(k):
        try:
            for _ in range(rounds):
                barrier.wait()
                work(k)
        except BaseException as e:  # re-raised on the main thread by the caller
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors[0] if errors else None


def test_overlapping_chunked_calls_restore_blas_threads():
    """Two threads in batch-parallel calls at once: the one that enters second finds BLAS at one
    thread already; BLAS must still get its own thread count back once both are done."""
    before = blas.threads()
    blas.set_threads(2)
    try:
        wanted = blas.threads()  # 2, or 1 under SciPy's BLAS fallback, which has no setter
        cells = [generated("lstm").Cell(input=3, hidden=4, seed=k, dtype="float32") for k in range(2)]
        for c in cells:
            c.threads = 2
        x = np.ones((3, 2 * runtime.MIN_ROWS, 3), np.float32)
        assert len(cells[0].batch_chunks(x.shape[1])) == 2

        def work(k):
            y, _, tape = cells[k].forward(x)
            cells[k].backward(tape, np.ones_like(y))

        error = overlapping(work)
        assert error is None, error
        assert blas.threads() == wanted
    finally:
        blas.set_threads(before)


def test_one_cell_on_two_threads_keeps_its_params():
    """`forward` hands the generated pass checked (and copied) params; two threads running one
    cell must not leave those in place of `cell.params`, nor mix up each other's gradients."""
    cell = generated("lstm").Cell(input=3, hidden=4, seed=0)
    cell.threads = 2
    params = cell.params
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(3, 2 * runtime.MIN_ROWS, 3)) for _ in range(2)]
    expected = []
    for x in xs:
        y, _, tape = cell.forward(x)
        expected.append(cell.backward(tape, np.ones_like(y))[1])
    got = [[], []]

    def work(k):
        y, _, tape = cell.forward(xs[k])
        got[k].append(cell.backward(tape, np.ones_like(y))[1])

    error = overlapping(work, rounds=20)
    assert error is None, error
    assert cell.params is params
    for k in range(2):
        for dparams in got[k]:
            assert_same(dparams, expected[k])


def test_another_threads_single_threaded_block_changes_no_split():
    """`blas.threads()` says 1 inside a `single_threaded()` block on the thread in it (and on the
    chunks' threads), but not on another thread: a call that reads it to split its batch (cell.threads
    None) splits the same while another thread holds OpenBLAS at one thread for a while (a
    trainer's readout, a batch-parallel call, a one-row call), so its results do not hang on
    what the other threads do (they did, in the last bits, before)."""
    before = blas.threads()
    blas.set_threads(2)
    try:
        settable = blas.threads() == 2  # not under SciPy's BLAS fallback, which has no setter
        cell = generated("lstm").Cell(input=3, hidden=4, seed=0, dtype="float32")
        x = np.random.default_rng(0).normal(size=(3, 2 * runtime.MIN_ROWS, 3)).astype(np.float32)
        _, _, alone = cell.forward(x)
        entered, done = threading.Event(), threading.Event()

        def hold():
            with blas.single_threaded():
                entered.set()
                done.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert entered.wait(30)
            seen_here = blas.threads()
            _, _, beside = cell.forward(x)
        finally:
            done.set()
            holder.join()
        assert seen_here == (2 if settable else 1)
        assert len(alone.parts) == len(beside.parts) == (2 if settable else 0)
        with blas.single_threaded():
            assert blas.threads() == 1
        assert blas.threads() == (2 if settable else 1)
    finally:
        blas.set_threads(before)
