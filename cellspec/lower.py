"""Lowering: a spec to the IR (`build_ir`), every shape checked.

`_Builder` turns equations into nodes: each `W @ v` a `Product` (an operand that is an expression
gets an elementwise node of its own), and the parts of an expression that would make a node too
deep or too wide (`split`), or whose value the backward pass reads (`name_calls`), nodes of
their own.
"""

from __future__ import annotations

import sympy

from .errors import Location, SpecError, UnknownName
from .ir import Cell, Constant, Elementwise, Init, MatrixParam, Product, VectorParam, symbol
from .ops import FUNCTIONS, reads_own_value, unsupported
from .parse import parse_equation
from .parse_sizes import parse_constraint, parse_index_formula, parse_init
from .spec import Spec


# the most calls nested in one node, and its deepest expression (see _Builder.split)
MAX_CALL_DEPTH = 3
MAX_HEIGHT = 12
MAX_ARGS = 8


class _Builder:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.dims_of: dict[sympy.Symbol, str] = {}
        self.symbols: dict[str, sympy.Symbol] = {}
        # the names a spec may use: all but the compiler's own nodes (_p0, _v0, _e0)
        self.visible: dict[str, sympy.Symbol] = {}
        self.nodes: dict[str, Product | Elementwise] = {}
        self.products: dict[tuple[str, str], str] = {}
        self.operands: dict[sympy.Expr, str] = {}
        self.matrices: dict[str, tuple[str, str]] = {}
        self.vectors: set[str] = set()
        self.used: set[str] = set()
        self.canon: dict[str, str] = {}
        self.split_nodes: dict[sympy.Expr, str] = {}

    def declare(self, name: str, dim: str, visible: bool = True) -> None:
        s = symbol(name)
        self.symbols[name] = s
        if visible:
            self.visible[name] = s
        # dims made equal by a constraint compare as one
        self.dims_of[s] = self.canon[dim]

    def dim_of(self, expr: sympy.Expr, where: Location) -> str | None:
        dims = {self.dims_of[s] for s in expr.free_symbols if s in self.dims_of}
        if len(dims) > 1:
            raise SpecError(f"elementwise operation mixes vectors of dims {', '.join(sorted(dims))}", where)
        return dims.pop() if dims else None

    def product(self, weight: str, weight_where: Location, operand: sympy.Expr, operand_where: Location) -> sympy.Symbol:
        rows, cols = self.matrices[weight]
        self.used.add(weight)
        dim = self.dim_of(operand, operand_where)
        if dim != self.canon[cols]:
            raise SpecError(f"{weight} is [{rows}, {cols}] but its operand is a [{dim}] vector", operand_where)
        if isinstance(operand, sympy.Symbol) and operand.name in self.vectors:
            raise SpecError(f"{weight} @ {operand.name} multiplies two params, a constant: use a vector param instead", operand_where)
        # an operand that is a product's value gets a node of its own, like any expression: a
        # group's operand must be a value stored whole, not a column block of another group
        operand = self.name_calls(self.split(operand, operand_where), operand_where)
        if isinstance(operand, sympy.Symbol) and not isinstance(self.nodes.get(operand.name), Product):
            operand_name = operand.name
        elif operand in self.operands:
            operand_name = self.operands[operand]
        else:
            operand_name = f"_v{len(self.operands)}"
            self.operands[operand] = operand_name
            self.add(Elementwise(operand_name, operand, dim, _arg_names(operand), equation=False, where=operand_where, made_for="operand"))
        key = (weight, operand_name)
        if key not in self.products:
            name = f"_p{len(self.products)}"
            self.products[key] = name
            self.add(Product(name, weight, operand_name, self.canon[rows]))
        return self.symbols[self.products[key]]

    def split(self, expr: sympy.Expr, where: Location) -> sympy.Expr:
        """Bound the size of every node: a function applied to an argument that already holds
        MAX_CALL_DEPTH nested calls, or a subexpression MAX_HEIGHT deep, becomes a node of its
        own, one per distinct subexpression, and a sum or product of more than MAX_ARGS terms
        is summed or multiplied in nodes of MAX_ARGS terms (a tree of them). SymPy's
        derivatives, assumptions and printing grow exponentially with nesting (tanh of tanh, 13 deep, did not build in 150 s; 150 deep
        overflowed the stack in sympy.diff); on small nodes every stage stays linear in the
        spec's size. The catalog's cells nest at most two calls and four levels, so none splits."""
        memo: dict[sympy.Basic, tuple[sympy.Basic, int, int]] = {}
        splittable = self.splittable

        def node_for(e: sympy.Expr) -> sympy.Symbol:
            return self.node_for(e, where)

        def walk(e):
            """(e with its deep parts replaced, its height, its depth of nested calls)"""
            if e in memo:
                return memo[e]
            if not e.args:
                memo[e] = (e, 0, 0)
                return memo[e]
            parts = [walk(a) for a in e.args]
            is_call = isinstance(e, sympy.Function)
            if is_call and max(c for _, _, c in parts) >= MAX_CALL_DEPTH:
                parts = [(node_for(a), 0, 0) if c and splittable(a) else (a, h, c) for a, h, c in parts]
            while (e.is_Add or e.is_Mul) and len(parts) > MAX_ARGS:
                # a wide sum or product: its derivative has a term per pair of arguments
                chunks = [parts[k : k + MAX_ARGS] for k in range(0, len(parts), MAX_ARGS)]
                parts = []
                for chunk in chunks:
                    part = e.func(*(a for a, _, _ in chunk))
                    parts.append((node_for(part), 0, 0) if splittable(part) else (part, 1 + max(h for _, h, _ in chunk), max(c for _, _, c in chunk)))
            args = [a for a, _, _ in parts]
            changed = len(args) != len(e.args) or any(a is not b for a, b in zip(args, e.args))
            out = e.func(*args) if changed else e
            result = (out, 1 + max(h for _, h, _ in parts), int(is_call) + max(c for _, _, c in parts))
            if result[1] >= MAX_HEIGHT and splittable(out):
                result = (node_for(out), 0, 0)
            memo[e] = result
            return result

        return walk(expr)[0]

    def node_for(self, e: sympy.Expr, where: Location, made_for: str = "split") -> sympy.Symbol:
        """A compiler-made node (`_e0`) for a subexpression, one per distinct subexpression."""
        name = self.split_nodes.get(e)
        if name is None:
            name = self.split_nodes[e] = f"_e{len(self.split_nodes)}"
            self.add(Elementwise(name, e, self.dim_of(e, where), _arg_names(e), equation=False, where=where, made_for=made_for))
        return self.symbols[name]

    def splittable(self, e) -> bool:
        # a node is a vector: a part of only the step and numbers stays where it is
        return isinstance(e, sympy.Expr) and not e.is_Atom and any(s in self.dims_of for s in e.free_symbols)

    def name_calls(self, expr: sympy.Expr, where: Location) -> sympy.Expr:
        """Give a node of its own to the parts of an expression whose value its backward pass
        reads, as if the spec had written each as an equation, so that how a spec is split into
        equations does not change what the tape keeps:

        * a call whose derivative is written in its own value (tanh, sigmoid, exp, relu:
          `ops.reads_own_value`) of more than a value: the backward pass reads the call's value,
          not its argument (the products of every step). A call of a value (tanh(c)) stays,
          and the backward pass recomputes it, as it does a one-call equation `a: tanh(c)`;
        * a sum of two or more computed values (`W @ x + U @ h + b`) that is a factor, a power's
          base or the argument of another call: its derivatives read the sum, one value, rather
          than each of its terms."""

        def computed(e) -> int:
            return len({s for s in e.free_symbols if s.name in self.nodes})

        def walk(e, context: str, branch: bool):
            """context: "top" (the node itself), "sum" (a term, whose derivative is 1), "read"
            (a part whose value the derivatives read), "other" (a condition, a remainder).
            `branch`: inside a where()'s branch, whose gradient is its indicator times the
            where()'s: a call that can be inf gets no node there, since 0 * inf is NaN."""
            if not e.args:
                return e
            own = isinstance(e, sympy.Function) and reads_own_value(type(e))
            if isinstance(e, sympy.Piecewise):
                pieces = [(walk(v, "sum", True), walk(c, "other", branch)) for v, c in e.args]
                same = all(v is a.args[0] and c is a.args[1] for (v, c), a in zip(pieces, e.args))
                return e if same else e.func(*pieces)
            if isinstance(e, sympy.ITE):
                args = (walk(e.args[0], "other", branch), walk(e.args[1], "sum", True), walk(e.args[2], "sum", True))
                return e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)
            if e.is_Add:
                inner = "sum" if context in ("top", "sum") else context
            elif own:
                inner = "sum"
            elif e.is_Mul or e.is_Pow or (isinstance(e, sympy.Function) and type(e) in FUNCTIONS):
                inner = "read"
            else:
                inner = "other"
            args = [walk(a, inner, branch) for a in e.args]
            out = e.func(*args) if any(a is not b for a, b in zip(args, e.args)) else e
            if context in ("sum", "read") and self.splittable(out):
                if own and not out.args[0].is_Symbol and (FUNCTIONS[type(out)].bounded or not branch):
                    return self.node_for(out, where, "named")
                if out.is_Add and context == "read" and computed(out) >= 2:
                    return self.node_for(out, where, "named")
            return out

        return walk(expr, "top", False)

    def add(self, node: Product | Elementwise) -> None:
        if isinstance(node, Elementwise):
            bad = unsupported(node.expr)
            if bad is not None:
                raise SpecError(f"SymPy makes {bad} of this expression, which no kernel computes", node.where)
        self.nodes[node.name] = node
        self.declare(node.name, node.dim, visible=isinstance(node, Elementwise) and node.equation)
        self.used.update(node.args)


def _arg_names(expr: sympy.Expr) -> tuple[str, ...]:
    return tuple(sorted(s.name for s in expr.free_symbols))


def _canonical_dims(spec: Spec) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Each dim -> the first-declared dim that a constraint makes it equal to."""
    canon = {d: d for d in spec.dims}

    def find(d: str) -> str:
        while canon[d] != d:
            d = canon[d]
        return d

    pairs = []
    for text in spec.constraints:
        a, b = parse_constraint(text, set(spec.dims))
        ra, rb = find(a), find(b)
        # the representative is a state's dim where there is one (hidden rather than input)
        state_dims = {v.dim for v in spec.states}
        first, second = sorted((ra, rb), key=lambda d: (d not in state_dims, spec.dims.index(d)))
        canon[second] = first
        pairs.append((a, b))
    return {d: find(d) for d in spec.dims}, tuple(pairs)


def build_ir(spec: Spec) -> Cell:
    """The IR of a spec: its values declared, then its params, equations, updates and outputs
    read in that order, every name checked to be used, dead nodes dropped."""
    b = _Builder(spec)
    b.canon, constraints = _canonical_dims(spec)
    dim_symbols = {d: sympy.Symbol(d, positive=True, integer=True) for d in spec.dims}
    step, constants = _declare_values(b, spec, dim_symbols)
    matrices, vectors = _params(b, spec, dim_symbols)
    _equations(b, spec, no_gradient={n for n in (*constants, step) if n is not None}, step=step)
    updates = _updates(b, spec)
    outputs = _outputs(b, spec)
    _check_used(b, spec, step)
    return Cell(
        name=spec.name,
        summary=spec.summary,
        cite=spec.cite,
        path=spec.path,
        sha256=spec.sha256,
        dims=spec.dims,
        inputs={v.name: v.dim for v in spec.inputs},
        states={v.name: v.dim for v in spec.states},
        matrices=matrices,
        vectors=vectors,
        nodes=_live(b.nodes, [*updates.values(), *outputs]),
        updates=updates,
        outputs=tuple(outputs),
        constants=constants,
        step=step,
        constraints=constraints,
        param_order=tuple(p.name for p in spec.params),
        equations_text=tuple((e.name, " ".join(e.expr.value.split())) for e in spec.equations),
        torch=spec.torch.table() if spec.torch else None,
    )


def _declare_values(b: _Builder, spec: Spec, dim_symbols: dict) -> tuple[str | None, dict[str, Constant]]:
    """The inputs, states, step index and constants, as names equations may use."""
    for v in spec.inputs + spec.states:
        b.declare(v.name, v.dim)
    step = None
    if spec.step is not None:
        step = spec.step.name
        b.symbols[step] = b.visible[step] = sympy.Symbol(step, integer=True, nonnegative=True)
    constants = {}
    for c in spec.constants:
        names = {**dim_symbols, "i": sympy.Symbol("i", integer=True, nonnegative=True)}
        value = parse_index_formula(c.value, f"the value of constant {c.name!r}", names, condition=False)
        constants[c.name] = Constant(c.name, c.dim, value)
        b.declare(c.name, c.dim)
    return step, constants


def _params(b: _Builder, spec: Spec, dim_symbols: dict) -> tuple[dict[str, MatrixParam], dict[str, VectorParam]]:
    """Each param with its init and mask; a vector param is a name equations may use."""
    matrices, vectors = {}, {}
    default_init = Init("uniform", (1 / sympy.sqrt(dim_symbols[spec.states[0].dim]),))
    for p in spec.params:
        init = default_init
        if p.init is not None:
            kind, args = parse_init(p.init, p.name, dim_symbols)
            init = Init(kind, args)
            if kind == "orthogonal" and len(p.shape) != 2:
                raise SpecError(f"orthogonal init needs a matrix, and {p.name!r} is a vector", p.init.start)
        if len(p.shape) == 2:
            mask = None
            if p.mask is not None:
                names = {**dim_symbols, "i": sympy.Symbol("i", integer=True, nonnegative=True), "j": sympy.Symbol("j", integer=True, nonnegative=True)}
                mask = parse_index_formula(p.mask, f"the mask of param {p.name!r}", names, condition=True)
            matrices[p.name] = MatrixParam(p.name, p.shape[0], p.shape[1], init, mask)
            b.matrices[p.name] = p.shape
        else:
            vectors[p.name] = VectorParam(p.name, p.shape[0], init)
            b.vectors.add(p.name)
            b.declare(p.name, p.shape[0])
    return matrices, vectors


def _equations(b: _Builder, spec: Spec, no_gradient: set[str], step: str | None) -> None:
    """Each equation, in order, as nodes: its products, then itself."""
    defined_later = {e.name: e for e in spec.equations}
    for eq in spec.equations:
        try:
            expr = parse_equation(eq.expr, eq.name, dict(b.visible), set(b.matrices), b.product, b.dims_of, b.used, no_gradient=no_gradient)
        except UnknownName as e:
            later = defined_later.get(e.name)
            if later is not None:
                raise SpecError(f"{e.name!r} is used before its equation (line {later.where.line}); equations are in order, and a state name means its value at t-1", e.where) from None
            raise
        expr = b.name_calls(b.split(expr, eq.expr.start), eq.expr.start)
        dim = b.dim_of(expr, eq.expr.start)
        if dim is None:
            if step is not None and b.symbols[step] in expr.free_symbols:
                # a number per step, not a vector: it has no dim to be one of
                raise SpecError(f"equation {eq.name!r} depends only on the step and numbers; an equation is a vector: use it inside an equation of a vector, or multiply it by one", eq.expr.start)
            raise SpecError(f"equation {eq.name!r} is a constant; an equation must depend on an input, a state or a param", eq.expr.start)
        b.add(Elementwise(eq.name, expr, dim, _arg_names(expr), where=eq.expr.start))
        del defined_later[eq.name]


def _updates(b: _Builder, spec: Spec) -> dict[str, str]:
    """state -> the equation that updates it; every state updated."""
    updates = {}
    declared_states = {s.name: s for s in spec.states}
    for u in spec.updates:
        if u.state not in declared_states:
            raise SpecError(f"{u.state!r} is not a state; the states are {', '.join(declared_states)}", u.where)
        node = b.nodes.get(u.value)
        if node is None or not isinstance(node, Elementwise) or not node.equation:
            raise SpecError(f"the update of {u.state!r} must name an equation, and {u.value!r} is not one", u.value_where)
        if node.dim != b.canon[declared_states[u.state].dim]:
            raise SpecError(f"state {u.state!r} is [{declared_states[u.state].dim}] but {u.value!r} is [{node.dim}]", u.value_where)
        updates[u.state] = u.value
        b.used.add(u.value)
    for s in spec.states:
        if s.name not in updates:
            raise SpecError(f"state {s.name!r} is never updated: add it to 'update'", s.where)
    return updates


def _outputs(b: _Builder, spec: Spec) -> list[str]:
    outputs = []
    for out in spec.outputs:
        node = b.nodes.get(out.value)
        if node is None or not isinstance(node, Elementwise) or not node.equation:
            raise SpecError(f"an output must name an equation, and {out.value!r} is not one", out.start)
        if out.value in outputs:
            raise SpecError(f"{out.value!r} is already an output", out.start)
        outputs.append(out.value)
        b.used.add(out.value)
    return outputs


def _check_used(b: _Builder, spec: Spec, step: str | None) -> None:
    for what, names in (("input", spec.inputs), ("param", spec.params), ("constant", spec.constants), ("equation", spec.equations)):
        for v in names:
            if v.name not in b.used:
                raise SpecError(f"{what} {v.name!r} is never used", v.where)
    if step is not None and step not in b.used:
        raise SpecError(f"step index {step!r} is never used", spec.step.where)


def _live(nodes: dict[str, Product | Elementwise], roots: list[str]) -> dict[str, Product | Elementwise]:
    """The nodes that the outputs and updates depend on, in their order. A node can be dead
    though its name was written: SymPy cancels `a*0` and `U @ h - U @ h`, and nothing may then
    compute, store or differentiate it."""
    live, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n in nodes and n not in live:
            live.add(n)
            stack.extend(nodes[n].args)
    return {k: v for k, v in nodes.items() if k in live}
