"""The local engine: trials in joblib's loky worker processes, each with BLAS on one thread
(`inner_max_num_threads=1` sets OPENBLAS/OMP/MKL/NUMBA_NUM_THREADS in the workers' environment
before numpy loads there, and `worker.execute` sets numpy's OpenBLAS to one thread again and
records what it found). The parent builds and compiles every spec first (`warm`), so that
workers only load Numba's cache. Each record is written to the store as it arrives, so a killed
run keeps the trials it finished."""

from __future__ import annotations

import os

from .grid import Trial, trainer_module
from .progress import Progress
from .store import Store
from .worker import context, execute


def warm_all(trials: list[Trial], trainer: str) -> None:
    warm = trainer_module(trainer).warm
    for spec, dtype in dict.fromkeys((t.config["spec"], t.config.get("dtype", "float32")) for t in trials):
        warm(spec, dtype)


def run_local(trials: list[Trial], store: Store, trainer: str, jobs: int | None = None, progress: bool = True) -> list[dict]:
    """Run `trials` (those not in the store already are the caller's choice), `jobs` at a time
    (default: every CPU); returns their records in the order they finished."""
    from joblib import Parallel, delayed, parallel_config

    if not trials:
        return []
    warm_all(trials, trainer)
    ctx = context()
    n_jobs = max(1, min(jobs or os.cpu_count() or 1, len(trials)))
    records = []
    with Progress(len(trials), "trials (local)", enabled=progress) as bar, \
            parallel_config(backend="loky", inner_max_num_threads=1):
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(execute)(trainer, t.as_dict(), ctx) for t in trials)
        for record in results:
            store.write(record)
            records.append(record)
            bar.advance(record)
    return records
