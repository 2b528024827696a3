"""One trial in a worker process: the process set up as the parent asks (cellspec's cache
folder, the import path, BLAS on one thread), the trainer's `run_trial` called, and whatever it
raises recorded as a failed trial rather than raised, so one bug does not stop the others. What
the report callback raises (an engine stopping the trial) is let through."""

from __future__ import annotations

import os
import sys
import time
import traceback

# set in workers' environments before numpy loads there (joblib's inner_max_num_threads, Ray's
# runtime_env); numba's threading layer is not used by the kernels, but a pool of 1 costs nothing
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def context() -> dict:
    """What a worker needs from the parent: the cache folder and the import path."""
    from ..cache import cache_dir

    return {"env": {"CELLSPEC_CACHE": os.path.abspath(cache_dir())}, "path": [p for p in sys.path if p]}


def _enter(ctx: dict) -> dict:
    os.environ.update(ctx.get("env", {}))
    for p in reversed(ctx.get("path", [])):
        if p not in sys.path:
            sys.path.insert(0, p)
    from .. import blas

    blas.set_threads(1)
    return {"pid": os.getpid(), "blas_threads": blas.threads(), **{v: os.environ.get(v) for v in THREAD_VARS}}


def failed_result(config: dict, error: str, wall_s: float, tb: str | None = None) -> dict:
    return {"config": config, "status": "failed", "steps": None, "solved_step": None, "loss": None,
            "baseline": None, "ratio": None, "accuracy": None, "curve": [], "failed_step": None,
            "error": error, "traceback": tb, "wall_s": wall_s}


def execute(trainer: str, trial: dict, ctx: dict, report=None) -> dict:
    """The record of one trial (`trial` is `Trial.as_dict()`): the trainer's result with the id,
    the cell, the spec's sha256 and what the worker was (`worker`: pid, BLAS threads)."""
    import importlib

    worker = _enter(ctx)
    start = time.perf_counter()
    raised = []

    def passing(step, metrics):
        try:
            return report(step, metrics)
        except BaseException as e:
            raised.append(e)
            raise

    try:
        run_trial = importlib.import_module(trainer).run_trial
        result = run_trial(dict(trial["config"]), report=passing if report is not None else None)
    except Exception as e:
        if raised and raised[-1] is e:
            raise
        line = f"{type(e).__name__}: {e}".splitlines()[0]
        result = failed_result(trial["config"], line, time.perf_counter() - start, traceback.format_exc())
    return {**result, "id": trial["id"], "cell": trial["cell"], "spec_sha256": trial["spec_sha256"], "worker": worker}
