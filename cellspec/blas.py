"""The matrix product that kernels call inside their time loops: `matmul(a, b, out)`, out = a @ b
for 2-d arrays with unit-stride rows, which may be further apart (column windows of wider arrays:
a's in the time loops, b's and out's too in the step kernels that keep their weights, `owned`),
without allocating.

It calls the OpenBLAS that numpy itself uses, through the CBLAS symbols of the numpy wheel, so the
products in the time loop and numpy's products outside it share one BLAS and one thread pool
(Numba's own `np.dot` goes through SciPy's OpenBLAS: a second pool, slower on these shapes, and
the two pools' spinning threads contend for the cores). A product with one row goes to gemv,
which OpenBLAS runs many times faster than gemm with M = 1. A product of a few rows by a large
`b` handed as the transpose of a row-major W (`step_operand` lays the time loops' weights out
so where that measures faster) runs as out^T = W a^T into a scratch, copied across.

Those symbols are internals of the numpy wheel (numpy 2.0 and later, from PyPI); where they are
not found, `matmul` falls back to `np.dot` inside Numba, which calls SciPy's BLAS: SciPy is needed
there only (`pip install scipy`), and a cell refuses to be built without either (`check`).
SciPy is not a dependency otherwise: where it is installed, Numba's CPU target imports its
`cython_blas` on the first call of any jitted function, a third of a cached cell's load, unless
told not to (`_defer_scipy_import`, below). `BACKEND` says which BLAS is in use. Imports only numpy and numba
(SciPy in the fallback alone).

With the `mkl` wheel installed (`pip install -e ".[mkl]"`), `CELLSPEC_BLAS=mkl` in the environment
(or `use("mkl")` before the first cell runs) sends the same calls to Intel MKL's CBLAS in its
*sequential* layer instead, so that cellspec's own threads are the only ones: a batch-parallel
call's chunks, and for the products outside the time loop (`dot`: the hoisted input product, the
weight gradients) their rows split over `threads()` Python threads (ctypes lets go of the GIL). A
call that runs as one pass runs its per-step products on one core, so on MKL a batch splits into
chunks down to 8 rows each, whatever its cell (`CellBase.batch_chunks`); only a batch too small
for that (S4's 1 row) runs on one core. Both backends are registered under one set of names with one signature
(64-bit sizes where numpy's OpenBLAS has them, MKL's `_64` ILP64 symbols then), so a kernel in
Numba's cache links to whichever backend the process chose.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from llvmlite import binding as llvm
from numba import njit, types
from numba.extending import overload

from . import mkl

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_NUMPY_SYMBOLS: dict[str, int] = {}
_OMATCOPY: dict = {}  # dtype -> numpy's OpenBLAS's out-of-place transpose (cblas_?omatcopy)


def _load_numpy_openblas():
    """Register numpy's CBLAS gemm/gemv with LLVM under our own names; returns the C integer
    type of their sizes, or None."""
    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix, int_type in (("64_", types.int64), ("", types.int32)):
            names = {k: f"scipy_cblas_{k}{suffix}" for k in ("sgemm", "dgemm", "sgemv", "dgemv")}
            if all(hasattr(lib, n) for n in names.values()):
                for k, n in names.items():
                    _NUMPY_SYMBOLS[k] = ctypes.cast(getattr(lib, n), ctypes.c_void_p).value
                    llvm.add_symbol(f"cellspec_cblas_{k}", _NUMPY_SYMBOLS[k])
                for k in ("somatcopy", "domatcopy"):
                    f = getattr(lib, f"scipy_cblas_{k}{suffix}", None)
                    if f is not None:
                        size = ctypes.c_int64 if int_type == types.int64 else ctypes.c_int
                        real = ctypes.c_float if k[0] == "s" else ctypes.c_double
                        f.argtypes = [ctypes.c_int, ctypes.c_int, size, size, real, ctypes.c_void_p, size, ctypes.c_void_p, size]
                        f.restype = None
                        _OMATCOPY[np.dtype(np.float32 if k[0] == "s" else np.float64)] = f
                setter = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
                getter = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
                return int_type, setter, getter
    return None, None, None


def _scipy_blas_on_disk() -> bool:
    """Whether SciPy's cython_blas is installed, found without importing SciPy."""
    spec = importlib.util.find_spec("scipy")
    folders = (spec.submodule_search_locations or []) if spec else []
    return any(glob.glob(os.path.join(f, "linalg", "cython_blas*")) for f in folders)


def _defer_scipy_import() -> None:
    """Import Numba's `arraymath` with its BLAS probe answered from the disk. Numba's CPU target
    imports `arraymath` on the first call of any jitted function, and `arraymath` imports SciPy's
    cython_blas there only to learn whether np.dot and friends may call it (its `_HAVE_BLAS`):
    0.15-0.17 s of a cached cell's 0.45 s load here (SciPy 1.17, present as jax's dependency),
    for a BLAS the kernels never call. The answer is the same; SciPy is imported when a jitted
    np.dot or linalg function is first typed (Numba's own `ensure_blas`, restored at once, still
    runs then). Nothing is done where `arraymath` is already imported."""
    if "numba.np.arraymath" in sys.modules:
        return
    from numba.np import linalg as numba_linalg

    real = getattr(numba_linalg, "ensure_blas", None)
    if real is None:
        return

    def probe():
        if not _scipy_blas_on_disk():
            raise ImportError("scipy 0.16+ is required for linear algebra")

    numba_linalg.ensure_blas = probe
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        numba_linalg.ensure_blas = real


_INT, _SET_THREADS, _GET_THREADS = _load_numpy_openblas()
_SCIPY_BLAS = None  # the fallback's SciPy BLAS found (True) or not (False); None: not needed
if _INT is None:
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (what Numba's np.dot calls)

        _SCIPY_BLAS = True
    except ImportError:
        _SCIPY_BLAS = False
else:
    _defer_scipy_import()
if _GET_THREADS is not None:
    _GET_THREADS.restype = ctypes.c_int
# whether the kernels call a CBLAS (numpy's OpenBLAS or MKL), which takes column windows: SciPy's
# fallback through Numba's np.dot takes C-contiguous operands only
CBLAS = _INT is not None
OPENBLAS = "numpy's OpenBLAS (CBLAS)" if _INT is not None else "numba np.dot (SciPy's BLAS)"
BACKENDS = ("openblas", "mkl")
class BlasError(RuntimeError):
    """A backend that cannot be used: not installed, unknown, or asked for after a cell ran."""


def mkl_code_path() -> str | None:
    """The code path MKL says it runs on this CPU (`cellspec.mkl.code_path`); None where the
    backend in use is not MKL."""
    return mkl.code_path(mkl.library()) if _on_mkl else None


BACKEND = OPENBLAS
_MKL = None  # MKL's CBLAS functions once `use("mkl")` loaded them
_on_mkl = False  # the backend in use is MKL (`dot` calls it)
_ran = False  # a cell has called `dot`: its kernels are linked to the backend of that moment


def check() -> None:
    """A BlasError where the kernels would have no BLAS to call: neither numpy's own OpenBLAS nor
    SciPy's for the fallback. Cells call it when they are built, before any kernel runs."""
    if _SCIPY_BLAS is False:
        raise BlasError("the kernels have no BLAS to call: numpy's own OpenBLAS was not found (in the numpy.libs "
                        "of numpy 2.0 or later from PyPI), and SciPy, whose BLAS Numba's np.dot calls instead, "
                        "is not installed: pip install scipy")


def use(name: str) -> None:
    """Send the cells' products to backend `name` ("openblas" or "mkl") from now on. Only before
    the first cell runs in this process: a kernel, once linked, keeps the backend it was linked to."""
    global BACKEND, _MKL, _on_mkl
    if name not in BACKENDS:
        raise BlasError(f"unknown BLAS backend {name!r}; backends: {', '.join(BACKENDS)}")
    wanted = OPENBLAS if name == "openblas" else "Intel MKL (CBLAS, sequential)"
    if wanted == BACKEND:
        return
    if _ran:
        raise BlasError(f"cannot switch to {name}: a cell already ran on {BACKEND}; set CELLSPEC_BLAS={name} before starting")
    if _INT is None:
        raise BlasError("the kernels' CBLAS names are missing (numpy's OpenBLAS was not found): no backend to switch")
    if name == "mkl":
        lib = mkl.library()
        if lib is None:
            raise BlasError('MKL is not installed: pip install -e ".[mkl]" (the mkl wheel\'s libmkl_rt)')
        _MKL = _MKL or mkl.functions(lib, _INT == types.int64)
        symbols = {k: ctypes.cast(f, ctypes.c_void_p).value for k, f in _MKL.items()}
    else:
        symbols = _NUMPY_SYMBOLS
    for k, address in symbols.items():
        llvm.add_symbol(f"cellspec_cblas_{k}", address)
    BACKEND, _on_mkl = wanted, name == "mkl"


def set_threads(n: int) -> None:
    """Set the threads of numpy's OpenBLAS, which the kernels share (on MKL, the threads that
    `dot` splits a product's rows over)."""
    if _SET_THREADS is not None:
        _SET_THREADS(ctypes.c_int(n) if _INT == types.int32 else ctypes.c_int64(n))


def threads_its_products() -> bool:
    """Whether the backend splits a product over threads of its own: numpy's OpenBLAS does; MKL's
    sequential layer does not, so on MKL a time loop run as one pass runs on one core."""
    return not _on_mkl


def threads() -> int:
    """The threads a call made on this Python thread may use: numpy's OpenBLAS's count, as set;
    1 inside `single_threaded()` (on the thread in the block); 1 where the count cannot be set
    (SciPy's BLAS fallback, whose threads `set_threads` does not reach: no batch-parallel calls
    there). Another thread's `single_threaded()` block, which has OpenBLAS on one thread for a
    while, does not change what it says here: a call that decides how to split its batch decides
    the same with other threads around."""
    if getattr(_local, "single", 0):
        return 1
    with _lock:
        return _threads_before if _single_calls else _count()


def _count() -> int:
    """numpy's OpenBLAS's thread count now; 1 where it cannot be set."""
    return 1 if _GET_THREADS is None or _SET_THREADS is None else int(_GET_THREADS())


# Calls inside `single_threaded()` now, and the thread count the first of them found. The count is
# global to the process, so overlapping calls (two Python threads, each in a batch-parallel call)
# share one save and one restore: each saving and restoring its own would let the one that entered
# second save 1 and restore it last.
_lock = threading.Lock()
_single_calls = 0
_threads_before = 1
# how deep this Python thread is in `single_threaded()` blocks
_local = threading.local()


@contextlib.contextmanager
def single_threaded():
    """numpy's OpenBLAS on one thread inside the block, and its thread count as it was once the
    last block that overlaps this one ends."""
    global _single_calls, _threads_before
    with _lock:
        if _single_calls == 0:
            _threads_before = _count()
            set_threads(1)
        _single_calls += 1
    _local.single = getattr(_local, "single", 0) + 1
    try:
        yield
    finally:
        _local.single -= 1
        with _lock:
            _single_calls -= 1
            if _single_calls == 0:
                set_threads(_threads_before)


def matmul(a, b, out):
    """out = a @ b (NumPy, outside Numba)."""
    np.dot(a, b, out=out)


def transposed(a):
    """a.T as a new C-contiguous array (the time loops' stacked weights W^T): numpy's OpenBLAS's
    omatcopy, on either backend, where numpy copies element by element across rows: 0.65 ms
    against 7.2 for the LSTM's [2048, 512] float32 at S3, 2.0 against 25.5 for [4096, 1024], 0.07
    against 0.24 for [1024, 256] (medians of 21). np.ascontiguousarray(a.T) where it is missing."""
    f = _OMATCOPY.get(a.dtype)
    if f is None or a.ndim != 2 or not a.flags.c_contiguous or 0 in a.shape:
        return np.ascontiguousarray(a.T)
    rows, cols = a.shape
    out = np.empty((cols, rows), a.dtype)
    f(ROW_MAJOR, TRANS, rows, cols, 1.0, a.ctypes.data, cols, out.ctypes.data, rows)
    return out


STEP_ROWS = 32  # a time loop's products of at most this many rows may take W a^T (`step_operand`)
STEP_BYTES = 1 << 20  # from weights of this size


def step_operand(b, rows: int):
    """b [k, n], the weights a time loop's per-step products `matmul(a, b, out)` read with `rows`
    rows of a, laid out for them: C-contiguous, or as the transpose of a C-contiguous W = b^T,
    which `matmul` then computes as out^T = W a^T and copies across: on numpy's OpenBLAS, for 2 to
    STEP_ROWS rows and at least STEP_BYTES of weights, where that measured faster (on an AMD EPYC,
    Zen 5: the README's "The weights laid out for few rows"); MKL keeps the first."""
    fast = CBLAS and not _on_mkl and 1 < rows <= STEP_ROWS and b.nbytes >= STEP_BYTES
    if fast:
        return b if b.T.flags.c_contiguous else transposed(b).T
    return b if b.flags.c_contiguous else transposed(b.T)


def _operand(x):
    """(transpose flag, leading dimension) of a 2-d array as CBLAS reads it, or None where its
    rows or its columns are not unit-stride."""
    item = x.itemsize
    if x.strides[1] == item and x.strides[0] % item == 0 and x.strides[0] >= max(1, x.shape[1]) * item:
        return NO_TRANS, x.strides[0] // item
    if x.strides[0] == item and x.strides[1] % item == 0 and x.strides[1] >= max(1, x.shape[0]) * item:
        return TRANS, x.strides[1] // item
    return None


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_SPLIT_ROWS = 256  # below this many rows a product runs in one call


_NUMPY_GEMM: dict[str, object] = {}


def _numpy_gemm(name: str):
    """numpy's CBLAS sgemm or dgemm as a ctypes function."""
    if name not in _NUMPY_GEMM:
        real = ctypes.c_float if name == "sgemm" else ctypes.c_double
        size = ctypes.c_int64 if _INT == types.int64 else ctypes.c_int
        enum = ctypes.c_int
        proto = ctypes.CFUNCTYPE(None, enum, enum, enum, size, size, size, real, ctypes.c_void_p, size, ctypes.c_void_p, size, real, ctypes.c_void_p, size)
        _NUMPY_GEMM[name] = proto(_NUMPY_SYMBOLS[name])
    return _NUMPY_GEMM[name]


def dot(a, b):
    """a @ b for the products outside the time loop (2-d, one dtype): numpy's own `np.dot` on
    OpenBLAS, but for an operand that is neither C- nor F-ordered yet has unit-stride rows or
    columns (a column window of a wider array, `Schedule.dG_columns`), which np.dot would copy
    the slow way (the transposed window [6400, 768] of a [6400, 1024] array times a [6400, 256]
    matrix: 39.6 ms against 9.2 contiguous), numpy's gemm with its leading dimension, on
    OpenBLAS's own threads; on MKL, MKL's gemm, its rows split over `threads()` threads."""
    global _ran, _pool, _pool_size
    _ran = True
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64) or 0 in a.shape + b.shape:
        return np.dot(a, b)
    single = a.dtype == np.float32
    if _on_mkl:
        a = a if _operand(a) else np.ascontiguousarray(a)
        b = b if _operand(b) else np.ascontiguousarray(b)
        gemm = _MKL["sgemm" if single else "dgemm"]
    else:
        ordered = all(x.flags.c_contiguous or x.flags.f_contiguous for x in (a, b))
        if _INT is None or ordered or not (_operand(a) and _operand(b)):
            return np.dot(a, b)
        gemm = _numpy_gemm("sgemm" if single else "dgemm")
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), a.dtype)
    real, size = (ctypes.c_float if single else ctypes.c_double), (ctypes.c_int64 if _INT == types.int64 else ctypes.c_int)
    tb, ldb = _operand(b)

    def rows(lo, hi):
        part = a[lo:hi]
        ta, lda = _operand(part)
        gemm(ROW_MAJOR, ta, tb, size(hi - lo), size(n), size(k), real(1.0), ctypes.c_void_p(part.ctypes.data), size(lda),
             ctypes.c_void_p(b.ctypes.data), size(ldb), real(0.0), ctypes.c_void_p(out[lo:].ctypes.data), size(n))

    # OpenBLAS splits a product over its own threads; MKL's sequential layer, over ours
    parts = min(threads(), max(1, m // _SPLIT_ROWS)) if _on_mkl else 1
    if parts == 1:
        rows(0, m)
        return out
    if _pool_size < parts:
        _pool, _pool_size = ThreadPoolExecutor(parts, thread_name_prefix="cellspec-blas"), parts
    edges = [m * i // parts for i in range(parts + 1)]
    for f in [_pool.submit(rows, lo, hi) for lo, hi in zip(edges, edges[1:])]:
        f.result()
    return out


def _externals(int_type):
    ptr = types.uintp
    enum = types.int32
    gemm = {}
    gemv = {}
    for prefix, real in (("s", types.float32), ("d", types.float64)):
        gemm[real] = types.ExternalFunction(
            f"cellspec_cblas_{prefix}gemm",
            types.void(enum, enum, enum, int_type, int_type, int_type, real, ptr, int_type, ptr, int_type, real, ptr, int_type),
        )
        gemv[real] = types.ExternalFunction(
            f"cellspec_cblas_{prefix}gemv",
            types.void(enum, enum, int_type, int_type, real, ptr, int_type, ptr, int_type, real, ptr, int_type),
        )
    return gemm, gemv


if _INT is not None:
    _GEMM, _GEMV = _externals(_INT)

    @overload(matmul, inline="never")
    def _matmul(a, b, out):
        real = a.dtype
        if real not in _GEMM or b.dtype != real or out.dtype != real:
            return None
        gemm, gemv = _GEMM[real], _GEMV[real]
        one, zero = (np.float32(1.0), np.float32(0.0)) if real == types.float32 else (1.0, 0.0)

        def impl(a, b, out):
            m, k = a.shape
            n = b.shape[1]
            # each may be a column window of a wider array (its rows `ld` apart); b may be the
            # transpose of one (unit-stride columns: a window of rows of W, read as W^T)
            # (numpy may give a dim of size 1 any stride: one column is read by rows, and one
            # row's leading dimension is only checked to be at least its length)
            item = b.itemsize
            by_rows = b.strides[1] == item or k == 1 or n == 1
            ldb = (b.strides[0] if by_rows else b.strides[1]) // item
            if k == 1:
                ldb = max(ldb, n)
            if m == 1:
                # one row is a matrix-vector product: y = b^T a, or W a for b = W^T
                if by_rows:
                    gemv(ROW_MAJOR, TRANS, k, n, one, b.ctypes.data, ldb, a.ctypes.data, 1, zero, out.ctypes.data, 1)
                else:
                    gemv(ROW_MAJOR, NO_TRANS, n, k, one, b.ctypes.data, ldb, a.ctypes.data, 1, zero, out.ctypes.data, 1)
            else:
                lda, ldc = a.strides[0] // a.itemsize, out.strides[0] // out.itemsize
                gemm(ROW_MAJOR, NO_TRANS, NO_TRANS if by_rows else TRANS, m, n, k, one, a.ctypes.data, lda, b.ctypes.data, ldb, zero, out.ctypes.data, ldc)

        plain = njit(impl)

        def few_rows(a, b, out):
            m, k = a.shape
            n = b.shape[1]
            if m <= 1 or m > STEP_ROWS:  # b is F-ordered: W's rows are unit-stride
                plain(a, b, out)
                return
            # b = W^T, W's rows unit-stride (`step_operand`): out^T = W a^T into a scratch
            # [n, m], then copied across, in blocks of 16 columns of out
            ldw = max(b.strides[1] // b.itemsize, k)
            s = np.empty((n, m), a.dtype)
            gemm(ROW_MAJOR, NO_TRANS, TRANS, n, m, k, one, b.ctypes.data, ldw, a.ctypes.data, a.strides[0] // a.itemsize, zero, s.ctypes.data, m)
            for j0 in range(0, n, 16):
                j1 = min(n, j0 + 16)
                for i in range(m):
                    for j in range(j0, j1):
                        out[i, j] = s[j, i]

        # only an F-ordered b (the transposed view `step_operand` hands a time loop) compiles the
        # second route: a kernel on C-ordered weights compiles as before it existed
        return few_rows if b.layout == "F" else impl

else:

    @overload(matmul)
    def _matmul(a, b, out):
        def impl(a, b, out):
            np.dot(a, b, out)

        return impl


if os.environ.get("CELLSPEC_BLAS"):
    use(os.environ["CELLSPEC_BLAS"])
