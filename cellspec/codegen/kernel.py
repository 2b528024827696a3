"""The writers that generated code is built with: lines under managed indentation (`Writer`),
and an njit kernel that records the arrays it touches and reads stacked arrays through row views
(`Kernel`)."""

from __future__ import annotations

from contextlib import contextmanager

import sympy

from ..schedule import Access
from .printer import NumbaPrinter

# no nnan/ninf: the kernels must keep NaN and inf as IEEE has them
KERNEL_DECORATOR = '@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})'


class Writer:
    """Lines of code with an indentation level managed by `with w.block(header):`."""

    def __init__(self):
        self.lines: list[str] = []
        self.level = 0

    def line(self, text: str = "") -> None:
        self.lines.append("    " * self.level + text if text else "")

    @contextmanager
    def block(self, header: str):
        self.line(header)
        self.level += 1
        yield
        self.level -= 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def size(dims: tuple[str, ...]) -> str:
    """The size of stacked dims as code: ("hidden", "hidden", "proj") -> "2*_n_hidden + _n_proj"."""
    counts: dict[str, int] = {}
    for d in dims:
        counts[d] = counts.get(d, 0) + 1
    return " + ".join(f"_n_{d}" if c == 1 else f"{c}*_n_{d}" for d, c in counts.items()) if dims else "0"


# an access's row, taken once per batch row: index kind -> (view name prefix, row of the array)
ROW_VIEWS = {"tbj": ("_rt", "_t, _b"), "next": ("_rn", "_t + 1, _b"), "bj": ("_rb", "_b")}


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
    parameters, in order of first use."""

    def __init__(self, name: str, printer: NumbaPrinter, widths: dict[str, tuple[str, ...]]):
        super().__init__()
        self.name = name
        self.printer = printer
        # the dims of each allocated array's last axis: a row of one dim needs no slicing
        self.widths = widths
        self.arrays: list[str] = []
        self.dims: set[str] = set()
        self.temps = 0
        # the fused loop being written (see rows_loop): its dim, and its views by access, else None
        self.loop_dim = ""
        self.views: dict[tuple, tuple[str, str]] | None = None

    def use(self, array: str) -> str:
        if array not in self.arrays:
            self.arrays.append(array)
        return array

    def at(self, acc: Access) -> str:
        if acc.index == "step":
            # the step index is a number of the kernel's float type, as every other value is:
            # an integer would not type in the fastmath functions (max(t, 1))
            return "_F(_t)"
        self.use(acc.array)
        self.dims.update(acc.offset)
        if self.views is not None and acc.index in ROW_VIEWS:
            prefix, row = ROW_VIEWS[acc.index]
            lo, hi = size(acc.offset), size(acc.offset + (self.loop_dim,))
            if acc.offset:
                cut = f"{row}, {lo}:{hi}"
            else:
                cut = row if self.widths.get(acc.array) == (self.loop_dim,) else f"{row}, :{hi}"
            name = f"{prefix}{acc.array}_{len(self.views)}"
            return self.views.setdefault((acc.array, acc.index, acc.offset), (name, f"{acc.array}[{cut}]"))[0] + "[_j]"
        j = f"_j + {size(acc.offset)}" if acc.offset else "_j"
        index = {"tbj": f"_t, _b, {j}", "next": f"_t + 1, _b, {j}", "bj": f"_b, {j}", "j": j}[acc.index]
        return f"{acc.array}[{index}]"

    @contextmanager
    def rows_loop(self, dim: str):
        """`for _b: for _j in range(_n_dim):`, every [.., _b, _j + offset] access of the body made
        through a view taken once per _b, of exactly the loop's length
        (`_rt_G_x_1 = _G_x[_t, _b, _n_hidden:2*_n_hidden]`, then `_rt_G_x_1[_j]`).

        Indexed through the whole array, or through open-ended rows (`_G_x[_t, _b, _n_hidden:]`),
        the LSTM's backward loop, which stores into four column blocks of one array, ran its
        elementwise work 2.5 to 3 times slower (T,B,H 100,16,128: 3.4-3.9 ms against 1.3); a
        whole forward+backward, with 2 threads, took 0.84-0.97 of its time at S1-S5."""
        self.dims.add(dim)
        self.loop_dim = dim
        with self.block("for _b in range(_B):"):
            at, self.views = len(self.lines), {}
            with self.block(f"for _j in range(_n_{dim}):"):
                yield
            rows = [f"{'    ' * self.level}{v} = {e}" for v, e in self.views.values()]
            self.lines[at:at] = rows
            self.views = None

    def rows(self, acc: Access) -> str:
        """The [B, n] slice of step t of an array, as a matrix operand."""
        self.use(acc.array)
        return {"tbj": f"{acc.array}[_t]", "next": f"{acc.array}[_t + 1]", "bj": acc.array}[acc.index]

    def expr(self, e: sympy.Expr) -> str:
        return self.printer.doprint(e)

    def source(self, all_dims: tuple[str, ...]) -> str:
        dims = [d for d in all_dims if d in self.dims]
        flags = ["_has_dseq"] if any(a.startswith("_dseq_") for a in self.arrays) else []
        params = ["_T", "_B", *(f"_n_{d}" for d in dims), *flags, *self.arrays]
        self.params = params
        head = f"def {self.name}({', '.join(params)}):"
        # the kernel's float type, for its constants: float64 accumulators excepted
        typed_by = next(a for a in self.arrays if not a.startswith("_acc_"))
        body = [f"    _F = {typed_by}.dtype.type"] + ["    " + ln if ln else "" for ln in self.lines]
        return head + "\n" + "\n".join(body) + "\n"
