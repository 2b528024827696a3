"""The BLAS backends (cellspec.blas): every catalog cell gives the same outputs, final states and
gradients on Intel MKL as on numpy's OpenBLAS, float32 and float64, on two threads, with and
without lengths; `blas.dot` on
each operand layout the kernels hand it equals np.dot; and `use` refuses what it cannot do. One process per backend (a process links its kernels to one);
the MKL half runs where the `mkl` wheel is installed (pip install -e ".[mkl]") and says so when skipped.
Where numpy's own OpenBLAS is not found, the kernels call SciPy's BLAS through Numba's np.dot and
agree with the default path, and without SciPy a cell is refused before any kernel runs."""

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pytest

from cellspec import blas, mkl

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The same sums in another order (another GEMM's blocking): float32 rounding over products of at
# most a few hundred terms, and float64's.
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def mkl_installed() -> bool:
    """Whether the mkl wheel is installed (not whether it loads: a backend that fails to load
    where it is installed fails the test below instead of skipping it)."""
    try:
        importlib.metadata.distribution("mkl")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def run(tmp_path, backend):
    out = tmp_path / f"{backend}.npz"
    env = dict(os.environ, CELLSPEC_BLAS=backend, PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, os.path.join(HERE, "blas_run.py"), str(out), ROOT], env=env, check=True, timeout=600, cwd=ROOT)
    return dict(np.load(out))


@pytest.mark.skipif(not mkl_installed(), reason='MKL is not installed: pip install -e ".[mkl]" runs this test')
def test_every_cell_on_mkl_equals_openblas(tmp_path):
    ref, mkl = run(tmp_path, "openblas"), run(tmp_path, "mkl")
    assert "MKL" in str(mkl.pop("backend")) and "OpenBLAS" in str(ref.pop("backend"))
    assert set(ref) == set(mkl)
    for key, want in ref.items():
        got = mkl[key]
        assert np.isfinite(got).all(), key
        np.testing.assert_allclose(got, want, **TOL["float32" if "float32" in key else "float64"], err_msg=key)
    for dtype in ("float32", "float64"):  # dot, on MKL, against numpy's own product
        for layout in ("False", "True"):
            np.testing.assert_allclose(mkl[f"dot/{dtype}/{layout}"], mkl[f"dot/{dtype}/{layout}/numpy"], **TOL[dtype])
    # the bench's floor times the per-step products in the backend the cells use
    np.testing.assert_allclose(mkl["floor/float32/steps"], mkl["floor/float32/steps/numpy"], **TOL["float32"])


def passes_in_a_fresh_process(code: str) -> None:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not mkl_installed(), reason='MKL is not installed: pip install -e ".[mkl]" runs this test')
def test_switching_back_before_a_cell_ran_is_openblas_again():
    passes_in_a_fresh_process(
        "import numpy as np; from cellspec import blas; blas.use('mkl'); blas.use('openblas'); "
        "a = np.ones((600, 3)); assert blas.BACKEND == blas.OPENBLAS and not blas._on_mkl and (blas.dot(a, a.T) == 3).all()")


@pytest.mark.skipif(not mkl_installed(), reason='MKL is not installed: pip install -e ".[mkl]" runs this test')
def test_mkl_says_its_code_path_and_openblas_has_none():
    # the bench's tables name it (cellspec.bench.machine): MKL_Get_Version's processor field
    passes_in_a_fresh_process(
        "from cellspec import blas; assert blas.mkl_code_path() is None; blas.use('mkl'); "
        "path = blas.mkl_code_path(); assert isinstance(path, str) and 'processors' in path, path")


def test_dot_is_numpy_product_on_openblas():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 7)), rng.standard_normal((9, 7))
    if not blas._on_mkl:
        np.testing.assert_array_equal(blas.dot(a, b.T), np.dot(a, b.T))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dot_of_column_windows_equals_numpys_product(dtype):
    """The products after the loop read a group's gradient as a column window of a shared array
    (storage.gradient_windows), transposed or not; they go to BLAS with the window's leading
    dimension, never np.dot's slow copy, and give numpy's product of a contiguous copy."""
    rng = np.random.default_rng(3)
    wide = rng.standard_normal((700, 4 * 33)).astype(dtype)
    h, w = rng.standard_normal((700, 20)).astype(dtype), rng.standard_normal((3 * 33, 20)).astype(dtype)
    for window in (wide[:, :99], wide[:, 33:]):
        assert not (window.flags.c_contiguous or window.flags.f_contiguous)
        copy = np.ascontiguousarray(window)
        np.testing.assert_allclose(blas.dot(window.T, h), np.dot(copy.T, h), **TOL[dtype])
        np.testing.assert_allclose(blas.dot(window, w), np.dot(copy, w), **TOL[dtype])


def test_use_refuses_an_unknown_backend_and_a_switch_after_a_cell_ran(monkeypatch):
    with pytest.raises(blas.BlasError, match="unknown BLAS backend 'cublas'; backends: openblas, mkl"):
        blas.use("cublas")
    blas.use("mkl" if blas._on_mkl else "openblas")  # the backend in use: nothing to do
    monkeypatch.setattr(blas, "_ran", True)
    other = "openblas" if blas._on_mkl else "mkl"
    with pytest.raises(blas.BlasError, match=f"cannot switch to {other}: a cell already ran"):
        blas.use(other)


def test_missing_mkl_is_one_clear_line(monkeypatch):
    def no_library(path, *args, **kwargs):
        raise OSError(f"{path}: cannot open shared object file")

    monkeypatch.setattr(mkl.ctypes, "CDLL", no_library)
    mkl.library.cache_clear()
    try:
        assert mkl.library() is None
    finally:
        mkl.library.cache_clear()
    # and the backend says so, in one line, before anything is switched
    monkeypatch.setattr(mkl, "library", lambda: None)
    monkeypatch.setattr(blas, "_ran", False)
    monkeypatch.setattr(blas, "BACKEND", blas.OPENBLAS)
    monkeypatch.setattr(blas, "_MKL", None)
    with pytest.raises(blas.BlasError, match=r'MKL is not installed: pip install -e "\.\[mkl\]"'):
        blas.use("mkl")
    assert blas.BACKEND == blas.OPENBLAS


def test_bad_backend_in_the_environment_fails_at_import():
    env = dict(os.environ, CELLSPEC_BLAS="cublas")
    r = subprocess.run([sys.executable, "-c", "import cellspec.blas"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "unknown BLAS backend 'cublas'" in r.stderr


# A child in which numpy's own OpenBLAS is not found (its numpy.libs looks empty, as for a numpy
# that is not a PyPI wheel of 2.0 or later) and, with argv[1] "no scipy", SciPy cannot be
# imported: the rnn's forward and backward, float64, seeded, saved to argv[2].
FALLBACK_CHILD = """
import glob, sys
real = glob.glob
glob.glob = lambda pattern, *a, **k: [] if "numpy.libs" in pattern else real(pattern, *a, **k)
if sys.argv[1] == "no scipy":
    sys.modules["scipy"] = None   # import scipy raises ImportError
import numpy as np
from cellspec import blas, mkl
from generated import rnn
print(blas.BACKEND)
try:
    cell = rnn.Cell(dtype="float64", seed=1, input=3, hidden=5)
except blas.BlasError as e:
    print(f"BlasError: {e}")
    sys.exit(0)
x = np.random.default_rng(2).standard_normal((6, 4, 3))
y, final, tape = cell.forward(x)
dx, dparams, dstate = cell.backward(tape, np.ones_like(y))
np.savez(sys.argv[2], y=y, dx=dx, **{f"d{k}": v for k, v in dparams.items()})
"""


def fallback_child(tmp_path, scipy: str):
    # a Numba cache of its own: the kernels cached in generated/__pycache__ call numpy's OpenBLAS
    # by name, which this child does not register
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = tmp_path / "fallback.npz"
    r = subprocess.run([sys.executable, "-c", FALLBACK_CHILD, scipy, str(out)], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines(), out


def test_without_numpys_openblas_the_kernels_call_scipys_blas_and_agree(tmp_path):
    lines, out = fallback_child(tmp_path, "scipy")
    assert lines[0] == "numba np.dot (SciPy's BLAS)"
    from generated import rnn

    cell = rnn.Cell(dtype="float64", seed=1, input=3, hidden=5)
    x = np.random.default_rng(2).standard_normal((6, 4, 3))
    y, _, tape = cell.forward(x)
    dx, dparams, _ = cell.backward(tape, np.ones_like(y))
    got = dict(np.load(out))
    want = {"y": y, "dx": dx, **{f"d{k}": v for k, v in dparams.items()}}
    assert set(got) == set(want)
    for k, v in want.items():
        assert np.isfinite(got[k]).all(), k
        np.testing.assert_allclose(got[k], v, **TOL["float64"], err_msg=k)


def test_without_numpys_openblas_or_scipy_a_cell_is_refused_before_any_kernel_runs(tmp_path):
    lines, out = fallback_child(tmp_path, "no scipy")
    assert lines[1] == ("BlasError: the kernels have no BLAS to call: numpy's own OpenBLAS was not found (in the numpy.libs "
                        "of numpy 2.0 or later from PyPI), and SciPy, whose BLAS Numba's np.dot calls instead, is not "
                        "installed: pip install scipy")
    # nothing ran and nothing compiled (Numba makes its cache folders when a module is imported,
    # and writes files into them only when a function compiles)
    assert not out.exists()
    assert [f for _, _, files in os.walk(tmp_path / "numba") for f in files] == []


# A child that runs a cell and reports whether SciPy's linalg was imported, then what Numba's
# np.dot gives inside a jitted function, and Numba's own BLAS probe.
DEFERRED_CHILD = """
import sys
import numpy as np
import numba
from generated import rnn
cell = rnn.Cell(dtype="float64", seed=1, input=3, hidden=5)
y, _, tape = cell.forward(np.ones((4, 2, 3)))
cell.backward(tape, np.ones_like(y))
print("scipy.linalg" in sys.modules)
from numba.np import arraymath
print(arraymath._HAVE_BLAS)
if arraymath._HAVE_BLAS:
    print(numba.njit(lambda a, b: np.dot(a, b))(np.eye(3), np.arange(9.0).reshape(3, 3)).tolist())
"""


def test_a_cell_runs_without_importing_scipys_blas_and_numbas_np_dot_still_works(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    r = subprocess.run([sys.executable, "-c", DEFERRED_CHILD], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "False"  # 0.15-0.17 s of a cached load where SciPy is installed
    try:
        import scipy.linalg.cython_blas  # noqa: F401

        have = True
    except ImportError:
        have = False
    assert lines[1] == str(have)  # Numba's probe answered as its own import would have
    if have:
        assert lines[2] == str(np.arange(9.0).reshape(3, 3).tolist())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_takes_column_windows_and_a_transposed_b(dtype):
    # the step kernels that keep their weights call matmul on windows of b and out, and a b read
    # as the transpose of a row-major matrix is taken too; one row goes to gemv either way
    import numba as nb

    from cellspec.blas import matmul

    @nb.njit
    def windows(a, b, out, lo, hi):
        matmul(a, b[:, lo:hi], out[:, lo:hi])

    @nb.njit
    def by_transpose(a, w, out):
        matmul(a, w.T, out)

    rng = np.random.default_rng(5)
    for m in (1, 7):
        a = rng.standard_normal((m, 6)).astype(dtype)
        b = rng.standard_normal((6, 20)).astype(dtype)
        out = np.full((m, 20), np.nan, dtype)
        windows(a, b, out, 4, 13)
        np.testing.assert_allclose(out[:, 4:13], a @ b[:, 4:13], **TOL[dtype])
        assert np.isnan(out[:, :4]).all() and np.isnan(out[:, 13:]).all()  # nothing outside written
        w = rng.standard_normal((9, 6)).astype(dtype)
        out = np.empty((m, 9), dtype)
        by_transpose(a, w, out)
        np.testing.assert_allclose(out, a @ w.T, **TOL[dtype])
    # few rows by a transposed b (2 to blas.STEP_ROWS) go as out^T = w a^T and a copy across:
    # a and out as column windows of wider arrays, and nothing outside out's window written
    empty = np.empty((0, 9), dtype)
    by_transpose(np.empty((0, 6), dtype), rng.standard_normal((9, 6)).astype(dtype), empty)  # no rows: nothing to do
    for m in (2, 16, blas.STEP_ROWS, blas.STEP_ROWS + 1):
        wide = rng.standard_normal((m, 50)).astype(dtype)
        w = rng.standard_normal((37, 21)).astype(dtype)
        out = np.full((m, 60), np.nan, dtype)
        by_transpose(wide[:, 3:24], w, out[:, 5:42])
        np.testing.assert_allclose(out[:, 5:42], wide[:, 3:24] @ w.T, **TOL[dtype])
        assert np.isnan(out[:, :5]).all() and np.isnan(out[:, 42:]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_transposed_is_the_c_ordered_transpose(dtype):
    a = np.random.default_rng(6).standard_normal((37, 11)).astype(dtype)
    for x in (a, a[:, 2:9], a[::2]):  # contiguous, and two views it copies the plain way
        t = blas.transposed(x)
        assert t.flags.c_contiguous and t.dtype == x.dtype
        np.testing.assert_array_equal(t, x.T)
    if dtype != "float16":
        assert np.dtype(dtype) in blas._OMATCOPY  # numpy's OpenBLAS's omatcopy was found
