"""Turn a schedule into the source of a generated module for the CPU (Numba) target.

The kernels (`loops.py`) and the `Cell`'s methods (`bodies.py`) are built as lists of lines with
the writers of `kernel.py`; the tables of the `Cell` and its docstring's summaries come from
`tables.py`; the Jinja2 template (`render.py`) only lays them out. Names in the emitted code: a forward value keeps its spec name,
its gradient is `d_<name>`, and everything the compiler adds starts with `_`, which spec names
cannot: arrays are named by `buffers.buffer_name` from their role (`_seq_h`, `_G_x`), loop
indices are `_t _b _j`, sizes `_n_<dim>`.
"""

from __future__ import annotations

import functools
import hashlib
import os

from ... import __version__
from ...autodiff import backward_equations
from ...buffers import Role
from ...phases import LOOP, PRE
from ...schedule import Schedule
from . import tables
from .bodies import Bodies
from .kernel import KERNEL_DECORATOR, Kernel
from .loops import Kernels
from .render import render, spec_display_path


# the modules a generated module takes jitted code from: what its kernels compile into themselves
# (blas's `matmul` overload, fastmath's functions, owned's `meet`) and sums's `column_sums`,
# which its `_backward` calls
COMPILED_IN = ("blas.py", "fastmath.py", "owned.py", "sums.py")


@functools.cache
def compiled_in_digest() -> str:
    """sha256 over the COMPILED_IN modules' bytes, for every generated module's header: Numba keys
    a kernel's cache on the stamp of the kernel's own file, not on what the kernel inlines, so a
    change to those modules must change the generated file (a rebuild writes a new one, and
    Numba compiles its kernels again instead of loading ones built on the old code)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    h = hashlib.sha256()
    for name in COMPILED_IN:
        with open(os.path.join(root, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


class Emitter:
    """A schedule's module: its kernels (`loops.py`), the methods of its `Cell` (`bodies.py`), its
    tables and docstring (`tables.py`), laid out by the template (`render.py`)."""

    def __init__(self, sched: Schedule):
        self.s = sched
        self.cell = sched.cell
        self.kernels = Kernels(sched)
        self.bodies = Bodies(self.kernels)

    @property
    def placed(self) -> set:
        return self.kernels.placed

    def unplaced(self) -> list:
        return self.kernels.unplaced()

    def module(self) -> str:
        s, cell, k = self.s, self.cell, self.kernels
        pre_f = {ph.index: kern for ph in s.phases[PRE] if (kern := k.pre_forward(ph.index))}
        loop_f = k.loop_forward()
        # an inference pass (forward with tape=False) runs twins of the forward kernels that
        # skip the stores only the backward pass reads: of the tape, all but the states and
        # what the forward pass itself reads on
        for g in s.groups.values():
            if g.region == PRE:
                k.forward_reads.add(s.read_fwd[g.operand].array)
        kept = k.forward_reads | {s.read_fwd[o].array for o in cell.outputs}
        skip = frozenset(a for a in s.saved() if a not in kept and a.role is not Role.STATES)
        infer: dict[str, Kernel] = {}
        if skip:
            twins = [(kern, k.pre_forward(i, "_pre_infer", skip)) for i, kern in pre_f.items()]
            twins.append((loop_f, k.loop_forward("_loop_infer", skip)))
            # a kernel that stores nothing of the tape-only arrays needs no twin
            infer = {kern.name: twin for kern, twin in twins if any(a in skip for a in kern.arrays)}
        # the step kernel that keeps its weights (cellspec.owned), for inference calls alone: a
        # taped call's backward pass would run on one core
        owned = k.owned_dim()
        loop_o = k.loop_forward("_loop_infer_owned", skip, owned) if owned else None
        # the dseq twin first, from a copy of what the kernels so far assigned and placed: both
        # twins assign and place the same terms, and what comes after must see them once
        assigned, placed = set(k.assigned), set(k.placed)
        loop_bd = k.loop_backward(dseq=True)
        k.assigned, k.placed = assigned, placed
        loop_b = k.loop_backward()
        pre_b = {ph.index: kern for ph in reversed(s.phases[PRE]) if (kern := k.pre_backward(ph.index))}
        kernels = [*pre_f.values(), loop_f, *infer.values(), *([loop_o] if loop_o else []), loop_b, loop_bd, *pre_b.values()]
        kernel_sources = [kern.source(cell.dims) for kern in kernels]
        read = {a.value for kern in kernels for a in kern.arrays if a.role is Role.INPUT} & set(self.bodies.packed_inputs)
        if read:
            raise AssertionError(f"cellspec's emitter: a kernel of {cell.name} reads the packed inputs {sorted(read)}")
        forward = self.bodies.forward_body(pre_f, loop_f, infer, loop_o)
        backward = self.bodies.backward_body(pre_b, loop_b, loop_bd)
        missing = self.unplaced()
        if missing:
            raise AssertionError(f"cellspec's emitter left out terms of the backward plan of {cell.name}: {missing}")
        inits = tables.inits(cell)
        functions = sorted(k.printer.functions)
        context = {
            "name": cell.name,
            "summary": cell.summary,
            "cite": cell.cite,
            "spec_path": spec_display_path(cell.path),
            "sha256": cell.sha256,
            "version": __version__,
            "compiled_in": compiled_in_digest(),
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
            "params": [(p.name, p.shape) for p in cell.params],
            "tape": tables.tape(s),
            "tape_params": tables.tape_params(cell, s),
            "transcendentals": tables.transcendentals(cell),
            "packed_inputs": self.bodies.packed_inputs,
            "packed_dy": tuple(o for o in cell.outputs if s.buf(Role.D_OUTPUT, o).packed),
            "torch": cell.torch,
            "bias_sums": bool(s.bias_of),
            "owned": {"dim": owned, "weights": [(g.operand_dim, len(g.rows)) for g in s.phases[LOOP][0].groups]} if owned else None,
            "param_inits": inits,
            "forward_body": forward,
            "backward_body": backward,
        }
        return render(context)


def emit_module(sched: Schedule) -> str:
    return Emitter(sched).module()
