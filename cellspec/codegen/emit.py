"""Turn a schedule into the source of a generated module.

Kernels and method bodies are built as lists of lines with the writers of `kernel.py`; the tables
of the `Cell` and its docstring's summaries come from `tables.py`; the Jinja2 template
(`render.py`) only lays them out. Names in the emitted code: a forward value keeps its spec name,
its gradient is `d_<name>`, and everything the compiler adds starts with `_`, which spec names
cannot: arrays are named by `schedule.buffer_name` from their role (`_seq_h`, `_G_x`), loop
indices are `_t _b _j`, sizes `_n_<dim>`.
"""

from __future__ import annotations

import sympy

from .. import __version__
from ..autodiff import Chain, Outer, Sink, Transpose, backward_equations
from ..ir import symbol
from ..ir import Elementwise, Product
from ..schedule import LOOP, PRE, Access, Buffer, Group, Role, Schedule
from .printer import NumbaPrinter
from . import tables
from .kernel import KERNEL_DECORATOR, Kernel, Writer, join_terms, size
from .render import render, spec_display_path


class Emitter:
    def __init__(self, sched: Schedule):
        self.s = sched
        self.cell = sched.cell
        self.plan = sched.plan
        # the plan's chain terms by (user, value); every (value, term) of the plan that a kernel
        # or the orchestration has placed (module() checks that none is left out)
        self.chains = {(t.user, v): t for v, t in self.plan.terms() if isinstance(t, Chain)}
        self.placed: set[tuple[str, object]] = set()
        self.printer = NumbaPrinter()
        self.kernels: list[Kernel] = []
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

    # --- elementwise loops --------------------------------------------------------------------

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
                        k.line(f"{k.at(acc)} = {n}")

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
                k.line(f"{k.at(acc)} {op} {k.expr(contribution)}")

    # --- kernels ------------------------------------------------------------------------------

    def loop_forward(self, name: str = "_loop_forward", skip: frozenset[Buffer] = frozenset()) -> Kernel:
        s = self.s
        what = "without the stores only the backward pass reads (tape=False)" if skip else "saving the tape"
        k = Kernel(name, self.printer, f"The time loop of the forward pass, {what}: every step's products and fused elementwise loops.")
        with k.block("for _t in range(_T):"):
            for ph in s.phases[LOOP]:
                for g in ph.groups:
                    self.forward_reads.add(s.read_fwd[g.operand].array)
                    k.line(f"matmul({k.rows(s.read_fwd[g.operand])}, {k.use(self.buf(Role.WEIGHTS_T, g.name))}, {k.use(self.buf(Role.PRODUCTS, g.name))})")
                for dim, nodes in self.loops(ph):
                    self.forward_loop(k, ph.groups, dim, nodes, skip)
        return k

    def loop_backward(self) -> Kernel:
        s, cell = self.s, self.cell
        k = Kernel("_loop_backward", self.printer, "The time loop of the backward pass, from the last step to the first: each step's fused loops in reverse, the products that carry gradient to the step before, and the gradient carried to the previous states.")
        with k.block("for _t in range(_T - 1, -1, -1):"):
            for ph in reversed(s.phases[LOOP]):
                for dim, nodes in self.reached(ph):
                    self.backward_loop(k, dim, nodes)
                for g in ph.groups:
                    k.line(f"matmul({k.use(s.dG_of[g.name])}[_t], {k.use(self.buf(Role.WEIGHTS, g.name))}, {k.rows(s.gemm_adjoint[g.operand])})")
                    self.place_transposes(g)
            # the gradient carried into step t-1: what this step gave the previous state, plus
            # what another layer reading the state after step t-1 gives it (dseq), if any
            by_dim: dict[str, list[str]] = {}
            for st, dim in cell.states.items():
                by_dim.setdefault(dim, []).append(st)
            for with_dseq in (True, False):
                header = "if _has_dseq and _t > 0:" if with_dseq else "else:"
                with k.block(header):
                    for dim, states in by_dim.items():
                        k.dims.add(dim)
                        with k.block("for _b in range(_B):"):
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
        return k

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

    # --- orchestration ------------------------------------------------------------------------

    def call(self, w: Writer, k: Kernel) -> None:
        w.line(f"{k.name}({', '.join(k.params)})")

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

    def alloc(self, w: Writer, arrays: list[Buffer]) -> None:
        zero = self.never_written()
        for a in arrays:
            shape = []
            for entry in a.shape:
                shape.append({"T": "_T", "T+1": "_T + 1", "B": "_B"}.get(entry) if isinstance(entry, str) else size(entry))
            dtype = "np.float64" if a.float64 else "_dtype"
            # an accumulator starts at zero; so does an array no kernel writes
            fn = "np.zeros" if a.role is Role.D_VECTOR or a in zero else "np.empty"
            w.line(f"{a.name} = {fn}(({', '.join(shape)}{',' if len(shape) == 1 else ''}), {dtype})")

    def vectors_prologue(self, w: Writer) -> None:
        for p in self.cell.vectors:
            w.line(f"{self.buf(Role.VECTOR, p).name} = _params[{p!r}]")
        for c in self.cell.constants:
            w.line(f"{self.buf(Role.VECTOR, c).name} = self.constants[{c!r}]")

    def dims_prologue(self, w: Writer) -> None:
        for d in self.cell.dims:
            w.line(f"_n_{d} = self.dims[{d!r}]")

    def stacked(self, w: Writer, g: Group) -> None:
        def weight(n: str) -> str:
            if self.cell.matrices[n].mask is not None:
                return f"_params[{n!r}] * self.masks[{n!r}]"
            return f"_params[{n!r}]"

        weights = ", ".join(weight(n) for n in g.weights)
        W = self.buf(Role.WEIGHTS, g.name).name
        w.line(f"{W} = np.concatenate(({weights},))" if len(g.weights) > 1 else f"{W} = {weight(g.weights[0])}")
        if g.region == LOOP:
            w.line(f"{self.buf(Role.WEIGHTS_T, g.name).name} = np.ascontiguousarray({W}.T)")

    def operand_all(self, g: Group) -> str:
        """Every step's operand of a group as a [T*B, n] matrix."""
        acc = self.s.read_fwd[g.operand]
        arr = acc.array.name
        if acc.index == "next":
            arr = f"{arr}[1:]"
        elif acc.array.role is Role.STATES:
            arr = f"{arr}[:-1]"
        return f"{arr}.reshape(_R, {g.operand_dim and size((g.operand_dim,))})"

    def call_forward(self, w: Writer, k: Kernel, infer: dict[str, Kernel]) -> None:
        """Call a forward kernel, or its inference twin (no tape stores) when there is one and
        the caller asked for no tape."""
        twin = infer.get(k.name)
        if twin is None:
            self.call(w, k)
            return
        with w.block("if tape:"):
            self.call(w, k)
        with w.block("else:"):
            self.call(w, twin)

    def forward_body(self, pre_f: dict[int, Kernel], loop_f: Kernel, infer: dict[str, Kernel]) -> str:
        s, cell = self.s, self.cell
        w = Writer()
        w.line("_dtype = self.dtype")
        w.line("_params = self.params")
        for x in cell.inputs:
            w.line(f"{self.buf(Role.INPUT, x).name} = inputs[{x!r}]")
        first = self.buf(Role.INPUT, next(iter(cell.inputs))).name
        w.line(f"_T, _B = {first}.shape[0], {first}.shape[1]")
        w.line("_R = _T * _B")
        self.dims_prologue(w)
        self.vectors_prologue(w)
        for g in s.groups.values():
            self.stacked(w, g)
        self.alloc(w, s.forward_arrays)
        for st in cell.states:
            w.line(f"{self.buf(Role.STATES, st).name}[0] = state[{st!r}]")
        for ph in s.phases[PRE]:
            for g in ph.groups:
                w.line(f"{self.buf(Role.PRODUCTS, g.name).name} = np.dot({self.operand_all(g)}, {self.buf(Role.WEIGHTS, g.name).name}.T).reshape(_T, _B, {size(g.rows)})")
            if ph.index in pre_f:
                self.call_forward(w, pre_f[ph.index], infer)
        self.call_forward(w, loop_f, infer)
        outputs = []
        for name in cell.outputs:
            out = s.read_fwd[name]
            outputs.append(f"{name!r}: {out.array.name}[1:]" if out.index == "next" else f"{name!r}: {out.array.name}")
        w.line("_y = {" + ", ".join(outputs) + "}")
        w.line("_final = {" + ", ".join(f"{st!r}: {self.buf(Role.STATES, st).name}[_T].copy()" for st in cell.states) + "}")
        w.line("_tape = {" + ", ".join(f"{a.name!r}: {a.name}" for a in s.tape) + "} if tape else None")
        w.line("return _y, _final, _tape")
        return w.text()

    def backward_body(self, pre_b: dict[int, Kernel], loop_b: Kernel) -> str:
        s, cell = self.s, self.cell
        w = Writer()
        w.line("_dtype = self.dtype")
        w.line("_params = tape.params")
        w.line("_T, _B = tape.T, tape.B")
        w.line("_R = _T * _B")
        self.dims_prologue(w)
        for x in cell.inputs:
            w.line(f"{self.buf(Role.INPUT, x).name} = tape.inputs[{x!r}]")
        self.vectors_prologue(w)
        for a in s.tape:
            w.line(f"{a.name} = tape.arrays[{a.name!r}]")
        for name in cell.outputs:
            w.line(f"{self.buf(Role.D_OUTPUT, name).name} = dy[{name!r}]")
        self.alloc(w, s.backward_arrays)
        carry = {st: self.buf(Role.D_CARRY, st).name for st in cell.states}
        dseq = {st: self.buf(Role.D_SEQUENCE, st).name for st in cell.states}
        for st in cell.states:
            w.line(f"{carry[st]}[...] = dstate[{st!r}]")
            w.line(f"{dseq[st]} = dseq[{st!r}]")
        w.line("_has_dseq = dseq_given")
        with w.block("if _has_dseq:"):
            for st in cell.states:
                w.line(f"{carry[st]} += {dseq[st]}[_T - 1]")
        self.call(w, loop_b)
        grads: dict[str, list[str]] = {}

        def weight_grads(g: Group) -> None:
            # a product no partial reaches (one read only in a where() condition) gives its
            # weight no gradient: not 0 @ operand, which is NaN where the operand is
            live = [i for i, p in enumerate(g.products) if self.has_gradient(p)]
            if not live:
                return
            w.line(f"_dW_{g.name} = np.dot({s.dG_of[g.name].name}.reshape(_R, {size(g.rows)}).T, {self.operand_all(g)})")
            for i in live:
                self.placed.add((g.weights[i], Outer(g.products[i], g.operand)))
                lo, hi = size(g.rows[:i]), size(g.rows[: i + 1])
                grads.setdefault(g.weights[i], []).append(f"_dW_{g.name}[{lo}:{hi}]")

        for g in s.groups.values():
            if g.region == LOOP:
                weight_grads(g)
        for ph in reversed(s.phases[PRE]):
            if ph.index in pre_b:
                self.call(w, pre_b[ph.index])
            for g in ph.groups:
                w.line(f"{self.buf(Role.D_OPERAND, g.name).name} = np.dot({s.dG_of[g.name].name}.reshape(_R, {size(g.rows)}), {self.buf(Role.WEIGHTS, g.name).name}).reshape(_T, _B, {size((g.operand_dim,))})")
                self.place_transposes(g)
                weight_grads(g)
        # a bias whose gradient is a block of a product group's gradient: all rows of that
        # gradient summed in float64, in one pass per group (a pass per bias over a
        # strided column block was three times slower), then cut into the biases; a group sums
        # only the span of columns its biases cover
        def block(product):
            """The group of a product and the product's place in it."""
            g = s.group_of[product]
            return g, g.products.index(product)

        spans: dict[str, tuple[int, int]] = {}
        for p in cell.params:
            if p.name in s.bias_of:
                g, k = block(s.bias_of[p.name])
                lo, hi = spans.get(g.name, (k, k + 1))
                spans[g.name] = (min(lo, k), max(hi, k + 1))
        for name, (first, last) in spans.items():
            g = s.groups[name]
            cols = "" if (first, last) == (0, len(g.rows)) else f"[:, {size(g.rows[:first])}:{size(g.rows[:last])}]"
            w.line(f"_dbias_{name} = {s.dG_of[name].name}.reshape(_R, {size(g.rows)}){cols}.sum(axis=0, dtype=np.float64)")
        w.line("_dparams = {}")
        for p in cell.params:
            if p.name in s.bias_of:
                self.placed.update((p.name, t) for t in self.plan.gradient(p.name).terms)
                g, k = block(s.bias_of[p.name])
                first = spans[g.name][0]
                lo, hi = size(g.rows[first:k]), size(g.rows[first : k + 1])
                w.line(f"_dparams[{p.name!r}] = _dbias_{g.name}[{lo}:{hi}].astype(_dtype)")
            elif p.name in cell.vectors:
                w.line(f"_dparams[{p.name!r}] = {self.buf(Role.D_VECTOR, p.name).name}.astype(_dtype)")
            else:
                blocks = grads.get(p.name)
                if not blocks:
                    # the weight's products cancelled out (W @ x - W @ x): no gradient
                    w.line(f"_dparams[{p.name!r}] = np.zeros_like(_params[{p.name!r}])")
                    continue
                total = blocks[0] + ".copy()" if len(blocks) == 1 else " + ".join(blocks)
                if p.mask is not None:
                    # a masked weight's gradient is zero where the mask is
                    total = f"({' + '.join(blocks)}) * self.masks[{p.name!r}]"
                w.line(f"_dparams[{p.name!r}] = {total}")
        w.line("_dinputs = {}")
        for x, dim in cell.inputs.items():
            parts = []
            if s.users_outside.get(x):
                parts.append(s.adjoint[x].array.name)
            if x in s.gemm_adjoint:
                parts.append(s.gemm_adjoint[x].array.name)
            w.line(f"_dinputs[{x!r}] = {join_terms(parts) if parts else f'np.zeros_like({self.buf(Role.INPUT, x).name})'}")
        w.line("_dstate = {" + ", ".join(f"{st!r}: {carry[st]}" for st in cell.states) + "}")
        w.line("return _dinputs, _dparams, _dstate")
        return w.text()

    # --- the module ---------------------------------------------------------------------------

    def module(self) -> str:
        s, cell = self.s, self.cell
        pre_f = {ph.index: k for ph in s.phases[PRE] if (k := self.pre_forward(ph.index))}
        loop_f = self.loop_forward()
        # an inference pass (forward with tape=False) runs twins of the forward kernels that
        # skip the stores only the backward pass reads: of the tape, all but the states and
        # what the forward pass itself reads on
        for g in s.groups.values():
            if g.region == PRE:
                self.forward_reads.add(s.read_fwd[g.operand].array)
        kept = self.forward_reads | {s.read_fwd[o].array for o in cell.outputs}
        skip = frozenset(a for a in s.saved() if a not in kept and a.role is not Role.STATES)
        infer: dict[str, Kernel] = {}
        if skip:
            twins = [(k, self.pre_forward(i, "_pre_infer", skip)) for i, k in pre_f.items()]
            twins.append((loop_f, self.loop_forward("_loop_infer", skip)))
            # a kernel that stores nothing of the tape-only arrays needs no twin
            infer = {k.name: twin for k, twin in twins if any(a in skip for a in k.arrays)}
        loop_b = self.loop_backward()
        pre_b = {ph.index: k for ph in reversed(s.phases[PRE]) if (k := self.pre_backward(ph.index))}
        kernels = [*pre_f.values(), loop_f, *infer.values(), loop_b, *pre_b.values()]
        kernel_sources = [k.source(cell.dims) for k in kernels]
        forward = self.forward_body(pre_f, loop_f, infer)
        backward = self.backward_body(pre_b, loop_b)
        missing = self.unplaced()
        if missing:
            raise AssertionError(f"cellspec's emitter left out terms of the backward plan of {cell.name}: {missing}")
        inits = tables.inits(cell)
        functions = sorted(self.printer.functions)
        context = {
            "name": cell.name,
            "summary": cell.summary,
            "cite": cell.cite,
            "spec_path": spec_display_path(cell.path),
            "sha256": cell.sha256,
            "version": __version__,
            "equations": [f"{n} = {e}" for n, e in cell.equations_text],
            "updates": [f"{st}[t] = {n}" for st, n in cell.updates.items()] + [f"y[t] = {o}" if len(cell.outputs) == 1 else f"y_{o}[t] = {o}" for o in cell.outputs],
            "outputs": [(o, cell.dim_of(o)) for o in cell.outputs],
            "constraints": list(cell.constraints),
            "constants": [(c.name, c.dim) for c in cell.constants.values()],
            "fixed": tables.fixed(cell),
            "backward": backward_equations(cell, s.plan),
            "schedule": tables.schedule_summary(s),
            "shapes": tables.shapes(cell),
            "functions": functions,
            "kernels": kernel_sources,
            "kernel_decorator": KERNEL_DECORATOR,
            "dims": list(cell.dims),
            "inputs": [(x, d) for x, d in cell.inputs.items()],
            "states": [(x, d) for x, d in cell.states.items()],
            "params": [(p.name, (p.rows, p.cols) if p.name in cell.matrices else (p.dim,)) for p in cell.params],
            "tape": tables.tape(s),
            "transcendentals": tables.transcendentals(cell),
            "param_inits": inits,
            "forward_body": forward,
            "backward_body": backward,
        }
        return render(context)



def emit_module(sched: Schedule) -> str:
    return Emitter(sched).module()
