"""The bench's peers that are printed or walked from a cell's IR: a TorchScript loop over the
same equations, and JAX's `lax.scan` over the same nodes."""

from __future__ import annotations

import numpy as np
import sympy
from sympy.printing.pycode import PythonCodePrinter

from ..ir import Cell, Elementwise, Product
from ..ops import FUNCTIONS

class _TorchPrinter(PythonCodePrinter):
    """SymPy as TorchScript tensor code."""

    def __init__(self):
        super().__init__({"strict": True, "fully_qualified_modules": True})

    def _print_Function(self, expr):
        row = FUNCTIONS.get(type(expr))
        if row is None or row.torch is None:
            raise NotImplementedError(type(expr).__name__)
        return row.torch.format(*(self._print(a) for a in expr.args))

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sympy.S.Half:
            return f"torch.sqrt({self._print(base)})"
        return f"torch.pow({self._print(base)}, {float(exp)!r})"

    def _print_Integer(self, expr):
        return f"{int(expr)}.0"

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Piecewise(self, expr):
        (a, cond), (b, _) = expr.args
        return f"torch.where({self._print(cond)}, {self._print(a)}, {self._print(b)})"


# SymPy's printer has methods of its own for some of the table's classes (tanh, exp, log, sign)
for _row in FUNCTIONS.values():
    setattr(_TorchPrinter, f"_print_{_row.cls.__name__}", _TorchPrinter._print_Function)


def torchscript_source(cell: Cell) -> str | None:
    """A TorchScript function `loop(inputs..., states..., params...) -> (outputs..., finals...)`
    that runs the cell's equations one step at a time, products as `v @ W.t()`. None for a cell
    this printer cannot express (the step index, constants)."""
    if cell.step or cell.constants:
        return None
    printer = _TorchPrinter()
    args = [f"in_{x}: torch.Tensor" for x in cell.inputs] + [f"init_{s}: torch.Tensor" for s in cell.states]
    args += [f"{p.name}: torch.Tensor" for p in cell.params]
    lines = [f"def loop({', '.join(args)}):"]
    for s in cell.states:
        lines.append(f"    {s} = init_{s}")
    for o in cell.outputs:
        lines.append(f"    ys_{o} = []")
    first = next(iter(cell.inputs))
    lines.append(f"    for t in range(in_{first}.shape[0]):")
    for x in cell.inputs:
        lines.append(f"        {x} = in_{x}[t]")
    for n in cell.nodes.values():
        if isinstance(n, Product):
            lines.append(f"        {n.name} = {n.operand} @ {n.weight}.t()")
        elif isinstance(n, Elementwise):
            lines.append(f"        {n.name} = {printer.doprint(n.expr)}")
    for o in cell.outputs:
        lines.append(f"        ys_{o}.append({o})")
    for s, n in cell.updates.items():
        lines.append(f"        {s} = {n}")
    results = [f"torch.stack(ys_{o})" for o in cell.outputs] + list(cell.states)
    lines.append(f"    return {', '.join(results)}")
    return "\n".join(lines) + "\n"


def jax_peer(cell_ir: Cell, cell, xs: dict[str, np.ndarray], sizes: dict[str, int]):
    """JAX's `lax.scan` over the cell's IR, jitted, with `value_and_grad` of the sum of the outputs
    (so dy = 1, as for the other peers) with respect to the params and inputs. The step walks the
    same IR nodes as the NumPy reference interpreter, with jax.numpy: no source is printed or
    executed. None if JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    from ..reference import run_nodes

    B = next(iter(xs.values())).shape[1]
    params = {k: jnp.asarray(v) for k, v in cell.params.items()}
    masks = {k: jnp.asarray(v) for k, v in cell.masks.items()}
    constants = {k: jnp.asarray(v) for k, v in cell.constants.items()}
    inputs = {k: jnp.asarray(v) for k, v in xs.items()}
    state0 = {s: jnp.zeros((B, sizes[d]), jnp.float32) for s, d in cell_ir.states.items()}

    def loss(params, inputs):
        def weight(name):
            return params[name] * masks[name] if name in masks else params[name]

        def step(carry, x_t):
            state, t = carry
            env = {**x_t, **state, **constants, **{k: v for k, v in params.items() if k in cell_ir.vectors}}
            if cell_ir.step:
                env[cell_ir.step] = t
            env = run_nodes(cell_ir, env, weight, B, sizes, jnp, jnp.float32)
            total = sum(env[o].sum() for o in cell_ir.outputs)
            return ({s: env[n] for s, n in cell_ir.updates.items()}, t + 1.0), total

        _, totals = jax.lax.scan(step, (state0, jnp.float32(0.0)), inputs)
        return totals.sum()

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    def run():
        jax.block_until_ready(grad(params, inputs))

    return run
