"""What every long-term-dependency task shares: the error, the batch, and the Task base class
(option checking, the masked loss in the trainer's units, and accuracy through each task's own
definition of a right answer). Numpy only."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np


class TaskError(ValueError):
    """A bad task name, T or option; the message is one line."""


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch, time-major. `x` is float64 [L,B,inputs]. `target`: for loss "mse" float64
    [B,outputs] (at "last") or [L,B,outputs] (at "every"); for "xent" int64 class indices [B] or
    [L,B]. `mask` is [L,B] bool, the steps that count, where at == "every" and only some
    steps count; None where all count (always None at "last"). eq=False: arrays have no truth
    value, so batches compare (and hash) by identity."""

    x: np.ndarray
    target: np.ndarray
    mask: np.ndarray | None = None


def one_hot(tokens: np.ndarray, n: int) -> np.ndarray:
    """float64 one-hot of integer `tokens` [L,B] -> [L,B,n]; a token of -1 (padding): zeros."""
    out = np.zeros(tokens.shape + (n,), dtype=np.float64)
    valid = tokens >= 0
    idx = np.nonzero(valid)
    out[idx + (tokens[valid],)] = 1.0
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable for large logits."""
    m = np.max(logits, axis=-1, keepdims=True)
    z = logits - m
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def int_option(task: str, name: str, value, least: int) -> int:
    """An option that must be an int (not a bool) of at least `least`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TaskError(f"{task}: option {name} must be an int, got {value!r}")
    if value < least:
        raise TaskError(f"{task}: option {name} must be >= {least}, got {value}")
    return int(value)


def bool_option(task: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TaskError(f"{task}: option {name} must be True or False, got {value!r}")
    return bool(value)


class Task:
    """One task; subclasses set the class attributes and define `_configure`, `batch`,
    `baseline` and `solved` (and `_right` where a right answer is not the default one: the
    argmax for xent, |error| < `tolerance` for mse)."""

    name: str = ""
    cite: str = ""
    loss: str = "mse"
    at: str = "last"
    min_T: int = 1
    defaults: dict = {}
    tolerance: float = 0.0  # mse: |error| below it is a right answer

    inputs: int
    outputs: int
    T: int
    length: int

    def __init__(self, T: int, **options):
        if isinstance(T, bool) or not isinstance(T, numbers.Integral):
            raise TaskError(f"{self.name}: T must be an int, got {T!r}")
        if T < self.min_T:
            raise TaskError(f"{self.name}: T must be >= {self.min_T}, got {T}")
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise TaskError(f"{self.name}: unknown option {unknown[0]!r} (options: {known})")
        self.T = int(T)
        self.options = {**self.defaults, **options}
        self._configure(**self.options)

    def _configure(self, **options) -> None:
        """Check the options and set inputs, outputs and length."""
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"make({self.name!r}, {self.T}{opts})"

    def batch(self, rng: np.random.Generator, B: int) -> Batch:
        raise NotImplementedError

    def baseline(self) -> float:
        raise NotImplementedError

    def solved(self, metrics: dict) -> bool:
        raise NotImplementedError

    def _check_B(self, B) -> int:
        if isinstance(B, bool) or not isinstance(B, numbers.Integral) or B < 1:
            raise TaskError(f"{self.name}: B must be an int >= 1, got {B!r}")
        return int(B)

    # -- loss and accuracy ---------------------------------------------------------------
    def _counted(self, batch: Batch) -> np.ndarray:
        """bool over the target's leading shape ([B] or [L,B]): the targets that count."""
        lead = batch.target.shape if self.loss == "xent" else batch.target.shape[:-1]
        if batch.mask is None:
            return np.ones(lead, dtype=bool)
        return batch.mask

    def _checked_pred(self, pred, batch: Batch) -> np.ndarray:
        pred = np.asarray(pred, dtype=np.float64)
        want = batch.target.shape if self.loss == "mse" else batch.target.shape + (self.outputs,)
        if pred.shape != want:
            raise TaskError(f"{self.name}: pred has shape {pred.shape}, expected {want}")
        return pred

    def metrics(self, pred, batch: Batch) -> dict:
        """{"loss": the masked loss in baseline()'s units, "accuracy": the fraction of right
        answers among the counted targets (the task's own definition of right)}."""
        pred = self._checked_pred(pred, batch)
        counted = self._counted(batch)
        if self.loss == "mse":
            per = np.mean((pred - batch.target) ** 2, axis=-1)
        else:
            logp = log_softmax(pred)
            per = -np.take_along_axis(logp, batch.target[..., None], axis=-1)[..., 0]
        right = self._right(pred, batch)[self._answers(batch)]
        return {"loss": float(np.mean(per[counted])), "accuracy": float(np.mean(right))}

    def _answers(self, batch: Batch) -> np.ndarray:
        """bool over the target's leading shape: the targets accuracy is read on (by default
        the counted ones)."""
        return self._counted(batch)

    def _right(self, pred: np.ndarray, batch: Batch) -> np.ndarray:
        """bool over the target's leading shape: whether each answer is right (only those of
        `_answers` are read)."""
        if self.loss == "mse":
            return np.all(np.abs(pred - batch.target) < self.tolerance, axis=-1)
        return np.argmax(pred, axis=-1) == batch.target


class VaryingLength(Task):
    """Hochreiter & Schmidhuber's tasks, whose sequences may vary in length: with the option
    `vary_length`, L = T + T//10 and each sequence's length is drawn from [T, L], its steps the
    last ones of the L (the steps before it all-zero inputs); without it, every sequence is T."""

    defaults = {"vary_length": False}

    def _lengths(self, vary_length) -> None:
        self.vary_length = bool_option(self.name, "vary_length", vary_length)
        self.length = self.T + self.T // 10 if self.vary_length else self.T

    def _starts(self, rng: np.random.Generator, B: int) -> np.ndarray:
        """[B] the step each sequence starts at."""
        n = rng.integers(self.T, self.length + 1, B) if self.vary_length else np.full(B, self.T)
        return self.length - n
