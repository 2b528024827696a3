"""The head on top of a recurrent layer's output: a linear map to the task's outputs and a loss.

A Readout reads y [T,B,H] either at its last step only (at="last": y[T-1], [B,H]) or at every
step (at="every": y as [T*B,H], one BLAS product for the whole sequence), maps it through
pred = y @ W.T + b and scores pred with a loss: "mse", the mean of (pred - target)^2 over the
counted sequences (and steps) and the outputs, or "xent", softmax cross-entropy of the logits
pred against integer class indices, the mean over the counted targets of -log softmax(pred)[t]
(log-sum-exp shifted by each row's maximum, so logits of any size stay finite).

A mask says which targets count: [B] booleans at "last" (which sequences), [T,B] at "every"
(which steps of which sequences, e.g. those before each sequence's length). Targets at the
positions it leaves out are never read (they may be NaN or an invalid class), and pred there
does not enter the loss; y itself must be finite everywhere (a Layer leaves zeros past each
sequence's end), since backward forms dW from all of the rows it read.

Everything stays in the readout's dtype (float32 or float64): y must have it, and no array of
y's size is converted. Softmax cross-entropy and its gradient are one fused Numba loop over the
rows (`_xent`): numpy's row-wise max, exp, sum and gather over [T*B, classes] arrays of ten
columns cost more than the three products around them. Imports numpy and numba.
"""

from __future__ import annotations

import numbers

import numba
import numpy as np

LOSSES = ("mse", "xent")
ATS = ("last", "every")


def _count(name: str, value, least: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"Readout: {name} must be an integer >= {least}, not {value!r}")
    return int(value)


def _shape(shape) -> str:
    return "[" + ",".join(str(n) for n in shape) + "]"


@numba.njit(cache=True, nogil=True)
def _xent(pred, t, m, masked, dpred):
    """Sum over the counted rows of -log softmax(pred[n])[t[n]] (float64), and dpred =
    softmax(pred) - onehot(t) at the counted rows, 0 elsewhere (unscaled). -1 - n where row n's
    class is out of range (nothing else is valid then)."""
    N, O = pred.shape
    total = 0.0
    for n in range(N):
        if masked and not m[n]:
            for o in range(O):
                dpred[n, o] = 0
            continue
        k = t[n]
        if k < 0 or k >= O:
            return -1.0 - n
        top = pred[n, 0]
        for o in range(1, O):
            top = max(top, pred[n, o])
        s = 0.0
        for o in range(O):
            e = np.exp(pred[n, o] - top)
            dpred[n, o] = e
            s += e
        total += np.log(s) - (pred[n, k] - top)
        inv = 1.0 / s
        for o in range(O):
            dpred[n, o] *= inv
        dpred[n, k] -= 1
    return total


class _Cache:
    """What backward needs of one forward call."""

    __slots__ = ("y_shape", "rows", "W", "residual", "target", "mask", "count")

    def __init__(self, y_shape, rows, W, residual, target, mask, count):
        self.y_shape = y_shape  # (T, B, H)
        self.rows = rows  # [N,H]: y[T-1] (at "last") or y as [T*B,H]
        self.W = W  # the W of the forward call
        self.residual = residual  # mse: pred - target; xent: softmax(pred) - onehot(target); zeros where not counted
        self.target = target  # unused (None)
        self.mask = mask  # [N] booleans, or None (every target counts)
        self.count = count  # how many of the N rows count


class Readout:
    """A linear readout of a recurrent layer's output with a loss; see the module docstring.

    params: {"W": [outputs, hidden], "b": [outputs]}, initialised like torch.nn.Linear
    (both U(-1/sqrt(hidden), 1/sqrt(hidden))) from rng, in dtype. The trainer may replace the
    arrays by views of its flat parameter vector (same shapes and dtype): forward reads them from
    self.params at each call."""

    def __init__(self, hidden: int, outputs: int, loss: str, at: str, dtype, rng: np.random.Generator):
        if loss not in LOSSES:
            raise ValueError(f"Readout: unknown loss {loss!r}: expected one of {', '.join(LOSSES)}")
        if at not in ATS:
            raise ValueError(f"Readout: unknown at {at!r}: expected 'last' (read y[T-1]) or 'every' (every step)")
        self.hidden = _count("hidden", hidden)
        self.outputs = _count("outputs", outputs, 2 if loss == "xent" else 1)
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"Readout: dtype must be float32 or float64, not {dtype!r}") from None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"Readout: dtype must be float32 or float64, not {dtype}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"Readout: rng must be a numpy.random.Generator, not {type(rng).__name__}")
        self.loss, self.at, self.dtype = loss, at, dtype
        bound = 1.0 / np.sqrt(self.hidden)
        self.params = {
            "W": rng.uniform(-bound, bound, (self.outputs, self.hidden)).astype(dtype),
            "b": rng.uniform(-bound, bound, self.outputs).astype(dtype),
        }

    def __repr__(self) -> str:
        return (f"Readout(hidden={self.hidden}, outputs={self.outputs}, loss={self.loss!r}, "
                f"at={self.at!r}, dtype={self.dtype.name})")

    # -- the pieces of forward

    def _rows(self, y) -> np.ndarray:
        """y's rows that are read, [N,H]: y[T-1] or y as [T*B,H] (a view when y is contiguous)."""
        if not isinstance(y, np.ndarray):
            raise ValueError(f"Readout: y must be a numpy array, not {type(y).__name__}")
        if y.ndim != 3 or y.shape[2] != self.hidden or y.shape[0] < 1 or y.shape[1] < 1:
            raise ValueError(f"Readout: y has shape {_shape(y.shape)}, expected [T,B,H] with H = {self.hidden}")
        if y.dtype != self.dtype:
            raise ValueError(f"Readout: y has dtype {y.dtype}, the readout {self.dtype}")
        T, B, H = y.shape
        return y[T - 1] if self.at == "last" else y.reshape(T * B, H)

    def _lead(self, y_shape) -> tuple[int, ...]:
        """The shape of the positions that have a target: (B,) or (T, B)."""
        T, B, _ = y_shape
        return (B,) if self.at == "last" else (T, B)

    def _pred(self, rows: np.ndarray) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        pred = rows @ W.T
        pred += b
        return pred

    def predict(self, y: np.ndarray) -> np.ndarray:
        """pred alone: [B,O] at "last", [T,B,O] at "every" (logits for xent)."""
        rows = self._rows(y)
        return self._pred(rows).reshape(self._lead(y.shape) + (self.outputs,))

    def _mask(self, mask, lead) -> np.ndarray | None:
        if mask is None:
            return None
        where = "[B] (which sequences count)" if self.at == "last" else "[T,B] (which steps count)"
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise ValueError(f"Readout: mask must be a numpy array of booleans {where}")
        if mask.shape != lead:
            raise ValueError(f"Readout: mask has shape {_shape(mask.shape)}, expected {where} = {_shape(lead)}")
        return mask.reshape(-1)

    def forward(self, y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None):
        """(loss, pred, cache): the mean loss as a float, pred [B,O] ("last") or [T,B,O]
        ("every"), and what backward needs. target: mse, reals of pred's shape; xent, integer
        class indices in 0..outputs-1, [B] or [T,B]. mask: see the module docstring."""
        rows = self._rows(y)
        lead = self._lead(y.shape)
        m = self._mask(mask, lead)
        O = self.outputs
        N = rows.shape[0]
        if not isinstance(target, np.ndarray):
            raise ValueError(f"Readout: target must be a numpy array, not {type(target).__name__}")
        if self.loss == "mse":
            if target.shape != lead + (O,):
                raise ValueError(
                    f"Readout: mse target has shape {_shape(target.shape)}, expected pred's "
                    f"{_shape(lead + (O,))} ({'[B,O]' if self.at == 'last' else '[T,B,O]'})"
                )
            if target.dtype == np.bool_ or not (np.issubdtype(target.dtype, np.floating)
                                                or np.issubdtype(target.dtype, np.integer)):
                raise ValueError(f"Readout: mse target has dtype {target.dtype}; it must hold real numbers")
        else:
            if target.shape != lead:
                raise ValueError(
                    f"Readout: xent target has shape {_shape(target.shape)}, expected one class index "
                    f"per {'sequence, [B]' if self.at == 'last' else 'step, [T,B]'} = {_shape(lead)}"
                )
            if target.dtype == np.bool_ or not np.issubdtype(target.dtype, np.integer):
                raise ValueError(f"Readout: xent target has dtype {target.dtype}; it must hold integer class indices")
        count = N if m is None else int(np.count_nonzero(m))
        if count == 0:
            raise ValueError("Readout: the mask counts no target; the loss would be 0/0")

        pred2 = self._pred(rows)  # [N,O]
        pred = pred2.reshape(lead + (O,))
        if self.loss == "mse":
            diff = np.subtract(pred2, target.reshape(N, O), dtype=self.dtype)
            if m is not None:
                diff[~m] = 0
            loss = float(np.vdot(diff, diff)) / (count * O)
            return loss, pred, _Cache(y.shape, rows, self.params["W"], diff, None, m, count)

        t = np.ascontiguousarray(target.reshape(N), dtype=np.int64)
        dpred = np.empty_like(pred2)
        total = _xent(pred2, t, m if m is not None else np.empty(0, np.bool_), m is not None, dpred)
        if total < 0:   # a class out of range at row -1 - total
            bad = int(t[int(-1 - total)])
            raise ValueError(f"Readout: xent target holds class {bad}; classes are 0..{O - 1}")
        return total / count, pred, _Cache(y.shape, rows, self.params["W"], dpred, None, m, count)

    def backward(self, cache: _Cache):
        """(dy, {"W": dW, "b": db}): the gradient of forward's loss; dy like y, zeros at the
        steps the readout does not read (every step but the last at "last"). The cache is not
        changed (backward may be called again)."""
        if not isinstance(cache, _Cache):
            raise ValueError("Readout: backward takes the cache that forward returned")
        if self.loss == "mse":
            dpred = cache.residual * (2.0 / (cache.count * self.outputs))
        else:
            dpred = cache.residual * self.dtype.type(1.0 / cache.count)
        dW = dpred.T @ cache.rows
        db = dpred.sum(axis=0)
        drows = dpred @ cache.W
        T, B, H = cache.y_shape
        if self.at == "every":
            dy = drows.reshape(T, B, H)
        else:
            dy = np.zeros((T, B, H), self.dtype)
            dy[T - 1] = drows
        return dy, {"W": dW, "b": db}
