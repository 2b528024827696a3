"""Intel MKL's runtime library for `cellspec.blas` (the `mkl` wheel's libmkl_rt, `pip install -e
".[mkl]"`): loaded in its sequential layer, its CBLAS functions, and the code path it says it runs
on this CPU. Imports only the standard library."""

from __future__ import annotations

import ctypes
import functools
import os
import sys

# MKL_THREADING_SEQUENTIAL in mkl_service.h. MKL's threaded layers were tried: once PyTorch (whose
# CPU build carries its own MKL) had run, MKL_Set_Num_Threads(1) no longer held (MKL_Get_Max_Threads
# still said 2), on Intel's OpenMP and on GNU's alike, so their thread count could not follow
# set_threads. The sequential layer has no count to lose.
SEQUENTIAL = 1


@functools.cache
def library():
    """libmkl_rt in its sequential layer, or None where it is not installed."""
    names = ("libmkl_rt.so.2", "libmkl_rt.so")
    folders = [os.path.join(p, "lib") for p in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix))]
    for path in [os.path.join(f, n) for f in folders for n in names] + list(names):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Threading_Layer(SEQUENTIAL)
        return lib
    return None


def functions(lib, ilp64: bool) -> dict[str, object]:
    """MKL's CBLAS functions, with 64-bit sizes (its ILP64 `_64` names) where `ilp64`."""
    suffix = "_64" if ilp64 else ""
    return {k: getattr(lib, f"cblas_{k}{suffix}") for k in ("sgemm", "dgemm", "sgemv", "dgemv")}


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("update", ctypes.c_int)] + [
        (k, ctypes.c_char_p) for k in ("status", "build", "processor", "platform")]


def code_path(lib) -> str | None:
    """The code path MKL says it runs on this CPU: MKL_Get_Version's processor field, the name of
    the instruction set it dispatches to, or, on an AMD EPYC (Zen 5, AVX-512) measured here, the
    generic "Intel(R) Architecture processors"."""
    version = _Version()
    lib.MKL_Get_Version(ctypes.byref(version))
    return version.processor.decode(errors="replace") if version.processor else None
