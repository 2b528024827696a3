"""`Layer`: any generated cell used the way nn.LSTM is used: stacked layers, two directions,
dropout between layers, batch-first arrays, and a batch of sequences of different lengths.

Layers. Layer k > 0 reads the output of layer k-1, both directions concatenated on the last axis
(forward first), as its first input; its other inputs are linked by name to an output or a state
of the layer below (`links=`, read by `stack.resolve_links`), each direction reading the same
direction below. Gradients flow back through a state link into the lower cell's
`backward(..., dseq=...)`, as in `Stack`, whose helpers this module calls. Dropout (inverted) is
applied to that concatenated output only, as nn.LSTM does: a link reads the lower cell's own
output or state.

Directions. The reverse cell of a layer runs every sequence from its own last step backwards, as
PyTorch's packed sequences do: its arrays live in a reversed frame, in which step t of sequence b
is step `len_b-1-t` of the batch (padding steps stay in place). The gather into that frame is its
own inverse, so the same gather takes x into the frame and y, dy and dx back out of it. A link
between reverse cells stays inside the frame.

Lengths. Every cell takes the batch in the caller's order with its lengths and hands its results
back in that order: a cell sorts the rows longest first for its kernels in each chunk's thread
(`lengths.Ragged`), where it copies them anyway, and puts them back there. The cells stop a
sequence's state at its last step and zero its outputs past it.

Params. `layer.params` is a flat mapping keyed `f"{param}_l{k}"` (the forward cell of layer k)
and `f"{param}_l{k}_reverse"` (its reverse cell), the suffixes of torch's state_dict names, that
writes through to the cells. Files, torch conversion and the argument checks are in
`layer_parts`. Imports numpy and cellspec's runtime, never the compiler unless `spec` is a path.
"""

from __future__ import annotations

import os

import numpy as np

from . import layer_parts as parts
from .lengths import checked as checked_lengths
from .runtime import ShapeError
from .stack import gradients_below, linked_inputs, resolve_links


class LayerTape:
    """What `Layer.forward` saved for `backward`: each cell's tape (`tapes[k][d]`), the dropout
    masks (None where none was applied), the checked lengths (None without) and the reversed
    frame."""

    __slots__ = ("layer", "T", "B", "lengths", "reversal", "tapes", "masks")

    def __init__(self, layer, T, B, lengths, reversal, tapes, masks):
        self.layer = layer
        self.T = T
        self.B = B
        self.lengths = lengths
        self.reversal = reversal
        self.tapes = tapes
        self.masks = masks


def _frame(a: np.ndarray, d: int, reversal: np.ndarray) -> np.ndarray:
    """`a` [T,B,...] in the time frame of direction d: as it is for the forward direction, else
    gathered through the per-sequence reversal (its own inverse: the same call takes it back)."""
    return a if d == 0 else np.take_along_axis(a, reversal[:, :, None], axis=0)


def _stacked(per_cell: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The cells' final states (or their gradients), cell (k, d) at index k*num_directions + d,
    as [num_layers*num_directions, B, dim] arrays; a lone cell's as views of its own arrays (a
    cell returns these as arrays of their own, never views of its tape)."""
    if len(per_cell) == 1:
        return {n: v[None] for n, v in per_cell[0].items()}
    return {n: np.stack([f[n] for f in per_cell]) for n in per_cell[0]}


def _reversal(lengths: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """[T,B] time indices: t -> len_b-1-t for t < len_b, padding steps left in place."""
    n = np.full(B, T) if lengths is None else lengths
    t = np.arange(T)[:, None]
    return np.where(t < n, n - 1 - t, t)


class Layer:
    """`Layer(spec, num_layers=1, bidirectional=False, dropout=0.0, batch_first=False,
    dtype="float64", seed=None, links=None, **dims)`: `spec` is a spec's path or a generated
    module, `dims` the spec's sizes for layer 0 (`input=`, `hidden=`, ...). One cell per layer and
    direction, each seeded from `seed`; dropout draws from `layer.rng`, seeded from it too."""

    def __init__(self, spec, num_layers=1, bidirectional=False, dropout=0.0, batch_first=False, dtype="float64", seed=None, links=None, **dims):
        self.module = parts.module_of(spec)
        Cell = self.module.Cell
        parts.check_options(Cell, num_layers, bidirectional, dropout, batch_first, links)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.num_directions = nd = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.links = dict(links or {})
        # one int seed per cell and a Generator for dropout, all from `seed`
        seeds = np.random.SeedSequence(seed).spawn(self.num_layers * nd + 1)
        cell_seed = [int(s.generate_state(1)[0]) for s in seeds[:-1]]
        self.rng = np.random.default_rng(seeds[-1])
        bottom = Cell(dtype=dtype, seed=cell_seed[0], **dims)
        self.dims = dict(bottom.dims)
        self.dtype = bottom.dtype
        upper = parts.upper_dims(Cell, self.dims, nd) if self.num_layers > 1 else None
        self.cells = [
            [bottom if k == d == 0 else Cell(dtype=dtype, seed=cell_seed[k * nd + d], **(self.dims if k == 0 else upper)) for d in range(nd)]
            for k in range(self.num_layers)
        ]
        # links[k]: layer k's inputs but the first, to ("output" or "state", name) of layer k-1
        self._links = [{}] + [resolve_links(k, self.cells[k - 1][0], self.cells[k][0], self.links, "links=", first=False) for k in range(1, self.num_layers)]
        self._first = Cell.INPUTS[0][0]
        self._out, self._out_dim = Cell.OUTPUTS[0]
        # inference keeps the tapes of the cells below a state link: the layer above reads that
        # state at every step, which only a tape holds
        self._reads_state = any(kind == "state" for links in self._links for kind, _ in links.values())
        self.params = parts.LayerParams(self.cells)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}={n}" for d, n in self.dims.items())
        return (f"Layer({self.module.Cell.NAME}, {sizes}, num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}, dtype={self.dtype.name!r})")

    # --- forward and backward -----------------------------------------------------------------

    def forward(self, x, state=None, lengths=None, train=True, dropout_on=None):
        """x: [T,B,input] ([B,T,input] with batch_first; a dict name -> array when the cell has
        several inputs); state: None (zeros) or a dict state name -> [num_layers*num_directions,
        B, dim], entry k*num_directions + d for layer k, direction d, as nn.LSTM's h_n; lengths:
        None or [B] integers in 1..T. Returns y [T,B,num_directions*out] (batch-first likewise),
        the final state (a dict like `state`), and the tape for `backward` (None unless train).

        train=False runs the cells without a tape and without dropout, except the cells below a
        state link: the layer above reads their state at every step, which only a tape keeps.
        dropout_on (None: as train) sets the dropout apart from the tape, as a torch module in
        eval mode under autograd (a tape, no dropout) or in training mode under no_grad needs."""
        if dropout_on is not None and not isinstance(dropout_on, (bool, np.bool_)):
            raise TypeError(f"dropout_on must be None, True or False, not {dropout_on!r}")
        dropping = (train if dropout_on is None else bool(dropout_on)) and self.dropout > 0
        inputs, T, B = parts.checked_inputs(self, x)
        lengths = None if lengths is None else checked_lengths(lengths, T, B)
        states = parts.checked_states(self, state, B, "state", "x has")
        reversal = _reversal(lengths, T, B) if self.bidirectional else None
        nd, L = self.num_directions, self.num_layers
        finals, tapes, masks, below, feed = [], [], [], [], None
        for k in range(L):
            taped = train or (self._reads_state and k < L - 1)
            row = []
            for d, cell in enumerate(self.cells[k]):
                if k == 0:
                    fed = {n: _frame(a, d, reversal) for n, a in inputs.items()}
                else:
                    y_below, tape_below = below[d]
                    fed = {self._first: _frame(feed, d, reversal), **linked_inputs(self._links[k], {self._out: y_below}, tape_below)}
                y, final, tape = cell.forward(fed, states[k * nd + d], tape=taped, lengths=lengths)
                finals.append(final)
                row.append((y, tape))
            ys = [_frame(y, d, reversal) for d, (y, _) in enumerate(row)]
            feed = ys[0] if nd == 1 else np.concatenate(ys, axis=-1)
            mask = None
            if dropping and k < L - 1:
                mask = self._dropout_mask(feed.shape)
                feed = feed * mask
            tapes.append([t for _, t in row])
            masks.append(mask)
            below = row
        y = np.ascontiguousarray(feed.transpose(1, 0, 2)) if self.batch_first else feed
        return y, _stacked(finals), LayerTape(self, T, B, lengths, reversal, tapes, masks) if train else None

    def _dropout_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Inverted dropout: 0 with probability p, else 1/(1-p), in the caller's batch order (a
        row's mask does not hang on the lengths of the other rows)."""
        keep = self.rng.random(shape) >= self.dropout
        return keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)

    def backward(self, tape: LayerTape, dy, dstate=None):
        """dy like forward's y; dstate like its final state (None for zeros). Returns dx (like x),
        dparams (keyed like `params`) and the gradient of the initial state (like `state`)."""
        if not isinstance(tape, LayerTape) or tape.layer is not self:
            raise ShapeError("tape must be the one this layer's forward returned (with train=True)")
        grad = parts.checked_dy(self, dy, tape.T, tape.B)
        dstates = parts.checked_states(self, dstate, tape.B, "dstate", "the forward pass had")
        reversal, nd, L = tape.reversal, self.num_directions, self.num_layers
        dparams, dstate0 = {}, [None] * (L * nd)
        out = self.dims[self._out_dim]
        from_above = [({}, {})] * nd   # per direction: (by output, by state) from the links above
        for k in range(L - 1, -1, -1):
            if tape.masks[k] is not None:
                grad = grad * tape.masks[k]
            below, dfeed, dxs = [], None, []
            for d, cell in enumerate(self.cells[k]):
                dys, dseq = from_above[d]
                g = _frame(grad[..., d * out:(d + 1) * out], d, reversal)
                if self._out in dys:
                    g = g + dys[self._out]
                dx, dp, ds = cell.backward(tape.tapes[k][d], g, dstates[k * nd + d], dseq or None)
                dparams.update({parts.param_key(n, k, d): v for n, v in dp.items()})
                dstate0[k * nd + d] = ds
                dx = dx if isinstance(dx, dict) else {self._first: dx}
                dxs.append(dx)
                if k > 0:
                    back = _frame(dx[self._first], d, reversal)
                    dfeed = back if dfeed is None else dfeed + back
                    below.append(gradients_below(self._links[k], dx))
            grad, from_above = dfeed, below
        # each input reaches both cells of layer 0: the forward cell's gradient, plus the reverse's
        dx = {n: v if nd == 1 else v + _frame(dxs[1][n], 1, reversal) for n, v in dxs[0].items()}
        if self.batch_first:
            dx = {n: np.ascontiguousarray(v.transpose(1, 0, 2)) for n, v in dx.items()}
        return (dx if len(dx) > 1 else dx[self._first]), {k: dparams[k] for k in self.params}, _stacked(dstate0)

    # --- files and torch ----------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the params and what the layer is (spec name and sha256, dims, num_layers,
        directions, dtype, batch_first, dropout, links) to an .npz file, without pickle."""
        parts.save(path, parts.metadata(self), self.params)

    @classmethod
    def load(cls, path: str | os.PathLike, spec=None) -> Layer:
        """The layer `save` wrote: built from `spec` (a path or module), or where spec is None,
        from the catalog module `generated.<spec name>`; its spec must have the saved sha256."""
        meta, arrays = parts.read(path)
        module = parts.module_of(spec) if spec is not None else parts.catalog_module(meta["spec"], path)
        layer = cls(module, num_layers=meta["num_layers"], bidirectional=meta["bidirectional"], dropout=meta["dropout"],
                    batch_first=meta["batch_first"], dtype=meta["dtype"], links=meta["links"], **meta["dims"])
        layer._take(meta, arrays, path)
        return layer

    def load_params(self, path: str | os.PathLike) -> None:
        """Load the params that `save` wrote into this layer; they must be of the same spec and
        sha256, dims, num_layers and directions (a file of another dtype is cast)."""
        meta, arrays = parts.read(path)
        self._take(meta, arrays, path)

    def _take(self, meta: dict, arrays: dict, path) -> None:
        differences = parts.differences(meta, parts.metadata(self))
        if differences:
            raise ValueError(f"{os.fspath(path)} does not fit this layer: {'; '.join(differences)}")
        self.params.replace(arrays, os.fspath(path))

    def torch_state_dict(self) -> dict[str, np.ndarray]:
        """The params as PyTorch's state_dict of the matching nn module (names -> arrays), by the
        layout the spec's `torch:` section declares."""
        layout = parts.torch_layout(self.module.Cell)
        from .torch_layout import to_torch

        return to_torch(layout, dict(self.params), self.num_layers, self.bidirectional)

    def load_torch(self, module_or_state_dict) -> None:
        """Set the params from a torch nn module (anything with `state_dict()`) or a dict of
        tensors or arrays, by the layout of the spec's `torch:` section. Never imports torch."""
        layout = parts.torch_layout(self.module.Cell)
        from .torch_layout import from_torch

        arrays = parts.numpy_state_dict(module_or_state_dict)
        like = {k: v for k, v in self.params.items()}
        self.params.replace(from_torch(layout, arrays, like, self.num_layers, self.bidirectional), "the torch state_dict")
