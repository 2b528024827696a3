"""Where a cell's forward+backward spends its time, by phase (`cellspec bench --profile`):

* **products per step**: the time loop's matrix products, forward and backward (the same products
  timed alone, T calls each in a jitted loop, as the kernels call them);
* **elementwise**: the rest of the time-loop kernels (their fused loops, and the rows past a
  sequence's end): the kernels' time less their products;
* **hoisted products**: the products over all T*B rows at once, outside the loop (the input
  product of the forward pass, the input gradient of the backward pass);
* **weight gradients**: the products that sum over all T*B rows (a weight's gradient);
* **hoisted elementwise**: the kernels of values that read no state, before and after the loop;
* **other**: what is left: copies (the weights concatenated, the states and the tape in and out,
  the param gradients cut out of their stacked product), bias sums, allocations, Python.

It times the generated module's own calls: each `dot` and each kernel the module calls is wrapped
in a timer for the run, on one thread (one batch chunk, single-threaded BLAS), so that the phases
add up to the wall time; the products per step are then timed alone. Medians over the rounds.
"""

from __future__ import annotations

import time

import numpy as np

from .. import blas
from .cells import SIZES, _ours
from .floor import step_products

PHASES = ("products per step", "elementwise", "hoisted products", "weight gradients", "hoisted elementwise", "other")


class _Timed:
    """A module's callable wrapped so that each call adds its time to a phase of `spent`."""

    def __init__(self, fn, spent: dict, phase):
        self.fn, self.spent, self.phase = fn, spent, phase

    def __call__(self, *args):
        t = time.perf_counter()
        out = self.fn(*args)
        phase = self.phase(*args) if callable(self.phase) else self.phase
        self.spent[phase] = self.spent.get(phase, 0.0) + time.perf_counter() - t
        return out


def _dot_phase(rows: int):
    """A product outside the loop whose first operand is a transposed [rows, ...] array sums over
    all rows: a weight gradient; any other (its output has a row per step and sequence) is hoisted."""

    def phase(a, b):
        return "weight gradients" if a.shape[1] == rows and not a.flags.c_contiguous else "hoisted products"

    return phase


def _loop_products(schedule, sizes: dict[str, int], T: int, B: int):
    """run(): the time loop's products alone, forward and backward, each loop group's T calls in
    one jitted loop, on the kernels' `matmul`."""
    rng = np.random.default_rng(0)
    work = []
    for g in schedule.groups.values():
        if g.region == "pre":
            continue
        width, n = sum(sizes[d] for d in g.rows), sizes[g.operand_dim]
        W = rng.normal(size=(width, n)).astype(np.float32)
        # the weights laid out as a call lays them out for its rows (blas.step_operand)
        work.append((rng.normal(size=(T * B, n)).astype(np.float32), blas.step_operand(W.T, B), np.empty((B, width), np.float32),
                     rng.normal(size=(T * B, width)).astype(np.float32), blas.step_operand(W, B), np.empty((B, n), np.float32)))

    def run():
        for v, WT, out, d, W, back in work:
            step_products(T, B, v, WT, out)
            step_products(T, B, d, W, back)

    return run


def profile_cell(cell_module, schedule, size: str, rounds: int) -> dict:
    """{"total_ms": median wall time of a forward+backward, "phases": {phase: median share of it}}
    for the generated module at a bench size, on one thread (see the module docstring)."""
    T, B = SIZES[size][:2]
    cell, _, both, _ = _ours(cell_module, SIZES[size])
    cell.threads = 1  # a cell of its own (`_ours`): nothing to restore
    spent: dict[str, float] = {}
    kernels = {name: getattr(cell_module, name) for name in dir(cell_module) if name.startswith(("_loop_", "_pre_"))}
    original_dot = cell_module.dot
    steps = _loop_products(schedule, cell.dims, T, B)
    samples: dict[str, list[float]] = {p: [] for p in PHASES}
    totals = []
    try:
        cell_module.dot = _Timed(original_dot, spent, _dot_phase(T * B))
        for name, fn in kernels.items():
            setattr(cell_module, name, _Timed(fn, spent, "loop" if name.startswith("_loop_") else "hoisted elementwise"))
        with blas.single_threaded():
            both(), steps()  # compiled and warm
            for _ in range(rounds):
                spent.clear()
                t = time.perf_counter()
                both()
                total = time.perf_counter() - t
                t = time.perf_counter()
                steps()
                products = time.perf_counter() - t
                loop = spent.pop("loop", 0.0)
                phases = {"products per step": products, "elementwise": max(0.0, loop - products), **spent}
                phases["other"] = max(0.0, total - loop - sum(spent.values()))
                totals.append(total)
                for p in PHASES:
                    samples[p].append(phases.get(p, 0.0) / total)
    finally:
        cell_module.dot = original_dot
        for name, fn in kernels.items():
            setattr(cell_module, name, fn)
    return {"total_ms": float(np.median(totals)) * 1e3, "phases": {p: float(np.median(v)) for p, v in samples.items()}}


def markdown(rows: list[dict]) -> str:
    lines = ["| spec | size | T,B,I,H | ms (1 thread) | " + " | ".join(PHASES) + " |", "|---|---|---|---|" + "---|" * len(PHASES)]
    for r in rows:
        shares = " | ".join(f"{100 * r['phases'][p]:.0f}%" for p in PHASES)
        lines.append(f"| {r['spec']} | {r['size']} | {','.join(map(str, SIZES[r['size']]))} | {r['total_ms']:.1f} | {shares} |")
    return "\n".join(lines)
