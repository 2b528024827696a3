"""The methods of a generated `Cell`: `_forward` and `_backward`, which take the arrays apart,
allocate the schedule's buffers, call the kernels and run the products over all steps (the hoisted
input products, the weight gradients, the bias sums)."""

from __future__ import annotations

from ...autodiff import Outer
from ...buffers import Buffer, Role
from ...phases import LOOP, PRE, Group
from .kernel import Kernel, Writer, join_terms, size, window
from .loops import Kernels


class Bodies:
    def __init__(self, kernels: Kernels):
        self.k = kernels
        self.s = kernels.s
        self.cell = kernels.cell
        # array expression -> the name of its packed rows, in the body being written
        self.packs: dict[str, str] = {}
        # the inputs that no kernel reads, only the products over all steps: the passes take
        # them, and give their gradients, as packed rows (`storage.packed_input`, the Cell's
        # PACKED_INPUTS)
        self.packed_inputs = tuple(x for x in self.cell.inputs if self.buf(Role.INPUT, x).packed)

    def buf(self, role: Role, value: str) -> Buffer:
        return self.s.buf(role, value)

    def call(self, w: Writer, k: Kernel) -> None:
        w.line(f"{k.name}({', '.join(k.params)})")
        self.unpacked()

    def alloc(self, w: Writer, arrays: list[Buffer]) -> None:
        zero = self.k.never_written()
        for a in arrays:
            shape = []
            for entry in a.shape:
                shape.append({"T": "_T", "T+1": "_T + 1", "B": "_B", "rows": "_rows.count"}.get(entry) if isinstance(entry, str) else size(entry))
            dtype = "np.float64" if a.float64 else "_dtype"
            # an accumulator starts at zero; so does an array no kernel writes
            fn = "np.zeros" if a.role is Role.D_VECTOR or a in zero else "np.empty"
            w.line(f"{a.name} = {fn}(({', '.join(shape)}{',' if len(shape) == 1 else ''}), {dtype})")

    def vectors_prologue(self, w: Writer) -> None:
        for p in self.cell.vectors:
            w.define(self.buf(Role.VECTOR, p).name, f"_params[{p!r}]")
        for c in self.cell.constants:
            w.define(self.buf(Role.VECTOR, c).name, f"self.constants[{c!r}]")

    def dims_prologue(self, w: Writer) -> None:
        for d in self.cell.dims:
            w.define(f"_n_{d}", f"self.dims[{d!r}]")

    def stacked(self, w: Writer, g: Group) -> None:
        def weight(n: str) -> str:
            if self.cell.matrices[n].mask is not None:
                return f"_params[{n!r}] * self.masks[{n!r}]"
            return f"_params[{n!r}]"

        weights = ", ".join(weight(n) for n in g.weights)
        W = self.buf(Role.WEIGHTS, g.name).name
        w.line(f"{W} = np.concatenate(({weights},))" if len(g.weights) > 1 else f"{W} = {weight(g.weights[0])}")
        if g.region == LOOP:
            # W^T as the per-step products read it fastest for the chunk's rows (cellspec.blas)
            w.line(f"{self.buf(Role.WEIGHTS_T, g.name).name} = step_operand({W}.T, _B)")

    def packed(self, w: Writer, array: str, stem: str) -> str:
        """The rows that ran of a [T,B,n] array as a [rows, n] matrix (`runtime.Rows.pack`),
        packed once and read by every product over all steps until a kernel runs (`unpacked`)."""
        name = self.packs.get(array)
        if name is None:
            name = self.packs[array] = f"_rows{stem}"
            w.line(f"{name} = _rows.pack({array})")
        return name

    def unpacked(self) -> None:
        """A kernel ran: what was packed before may have changed."""
        self.packs.clear()

    def operand_all(self, w: Writer, g: Group) -> str:
        """Every step's operand of a group, the rows that ran, as a [rows, n] matrix."""
        acc = self.s.read_fwd[g.operand]
        arr = stem = acc.array.name
        if acc.array.role is Role.INPUT and g.operand in self.packed_inputs:
            return arr
        if acc.index == "next":
            arr, stem = f"{arr}[1:]", f"{stem}_next"
        elif acc.array.role is Role.STATES:
            arr = f"{arr}[:-1]"
        return self.packed(w, arr, stem)

    def gradient_all(self, w: Writer, g: Group) -> str:
        """The gradient of a group's products at every step, the rows that ran (its column window
        of a shared array, `Schedule.dG_columns`, a strided view)."""
        dG, cols = self.s.dG_of[g.name], window(self.s.dG_columns(g.name))
        if dG.packed:
            return dG.name + (f"[:, {cols}]" if cols else "")
        return self.packed(w, dG.name + (f"[:, :, {cols}]" if cols else ""), dG.name + (f"_{g.name}" if cols else ""))

    def gradient_columns(self, w: Writer, g: Group) -> tuple[str, tuple[str, ...]]:
        """`gradient_all` as a whole C-contiguous [rows, n] array and the dims of its columns
        before the group's, for `column_sums`."""
        dG, cols = self.s.dG_of[g.name], self.s.dG_columns(g.name)
        if dG.packed:
            return dG.name, cols[0] if cols else ()
        return self.gradient_all(w, g), ()

    def call_forward(self, w: Writer, k: Kernel, infer: dict[str, Kernel], owned: Kernel | None = None) -> None:
        """Call a forward kernel, or its inference twin (no tape stores) when there is one and
        the caller asked for no tape; or, for no tape, the step kernel that keeps its weights
        (`owned`) on the threads of the runtime's `owned_units` where it chose that."""
        twin = infer.get(k.name)
        if twin is None and owned is None:
            self.call(w, k)
            return
        with w.block("if tape:"):
            self.call(w, k)
        if owned is not None:
            with w.block("elif self.owned_units is not None:"):
                w.line(f"runtime.owned_steps({owned.name}, self.owned_units, ({', '.join(owned.params[4:])},))")
                self.unpacked()
        with w.block("else:"):
            self.call(w, twin or k)

    def forward_body(self, pre_f: dict[int, Kernel], loop_f: Kernel, infer: dict[str, Kernel], owned: Kernel | None = None) -> str:
        s, cell = self.s, self.cell
        w = Writer()
        self.unpacked()
        w.define("_dtype", "self.dtype")
        w.define("_params", "self.params")
        for x in cell.inputs:
            w.line(f"{self.buf(Role.INPUT, x).name} = inputs[{x!r}]")
        # the sizes from `_active` and a state: an input may come as its packed rows
        w.line(f"_T, _B = _active.shape[0], state[{next(iter(cell.states))!r}].shape[0]")
        w.define("_rows", "runtime.Rows(_active, _T, _B)")
        self.dims_prologue(w)
        self.vectors_prologue(w)
        for g in s.groups.values():
            self.stacked(w, g)
        self.alloc(w, s.forward_arrays)
        for st in cell.states:
            w.line(f"{self.buf(Role.STATES, st).name}[0] = state[{st!r}]")
        for ph in s.phases[PRE]:
            for g in ph.groups:
                G, product = self.buf(Role.PRODUCTS, g.name), f"dot({self.operand_all(w, g)}, {self.buf(Role.WEIGHTS, g.name).name}.T)"
                w.line(f"{G.name} = {product if G.packed else f'_rows.spread({product})'}")
            if ph.index in pre_f:
                self.call_forward(w, pre_f[ph.index], infer)
        self.call_forward(w, loop_f, infer, owned)
        outputs = []
        for name in cell.outputs:
            out = s.read_fwd[name]
            outputs.append(f"{name!r}: {out.array.name}[1:]" if out.index == "next" else f"{name!r}: {out.array.name}")
        w.line("_y = {" + ", ".join(outputs) + "}")
        w.line("_final = {" + ", ".join(f"{st!r}: {self.buf(Role.STATES, st).name}[_T].copy()" for st in cell.states) + "}")
        w.line("_tape = {" + ", ".join(f"{a.name!r}: {a.name}" for a in s.tape) + "} if tape else None")
        w.line("return _y, _final, _tape")
        return w.text()

    def backward_body(self, pre_b: dict[int, Kernel], loop_b: Kernel, loop_bd: Kernel) -> str:
        """`_backward`: the tape taken apart, the time loop, then the products over all steps
        (the gradients of hoisted operands and of the weights), the bias sums, and the results."""
        cell = self.cell
        w = Writer()
        self.unpacked()
        w.define("_dtype", "self.dtype")
        w.define("_params", "tape.params")
        w.line("_T, _B = tape.T, tape.B")
        w.define("_active", "tape.active")
        w.define("_rows", "runtime.Rows(_active, _T, _B)")
        self.dims_prologue(w)
        for x in cell.inputs:
            w.define(self.buf(Role.INPUT, x).name, f"tape.inputs[{x!r}]")
        self.vectors_prologue(w)
        for a in self.s.tape:
            w.define(a.name, f"tape.arrays[{a.name!r}]")
        for ph in self.s.phases[LOOP]:
            for g in ph.groups:
                W = self.buf(Role.WEIGHTS, g.name).name
                w.line(f"{W} = step_operand({W}, _B)")
        for name in cell.outputs:
            w.line(f"{self.buf(Role.D_OUTPUT, name).name} = dy[{name!r}]")
        self.alloc(w, self.s.backward_arrays)
        carry = self.carried_in(w)
        with w.block("if _has_dseq:"):
            self.call(w, loop_bd)
        with w.block("else:"):
            self.call(w, loop_b)
        grads = self.after_the_loop(w, pre_b)
        self.param_gradients(w, grads)
        w.line("_dinputs = {}")
        for x in cell.inputs:
            parts = []
            if self.s.users_outside.get(x):
                parts.append(self.s.adjoint[x].array.name)
            if x in self.s.gemm_adjoint:
                parts.append(self.s.gemm_adjoint[x].array.name)
            w.line(f"_dinputs[{x!r}] = {join_terms(parts) if parts else f'np.zeros_like({self.buf(Role.INPUT, x).name})'}")
        w.line("_dstate = {" + ", ".join(f"{st!r}: {carry[st]}" for st in cell.states) + "}")
        w.line("return _dinputs, _dparams, _dstate")
        return w.text()

    def carried_in(self, w: Writer) -> dict[str, str]:
        """The gradient arriving at the final states, and at every step's states from a layer
        above (dseq); returns the carry array of each state."""
        states = self.cell.states
        carry = {st: self.buf(Role.D_CARRY, st).name for st in states}
        dseq = {st: self.buf(Role.D_SEQUENCE, st).name for st in states}
        for st in states:
            w.line(f"{carry[st]}[...] = dstate[{st!r}]")
            w.line(f"{dseq[st]} = dseq[{st!r}]")
        w.line("_has_dseq = dseq_given")
        with w.block("if _has_dseq:"):
            for st in states:
                w.line(f"{carry[st]} += {dseq[st]}[_T - 1]")
        return carry

    def after_the_loop(self, w: Writer, pre_b: dict[int, Kernel]) -> dict[str, list[str]]:
        """The weight gradients of the loop's groups, then, phase by phase in reverse, the
        pre-region's backward kernels, its operands' gradients and its weight gradients; returns
        each weight's gradient blocks."""
        s = self.s
        grads: dict[str, list[str]] = {}

        def weight_grads(g: Group) -> None:
            # a product no partial reaches (one read only in a where() condition) gives its
            # weight no gradient: not 0 @ operand, which is NaN where the operand is
            live = [i for i, p in enumerate(g.products) if self.k.has_gradient(p)]
            if not live:
                return
            dG, operand = self.gradient_all(w, g), self.operand_all(w, g)
            w.line(f"_dW_{g.name} = dot({dG}.T, {operand})")
            for i in live:
                self.k.placed.add((g.weights[i], Outer(g.products[i], g.operand)))
                lo, hi = size(g.rows[:i]), size(g.rows[: i + 1])
                grads.setdefault(g.weights[i], []).append(f"_dW_{g.name}[{lo}:{hi}]")

        for g in s.groups.values():
            if g.region == LOOP:
                weight_grads(g)
        for ph in reversed(s.phases[PRE]):
            if ph.index in pre_b:
                self.call(w, pre_b[ph.index])
            for g in ph.groups:
                dG = self.gradient_all(w, g)
                product = f"dot({dG}, {self.buf(Role.WEIGHTS, g.name).name})"
                # a packed input's gradient stays packed rows (see `packed_inputs`)
                packed = g.operand in self.packed_inputs
                w.line(f"{self.buf(Role.D_OPERAND, g.name).name} = {product if packed else f'_rows.spread({product})'}")
                self.k.place_transposes(g)
                weight_grads(g)
        return grads

    def param_gradients(self, w: Writer, grads: dict[str, list[str]]) -> None:
        """`_dparams`: biases summed from their products' gradients, vector params from their
        accumulators, weights from their blocks."""
        s, cell = self.s, self.cell

        def block(product):
            """The group of a product and the product's place in it."""
            g = s.group_of[product]
            return g, g.products.index(product)

        # a bias whose gradient is a block of a product group's gradient: all rows of that
        # gradient summed in float64, in one pass per group (a pass per bias over a
        # strided column block was three times slower), then cut into the biases; a group sums
        # only the span of columns its biases cover
        spans: dict[str, tuple[int, int]] = {}
        for p in cell.params:
            if p.name in s.bias_of:
                g, k = block(s.bias_of[p.name])
                lo, hi = spans.get(g.name, (k, k + 1))
                spans[g.name] = (min(lo, k), max(hi, k + 1))
        for name, (first, last) in spans.items():
            g = s.groups[name]
            array, before = self.gradient_columns(w, g)
            w.line(f"_dbias_{name} = column_sums({array}, {size(before + g.rows[:first])}, {size(before + g.rows[:last])})")
        w.line("_dparams = {}")
        for p in cell.params:
            if p.name in s.bias_of:
                self.k.placed.update((p.name, t) for t in self.k.plan.gradient(p.name).terms)
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
                    w.line(f"_dparams[{p.name!r}] = np.zeros(({', '.join(size((d,)) for d in p.shape)},), _dtype)")
                    continue
                total = blocks[0] + ".copy()" if len(blocks) == 1 else " + ".join(blocks)
                if p.mask is not None:
                    # a masked weight's gradient is zero where the mask is
                    total = f"({' + '.join(blocks)}) * self.masks[{p.name!r}]"
                w.line(f"_dparams[{p.name!r}] = {total}")
