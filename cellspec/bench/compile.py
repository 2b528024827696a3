"""What a sweep pays per cell before its first step: a spec's build, its first forward+backward
(float32) with nothing in Numba's cache, and the same run in a later process that loads every
kernel from the cache. Each is measured in a fresh process of its own (`CHILD`), through
`cellspec.load` with a cache folder and a Numba cache of the measurement's own, as a sweep's
worker meets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


# The child, as a script of its own: it imports only what a sweep's worker imports (not the bench).
# Its clock starts before its first import, as a cached load's time is mostly imports. One
# forward+backward of the cell in float32 at the tiny shape (T=5, B=2, every dim 4, `proj` 2, as
# the bench's tiny size), on argv[2] threads; it prints, as JSON, the seconds to the module
# loaded (`load_s`: the imports, and the spec's build when cellspec's cache lacks it), from there
# to the end of the backward pass (`run_s`: Numba's compile, or its cache's load), and in all.
CHILD = """
import time
start = time.perf_counter()
import json, sys
import numpy as np
import cellspec
module = cellspec.load(sys.argv[1])
loaded = time.perf_counter()
from cellspec.blas import set_threads
from cellspec.runtime import tied
set_threads(int(sys.argv[2]))
Cell = module.Cell
cell = Cell(dtype="float32", seed=0, **tied(Cell.CONSTRAINTS, {d: 2 if d == "proj" else 4 for d in Cell.DIMS}))
xs = {n: np.ones((5, 2, cell.dims[d]), np.float32) for n, d in Cell.INPUTS}
dys = {n: np.ones((5, 2, cell.dims[d]), np.float32) for n, d in Cell.OUTPUTS}
_, _, tape = cell.forward(xs if len(xs) > 1 else next(iter(xs.values())))
cell.backward(tape, dys if len(dys) > 1 else next(iter(dys.values())))
end = time.perf_counter()
print(json.dumps({"load_s": loaded - start, "run_s": end - loaded, "total_s": end - start}))
"""


def _child(spec: str, threads: int, env: dict) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, spec, str(threads)], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError((run.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(run.stdout.strip().splitlines()[-1])


def compile_times(spec: str, threads: int) -> dict[str, float] | None:
    """Seconds, rounded to 0.01: `build` (the fresh process's imports and the spec compiled to its
    module), `first` (its first forward+backward: Numba compiles the kernels it calls, in the
    dtype asked for) and `cached` (a later process, from its first import to the end of its first
    forward+backward; the median of three). None, with a note, where a child fails."""
    with tempfile.TemporaryDirectory(prefix="cellspec-compile-") as folder:
        env = dict(os.environ, CELLSPEC_CACHE=os.path.join(folder, "cells"), NUMBA_CACHE_DIR=os.path.join(folder, "numba"))
        try:
            fresh = _child(spec, threads, env)
            # a cached load is a third of a second: the median of three, as one process may be slowed
            cached = sorted((_child(spec, threads, env) for _ in range(3)), key=lambda c: c["total_s"])[1]
        except RuntimeError as e:
            print(f"note: the compile time of {spec} was not measured: {e}")
            return None
    return {"build": round(fresh["load_s"], 2), "first": round(fresh["run_s"], 2), "cached": round(cached["total_s"], 2)}
