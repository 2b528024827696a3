"""What a training process sets for itself, once: freed memory kept for the next step, and
subnormal floats flushed to zero. Both are process-wide (the second per thread, inherited by the
threads started after it), so the trainer sets them (`Run`), never `import cellspec`.

Freed memory (glibc; elsewhere nothing). Every training step allocates the cells' tapes and
gradients afresh (lstm at T=100, batch 32, hidden 64 tapes 6.5 MB a step) and frees them at its
end. With glibc's defaults, blocks that large are mapped from the kernel and unmapped when freed,
or trimmed off the top of the heap, so every step faults the same megabytes in again and has the
kernel zero them: lstm's forward+backward in the training loop took 5.1 ms a step against 3.5 ms
for the same calls back to back (measured in the loop against back-to-back calls).
Raising the mmap and trim thresholds keeps those pages for the next step (3.6 ms). The process's
resident size stays at its peak instead, which a training process reaches every step anyway.

Subnormals (x86-64; elsewhere nothing). A gradient that vanishes over time, the very thing the
long-gap tasks measure, goes through float32's subnormal range (below 1.2e-38) on its way to
zero, and x86 cores take a microcode path a hundred times slower for each subnormal operand: an
rnn on adding at T=200 took 34-45 s for 3000 steps against 2.5 s at T=50. The MXCSR's FTZ and DAZ
bits make such values zero, as `torch.set_flush_denormal(True)` does. A value that small carries
no information a step of Adam could use (its update is scaled by the gradient's own RMS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
# glibc refuses an mmap threshold above HEAP_MAX_SIZE/2 (32 MiB on 64-bit): blocks larger than
# that are still mapped, and their cost is small against the work that fills them
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20
FTZ_DAZ = 0x8040   # MXCSR: flush to zero (bit 15), denormals are zero (bit 6)

_kept = None
_flushed = None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; True where they were set."""
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux"):
            try:
                mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _kept = all(mallopt(k, v) == 1 for k, v in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
    return _kept


def _mxcsr_or():
    """A jitted function that ORs bits into this thread's MXCSR and returns its old value."""
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def mxcsr_or(typingctx, bits):
        def codegen(context, builder, signature, args):
            i8p = ir.IntType(8).as_pointer()
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            fnty = ir.FunctionType(ir.VoidType(), [i8p])
            builder.call(cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.stmxcsr"), [builder.bitcast(slot, i8p)])
            old = builder.load(slot)
            builder.store(builder.or_(old, args[0]), slot)
            builder.call(cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.ldmxcsr"), [builder.bitcast(slot, i8p)])
            return old

        return types.uint32(types.uint32), codegen

    @njit
    def set_bits(bits):
        return mxcsr_or(bits)

    return set_bits


def flush_denormals() -> bool:
    """FTZ and DAZ on in this thread (and the threads it starts from now on); True where set."""
    global _flushed
    if _flushed is None:
        _flushed = False
        if platform.machine().lower() in ("x86_64", "amd64"):
            import numpy as np

            _mxcsr_or()(np.uint32(FTZ_DAZ))
            _flushed = True
    return _flushed
