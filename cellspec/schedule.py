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

Everything here is data; `codegen` turns it into code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from .autodiff import Chain, Plan, Sink
from .ir import Cell, Elementwise, Product

PRE, LOOP = "pre", "loop"


@dataclass(frozen=True)
class Access:
    """An array element as kernel code reads or writes it.

    `index` is one of: "tbj" [t, b, j]; "next" [t+1, b, j]; "bj" [b, j]; "j" [j]; "step" for the
    step index itself, which is no array. `offset` lists the dims whose sizes are added to j (a
    column block of a stacked array)."""

    array: str
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


@dataclass(frozen=True)
class Array:
    """A buffer the orchestration code allocates. Shape entries: "T", "T+1", "B", or a tuple of
    dims whose sizes add up. `kind` "acc" is float64 whatever the cell's dtype."""

    name: str
    shape: tuple
    kind: str = "f"
    zero: bool = False


@dataclass
class Schedule:
    cell: Cell
    backward: Plan
    region: dict[str, str]
    phases: dict[str, list[Phase]]
    groups: dict[str, Group]                 # by operand
    group_of: dict[str, Group]               # by product
    read_fwd: dict[str, Access]              # where the forward reads each value
    read_bwd: dict[str, Access]              # where the backward reads each saved value
    stores: dict[str, list[Access]]          # where the forward writes each node
    tape: list[str]                          # arrays the backward reads
    forward_arrays: list[Array]
    backward_arrays: list[Array]
    adjoint: dict[str, Access]               # where elementwise gradient of a value accumulates
    gemm_adjoint: dict[str, Access]          # where d_operand = d_P @ W lands, per operand
    sink: dict[Sink, Access]                 # where gradient from outside the step is read
    users_outside: dict[str, bool]           # value gets gradient from elementwise users in another phase
    # gradients that equal others, computed once: a product whose gradient is another product's
    # (LSTM: d(W_i @ x) = d(U_i @ h)), the gradient array of a group that is another group's, and
    # a vector param whose gradient is a product's summed over all rows (a bias)
    alias: dict[str, str] = field(default_factory=dict)
    dG_of: dict[str, str] = field(default_factory=dict)
    bias_of: dict[str, str] = field(default_factory=dict)


def _depends_on_state(cell: Cell) -> dict[str, bool]:
    dep = {n: False for n in cell.inputs}
    dep.update({n: True for n in cell.states})
    dep.update({n: False for n in [*cell.vectors, *cell.leaves]})
    for n in cell.nodes.values():
        dep[n.name] = any(dep[a] for a in n.args)
    return dep


def make_schedule(cell: Cell, backward: Plan) -> Schedule:
    dep = _depends_on_state(cell)
    sinks_names = set(cell.updates.values()) | set(cell.outputs)
    region: dict[str, str] = {}
    for n in cell.nodes.values():
        # outputs and updates are produced in the loop even when they need no state, and so is
        # everything that reads them
        reads_loop = any(region.get(a) == LOOP for a in n.args)
        region[n.name] = LOOP if dep[n.name] or n.name in sinks_names or reads_loop else PRE

    # phase of each value: 0 = available before the region's first phase
    avail: dict[str, int] = {n: 0 for n in [*cell.inputs, *cell.states, *cell.vectors, *cell.leaves]}
    phase_of: dict[str, int] = {}
    for n in cell.nodes.values():
        r = region[n.name]
        # a value from the other region (pre, read by the loop) is available at 0
        args = [avail[a] if region.get(a, r) == r else 0 for a in n.args]
        if isinstance(n, Product):
            k = args[0] + 1
        else:
            k = max([1, *args])
        avail[n.name] = phase_of[n.name] = k

    phases: dict[str, list[Phase]] = {PRE: [], LOOP: []}
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

    users = cell.users()

    def phase_key(name: str) -> tuple[str, int] | None:
        if name in cell.nodes:
            return (region[name], phase_of[name])
        return None

    # forward storage -------------------------------------------------------------------------
    read_fwd: dict[str, Access] = {}
    read_bwd: dict[str, Access] = {}
    stores: dict[str, list[Access]] = {}
    forward_arrays: list[Array] = []
    tape: list[str] = []
    reads = backward.reads

    for x, dim in cell.inputs.items():
        read_fwd[x] = read_bwd[x] = Access(f"_in_{x}", "tbj")
    for p in [*cell.vectors, *cell.constants]:
        read_fwd[p] = read_bwd[p] = Access(f"_w_{p}", "j")
    if cell.step:
        read_fwd[cell.step] = read_bwd[cell.step] = Access("_t", "step")
    for s, dim in cell.states.items():
        read_fwd[s] = read_bwd[s] = Access(f"_seq_{s}", "tbj")
        forward_arrays.append(Array(f"_seq_{s}", ("T+1", "B", (dim,))))
        tape.append(f"_seq_{s}")
    for g in groups.values():
        width = g.rows
        forward_arrays.append(Array(f"_G_{g.name}", ("T", "B", width) if g.region == PRE else ("B", width)))
        for p in g.products:
            index = "tbj" if g.region == PRE else "bj"
            read_fwd[p] = Access(f"_G_{g.name}", index, g.offset(p))
            if p in reads:
                if g.region == PRE:
                    read_bwd[p] = read_fwd[p]
                    _add(tape, f"_G_{g.name}")
                else:
                    # the loop's product buffer is overwritten every step: keep what backward reads
                    read_bwd[p] = Access(f"_all_{p}", "tbj")
                    stores.setdefault(p, []).append(read_bwd[p])
                    forward_arrays.append(Array(f"_all_{p}", ("T", "B", (cell.nodes[p].dim,))))
                    tape.append(f"_all_{p}")

    updated_by: dict[str, list[str]] = {}
    for s, n in cell.updates.items():
        updated_by.setdefault(n, []).append(s)
    operands = {g.operand for g in groups.values()}
    for n in cell.nodes.values():
        if not isinstance(n, Elementwise):
            continue
        name, dim = n.name, n.dim
        here = phase_key(name)
        cross = any(phase_key(u) != here for u in users.get(name, []))
        if name in updated_by:
            for s in updated_by[name]:
                stores.setdefault(name, []).append(Access(f"_seq_{s}", "next"))
            read_bwd[name] = read_fwd[name] = Access(f"_seq_{updated_by[name][0]}", "next")
            continue
        if region[name] == PRE or name in reads or name in operands or name in cell.outputs:
            acc = Access(f"_all_{name}", "tbj")
            stores.setdefault(name, []).append(acc)
            read_fwd[name] = read_bwd[name] = acc
            forward_arrays.append(Array(f"_all_{name}", ("T", "B", (dim,))))
            # d_W = d_P^T @ operand over all rows needs every step's operand
            if name in reads or name in operands:
                tape.append(f"_all_{name}")
        elif cross:
            acc = Access(f"_cur_{name}", "bj")
            stores.setdefault(name, []).append(acc)
            read_fwd[name] = acc
            forward_arrays.append(Array(f"_cur_{name}", ("B", (dim,))))

    # backward storage ------------------------------------------------------------------------
    backward_arrays: list[Array] = []
    adjoint: dict[str, Access] = {}
    gemm_adjoint: dict[str, Access] = {}
    sink: dict[Sink, Access] = {}
    users_outside: dict[str, bool] = {}

    def per_step(name: str) -> bool:
        return name in cell.states or (name in cell.nodes and region[name] == LOOP)

    alias, dG_of, bias_of = _shared_gradients(cell, backward, groups)
    for g in groups.values():
        if dG_of[g.name] == f"_dG_{g.name}":
            backward_arrays.append(Array(f"_dG_{g.name}", ("T", "B", g.rows)))
        for p in g.products:
            adjoint[p] = Access(dG_of[g.name], "tbj", g.offset(p))
        shape = ("B", (g.operand_dim,)) if g.region == LOOP else ("T", "B", (g.operand_dim,))
        backward_arrays.append(Array(f"_dgemm_{g.operand}", shape))
        gemm_adjoint[g.operand] = Access(f"_dgemm_{g.operand}", "bj" if g.region == LOOP else "tbj")
    for name in [*cell.inputs, *cell.states, *cell.nodes]:
        if name in cell.nodes and isinstance(cell.nodes[name], Product):
            continue
        here = phase_key(name)
        planned = backward.adjoint(name)
        outside = planned is not None and any(isinstance(t, Chain) and phase_key(t.user) != here for t in planned.terms)
        users_outside[name] = outside
        if outside:
            dim = cell.dim_of(name)
            if per_step(name):
                adjoint[name] = Access(f"_d_{name}", "bj")
                backward_arrays.append(Array(f"_d_{name}", ("B", (dim,))))
            else:
                adjoint[name] = Access(f"_d_{name}", "tbj")
                backward_arrays.append(Array(f"_d_{name}", ("T", "B", (dim,))))
    for p, v in cell.vectors.items():
        if p in bias_of:
            continue
        adjoint[p] = Access(f"_acc_{p}", "j")
        backward_arrays.append(Array(f"_acc_{p}", ((v.dim,),), kind="acc", zero=True))
    for s in cell.updates:
        sink[Sink("state", s)] = Access(f"_dcarry_{s}", "bj")
        backward_arrays.append(Array(f"_dcarry_{s}", ("B", (cell.states[s],))))
    for out in cell.outputs:
        sink[Sink("output", out)] = Access(f"_dy_{out}", "tbj")

    return Schedule(
        cell=cell,
        backward=backward,
        region=region,
        phases=phases,
        groups=groups,
        group_of=group_of,
        read_fwd=read_fwd,
        read_bwd=read_bwd,
        stores=stores,
        tape=tape,
        forward_arrays=forward_arrays,
        backward_arrays=backward_arrays,
        adjoint=adjoint,
        gemm_adjoint=gemm_adjoint,
        sink=sink,
        users_outside=users_outside,
        alias=alias,
        dG_of=dG_of,
        bias_of=bias_of,
    )


def _shared_gradients(cell: Cell, backward: Plan, groups: dict[str, Group]):
    """Find gradients that are equal by construction: two values read by the same nodes with the
    same partial derivatives receive the same gradient. Products and vector params get gradient
    only that way, so an equal signature proves equal gradients."""

    def signature(name: str):
        planned = backward.adjoint(name)
        if name in cell.vectors:
            planned = backward.gradient(name)
        terms = [(t.user, sympy.srepr(t.partial)) for t in (planned.terms if planned else ()) if isinstance(t, Chain)]
        return (cell.dim_of(name), tuple(sorted(terms)))

    product_sig = {p: signature(p) for g in groups.values() for p in g.products}
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for g in groups.values():
        for p in g.products:
            first.setdefault(product_sig[p], p)
    dG_of: dict[str, str] = {}
    for g in groups.values():
        dG_of[g.name] = f"_dG_{g.name}"
        for other in groups.values():
            if other is g:
                break
            if dG_of[other.name] != f"_dG_{other.name}" or other.rows != g.rows:
                continue
            if all(product_sig[a] == product_sig[b] for a, b in zip(g.products, other.products)):
                dG_of[g.name] = f"_dG_{other.name}"
                alias.update(dict(zip(g.products, other.products)))
                break
    bias_of = {}
    for v in cell.vectors:
        sig = signature(v)
        if sig[1] and sig in first:
            bias_of[v] = alias.get(first[sig], first[sig])
    return alias, dG_of, bias_of


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def saved_per_step(cell: Cell, s: Schedule) -> list[tuple[str, str]]:
    """(value, dim) for each value the tape keeps per step: what the backward pass reads."""
    out = []
    for array in s.tape:
        role, _, name = array[1:].partition("_")
        if role == "G":
            group = s.groups[name]
            out += [(cell.label(p), d) for p, d in zip(group.products, group.rows)]
        else:
            out.append((cell.label(name), cell.dim_of(name)))
    return out


def tape_formula(saved: list[tuple[str, str]]) -> str:
    """The number of values of `saved_per_step` as a formula of the dims: "6*hidden"."""
    counts: dict[str, int] = {}
    for _, d in saved:
        counts[d] = counts.get(d, 0) + 1
    return " + ".join(f"{c}*{d}" if c > 1 else d for d, c in counts.items())
