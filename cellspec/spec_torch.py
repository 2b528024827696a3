"""The optional `torch:` section of a spec: how its params map onto the layout of the torch.nn
module whose equations the spec's are (RNN, LSTM or GRU).

    torch:
      module: LSTM                      # torch.nn's class
      state: [h, c]                     # the spec's states in the order of torch's (h_n, c_n)
      weight_ih: [W_i, W_f, W_g, W_o]   # params stacked by rows, in torch's gate order
      weight_hh: [U_i, U_f, U_g, U_o]
      bias_ih: [b_i, b_f, b_g, b_o]
      bias_hh: [b_i, b_f, b_g, b_o]     # named in both: the sum of torch's two biases
      weight_hr: [P]                    # LSTM with proj_size only
      nonlinearity: relu                # RNN only: tanh (the default) or relu

The section is data for `cellspec.torch_layout`, which converts params to and from torch's
state_dict; so that it can, every param must be a block of some tensor, and each tensor must be
what torch stacks there. Whether the equations are torch's is not checked here: the parity tests
run both.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Location, SpecError
from .torch_layout import TENSORS
from .yamltext import Reader, Text, refuse_yaml11

KEYS = ("module", "state", *TENSORS, "nonlinearity")
REQUIRED = ("module", "state", "weight_ih", "weight_hh", "bias_ih", "bias_hh")
NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class _Module:
    gates: tuple[str, ...]   # the blocks of each stacked tensor, in torch's order (the RNN's one unnamed)
    states: tuple[str, ...]  # what its forward returns besides the output


MODULES = {
    "RNN": _Module(("",), ("h_n",)),
    "LSTM": _Module(("i", "f", "g", "o"), ("h_n", "c_n")),
    "GRU": _Module(("r", "z", "n"), ("h_n",)),
}


@dataclass(frozen=True)
class TorchLayout:
    """The section as read, every name checked; `table` is what the generated module holds."""

    module: str
    state: tuple[str, ...]
    tensors: tuple[tuple[str, tuple[str, ...]], ...]  # (torch tensor, its blocks), in TENSORS order
    nonlinearity: str | None = None

    def table(self) -> dict[str, str | list[str]]:
        """The generated Cell's TORCH table: plain strings and lists, in the order of KEYS."""
        out: dict[str, str | list[str]] = {"module": self.module, "state": list(self.state)}
        out.update((t, list(blocks)) for t, blocks in self.tensors)
        if self.nonlinearity is not None:
            out["nonlinearity"] = self.nonlinearity
        return out


def read_torch(r: Reader, node, states: tuple, params: tuple) -> TorchLayout:
    """The section, every name a state or param of the spec (`states`, `params`: the spec's
    Declared and Param objects) and every param named."""
    fields: dict[str, tuple[Text, object]] = {}
    for key, value in r.mapping(node, "'torch'"):
        if key.value not in KEYS:
            raise SpecError(f"unknown key {key.value!r} in 'torch'; it has {', '.join(KEYS)}", key.where)
        fields[key.value] = (key, value)
    for key in REQUIRED:
        if key not in fields:
            raise SpecError(f"'torch' has no {key!r}", r.where(node))
    module_text = r.scalar(fields["module"][1], "the torch module")
    module = module_text.value
    if module not in MODULES:
        raise SpecError(f"torch module {module!r} is not one of {', '.join(MODULES)} (torch.nn's recurrent modules)", module_text.start)
    state = _read_state(r, fields["state"][1], module, states)
    by_name = {p.name: p for p in params}
    placed: dict[str, tuple[str, int, Location]] = {}  # param -> (tensor, block, where it is named)
    tensors = tuple((t, _read_tensor(r, t, fields[t], module, by_name, placed)) for t in TENSORS if t in fields)
    nonlinearity = None
    if "nonlinearity" in fields:
        key, value = fields["nonlinearity"]
        if module != "RNN":
            raise SpecError(f"nonlinearity is only for RNN, not {module}", key.where)
        text = r.scalar(value, "the nonlinearity")
        if text.value not in NONLINEARITIES:
            raise SpecError(f"nonlinearity {text.value!r} is not {' or '.join(NONLINEARITIES)}", text.start)
        nonlinearity = text.value
    for p in params:
        if p.name not in placed:
            raise SpecError(f"param {p.name!r} (line {p.where.line}) is in no tensor of 'torch': loading torch's weights could not set it", r.where(node))
    return TorchLayout(module, state, tensors, nonlinearity)


def _names(r: Reader, node, key: str, what: str) -> list[Text]:
    """The names listed under `key`, each the name of a `what` (state, param)."""
    out = [r.scalar(n, f"an entry of {key}") for n in r.sequence(node, f"{key} of 'torch'")]
    for t in out:
        refuse_yaml11(t, what)
    return out


def _read_state(r: Reader, node, module: str, states: tuple) -> tuple[str, ...]:
    """The spec's states in the order of torch's, each once, as many as the module has."""
    wanted, declared = MODULES[module].states, [s.name for s in states]
    names = _names(r, node, "state", "state")
    seen: set[str] = set()
    for t in names:
        if t.value not in declared:
            raise SpecError(f"{t.value!r} is not a state of the spec; its states are {', '.join(declared)}", t.start)
        if t.value in seen:
            raise SpecError(f"state {t.value!r} is already listed", t.start)
        seen.add(t.value)
    torch_states = f"{len(wanted)} state{'s' if len(wanted) > 1 else ''} ({', '.join(wanted)})"
    if len(names) != len(wanted):
        raise SpecError(f"nn.{module} has {torch_states}, and this lists {len(names)}", r.where(node))
    missing = [s for s in declared if s not in seen]
    if missing:
        raise SpecError(f"nn.{module} has {torch_states}, and the spec's state {missing[0]!r} is not one of them", r.where(node))
    return tuple(t.value for t in names)


def _read_tensor(r: Reader, tensor: str, field: tuple, module: str, params: dict, placed: dict) -> tuple[str, ...]:
    """The blocks of one of torch's stacked tensors: matrices of one column dim for a weight,
    vectors for a bias, as many as the module's gates (one for weight_hr), each in no other
    tensor, but for a bias that is the sum of one gate's bias_ih and bias_hh blocks."""
    key, node = field
    gates = MODULES[module].gates
    if tensor == "weight_hr":
        if module != "LSTM":
            raise SpecError(f"weight_hr is only for LSTM (the projection of proj_size), not {module}", key.where)
        gates = ("",)
    blocks = _names(r, node, tensor, "param")
    if len(blocks) != len(gates):
        what = f"stacks {len(gates)} blocks, gates {', '.join(gates)}" if len(gates) > 1 else "is one block"
        raise SpecError(f"nn.{module}'s {tensor} {what}; this lists {len(blocks)}", r.where(node))
    matrix = tensor.startswith("weight")
    first = None
    for k, t in enumerate(blocks):
        p = params.get(t.value)
        if p is None:
            raise SpecError(f"{t.value!r} is not a param of the spec", t.start)
        if (len(p.shape) == 2) != matrix:
            raise SpecError(f"{tensor} stacks {'matrix' if matrix else 'vector'} params, and {t.value!r} is a {'vector' if matrix else 'matrix'}", t.start)
        if first is None:
            first = p
        elif p.shape[1:] != first.shape[1:]:
            raise SpecError(f"the blocks of {tensor} must have one column dim: {t.value!r} is [{', '.join(p.shape)}] and {first.name!r} is [{', '.join(first.shape)}]", t.start)
        _place(t, tensor, k, placed)
    return tuple(t.value for t in blocks)


def _place(t: Text, tensor: str, k: int, placed: dict) -> None:
    """A param is the block of one tensor, or the same gate's block of bias_ih and bias_hh."""
    if t.value in placed:
        other, j, where = placed[t.value]
        if other == tensor:
            raise SpecError(f"{t.value!r} is already a block of {tensor}", t.start)
        if (other, tensor) != ("bias_ih", "bias_hh"):
            raise SpecError(f"{t.value!r} is already a block of {other} (line {where.line})", t.start)
        if j != k:
            raise SpecError(f"{t.value!r} is block {k} of bias_hh but block {j} of bias_ih: a bias named in both is the sum of one gate's two", t.start)
    placed[t.value] = (tensor, k, t.start)
