"""Variable lengths in the generated kernels: a batch of sequences of different lengths, for
every catalog cell, against each sequence run alone at its own length (no padding at all).

Semantics under test (cellspec.lengths, Kernels.past_the_end): a sequence's state stops changing
after its last step and the final state is the one after it; its outputs past the end are zero;
its padded input rows are never read (here they hold NaN); the backward pass is exact, the
gradient of the padded inputs zero.
"""

from __future__ import annotations

import numpy as np
import pytest

from cellspec.gradcheck import default_sizes
from cellspec.lengths import LengthsError
from conftest import SPEC_NAMES, generated

# float64: the batch and the lone sequences run the same operations on the same numbers, in
# products of other shapes (BLAS may block them differently), so they agree to rounding
TOL = 1e-12


def one(d: dict):
    return d if len(d) > 1 else next(iter(d.values()))


def as_dict(v, names):
    return v if isinstance(v, dict) else {names[0][0]: v}


def case(name: str, B: int, T: int, pad: int, seed: int = 0):
    """A cell and a batch of B sequences with lengths in 1..T (not sorted, one of length 1, one
    of length T), their inputs padded to T+pad steps with NaN past each end, random initial
    states and incoming gradients."""
    module = generated(name)
    cell = module.Cell(dtype="float64", seed=1, **default_sizes(module))
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0], lengths[-1] = 1, T
    rng.shuffle(lengths)
    xs = {n: rng.normal(size=(T + pad, B, cell.dims[d])) for n, d in cell.INPUTS}
    for v in xs.values():
        v[np.arange(T + pad)[:, None] >= lengths[None, :]] = np.nan
    state = {n: rng.normal(size=(B, cell.dims[d])) for n, d in cell.STATES}
    dy = {n: rng.normal(size=(T + pad, B, cell.dims[d])) for n, d in cell.OUTPUTS}
    dstate = {n: rng.normal(size=(B, cell.dims[d])) for n, d in cell.STATES}
    return cell, lengths, xs, state, dy, dstate


def run(cell, xs, state, dy, dstate, lengths=None, dseq=None):
    y, final, tape = cell.forward(one(dict(xs)), state, lengths=lengths)
    dx, dparams, dstate0 = cell.backward(tape, one(dy), dstate, dseq)
    return as_dict(y, cell.OUTPUTS), final, as_dict(dx, cell.INPUTS), dparams, dstate0


def assert_close(a, b, what):
    assert np.all(np.isfinite(a)), f"{what}: not finite"
    err = float(np.max(np.abs(a - b), initial=0.0))
    assert err < TOL, f"{what}: off by {err:.3g}"


def check_against_alone(cell, lengths, xs, state, dy, dstate, dseq=None, dstate_alone=None):
    """The batch run with lengths against each sequence alone, given `dstate_alone` as the
    gradient of its final state (by default, its row of dstate)."""
    y, final, dx, dparams, dstate0 = run(cell, xs, state, dy, dstate, lengths, dseq)
    dstate_alone = dstate if dstate_alone is None else dstate_alone
    total = {p: np.zeros_like(g) for p, g in dparams.items()}
    for b, n in enumerate(lengths):
        rows = slice(b, b + 1)
        alone = run(
            cell,
            {k: v[:n, rows] for k, v in xs.items()},
            {k: v[rows] for k, v in state.items()},
            {k: v[:n, rows] for k, v in dy.items()},
            {k: v[rows] for k, v in dstate_alone.items()},
            None,
            None if dseq is None else {k: v[:n, rows] for k, v in dseq.items()},
        )
        y_b, final_b, dx_b, dparams_b, dstate0_b = alone
        for k in y:
            assert_close(y[k][:n, rows], y_b[k], f"y {k!r} of sequence {b}")
            assert not np.any(y[k][n:, b]), f"y {k!r} of sequence {b} is not zero past its end"
        for k in dx:
            assert_close(dx[k][:n, rows], dx_b[k], f"dx {k!r} of sequence {b}")
            assert not np.any(dx[k][n:, b]), f"dx {k!r} of sequence {b} is not zero past its end"
        for k in final:
            assert_close(final[k][rows], final_b[k], f"final state {k!r} of sequence {b}")
            assert_close(dstate0[k][rows], dstate0_b[k], f"d initial state {k!r} of sequence {b}")
        for p in total:
            total[p] += dparams_b[p]
    for p in total:
        assert_close(dparams[p], total[p], f"d{p}")


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_a_ragged_batch_equals_each_sequence_run_alone(name):
    # padded 3 steps past the longest sequence: the last steps run no row at all
    check_against_alone(*case(name, B=5, T=6, pad=3))


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_gradient_from_a_layer_above_reaching_every_state_step(name):
    cell, lengths, xs, state, dy, dstate = case(name, B=4, T=5, pad=2, seed=1)
    rng = np.random.default_rng(2)
    dseq = {n: rng.normal(size=(7, 4, cell.dims[d])) for n, d in cell.STATES}
    # past a sequence's end its state is the final state, so the gradient a layer above gives
    # those steps is, for the sequence run alone, gradient of its final state
    alone = {k: dstate[k] + np.stack([v[n:, b].sum(axis=0) for b, n in enumerate(lengths)]) for k, v in dseq.items()}
    check_against_alone(cell, lengths, xs, state, dy, dstate, dseq, alone)


@pytest.mark.parametrize("name", ["lstm", "gru", "lstm_peephole"])
def test_batch_parallel_chunks_of_a_ragged_batch(name):
    # three cells with enough elementwise work to be split (runtime.batch_chunks) at B=40
    cell, lengths, xs, state, dy, dstate = case(name, B=40, T=6, pad=2, seed=3)
    cell.threads = 2
    assert len(cell.batch_chunks(40)) == 2
    check_against_alone(cell, lengths, xs, state, dy, dstate)


@pytest.mark.parametrize("name", ["lstm", "clockwork", "lstm_depth_gated"])
def test_all_lengths_T_is_the_call_without_lengths_bit_for_bit(name):
    cell, _, xs, state, dy, dstate = case(name, B=3, T=5, pad=0)
    xs = {k: np.nan_to_num(v, nan=0.5) for k, v in xs.items()}
    full = run(cell, xs, state, dy, dstate, np.full(3, 5))
    plain = run(cell, xs, state, dy, dstate)
    for a, b in zip(full, plain):
        for k in a:
            assert np.array_equal(a[k], b[k]), k


def test_a_sorted_batch_is_not_permuted_and_the_tape_sequence_keeps_the_callers_order():
    cell, lengths, xs, state, dy, dstate = case("lstm", B=4, T=5, pad=0)
    y, _, tape = cell.forward(one(xs), state, lengths=lengths)
    assert tape.ragged.order is not None
    seq = tape.sequence("h")
    assert_close(seq, np.where((np.arange(5)[:, None] < lengths[None, :])[..., None], y, seq), "the state sequence")
    order = np.argsort(-lengths, kind="stable")
    _, _, sorted_tape = cell.forward(one(xs)[:, order], {k: v[order] for k, v in state.items()}, lengths=lengths[order])
    assert sorted_tape.ragged.order is None


@pytest.mark.parametrize(
    "lengths, message",
    [
        (np.array([1.0, 2.0, 3.0]), "dtype float64"),
        (np.array([True, True, True]), "dtype bool"),
        (np.array([[1, 2, 3]]), "shape [1, 3], expected [B] = [3]"),
        (np.array([1, 2]), "shape [2], expected [B] = [3]"),
        (np.array([0, 2, 3]), "holds 0: every length must be in 1..T = 1..4"),
        (np.array([1, 5, 3]), "holds 5"),
        ([1, 2.5, 3], "must hold integers"),
        ("123", "numpy array of integers, not str"),
    ],
)
def test_bad_lengths_are_refused_before_any_kernel_runs(lengths, message):
    cell = generated("rnn").Cell(input=2, hidden=3)

    def refuse(*args):
        raise AssertionError("a kernel ran")

    cell._forward = refuse
    with pytest.raises(LengthsError, match="lengths") as info:
        cell.forward(np.zeros((4, 3, 2)), lengths=lengths)
    assert message in str(info.value)


def test_lengths_as_a_list_of_ints():
    cell = generated("rnn").Cell(input=2, hidden=3, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 3, 2))
    a, _, _ = cell.forward(x, lengths=[4, 1, 2])
    b, _, _ = cell.forward(x, lengths=np.array([4, 1, 2], np.int32))
    assert np.array_equal(a, b)


def test_a_depth_gated_stack_with_lengths_equals_each_sequence_alone():
    # the upper layer reads the lower layer's memory cell at every step (a state link)
    from cellspec.stack import Stack

    module = generated("lstm_depth_gated")
    layers = [module.Cell(input=3, hidden=3, seed=s) for s in (0, 1)]
    stack = Stack(layers, links=[{}, {"c_low": "c"}])
    rng = np.random.default_rng(0)
    lengths = np.array([2, 5, 3])
    x = {"x": rng.normal(size=(5, 3, 3)), "c_low": rng.normal(size=(5, 3, 3))}
    dy = rng.normal(size=(5, 3, 3))
    y, final, tape = stack.forward(x, lengths=lengths)
    dx, dparams, dstate0 = stack.backward(tape, dy)
    total = {k: np.zeros_like(v) for k, v in dparams.items()}
    for b, n in enumerate(lengths):
        xb = {k: v[:n, b:b + 1].copy() for k, v in x.items()}
        yb, fb, tb = stack.forward(xb)
        dxb, dpb, _ = stack.backward(tb, dy[:n, b:b + 1].copy())
        assert_close(y[:n, b:b + 1], yb, f"y of sequence {b}")
        for k in fb:
            assert_close(final[k][b:b + 1], fb[k], f"final {k} of sequence {b}")
        for k in dxb:
            assert_close(dx[k][:n, b:b + 1], dxb[k], f"dx {k} of sequence {b}")
        for k in total:
            total[k] += dpb[k]
    for k in total:
        assert_close(dparams[k], total[k], f"d{k}")


def test_a_batch_arranged_already_is_not_permuted_again_ties_included():
    # a Layer arranges its batch once for all its cells: a cell must find it arranged, also where
    # lengths tie (a stable sort of the arranged lengths would deal tied rows otherwise)
    from cellspec.lengths import Ragged
    from cellspec.parallel import chunks

    rng = np.random.default_rng(0)
    for B, n in ((32, 2), (37, 2), (50, 3), (5, 1)):
        lengths = rng.integers(1, 4, size=B)   # many ties
        first = Ragged(lengths, 6, chunks(B, n))
        arranged = lengths[first.order]
        for sl in chunks(B, n):
            assert np.all(np.diff(first.sorted[sl]) <= 0), "a chunk is not sorted longest first"
        assert Ragged(arranged, 6, chunks(B, n)).order is None


@pytest.mark.parametrize("tape", [True, False])
@pytest.mark.parametrize("lengths", [[5, 2, 1], [1, 2, 5]], ids=["sorted", "unsorted"])
def test_the_callers_inputs_are_left_as_they_were(tape, lengths):
    # the padding is zeroed in the call's own copies (the tape's, or the permutation's), never in x
    cell = generated("lstm").Cell(input=3, hidden=4, seed=0)
    x = np.random.default_rng(0).normal(size=(5, 3, 3))
    x[4, 1] = np.nan
    before = x.copy()
    cell.forward(x, lengths=lengths, tape=tape)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", ["lstm", "gru", "mut1", "lstmp"])
def test_the_products_over_all_steps_read_only_the_rows_that_ran(name):
    # a ragged batch's hoisted input products, input and weight gradients run on the rows of the
    # steps each sequence ran (runtime.Rows), packed: never on all T*B rows. mut1 has a
    # phase of elementwise work before the loop; lstmp a projection
    module = generated(name)
    cell, lengths, xs, state, dy, dstate = case(name, B=5, T=6, pad=2)
    shapes = []
    real = module.dot

    def dot(a, b):
        shapes.append((a.shape, b.shape))
        return real(a, b)

    module.dot = dot
    try:
        ragged = run(cell, xs, state, dy, dstate, lengths)
        ran = int(lengths.sum())
        assert shapes and all(ran in a + b and 8 * 5 not in a + b for a, b in shapes), shapes
        shapes.clear()
        xs = {k: np.nan_to_num(v, nan=0.5) for k, v in xs.items()}
        run(cell, xs, state, dy, dstate)
        assert shapes and all(8 * 5 in a + b for a, b in shapes), shapes
    finally:
        module.dot = real
    for part in ragged[:3]:
        for k, v in part.items():
            assert np.all(np.isfinite(v)), k


def test_rows_pack_and_spread():
    from cellspec.lengths import Rows, active

    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 2))
    full = Rows(active(np.array([4, 4, 4]), 4), 4, 3)
    # a batch that runs every step: views, the products run as they always did
    assert full.pack(a).base is a and full.spread(full.pack(a)).base is a
    steps = active(np.array([4, 2, 1]), 4)   # [3, 2, 1, 1]
    rows = Rows(steps, 4, 3)
    packed = rows.pack(a)
    want = np.concatenate([a[t, :n] for t, n in enumerate(steps)])
    assert np.array_equal(packed, want) and rows.count == 7
    back = rows.spread(packed)
    ran = np.arange(3)[None, :] < steps[:, None]
    assert np.array_equal(back[ran], a[ran]) and np.all(back[~ran] == 0)
    # as more steps than ran (a residual of JAX's, T long): zeros after them, a copy even at full length
    longer, whole = rows.spread(packed, 6), full.spread(full.pack(a), 6)
    assert np.array_equal(longer[:4], back) and np.all(longer[4:] == 0)
    assert np.array_equal(whole[:4], a) and np.all(whole[4:] == 0) and whole.base is not a


def test_packed_rows_straight_from_and_into_the_callers_order():
    """gather's packed arrays are the packed rows of its sorted copy, and scatter of packed
    rows writes what scatter of their spread writes, zeros past each end included."""
    from cellspec.lengths import Ragged, Rows, gather, scatter

    rng = np.random.default_rng(1)
    lengths = np.array([2, 5, 1, 4, 5, 3])
    ragged = Ragged(lengths, 5)
    rows, steps = ragged.rows(slice(None)), ragged.active()
    a = rng.normal(size=(5, 6, 3))
    sorted_copy = gather({"a": a}, rows, steps)["a"]
    packed = gather({"a": a, "b": a}, rows, steps, packed=("a",))
    assert packed["a"].shape == (lengths.sum(), 3) and np.array_equal(packed["a"], Rows(steps, 5, 6).pack(sorted_copy))
    assert np.array_equal(packed["b"], sorted_copy)
    whole, straight = np.full((5, 6, 3), np.nan), np.full((5, 6, 3), np.nan)
    scatter({"a": Rows(steps, 5, 6).spread(packed["a"])}, rows, steps, {"a": whole})
    scatter({"a": packed["a"]}, rows, steps, {"a": straight})
    assert np.array_equal(straight, whole) and np.array_equal(straight[:, 1], a[:, 1])
    assert np.all(straight[lengths[0]:, 0] == 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_kernels_run_up_to_the_longest_sequences_end(threads):
    # padded 4 steps past the longest sequence: the kernels run 6 steps, not 10; outputs, the
    # state sequence and dx past them are what the padding would have given (zeros; the final
    # state); what a layer above gives those steps' states reaches the initial state through it
    cell, lengths, xs, state, dy, dstate = case("lstm", B=40, T=6, pad=4, seed=5)
    cell.threads = threads
    rng = np.random.default_rng(6)
    dseq = {n: rng.normal(size=(10, 40, cell.dims[d])) for n, d in cell.STATES}
    y, final, tape = cell.forward(one(xs), state, lengths=lengths)
    assert tape.T == 10 and {t.T for t in tape.pieces()} == {6} and len(tape.pieces()) == threads
    assert np.all(y[6:] == 0)
    assert np.array_equal(tape.sequence("h")[6:], np.broadcast_to(final["h"], (4, 40, cell.dims["hidden"])))
    dx, dparams, dstate0 = cell.backward(tape, one(dy), dstate, dseq)
    assert np.all(dx[6:] == 0)
    # the same call on the inputs cut to the longest sequence, with dseq past it folded into dstate
    cut = {k: v[:6] for k, v in xs.items()}
    folded = {k: dstate[k] + dseq[k][6:].sum(axis=0) for k in dstate}
    y6, final6, tape6 = cell.forward(one(cut), state, lengths=lengths)
    dx6, dparams6, dstate6 = cell.backward(tape6, one(dy)[:6], folded, {k: v[:6] for k, v in dseq.items()})
    assert_close(y[:6], y6, "y")
    assert_close(dx[:6], dx6, "dx")
    for k in dparams:
        assert_close(dparams[k], dparams6[k], f"d{k}")
    for k in dstate0:
        assert_close(dstate0[k], dstate6[k], f"dstate {k}")
