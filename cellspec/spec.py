"""Read a YAML spec into validated, frozen spec objects that remember where each value was written.

The YAML is composed into located text by `yamltext`, so every scalar stays the text the author
wrote. A name that YAML 1.1 would read as a boolean or null (`off`, `yes`, `null`) must be
quoted, so that the file means the same to every YAML tool. Duplicate keys are refused. Names are
checked here; what the equations mean is checked by `ir`.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import re
from dataclasses import dataclass

import yaml

from .errors import Location, SpecError
from .ops import FUNCTIONS, OPS
from .spec_torch import TorchLayout, read_torch
from .yamltext import Reader, Text, compose, refuse_yaml11

MAX_SPEC_BYTES = 1 << 20

# The cell name is the module's file name, and Numba names its cache files after the module, adding
# the kernel, its line and the Python version (`rnn._loop_backward-96.py311.nbi`). Linux allows 255
# bytes a file name: a name of 225 characters already fails at its first call. 64 leaves room.
MAX_NAME_CHARS = 64

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")

# Names the generated code itself uses at module or kernel level; user names may not shadow them.
RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | frozenset(OPS)
    | frozenset(row.kernel for row in FUNCTIONS.values())
    | frozenset({"np", "nb", "numba", "numpy", "math", "self", "runtime", "fastmath", "blas", "matmul", "dot", "Cell", "where"})
)

# Dims that would collide with what the generated code does with them: `Cell(dtype=..., seed=...,
# **dims)` takes the sizes as keywords beside these (and `self`, refused too, though CellBase takes
# it positionally), and `i`, `j` are the unit (row) and column index in constant and mask
# formulas, where a dim of that name would be read as the index.
_CELL_KEYWORDS = ("dtype", "seed")
_INDEX_NAMES = ("i", "j")

TOP_LEVEL_KEYS = ("name", "summary", "cite", "dims", "constraints", "inputs", "state", "step", "constants", "params", "equations", "update", "output", "torch")
REQUIRED_KEYS = ("name", "summary", "cite", "inputs", "state", "params", "equations", "update", "output")
PARAM_KEYS = ("shape", "init", "mask")
CONSTANT_KEYS = ("shape", "value")


@dataclass(frozen=True)
class Declared:
    """A named vector: an input or a state, with its dim."""

    name: str
    dim: str
    where: Location


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[str, ...]
    init: Text | None
    where: Location
    mask: Text | None = None


@dataclass(frozen=True)
class Constant:
    """A vector fixed at instantiation from a formula of its unit index `i` and the dims."""

    name: str
    dim: str
    value: Text
    where: Location


@dataclass(frozen=True)
class Equation:
    name: str
    expr: Text
    where: Location


@dataclass(frozen=True)
class Update:
    state: str
    value: str
    where: Location
    value_where: Location


@dataclass(frozen=True)
class Spec:
    path: str
    name: str
    summary: str
    cite: str
    inputs: tuple[Declared, ...]
    states: tuple[Declared, ...]
    params: tuple[Param, ...]
    equations: tuple[Equation, ...]
    updates: tuple[Update, ...]
    outputs: tuple[Text, ...]
    sha256: str
    constraints: tuple[Text, ...] = ()
    extra_dims: tuple[str, ...] = ()
    step: Declared | None = None
    constants: tuple[Constant, ...] = ()
    torch: TorchLayout | None = None  # how the params map onto torch.nn's layout (spec_torch)

    @property
    def dims(self) -> tuple[str, ...]:
        """Every dim name, in order of first appearance."""
        seen: dict[str, None] = {}
        for d in self.extra_dims:
            seen.setdefault(d, None)
        for v in self.inputs + self.states + self.constants:
            seen.setdefault(v.dim, None)
        for p in self.params:
            for d in p.shape:
                seen.setdefault(d, None)
        return tuple(seen)


def _check_name(text: Text, what: str, code_name: bool = True) -> str:
    """A name must be an ASCII identifier; a `code_name` also appears in generated code, so it
    may not shadow what that code uses."""
    name = text.value
    refuse_yaml11(text, what)
    bad = next((i for i, ch in enumerate(name) if not ch.isascii()), None)
    if bad is not None:
        raise SpecError(f"{what} {name!r} has a non-ASCII character {name[bad]!r}; names are ASCII identifiers", text.start.shifted(0, bad + 1))
    if not _IDENT.match(name):
        raise SpecError(f"{what} {name!r} is not a valid name: use letters, digits and _, starting with a letter", text.start)
    if not code_name:
        return name
    if name.startswith("d_"):
        raise SpecError(f"{what} {name!r} starts with 'd_', which the generated code keeps for gradients", text.start)
    if name in RESERVED:
        raise SpecError(f"{what} {name!r} is reserved: it is a Python name or one the generated code uses", text.start)
    return name


def load_spec(path: str, source: bytes | None = None) -> Spec:
    """Read and validate the spec at `path` (or `source`, its bytes, read by the caller)."""
    if source is None:
        try:
            with open(path, "rb") as f:
                source = f.read(MAX_SPEC_BYTES + 1)
        except OSError as e:
            raise SpecError(f"cannot read spec: {e.strerror}", Location(path, 1, 1)) from None
    if len(source) > MAX_SPEC_BYTES:
        raise SpecError(f"spec is larger than {MAX_SPEC_BYTES} bytes", Location(path, 1, 1))
    root = compose(path, source)
    if root is None:
        raise SpecError("spec is empty", Location(path, 1, 1))
    return _read(path, root, hashlib.sha256(source).hexdigest())


def _read(path: str, root, sha256: str) -> Spec:
    """The sections in the order they are checked, which is the order their errors are reported:
    names share one namespace and are declared in this order, and summary and cite are read last."""
    r = Reader(path)
    top = _sections(r, root)
    name = _read_name(r, top["name"])
    used: _Names = {}
    inputs = _read_vectors(r, top["inputs"], "inputs", "input", used, "a cell needs at least one input")
    states = _read_vectors(r, top["state"], "state", "state", used, "a cell needs at least one state: without one it is not recurrent")
    step = _read_step(r, top["step"], used) if "step" in top else None
    constants = _read_constants(r, top["constants"], used) if "constants" in top else ()
    extra_dims = _read_dims(r, top["dims"]) if "dims" in top else ()
    constraints = _read_constraints(r, top["constraints"]) if "constraints" in top else ()
    params = _read_params(r, top["params"], used)
    equations = _read_equations(r, top["equations"], used)
    updates = _read_updates(r, top["update"])
    outputs = _read_outputs(r, top["output"])
    _check_dims_are_not_names(inputs + states + constants, params, extra_dims, used)
    torch = read_torch(r, top["torch"], states, params) if "torch" in top else None
    return Spec(path=path, name=name, summary=r.scalar(top["summary"], "'summary'").value, cite=r.scalar(top["cite"], "'cite'").value, inputs=inputs,
                states=states, params=params, equations=equations, updates=updates, outputs=outputs, sha256=sha256, constraints=constraints,
                extra_dims=extra_dims, step=step, constants=constants, torch=torch)


def _sections(r: Reader, root) -> dict:
    """The node of each top-level section, every required one present and no other."""
    top = {}
    for key, node in r.mapping(root, "the spec"):
        if key.value not in TOP_LEVEL_KEYS:
            raise SpecError(f"unknown section {key.value!r}; a spec has {', '.join(TOP_LEVEL_KEYS)}", key.where)
        top[key.value] = node
    for key in REQUIRED_KEYS:
        if key not in top:
            raise SpecError(f"missing section {key!r}", r.where(root))
    return top


def _read_name(r: Reader, node) -> str:
    text = r.scalar(node, "'name'")
    name = _check_name(text, "cell name")
    if len(name) > MAX_NAME_CHARS:
        why = "it names the module file, and Numba's cache files add to it"
        raise SpecError(f"cell name is {len(name)} characters long, over the limit of {MAX_NAME_CHARS}: {why}", text.start)
    return name


# Each name declared so far (inputs, states, step, constants, params, equations: one namespace): what, where.
_Names = dict[str, tuple[str, Location]]


def _declare(t: Text, what: str, used: _Names) -> str:
    n = _check_name(t, what)
    if n in used:
        prev_what, prev_where = used[n]
        raise SpecError(f"{what} {n!r} is already declared as {prev_what} at line {prev_where.line}", t.where)
    used[n] = (what, t.where)
    return n


def _read_vectors(r: Reader, node, key: str, what: str, used: _Names, empty: str) -> tuple[Declared, ...]:
    """The inputs or the states: a mapping of name to dim, not empty."""
    out = []
    for k, v in r.mapping(node, f"{key!r}"):
        n = _declare(k, what, used)
        dim = r.scalar(v, f"the dim of {what} {n!r}")
        out.append(Declared(n, _check_dim(dim), k.where))
    if not out:
        raise SpecError(empty, r.where(node))
    return tuple(out)


def _read_step(r: Reader, node, used: _Names) -> Declared:
    t = r.scalar(node, "'step' (the name of the step index)")
    return Declared(_declare(t, "step index", used), "", t.where)


def _fields(r: Reader, node, kind: str, n: str, keys: tuple[str, ...]) -> dict:
    """The fields of constant or param `n`, each one of `keys`."""
    fields = {}
    for fk, fv in r.mapping(node, f"{kind} {n!r}"):
        if fk.value not in keys:
            raise SpecError(f"unknown field {fk.value!r} of {kind} {n!r}; a {kind} has {', '.join(keys)}", fk.where)
        fields[fk.value] = fv
    return fields


def _read_constants(r: Reader, node, used: _Names) -> tuple[Constant, ...]:
    constants = []
    for k, v in r.mapping(node, "'constants'"):
        n = _declare(k, "constant", used)
        fields = _fields(r, v, "constant", n, CONSTANT_KEYS)
        for needed in CONSTANT_KEYS:
            if needed not in fields:
                raise SpecError(f"constant {n!r} has no {needed}", r.where(v))
        shape = r.sequence(fields["shape"], f"the shape of constant {n!r}")
        if len(shape) != 1:
            raise SpecError(f"constant {n!r} must be a vector [dim]", r.where(fields["shape"]))
        dim = _check_dim(r.scalar(shape[0], f"the dim of constant {n!r}"))
        constants.append(Constant(n, dim, r.scalar(fields["value"], f"the value of constant {n!r}"), k.where))
    return tuple(constants)


def _read_dims(r: Reader, node) -> tuple[str, ...]:
    """Sizes that no shape uses, only formulas (constants, masks, inits)."""
    return tuple(_check_dim(r.scalar(d, "a dim")) for d in r.sequence(node, "'dims'"))


def _read_constraints(r: Reader, node) -> tuple[Text, ...]:
    return tuple(r.scalar(c, "a constraint") for c in r.sequence(node, "'constraints'"))


def _read_params(r: Reader, node, used: _Names) -> tuple[Param, ...]:
    return tuple(_read_param(r, k, _declare(k, "param", used), v) for k, v in r.mapping(node, "'params'"))


def _read_param(r: Reader, k: Text, n: str, v) -> Param:
    """Param `n`: its shape alone, or a mapping of shape, init and mask."""
    init = mask = None
    shape_node = v
    if isinstance(v, yaml.MappingNode):
        fields = _fields(r, v, "param", n, PARAM_KEYS)
        if "shape" not in fields:
            raise SpecError(f"param {n!r} has no shape", r.where(v))
        shape_node = fields["shape"]
        if "init" in fields:
            init = r.scalar(fields["init"], f"the init of param {n!r}")
        if "mask" in fields:
            mask = r.scalar(fields["mask"], f"the mask of param {n!r}")
    shape = tuple(_check_dim(r.scalar(d, f"a dim of param {n!r}")) for d in r.sequence(shape_node, f"the shape of param {n!r}"))
    if len(shape) not in (1, 2):
        raise SpecError(f"param {n!r} must be a vector [dim] or a matrix [rows, cols], not {len(shape)}-dimensional", r.where(shape_node))
    if mask is not None and len(shape) != 2:
        raise SpecError(f"only a matrix can have a mask, and {n!r} is a vector", mask.where)
    return Param(n, shape, init, k.where, mask)


def _read_equations(r: Reader, node, used: _Names) -> tuple[Equation, ...]:
    equations = []
    for k, v in r.mapping(node, "'equations'"):
        n = _declare(k, "equation", used)
        equations.append(Equation(n, r.scalar(v, f"equation {n!r}"), k.where))
    if not equations:
        raise SpecError("a cell needs at least one equation", r.where(node))
    return tuple(equations)


def _read_updates(r: Reader, node) -> tuple[Update, ...]:
    updates = []
    for k, v in r.mapping(node, "'update'"):
        target = r.scalar(v, f"the update of state {k.value!r}")
        updates.append(Update(k.value, target.value, k.where, target.start))
    return tuple(updates)


def _read_outputs(r: Reader, node) -> tuple[Text, ...]:
    """One equation, or a list of at least one."""
    if not isinstance(node, yaml.SequenceNode):
        return (r.scalar(node, "'output' (an equation, or a list of them)"),)
    outputs = tuple(r.scalar(o, "an output") for o in r.sequence(node, "'output'"))
    if not outputs:
        raise SpecError("'output' names no equation", r.where(node))
    return outputs


def _check_dims_are_not_names(vectors: tuple, params: tuple[Param, ...], extra_dims: tuple[str, ...], used: _Names) -> None:
    dims = {v.dim for v in vectors} | {d for p in params for d in p.shape} | set(extra_dims)
    for d in sorted(dims):
        if d in used:
            what, where = used[d]
            raise SpecError(f"{d!r} is both a dim and the name of {what} declared at line {where.line}", where)


def _check_dim(t: Text) -> str:
    # dims appear in generated code only as strings and in `_n_<dim>`, so they may be any
    # identifier but the few the generated Cell and the index formulas use themselves
    name = _check_name(t, "dim", code_name=False)
    if name == "self":
        raise SpecError("dim 'self' is reserved: the generated Cell's methods use the name; rename it", t.start)
    if name in _CELL_KEYWORDS:
        raise SpecError(f"dim {name!r} is reserved: Cell(dtype=..., seed=...) takes it; rename it", t.start)
    if name in _INDEX_NAMES:
        raise SpecError(f"dim {name!r} is reserved: 'i' and 'j' are the row and column index in constant and mask formulas", t.start)
    return name
