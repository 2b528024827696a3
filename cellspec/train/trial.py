"""One training run of one cell on one task: the unit `cellspec train` runs once and `cellspec
compare` runs as a grid.

A trial is a plain dict (a config) in and a plain dict (its result) out, so that it crosses process
and machine boundaries (joblib's loky workers, Ray) as JSON. Everything random in it comes from
its seed: the params (the cells', the readout's, the encoder's), the stream of training batches
(`default_rng([seed, 1])`) and the held-out batch it is judged on (`default_rng([seed, 2])`), so a
trial repeated gives the same result, bit for bit, on the same machine with the same BLAS threads.

The loop: a batch, forward and backward, the gradient's norm clipped (torch's rule), an optimizer
step; every `eval_every` steps (and at the last) the held-out batch is scored by the task's own
`metrics`, and the trial stops as soon as the task calls it `solved`. A loss or gradient norm that
is not finite ends it as "failed" at that step: recorded, never raised.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from .. import tasks
from ..blas import single_threaded
from . import optim
from .process import flush_denormals, keep_freed_memory
from .model import FitError, Model, cell_sizes

DEFAULTS = {
    "spec": None,
    "task": "adding",
    "T": 100,
    "hidden": 64,
    "layers": 1,
    "batch": 32,
    "lr": 1e-3,
    "optimizer": "adam",
    "clip": 1.0,
    "steps": 2000,
    "seed": 0,
    "eval_every": 100,
    "eval_batch": 256,
    "dtype": "float32",
    "dims": {},
    "encoder": "auto",
    "task_options": {},
    # stop at the first evaluation the task calls solved; False: run every step (to compare
    # final losses at one budget, as Greff et al. compare variants)
    "stop_when_solved": True,
}

_INTS = {"T": 1, "hidden": 1, "layers": 1, "batch": 1, "steps": 1, "seed": 0, "eval_every": 1, "eval_batch": 1}


class TrialError(ValueError):
    """A config that cannot run: one line, raised by `check` before anything is built or compiled."""


def _check_number(cfg: dict, key: str) -> None:
    v = cfg[key]
    if key in _INTS:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < _INTS[key]:
            raise TrialError(f"{key} must be an integer >= {_INTS[key]}, not {v!r}")
        cfg[key] = int(v)
    elif key in ("lr", "clip"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (key == "lr" and v == 0):
            raise TrialError(f"{key} must be a {'positive' if key == 'lr' else 'non-negative'} finite number, not {v!r}")
        cfg[key] = float(v)


def check(config: dict) -> dict:
    """The full config (defaults filled in), checked without building anything: TrialError names
    what is wrong. The spec is built into cellspec's cache (not compiled by Numba) to see that it
    fits the task."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise TrialError(f"unknown config key {', '.join(unknown)}; keys: {', '.join(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    cfg["dims"] = dict(cfg["dims"])
    cfg["task_options"] = dict(cfg["task_options"])
    if not isinstance(cfg["spec"], str) or not cfg["spec"]:
        raise TrialError("spec must be the path of a spec")
    for key in list(_INTS) + ["lr", "clip"]:
        _check_number(cfg, key)
    if not isinstance(cfg["stop_when_solved"], bool):
        raise TrialError(f"stop_when_solved must be true or false, not {cfg['stop_when_solved']!r}")
    if cfg["dtype"] not in ("float32", "float64"):
        raise TrialError(f"dtype must be float32 or float64, not {cfg['dtype']!r}")
    try:
        optim.make(cfg["optimizer"], cfg["lr"])
    except ValueError as e:
        raise TrialError(str(e)) from None
    task = _task(cfg)
    if not os.path.isfile(cfg["spec"]):
        raise TrialError(f"{cfg['spec']}: no such spec")
    try:
        cell_sizes(_module(cfg["spec"]).Cell, task, cfg["hidden"], cfg["dims"], cfg["encoder"])
    except FitError as e:
        raise TrialError(str(e)) from None
    return cfg


def _module(spec: str):
    """The generated module of a spec path, through cellspec's cache (a bad spec: TrialError with
    the compiler's `file:line:col: error: message`)."""
    from .. import load
    from ..errors import SpecError

    try:
        return load(spec)
    except SpecError as e:
        raise TrialError(str(e)) from None


def _task(cfg: dict):
    try:
        return tasks.make(cfg["task"], cfg["T"], **cfg["task_options"])
    except tasks.TaskError as e:
        raise TrialError(str(e)) from None


def warm(spec: str, dtype: str = "float32") -> None:
    """Build `spec` into cellspec's cache and compile its kernels for `dtype` (forward with and
    without a tape, backward) and Adam's fused loop (Numba caches them on disk), so that worker
    processes only load them."""
    from ..layer import Layer

    module = _module(spec)
    Cell = module.Cell
    sizes = {d: 2 for d in Cell.DIMS}
    layer = Layer(module, dtype=dtype, seed=0, **sizes)
    x = {n: np.zeros((2, 1, 2), dtype) for n, _ in Cell.INPUTS}
    y, _, tape = layer.forward(x if len(x) > 1 else next(iter(x.values())), train=True)
    layer.backward(tape, np.ones_like(y))
    layer.forward(x if len(x) > 1 else next(iter(x.values())), train=False)
    optim.make("adam", 1e-3).step(np.zeros(2, dtype), np.ones(2, dtype))   # Adam's fused loop (optim.py)


class Run:
    """A checked config made ready to train: its task, model, optimizer, batch stream and
    held-out batch. `step()` is one optimizer step, `evaluate()` scores the held-out batch."""

    def __init__(self, cfg: dict):
        keep_freed_memory()   # the steps' tapes reuse the pages of the step before (process.py)
        flush_denormals()     # a vanishing gradient must not run on x86's slow path (process.py)
        self.cfg = cfg
        self.task = _task(cfg)
        try:
            self.model = Model(_module(cfg["spec"]), self.task, cfg["hidden"], cfg["dims"], cfg["dtype"], cfg["seed"], cfg["encoder"], cfg["layers"])
        except FitError as e:
            raise TrialError(str(e)) from None
        self.opt = optim.make(cfg["optimizer"], cfg["lr"])
        self.data = np.random.default_rng([cfg["seed"], 1])
        self.held_out = self.task.batch(np.random.default_rng([cfg["seed"], 2]), cfg["eval_batch"])
        self.baseline = float(self.task.baseline())

    def step(self) -> tuple[float, float]:
        """A batch, forward and backward, clipping, an optimizer step: (loss, gradient norm before
        clipping). A loss or norm that is not finite skips the update (the caller stops there)."""
        model = self.model
        loss = model.loss_and_grad(self.task.batch(self.data, self.cfg["batch"]))
        clip = self.cfg["clip"]
        norm = optim.clip_grad_norm(model.grad, clip) if clip > 0 else float(np.sqrt(np.dot(model.grad, model.grad)))
        if math.isfinite(loss) and math.isfinite(norm):
            self.opt.step(model.flat, model.grad)
        return loss, norm

    def evaluate(self) -> dict[str, float]:
        """The task's metrics on the held-out batch, and `ratio`, the loss over the baseline."""
        pred = self.model.predict(self.held_out)
        with single_threaded():   # see Model.loss_and_grad
            metrics = {k: float(v) for k, v in self.task.metrics(pred, self.held_out).items()}
        metrics["ratio"] = metrics["loss"] / self.baseline
        return metrics


def run_trial(config: dict, report=None) -> dict:
    """Train one config to its step budget or until solved; the result dict (JSON-ready).
    `report(step, metrics)` is called at every evaluation: an exception from it stops the trial
    and propagates (Ray stops trials that way)."""
    return train(config, report)[0]


def train(config: dict, report=None, on_step=None, on_eval=None):
    """`run_trial` that also gives the trained Model: `(result, model)`. `on_step(step, loss)`
    after every step (a progress bar), `on_eval(row)` with each logged row (a log file)."""
    cfg = check(config)
    # a diverging trial is recorded as failed at its first non-finite loss or norm: numpy's
    # overflow warnings on the way there are noise
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _train(cfg, report, on_step, on_eval)


def _train(cfg, report, on_step, on_eval):
    start = time.perf_counter()
    run = Run(cfg)
    result = {"config": cfg, "status": "unsolved", "steps": 0, "solved_step": None, "loss": None, "baseline": run.baseline,
              "ratio": None, "accuracy": None, "curve": [], "log": [], "failed_step": None, "error": None, "wall_s": 0.0}
    # the held-out batch before any step: where each curve starts (not reported to an engine)
    first = run.evaluate()
    row = {"step": 0, "train_loss": None, "grad_norm": None, **first, "elapsed_s": round(time.perf_counter() - start, 3)}
    result["log"].append(row)
    result["curve"].append([0, first["loss"]])
    if on_eval is not None:
        on_eval(row)
    since, count = 0.0, 0
    for step in range(1, cfg["steps"] + 1):
        loss, norm = run.step()
        result["steps"] = step
        if not (math.isfinite(loss) and math.isfinite(norm)):
            result.update(status="failed", failed_step=step, error=f"the loss or the gradient norm is not finite at step {step} (loss {loss}, norm {norm})")
            break
        since, count = since + loss, count + 1
        if on_step is not None:
            on_step(step, loss)
        if step % cfg["eval_every"] == 0 or step == cfg["steps"]:
            metrics = run.evaluate()
            row = {"step": step, "train_loss": since / count, "grad_norm": float(norm), **metrics,
                   "elapsed_s": round(time.perf_counter() - start, 3)}
            since, count = 0.0, 0
            result["log"].append(row)
            if on_eval is not None:
                on_eval(row)
            result["curve"].append([step, metrics["loss"]])
            result.update(loss=metrics["loss"], ratio=metrics["ratio"], accuracy=metrics["accuracy"])
            if not math.isfinite(metrics["loss"]):
                result.update(status="failed", failed_step=step, error=f"the held-out loss is not finite at step {step}")
                break
            if report is not None:
                report(step, metrics)
            if result["solved_step"] is None and run.task.solved(metrics):
                result.update(status="solved", solved_step=step)
                if cfg["stop_when_solved"]:
                    break
    result["wall_s"] = round(time.perf_counter() - start, 3)
    return result, run.model
