"""The step kernel that keeps its weights (cellspec.owned): an inference call whose time loop runs
on threads that each own a slice of the hidden units gives what the batch-chunked schedule gives,
for every catalog cell that has one (float64; float32 for lstm and gru), with lengths and a given
state; the rule that picks it, and the slices it cuts. It runs here on numpy's OpenBLAS, forced
(the rule picks it on MKL alone); a last test runs the rule's choice on MKL where it is installed."""

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pytest

from cellspec import blas, owned, runtime
from conftest import SPEC_NAMES, generated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWNED = [n for n in SPEC_NAMES if generated(n).Cell.OWNED is not None]
# the same sums blocked another way (each thread's columns of a product in a call of their own)
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def test_the_cells_with_one_stage_of_products_of_one_dim_have_the_kernel():
    assert {"lstm", "gru", "rnn", "lstm_peephole", "greff_fgr", "clockwork"} <= set(OWNED)
    # two stages of products (r * h before U_h), or a projection of another dim: none
    assert not {"gru_cho", "lstmp"} & set(OWNED)
    for n in SPEC_NAMES:
        assert hasattr(generated(n), "_loop_infer_owned") == (n in OWNED), n


def dims_for(module, hidden=40):
    # 40 units: two threads own 32 and 8 (slices of 16), three own 16, 16 and 8
    return {d: 4 if d == "modules" else 3 if d == "proj" else hidden if d == "hidden" else 5 for d in module.Cell.DIMS}


def run_both(name, dtype, threads, lengths=None):
    module = generated(name)
    cell = module.Cell(seed=0, dtype=dtype, **dims_for(module))
    cell.threads = threads
    rng = np.random.default_rng(3)
    T, B = 6, 5
    xs = {n: rng.normal(size=(T, B, cell.dims[d])).astype(dtype) for n, d in cell.INPUTS}
    state = {n: rng.normal(size=(B, cell.dims[d])).astype(dtype) for n, d in cell.STATES}
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    with owned.forced(False):
        want = cell.forward(x, state, tape=False, lengths=lengths)
    with owned.forced(True):
        assert owned.unit_slices(cell, B) is not None
        got = cell.forward(x, state, tape=False, lengths=lengths)
    return want, got


def assert_equal(want, got, dtype):
    (y0, f0, _), (y1, f1, _) = want, got
    ys0, ys1 = (y0, y1) if isinstance(y0, dict) else ({"y": y0}, {"y": y1})
    for k in ys0:
        assert np.isfinite(ys1[k]).all(), k
        np.testing.assert_allclose(ys1[k], ys0[k], **TOL[dtype], err_msg=k)
    for k in f0:
        assert np.isfinite(f1[k]).all(), k
        np.testing.assert_allclose(f1[k], f0[k], **TOL[dtype], err_msg=k)


CASES = [(n, "float64") for n in OWNED] + [("lstm", "float32"), ("gru", "float32")]


@pytest.mark.parametrize("name, dtype", CASES)
def test_owned_inference_equals_the_chunked_schedule(name, dtype):
    assert_equal(*run_both(name, dtype, 2), dtype)
    # lengths in any order: each thread runs the rows still inside their sequences, its units of
    # the rows past their ends
    assert_equal(*run_both(name, dtype, 2, lengths=np.array([6, 2, 4, 1, 6])), dtype)


def test_three_threads_own_uneven_slices():
    assert owned.slices(40, 3) == [(0, 16), (16, 32), (32, 40)]
    assert_equal(*run_both("lstm", "float64", 3), "float64")


def test_a_taped_call_never_takes_it(monkeypatch):
    calls = []
    real = runtime.owned_steps
    monkeypatch.setattr(runtime, "owned_steps", lambda *a: calls.append(a[0].__name__) or real(*a))
    module = generated("lstm")
    cell = module.Cell(seed=0, dtype="float64", **dims_for(module))
    cell.threads = 2  # whatever numpy's BLAS was left with by a test before
    x = np.ones((3, 2, cell.dims["input"]))
    with owned.forced(True):
        cell.forward(x)
        assert calls == []
        cell.forward(x, tape=False)
    assert calls == ["_loop_infer_owned"]


@pytest.mark.parametrize("n, parts", [(40, 2), (512, 2), (512, 3), (100, 4), (17, 2), (16, 2), (5, 2)])
def test_slices_cover_the_units_in_aligned_disjoint_pieces(n, parts):
    got = owned.slices(n, parts)
    assert got[0][0] == 0 and got[-1][1] == n and 1 <= len(got) <= parts
    assert all(a < b for a, b in got) and all(b == a2 for (_, b), (a2, _) in zip(got, got[1:]))
    assert all(b % owned.ALIGN == 0 for _, b in got[:-1])


def test_the_rule(monkeypatch):
    lstm, rnn, gru_cho = generated("lstm"), generated("rnn"), generated("gru_cho")
    big = lstm.Cell(dtype="float32", input=8, hidden=512)
    big.threads = 2
    # numpy's OpenBLAS threads a one-pass call's products itself: never by the rule
    monkeypatch.setattr(blas, "threads_its_products", lambda: True)
    assert owned.unit_slices(big, 4) is None
    monkeypatch.setattr(blas, "threads_its_products", lambda: False)
    assert owned.unit_slices(big, 4) == [(0, 256), (256, 512)]
    # a batch the chunks already give every thread (2 chunks of 8 rows) is left to them
    assert owned.unit_slices(big, 16) is None
    # weights under one L2 (a 256-unit LSTM: 1 MiB in float32), a cell with one tanh a unit,
    # one thread, a cell without the kernel: no
    small = lstm.Cell(dtype="float32", input=8, hidden=256)
    small.threads = 2
    elman = rnn.Cell(dtype="float32", input=8, hidden=1024)
    elman.threads = 2
    # (against one core's L2 as the rule reads it: a machine's own may be that 1 MiB, or less, and
    # weights of at least one L2 are taken; on an AMD EPYC with 1 MiB of L2 a core they were)
    monkeypatch.setattr(owned, "_L2", 2 << 20)
    assert owned.unit_slices(small, 4) is None
    monkeypatch.setattr(owned, "_L2", 1 << 20)
    assert owned.unit_slices(small, 4) == [(0, 128), (128, 256)]
    monkeypatch.setattr(owned, "_L2", 2 << 20)
    assert owned.unit_slices(elman, 4) is None
    big.threads = 1
    assert owned.unit_slices(big, 4) is None
    assert owned.unit_slices(gru_cho.Cell(dtype="float32", input=8, hidden=512), 4) is None
    with owned.forced(False):
        big.threads = 2
        assert owned.unit_slices(big, 4) is None


def mkl_installed() -> bool:
    try:
        importlib.metadata.distribution("mkl")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


MKL_CHILD = """
import numpy as np
from cellspec import blas, owned
from generated import lstm
blas.set_threads(2)
cell = lstm.Cell(dtype="float32", seed=0, input=16, hidden=512)
x = np.random.default_rng(0).standard_normal((5, 4, 16)).astype(np.float32)
assert owned.unit_slices(cell, 4) == [(0, 256), (256, 512)], owned.unit_slices(cell, 4)
y1, f1, _ = cell.forward(x, tape=False)
with owned.forced(False):
    y0, f0, _ = cell.forward(x, tape=False)
assert np.isfinite(y1).all()
np.testing.assert_allclose(y1, y0, rtol=2e-5, atol=2e-6)
np.testing.assert_allclose(f1["c"], f0["c"], rtol=2e-5, atol=2e-6)
print("ok")
"""


@pytest.mark.skipif(not mkl_installed(), reason='MKL not installed (pip install -e ".[mkl]"): the rule picks the owned kernel on MKL only')
def test_on_mkl_the_rule_picks_it_for_a_small_batch_of_a_large_cell(tmp_path):
    env = dict(os.environ, CELLSPEC_BLAS="mkl", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    r = subprocess.run([sys.executable, "-c", MKL_CHILD], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
