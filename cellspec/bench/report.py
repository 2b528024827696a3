"""The bench's report: a row of results, the markdown tables, results.json and results.md with
the environment, and the scaling figure."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass, field

import numpy as np

from . import machine
from .cells import SCALING_H, SCALING_T
from .limit import SIZE, gemm_peak
from .timing import WARM_S, paired_ratio


@dataclass
class Row:
    spec: str
    size: str
    shape: tuple
    times: dict[str, float]          # peer -> median ms, forward + backward
    forward: dict[str, float]        # peer -> median ms, forward alone (inference)
    tape_bytes_per_step: float
    others: float = 0.0               # mean share of the CPUs' time others took in the rounds kept
    memory: dict[str, float] | None = None  # peer -> peak MiB one forward+backward adds
    flops: tuple[float, float] = (0.0, 0.0)  # of the matrix products: forward and backward, forward alone
    limit: float = 0.0  # GFLOP/s: the cells' BLAS's best GEMM rate per core times the threads
    rounds: list[dict[str, float]] = field(default_factory=list)          # each round's ms by peer, forward + backward
    forward_rounds: list[dict[str, float]] = field(default_factory=list)  # and the forward alone's

    def vs(self, a: str, b: str, forward: bool = False) -> float | None:
        """a's time over b's: the median over rounds of the ratio within a round
        (`timing.paired_ratio`); None where either was not timed."""
        return paired_ratio(self.forward_rounds if forward else self.rounds, a, b)


def plot_scaling(results: dict[str, dict], path: str) -> str:
    """Two log-log panels, time against T and against H, a line per cell and peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, axis, label in ((axes[0], "T", "T (steps); B=32, I=H=128"), (axes[1], "H", "H (= I); T=100, B=32")):
        for name, data in results.items():
            points = data[axis]
            xs = [v for v, _ in points]
            for peer, style in (("cellspec", "o-"), ("torch", "s--")):
                ys = [t[peer] for _, t in points if peer in t]
                if len(ys) == len(xs):
                    who = "cellspec" if peer == "cellspec" else f"PyTorch nn.{data.get('torch') or '?'}"
                    ax.plot(xs, ys, style, label=f"{name}: {who}")
        if axis == "T":
            first = next(iter(results.values()))["T"]
            x0, t0 = first[0][0], first[0][1]["cellspec"]
            ax.plot([x0, SCALING_T[-1]], [t0, t0 * SCALING_T[-1] / x0], ":", color="gray", label="linear in T")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(SCALING_T if axis == "T" else SCALING_H)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("forward + backward, ms (float32)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("cellspec against PyTorch's fused CPU cells")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ratio(r: Row, a: str, b: str, forward: bool = False) -> str:
    v = r.vs(a, b, forward)
    return "n/a" if v is None else f"{v:.2f}"


def _of_limit(r: Row, peer: str) -> str:
    """The rate of `peer`'s matrix products (the cell's FLOPs over its whole time) as a share of the
    machine's GEMM limit, in %."""
    if peer not in r.times or not r.limit or not r.flops[0]:
        return "n/a"
    return f"{100 * r.flops[0] / (r.times[peer] * 1e-3) / 1e9 / r.limit:.0f}"


def markdown(rows: list[Row]) -> str:
    peers = [p for p in ("torch", "torchscript", "jax") if any(p in r.times for r in rows)]
    head = "| spec | size | T,B,I,H | cellspec ms | floor ms | vs floor | " + " | ".join(f"{p} ms | vs {p}" for p in peers) + " | floor / torch | torch.mm floor / torch | cellspec % of limit | torch % of limit | tape bytes per step and sequence | others' CPU % |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ours = r.times["cellspec"]
        cells = [r.spec, r.size, ",".join(map(str, r.shape)), f"{ours:.1f}", f"{r.times['floor']:.1f}", _ratio(r, "cellspec", "floor")]
        for p in peers:
            if p in r.times:
                cells += [f"{r.times[p]:.1f}", _ratio(r, "cellspec", p)]
            else:
                cells += ["n/a", "n/a"]
        cells += [_ratio(r, "floor", "torch"), _ratio(r, "floor_torch", "torch"), _of_limit(r, "cellspec"), _of_limit(r, "torch"),
                  f"{r.tape_bytes_per_step:.0f}", f"{100 * r.others:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    native = [r for r in rows if "torch" in r.forward]
    if native:
        lines += ["", "Forward alone (inference), where PyTorch has the cell (ms; floor: the forward's products alone):", "",
                  "| spec | size | cellspec ms | floor ms | torch ms | vs torch | floor / torch | torch.mm floor / torch |", "|---|---|---|---|---|---|---|---|"]
        for r in native:
            f = r.forward
            lines.append(f"| {r.spec} | {r.size} | {f['cellspec']:.1f} | {f['floor']:.1f} | {f['torch']:.1f} | {_ratio(r, 'cellspec', 'torch', True)} | {_ratio(r, 'floor', 'torch', True)} | {_ratio(r, 'floor_torch', 'torch', True)} |")
    measured = [r for r in rows if r.memory]
    if measured:
        lines += ["", "Peak memory that one forward+backward adds (MiB, resident, in a fresh process):", "",
                  "| spec | size | cellspec MiB | torch MiB | cellspec / torch |", "|---|---|---|---|---|"]
        for r in measured:
            ours, theirs = r.memory.get("cellspec"), r.memory.get("torch")
            ratio = f"{ours / theirs:.2f}" if ours is not None and theirs else "n/a"
            lines.append(f"| {r.spec} | {r.size} | {'n/a' if ours is None else f'{ours:.1f}'} | {'n/a' if theirs is None else f'{theirs:.1f}'} | {ratio} |")
    return "\n".join(lines) + "\n"


def environment(threads: int) -> dict:
    from ..blas import BACKEND

    info = {"machine": platform.machine(), "processor": platform.processor(), "cores": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "numpy": np.__version__, "blas": BACKEND, "gemm_gflops_per_core": round(gemm_peak(), 1),
            "cpu": machine.describe()}
    try:   # installed or not: where it is, Numba's CPU target imports its BLAS (cellspec.blas)
        info["scipy"] = importlib.metadata.version("scipy")
    except importlib.metadata.PackageNotFoundError:
        info["scipy"] = None
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        import jax

        info["jax"] = jax.__version__
    except ImportError:
        pass
    return info


def write_results(rows: list[Row], out: str, threads: int, compile_s: dict | None = None) -> tuple[str, str]:
    """results.json and results.md; `compile_s` (cell -> `compile.compile_times`) goes into the
    environment and a table of its own."""
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, "results.json")
    md_path = os.path.join(out, "results.md")
    data = {"environment": dict(environment(threads), compile_s=compile_s or {}), "rows": [r.__dict__ for r in rows]}
    with open(json_path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    with open(md_path, "w") as f:
        env = data["environment"]
        mkl_path = env["cpu"].get("mkl_code_path")
        f.write(f"Measured on {machine.sentence(env['cpu'])}, {env['cores']} cores, {threads} threads"
                + (f"; MKL's code path on this CPU: {mkl_path}" if mkl_path else "") + ".\n\n")
        f.write(f"BLAS of the generated cells and their floor: {env['blas']}; its best float32 GEMM here, "
                f"{env['gemm_gflops_per_core']} GFLOP/s a core ({SIZE} cubed, one thread), times {threads} threads is the limit "
                "that `% of limit` divides by: the rate of a cell's matrix products (their FLOPs over its whole time) as a share of it.\n\n")
        f.write("Float32, forward and backward over the whole sequence, median of interleaved rounds, in ms, each peer "
                f"timed after {WARM_S * 1e3:.0f} ms of its own untimed calls (as in calls back to back, `cellspec.bench.timing`); "
                "`vs X` is cellspec's time over X's (below 1: cellspec is faster), the median over rounds of the ratio within "
                "a round (so the host's drifting load weighs on both sides alike), as are the other ratios; `others' CPU`: the share of "
                "the CPUs' time that other guests of the host (steal) and other processes took during the rounds "
                "kept (a round with more than the bench's --max-others is run again, see `cellspec.bench.Quiet`).\n\n")
        f.write(markdown(rows))
        if compile_s:
            f.write("\nCompile, per cell, each in a fresh process with empty caches (float32, the tiny shape): `build` the spec "
                    "to its module, `first` its first forward+backward (Numba compiling the kernels it calls); `cached` a later "
                    "process from its first import to the end of its first forward+backward, every kernel from Numba's cache. "
                    + (f"SciPy {env['scipy']} is installed here; Numba's CPU target would import its BLAS on the first call, "
                       "which cellspec defers until a jitted np.dot needs it (`cellspec.blas`; cellspec needs SciPy only where "
                       "numpy has no OpenBLAS of its own). `cached` is the median of three such processes.\n\n"
                       if env["scipy"] else "SciPy is not installed here. `cached` is the median of three such processes.\n\n"))
            f.write(compile_markdown(compile_s))
    return json_path, md_path


def compile_markdown(compile_s: dict) -> str:
    lines = ["| cell | build s | first forward+backward s | cached load+run s |", "|---|---|---|---|"]
    for name, t in compile_s.items():
        lines.append(f"| {name} | " + (" | ".join(f"{t[k]:.2f}" for k in ("build", "first", "cached")) if t else "n/a | n/a | n/a") + " |")
    return "\n".join(lines) + "\n"
