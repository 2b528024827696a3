"""The bench's trainer rows (`cellspec bench --trainer`): what `cellspec train` costs over the
cell's own forward+backward.

One round times `eval_every` steps of the trainer (a fresh batch from the task's generator, the
layer's forward and backward, the readout and its loss, clipping, the optimizer's step) plus the
one evaluation of the held-out batch those steps come with, against the cell calls the trainer
makes in them, made on the model's own cell directly: as many forward+backward calls on a batch
of the same shape, and one forward without a tape on the held-out batch. What is left is the
trainer's own cost (the batches, the readout, clipping, the optimizer, the Layer's and the
trainer's Python). Beside it, what bounds that cost from below, timed alone in the same rounds:
the readout's forward and backward on the model's own output (its products and its loss, as
`Model.loss_and_grad` runs them, on one BLAS thread), and the task's batches. Interleaved
rounds, medians, float32, at `cellspec train`'s defaults (hidden 64, batch 32, Adam, clipping at
1, an evaluation of 256 sequences every 100 steps).
"""

from __future__ import annotations

import os

import numpy as np

from ..blas import single_threaded
from .timing import Quiet, _time_rounds

TASKS = (("adding", 100), ("copy", 100))


def trainer_row(name: str, spec_path: str, task: str, T: int, rounds: int, pause: float, quiet: Quiet | None = None) -> dict:
    from ..train.trial import Run, check

    run = Run(check({"spec": os.path.abspath(spec_path), "task": task, "T": T}))
    cfg, model = run.cfg, run.model
    cell = model.layer.cells[0][0]
    batch = run.task.batch(np.random.default_rng(0), cfg["batch"])
    x = model._encode(batch.x.astype(model.dtype))
    out = cell.dims[cell.OUTPUTS[0][1]]
    dy = np.ones((x.shape[0], x.shape[1], out), model.dtype)
    held_out = model._encode(run.held_out.x.astype(model.dtype))
    n = cfg["eval_every"]

    def cell_only():
        for _ in range(n):
            _, _, tape = cell.forward(x)
            cell.backward(tape, dy)
        cell.forward(held_out, tape=False)   # the evaluation's forward (Model.predict)

    def trainer():
        for _ in range(n):
            run.step()
        run.evaluate()

    y, _, _ = model.layer.forward(x, train=False)
    readout = model.readout

    def readout_only():
        with single_threaded():
            for _ in range(n):
                _, _, cache = readout.forward(y, batch.target, batch.mask)
                readout.backward(cache)

    rng = np.random.default_rng(1)

    def batches():
        for _ in range(n):
            run.task.batch(rng, cfg["batch"])

    runs = {"cell": cell_only, "trainer": trainer, "readout": readout_only, "batches": batches}
    for f in runs.values():
        f()
    times, _, others = _time_rounds(runs, {}, rounds, pause, quiet)
    return {"spec": name, "task": task, "T": T, "steps": n, "times": times, "others": others}


def markdown(rows: list[dict], threads: int) -> str:
    out = [f"### The trainer (`cellspec train`'s defaults, {threads} BLAS thread{'s' if threads != 1 else ''}; 100 steps and one evaluation per round)", "",
           "`readout` and `batches`: the readout's forward and backward alone, and the task's batches alone, per step; "
           "`trainer less readout and batches / cell`: the trainer's time less those two over the cell's, what the "
           "trainer's own work beside them adds (clipping, the optimizer, the evaluation, the Python).", "",
           "| spec | task | T | cell ms / step | trainer ms / step | trainer / cell | readout ms / step | batches ms / step | "
           "trainer less readout and batches / cell | others |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, n = r["times"], r["steps"]
        rest = (t["trainer"] - t["readout"] - t["batches"]) / t["cell"]
        out.append(f"| {r['spec']} | {r['task']} | {r['T']} | {t['cell'] / n:.3f} | {t['trainer'] / n:.3f} | "
                   f"{t['trainer'] / t['cell']:.3f} | {t['readout'] / n:.3f} | {t['batches'] / n:.3f} | {rest:.3f} | {r['others']:.0%} |")
    return "\n".join(out + [""])
