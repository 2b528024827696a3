"""A plain NumPy interpreter of the IR: the oracle for tests.

It runs a cell one step at a time straight from its IR, with none of the schedule (no hoisting,
no fusion, no shared gradients), and backpropagates through time by evaluating, term by term, the
derivative plan that `autodiff` derived: the plan the emitted kernels are placed from. Checking it
against finite differences checks the derivation; checking the generated code against it checks
the schedule and the emitted kernels.
"""

from __future__ import annotations

import numpy as np
import sympy

from .autodiff import Outer, Plan, Sink, Transpose
from .ir import Cell, Product
from .ops import FUNCTIONS


def _functions(xp) -> dict:
    """The IR's functions with the array namespace `xp` (numpy, or jax.numpy for the bench's JAX
    peer), each in its stable form."""
    return {cls: row.numpy(xp) for cls, row in FUNCTIONS.items()}


_RELATIONS = {
    sympy.StrictGreaterThan: "greater",
    sympy.GreaterThan: "greater_equal",
    sympy.StrictLessThan: "less",
    sympy.LessThan: "less_equal",
    sympy.Equality: "equal",
    sympy.Unequality: "not_equal",
}
_TABLES: dict[str, dict] = {}


def evaluate(expr: sympy.Expr, env: dict, xp=np):
    """The value of a SymPy expression of the IR, with arrays of the namespace `xp` for its symbols."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_Number:
        return float(expr)
    lazy = isinstance(expr, (sympy.Piecewise, sympy.And, sympy.Or, sympy.Not, sympy.ITE)) or expr in (sympy.true, sympy.false)
    args = None if lazy else [evaluate(a, env, xp) for a in expr.args]
    if expr.is_Add:
        return sum(args[1:], args[0])
    if expr.is_Mul:
        out = args[0]
        for a in args[1:]:
            out = out * a
        return out
    if expr.is_Pow:
        return xp.power(args[0], args[1])
    if isinstance(expr, sympy.Mod):
        return xp.mod(args[0], args[1])
    if isinstance(expr, sympy.Piecewise):
        # the first piece whose condition holds
        out = evaluate(expr.args[-1][0], env, xp)
        for value, cond in reversed(expr.args[:-1]):
            out = xp.where(evaluate(cond, env, xp), evaluate(value, env, xp), out)
        return out
    if expr is sympy.true or expr is sympy.false:
        return bool(expr)
    if isinstance(expr, (sympy.And, sympy.Or)):
        parts = [evaluate(a, env, xp) for a in expr.args]
        combine = xp.logical_and if isinstance(expr, sympy.And) else xp.logical_or
        out = parts[0]
        for p in parts[1:]:
            out = combine(out, p)
        return out
    if isinstance(expr, sympy.Not):
        return xp.logical_not(evaluate(expr.args[0], env, xp))
    if isinstance(expr, sympy.ITE):
        cond, a, b = expr.args
        return xp.where(evaluate(cond, env, xp), evaluate(a, env, xp), evaluate(b, env, xp))
    if type(expr) in _RELATIONS:
        return getattr(xp, _RELATIONS[type(expr)])(args[0], args[1])
    table = _TABLES.get(xp.__name__)
    if table is None:
        table = _TABLES[xp.__name__] = _functions(xp)
    fn = table.get(type(expr))
    if fn is None:
        raise NotImplementedError(f"no reference for {type(expr).__name__}")
    return fn(*args)


def run_nodes(cell: Cell, env: dict, weight, batch: int, sizes: dict[str, int], xp=np, dtype=float) -> dict:
    """One step of the cell: every node of the IR in order, added to `env` (which holds the
    step's inputs, the states at t-1, the vector params and constants). `weight(name)` gives a
    matrix param as it multiplies (masked)."""
    for n in cell.nodes.values():
        if isinstance(n, Product):
            env[n.name] = env[n.operand] @ weight(n.weight).T
        else:
            env[n.name] = xp.broadcast_to(evaluate(n.expr, env, xp), (batch, sizes[n.dim])).astype(dtype)
    return env


class Reference:
    """`forward` and `backward` with the generated Cell's API (dicts of float64 arrays), for a
    cell's IR and its derivative."""

    def __init__(self, cell: Cell, plan: Plan, sizes: dict[str, int], params: dict[str, np.ndarray], constants: dict[str, np.ndarray] | None = None, masks: dict[str, np.ndarray] | None = None):
        self.cell = cell
        self.plan = plan
        self.sizes = sizes
        self.params = params
        self.constants = constants or {}
        self.masks = masks or {}

    def _weight(self, name: str) -> np.ndarray:
        w = self.params[name]
        return w * self.masks[name] if name in self.masks else w

    def _step(self, t: int, xs: dict, state: dict) -> dict:
        cell = self.cell
        env = {**{k: v[t] for k, v in xs.items()}, **state, **self.constants}
        env.update({k: v for k, v in self.params.items() if k in cell.vectors})
        if cell.step:
            env[cell.step] = float(t)
        return run_nodes(cell, env, self._weight, next(iter(xs.values())).shape[1], self.sizes)

    def forward(self, x, state=None):
        cell = self.cell
        xs = x if isinstance(x, dict) else {next(iter(cell.inputs)): x}
        T, B = next(iter(xs.values())).shape[:2]
        state = dict(state) if state else {s: np.zeros((B, self.sizes[d])) for s, d in cell.states.items()}
        envs, ys = [], {o: [] for o in cell.outputs}
        for t in range(T):
            env = self._step(t, xs, state)
            envs.append(env)
            for o in cell.outputs:
                ys[o].append(env[o])
            state = {s: env[n] for s, n in cell.updates.items()}
        y = {o: np.stack(v) for o, v in ys.items()}
        return (y if len(y) > 1 else next(iter(y.values()))), state, (xs, envs)

    def backward(self, tape, dy, dstate=None):
        """Backpropagation through time by evaluating the derivative plan, term by term."""
        cell, plan = self.cell, self.plan
        xs, envs = tape
        dys = dy if isinstance(dy, dict) else {cell.outputs[0]: dy}
        T = len(envs)
        carry = {s: (dstate[s] if dstate else np.zeros_like(envs[-1][n])) for s, n in cell.updates.items()}
        dparams = {k: np.zeros_like(v) for k, v in self.params.items()}
        dxs = {k: np.zeros_like(v) for k, v in xs.items()}
        for t in range(T - 1, -1, -1):
            env = envs[t]
            d = {}

            def value(term):
                if isinstance(term, Sink):
                    return carry[term.name] if term.kind == "state" else dys[term.name][t]
                if isinstance(term, Transpose):
                    return d[term.product] @ self._weight(term.weight)
                return d[term.user] * evaluate(term.partial, env)

            for a in plan.adjoints:
                parts = [value(term) for term in a.terms]
                d[a.value] = sum(parts[1:], parts[0])
            for g in plan.params:
                for term in g.terms:
                    if isinstance(term, Outer):
                        dW = d[term.product].T @ env[term.operand]
                        dparams[g.param] += dW * self.masks[g.param] if g.param in self.masks else dW
                    else:
                        dparams[g.param] += np.asarray(value(term)).sum(axis=0)
            for k in dxs:
                if k in d:
                    dxs[k][t] = d[k]
            carry = {s: d.get(s, np.zeros_like(carry[s])) for s in cell.states}
        dx = dxs if len(dxs) > 1 else next(iter(dxs.values()))
        return dx, dparams, carry
