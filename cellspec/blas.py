"""The matrix product that kernels call inside their time loops: `matmul(a, b, out)`, out = a @ b
for C-contiguous 2-d arrays, without allocating.

It calls the OpenBLAS that numpy itself uses, through the CBLAS symbols of the numpy wheel, so the
products in the time loop and numpy's products outside it share one BLAS and one thread pool
(Numba's own `np.dot` goes through SciPy's OpenBLAS: a second pool, slower on these shapes, and
the two pools' spinning threads contend for the cores). A product with one row goes to gemv,
which OpenBLAS runs many times faster than gemm with M = 1.

Those symbols are internals of the numpy wheel; where they are not found, `matmul` falls back to
`np.dot` inside Numba. `BACKEND` says which one is in use. Imports only numpy and numba.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading

import numpy as np
from llvmlite import binding as llvm
from numba import types
from numba.extending import overload

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


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
                    llvm.add_symbol(f"cellspec_cblas_{k}", ctypes.cast(getattr(lib, n), ctypes.c_void_p).value)
                setter = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
                getter = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
                return int_type, setter, getter
    return None, None, None


_INT, _SET_THREADS, _GET_THREADS = _load_numpy_openblas()
if _GET_THREADS is not None:
    _GET_THREADS.restype = ctypes.c_int
BACKEND = "numpy's OpenBLAS (CBLAS)" if _INT is not None else "numba np.dot (SciPy's BLAS)"


def set_threads(n: int) -> None:
    """Set the threads of numpy's OpenBLAS, which the kernels share."""
    if _SET_THREADS is not None:
        _SET_THREADS(ctypes.c_int(n) if _INT == types.int32 else ctypes.c_int64(n))


def threads() -> int:
    """The threads of numpy's OpenBLAS; 1 where they cannot be set (SciPy's BLAS fallback, whose
    threads `set_threads` does not reach: no batch-parallel calls there)."""
    if _GET_THREADS is None or _SET_THREADS is None:
        return 1
    return int(_GET_THREADS())


# Calls inside `single_threaded()` now, and the thread count the first of them found. The count is
# global to the process, so overlapping calls (two Python threads, each in a batch-parallel call)
# share one save and one restore: each saving and restoring its own would let the one that entered
# second save 1 and restore it last.
_lock = threading.Lock()
_single_calls = 0
_threads_before = 1


@contextlib.contextmanager
def single_threaded():
    """numpy's OpenBLAS on one thread inside the block, and its thread count as it was once the
    last block that overlaps this one ends."""
    global _single_calls, _threads_before
    with _lock:
        if _single_calls == 0:
            _threads_before = threads()
            set_threads(1)
        _single_calls += 1
    try:
        yield
    finally:
        with _lock:
            _single_calls -= 1
            if _single_calls == 0:
                set_threads(_threads_before)


def matmul(a, b, out):
    """out = a @ b (NumPy, outside Numba)."""
    np.dot(a, b, out=out)


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
            if m == 1:
                # y = b^T a: one row is a matrix-vector product
                gemv(ROW_MAJOR, TRANS, k, n, one, b.ctypes.data, n, a.ctypes.data, 1, zero, out.ctypes.data, 1)
            else:
                gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, one, a.ctypes.data, k, b.ctypes.data, n, zero, out.ctypes.data, n)

        return impl

else:

    @overload(matmul)
    def _matmul(a, b, out):
        def impl(a, b, out):
            np.dot(a, b, out)

        return impl
