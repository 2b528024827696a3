"""A toy trainer with the contract of `cellspec.train.trial` (run_trial, check, warm, DEFAULTS,
TrialError), for tests of the compare engines that must not depend on real training: its loss
is a closed form of the config, lr >= 1e5 diverges (status failed) and task "boom" raises
(at seed 1; the other seeds run)."""

from __future__ import annotations

import math
import os
import time

DEFAULTS = {"spec": None, "task": "adding", "T": 100, "hidden": 64, "batch": 32, "lr": 1e-3, "optimizer": "adam",
            "clip": 1.0, "steps": 2000, "seed": 0, "eval_every": 50, "dtype": "float32", "dims": {}, "encoder": "auto"}


class TrialError(ValueError):
    pass


def check(config: dict) -> dict:
    cfg = {**DEFAULTS, **config}
    if cfg["task"] not in ("adding", "copy", "boom"):
        raise TrialError(f"unknown task {cfg['task']!r}")
    if not isinstance(cfg["T"], int) or cfg["T"] < 1:
        raise TrialError(f"T must be a positive whole number, not {cfg['T']!r}")
    if not os.path.isfile(cfg["spec"]):
        raise TrialError(f"{cfg['spec']}: no such spec")
    return cfg


def warm(spec: str, dtype: str = "float32") -> None:
    pass


def run_trial(config: dict, report=None) -> dict:
    cfg = check(config)
    start = time.perf_counter()
    if cfg["task"] == "boom" and cfg["seed"] == 1:
        raise RuntimeError("the toy trainer was told to fail")
    baseline = 1.0
    rate = cfg["lr"] * 1000 * (1 + 0.1 * cfg["seed"]) / (1 + cfg["T"] / 50) * (2 if "lstm" in cfg["spec"] else 1)
    curve, solved_step, failed_step, loss = [], None, None, baseline
    step = 0
    for step in range(cfg["eval_every"], cfg["steps"] + 1, cfg["eval_every"]):
        loss = float("nan") if cfg["lr"] >= 1e5 else baseline * math.exp(-rate * step / cfg["steps"] * 5)
        curve.append([step, loss])
        if not math.isfinite(loss):
            failed_step = step
            break
        if report is not None:
            report(step, {"loss": loss, "accuracy": 1 - loss, "ratio": loss / baseline})
        if solved_step is None and loss / baseline < 0.05:
            solved_step = step
            break
    status = "failed" if failed_step is not None else "solved" if solved_step is not None else "unsolved"
    return {"config": cfg, "status": status, "steps": step, "solved_step": solved_step, "loss": loss, "baseline": baseline,
            "ratio": loss / baseline, "accuracy": 1 - loss, "curve": curve, "failed_step": failed_step,
            "error": None, "wall_s": time.perf_counter() - start}
