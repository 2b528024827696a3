"""What `cellspec.layer.Layer` stands on: the checks of its arguments (all made before any kernel
runs), the sizes of its upper layers, its write-through params mapping, its file format and the
glue to `cellspec.torch_layout`. Imports numpy and the runtime only.

The file of `Layer.save` is an .npz that holds the params under their keys and, under `META`, a
one-element string array with the layer's metadata as JSON: np.load reads it with
allow_pickle=False.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping, MutableMapping

import numpy as np

from .runtime import ShapeError, _check_array

META = "__layer__"
# what the metadata holds (see `metadata`)
KEYS = ("spec", "spec_sha256", "dims", "num_layers", "bidirectional", "dtype", "batch_first", "dropout", "links")
_SHA256 = re.compile(r"Generated from .* \(sha256 ([0-9a-f]{64})\)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def param_key(name: str, k: int, d: int) -> str:
    """The key of param `name` of layer k, direction d: the suffixes of torch's state_dict names
    (agreed with cellspec.torch_layout: do not change)."""
    return f"{name}_l{k}" + ("_reverse" if d else "")


# --- construction -----------------------------------------------------------------------------


def module_of(spec):
    """The generated module of `spec`: a spec's path, built with cellspec.load, or a module (anything
    with a `Cell`)."""
    if isinstance(spec, (str, os.PathLike)):
        from . import load

        return load(os.fspath(spec))
    if hasattr(spec, "Cell"):
        return spec
    raise TypeError(f"spec must be the path of a spec (str or pathlib.Path) or a generated module, not {type(spec).__name__}")


def check_options(Cell, num_layers, bidirectional, dropout, batch_first, links) -> None:
    if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)):
        raise TypeError(f"num_layers must be an integer, not {num_layers!r}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, not {num_layers}")
    for name, value in (("bidirectional", bidirectional), ("batch_first", batch_first)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, not {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.integer, np.floating)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), not {dropout!r}")
    if links is not None and not (isinstance(links, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in links.items())):
        raise TypeError(f"links must be None or a dict input name -> output or state name of the layer below, not {links!r}")
    if len(Cell.OUTPUTS) != 1:
        names = ", ".join(n for n, _ in Cell.OUTPUTS)
        raise ValueError(f"{Cell.NAME} has the outputs {names}: a Layer stacks and concatenates a cell with one output")


def upper_dims(Cell, dims: dict[str, int], nd: int) -> dict[str, int]:
    """The sizes of layers 1 and up: layer 0's, but the first input's dim is the width of the
    output below (both directions). Refused where that dim cannot take that size: a constraint
    ties it to another dim, or it also sizes something other than params."""
    first, dim = Cell.INPUTS[0]
    out = Cell.OUTPUTS[0][1]
    need = nd * dims[out]
    if dims[dim] == need:
        return dict(dims)
    ties = [f"{a} == {b}" for a, b in Cell.CONSTRAINTS if dim in (a, b)]
    users = [f"{kind} {n!r}" for kind, table in (("input", Cell.INPUTS[1:]), ("state", Cell.STATES), ("output", Cell.OUTPUTS)) for n, d in table if d == dim]
    if ties or users:
        width = f"both directions, 2*{out} = {need}" if nd == 2 else f"{out} = {need}"
        reason = f"{Cell.NAME} needs {' and '.join(ties)}" if ties else f"{dim} also sizes {', '.join(users)}"
        raise ValueError(f"layer 1: dim {dim!r} must be {need}, since its input {first!r} is the output of layer 0 ({width}), but {reason}")
    return {**dims, dim: need}


class LayerParams(MutableMapping):
    """`layer.params`: keyed `f"{param}_l{k}"` and `f"{param}_l{k}_reverse"`; a read is the cell's
    own array (in-place updates reach the cell), a write is checked (the key, shape and dtype)
    and stored in the cell. Keys cannot be added or removed: the spec fixes them."""

    def __init__(self, cells):
        self._where = {param_key(n, k, d): (cell, n) for k, row in enumerate(cells) for d, cell in enumerate(row) for n in cell.params}

    def __getitem__(self, key: str) -> np.ndarray:
        cell, name = self._where[key]
        return cell.params[name]

    def __iter__(self):
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def arrays(self) -> dict[str, np.ndarray]:
        """key -> the cell's array, as a plain dict (what `dict(params)` gives, without the
        Mapping protocol's call per key: the torch module reads it on every call)."""
        return {key: cell.params[name] for key, (cell, name) in self._where.items()}

    def __setitem__(self, key: str, value) -> None:
        cell, name = self._place(key)
        cell.params[name] = self._checked(key, value)

    def __delitem__(self, key: str) -> None:
        raise TypeError("the params of a layer are fixed by its spec: set a value, never delete one")

    def _place(self, key):
        if key not in self._where:
            raise KeyError(f"{key!r} is not a param of this layer; its keys are <param>_l<layer>, with _reverse for the reverse direction")
        return self._where[key]

    def _checked(self, key: str, value) -> np.ndarray:
        cell, name = self._place(key)
        dims = dict(cell.PARAMS)[name]
        shape = tuple(cell.dims[d] for d in dims)
        # a C-contiguous array of the right dtype is stored as it is (as a dict would)
        return _check_array(f"param {key!r}", value, shape, cell.dtype, f"[{','.join(dims)}]")

    def replace(self, arrays: Mapping, what: str) -> None:
        """Set every param from `arrays` (cast to the layer's dtype), all checked before any is set."""
        missing, unknown = sorted(set(self) - set(arrays)), sorted(set(arrays) - set(self))
        if missing or unknown:
            raise ValueError(f"{what} does not hold this layer's params" + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        checked = {k: self._checked(k, np.asarray(arrays[k]).astype(self[k].dtype)) for k in self}
        for k, v in checked.items():
            cell, name = self._where[k]
            cell.params[name] = v


# --- the arrays of forward and backward -------------------------------------------------------


def _lead(layer) -> str:
    return "B,T" if layer.batch_first else "T,B"


def first_input(Cell, x, lead: str, kind: str) -> tuple[dict, tuple[int, int]]:
    """x as a dict of the cell's inputs, and the first two sizes of its first input ([T,B], or
    [B,T] as `lead` says): the checks `checked_inputs` and cellspec.jax share; `kind` names the
    arrays taken ("numpy array")."""
    names = [n for n, _ in Cell.INPUTS]
    if len(names) == 1 and not isinstance(x, dict):
        x = {names[0]: x}
    if not isinstance(x, dict) or set(x) != set(names):
        raise ShapeError(f"x must be {'an array or ' if len(names) == 1 else ''}a dict with the keys {', '.join(names)}")
    first, first_dim = Cell.INPUTS[0]
    a = x[first]
    if getattr(a, "ndim", None) != 3:
        raise ShapeError(f"input {first!r} must be a 3-d {kind} [{lead},{first_dim}]")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ShapeError(f"input {first!r} has shape {list(a.shape)}: T and B must be at least 1")
    return x, tuple(a.shape[:2])


def checked_inputs(layer, x) -> tuple[dict[str, np.ndarray], int, int]:
    """x as a dict name -> time-major [T,B,dim] array, and T, B."""
    Cell = layer.module.Cell
    x, lead = first_input(Cell, x, _lead(layer), "numpy array")
    out = {}
    for name, dim in Cell.INPUTS:
        v = _check_array(f"input {name!r}", x[name], (*lead, layer.dims[dim]), layer.dtype, f"[{_lead(layer)},{dim}]")
        out[name] = v.transpose(1, 0, 2) if layer.batch_first else v
    T, B = lead[::-1] if layer.batch_first else lead
    return out, T, B


def checked_states(layer, state, B: int, what: str, batch: str) -> list[dict | None]:
    """`state` (a dict name -> [num_layers*num_directions,B,dim], or None) cut into one dict per
    cell, index k*num_directions + d; `batch` says where B comes from in an error."""
    n = layer.num_layers * layer.num_directions
    if state is None:
        return [None] * n
    Cell = layer.module.Cell
    names = {s for s, _ in Cell.STATES}
    if not isinstance(state, dict):
        raise ShapeError(f"{what} must be None or a dict with the keys {', '.join(sorted(names))}, not {type(state).__name__}")
    missing, unknown = sorted(names - set(state)), sorted(set(state) - names)
    if missing or unknown:
        raise ShapeError(f"{what} must have the keys {', '.join(sorted(names))}" + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    checked = {}
    for name, dim in Cell.STATES:
        a = state[name]
        if not isinstance(a, np.ndarray) or a.ndim != 3:
            raise ShapeError(f"{what} {name!r} must be a 3-d numpy array [num_layers*num_directions,B,{dim}]")
        if a.shape[0] != n:
            raise ShapeError(f"{what} {name!r} has {a.shape[0]} entries on axis 0, this layer needs num_layers*num_directions = {n}")
        if a.shape[1] != B:
            raise ShapeError(f"{what} {name!r} has batch size {a.shape[1]} on axis 1, but {batch} B = {B}")
        checked[name] = _check_array(f"{what} {name!r}", a, (n, B, layer.dims[dim]), layer.dtype, f"[num_layers*num_directions,B,{dim}]")
    return [{s: v[i] for s, v in checked.items()} for i in range(n)]


def checked_dy(layer, dy, T: int, B: int) -> np.ndarray:
    """dy, like forward's y, as a time-major [T,B,num_directions*out] array."""
    out = layer.module.Cell.OUTPUTS[0][1]
    width = f"2*{out}" if layer.bidirectional else out
    lead = (B, T) if layer.batch_first else (T, B)
    a = _check_array("dy", dy, (*lead, layer.num_directions * layer.dims[out]), layer.dtype, f"[{_lead(layer)},{width}]")
    return a.transpose(1, 0, 2) if layer.batch_first else a


# --- files ------------------------------------------------------------------------------------


def spec_sha256(module) -> str | None:
    """The sha256 of the spec a module was built from: `Cell.SPEC_SHA256`, or the generated
    docstring's `Generated from ... (sha256 <hex>)`; None for a module that has neither."""
    sha = getattr(module.Cell, "SPEC_SHA256", None)
    if sha:
        return sha
    m = _SHA256.search(module.__doc__ or "")
    return m.group(1) if m else None


def metadata(layer) -> dict:
    return {
        "spec": layer.module.Cell.NAME,
        "spec_sha256": spec_sha256(layer.module),
        "dims": layer.dims,
        "num_layers": layer.num_layers,
        "bidirectional": layer.bidirectional,
        "dtype": layer.dtype.name,
        "batch_first": layer.batch_first,
        "dropout": layer.dropout,
        "links": layer.links,
    }


def save(path, meta: dict, params: Mapping) -> None:
    np.savez(path, **{META: np.array([json.dumps(meta)])}, **{k: np.asarray(v) for k, v in params.items()})


def read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and the params of a file `save` wrote."""
    where = os.fspath(path)
    try:
        f = np.load(where, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{where} is not a file of Layer.save ({e})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} is not a file of Layer.save (not an .npz)")
    with f:
        if META not in f.files:
            raise ValueError(f"{where} is not a file of Layer.save (it has no {META!r} entry)")
        try:
            meta = json.loads(str(f[META][0]))
        except (ValueError, IndexError) as e:
            raise ValueError(f"{where} is not a file of Layer.save (its {META!r} entry is not JSON metadata: {e})") from None
        arrays = {k: f[k] for k in f.files if k != META}
    missing = [k for k in KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(f"{where} is not a file of Layer.save (its metadata lacks {', '.join(missing)})")
    return meta, arrays


def differences(saved: dict, mine: dict) -> list[str]:
    """What makes a saved layer's params unfit for this one, as phrases."""
    if saved["spec"] != mine["spec"]:
        return [f"it is of spec {saved['spec']!r}, this layer of {mine['spec']!r}"]
    out = []
    if saved["spec_sha256"] != mine["spec_sha256"]:
        out.append(f"spec {mine['spec']!r} has changed: sha256 {saved['spec_sha256']} there, {mine['spec_sha256']} here")
    for d in sorted(set(saved["dims"]) | set(mine["dims"])):
        a, b = saved["dims"].get(d, "absent"), mine["dims"].get(d, "absent")
        if a != b:
            out.append(f"dim {d!r} is {a} there, {b} here")
    if saved["num_layers"] != mine["num_layers"]:
        out.append(f"num_layers is {saved['num_layers']} there, {mine['num_layers']} here")
    if saved["bidirectional"] != mine["bidirectional"]:
        out.append(f"{1 + saved['bidirectional']} direction(s) there, {1 + mine['bidirectional']} here")
    return out


def catalog_module(name: str, path):
    """The module `generated.<name>`, for a file loaded without spec=."""
    try:
        if not _NAME.match(name):
            raise ImportError(name)
        return importlib.import_module(f"generated.{name}")
    except ImportError:
        raise ValueError(f"{os.fspath(path)} is of spec {name!r}, and there is no module generated.{name}: pass spec= (the spec's path or its module)") from None


# --- torch ------------------------------------------------------------------------------------


def torch_layout(Cell) -> dict:
    layout = getattr(Cell, "TORCH", None)
    if layout is None:
        raise ValueError(f"spec {Cell.NAME!r} declares no `torch:` section: there is no PyTorch layout to convert its params by")
    return layout


def numpy_state_dict(source) -> dict[str, np.ndarray]:
    """A torch module's state_dict, or a dict of tensors or arrays, as numpy arrays; a tensor is
    read by duck typing (`t.detach().cpu().numpy()`), so torch is never imported here."""
    state_dict = source.state_dict() if callable(getattr(source, "state_dict", None)) else source
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"load_torch takes a torch module (with state_dict()) or a dict of tensors or arrays, not {type(source).__name__}")
    return {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in state_dict.items()}
