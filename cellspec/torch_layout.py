"""A cell's params in PyTorch's layout and back, as its spec's `torch:` section declares it (the
generated `Cell.TORCH`): which params are the blocks of torch's stacked `weight_ih`,
`weight_hh`, `bias_ih`, `bias_hh` and `weight_hr`, in torch's gate order.

The layout is data of the spec, so that nothing here knows a cell by its name: a new spec that is
one of torch's cells declares it and loads torch's weights. This module needs numpy only (a torch
tensor is read by duck typing, `t.detach().cpu().numpy()`), so that a Layer can convert without
importing torch.

Keys. A layer's params are one flat dict, `f"{param}_l{k}"` for the forward direction of layer
k and `f"{param}_l{k}_reverse"` for its reverse direction (`W_i_l0`, `U_f_l1_reverse`), the
suffixes of torch's own state_dict names (`weight_ih_l0`, `bias_hh_l1_reverse`).

Biases. Torch adds two biases to each gate, `bias_ih` and `bias_hh`; a spec usually has one, the
sum, and names it in both lists. Going to torch, it goes whole into `bias_ih` and `bias_hh` gets
zeros; coming back, the two are summed. A bias named in one list only (the GRU's `b_hn`, which
the reset gate multiplies) is that block alone.
"""

from __future__ import annotations

import re

import numpy as np

# torch's stacked tensors of one layer and direction, in the order of its state_dict
TENSORS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")

# a name of torch's state_dict: its layer, and whether it is of the reverse direction
_KEY = re.compile(r"(?:weight|bias)_[a-z]{2}_l(\d+)(_reverse)?\Z")


def suffixes(num_layers: int, bidirectional: bool) -> list[str]:
    """The key suffixes of a stack's layers and directions, in torch's order: `_l0`,
    `_l0_reverse`, `_l1`, ..."""
    directions = ("", "_reverse") if bidirectional else ("",)
    return [f"_l{k}{d}" for k in range(num_layers) for d in directions]


def torch_kwargs(cell) -> dict:
    """The arguments of the torch.nn module that is this cell: `mode` (the class: RNN, LSTM or
    GRU) and its keywords, input_size and hidden_size (the first block of weight_ih is
    [hidden_size, input_size] at the cell's sizes), proj_size for a projected LSTM, and
    nonlinearity for a relu RNN."""
    layout = cell.TORCH
    if layout is None:
        raise ValueError(f"{cell.NAME}: its spec declares no 'torch:' section, so it has no PyTorch layout")
    shapes = dict(cell.PARAMS)
    rows, cols = shapes[layout["weight_ih"][0]]
    kwargs = {"mode": layout["module"], "input_size": cell.dims[cols], "hidden_size": cell.dims[rows]}
    if "weight_hr" in layout:
        kwargs["proj_size"] = cell.dims[shapes[layout["weight_hr"][0]][0]]
    if layout.get("nonlinearity", "tanh") != "tanh":
        kwargs["nonlinearity"] = layout["nonlinearity"]
    return kwargs


def _shared(layout: dict, tensor: str, param: str) -> bool:
    """Whether `param` is a bias_hh block that stands for the sum with its bias_ih block."""
    return tensor == "bias_hh" and param in layout["bias_ih"]


def _param_keys(layout: dict, num_layers: int, bidirectional: bool) -> list[str]:
    names = dict.fromkeys(p for t in TENSORS for p in layout.get(t, ()))
    return [f"{p}{s}" for s in suffixes(num_layers, bidirectional) for p in names]


def _difference(given, expected: list[str]) -> list[str]:
    """The keys missing from `given` and those it has beyond `expected`, as phrases."""
    wanted = set(expected)
    missing = [k for k in expected if k not in given]
    extra = [k for k in given if k not in wanted]
    return ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])


def _check_params(what: str, given, layout: dict, num_layers: int, bidirectional: bool) -> None:
    parts = _difference(given, _param_keys(layout, num_layers, bidirectional))
    if parts:
        raise ValueError(f"{what} do not match the layout of {num_layers} layer(s){', bidirectional' if bidirectional else ''}: {'; '.join(parts)}")


def to_torch(layout: dict, params: dict[str, np.ndarray], num_layers: int, bidirectional: bool) -> dict[str, np.ndarray]:
    """torch's state_dict (names -> arrays) of a layer's params: each tensor its blocks stacked
    by rows in the declared order; a bias named in both bias_ih and bias_hh goes whole into
    bias_ih, zeros into bias_hh."""
    _check_params("the params", params, layout, num_layers, bidirectional)
    out = {}
    for s in suffixes(num_layers, bidirectional):
        for t in TENSORS:
            if t in layout:
                blocks = [np.asarray(params[f"{p}{s}"]) for p in layout[t]]
                blocks = [np.zeros_like(b) if _shared(layout, t, p) else b for p, b in zip(layout[t], blocks)]
                out[f"{t}{s}"] = np.concatenate(blocks, axis=0)
    return out


def _array(value) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _has(keys) -> tuple[int, bool]:
    """How many layers torch state_dict names cover, and whether any is of a reverse direction."""
    found = [m for k in keys if (m := _KEY.match(k))]
    return max((int(m.group(1)) + 1 for m in found), default=0), any(m.group(2) for m in found)


def _check_state_dict(state_dict, expected: list[str], num_layers: int, bidirectional: bool) -> None:
    """Its names must be the layer's; where they are not, say how many layers and directions it has."""
    parts = _difference(state_dict, expected)
    if not parts:
        return
    layers, reverse = _has(state_dict)
    if reverse != bidirectional:
        parts.insert(0, "the state dict has no reverse direction, this layer is bidirectional" if bidirectional
                     else "the state dict has a reverse direction, this layer is not bidirectional")
    if layers != num_layers:
        parts.insert(0, f"the state dict has {layers} layer(s), this layer has {num_layers}")
    raise ValueError(f"the state dict does not fit this layer: {'; '.join(parts)}")


def from_torch(layout: dict, state_dict: dict, like: dict[str, np.ndarray], num_layers: int, bidirectional: bool) -> dict[str, np.ndarray]:
    """A layer's params (the keys of `like`, each of its shape and dtype, copied) from torch's
    state_dict: each tensor cut into its declared blocks; a bias named in both bias_ih and
    bias_hh is the sum of the two."""
    _check_params("the params of `like`", like, layout, num_layers, bidirectional)
    _check_state_dict(state_dict, [f"{t}{s}" for s in suffixes(num_layers, bidirectional) for t in TENSORS if t in layout], num_layers, bidirectional)
    out: dict[str, np.ndarray] = {}
    for s in suffixes(num_layers, bidirectional):
        for t in (t for t in TENSORS if t in layout):
            key, value = f"{t}{s}", _array(state_dict[f"{t}{s}"])
            blocks = [(f"{p}{s}", np.asarray(like[f"{p}{s}"]), _shared(layout, t, p)) for p in layout[t]]
            shape = (sum(b.shape[0] for _, b, _ in blocks), *blocks[0][1].shape[1:])
            if value.shape != shape:
                raise ValueError(f"{key} has shape {tuple(value.shape)}, this layer expects {shape}")
            start = 0
            for name, b, shared in blocks:
                piece = np.array(value[start : start + b.shape[0]], dtype=b.dtype)
                start += b.shape[0]
                out[name] = out[name] + piece if shared else piece
    return {k: out[k] for k in like}
