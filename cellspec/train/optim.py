"""Optimizers over one flat parameter vector, with torch.optim's update rules.

The trainer keeps every parameter as a view of one flat 1-D array (float32 or float64) and its
gradient likewise, so a step is a handful of whole-vector numpy calls on buffers allocated once,
at the first step, in the parameters' dtype. Each class follows the single-tensor ("for-loop")
implementation of its torch.optim namesake in torch 2.13 operation for operation: weight decay
is L2 added to the gradient (never written into the caller's gradient), Adam's bias corrections
are Python floats, eps is added after the square root, SGD's momentum buffer starts as the first
(decayed) gradient. The one departure is RMSprop(centered=True): where rounding makes the
centered second moment slightly negative (torch takes the square root of it and gets NaN), it
is taken as zero.

Adam, the trainer's default, runs as one fused Numba loop over the vector (`_adam`) instead of a
dozen whole-vector numpy passes: the same operations in the same order and dtype, every scalar
rounded to the params' dtype as numpy rounds it (no fused multiply-add, no reordering), so its
steps equal the numpy sequence's to the bit (a test holds them equal) and a trial's results do not
change with it. Timed straight after a cell's forward+backward, as it runs in a step, Adam's
step and the trainer's gradient copy took 127 us for the LSTM's 17,217 params as numpy passes
and 87 us fused. Imports numpy and numba.
"""

from __future__ import annotations

import math
import numbers

import numba
import numpy as np


def _number(owner: str, name: str, value) -> float:
    """value as a float: a real, finite number, or a ValueError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, not {value!r}")
    return value


def _positive(owner: str, name: str, value) -> float:
    value = _number(owner, name, value)
    if not value > 0.0:
        raise ValueError(f"{owner}: {name} must be > 0, not {value!r}")
    return value


def _nonnegative(owner: str, name: str, value) -> float:
    value = _number(owner, name, value)
    if not value >= 0.0:
        raise ValueError(f"{owner}: {name} must be >= 0, not {value!r}")
    return value


def _fraction(owner: str, name: str, value, closed: bool = False) -> float:
    """A number in [0, 1) ([0, 1] when closed)."""
    value = _number(owner, name, value)
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise ValueError(f"{owner}: {name} must be in [0, 1{']' if closed else ')'}, not {value!r}")
    return value


def _flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False, not {value!r}")
    return bool(value)


def _check_vector(owner: str, name: str, a) -> None:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{owner}: {name} must be a numpy array, not {type(a).__name__}")
    if a.ndim != 1:
        raise ValueError(f"{owner}: {name} must be 1-D (the flat vector), not of shape {list(a.shape)}")
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{owner}: {name} has dtype {a.dtype}; it must be float32 or float64")


def _lerp(start: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """start.lerp_(end, weight) in place, with torch's two formulas (tmp is scratch)."""
    np.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:
        tmp *= 1.0 - weight
        np.subtract(end, tmp, out=start)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adam(params, grad, m, v, vmax, decay, wd, w, w_rest, small, b2, b2_rest, bc2, eps, neg_step, amsgrad):
    """Adam's update of params, m (exp_avg), v (exp_avg_sq) and vmax (max_exp_avg_sq, read only
    with amsgrad) in place, element by element, as torch's single-tensor Adam does it tensor op by
    tensor op: g = p*wd + grad (with decay); m.lerp_(g, w) (m + (g-m)*w where `small`, else g - (g-m)*w_rest);
    v = v*b2 + (g*b2_rest)*g; vmax = maximum(vmax, v) (NaN wins); p += (m / (sqrt(v)/bc2 + eps))
    * neg_step. The scalars come in the params' dtype. error_model="numpy": a division by zero is
    inf, as numpy's, not an exception (Python's error model checks every division: 68 us against
    20 for 17,500 params, measured hot)."""
    for i in range(params.size):
        g = grad[i]
        if decay:
            g = params[i] * wd + g
        d = g - m[i]
        mi = m[i] + d * w if small else g - d * w_rest
        m[i] = mi
        vi = v[i] * b2 + (g * b2_rest) * g
        v[i] = vi
        if amsgrad:
            top = vmax[i]
            if top > vi or top != top:
                vi = top
            vmax[i] = vi
        params[i] = params[i] + (mi / (np.sqrt(vi) / bc2 + eps)) * neg_step


class Optimizer:
    """Updates one flat parameter vector in place from its gradient; see the module docstring.

    The state (moment buffers, step count) is allocated on the first `step`, for that vector's
    size and dtype; later steps must pass a vector of the same size and dtype. `reset()` drops
    the state (the next step starts afresh)."""

    name = "optimizer"
    # the buffers step allocates, besides the scratch ones (`_scratch`)
    _buffers: tuple[str, ...] = ()

    def __init__(self, lr, weight_decay=0.0):
        self.lr = _positive(self.name, "lr", lr)
        self.weight_decay = _nonnegative(self.name, "weight_decay", weight_decay)
        self.reset()

    def reset(self) -> None:
        """Forget the state: the next step is a first step."""
        self.steps = 0
        self._size: int | None = None
        self._dtype = None
        self._state: dict[str, np.ndarray] = {}

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """One update of params (1-D float32/float64, in place) from grad (same shape and dtype;
        left as it was)."""
        _check_vector(self.name, "params", params)
        _check_vector(self.name, "grad", grad)
        if grad.shape != params.shape or grad.dtype != params.dtype:
            raise ValueError(
                f"{self.name}: grad is {grad.dtype} {list(grad.shape)}, params {params.dtype} "
                f"{list(params.shape)}: they must match"
            )
        if self._size is None:
            self._size, self._dtype = params.size, params.dtype
            names = self._scratch() + self._buffers
            self._state = {k: np.zeros(params.size, params.dtype) for k in names}
        elif params.size != self._size or params.dtype != self._dtype:
            raise ValueError(
                f"{self.name}: params are {params.dtype} [{params.size}], but the state was made "
                f"for {self._dtype} [{self._size}] (call reset() to start afresh)"
            )
        self.steps += 1
        self._step(params, grad, self._state)

    def _scratch(self) -> tuple[str, ...]:
        """The scratch buffers of a step: "tmp", and "decayed" for the decayed gradient."""
        return ("tmp",) + (("decayed",) if self.weight_decay != 0.0 else ())

    def _decayed(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """grad + weight_decay * params (torch's grad.add(param, alpha=weight_decay)), in a
        buffer; grad itself when there is no weight decay."""
        if self.weight_decay == 0.0:
            return grad
        out = self._state["decayed"]
        np.multiply(params, self.weight_decay, out=out)
        out += grad
        return out

    def _step(self, params, grad, state) -> None:  # pragma: no cover - each subclass has one
        raise NotImplementedError

    def _options(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({opts})"


class Adam(Optimizer):
    """torch.optim.Adam (with amsgrad; L2 weight decay, not AdamW's decoupled one)."""

    name = "adam"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"adam: betas must be a pair (beta1, beta2), not {betas!r}")
        self.betas = (_fraction("adam", "betas[0]", betas[0]), _fraction("adam", "betas[1]", betas[1]))
        self.eps = _nonnegative("adam", "eps", eps)
        self.amsgrad = _flag("adam", "amsgrad", amsgrad)
        self._buffers = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(lr, weight_decay)

    def _scratch(self) -> tuple[str, ...]:
        return ()   # the fused loop keeps its temporaries in registers

    def _step(self, params, grad, state) -> None:
        beta1, beta2 = self.betas
        step = float(self.steps)
        step_size = self.lr / (1.0 - beta1**step)
        bias_correction2_sqrt = (1.0 - beta2**step) ** 0.5
        weight = 1.0 - beta1
        # each scalar computed in Python floats and rounded once to the params' dtype, where the
        # numpy passes round it (NEP 50: a Python float meets a float32 array as float32)
        t = params.dtype.type
        vmax = state["max_exp_avg_sq"] if self.amsgrad else state["exp_avg_sq"][:0]
        _adam(params, grad, state["exp_avg"], state["exp_avg_sq"], vmax, self.weight_decay != 0.0, t(self.weight_decay), t(weight), t(1.0 - weight),
              abs(weight) < 0.5, t(beta2), t(1.0 - beta2), t(bias_correction2_sqrt), t(self.eps), t(-step_size), self.amsgrad)

    def _options(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """torch.optim.RMSprop (momentum, centered)."""

    name = "rmsprop"

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
        self.alpha = _fraction("rmsprop", "alpha", alpha)
        self.eps = _nonnegative("rmsprop", "eps", eps)
        self.momentum = _fraction("rmsprop", "momentum", momentum)
        self.centered = _flag("rmsprop", "centered", centered)
        self._buffers = (("square_avg",) + (("momentum_buffer",) if self.momentum > 0.0 else ())
                         + (("grad_avg",) if self.centered else ()))
        super().__init__(lr, weight_decay)

    def _step(self, params, grad, state) -> None:
        alpha = self.alpha
        tmp, square_avg = state["tmp"], state["square_avg"]
        g = self._decayed(params, grad)
        square_avg *= alpha
        np.multiply(g, 1.0 - alpha, out=tmp)
        tmp *= g
        square_avg += tmp
        if self.centered:
            grad_avg = state["grad_avg"]
            _lerp(grad_avg, g, 1.0 - alpha, tmp)
            np.multiply(grad_avg, grad_avg, out=tmp)
            np.subtract(square_avg, tmp, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)  # rounding below zero: torch's sqrt would give NaN
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(square_avg, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        if self.momentum > 0.0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += tmp
            np.multiply(buf, -self.lr, out=tmp)
        else:
            tmp *= -self.lr
        params += tmp

    def _options(self) -> dict:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "centered": self.centered, "weight_decay": self.weight_decay}


class SGD(Optimizer):
    """torch.optim.SGD (momentum, dampening, nesterov)."""

    name = "sgd"

    def __init__(self, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = _fraction("sgd", "momentum", momentum)
        self.dampening = _fraction("sgd", "dampening", dampening, closed=True)
        self.nesterov = _flag("sgd", "nesterov", nesterov)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError("sgd: nesterov needs momentum > 0 and dampening 0")
        self._buffers = ("momentum_buffer",) if self.momentum != 0.0 else ()
        super().__init__(lr, weight_decay)

    def _step(self, params, grad, state) -> None:
        tmp = state["tmp"]
        g = self._decayed(params, grad)
        if self.momentum != 0.0:
            buf = state["momentum_buffer"]
            if self.steps == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                np.multiply(g, 1.0 - self.dampening, out=tmp)
                buf += tmp
            if self.nesterov:
                np.multiply(buf, self.momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, -self.lr, out=tmp)
        params += tmp

    def _options(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


OPTIMIZERS: dict[str, type[Optimizer]] = {"adam": Adam, "rmsprop": RMSprop, "sgd": SGD}
_OPTIONS = {
    "adam": ("betas", "eps", "weight_decay", "amsgrad"),
    "rmsprop": ("alpha", "eps", "momentum", "centered", "weight_decay"),
    "sgd": ("momentum", "dampening", "nesterov", "weight_decay"),
}


def make(name: str, lr: float, **options) -> Optimizer:
    """The optimizer called `name` ("adam", "rmsprop", "sgd") with learning rate lr and options;
    a ValueError for an unknown name or option or a bad value."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        raise ValueError(
            f"{name}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(known: {', '.join(_OPTIONS[name])})"
        )
    return OPTIMIZERS[name](lr=lr, **options)


def clip_grad_norm(grad: np.ndarray, max_norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_ on one flat gradient, in place: with total its 2-norm,
    grad *= min(max_norm / (total + 1e-6), 1), computed in grad's dtype. Returns total (before
    clipping). A non-finite total is returned as it is and grad left untouched (torch would
    scale by it)."""
    _check_vector("clip_grad_norm", "grad", grad)
    max_norm = _number("clip_grad_norm", "max_norm", max_norm) if max_norm != math.inf else math.inf
    if not max_norm > 0.0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, not {max_norm!r}")
    dtype = grad.dtype.type
    total = np.sqrt(np.dot(grad, grad))
    if not np.isfinite(total):
        return float(total)
    coef = dtype(max_norm) / (total + dtype(1e-6))
    if coef < 1.0:
        grad *= coef
    return float(total)
