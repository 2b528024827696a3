"""The results of a compare run, one file per finished trial: `DIR/trials/<id>.json`, written
through a temporary file in the same folder and `os.replace`, so a killed run leaves whole files
or none, and a run again skips the trials whose file is there. Non-finite numbers (the loss of
a diverged trial) are written as null: the files are strict JSON."""

from __future__ import annotations

import json
import math
import os
import tempfile


def portable(spec):
    """A spec path as stored: relative to the current folder if it lies inside it, else as given."""
    if not isinstance(spec, str) or not os.path.isabs(spec):
        return spec
    rel = os.path.relpath(spec)
    return spec if rel.startswith(os.pardir) else rel


def finite(value):
    """A copy of a JSON-ready value with NaN and infinities as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class Store:
    def __init__(self, folder: str):
        self.folder = folder
        self.trials = os.path.join(folder, "trials")

    def path(self, trial_id: str) -> str:
        return os.path.join(self.trials, f"{trial_id}.json")

    def read(self, trial_id: str) -> dict | None:
        """The record of a trial, or None if it has none (or only an unreadable one)."""
        try:
            with open(self.path(trial_id), encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("id") == trial_id else None

    def has(self, trial_id: str) -> bool:
        return self.read(trial_id) is not None

    def ids(self) -> set[str]:
        try:
            names = os.listdir(self.trials)
        except FileNotFoundError:
            return set()
        return {n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")}

    def write(self, record: dict) -> str:
        """The record into its file; the spec's path relative to the current folder where it lies
        inside it (results folders are committed with the project; an absolute path names one
        machine, and the spec's sha256 in the id says which spec it was)."""
        os.makedirs(self.trials, exist_ok=True)
        path = self.path(record["id"])
        record = {**record, "config": {**record["config"], "spec": portable(record["config"].get("spec"))}} if isinstance(record.get("config"), dict) else record
        text = json.dumps(finite(record), indent=1, sort_keys=True, allow_nan=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.trials)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path

    def load(self, trial_ids) -> list[dict]:
        """The records of the given trials that have one, in the order of the ids."""
        out = []
        for tid in trial_ids:
            record = self.read(tid)
            if record is not None:
                out.append(record)
        return out
