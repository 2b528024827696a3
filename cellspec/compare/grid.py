"""The trials of a compare run: every spec x gap (T) x hyperparameter x seed, each a full trainer
config (defaults filled in and checked by the trainer's `check`) with a stable id."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
from dataclasses import dataclass

# the keys of a config that are not hyperparameters: what a table groups by on its own
NOT_AXES = ("spec", "task", "T", "seed")


@dataclass(frozen=True)
class Trial:
    """One trial: its id, the cell's label (the spec file's stem), the sha256 of the spec's bytes
    and the full config the trainer runs (the spec as an absolute path)."""

    id: str
    cell: str
    digest: str
    config: dict

    def as_dict(self) -> dict:
        return {"id": self.id, "cell": self.cell, "spec_sha256": self.digest, "config": self.config}


def spec_digest(path: str) -> str:
    """sha256 of the spec file's bytes."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def cell_label(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def trial_id(cell: str, config: dict, digest: str) -> str:
    """`<cell>-T<T>-s<seed>-<hash>`: the hash (10 hex digits) is over the full config but the
    spec's path, and the spec's sha256 in its place, so moving the spec keeps the id and editing
    it gives a new one."""
    keyed = {k: v for k, v in config.items() if k != "spec"}
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":")) + "\0" + digest
    return f"{cell}-T{config['T']}-s{config['seed']}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def trainer_module(trainer: str):
    return importlib.import_module(trainer)


def expand(specs: list[str], task: str, Ts: list[int], seeds: int, axes: dict[str, list] | None = None,
           fixed: dict | None = None, trainer: str = "cellspec.train.trial") -> list[Trial]:
    """The trials of a grid, in a fixed order (spec, T, hyperparameters, seed). `axes` maps a
    config key to its values (each combination is a trial); `fixed` holds the other keys. Every
    config goes through the trainer's `check` (TrialError for a bad one) before any runs. Raises
    ValueError for an empty grid or two specs with the same label."""
    axes = {k: list(v) for k, v in (axes or {}).items()}
    fixed = dict(fixed or {})
    if not specs or not Ts or seeds < 1 or any(not v for v in axes.values()):
        raise ValueError("the grid is empty (no spec, gap, seed or value of an axis)")
    labels: dict[str, str] = {}
    for path in specs:
        label = cell_label(path)
        if label in labels and os.path.abspath(labels[label]) != os.path.abspath(path):
            raise ValueError(f"{path} and {labels[label]} have the same name {label!r}; cells are told apart by file name")
        labels[label] = path
    check = trainer_module(trainer).check
    keys = sorted(axes)
    trials, seen = [], set()
    for path in dict.fromkeys(os.path.abspath(p) for p in specs):
        digest, cell = spec_digest(path), cell_label(path)
        for T in Ts:
            for values in itertools.product(*(axes[k] for k in keys)):
                for seed in range(seeds):
                    config = check({**fixed, **dict(zip(keys, values)), "spec": path, "task": task, "T": T, "seed": seed})
                    config["spec"] = os.path.abspath(config["spec"])
                    tid = trial_id(cell, config, digest)
                    if tid not in seen:   # a value given twice on an axis is one trial
                        seen.add(tid)
                        trials.append(Trial(tid, cell, digest, config))
    return trials


def axes_of(configs: list[dict]) -> list[str]:
    """The config keys besides spec, task, T and seed whose values differ between configs: the
    hyperparameter columns of a table."""
    out = []
    for key in sorted({k for c in configs for k in c}):
        if key in NOT_AXES:
            continue
        if len({json.dumps(c.get(key), sort_keys=True) for c in configs}) > 1:
            out.append(key)
    return out
