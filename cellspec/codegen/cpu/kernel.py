"""The writers that generated code is built with: lines under managed indentation (`Writer`),
and an njit kernel that records the arrays it touches and reads stacked arrays through row views
(`Kernel`)."""

from __future__ import annotations

import re
import textwrap
from contextlib import contextmanager

import sympy

from ...buffers import Access, Buffer, Role, shape_text
from .printer import NumbaPrinter
from .render import docstring_escape

# no nnan/ninf: the kernels must keep NaN and inf as IEEE has them
KERNEL_DECORATOR = '@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})'


class Writer:
    """Lines of code with an indentation level managed by `with w.block(header):`."""

    def __init__(self):
        self.lines: list[str] = []
        self.level = 0
        # (line index, name) of each `define`
        self.definitions: list[tuple[int, str]] = []

    def line(self, text: str = "") -> None:
        self.lines.append("    " * self.level + text if text else "")

    def define(self, name: str, value: str) -> None:
        """`name = value`, left out of `text()` when no other line reads name (a size, a param or
        a saved array that this pass does not need): the generated code has no dead lines."""
        self.line(f"{name} = {value}")
        self.definitions.append((len(self.lines) - 1, name))

    @contextmanager
    def block(self, header: str):
        self.line(header)
        self.level += 1
        yield
        self.level -= 1

    def text(self) -> str:
        dropped: set[int] = set()
        reads = [(i, re.compile(rf"(?<![\w.]){re.escape(name)}\b")) for i, name in self.definitions]
        changed = True
        while changed:
            # dropping a definition can leave another one unread (_rows reads _T)
            changed = False
            for i, read in reads:
                if i not in dropped and not any(read.search(ln) for j, ln in enumerate(self.lines) if j != i and j not in dropped):
                    dropped.add(i)
                    changed = True
        return "\n".join(ln for j, ln in enumerate(self.lines) if j not in dropped) + "\n"


def size(dims: tuple[str, ...]) -> str:
    """The size of stacked dims as code: ("hidden", "hidden", "proj") -> "2*_n_hidden + _n_proj"."""
    counts: dict[str, int] = {}
    for d in dims:
        counts[d] = counts.get(d, 0) + 1
    return " + ".join(f"_n_{d}" if c == 1 else f"{c}*_n_{d}" for d, c in counts.items()) if dims else "0"


def window(cols: tuple[tuple[str, ...], tuple[str, ...]] | None) -> str | None:
    """A group's column window of its gradient array (`Schedule.dG_columns`) as code, "lo:hi";
    None for the whole array."""
    return None if cols is None else f"{size(cols[0])}:{size(cols[0] + cols[1])}"


# an access's row, taken once per batch row: index kind -> (view name prefix, row of the array)
ROW_VIEWS = {"tbj": ("_rt", "_t, _b"), "next": ("_rn", "_t + 1, _b"), "bj": ("_rb", "_b")}
# the row of step t's row _b in a packed array ([rows, n], Buffer.packed): the time-loop kernels
# keep `_o`, the offset of step t's rows
PACKED_ROW = "_o + _b"


def join_terms(terms: list[str]) -> str:
    """Sum printed terms, writing `a - b` rather than `a + -b`."""
    if not terms:
        return "0.0"
    out = terms[0]
    for t in terms[1:]:
        out += f" - {t[1:]}" if t.startswith("-") else f" + {t}"
    return out


class Kernel(Writer):
    """An njit function being written: it records the arrays it touches, which become its
    parameters, in order of first use, and documents each of them (see `source`)."""

    def __init__(self, name: str, printer: NumbaPrinter, summary: str):
        super().__init__()
        self.name = name
        self.printer = printer
        self.summary = summary
        self.arrays: list[Buffer] = []
        self.dims: set[str] = set()
        self.temps = 0
        # the fused loop being written (see rows_loop): its dim, and its views by access, else None
        self.loop_dim = ""
        self.views: dict[tuple, tuple[str, str]] | None = None
        # compiler-made values read in this kernel -> what they are, for the docstring
        self.names: dict[str, str] = {}
        # a time-loop kernel runs each step on the rows still inside their sequences, the first
        # `_nb = _active[_t]` of a batch sorted longest first (see Kernels.past_the_end)
        self.ragged = False
        self.bound = "_B"
        # whether it reads or writes a packed array, at the step's offset `_o`; whether it reads
        # _B (set by `source`)
        self.offsets = False
        self.batch = True
        # the per-step arrays ([T, B, ..] rows at step t, or t+1) this kernel stores into
        self.step_writes: dict[tuple[Buffer, str], None] = {}
        # a step kernel that keeps its weights (cellspec.owned): the dim whose units `_u0:_u1` it
        # runs, its first parameters then being those and the barrier's
        self.owned = ""

    def ragged_steps(self) -> None:
        """Make this a time-loop kernel over variable lengths: its fused loops and products run
        on the first `_nb` rows of each step."""
        self.ragged = True
        self.bound = "_nb"

    def store(self, acc: Access, op: str, value: str) -> None:
        """`array[..] op value`, noting the per-step rows it writes."""
        if acc.index in ("tbj", "next"):
            self.step_writes[(acc.array, acc.index)] = None
        self.line(f"{self.at(acc)} {op} {value}")

    def use(self, array: Buffer) -> str:
        if array not in self.arrays:
            self.arrays.append(array)
        return array.name

    def at(self, acc: Access) -> str:
        if acc.index == "step":
            # the step index is a number of the kernel's float type, as every other value is:
            # an integer would not type in the fastmath functions (max(t, 1))
            return "_F(_t)"
        name = self.use(acc.array)
        self.dims.update(acc.offset)
        if self.views is not None and acc.index in ROW_VIEWS:
            prefix, row = ROW_VIEWS[acc.index]
            if acc.array.packed:
                row = self.packed_row()
            lo, hi = size(acc.offset), size(acc.offset + (self.loop_dim,))
            if self.loop_dim == self.owned:
                cut = f"{row}, {self.units(acc.offset)}"
            elif acc.offset:
                cut = f"{row}, {lo}:{hi}"
            else:
                cut = row if acc.array.width == (self.loop_dim,) else f"{row}, :{hi}"
            view = f"{prefix}{name}_{len(self.views)}"
            return self.views.setdefault((acc.array, acc.index, acc.offset), (view, f"{name}[{cut}]"))[0] + "[_j]"
        if self.views is not None and acc.index == "j" and self.loop_dim == self.owned:
            view = f"_ru{name}_{len(self.views)}"
            return self.views.setdefault((acc.array, acc.index, acc.offset), (view, f"{name}[{self.units(acc.offset)}]"))[0] + "[_j]"
        j = f"_j + {size(acc.offset)}" if acc.offset else "_j"
        index = {"tbj": f"_t, _b, {j}", "next": f"_t + 1, _b, {j}", "bj": f"_b, {j}", "j": j}[acc.index]
        if acc.array.packed:
            assert acc.index == "tbj", acc
            index = f"{self.packed_row()}, {j}"
        return f"{name}[{index}]"

    def units(self, offset: tuple[str, ...]) -> str:
        """This thread's units `_u0:_u1` of the owned dim, after the stacked dims `offset`."""
        lo = f"{size(offset)} + " if offset else ""
        return f"{lo}_u0:{lo}_u1"

    def packed_row(self) -> str:
        assert self.ragged, "a packed array is read only in the time loop"
        self.offsets = True
        return PACKED_ROW

    @contextmanager
    def rows_loop(self, dim: str):
        """`for _b: for _j in range(_n_dim):`, every [.., _b, _j + offset] access of the body made
        through a view taken once per _b, of exactly the loop's length
        (`_rt_G_x_1 = _G_x[_t, _b, _n_hidden:2*_n_hidden]`, then `_rt_G_x_1[_j]`). In a step kernel
        that keeps its weights, the loop over the owned dim runs `range(_u1 - _u0)` through views of
        this thread's units (`_G_x[_t, _b, _n_hidden + _u0:_n_hidden + _u1]`, and the param vectors'
        `_w_b_f[_u0:_u1]`): indexed `[_j]` from `range(_u0, _u1)`, whose sign Numba cannot know, the
        LSTM's loop was not vectorised (its owned forward at S3 spent 5.5 ms on elementwise work
        the chunked loop does in 1.3).

        Indexed through the whole array, or through open-ended rows (`_G_x[_t, _b, _n_hidden:]`),
        the LSTM's backward loop, which stores into four column blocks of one array, ran its
        elementwise work 2.5 to 3 times slower (T,B,H 100,16,128: 3.4-3.9 ms against 1.3); a
        whole forward+backward, with 2 threads, took 0.84-0.97 of its time at S1-S5."""
        self.dims.add(dim)
        self.loop_dim = dim
        with self.block(f"for _b in range({self.bound}):"):
            at, self.views = len(self.lines), {}
            units = "_u1 - _u0" if dim == self.owned else f"_n_{dim}"
            with self.block(f"for _j in range({units}):"):
                yield
            rows = [f"{'    ' * self.level}{v} = {e}" for v, e in self.views.values()]
            self.lines[at:at] = rows
            self.views = None

    def rows(self, acc: Access, window: str | None = None) -> str:
        """The [B, n] slice of step t of an array, as a matrix operand; in a ragged kernel, its
        first `_nb` rows; with a `window` ("lo:hi"), those columns only (a strided matrix)."""
        name = self.use(acc.array)
        cols = "" if window is None else f", {window}"
        if acc.array.packed:
            self.packed_row()
            return f"{name}[_o:_o + _nb{cols}]"
        if self.ragged:
            return {"tbj": f"{name}[_t, :_nb{cols}]", "next": f"{name}[_t + 1, :_nb{cols}]", "bj": f"{name}[:_nb{cols}]"}[acc.index]
        if window is None:
            return {"tbj": f"{name}[_t]", "next": f"{name}[_t + 1]", "bj": name}[acc.index]
        return {"tbj": f"{name}[_t, :{cols}]", "next": f"{name}[_t + 1, :{cols}]", "bj": f"{name}[:{cols}]"}[acc.index]

    def expr(self, e: sympy.Expr) -> str:
        return self.printer.doprint(e)

    def source(self, all_dims: tuple[str, ...]) -> str:
        # a size no line reads is no parameter (a step kernel that keeps its weights runs its
        # units `_u0:_u1` and may read no other size)
        dims = [d for d in all_dims if d in self.dims and any(re.search(rf"\b_n_{d}\b", ln) for ln in self.lines)]
        # _B only where a line reads it: a time loop whose only per-step stores are packed has
        # no rows past the ends to run over
        self.batch = any(re.search(r"\b_B\b", ln) for ln in self.lines)
        owned = ["_u0", "_u1", "_P", "_barrier"] if self.owned else []
        params = [*owned, "_T", *(["_B"] if self.batch else []), *(f"_n_{d}" for d in dims), *(["_active"] if self.ragged else []), *(a.name for a in self.arrays)]
        self.params = params
        head = f"def {self.name}({', '.join(params)}):"
        # the kernel's float type, for its constants: float64 accumulators excepted
        typed_by = next(a.name for a in self.arrays if not a.float64)
        body = ["    " + ln if ln else "" for ln in self.lines]
        if any("_F(" in ln for ln in self.lines):
            body.insert(0, f"    _F = {typed_by}.dtype.type")
        return head + "\n" + self.docstring(dims) + "\n".join(body) + "\n"

    def docstring(self, dims: list[str]) -> str:
        """What every argument holds, and its shape; then the compiler-made values it reads."""
        lines = [*textwrap.wrap(self.summary, 92), ""]
        if self.owned:
            lines += [f"_u0, _u1: the units of {self.owned} this thread runs", "_P: the threads", "_barrier: [1] the steps the threads have finished, counted once per thread (cellspec.owned.meet)"]
        lines.append("_T, _B: the steps and the sequences of the batch" if self.batch else "_T: the steps")
        lines += [f"_n_{d}: the size of {d}" for d in dims]
        if self.ragged:
            lines.append("_active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first")
        if any(a.packed for a in self.arrays):
            lines.append("rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)")
        lines += [f"{a.name}: {shape_text(a.shape)} {a.holds}" for a in self.arrays]
        if self.names:
            lines += ["", "Values the compiler named:"]
            lines += [f"{n} = {what}" for n, what in sorted(self.names.items(), key=lambda kv: _natural(kv[0]))]
        text = "\n".join(("    " + ln if ln else "") for ln in lines)
        return '    """' + docstring_escape(text.lstrip()) + '\n    """\n'


def _natural(name: str) -> tuple:
    """_p10 after _p9."""
    head = name.rstrip("0123456789")
    return (head, int(name[len(head):] or 0))
