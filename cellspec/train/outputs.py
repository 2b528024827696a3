"""What a training run leaves in its folder: `log.jsonl` (a row per evaluation, written as it
comes), `params.npz` (every param, and the config as a JSON array: no pickle), `result.json`
and `loss.png` (the held-out loss against the step, the task's baseline drawn across)."""

from __future__ import annotations

import json
import os

import numpy as np

from ..files import write_atomic


class JsonLines:
    """Appends one JSON row per call and flushes it, so a run stopped halfway keeps its log."""

    def __init__(self, path: str):
        self.path = path
        self._f = open(path, "w", encoding="utf-8")

    def __call__(self, row: dict) -> None:
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def save_params(path: str, model, config: dict) -> None:
    """The model's params keyed `cell.<param>_l<k>`, `readout.W`, ..., and `__config__`."""
    arrays = {k: np.asarray(v) for k, v in model.arrays().items()}
    arrays["__config__"] = np.array(json.dumps(config))
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_params(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, params) of a params.npz written by `save_params`."""
    with np.load(path, allow_pickle=False) as f:
        config = json.loads(str(f["__config__"]))
        return config, {k: f[k] for k in f.files if k != "__config__"}


def write_result(path: str, result: dict) -> None:
    write_atomic(path, json.dumps(result, indent=1) + "\n")


def plot_loss(path: str, result: dict, label: str) -> str | None:
    """loss.png: held-out loss (and the training loss between evaluations) against the step,
    with the baseline across. None, and nothing written, where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    log = result["log"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    trained = [r for r in log if r["train_loss"] is not None]
    ax.plot([r["step"] for r in trained], [r["train_loss"] for r in trained], color="0.6", lw=1, marker=".", ms=3,
            label="training (mean since the evaluation before)")
    ax.plot([r["step"] for r in log], [r["loss"] for r in log], color="C0", lw=1.8, marker="o", ms=3, label="held-out")
    ax.axhline(result["baseline"], color="C3", ls="--", lw=1, label="baseline (memoryless / chance)")
    if result["solved_step"] is not None:
        ax.axvline(result["solved_step"], color="C2", ls=":", lw=1, label=f"solved at step {result['solved_step']}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(label, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = f"{path}.{os.getpid()}.tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
