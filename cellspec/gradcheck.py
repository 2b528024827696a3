"""Finite-difference check of a backward pass, in float64: of a generated cell, or of anything
with the same API (a `Stack`).

The loss is a fixed random linear function of every output and of the final state, so the
gradients arriving at them are those random weights; every param entry, every input entry and
every initial-state entry is perturbed both ways and the central difference compared with what
`backward` returned.

A NaN or an infinity anywhere (an output, a final state, an analytic or a numerical gradient) is
a failure of its own, recorded in `CheckResult.nonfinite`: a NaN compares false with everything,
so it must never reach a `max` or a `<=` as if it were an error size."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .runtime import tied


@dataclass
class CheckResult:
    worst: float                   # worst relative error over all arrays; inf when any is non-finite
    errors: dict[str, float]       # array label -> relative error (inf where the label is non-finite)
    sizes: dict[str, int]
    nonfinite: dict[str, str] = field(default_factory=dict)   # label -> e.g. "gradient is NaN in 4 of 4 entries"

    def passed(self, tol: float) -> bool:
        # written so that a NaN worst or tol fails instead of passing
        return not self.nonfinite and bool(self.worst <= tol)

    def worst_label(self) -> str:
        """The first non-finite label, else the label of the largest error."""
        if self.nonfinite:
            return next(iter(self.nonfinite))
        return max(self.errors, key=self.errors.get) if self.errors else ""


def default_sizes(module) -> dict[str, int]:
    """Small, distinct sizes, so a mixed-up dim cannot pass by accident (except where a
    constraint makes two equal)."""
    return tied(module.Cell.CONSTRAINTS, {d: 3 + i for i, d in enumerate(module.Cell.DIMS)})


def describe_nonfinite(what: str, array) -> str | None:
    """`"<what> is NaN in 3 of 12 entries"` (or inf, or NaN and inf), None when all are finite."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        return None
    nan, inf = int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))
    if not nan and not inf:
        return None
    kinds = " and ".join(k for k, n in (("NaN", nan), ("inf", inf)) if n)
    return f"{what} is {kinds} in {nan + inf} of {a.size} entries"


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """Max absolute difference over the larger max magnitude; both arrays must be finite (a
    difference that overflows gives inf, never NaN)."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def _worst(errors) -> float:
    # NaN counts as inf: max() keeps a NaN only when it comes first
    return max((e if not math.isnan(e) else math.inf for e in errors), default=0.0)


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
    nonfinite: dict[str, str] = {}
    # an output that is not finite makes every difference of the loss meaningless: name it first
    for k, v in (y.items() if isinstance(y, dict) else [(None, y)]):
        label = "output" if k is None else f"output {k}"
        if (why := describe_nonfinite("value", v)) is not None:
            nonfinite[label] = why
    for k, v in final.items():
        if (why := describe_nonfinite("value", v)) is not None:
            nonfinite[f"final state {k}"] = why

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
        analytic = np.asarray(analytic)
        problems = [describe_nonfinite("gradient", analytic)]
        if directions:
            numeric_ds, analytic_ds, scales = [], [], []
            for _ in range(directions):
                v = rng.normal(size=array.shape)
                old = array.copy()
                array += eps * v
                up = loss()
                array[...] = old - eps * v
                down = loss()
                array[...] = old
                numeric_ds.append((up - down) / (2 * eps))
                analytic_ds.append(float(np.sum(analytic * v)))
                # relative to the largest directional derivative the gradient allows (|g|*|v|):
                # a direction nearly orthogonal to g has a tiny derivative, all rounding
                scales.append(float(np.linalg.norm(analytic) * np.linalg.norm(v)))
            numeric = np.array(numeric_ds)
            problems.append(describe_nonfinite("numerical directional derivative", numeric))
            if not any(problems):
                # finite inputs, but a norm that overflows could still give inf/inf
                errors[label] = _worst(abs(n - a) / max(s, abs(n), 1e-12) for n, a, s in zip(numeric_ds, analytic_ds, scales))
        else:
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
            problems.append(describe_nonfinite("numerical gradient", numeric))
            if not any(problems):
                errors[label] = _relative(analytic, numeric)
        if any(problems):
            nonfinite[label] = "; ".join(p for p in problems if p)
            errors[label] = math.inf
    worst = math.inf if nonfinite else _worst(errors.values())
    return CheckResult(worst, errors, {}, nonfinite)
