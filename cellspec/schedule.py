"""Decide where every value of a cell lives and in what order the work runs.

The schedule is the one cuDNN-class kernels use:

* Values that depend only on the inputs and params (not on any state) form the *pre* region. It
  runs once over all T*B rows before the time loop, so `W @ x` is one large matrix product.
* The rest is the *loop* region, one time step at a time. A step alternates product phases and
  elementwise phases: P1 E1 P2 E2 ..., each product as early as its operand allows, so every
  product reading a state is in P1.
* Products in one phase that share an operand are one group: one matrix product with the
  weights stacked by rows (`[W_i; W_f; W_g; W_o] @ x`). In the loop that is one BLAS call per
  step per operand.
* Each elementwise phase is one fused loop over batch and units per dim.
* Backward, the step runs the phases in reverse; only the products that carry gradient to the
  previous step (d_operand = d_P @ W) stay in the time loop. Weight gradients (d_W = d_P^T @ v)
  and the gradient of hoisted operands are single products over all T*B rows afterwards.
* The tape keeps what the backward plan reads, except values cheaper to recompute from what it
  keeps anyway (`f = 1 - i` from i): so how a spec is split into equations does not change it.

Everything here is data (`Buffer` says what each array holds, by its `Role`); `codegen` turns it
into code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import sympy

from .autodiff import Chain, Plan, Sink
from .ir import Cell, Elementwise, Product
from .ops import FUNCTIONS

PRE, LOOP = "pre", "loop"


class Role(Enum):
    """What an array of the generated code holds; `prefix` is the start of its name."""

    INPUT = "in"               # a step's input, as the caller gave it
    VECTOR = "w"               # a vector param or a constant
    STATES = "seq"             # a state before step 0 and after every step
    PRODUCTS = "G"             # a group's products, stacked
    VALUES = "all"             # a value at every step
    CURRENT = "cur"            # a value of this step, read by a later phase
    WEIGHTS = "W"              # a group's weights, stacked by rows
    WEIGHTS_T = "WT"           # their transpose, contiguous, for the per-step product
    D_PRODUCTS = "dG"          # the gradient of a group's products
    D_OPERAND = "dgemm"        # the gradient of a group's operand, d_G @ W
    D_VALUE = "d"              # the gradient a value gets from elementwise users in other phases
    D_VECTOR = "acc"           # a vector param's gradient, summed in float64
    D_CARRY = "dcarry"         # the gradient of a state carried to the previous step
    D_OUTPUT = "dy"            # the caller's gradient of an output
    D_SEQUENCE = "dseq"        # the gradient of a state from another layer that reads it

    @property
    def prefix(self) -> str:
        return self.value


def buffer_name(role: Role, value: str) -> str:
    """The one spelling of an array's name: `_G_x` holds the products of the group of x."""
    return f"_{role.prefix}_{value}"


@dataclass(frozen=True)
class Buffer:
    """An array of the generated code: its role, the value (or group operand) it belongs to, and its
    shape, whose entries are "T", "T+1", "B" or a tuple of dims whose sizes add up (stacked).
    `holds` says in words what it holds, for the kernels' docstrings and the TAPE table."""

    role: Role
    value: str
    shape: tuple
    holds: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return buffer_name(self.role, self.value)

    @property
    def float64(self) -> bool:
        """Float64 whatever the cell's dtype: accumulators."""
        return self.role is Role.D_VECTOR

    @property
    def width(self) -> tuple:
        return self.shape[-1]


def shape_text(shape: tuple) -> str:
    """A buffer's shape as people write it: [T+1,B,hidden], [B,3*hidden]."""
    parts = []
    for entry in shape:
        if isinstance(entry, str):
            parts.append(entry)
        else:
            counts: dict[str, int] = {}
            for d in entry:
                counts[d] = counts.get(d, 0) + 1
            parts.append(" + ".join(d if c == 1 else f"{c}*{d}" for d, c in counts.items()).replace(" ", ""))
    return "[" + ",".join(parts) + "]"


@dataclass(frozen=True)
class Access:
    """An array element as kernel code reads or writes it.

    `index` is one of: "tbj" [t, b, j]; "next" [t+1, b, j]; "bj" [b, j]; "j" [j]; "step" for the
    step index itself, which is no array (`array` None). `offset` lists the dims whose sizes are
    added to j (a column block of a stacked array)."""

    array: Buffer | None
    index: str
    offset: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """Products sharing an operand in one phase: one matrix product with stacked weights."""

    region: str
    phase: int
    operand: str
    operand_dim: str
    products: tuple[str, ...]
    weights: tuple[str, ...]
    rows: tuple[str, ...]          # the dim of each product, in stacking order

    @property
    def name(self) -> str:
        return self.operand

    def offset(self, product: str) -> tuple[str, ...]:
        return self.rows[: self.products.index(product)]


@dataclass
class Phase:
    region: str
    index: int
    groups: list[Group] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    def loops(self, cell: Cell) -> list[tuple[str, list[str]]]:
        """The phase's elementwise nodes split into one fused loop per dim, in node order."""
        by_dim: dict[str, list[str]] = {}
        for n in self.nodes:
            by_dim.setdefault(cell.nodes[n].dim, []).append(n)
        return list(by_dim.items())


@dataclass
class Schedule:
    cell: Cell
    plan: Plan
    region: dict[str, str]
    phases: dict[str, list[Phase]]
    groups: dict[str, Group]                 # by operand
    group_of: dict[str, Group]               # by product
    buffers: dict[tuple[Role, str], Buffer]  # every array, by role and value
    read_fwd: dict[str, Access]              # where the forward reads each value
    read_bwd: dict[str, Access]              # where the backward reads each value it keeps
    recompute: tuple[str, ...]               # values the backward recomputes instead, in node order
    stores: dict[str, list[Access]]          # where the forward writes each node
    tape: list[Buffer]                       # arrays the backward reads, the stacked weights last
    forward_arrays: list[Buffer]             # what the forward pass allocates
    backward_arrays: list[Buffer]            # what the backward pass allocates
    adjoint: dict[str, Access]               # where elementwise gradient of a value accumulates
    gemm_adjoint: dict[str, Access]          # where d_operand = d_P @ W lands, per operand
    sink: dict[Sink, Access]                 # where gradient from outside the step is read
    users_outside: dict[str, bool]           # value gets gradient from elementwise users in another phase
    # gradients that equal others, computed once: a product whose gradient is another product's
    # (LSTM: d(W_i @ x) = d(U_i @ h)), the gradient array of a group that is another group's, and
    # a vector param whose gradient is a product's summed over all rows (a bias)
    alias: dict[str, str] = field(default_factory=dict)
    dG_of: dict[str, Buffer] = field(default_factory=dict)
    bias_of: dict[str, str] = field(default_factory=dict)

    def buf(self, role: Role, value: str) -> Buffer:
        return self.buffers[(role, value)]

    def saved(self) -> list[Buffer]:
        """The tape's arrays that hold values per step: all but the stacked weights."""
        return [b for b in self.tape if b.role is not Role.WEIGHTS]


def make_schedule(cell: Cell, plan: Plan) -> Schedule:
    region = _regions(cell)
    phase_of = _phase_of(cell, region)
    phases, groups, group_of = _phases(cell, region, phase_of)
    s = Schedule(cell=cell, plan=plan, region=region, phases=phases, groups=groups, group_of=group_of,
                 buffers={}, read_fwd={}, read_bwd={}, recompute=(), stores={}, tape=[],
                 forward_arrays=[], backward_arrays=[], adjoint={}, gemm_adjoint={}, sink={}, users_outside={})
    s.recompute = _recomputed(cell, plan, s)
    _forward_storage(s, phase_of)
    _backward_storage(s, phase_of)
    return s


def _regions(cell: Cell) -> dict[str, str]:
    """PRE for the nodes that depend on no state, LOOP for the rest."""
    dep = {n: False for n in cell.inputs}
    dep.update({n: True for n in cell.states})
    dep.update({n: False for n in [*cell.vectors, *cell.leaves]})
    for n in cell.nodes.values():
        dep[n.name] = any(dep[a] for a in n.args)
    sinks = set(cell.updates.values()) | set(cell.outputs)
    region: dict[str, str] = {}
    for n in cell.nodes.values():
        # outputs and updates are produced in the loop even when they need no state, and so is
        # everything that reads them
        reads_loop = any(region.get(a) == LOOP for a in n.args)
        region[n.name] = LOOP if dep[n.name] or n.name in sinks or reads_loop else PRE
    return region


def _phase_of(cell: Cell, region: dict[str, str]) -> dict[str, int]:
    """Each node's phase in its region: a product one after its operand, an elementwise node with
    its latest argument; 0 is before the region's first phase."""
    avail: dict[str, int] = {n: 0 for n in [*cell.inputs, *cell.states, *cell.vectors, *cell.leaves]}
    for n in cell.nodes.values():
        r = region[n.name]
        # a value from the other region (pre, read by the loop) is available at 0
        args = [avail[a] if region.get(a, r) == r else 0 for a in n.args]
        avail[n.name] = args[0] + 1 if isinstance(n, Product) else max([1, *args])
    return {n: avail[n] for n in cell.nodes}


def _phases(cell: Cell, region: dict[str, str], phase_of: dict[str, int]):
    phases: dict[str, list[Phase]] = {}
    for r in (PRE, LOOP):
        count = max([phase_of[n] for n in cell.nodes if region[n] == r], default=0)
        phases[r] = [Phase(r, k) for k in range(1, count + 1)]
    grouped: dict[tuple[str, int, str], list[Product]] = {}
    for n in cell.nodes.values():
        if isinstance(n, Product):
            grouped.setdefault((region[n.name], phase_of[n.name], n.operand), []).append(n)
        else:
            phases[region[n.name]][phase_of[n.name] - 1].nodes.append(n.name)
    groups: dict[str, Group] = {}
    group_of: dict[str, Group] = {}
    for (r, k, operand), prods in grouped.items():
        g = Group(r, k, operand, cell.dim_of(operand), tuple(p.name for p in prods), tuple(p.weight for p in prods), tuple(p.dim for p in prods))
        phases[r][k - 1].groups.append(g)
        groups[operand] = g
        for p in prods:
            group_of[p.name] = g
    return phases, groups, group_of


def cheap(expr: sympy.Expr) -> bool:
    """Whether recomputing an expression costs less than saving it: no transcendental function
    (a few adds and multiplies against a store and a load of every step's value)."""
    heavy = tuple(cls for cls, row in FUNCTIONS.items() if row.transcendental)
    return not any(isinstance(e, heavy) or (e.is_Pow and not e.exp.is_Integer) for e in sympy.preorder_traversal(expr))


def _recomputed(cell: Cell, plan: Plan, s: Schedule) -> tuple[str, ...]:
    """The values the plan reads that the backward pass recomputes rather than saves: elementwise
    values of the loop that are cheap (no transcendental function) or one call of one value, are
    not a state's update, an output or a product's operand (which are stored anyway), and whose
    arguments the backward pass has without saving anything more."""
    operands = {g.operand for g in s.groups.values()}
    stored = set(cell.updates.values()) | set(cell.outputs) | operands
    free = {*cell.inputs, *cell.states, *cell.vectors, *cell.leaves}
    out = []
    for name in reversed(cell.nodes):
        n = cell.nodes[name]
        if name not in plan.reads or name in stored or s.region[name] != LOOP or not isinstance(n, Elementwise):
            continue
        # a call of one value (tanh(c)): what an inline call of a value is (ir.name_calls)
        one_call = isinstance(n.expr, sympy.Function) and len(n.expr.args) == 1 and n.expr.args[0].is_Symbol
        if (cheap(n.expr) or one_call) and all(a in free or a in plan.reads for a in n.args):
            out.append(name)
    return tuple(reversed(out))


def _forward_storage(s: Schedule, phase_of: dict[str, int]) -> None:
    """Where the forward pass keeps each value, and what of it the tape keeps."""
    cell, plan = s.cell, s.plan
    kept = plan.reads - set(s.recompute)

    def new(role: Role, value: str, shape: tuple, holds: str, allocate: bool = True) -> Buffer:
        b = s.buffers[(role, value)] = Buffer(role, value, shape, holds)
        if allocate:
            s.forward_arrays.append(b)
        return b

    for x, dim in cell.inputs.items():
        s.read_fwd[x] = s.read_bwd[x] = Access(new(Role.INPUT, x, ("T", "B", (dim,)), f"input {x}", False), "tbj")
    for p in cell.vectors:
        s.read_fwd[p] = s.read_bwd[p] = Access(new(Role.VECTOR, p, ((cell.dim_of(p),),), f"param {p}", False), "j")
    for c in cell.constants:
        s.read_fwd[c] = s.read_bwd[c] = Access(new(Role.VECTOR, c, ((cell.dim_of(c),),), f"constant {c}", False), "j")
    if cell.step:
        s.read_fwd[cell.step] = s.read_bwd[cell.step] = Access(None, "step")
    for st, dim in cell.states.items():
        b = new(Role.STATES, st, ("T+1", "B", (dim,)), f"state {st}: [0] the initial state, [t+1] after step t")
        s.read_fwd[st] = s.read_bwd[st] = Access(b, "tbj")
        s.tape.append(b)
    for g in s.groups.values():
        holds = f"[{'; '.join(g.weights)}] @ {cell.label(g.operand)}"
        pre = g.region == PRE
        G = new(Role.PRODUCTS, g.name, ("T", "B", g.rows) if pre else ("B", g.rows), holds + (" at every step" if pre else " at this step"), allocate=not pre)
        for p in g.products:
            s.read_fwd[p] = Access(G, "tbj" if pre else "bj", g.offset(p))
            if p not in kept:
                continue
            if pre:
                s.read_bwd[p] = s.read_fwd[p]
                if G not in s.tape:
                    s.tape.append(G)
            else:
                # the loop's product buffer is overwritten every step: keep what backward reads
                b = new(Role.VALUES, p, ("T", "B", (cell.nodes[p].dim,)), f"{cell.label(p)} at every step")
                s.read_bwd[p] = Access(b, "tbj")
                s.stores.setdefault(p, []).append(s.read_bwd[p])
                s.tape.append(b)

    users = cell.users()
    updated_by: dict[str, list[str]] = {}
    for st, n in cell.updates.items():
        updated_by.setdefault(n, []).append(st)
    operands = {g.operand for g in s.groups.values()}

    def phase_key(name: str):
        return (s.region[name], phase_of[name]) if name in cell.nodes else None

    for n in cell.nodes.values():
        if not isinstance(n, Elementwise):
            continue
        name, dim = n.name, n.dim
        if name in updated_by:
            for st in updated_by[name]:
                s.stores.setdefault(name, []).append(Access(s.buf(Role.STATES, st), "next"))
            s.read_bwd[name] = s.read_fwd[name] = Access(s.buf(Role.STATES, updated_by[name][0]), "next")
            continue
        if s.region[name] == PRE or name in kept or name in operands or name in cell.outputs:
            acc = Access(new(Role.VALUES, name, ("T", "B", (dim,)), f"{cell.label(name)} at every step"), "tbj")
            s.stores.setdefault(name, []).append(acc)
            s.read_fwd[name] = s.read_bwd[name] = acc
            # d_W = d_P^T @ operand over all rows needs every step's operand
            if name in kept or name in operands:
                s.tape.append(acc.array)
        elif any(phase_key(u) != phase_key(name) for u in users.get(name, [])):
            acc = Access(new(Role.CURRENT, name, ("B", (dim,)), f"{cell.label(name)} at this step"), "bj")
            s.stores.setdefault(name, []).append(acc)
            s.read_fwd[name] = acc

    for g in s.groups.values():
        rows, cols = g.rows, (g.operand_dim,)
        s.tape.append(new(Role.WEIGHTS, g.name, (rows, cols), f"[{'; '.join(g.weights)}]", False))
        if g.region == LOOP:
            new(Role.WEIGHTS_T, g.name, (cols, rows), f"[{'; '.join(g.weights)}]^T", False)


def _backward_storage(s: Schedule, phase_of: dict[str, int]) -> None:
    """Where each gradient accumulates and where gradient from outside the step arrives."""
    cell, plan = s.cell, s.plan

    def new(role: Role, value: str, shape: tuple, holds: str, allocate: bool = True) -> Buffer:
        b = s.buffers[(role, value)] = Buffer(role, value, shape, holds)
        if allocate:
            s.backward_arrays.append(b)
        return b

    def phase_key(name: str):
        return (s.region[name], phase_of[name]) if name in cell.nodes else None

    def per_step(name: str) -> bool:
        return name in cell.states or (name in cell.nodes and s.region[name] == LOOP)

    s.alias, shared, s.bias_of = _shared_gradients(cell, plan, s.groups)
    for g in s.groups.values():
        if shared[g.name] == g.name:
            sharing = [o for o in s.groups.values() if shared[o.name] == g.name]
            labels = " = ".join("[" + "; ".join(cell.label(p) for p in o.products) + "]" for o in sharing)
            new(Role.D_PRODUCTS, g.name, ("T", "B", g.rows), f"the gradient of {labels} at every step")
        # a group shares the gradient array of an earlier group
        s.dG_of[g.name] = dG = s.buf(Role.D_PRODUCTS, shared[g.name])
        for p in g.products:
            s.adjoint[p] = Access(dG, "tbj", g.offset(p))
        loop = g.region == LOOP
        shape = ("B", (g.operand_dim,)) if loop else ("T", "B", (g.operand_dim,))
        b = new(Role.D_OPERAND, g.operand, shape, f"the gradient of {cell.label(g.operand)} through its products, [{'; '.join(g.weights)}]^T @ theirs", allocate=loop)
        s.gemm_adjoint[g.operand] = Access(b, "bj" if loop else "tbj")
    for name in [*cell.inputs, *cell.states, *cell.nodes]:
        if name in cell.nodes and isinstance(cell.nodes[name], Product):
            continue
        planned = plan.adjoint(name)
        outside = planned is not None and any(isinstance(t, Chain) and phase_key(t.user) != phase_key(name) for t in planned.terms)
        s.users_outside[name] = outside
        if outside:
            dim = cell.dim_of(name)
            holds = f"the gradient of {cell.label(name)} from its users in other fused loops"
            if per_step(name):
                s.adjoint[name] = Access(new(Role.D_VALUE, name, ("B", (dim,)), holds + ", this step"), "bj")
            else:
                s.adjoint[name] = Access(new(Role.D_VALUE, name, ("T", "B", (dim,)), holds + ", every step"), "tbj")
    for p, v in cell.vectors.items():
        if p not in s.bias_of:
            s.adjoint[p] = Access(new(Role.D_VECTOR, p, ((v.dim,),), f"the gradient of {p}, summed in float64"), "j")
    for st, dim in cell.states.items():
        b = new(Role.D_CARRY, st, ("B", (dim,)), f"d_{st}[t]: the gradient of state {st} after step t")
        s.sink[Sink("state", st)] = Access(b, "bj")
        new(Role.D_SEQUENCE, st, ("T", "B", (dim,)), f"the gradient of state {st} after every step from a layer above that reads it", False)
    for out in cell.outputs:
        b = new(Role.D_OUTPUT, out, ("T", "B", (cell.dim_of(out),)), f"dy: the gradient of output {out}", False)
        s.sink[Sink("output", out)] = Access(b, "tbj")


def _shared_gradients(cell: Cell, plan: Plan, groups: dict[str, Group]):
    """Find gradients that are equal by construction: two values read by the same nodes with the
    same partial derivatives receive the same gradient. Products and vector params get gradient
    only that way, so an equal signature proves equal gradients. Returns the product aliases,
    the group whose gradient array each group uses, and the product each bias sums."""

    def signature(name: str):
        planned = plan.gradient(name) if name in cell.vectors else plan.adjoint(name)
        terms = [(t.user, sympy.srepr(t.partial)) for t in (planned.terms if planned else ()) if isinstance(t, Chain)]
        return (cell.dim_of(name), tuple(sorted(terms)))

    product_sig = {p: signature(p) for g in groups.values() for p in g.products}
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for g in groups.values():
        for p in g.products:
            first.setdefault(product_sig[p], p)
    shared: dict[str, str] = {}
    for g in groups.values():
        shared[g.name] = g.name
        for other in groups.values():
            if other is g:
                break
            if shared[other.name] != other.name or other.rows != g.rows:
                continue
            if all(product_sig[a] == product_sig[b] for a, b in zip(g.products, other.products)):
                shared[g.name] = other.name
                alias.update(dict(zip(g.products, other.products)))
                break
    bias_of = {}
    for v in cell.vectors:
        sig = signature(v)
        if sig[1] and sig in first:
            bias_of[v] = alias.get(first[sig], first[sig])
    return alias, shared, bias_of


def saved_per_step(cell: Cell, s: Schedule) -> list[tuple[str, str]]:
    """(value, dim) for each value the tape keeps per step: what the backward pass reads."""
    out = []
    for b in s.saved():
        if b.role is Role.PRODUCTS:
            group = s.groups[b.value]
            out += [(cell.label(p), d) for p, d in zip(group.products, group.rows)]
        else:
            out.append((cell.label(b.value), cell.dim_of(b.value)))
    return out


def tape_formula(saved: list[tuple[str, str]]) -> str:
    """The number of values of `saved_per_step` as a formula of the dims: "6*hidden"."""
    counts: dict[str, int] = {}
    for _, d in saved:
        counts[d] = counts.get(d, 0) + 1
    return " + ".join(f"{c}*{d}" if c > 1 else d for d, c in counts.items())
