"""Finite-difference check of a backward pass, in float64: of a generated cell, or of anything
with the same API (a `Stack`).

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
    """Small, distinct sizes, so a mixed-up dim cannot pass by accident (except where a
    constraint makes two equal)."""
    sizes = {d: 3 + i for i, d in enumerate(module.Cell.DIMS)}
    for a, b in module.Cell.CONSTRAINTS:
        sizes[b] = sizes[a]
    return sizes


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def gradcheck(module, sizes: dict[str, int] | None = None, T: int = 4, B: int = 2, seed: int = 0, eps: float = 1e-6) -> CheckResult:
    """Check the cell of a generated module on random inputs and states."""
    sizes = sizes or default_sizes(module)
    cell = module.Cell(dtype="float64", seed=seed, **sizes)
    rng = np.random.default_rng(seed + 1)
    x = {n: rng.normal(size=(T, B, sizes[d])) for n, d in cell.INPUTS}
    state = {n: 0.5 * rng.normal(size=(B, sizes[d])) for n, d in cell.STATES}
    result = check_model(cell, x if len(x) > 1 else next(iter(x.values())), state, rng, eps)
    result.sizes = sizes
    return result


def check_model(model, x, state: dict, rng: np.random.Generator, eps: float = 1e-6, directions: int | None = None) -> CheckResult:
    """Check any model with `params`, `forward(x, state)` and `backward(tape, dy, dstate)`.

    By default every entry is perturbed. With `directions`, each array is instead perturbed
    along that many random directions and the directional derivative compared: far fewer
    forward passes, and a wrong gradient still shows unless it is orthogonal to every direction."""
    y, final, tape = model.forward(x, state)
    w_y = {k: rng.normal(size=v.shape) for k, v in y.items()} if isinstance(y, dict) else rng.normal(size=y.shape)
    w_s = {k: rng.normal(size=v.shape) for k, v in final.items()}

    def loss() -> float:
        y, final, _ = model.forward(x, state)
        ys = y.items() if isinstance(y, dict) else [(None, y)]
        total = sum(np.sum(v * (w_y[k] if k is not None else w_y)) for k, v in ys)
        return float(total + sum(np.sum(final[k] * w_s[k]) for k in final))

    dx, dparams, dstate = model.backward(tape, w_y, w_s)
    xs = x if isinstance(x, dict) else {"x": x}
    dxs = dx if isinstance(dx, dict) else {"x": dx}
    targets = [(f"param {k}", a, dparams[k]) for k, a in model.params.items()]
    targets += [(f"input {k}", xs[k], dxs[k]) for k in xs]
    targets += [(f"state {k}", state[k], dstate[k]) for k in state]
    errors = {}
    for label, array, analytic in targets:
        if directions:
            worst = 0.0
            for _ in range(directions):
                v = rng.normal(size=array.shape)
                old = array.copy()
                array += eps * v
                up = loss()
                array[...] = old - eps * v
                down = loss()
                array[...] = old
                numeric_d = (up - down) / (2 * eps)
                analytic_d = float(np.sum(np.asarray(analytic) * v))
                # relative to the largest directional derivative the gradient allows (|g|*|v|):
                # a direction nearly orthogonal to g has a tiny derivative, all rounding
                scale = max(float(np.linalg.norm(analytic) * np.linalg.norm(v)), abs(numeric_d), 1e-12)
                worst = max(worst, abs(numeric_d - analytic_d) / scale)
            errors[label] = worst
            continue
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
    return CheckResult(max(errors.values()), errors, {})
