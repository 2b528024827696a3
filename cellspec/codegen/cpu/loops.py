"""The kernels of a scheduled cell: each fused elementwise loop and each kernel of the forward and
backward passes (the pre-region phases, the time loop, their inference twins), written from the
schedule's buffers and placed from the backward plan, every term of which `unplaced` accounts for.
"""

from __future__ import annotations

import sympy

from ...autodiff import Chain, Sink, Transpose
from ...buffers import Access, Buffer, Role
from ...ir import Elementwise, Product, symbol
from ...phases import LOOP, PRE, Group
from ...schedule import Schedule
from .kernel import Kernel, join_terms, size, window
from .printer import NumbaPrinter


class Kernels:
    """Writes the kernels of one schedule, and keeps what the method bodies need to know of them:
    the gradient arrays some kernel writes (`assigned`), the arrays the forward kernels read
    (`forward_reads`), and the plan's terms placed so far (`placed`)."""

    def __init__(self, sched: Schedule):
        self.s = sched
        self.cell = sched.cell
        self.plan = sched.plan
        # the plan's chain terms by (user, value); every (value, term) of the plan that a kernel
        # or the orchestration has placed (module() checks that none is left out)
        self.chains = {(t.user, v): t for v, t in self.plan.terms() if isinstance(t, Chain)}
        self.placed: set[tuple[str, object]] = set()
        self.printer = NumbaPrinter()
        self.assigned: set[tuple[Buffer, tuple[str, ...]]] = set()
        # the arrays the forward kernels read (see module())
        self.forward_reads: set[Buffer] = set()

    def buf(self, role: Role, value: str) -> Buffer:
        return self.s.buf(role, value)

    def name(self, k: Kernel, value: str) -> None:
        """Note in the kernel's docstring what a compiler-made value read or computed there is."""
        node = self.cell.nodes.get(value)
        if isinstance(node, Product) or (isinstance(node, Elementwise) and not node.equation):
            k.names[value] = self.cell.label(value)

    def forward_loop(self, k: Kernel, phase_groups: list[Group], dim: str, nodes: list[str], skip: frozenset[Buffer]) -> None:
        """One fused loop of a forward phase; stores into the arrays of `skip` are left out."""
        s, cell = self.s, self.cell
        local = set(nodes)
        products = [p for g in phase_groups for p in g.products if p in s.stores and cell.nodes[p].dim == dim]
        needed = sorted({a for n in nodes for a in cell.nodes[n].args if a not in local} | set(products))
        with k.rows_loop(dim):
            for a in needed:
                self.forward_reads.add(s.read_fwd[a].array)
                self.name(k, a)
                k.line(f"{a} = {k.at(s.read_fwd[a])}")
            for n in nodes:
                self.name(k, n)
                k.line(f"{n} = {k.expr(cell.nodes[n].expr)}")
            for n in [*nodes, *products]:
                for acc in s.stores.get(n, []):
                    if acc.array not in skip:
                        k.store(acc, "=", n)

    def backward_loop(self, k: Kernel, dim: str, nodes: list[str]) -> None:
        """One fused loop of a backward phase: the adjoint of each node of the loop, from the
        plan's terms (each placed here or where its array is written), and the terms this loop
        gives values outside it, added into their arrays."""
        s, cell = self.s, self.cell
        local = set(nodes)
        pairs = [(u, a) for u in nodes for a in cell.nodes[u].args if (u, a) in self.chains]
        temps = sympy.numbered_symbols("_c", start=k.temps)
        replacements, reduced = sympy.cse([self.chains[p].partial for p in pairs], symbols=temps)
        k.temps += len(replacements)
        partial = dict(zip(pairs, reduced))
        temp_names = {str(t) for t, _ in replacements}
        reads = sorted(({sym.name for e in reduced for sym in e.free_symbols} | {sym.name for _, e in replacements for sym in e.free_symbols}) - temp_names)
        # a value the backward pass recomputes, from its own arguments (recomputed or read)
        wanted = set(reads)
        todo = [r for r in reads if r in s.recompute]
        while todo:
            r = todo.pop()
            for a in cell.nodes[r].args:
                if a not in wanted:
                    wanted.add(a)
                    todo += [a] if a in s.recompute else []
        recomputed = [r for r in s.recompute if r in wanted]
        loaded = sorted(wanted - set(recomputed))
        with k.rows_loop(dim):
            for r in loaded:
                self.name(k, r)
                k.line(f"{r} = {k.at(s.read_bwd[r])}")
            for r in recomputed:
                self.name(k, r)
                k.line(f"{r} = {k.expr(cell.nodes[r].expr)}")
            for t, e in replacements:
                k.line(f"{t} = {k.expr(e)}")
            for n in reversed(nodes):
                adjoint = self.plan.adjoint(n)
                if adjoint is None:
                    continue
                sinks, inner, outside, transposed = [], sympy.S.Zero, False, False
                for term in adjoint.terms:
                    if isinstance(term, Sink):
                        sinks.append(k.at(s.sink[term]))
                        self.placed.add((n, term))
                    elif isinstance(term, Transpose):
                        transposed = True      # summed by the group's product (loop_backward)
                    elif term.user in local:
                        inner += symbol(f"d_{term.user}") * partial[(term.user, n)]
                        self.placed.add((n, term))
                    else:
                        outside = True         # added into s.adjoint[n] by the user's loop
                terms = sinks + ([k.at(s.adjoint[n])] if outside else []) + ([k.at(s.gemm_adjoint[n])] if transposed else [])
                if inner != 0:
                    terms.append(k.expr(inner))
                k.line(f"d_{n} = {join_terms(terms)}")
            targets: dict[str, sympy.Expr] = {}
            for u in reversed(nodes):
                for a in cell.nodes[u].args:
                    # a bias's gradient is summed from its product's later (backward_body)
                    if a in local or (u, a) not in partial or a in s.bias_of:
                        continue
                    self.placed.add((a, self.chains[(u, a)]))
                    # a product whose gradient is proven equal to another's shares its array
                    if a not in s.alias:
                        targets[a] = targets.get(a, sympy.S.Zero) + symbol(f"d_{u}") * partial[(u, a)]
            for a, contribution in targets.items():
                acc = s.adjoint[a]
                key = (acc.array, acc.offset)
                op = "+=" if key in self.assigned or a in cell.vectors else "="
                self.assigned.add(key)
                k.store(acc, op, k.expr(contribution))

    def owned_dim(self) -> str | None:
        """The dim a step kernel that keeps its weights splits over its threads (cellspec.owned),
        or None where the cell's time loop cannot run so: it must be one phase, its products
        first, then fused loops, all of one dim, so that a thread's units need only its columns
        of the products and nothing but the next step's products reads another thread's units."""
        phases = self.s.phases[LOOP]
        if len(phases) != 1 or not phases[0].groups:
            return None
        ph = phases[0]
        dims = {d for g in ph.groups for d in g.rows} | {d for d, _ in self.loops(ph)}
        return next(iter(dims)) if len(dims) == 1 else None

    def loop_forward(self, name: str = "_loop_forward", skip: frozenset[Buffer] = frozenset(), owned: str = "") -> Kernel:
        """The forward time loop; with `owned` (its owned_dim), the step kernel that keeps its
        weights: it runs the units `_u0:_u1` of that dim, their columns of each product, and meets
        the other threads at the end of each step."""
        s = self.s
        what = "without the stores only the backward pass reads (tape=False)" if skip else "saving the tape"
        how = f", on this thread's units of {owned} (cellspec.owned)" if owned else ""
        k = Kernel(name, self.printer, f"The time loop of the forward pass, {what}: every step's products and fused elementwise loops, on the sequences still running{how}.")
        k.ragged_steps()
        k.owned = owned
        start = len(k.lines)
        with k.block("for _t in range(_T):"):
            k.line("_nb = _active[_t]")
            for ph in s.phases[LOOP]:
                for g in ph.groups:
                    self.forward_reads.add(s.read_fwd[g.operand].array)
                    operand, WT, G = k.rows(s.read_fwd[g.operand]), k.use(self.buf(Role.WEIGHTS_T, g.name)), k.use(self.buf(Role.PRODUCTS, g.name))
                    if not owned:
                        k.line(f"matmul({operand}, {WT}, {G}[:_nb])")
                    # this thread's columns of each product stacked in G: a window of WT and of G
                    for i in range(len(g.rows)) if owned else ():
                        lo = size(g.rows[:i])
                        cols = "_u0:_u1" if lo == "0" else f"{lo} + _u0:{lo} + _u1"
                        k.line(f"matmul({operand}, {WT}[:, {cols}], {G}[:_nb, {cols}])")
                for dim, nodes in self.loops(ph):
                    self.forward_loop(k, ph.groups, dim, nodes, skip)
            self.past_the_end(k)
            if k.offsets:
                k.line("_o += _nb")
            if owned:
                # every unit of the new state is there for the next step's products
                k.line("meet(_barrier, _P * (_t + 1))")
        if k.offsets:
            # the offset of step t's rows in the packed arrays
            k.lines.insert(start, "    " * k.level + "_o = 0")
        return k

    def past_the_end(self, k: Kernel) -> None:
        """The rows of step t past their sequence's end (rows `_nb`.. of a batch sorted longest
        first): a state passes through unchanged, so that the final state is the one after the
        sequence's own last step, and every other per-step array written this step gets zeros
        there, so that no row of it is left unwritten: the products over all steps read only the
        rows that ran (`runtime.Rows`), but a kernel over all steps (a phase before the loop) and
        the tape read every row. A packed array has no row past an end."""
        writes = [(array, index) for array, index in k.step_writes if not array.packed]
        if not writes:
            return
        # element by element: Numba compiles an array-wide assignment (`a[t, b] = 0.0`) into its
        # general broadcasting code, about 0.25 s of compile apiece, measured on the LSTM
        by_width: dict[tuple, list[tuple[Buffer, str]]] = {}
        for array, index in writes:
            assert len(array.shape) == 3, array
            by_width.setdefault(array.width, []).append((array, index))
        with k.block("for _b in range(_nb, _B):"):
            for writes in by_width.values():
                assert not k.owned or writes[0][0].width == (k.owned,), writes
                units = "_u0, _u1" if k.owned else f"{writes[0][0].name}.shape[2]"
                with k.block(f"for _j in range({units}):"):
                    for array, index in writes:
                        if array.role is Role.STATES and index == "next":
                            k.line(f"{array.name}[_t + 1, _b, _j] = {array.name}[_t, _b, _j]")
                        else:
                            row = "_t + 1, _b, _j" if index == "next" else "_t, _b, _j"
                            k.line(f"{array.name}[{row}] = 0.0")

    def loop_backward(self, dseq: bool = False) -> Kernel:
        """The backward time loop; with `dseq`, its twin for a call in which a layer above reads
        the states (`_loop_backward_dseq`), which adds that layer's gradient of every step's
        states to the carry. Two kernels, not one with a flag: a call compiles only the one it
        runs (the dseq branch cost 0.16 s of the LSTM's compile)."""
        s, cell = self.s, self.cell
        name = "_loop_backward_dseq" if dseq else "_loop_backward"
        what = " and what the layer above gives every step's states" if dseq else ""
        k = Kernel(name, self.printer, f"The time loop of the backward pass, from the last step to the first: each step's fused loops in reverse, the products that carry gradient to the step before, and the gradient carried to the previous states{what}.")
        k.ragged_steps()
        start = len(k.lines)
        with k.block("for _t in range(_T - 1, -1, -1):"):
            k.line("_nb = _active[_t]")
            step = len(k.lines)
            for ph in reversed(s.phases[LOOP]):
                for dim, nodes in self.reached(ph):
                    self.backward_loop(k, dim, nodes)
                for g in ph.groups:
                    k.line(f"matmul({k.rows(Access(s.dG_of[g.name], 'tbj'), window(s.dG_columns(g.name)))}, {k.use(self.buf(Role.WEIGHTS, g.name))}, {k.rows(s.gemm_adjoint[g.operand])})")
                    self.place_transposes(g)
            self.past_the_end(k)
            # the gradient carried into step t-1: what this step gave the previous state, plus
            # what another layer reading the state after step t-1 gives it (dseq), if any
            by_dim: dict[str, list[str]] = {}
            for st, dim in cell.states.items():
                by_dim.setdefault(dim, []).append(st)
            if dseq:
                with k.block("if _t > 0:"):
                    self.carry(k, by_dim, True)
                with k.block("else:"):
                    self.carry(k, by_dim, False)
            else:
                self.carry(k, by_dim, False)
        if k.offsets:
            # the offset of step t's rows in the packed arrays, from the end of the rows that ran
            k.lines.insert(step, "    " * (k.level + 1) + "_o -= _nb")
            k.lines[start:start] = ["    " * k.level + ln for ln in ("_o = 0", "for _s in range(_T):", "    _o += _active[_s]")]
        return k

    def carry(self, k: Kernel, by_dim: dict[str, list[str]], with_dseq: bool) -> None:
        s = self.s
        for dim, states in by_dim.items():
            k.dims.add(dim)
            with k.block("for _b in range(_nb):"):
                with k.block(f"for _j in range(_n_{dim}):"):
                    for st in states:
                        parts = []
                        if s.users_outside.get(st):
                            parts.append(k.at(s.adjoint[st]))
                        if st in s.gemm_adjoint:
                            parts.append(k.at(s.gemm_adjoint[st]))
                        if with_dseq:
                            parts.append(f"{k.use(self.buf(Role.D_SEQUENCE, st))}[_t - 1, _b, _j]")
                        k.line(f"{k.at(Access(self.buf(Role.D_CARRY, st), 'bj'))} = {join_terms(parts)}")
            if with_dseq:
                # past a sequence's end its state passed through unchanged: the carried
                # gradient does too, with what the layer above gives it
                with k.block("for _b in range(_nb, _B):"):
                    with k.block(f"for _j in range(_n_{dim}):"):
                        for st in states:
                            k.line(f"{k.at(Access(self.buf(Role.D_CARRY, st), 'bj'))} += {k.use(self.buf(Role.D_SEQUENCE, st))}[_t - 1, _b, _j]")

    def pre_forward(self, index: int, name: str = "_pre_forward", skip: frozenset[Buffer] = frozenset()) -> Kernel | None:
        ph = self.s.phases[PRE][index - 1]
        if not ph.nodes:
            return None
        what = ", without the stores only the backward pass reads (tape=False)" if skip else ""
        k = Kernel(f"{name}_{index}", self.printer, f"Phase {index} of the values that read no state, over all steps before the time loop{what}.")
        with k.block("for _t in range(_T):"):
            for dim, nodes in self.loops(ph):
                self.forward_loop(k, ph.groups, dim, nodes, skip)
        return k

    def pre_backward(self, index: int) -> Kernel | None:
        ph = self.s.phases[PRE][index - 1]
        loops = self.reached(ph)
        if not loops:
            return None
        k = Kernel(f"_pre_backward_{index}", self.printer, f"The backward pass of phase {index} of the values that read no state, over all steps after the time loop.")
        with k.block("for _t in range(_T):"):
            for dim, nodes in loops:
                self.backward_loop(k, dim, nodes)
        return k

    def reached(self, ph) -> list[tuple[str, list[str]]]:
        """The phase's fused loops for the backward pass: of the nodes that gradient reaches."""
        loops = [(dim, [n for n in nodes if self.plan.adjoint(n)]) for dim, nodes in self.loops(ph)]
        return [(dim, nodes) for dim, nodes in loops if nodes]

    def loops(self, ph) -> list[tuple[str, list[str]]]:
        """One fused loop per dim; a dim whose only work is saving a product still gets one."""
        out = ph.loops(self.cell)
        dims = {d for d, _ in out}
        for g in ph.groups:
            for p in g.products:
                d = self.cell.nodes[p].dim
                if p in self.s.stores and d not in dims:
                    out.append((d, []))
                    dims.add(d)
        return out

    def place_transposes(self, g: Group) -> None:
        """The group's matrix product d_operand = d_G @ W sums the `W^T @ d_p` of its products."""
        adjoint = self.plan.adjoint(g.operand)
        self.placed.update((g.operand, t) for t in (adjoint.terms if adjoint else ()) if isinstance(t, Transpose))

    def unplaced(self) -> list[tuple[str, object]]:
        """The plan's terms that no emitted code computes: none, or the emitter has a bug."""
        return [vt for vt in self.plan.terms() if vt not in self.placed]

    def has_gradient(self, product: str) -> bool:
        """Whether some kernel writes the gradient of a product (or of the one it aliases)."""
        acc = self.s.adjoint[self.s.alias.get(product, product)]
        return (acc.array, acc.offset) in self.assigned

    def never_written(self) -> set[Buffer]:
        """Gradient arrays that some value owns but no kernel writes, because every partial
        derivative into it is zero (a product read only inside a where() condition): they must
        start at zero, not as uninitialised memory."""
        s = self.s
        owners = [p for g in s.groups.values() for p in g.products if p not in s.alias and p not in s.bias_of]
        owners += [n for n, outside in s.users_outside.items() if outside]
        out = set()
        for name in owners:
            acc = s.adjoint[name]
            if (acc.array, acc.offset) not in self.assigned:
                out.add(acc.array)
        return out
