"""Layers of cells run as one model: each layer reads the layer below at the same step.

By default a layer's first input is the output of the layer below. Other inputs are linked by
name to an output or a state of the layer below: a depth-gated LSTM layer reads the memory cell
`c` of the layer under it. Gradients flow back through every link, into the lower layer's
outputs or into its state at every step (`backward(..., dseq=...)`). Params and states of the
stack are flat dicts keyed `"<layer>.<name>"`. Imports only numpy and the runtime.
"""

from __future__ import annotations

import numpy as np

from .runtime import CellBase, ShapeError


def resolve_links(k: int, lower: CellBase, upper: CellBase, links: dict[str, str], where: str, first: bool = True) -> dict[str, tuple[str, str]]:
    """Layer k's inputs mapped to ("output" or "state", name) of layer k-1, checked: each source
    exists and has the input's size. An input left out is the lower layer's output when it is
    the first input and the lower layer has one output; `first=False` leaves the first input
    out altogether, for a caller that feeds it itself (`Layer`: its first input reads both
    directions below). `where` names the argument that holds `links` in an error."""
    if not first and upper.INPUTS[0][0] in links:
        raise ValueError(f"layer {k} input {upper.INPUTS[0][0]!r} reads the output of layer {k - 1}: it takes no link")
    unknown = set(links) - {n for n, _ in upper.INPUTS}
    if unknown:
        raise ValueError(f"layer {k} has no input {', '.join(sorted(unknown))}")
    outputs = {n: d for n, d in lower.OUTPUTS}
    states = {n: d for n, d in lower.STATES}
    resolved = {}
    for i, (name, dim) in enumerate(upper.INPUTS):
        if i == 0 and not first:
            continue
        source = links.get(name)
        if source is None:
            if i != 0 or len(outputs) != 1:
                choices = ", ".join([*outputs, *states])
                raise ValueError(f"layer {k} input {name!r} needs a link to an output or state of layer {k - 1} ({choices}) in {where}")
            source = next(iter(outputs))
        if source in outputs:
            kind, size = "output", lower.dims[outputs[source]]
        elif source in states:
            kind, size = "state", lower.dims[states[source]]
        else:
            raise ValueError(f"layer {k - 1} has no output or state {source!r} for layer {k} input {name!r}")
        if size != upper.dims[dim]:
            raise ValueError(f"layer {k} input {name!r} is [{dim}={upper.dims[dim]}] but layer {k - 1} {kind} {source!r} has size {size}")
        resolved[name] = (kind, source)
    return resolved


def linked_inputs(links: dict[str, tuple[str, str]], below_y: dict, lower_tape) -> dict:
    """What the linked inputs of a layer read: outputs of the layer below (`below_y`, a dict) or
    its state after every step (from its tape)."""
    return {name: below_y[source] if kind == "output" else lower_tape.sequence(source) for name, (kind, source) in links.items()}


def gradients_below(links: dict[str, tuple[str, str]], dx: dict) -> tuple[dict, dict]:
    """The gradients of a layer's linked inputs as they reach the layer below: (by output, by
    state: its `dseq`), summed where several inputs read one source."""
    dys, dseq = {}, {}
    for name, (kind, source) in links.items():
        target = dys if kind == "output" else dseq
        target[source] = dx[name] if source not in target else target[source] + dx[name]
    return dys, dseq


class StackTape:
    __slots__ = ("stack", "tapes", "fed")

    def __init__(self, stack, tapes, fed):
        self.stack = stack
        self.tapes = tapes
        self.fed = fed


class Stack:
    """`Stack([cell0, cell1, ...], links=[{}, {"c_low": "c"}, ...])`: `links[k]` maps inputs of
    layer k to outputs or states of layer k-1; an input left out is the lower layer's output
    when it has exactly one, and must be linked otherwise. Layer 0 reads the stack's input."""

    def __init__(self, layers: list[CellBase], links: list[dict[str, str]] | None = None):
        if not layers:
            raise ValueError("a stack needs at least one layer")
        links = list(links) if links is not None else [{} for _ in layers]
        if len(links) != len(layers):
            raise ValueError(f"links has {len(links)} entries for {len(layers)} layers")
        dtypes = {layer.dtype for layer in layers}
        if len(dtypes) != 1:
            raise ValueError("all layers of a stack must have one dtype")
        self.layers = list(layers)
        self.dtype = dtypes.pop()
        self.links: list[dict[str, tuple[str, str]]] = [{}]
        for k in range(1, len(layers)):
            self.links.append(resolve_links(k, layers[k - 1], layers[k], links[k], f"links[{k}]"))
        if links[0]:
            raise ValueError("layer 0 reads the stack's input: it takes no links")

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {f"{k}.{n}": a for k, layer in enumerate(self.layers) for n, a in layer.params.items()}

    @property
    def STATES(self):
        return [(f"{k}.{n}", d) for k, layer in enumerate(self.layers) for n, d in layer.STATES]

    def _split(self, flat, what: str) -> list[dict | None]:
        if flat is None:
            return [None] * len(self.layers)
        names = {n for n, _ in self.STATES}
        if not isinstance(flat, dict) or set(flat) != names:
            raise ShapeError(f"{what} must be None or a dict with the keys {', '.join(sorted(names))}")
        out = [{} for _ in self.layers]
        for key, value in flat.items():
            k, _, n = key.partition(".")
            out[int(k)][n] = value
        return out

    def forward(self, x, state=None, lengths=None):
        """x as the bottom layer takes it; state: flat dict or None; lengths: None or [B]
        integers in 1..T, as `CellBase.forward` takes them, for every layer. Returns the top
        layer's y, the final states (flat dict) and a tape."""
        states = self._split(state, "state")
        tapes, fed, finals = [], [], {}
        below_y = None
        for k, layer in enumerate(self.layers):
            if k == 0:
                inputs = x
            else:
                inputs = linked_inputs(self.links[k], below_y, tapes[-1])
            y, final, tape = layer.forward(inputs, states[k], lengths=lengths)
            tapes.append(tape)
            fed.append(inputs)
            finals.update({f"{k}.{n}": v for n, v in final.items()})
            below_y = y if isinstance(y, dict) else {layer.OUTPUTS[0][0]: y}
        top = self.layers[-1]
        y_top = below_y if len(top.OUTPUTS) > 1 else below_y[top.OUTPUTS[0][0]]
        return y_top, finals, StackTape(self, tapes, fed)

    def backward(self, tape: StackTape, dy, dstate=None):
        """dy for the top layer's outputs; dstate: flat dict or None. Returns dx (as the bottom
        layer returns it), dparams (flat dict) and the gradient of the initial states (flat)."""
        if not isinstance(tape, StackTape) or tape.stack is not self:
            raise ShapeError("tape must be the one this stack's forward returned")
        dstates = self._split(dstate, "dstate")
        dparams, dstate0 = {}, {}
        dy_layer = dy
        dseq_layer = None
        for k in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[k]
            dx, dp, ds = layer.backward(tape.tapes[k], dy_layer, dstates[k], dseq_layer)
            dparams.update({f"{k}.{n}": v for n, v in dp.items()})
            dstate0.update({f"{k}.{n}": v for n, v in ds.items()})
            if k == 0:
                break
            dx = dx if isinstance(dx, dict) else {layer.INPUTS[0][0]: dx}
            lower = self.layers[k - 1]
            dys, dseq_layer = gradients_below(self.links[k], dx)
            for n, d in lower.OUTPUTS:
                if n not in dys:
                    dys[n] = np.zeros((tape.tapes[k - 1].T, tape.tapes[k - 1].B, lower.dims[d]), self.dtype)
            dy_layer = dys if len(lower.OUTPUTS) > 1 else dys[lower.OUTPUTS[0][0]]
        return dx, dparams, dstate0
