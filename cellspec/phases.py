"""Where the work of a step runs: the *pre* region (values that read no state, over all T*B rows
before the time loop) and the *loop* region (one step at a time), each as phases of products
(`Group`: products of one operand, stacked weights, one matrix product) and fused elementwise
loops (`Phase`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Cell, Product

PRE, LOOP = "pre", "loop"


@dataclass(frozen=True)
class Group:
    """Products sharing an operand in one phase: one matrix product with stacked weights."""

    region: str
    phase: int
    operand: str
    operand_dim: str
    products: tuple[str, ...]
    weights: tuple[str, ...]
    rows: tuple[str, ...]          # the dim of each product, in stacking order

    @property
    def name(self) -> str:
        return self.operand

    def offset(self, product: str) -> tuple[str, ...]:
        return self.rows[: self.products.index(product)]


@dataclass
class Phase:
    region: str
    index: int
    groups: list[Group] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    def loops(self, cell: Cell) -> list[tuple[str, list[str]]]:
        """The phase's elementwise nodes split into one fused loop per dim, in node order."""
        by_dim: dict[str, list[str]] = {}
        for n in self.nodes:
            by_dim.setdefault(cell.nodes[n].dim, []).append(n)
        return list(by_dim.items())


def regions(cell: Cell) -> dict[str, str]:
    """PRE for the nodes that depend on no state, LOOP for the rest."""
    dep = {n: False for n in cell.inputs}
    dep.update({n: True for n in cell.states})
    dep.update({n: False for n in [*cell.vectors, *cell.leaves]})
    for n in cell.nodes.values():
        dep[n.name] = any(dep[a] for a in n.args)
    sinks = set(cell.updates.values()) | set(cell.outputs)
    region: dict[str, str] = {}
    for n in cell.nodes.values():
        # outputs and updates are produced in the loop even when they need no state, and so is
        # everything that reads them
        reads_loop = any(region.get(a) == LOOP for a in n.args)
        region[n.name] = LOOP if dep[n.name] or n.name in sinks or reads_loop else PRE
    return region


def phase_of(cell: Cell, region: dict[str, str]) -> dict[str, int]:
    """Each node's phase in its region: a product one after its operand, an elementwise node with
    its latest argument; 0 is before the region's first phase."""
    avail: dict[str, int] = {n: 0 for n in [*cell.inputs, *cell.states, *cell.vectors, *cell.leaves]}
    for n in cell.nodes.values():
        r = region[n.name]
        # a value from the other region (pre, read by the loop) is available at 0
        args = [avail[a] if region.get(a, r) == r else 0 for a in n.args]
        avail[n.name] = args[0] + 1 if isinstance(n, Product) else max([1, *args])
    return {n: avail[n] for n in cell.nodes}


def phases(cell: Cell, region: dict[str, str], phase_of: dict[str, int]):
    out: dict[str, list[Phase]] = {}
    for r in (PRE, LOOP):
        count = max([phase_of[n] for n in cell.nodes if region[n] == r], default=0)
        out[r] = [Phase(r, k) for k in range(1, count + 1)]
    grouped: dict[tuple[str, int, str], list[Product]] = {}
    for n in cell.nodes.values():
        if isinstance(n, Product):
            grouped.setdefault((region[n.name], phase_of[n.name], n.operand), []).append(n)
        else:
            out[region[n.name]][phase_of[n.name] - 1].nodes.append(n.name)
    groups: dict[str, Group] = {}
    group_of: dict[str, Group] = {}
    for (r, k, operand), prods in grouped.items():
        g = Group(r, k, operand, cell.dim_of(operand), tuple(p.name for p in prods), tuple(p.weight for p in prods), tuple(p.dim for p in prods))
        out[r][k - 1].groups.append(g)
        groups[operand] = g
        for p in prods:
            group_of[p.name] = g
    return out, groups, group_of
