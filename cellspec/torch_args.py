"""The arguments of `cellspec.torch.Module`, checked and brought to the Layer's form before any
kernel runs: sizes by nn.LSTM's names, tensors (type, device, memory, dtype, rank), the casts
of CPU autocast, unbatched inputs as a batch of one, x and state by the spec's names, lengths.
Imported by cellspec.torch only (it imports torch)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.nn.utils.rnn import PackedSequence

from .lengths import LengthsError
from .runtime import ShapeError

# nn.LSTM's spelling of a size -> the catalog's dim name
TORCH_SIZES = {"input_size": "input", "hidden_size": "hidden", "proj_size": "proj"}


def dims(Cell, given: dict) -> dict:
    """The spec's dims from `given`, where nn.LSTM's names stand for the catalog's."""
    out = dict(given)
    for torch_name, dim in TORCH_SIZES.items():
        if torch_name not in out:
            continue
        value = out.pop(torch_name)
        if dim in given:
            raise TypeError(f"give {dim}= or {torch_name}=, not both")
        if torch_name == "proj_size" and dim not in Cell.DIMS and not isinstance(value, bool) and value == 0:
            continue   # nn.LSTM's proj_size=0: no projection
        out[dim] = value
    return out


def checked(what: str, t, dtype: torch.dtype, ndim: int | None = None, names: str = ""):
    """`t`, refused unless a CPU tensor with memory, of `dtype` (and rank `ndim`)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, not {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{what} is on {t.device}: cellspec's kernels run on the CPU; move it there with .cpu()")
    if t.layout != torch.strided:
        raise ValueError(f"{what} has layout {t.layout}: cellspec takes dense (strided) tensors")
    try:
        t.data_ptr()
    except RuntimeError:
        raise TypeError(f"{what} is a {type(t).__name__}, with no memory behind it: cellspec's kernels read the memory of CPU "
                        "tensors, which torch.export and fake or functional tensors do not have (call the module eagerly; "
                        "torch.compile runs it outside its graph)") from None
    if t.dtype != dtype:
        raise ShapeError(f"{what} has dtype {t.dtype}, but this module is {dtype}: convert it with .to({dtype})")
    if ndim is not None and t.ndim != ndim:
        raise ShapeError(f"{what} must be a {ndim}-d tensor {names}, not of shape {list(t.shape)}")
    return t


def cast(value, dtype: torch.dtype):
    """`value` (a tensor, a PackedSequence, or a tuple, list or dict of them) with its floating
    CPU tensors of another dtype cast to `dtype`; anything else as it is (and checked after)."""
    if isinstance(value, PackedSequence):
        return value._replace(data=cast(value.data, dtype))
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype and value.device.type == "cpu" else value
    if isinstance(value, (tuple, list)):
        return type(value)(cast(v, dtype) for v in value)
    if isinstance(value, Mapping):
        return {k: cast(v, dtype) for k, v in value.items()}
    return value


def is_unbatched(x) -> bool:
    """Whether x is one sequence without a batch axis, as nn.LSTM takes it: a 2-d tensor
    [T,input] (for a cell of several inputs, a dict of them)."""
    if isinstance(x, torch.Tensor):
        return x.ndim == 2
    return isinstance(x, Mapping) and bool(x) and all(isinstance(v, torch.Tensor) and v.ndim == 2 for v in x.values())


def batched(x, state, lengths, batch_first: bool):
    """An unbatched x and its state as a batch of one (x [T,1,input], or [1,T,input] with
    batch_first; each state [num_layers*num_directions,1,dim]), as nn.LSTM reads them."""
    if lengths is not None:
        raise LengthsError("lengths goes with a batch: an unbatched x [T,input] is one sequence of all its T steps")
    axis = 0 if batch_first else 1
    x = {k: v.unsqueeze(axis) for k, v in x.items()} if isinstance(x, Mapping) else x.unsqueeze(axis)

    def one(s):
        if isinstance(s, torch.Tensor):
            if s.ndim != 2:
                raise ShapeError(f"for an unbatched x [T,input] the state is unbatched too, [num_layers*num_directions,dim] "
                                 f"tensors, not of shape {list(s.shape)}")
            return s.unsqueeze(1)
        return s   # not a tensor: refused by `states`

    if isinstance(state, Mapping):
        state = {k: one(v) for k, v in state.items()}
    elif isinstance(state, (tuple, list)):
        state = type(state)(one(v) for v in state)
    elif state is not None:
        state = one(state)
    return x, state


def inputs(Cell, x, dtype: torch.dtype, batch_first: bool) -> dict[str, torch.Tensor]:
    """x as a dict input name -> checked 3-d tensor."""
    names = [n for n, _ in Cell.INPUTS]
    lead = "[B,T," if batch_first else "[T,B,"
    if isinstance(x, Mapping):
        if set(x) != set(names):
            raise ShapeError(f"x must be a dict with the keys {', '.join(names)}, not {', '.join(map(str, x))}")
        return {n: checked(f"x[{n!r}]", x[n], dtype, 3, f"{lead}{d}]") for n, d in Cell.INPUTS}
    if len(names) > 1:
        raise ShapeError(f"{Cell.NAME} has the inputs {', '.join(names)}: x must be a dict of tensors")
    return {names[0]: checked("x", x, dtype, 3, f"{lead}{Cell.INPUTS[0][1]}]")}


def states(Cell, state, dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
    """state (None, a dict, a tuple in the order of the spec's `torch:` section, or a tensor for a
    cell of one state) as a dict state name -> checked 3-d tensor, or None."""
    names = [n for n, _ in Cell.STATES]
    if state is None:
        return None
    order = (getattr(Cell, "TORCH", None) or {}).get("state") or (names if len(names) == 1 else None)
    if isinstance(state, torch.Tensor) and len(names) == 1:
        state = {names[0]: state}
    elif isinstance(state, (tuple, list)):
        if order is None:
            raise ShapeError(f"state as a tuple needs the order of a `torch:` section, which spec {Cell.NAME!r} does not declare: "
                             f"pass a dict with the keys {', '.join(names)}")
        if len(state) != len(order):
            raise ShapeError(f"state as a tuple holds ({', '.join(order)}): {len(order)} tensors, not {len(state)}")
        state = dict(zip(order, state))
    elif not isinstance(state, Mapping):
        tuple_too = f", or a tuple ({', '.join(order)})" if order else ""
        raise ShapeError(f"state must be None, a dict with the keys {', '.join(sorted(names))}{tuple_too}, not {type(state).__name__}")
    missing, unknown = sorted(set(names) - set(state)), sorted(set(state) - set(names))
    if missing or unknown:
        raise ShapeError(f"state must have the keys {', '.join(sorted(names))}" + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(map(str, unknown))}" if unknown else ""))
    return {n: checked(f"state {n!r}", state[n], dtype, 3, f"[num_layers*num_directions,B,{d}]") for n, d in Cell.STATES}


def lengths(value):
    """lengths as the Layer takes them: an integer CPU tensor as its numpy view; None, a list or
    an array as they are (the Layer checks them)."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.requires_grad:
        raise LengthsError("lengths requires grad: it counts steps, which have no gradient; pass an integer tensor")
    if value.device.type != "cpu":
        raise LengthsError(f"lengths is on {value.device}: pass it on the CPU, as pack_padded_sequence takes it")
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise LengthsError(f"lengths has dtype {value.dtype}: it must be an integer tensor (one length per sequence)")
    return value.numpy()
