"""Which machine a bench ran on, for its tables: the CPU's model and vendor, the CPU LLVM compiles
the kernels for (Numba's host CPU), whether it has AVX-512, and on MKL the code path MKL reports.

Machines differ in what bounds a cell: on an AMD EPYC (Zen 5) MKL reports the generic "Intel(R)
Architecture processors" path and its float32 GEMM measured 93 GFLOP/s a core against numpy's
OpenBLAS's 205 on the same core, where on an Intel Xeon with AVX-512 MKL was the faster of the two
(the README's "BLAS backends"). A table that does not say which machine it is cannot be compared."""

from __future__ import annotations

import platform


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def describe() -> dict:
    """{"model", "vendor", "llvm_cpu", "avx512", "mkl_code_path"}: a value is None where this
    machine does not say; mkl_code_path only where MKL is the backend in use."""
    from .. import blas

    info = _cpuinfo()
    flags = info.get("flags", "").split()
    try:
        import llvmlite.binding as llvm

        llvm_cpu = llvm.get_host_cpu_name()
    except Exception:  # Numba's own llvmlite; no CPU name on a platform LLVM does not know
        llvm_cpu = None
    return {"model": info.get("model name") or platform.processor() or None,
            "vendor": info.get("vendor_id") or None,
            "llvm_cpu": llvm_cpu,
            "avx512": ("avx512f" in flags) if flags else None,
            "mkl_code_path": blas.mkl_code_path()}


def sentence(cpu: dict) -> str:
    """The CPU in words, for a table's first line: "AMD EPYC (AuthenticAMD; LLVM's host CPU
    znver5; AVX-512)"."""
    parts = [p for p in (cpu.get("vendor"), cpu.get("llvm_cpu") and f"LLVM's host CPU {cpu['llvm_cpu']}") if p]
    if cpu.get("avx512") is not None:
        parts.append("AVX-512" if cpu["avx512"] else "no AVX-512")
    return (cpu.get("model") or "an unnamed CPU") + (f" ({'; '.join(parts)})" if parts else "")
