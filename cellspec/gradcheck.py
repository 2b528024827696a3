"""Finite-difference check of a generated cell's backward pass, in float64.

The loss is a fixed random linear function of every output and of the final state, so the
gradients arriving at them are those random weights; every param entry, every input entry and
every initial-state entry is perturbed both ways and the central difference compared with what
`backward` returned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CheckResult:
    worst: float                   # worst relative error over all arrays
    errors: dict[str, float]       # array label -> relative error
    sizes: dict[str, int]

    def passed(self, tol: float) -> bool:
        return self.worst <= tol


def default_sizes(module) -> dict[str, int]:
    """Small, distinct sizes, so a mixed-up dim cannot pass by accident."""
    return {d: 3 + i for i, d in enumerate(module.Cell.DIMS)}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def gradcheck(module, sizes: dict[str, int] | None = None, T: int = 4, B: int = 2, seed: int = 0, eps: float = 1e-6) -> CheckResult:
    sizes = sizes or default_sizes(module)
    cell = module.Cell(dtype="float64", seed=seed, **sizes)
    rng = np.random.default_rng(seed + 1)
    x = {n: rng.normal(size=(T, B, sizes[d])) for n, d in cell.INPUTS}
    state = {n: 0.5 * rng.normal(size=(B, sizes[d])) for n, d in cell.STATES}
    out_dim = sizes[cell.OUTPUT[1]]
    w_y = rng.normal(size=(T, B, out_dim))
    w_s = {n: rng.normal(size=(B, sizes[d])) for n, d in cell.STATES}

    def loss() -> float:
        y, final, _ = cell.forward(dict(x), {k: v.copy() for k, v in state.items()})
        return float(np.sum(y * w_y) + sum(np.sum(final[k] * w_s[k]) for k in final))

    _, _, tape = cell.forward(dict(x), dict(state))
    dx, dparams, dstate = cell.backward(tape, w_y, w_s)
    if not isinstance(dx, dict):
        dx = {cell.INPUTS[0][0]: dx}

    targets = [(f"param {k}", cell.params[k], dparams[k]) for k in cell.params]
    targets += [(f"input {k}", x[k], dx[k]) for k in x]
    targets += [(f"state {k}", state[k], dstate[k]) for k in state]
    errors = {}
    for label, array, analytic in targets:
        numeric = np.zeros_like(array)
        flat = array.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            numeric.reshape(-1)[i] = (up - down) / (2 * eps)
        errors[label] = _relative(np.asarray(analytic), numeric)
    return CheckResult(max(errors.values()), errors, sizes)
