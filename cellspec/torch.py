"""`cellspec.torch.Module`: any generated cell as a `torch.nn.Module`, used where nn.LSTM is used.

    rnn = cellspec.torch.Module("specs/lstm.yaml", input_size=3, hidden_size=4, num_layers=2,
                                bidirectional=True, dtype=torch.float64)
    y, state = rnn(x, (h0, c0))          # state: {"h": h_n, "c": c_n}

The module holds a `cellspec.Layer`; its params are `nn.Parameter`s under the Layer's keys
(`W_i_l0`, `U_f_l1_reverse`, ...) that share memory with the Layer's numpy arrays
(`torch.from_numpy`), so an optimizer step or `load_state_dict` (which copies in place) updates
the cells with no copy. What could rebind a param is guarded: `module.to(...)` and the like may not
change the dtype or leave the CPU (`_apply`), and before each forward a Parameter whose memory is
no longer the Layer's array (`load_state_dict(assign=True)`, `share_memory()`) becomes the
Layer's array again. A plain tensor in a Parameter's place (`torch.func.functional_call`) runs on
a copy of the Layer that reads it, leaving the Layer alone.

Autograd. The forward and backward passes are the generated kernels, called through
`torch.autograd.Function`, not `torch.library.custom_op` + `register_autograd`: the backward pass
needs the kernels' tape, a Python object of numpy arrays, and a custom op may return tensors
only. Carrying the tape past it would take a global registry keyed by a handle tensor, whose
entries leak whenever no backward runs (inference under grad, an exception, a graph dropped); nor
can a custom op take the Layer itself as an argument. A Function keeps the tape on its ctx,
freed with the graph, and saves no tensors: the tape is the kernels' own, and autograd holds no
second copy. The backward is once-differentiable (no double backward); torch.func's vmap and grad
are not supported (the Function has no setup_context or vmap rule), functional_call is.

Copies and pickles (`copy.deepcopy`, `torch.save(module)`) rebuild the Layer from its config and
the generated module (found again by its name or its spec's path, and refused if the spec's
sha256 has changed) and point it at the copied params; the dropout generator's state goes along.

Modes. Training mode (`module.train()`) turns dropout on; a tape is kept when grad is enabled and
an input, the initial state or a param requires grad. So eval mode under autograd runs with a
tape and without dropout, and training mode under `no_grad` with dropout and without a tape
(`Layer.forward`'s `dropout_on`).

Autocast. The kernels run in float32 or float64 only. Under `torch.autocast("cpu", ...)` the
module's floating inputs and initial state are cast to its dtype first (as
`torch.amp.custom_fwd(cast_inputs=...)` casts them), so that it runs inside a bfloat16 model;
its outputs stay in its dtype, and the gradients flow back through the casts in the callers'
dtypes. Outside autocast a tensor of another dtype is refused.

Parametrizations. A param under `torch.nn.utils.parametrize` (`weight_norm`, a DropConnect of
the recurrent weights as AWD-LSTM's weight drop) is read as its parametrization computes it at
each call, and its gradient flows back through it; `torch_state_dict` exports what it computes,
and `load_torch` sets it through its `right_inverse`.

Graphs. `torch.compile` runs the module outside its graph (a graph break: the kernels are not
PyTorch ops); `torch.jit.trace`, which would keep the kernels' outputs as constants, and
`torch.export`, whose fake tensors have no memory for the kernels to read, are refused with an
error that says so.

Sizes are the spec's dim names (`input=`, `hidden=`, ...), or as nn.LSTM spells them,
`input_size=`, `hidden_size=`, `proj_size=` (0: none, where the spec has no `proj`). Every
tensor is checked (type, device, dtype, rank, then the Layer's shapes) before any kernel runs.

This is the one module of cellspec that imports torch at its top: `import cellspec` and the
generated modules never do.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
import numpy as np
import torch
from torch.autograd.function import once_differentiable
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import layer_parts as parts
from . import torch_args as args
from .layer import Layer
from .lengths import LengthsError
from .runtime import ShapeError

DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A view of a CPU tensor's memory (strided as it is: the Layer copies where its kernels need
    a contiguous array)."""
    return t.detach().resolve_conj().resolve_neg().numpy()


def _address(a: np.ndarray):
    return a.__array_interface__["data"][0], a.shape, a.strides


def _runner(layer: Layer, arrays: dict[str, np.ndarray]) -> Layer:
    """`layer`, where `arrays` are its params' own memory; else a shallow copy of it whose cells
    read `arrays` (the Layer itself untouched)."""
    if all(arrays[k] is v or _address(arrays[k]) == _address(v) for k, v in layer.params.arrays().items()):
        return layer
    runner = copy.copy(layer)
    runner.cells = [[copy.copy(cell) for cell in row] for row in layer.cells]
    for k, row in enumerate(runner.cells):
        for d, cell in enumerate(row):
            cell.params = {n: arrays[parts.param_key(n, k, d)] for n in cell.params}
    runner.params = parts.LayerParams(runner.cells)
    return runner


class _Call:
    """What one forward call hands the Function besides its tensors."""

    __slots__ = ("layer", "inputs", "states", "outputs", "keys", "params", "lengths", "dropout_on")

    def __init__(self, layer, inputs, states, outputs, keys, params, lengths, dropout_on):
        self.layer, self.inputs, self.states, self.keys = layer, inputs, states, keys
        # the final state's names, in the order the Function returns them
        self.outputs = outputs
        # the params' tensors as arrays (Module._params): the Layer's own where they are shared
        self.params = params
        self.lengths, self.dropout_on = lengths, dropout_on


def _run(call: _Call, arrays: list[np.ndarray], taped: bool):
    """The Layer's forward on the arrays of the inputs, the initial states (if given) and the
    params, in the order of `call`; returns the layer it ran on, y, the final state and the tape."""
    ni, ns = len(call.inputs), len(call.states or ())
    layer = _runner(call.layer, dict(zip(call.keys, arrays[ni + ns:])))
    x = dict(zip(call.inputs, arrays[:ni]))
    state = None if call.states is None else dict(zip(call.states, arrays[ni:ni + ns]))
    y, final, tape = layer.forward(x if ni > 1 else arrays[0], state, call.lengths, train=taped, dropout_on=call.dropout_on)
    return layer, y, final, tape


class _LayerFunction(torch.autograd.Function):
    """The kernels under autograd: the tape on ctx, no tensor saved (see the module docstring)."""

    @staticmethod
    def forward(ctx, call: _Call, *tensors):
        given = len(tensors) - len(call.keys)
        layer, y, final, tape = _run(call, [_numpy(t) for t in tensors[:given]] + call.params, taped=True)
        ctx.layer, ctx.tape, ctx.call = layer, tape, call
        ctx.shapes = (y.shape, {n: v.shape for n, v in final.items()})
        ctx.set_materialize_grads(False)
        return (torch.from_numpy(y), *(torch.from_numpy(final[n]) for n in call.outputs))

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, *dfinal):
        layer, call, dtype = ctx.layer, ctx.call, ctx.layer.dtype
        y_shape, shapes = ctx.shapes
        dy = np.zeros(y_shape, dtype) if dy is None else _numpy(dy)
        dstate = None
        if any(g is not None for g in dfinal):
            dstate = {n: np.zeros(shapes[n], dtype) if g is None else _numpy(g) for n, g in zip(call.outputs, dfinal)}
        dx, dparams, dstate0 = layer.backward(ctx.tape, dy, dstate)
        dx = dx if isinstance(dx, dict) else {call.inputs[0]: dx}
        grads = [dx[n] for n in call.inputs] + [dstate0[n] for n in call.states or ()] + [dparams[k] for k in call.keys]
        return (None, *(torch.from_numpy(g) if need else None for g, need in zip(grads, ctx.needs_input_grad[1:])))


class Module(torch.nn.Module):
    """`Module(spec, num_layers=1, bidirectional=False, dropout=0.0, batch_first=False,
    dtype=torch.float32, seed=None, links=None, **dims)`: `spec` a spec's path or a generated
    module, as `cellspec.Layer` takes it. seed=None draws the Layer's seed from torch's generator,
    so that `torch.manual_seed` makes the initial weights (and the dropout masks, which the Layer
    draws) reproducible."""

    def __init__(self, spec, num_layers=1, bidirectional=False, dropout=0.0, batch_first=False, dtype=torch.float32, seed=None, links=None, **dims):
        super().__init__()
        if dtype not in DTYPES:
            raise TypeError(f"dtype must be torch.float32 or torch.float64 (the kernels' dtypes), not {dtype!r}")
        module = parts.module_of(spec)
        # how a copy or an unpickled module finds the generated module again (see __getstate__)
        self._spec = (module.__name__, os.path.abspath(spec) if isinstance(spec, (str, os.PathLike)) else None, parts.spec_sha256(module))
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        self.layer = Layer(module, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout, batch_first=batch_first,
                           dtype=DTYPES[dtype], seed=seed, links=links, **args.dims(module.Cell, dims))
        self.dtype = dtype
        self._state_names = [n for n, _ in module.Cell.STATES]
        for key, array in self.layer.params.items():
            self.register_parameter(key, torch.nn.Parameter(torch.from_numpy(array)))
        # key -> (id of the Layer's array, data_ptr, dtype, shape, stride) of a Parameter found
        # to be that array, C-contiguous (see _arrays)
        self._shared: dict[str, tuple] = {}

    # nn.LSTM's attributes, read from the Layer
    num_layers = property(lambda self: self.layer.num_layers)
    bidirectional = property(lambda self: self.layer.bidirectional)
    batch_first = property(lambda self: self.layer.batch_first)
    dropout = property(lambda self: self.layer.dropout)
    input_size = property(lambda self: self.layer.dims["input"] if "input" in self.layer.dims else None)
    hidden_size = property(lambda self: self.layer.dims["hidden"] if "hidden" in self.layer.dims else None)
    proj_size = property(lambda self: self.layer.dims.get("proj", 0))

    def flatten_parameters(self) -> None:
        """nn.LSTM's, for code written for it (after `.to()`, under DataParallel): nothing to do,
        the params are the kernels' own contiguous memory already."""

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{d}={n}" for d, n in self.layer.dims.items())
        out = f"{self.layer.module.Cell.NAME}, {sizes}, num_layers={self.num_layers}, bidirectional={self.bidirectional}"
        if self.dropout:
            out += f", dropout={self.dropout}"
        if self.batch_first:
            out += ", batch_first=True"
        if self.layer.links:
            out += f", links={self.layer.links}"
        return out + f", dtype={self.dtype}"

    def _apply(self, fn, recurse=True):
        # .to(), .double(), .cuda(), ...: the kernels are compiled for one dtype, on the CPU
        probe = fn(torch.zeros(1, dtype=self.dtype))
        if probe.dtype != self.dtype or probe.device.type != "cpu":
            raise TypeError(f"a cellspec.torch.Module runs {self.dtype} kernels on the CPU: it cannot become {probe.dtype} on {probe.device}; "
                            f"build a new Module with dtype={probe.dtype} (and load_state_dict) instead")
        return super()._apply(fn, recurse)

    # --- copies and pickles: the Layer holds its generated module, which no pickle can ---------

    def __getstate__(self):
        state = self.__dict__.copy()
        layer = state.pop("layer")
        config = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional, dropout=layer.dropout, batch_first=layer.batch_first,
                      dtype=layer.dtype.name, links=layer.links, **layer.dims)
        state["_layer"] = (config, layer.rng.bit_generator.state)
        return state

    def __setstate__(self, state):
        config, rng = state.pop("_layer")
        super().__setstate__(state)
        name, path, sha256 = self._spec
        module = sys.modules.get(name) or (parts.module_of(path) if path is not None else importlib.import_module(name))
        if parts.spec_sha256(module) != sha256:
            raise ValueError(f"spec {module.Cell.NAME!r} has changed since this module was saved: sha256 {sha256} then, {parts.spec_sha256(module)} now")
        self.layer = Layer(module, seed=0, **config)
        self.layer.rng.bit_generator.state = rng
        self._state_names = [n for n, _ in module.Cell.STATES]
        self._arrays()   # the Layer reads the params' memory

    # --- the params -------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        """The params' tensors as numpy views, checked; a Parameter whose memory is no longer the
        Layer's array (load_state_dict(assign=True)) becomes the Layer's array again."""
        return dict(zip(*self._params()[::2]))

    def _params(self) -> tuple[list[str], list, list[np.ndarray]]:
        """The Layer's param keys, the tensors in their places (Parameters, or what
        functional_call put there) and those tensors as numpy views, checked, as `_arrays`."""
        keys, tensors, out = [], [], []
        shared, parameters = self._shared, self._parameters
        # a param under torch.nn.utils.parametrize (weight_norm, a DropConnect of the recurrent
        # weights) is the tensor its parametrization computes now, read like functional_call's
        computed = parametrize.is_parametrized(self)
        for key, array in self.layer.params.arrays().items():
            p = getattr(self, key) if computed and parametrize.is_parametrized(self, key) else parameters.get(key)
            keys.append(key)
            tensors.append(p)
            if type(p) is torch.nn.Parameter and shared.get(key) == (id(array), p.data_ptr(), p.dtype, p.shape, p.stride()):
                # as the last call left it: the Parameter is the Layer's array, still (the checks
                # and the views below cost more than the kernels of a one-step call)
                out.append(array)
                continue
            args.checked(f"parameter {key!r}", p, self.dtype)
            if tuple(p.shape) != array.shape:
                raise ShapeError(f"parameter {key!r} has shape {list(p.shape)}, expected {list(array.shape)}")
            if isinstance(p, torch.nn.Parameter) and not p.is_contiguous():
                with torch.no_grad():
                    p.data = p.data.contiguous()
            a = _numpy(p)
            if isinstance(p, torch.nn.Parameter):
                if _address(a) != _address(array):
                    self.layer.params[key] = array = a
                if a.flags.c_contiguous:
                    shared[key] = (id(array), p.data_ptr(), p.dtype, p.shape, p.stride())
                a = array
            out.append(a)
        return keys, tensors, out

    def load_torch(self, source) -> None:
        """Load PyTorch's nn.RNN/LSTM/GRU weights (the module, or its state_dict) through the
        Layer (the spec's `torch:` layout), in place into the params' shared memory."""
        self._arrays()
        shared = dict(self.layer.params)
        self.layer.load_torch(source)   # checked whole, then stored as new arrays
        with torch.no_grad():
            for key, array in shared.items():
                value = torch.from_numpy(self.layer.params[key])
                if parametrize.is_parametrized(self, key):
                    setattr(self, key, value)   # through the parametrization's right_inverse
                else:
                    self._parameters[key].copy_(value)
                self.layer.params[key] = array

    def torch_state_dict(self) -> dict[str, torch.Tensor]:
        """The params as the state_dict of the matching nn.RNN/LSTM/GRU (copies): those a
        parametrization computes, as it computes them now."""
        with torch.no_grad():
            layer = _runner(self.layer, self._arrays())
        return {k: torch.from_numpy(np.array(v)) for k, v in layer.torch_state_dict().items()}

    # --- forward ----------------------------------------------------------------------------

    def forward(self, x, state=None, lengths=None):
        """x: [T,B,input] ([B,T,input] with batch_first; a dict of tensors for a cell with several
        inputs) or a PackedSequence; state: None (zeros), a dict state name -> [num_layers *
        num_directions, B, dim] (as nn.LSTM's h_n), a tuple in the order of the spec's `torch:`
        section (`(h0, c0)`), or a tensor for a cell with one state; lengths: None, a list or an
        integer tensor [B]. Returns (output, state): output like x (a PackedSequence for one),
        state a dict like the one it takes. An unbatched x ([T,input], as nn.LSTM takes it) runs
        as a batch of one, its state and its results unbatched too ([num_layers*num_directions,
        dim], [T,out]). Under CPU autocast, x and state are cast to the module's dtype first (see
        the module docstring)."""
        if torch.jit.is_tracing():
            # the trace would keep the kernels' outputs as constants: wrong for any other input
            raise RuntimeError("torch.jit.trace cannot record a cellspec.torch.Module: its kernels run outside PyTorch, and a "
                               "trace would keep their outputs as constants; call the module eagerly, or under torch.compile")
        if torch.is_autocast_enabled("cpu"):
            x, state = args.cast(x, self.dtype), args.cast(state, self.dtype)
        unbatched = args.is_unbatched(x)
        if unbatched:
            x, state = args.batched(x, state, lengths, self.batch_first)
        packed = x if isinstance(x, PackedSequence) else None
        if packed is not None:
            if lengths is not None:
                raise LengthsError("lengths goes with a padded x: a PackedSequence carries its own")
            args.checked("x (the PackedSequence's data)", packed.data, self.dtype, 2)
            x, packed_lengths = pad_packed_sequence(packed, batch_first=self.batch_first)
            lengths = packed_lengths
        Cell = self.layer.module.Cell
        inputs, states = args.inputs(Cell, x, self.dtype, self.batch_first), args.states(Cell, state, self.dtype)
        lengths = args.lengths(lengths)
        keys, params, arrays = self._params()
        tensors = [*inputs.values(), *(states.values() if states else ()), *params]
        call = _Call(self.layer, list(inputs), None if states is None else list(states), self._state_names, keys, arrays, lengths, self.training)
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            y, *finals = _LayerFunction.apply(call, *tensors)
        else:
            ordered = [_numpy(t) for t in tensors[:len(tensors) - len(keys)]] + call.params
            _, y, final, _ = _run(call, ordered, taped=False)
            y, finals = torch.from_numpy(y), [torch.from_numpy(final[n]) for n in call.outputs]
        final = dict(zip(call.outputs, finals))
        if unbatched:
            return (y[0] if self.batch_first else y[:, 0]), {n: v[:, 0] for n, v in final.items()}
        return (y if packed is None else _pack_like(y, packed, packed_lengths, self.batch_first)), final


def _pack_like(y: torch.Tensor, like: PackedSequence, lengths: torch.Tensor, batch_first: bool) -> PackedSequence:
    """y (padded, in the caller's batch order) packed as `like` is: its batch_sizes and indices,
    so that the data are laid out as nn.LSTM lays out its output for that input."""
    if like.sorted_indices is not None:
        y = y.index_select(0 if batch_first else 1, like.sorted_indices)
        lengths = lengths[like.sorted_indices]
    data = pack_padded_sequence(y, lengths, batch_first=batch_first, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
