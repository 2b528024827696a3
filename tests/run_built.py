"""Run a built spec's module forward and backward at small sizes and compare it with the NumPy
reference interpreter: what the fuzzers use to say that a spec `cellspec build` accepts also runs.

The module is written to a folder of its own (Numba's cache is keyed by the file) and imported
under a name of its own. At each of a few size sets (the compile is paid once, each further size
costs milliseconds) the cell is instantiated, its constants and inits are checked against their
formulas evaluated exactly, and forward (y, final state) and backward (dx, dparams, dstate) are
compared with `cellspec.reference.Reference`. A NaN or an inf is allowed only where the
reference has the same one: it is then the spec's meaning (log of a negative). At the first size
set that runs, the gradient is also checked against finite differences, as `cellspec check`
does, since the reference shares the derived partials with the module.

The one failure that is not a bug: `Cell()` refusing sizes the spec cannot take (a divisor that
is zero at hidden=4) with a clear error, a ValueError that names the cell, the constant or the
param. Any other exception, or a mismatch, raises AssertionError with the spec's text.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback

import numpy as np
import sympy

from cellspec.build import Built
from cellspec.gradcheck import default_sizes
from cellspec.reference import Reference

from modules import import_built

T, B = 3, 2
# central differences with eps 1e-5: truncation ~1e-10 and rounding ~1e-11 of the loss's size;
# a wrong partial is off by its own size
FD_EPS = 1e-5
GRADIENT_TOLERANCE = 1e-5


class RunFailure(AssertionError):
    """A built spec that did not run, or ran and disagreed with the reference."""

    def __init__(self, stage: str, detail: str, text: str, sizes: dict | None = None):
        self.stage, self.detail, self.text, self.sizes = stage, detail, text, sizes
        at = f" at {sizes}" if sizes else ""
        super().__init__(f"{stage}{at}: {detail}\n--- spec ---\n{text}")


def size_sets(module) -> list[dict[str, int]]:
    """Distinct small sizes (3, 4, 5, ... by dim, then the same the other way round), every size
    1, every size 2 and sizes past 64 (where 2**i leaves int64), each made to satisfy the cell's
    constraints."""
    dims = module.Cell.DIMS
    default = default_sizes(module)
    makes = (lambda k: default[dims[len(dims) - 1 - k]], lambda k: 1, lambda k: 2, lambda k: 66 + 3 * k)
    out = [default]
    for make in makes:
        sizes = {d: make(k) for k, d in enumerate(dims)}
        for a, b in module.Cell.CONSTRAINTS:
            sizes[b] = sizes[a]
        out.append(sizes)
    return [s for k, s in enumerate(out) if s not in out[:k]]


def _refusal(e: BaseException, cell_ir) -> bool:
    """A clear refusal of sizes at Cell(): a ValueError naming the cell or what failed."""
    if type(e) is not ValueError:
        return False
    message = str(e)
    names = list(cell_ir.constants) + [p.name for p in cell_ir.params]
    return message.startswith(cell_ir.name) or any(re.search(rf"(^|[\s']){re.escape(n)}([\s':]|$)", message) for n in names)


def _exact(expr: sympy.Expr, values: dict[str, int]):
    """The float value of an index formula (a constant, an init argument) at exact integer sizes,
    or None where it is undefined (a division by zero)."""
    v = expr.subs({s: sympy.Integer(values[s.name]) for s in expr.free_symbols if s.name in values})
    if v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or not v.is_number or v.is_real is False:
        return None
    try:
        return float(v)
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")
    except TypeError:
        return None


def _check_fixed(cell, cell_ir, sizes: dict[str, int]) -> list[str]:
    """Constants and constant/uniform inits against their formulas, evaluated exactly; returns
    what disagrees."""
    bad = []
    for name, c in cell_ir.constants.items():
        n = sizes[c.dim]
        units = range(n) if n <= 80 else list(range(40)) + list(range(n - 40, n))
        want = np.array([np.nan if (v := _exact(c.value, {**sizes, "i": u})) is None else v for u in units])
        got = np.asarray(cell.constants[name])[list(units)]
        if not np.allclose(got, want, rtol=1e-12, atol=0, equal_nan=True):
            k = int(np.argmax(~np.isclose(got, want, rtol=1e-12, atol=0, equal_nan=True)))
            bad.append(f"constant {name} = {c.value}: unit {list(units)[k]} is {got[k]!r}, "
                       f"its formula gives {want[k]!r}")
    for p in cell_ir.params:
        args = [_exact(a, sizes) for a in p.init.args]
        # the entries the mask keeps (the others are zero whatever the init)
        value = cell.params[p.name][cell.masks[p.name] != 0] if p.name in cell.masks else cell.params[p.name]
        what = f"init {p.init.kind}{tuple(p.init.args)} of {p.name}"
        if any(a is None or not np.isfinite(a) for a in args):
            bad.append(f"{what} is undefined at these sizes, and Cell() took it")
        elif p.init.kind == "constant" and not np.allclose(value, args[0], rtol=1e-12, atol=0):
            bad.append(f"{what} should be {args[0]!r}")
        elif p.init.kind == "uniform":
            lo, hi = (-args[0], args[0]) if len(args) == 1 else args
            if not (np.all(value >= lo) and np.all(value <= hi)):
                bad.append(f"{what} is out of its bounds")
        elif not np.all(np.isfinite(value)):
            bad.append(f"{what} is not finite")
    return bad


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    finite = b[np.isfinite(b)]
    scale = max(1.0, float(np.max(np.abs(finite), initial=0.0)))
    return bool(np.allclose(a, b, rtol=1e-8, atol=1e-10 * scale, equal_nan=True))


def _compare(label: str, got, want) -> list[str]:
    got, want = (got, want) if isinstance(want, dict) else ({"": got}, {"": want})
    bad = []
    for k in want:
        if k not in got or not _close(got[k], want[k]):
            a, b = np.asarray(got.get(k)), np.asarray(want[k])
            shown = [np.array2string(v.ravel()[:6], precision=4) for v in (a, b)]
            bad.append(f"{label}{' ' + k if k else ''}: got {shown[0]}, reference {shown[1]}")
    return bad


def _run_at(module, built: Built, sizes: dict[str, int], seed: int, text: str, check: bool) -> str:
    cell_ir = built.cell
    try:
        cell = module.Cell(dtype="float64", seed=seed, **sizes)
    except Exception as e:  # noqa: BLE001 - every exception is judged
        if _refusal(e, cell_ir):
            return "refused"
        raise RunFailure("Cell()", _exception(e), text, sizes) from e
    bad = _check_fixed(cell, cell_ir, sizes)
    if bad:
        raise RunFailure("Cell()", "; ".join(bad), text, sizes)
    rng = np.random.default_rng(seed + 1)
    # random params rather than the inits (zeros would hide most of the cell), masked as the
    # cell masks them
    params = {}
    for k, v in cell.params.items():
        w = 0.7 * rng.normal(size=v.shape)
        params[k] = w * cell.masks[k] if k in cell.masks else w
    cell.params = {k: v.copy() for k, v in params.items()}
    xs = {n: rng.normal(size=(T, B, sizes[d])) for n, d in cell.INPUTS}
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    state = {n: 0.5 * rng.normal(size=(B, sizes[d])) for n, d in cell.STATES}
    ref = Reference(cell_ir, built.schedule.plan, sizes, params, constants=cell.constants, masks=cell.masks)
    try:
        with np.errstate(all="ignore"):
            y, final, tape = cell.forward(x, {k: v.copy() for k, v in state.items()})
    except Exception as e:  # noqa: BLE001
        raise RunFailure("forward", _exception(e), text, sizes) from e
    try:
        with np.errstate(all="ignore"):
            y_ref, final_ref, tape_ref = ref.forward(x, state)
    except Exception as e:  # noqa: BLE001
        raise RunFailure("reference forward", _exception(e), text, sizes) from e
    bad = _compare("y", y, y_ref) + _compare("final state", final, final_ref)
    if bad:
        raise RunFailure("forward differs from the reference", "; ".join(bad), text, sizes)
    dy = {k: rng.normal(size=v.shape) for k, v in y.items()} if isinstance(y, dict) else rng.normal(size=y.shape)
    dstate = {k: rng.normal(size=v.shape) for k, v in final.items()}
    try:
        with np.errstate(all="ignore"):
            got = cell.backward(tape, dy, dstate)
    except Exception as e:  # noqa: BLE001
        raise RunFailure("backward", _exception(e), text, sizes) from e
    try:
        with np.errstate(all="ignore"):
            want = ref.backward(tape_ref, dy, dstate)
    except Exception as e:  # noqa: BLE001
        raise RunFailure("reference backward", _exception(e), text, sizes) from e
    bad = []
    for label, a, b in zip(("dx", "dparams", "dstate"), got, want):
        bad += _compare(label, a, b)
    if bad:
        raise RunFailure("backward differs from the reference", "; ".join(bad), text, sizes)
    if check:
        _check_gradient(cell, x, state, rng, text, sizes)
    return "ran"


def _check_gradient(cell, x, state, rng, text, sizes) -> None:
    """`cellspec check`'s central differences, along two random directions per param, input and
    state (the reference shares the derived partials, so only this checks the derivation).
    Judged only where everything is finite (a NaN the math has is the spec's meaning), and
    relative to the loss's own rounding as well as to the gradient, so that huge outputs or
    vanishing gradients do not fail on noise."""
    names = [n for n, _ in cell.INPUTS]
    xs = {k: v.copy() for k, v in x.items()} if isinstance(x, dict) else {names[0]: x.copy()}
    state = {k: v.copy() for k, v in state.items()}

    def run():
        with np.errstate(all="ignore"):
            y, final, tape = cell.forward(xs, {k: v.copy() for k, v in state.items()})
        return (y if isinstance(y, dict) else {"": y}), final, tape

    ys, final, tape = run()
    w_y = {k: rng.normal(size=v.shape) for k, v in ys.items()}
    w_s = {k: rng.normal(size=v.shape) for k, v in final.items()}

    def loss() -> tuple[float, float]:
        ys, final, _ = run()
        terms = [ys[k] * w_y[k] for k in ys] + [final[k] * w_s[k] for k in final]
        return float(sum(np.sum(t) for t in terms)), float(sum(np.sum(np.abs(t)) for t in terms))

    with np.errstate(all="ignore"):
        dx, dparams, dstate = cell.backward(tape, w_y if len(w_y) > 1 or "" not in w_y else w_y[""], w_s)
    dxs = dx if isinstance(dx, dict) else {names[0]: dx}
    targets = [(f"param {k}", cell.params, k, dparams[k]) for k in cell.params]
    targets += [(f"input {k}", xs, k, dxs[k]) for k in xs] + [(f"state {k}", state, k, dstate[k]) for k in state]
    size = loss()[1]
    if not np.isfinite(size) or not all(np.all(np.isfinite(g)) for *_, g in targets):
        return
    for label, holder, key, grad in targets:
        base = holder[key]
        for _ in range(2):
            v = rng.normal(size=base.shape)
            holder[key] = base + FD_EPS * v
            up = loss()[0]
            holder[key] = base - FD_EPS * v
            down = loss()[0]
            holder[key] = base
            numeric, analytic = (up - down) / (2 * FD_EPS), float(np.sum(grad * v))
            if not np.isfinite(numeric):
                continue
            # the loss rounds at ~1e-16 of the size of its terms, a difference quotient at that
            # over eps: 1e-6 of the size keeps clear of it
            scale = max(float(np.linalg.norm(grad) * np.linalg.norm(v)), abs(numeric), 1e-6 * size, 1e-12)
            if abs(numeric - analytic) / scale > GRADIENT_TOLERANCE:
                detail = f"{label}: directional derivative {analytic:.6g}, finite differences {numeric:.6g}"
                raise RunFailure("gradient check", detail, text, sizes)


def _exception(e: BaseException) -> str:
    """The exception's type, its first lines (Numba's TypingError says what failed on its third)
    and the file and line it came from."""
    last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    where = f" (at {os.path.basename(last[0].filename)}:{last[0].lineno})" if last else ""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if line.strip()]
    return f"{type(e).__name__}: {' | '.join(lines[:3])[:400]}{where}"


def _spec_text(built: Built) -> str:
    try:
        with open(built.cell.path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return f"(the spec {built.cell.path})"


def run_built(built: Built, sizes: dict[str, int] | None = None, seed: int = 0, text: str | None = None) -> str:
    """Run the module of `built` at `sizes` (default: the size sets of `size_sets`) against the
    reference. Returns 'ran' (at one size set at least) or 'refused' (Cell() refused every size
    set clearly); raises RunFailure otherwise. `text` is the spec, for the failure message."""
    text = text if text is not None else _spec_text(built)
    with tempfile.TemporaryDirectory(prefix="cellspec-run-") as folder:
        try:
            module = import_built(folder, built)
        except Exception as e:  # noqa: BLE001
            raise RunFailure("import", _exception(e), text) from e
        outcomes = []
        try:
            for s in [sizes] if sizes else size_sets(module):
                # the gradient check at the first size set that runs
                outcomes.append(_run_at(module, built, s, seed, text, check="ran" not in outcomes))
        finally:
            sys.modules.pop(module.__name__, None)
    return "ran" if "ran" in outcomes else "refused"
