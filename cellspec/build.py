"""The pipeline, stage by stage: spec -> IR -> derivative -> schedule -> module source. Writing
modules to disk and importing them back is `files`; the cache of `load` is `cache`."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .autodiff import differentiate
from .codegen.cpu.emit import emit_module
from .codegen.cpu.verify import verify_module
from .ir import Cell, Elementwise, Product
from .schedule import Schedule, make_schedule, saved_per_step, tape_formula
from .spec import load_spec


@dataclass
class Built:
    cell: Cell
    schedule: Schedule
    source: str

    def report(self) -> list[str]:
        """Equations, parameters, values saved per step and FLOPs per step, for the CLI."""
        cell, s = self.cell, self.schedule
        lines = [f"{cell.name}: {cell.summary}"]
        for n, e in cell.equations_text:
            lines.append(f"  {n} = {e}")
        params = ", ".join(f"{p.name}[{','.join(p.shape)}]" for p in cell.params)
        lines.append(f"  params: {params}")
        saved = saved_per_step(cell, s)
        lines.append(f"  saved per step and sequence: {', '.join(n for n, _ in saved)} ({tape_formula(saved)} values)")
        lines.append(f"  FLOPs per step and sequence: {flops(cell)}")
        return lines


def flops(cell: Cell) -> str:
    """Matrix products count 2*rows*cols; elementwise work counts SymPy operations per unit."""
    terms: dict[str, int] = {}
    for n in cell.nodes.values():
        if isinstance(n, Product):
            m = cell.matrices[n.weight]
            key = f"{m.rows}*{m.cols}"
            terms[key] = terms.get(key, 0) + 2
        elif isinstance(n, Elementwise):
            terms[n.dim] = terms.get(n.dim, 0) + max(1, int(sympy.count_ops(n.expr)))
    return " + ".join(f"{c}*{k}" for k, c in terms.items())


def compile_spec(path: str, source: bytes | None = None) -> Built:
    spec = load_spec(path, source)
    from .lower import build_ir

    cell = build_ir(spec)
    schedule = make_schedule(cell, differentiate(cell))
    code = emit_module(schedule)
    # whatever the spec held, the module must be valid Python of exactly the expected shape
    verify_module(code, cell.name)
    return Built(cell, schedule, code)
