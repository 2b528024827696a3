"""The network a task trains: an optional linear encoder, a `Layer` of the spec's cell, and a
`Readout`; every param a view of one flat vector, so that clipping and an optimizer step are a
few numpy calls over all of them at once.

The encoder is a learned linear map of the task's inputs to the cell's input size, applied at
every step. It is needed where a spec ties its input size to another dim (MUT1 and MUT2 of
Jozefowicz et al. 2015 add tanh(x) to a hidden-sized sum, so input == hidden); `encoder="auto"`
uses it exactly there, "on" everywhere (to compare such a cell with others on equal terms), "off"
nowhere.
"""

from __future__ import annotations

import numpy as np

from ..blas import single_threaded
from ..layer import Layer
from .readout import Readout


class FitError(ValueError):
    """A spec whose inputs, dims or outputs do not fit a task: one line."""


def _tied(Cell, dim: str) -> bool:
    return any(dim in pair for pair in Cell.CONSTRAINTS)


def cell_sizes(Cell, task, hidden: int, dims: dict, encoder: str) -> tuple[dict, bool]:
    """The Layer's dims for this task and whether an encoder feeds the cell; FitError where the
    spec cannot take the task's inputs."""
    name = Cell.NAME
    if len(Cell.INPUTS) != 1:
        names = ", ".join(n for n, _ in Cell.INPUTS)
        raise FitError(f"{name} takes the inputs {names}; a task feeds one (a layer above another feeds the rest: not a cell a task can train alone)")
    (_, input_dim), = Cell.INPUTS
    if input_dim in dims:
        raise FitError(f"{name}: its input size {input_dim!r} comes from the task (or the encoder), not from dims")
    sizes = {"hidden": hidden} if "hidden" in Cell.DIMS else {}
    sizes.update(dims)
    unknown = [d for d in sizes if d not in Cell.DIMS]
    if unknown:
        raise FitError(f"{name} has no dim {', '.join(map(repr, unknown))}; its dims: {', '.join(Cell.DIMS)}")
    if encoder not in ("auto", "on", "off"):
        raise FitError(f"encoder must be auto, on or off, not {encoder!r}")
    tied = _tied(Cell, input_dim)
    encoded = encoder == "on" or (encoder == "auto" and tied)
    if tied:
        other = next(b if a == input_dim else a for a, b in Cell.CONSTRAINTS if input_dim in (a, b))
        if other not in sizes:
            raise FitError(f"{name} ties {input_dim} to {other}: give {other}")
        if not encoded and sizes[other] != task.inputs:
            raise FitError(f"{name} needs {input_dim} == {other} ({sizes[other]}), but task {task.name} has {task.inputs} inputs: use the encoder (encoder auto or on)")
    else:
        sizes[input_dim] = sizes.get("hidden", task.inputs) if encoded else task.inputs
    missing = [d for d in Cell.DIMS if d not in sizes and not (tied and d == input_dim)]
    if missing:
        raise FitError(f"{name} needs the dims {', '.join(missing)}: give them (--dim {missing[0]}=N)")
    return sizes, encoded


class Model:
    """`Model(module, task, hidden, dims, dtype, seed, encoder)`: `flat` holds every param,
    `grad` their gradients after `loss_and_grad`, in the same order (`names`)."""

    def __init__(self, module, task, hidden: int = 64, dims: dict | None = None, dtype="float32", seed: int = 0, encoder: str = "auto", num_layers: int = 1):
        Cell = module.Cell
        sizes, encoded = cell_sizes(Cell, task, hidden, dict(dims or {}), encoder)
        self.task = task
        self.dtype = np.dtype(dtype)
        self.layer = Layer(module, num_layers=num_layers, dtype=str(self.dtype), seed=seed, **sizes)
        rng = np.random.default_rng([seed, 0])
        (_, input_dim), = Cell.INPUTS
        width = self.layer.cells[0][0].dims[input_dim]
        self.encoder = None
        if encoded:
            bound = 1.0 / np.sqrt(task.inputs)   # nn.Linear's init
            self.encoder = {"W": rng.uniform(-bound, bound, (width, task.inputs)).astype(self.dtype),
                            "b": rng.uniform(-bound, bound, width).astype(self.dtype)}
        (_, out_dim), = Cell.OUTPUTS[:1]
        out = self.layer.cells[-1][0].dims[out_dim]
        self.readout = Readout(out, task.outputs, task.loss, task.at, self.dtype, rng)
        self._owners = [("cell", self.layer.params), ("readout", self.readout.params)]
        if self.encoder is not None:
            self._owners.insert(0, ("encoder", self.encoder))
        self.names = [(part, k) for part, owner in self._owners for k in owner]
        total = sum(owner[k].size for _, owner in self._owners for k in owner)
        self.flat = np.empty(total, self.dtype)
        self.grad = np.zeros(total, self.dtype)
        at = 0
        for part, owner in self._owners:
            for k in list(owner):
                value = owner[k]
                sl = slice(at, at + value.size)
                self.flat[sl] = value.ravel()
                owner[k] = self.flat[sl].reshape(value.shape)   # a view: the optimizer's step reaches it
                at += value.size

    @property
    def size(self) -> int:
        return self.flat.size

    def arrays(self) -> dict[str, np.ndarray]:
        """Every param by a flat name (`cell.W_i_l0`, `readout.W`, `encoder.W`), for an .npz."""
        return {f"{part}.{k}": owner[k] for part, owner in self._owners for k in owner}

    def _encode(self, x: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            return x
        T, B, n = x.shape
        return (x.reshape(T * B, n) @ self.encoder["W"].T + self.encoder["b"]).reshape(T, B, -1)

    def loss_and_grad(self, batch) -> float:
        """One batch forward and backward: returns the loss, leaves the gradients in `grad`.

        The small products around the cells (encoder, readout) run on one BLAS thread: woken for
        them, OpenBLAS's pool spins on the cores for a while after, and the cells' own
        batch-parallel threads, which come next, would wait for it (measured: 2.3 ms more a step
        for lstm on copy, T=100, on 2 cores; none on one thread)."""
        x = batch.x.astype(self.dtype, copy=False)
        if self.encoder is None:
            fed = x
        else:
            with single_threaded():
                fed = self._encode(x)
        y, _, tape = self.layer.forward(fed, train=True)
        with single_threaded():
            loss, _, cache = self.readout.forward(y, batch.target, batch.mask)
            dy, dread = self.readout.backward(cache)
        dx, dcell, _ = self.layer.backward(tape, dy)
        grads = {"cell": dcell, "readout": dread}
        if self.encoder is not None:
            T, B, n = x.shape
            dx2 = dx.reshape(T * B, -1)
            with single_threaded():
                grads["encoder"] = {"W": dx2.T @ x.reshape(T * B, n), "b": dx2.sum(axis=0)}
        # one pass into the flat gradient, in the order of `names` (one numpy call, not one per
        # param: between the cells' calls each costs several microseconds)
        np.concatenate([grads[part][k].ravel() for part, k in self.names], out=self.grad)
        return float(loss)

    def predict(self, batch) -> np.ndarray:
        """The readout's predictions (logits for cross-entropy) on a batch, with no tape."""
        x = batch.x.astype(self.dtype, copy=False)
        with single_threaded():
            fed = self._encode(x)
        y, _, _ = self.layer.forward(fed, train=False)
        with single_threaded():
            return self.readout.predict(y)
