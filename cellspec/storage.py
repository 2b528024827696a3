"""Where every value of a scheduled cell lives: what the forward pass stores and the tape keeps
(all the backward plan reads, but what is cheaper to recompute), where each gradient accumulates,
and which gradients are one array because they are equal by construction. Fills in a `Schedule`
(`schedule.make_schedule` calls these in order)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from .autodiff import Chain, Plan, Sink
from .buffers import Access, Buffer, Role
from .ir import Cell, Elementwise, Product
from .ops import transcendental
from .phases import LOOP, PRE, Group

if TYPE_CHECKING:
    from .schedule import Schedule


def cheap(expr: sympy.Expr) -> bool:
    """Whether recomputing an expression costs less than saving it: no transcendental function
    (a few adds and multiplies against a store and a load of every step's value)."""
    heavy = transcendental()
    return not any(isinstance(e, heavy) or (e.is_Pow and not e.exp.is_Integer) for e in sympy.preorder_traversal(expr))


def recomputed(cell: Cell, plan: Plan, s: "Schedule") -> tuple[str, ...]:
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


def packed(s: "Schedule", g: Group, kept: set[str]) -> bool:
    """Whether a group's products over all steps, and their gradient, live packed: the rows that
    ran, step after step ([rows, n], step t's `_active[t]` rows from row sum(_active[:t]), as
    PyTorch's PackedSequence holds them). So they do where only the time-loop kernels read them
    (every value that reads the products is computed in the loop, none is an output, an operand of
    another product or saved for the backward pass), and the products over all steps, which write
    and read them, then run on the rows that ran with no copy between. The products of a loop
    group are per step ([B, n]); their gradient is packed the same way."""
    cell = s.cell
    users = cell.users()
    operands = {o.operand for o in s.groups.values()}
    return all(
        p not in kept and p not in operands and p not in cell.outputs and all(s.region[u] == LOOP for u in users.get(p, ()))
        for p in g.products
    )


def packed_input(s: "Schedule", x: str) -> bool:
    """Whether an input reaches the passes as its packed rows ([rows, n], as `packed` products
    live) and its gradient leaves them so: where no kernel reads it, every value that reads it
    being a product of a group before the time loop. A ragged batch then packs it straight from
    the caller's rows, and spreads its gradient straight into them (the Cell's PACKED_INPUTS)."""
    return all(u in s.group_of and s.group_of[u].region == PRE for u in s.cell.users().get(x, ()))


def forward_storage(s: "Schedule", phase_of: dict[str, int]) -> None:
    """Where the forward pass keeps each value, and what of it the tape keeps."""
    cell, plan = s.cell, s.plan
    kept = plan.reads - set(s.recompute)

    def new(role: Role, value: str, shape: tuple, holds: str, allocate: bool = True) -> Buffer:
        b = s.buffers[(role, value)] = Buffer(role, value, shape, holds)
        if allocate:
            s.forward_arrays.append(b)
        return b

    for x, dim in cell.inputs.items():
        shape = ("rows", (dim,)) if packed_input(s, x) else ("T", "B", (dim,))
        s.read_fwd[x] = s.read_bwd[x] = Access(new(Role.INPUT, x, shape, f"input {x}", False), "tbj")
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
        if not pre:
            G = new(Role.PRODUCTS, g.name, ("B", g.rows), holds + " at this step")
        elif packed(s, g, kept):
            G = new(Role.PRODUCTS, g.name, ("rows", g.rows), holds + " at every step, the rows that ran", allocate=False)
        else:
            G = new(Role.PRODUCTS, g.name, ("T", "B", g.rows), holds + " at every step", allocate=False)
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


def backward_storage(s: "Schedule", phase_of: dict[str, int]) -> None:
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

    s.alias, shared, s.bias_of = _shared_gradients(cell, plan, s.groups, s.dG_windows)
    kept = plan.reads - set(s.recompute)
    for g in s.groups.values():
        before = s.dG_windows.get(g.name, (g.name, ()))[1]
        if shared[g.name] == g.name:
            sharing = [o for o in s.groups.values() if shared[o.name] == g.name]
            windowed = g.name in s.dG_windows
            labels = (" and " if windowed else " = ").join("[" + "; ".join(cell.label(p) for p in o.products) + "]" for o in sharing)
            if windowed:
                labels += " (their equal blocks once, as two column windows)"
            width = before + g.rows
            if all(o.region == LOOP or packed(s, o, kept) for o in sharing):
                new(Role.D_PRODUCTS, g.name, ("rows", width), f"the gradient of {labels} at every step, the rows that ran")
            else:
                new(Role.D_PRODUCTS, g.name, ("T", "B", width), f"the gradient of {labels} at every step")
        # a group shares the gradient array of an earlier group, whole or as a column window
        s.dG_of[g.name] = dG = s.buf(Role.D_PRODUCTS, shared[g.name])
        for p in g.products:
            s.adjoint[p] = Access(dG, "tbj", before + g.offset(p))
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
        # read only by the backward time loop, on the rows still running: the caller's dy comes
        # as its packed rows (the Cell's PACKED_DY), straight from a ragged batch's order
        rows = ("rows",) if s.region[out] == LOOP else ("T", "B")
        b = new(Role.D_OUTPUT, out, (*rows, (cell.dim_of(out),)), f"dy: the gradient of output {out}", False)
        s.sink[Sink("output", out)] = Access(b, "tbj")


def _signature(cell: Cell, plan: Plan, name: str):
    """What decides a value's gradient: its dim and its users with their partial derivatives.
    Products and vector params get gradient only that way, so an equal signature proves equal
    gradients."""
    planned = plan.gradient(name) if name in cell.vectors else plan.adjoint(name)
    terms = [(t.user, sympy.srepr(t.partial)) for t in (planned.terms if planned else ()) if isinstance(t, Chain)]
    return (cell.dim_of(name), tuple(sorted(terms)))


def gradient_windows(cell: Cell, plan: Plan, groups: dict[str, Group]) -> tuple[dict[str, Group], dict[str, tuple[str, tuple[str, ...]]]]:
    """Groups whose gradients overlap in part share one array as two column windows of it.

    Where some products of a later group have the gradients of some of an earlier group's (a
    GRU: d(U_r @ h) = d(W_r @ x) and d(U_z @ h) = d(W_z @ x), but U_n @ h gets r times W_n @ x's),
    the earlier group is restacked with those first and the later one with them last, in the
    same order; the earlier group's gradient array grows by the later group's other products in
    front, [U_n h | r | z | W_n x], and each group's gradient is a window of it, [U_n h | r | z]
    and [r | z | W_n x], so the equal gradients are written once and each group's products still
    read one strided matrix. A group takes part in one such pair at most. Returns the groups
    (restacked where so) and, per group in a window, (the group whose array it is, the dims
    before the window's first column)."""
    sig = {p: _signature(cell, plan, p) for g in groups.values() for p in g.products}
    groups = dict(groups)
    windows: dict[str, tuple[str, tuple[str, ...]]] = {}
    names = list(groups)

    def equal(a: Group, b: Group) -> bool:
        return len(a.products) == len(b.products) and all(sig[p] == sig[q] for p, q in zip(a.products, b.products))

    # a group that shares its whole array with another (an LSTM's two) keeps it so: that saves more
    whole = {x for i, n in enumerate(names) for m in names[:i] if equal(groups[n], groups[m]) for x in (n, m)}
    for i, name in enumerate(names):
        g = groups[name]
        for other_name in names[:i]:
            other = groups[other_name]
            if other_name in windows or name in windows or {name, other_name} & whole:
                continue
            pairs: dict[str, str] = {}   # other's product -> g's product with its gradient, in other's order
            for q in other.products:
                match = next((p for p in g.products if p not in pairs.values() and sig[p] == sig[q]), None)
                if match is not None:
                    pairs[q] = match
            rest = [p for p in g.products if p not in pairs.values()]
            if not pairs or (not rest and len(pairs) == len(other.products) == len(g.products)):
                continue   # nothing shared, or every product (the array is shared whole, below)
            # other: the shared products first; g: its own first, then the shared in other's order
            groups[other_name] = other = _restacked(other, [*pairs, *(q for q in other.products if q not in pairs)])
            groups[name] = g = _restacked(g, rest + list(pairs.values()))
            windows[name] = (other_name, ())
            windows[other_name] = (other_name, tuple(g.rows[: len(rest)]))
            break
    return groups, windows


def _restacked(g: Group, order: list[str]) -> Group:
    """The group with its products (and their weights and rows) stacked in `order`."""
    at = [g.products.index(p) for p in order]
    return Group(g.region, g.phase, g.operand, g.operand_dim, tuple(order), tuple(g.weights[i] for i in at), tuple(g.rows[i] for i in at))


def _shared_gradients(cell: Cell, plan: Plan, groups: dict[str, Group], windows: dict[str, tuple[str, tuple[str, ...]]]):
    """Find gradients that are equal by construction: two values read by the same nodes with the
    same partial derivatives receive the same gradient. Products and vector params get gradient
    only that way, so an equal signature proves equal gradients. Returns the product aliases,
    the group whose gradient array each group uses (whole, or as a window: `gradient_windows`),
    and the product each bias sums."""

    product_sig = {p: _signature(cell, plan, p) for g in groups.values() for p in g.products}
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for g in groups.values():
        for p in g.products:
            first.setdefault(product_sig[p], p)
    shared: dict[str, str] = {}
    for g in groups.values():
        shared[g.name] = g.name
        if g.name in windows:
            base = windows[g.name][0]
            if base != g.name:   # g's last products have the gradients of base's first ones
                shared[g.name] = base
                lead = g.products[len(windows[base][1]):]
                alias.update(dict(zip(lead, groups[base].products)))
            continue
        for other in groups.values():
            if other is g:
                break
            if shared[other.name] != other.name or other.rows != g.rows or other.name in windows:
                continue
            if all(product_sig[a] == product_sig[b] for a, b in zip(g.products, other.products)):
                shared[g.name] = other.name
                alias.update(dict(zip(g.products, other.products)))
                break
    bias_of = {}
    for v in cell.vectors:
        sig = _signature(cell, plan, v)
        if sig[1] and sig in first:
            bias_of[v] = alias.get(first[sig], first[sig])
    return alias, shared, bias_of
