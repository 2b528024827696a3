"""`cellspec bench`: the generated cell against its peers, side by side in one process.

Peers, all float32 on the CPU, forward and backward over the whole sequence:

* PyTorch's fused `nn.RNN` / `nn.LSTM` / `nn.GRU`, for the specs that are those cells;
* a TorchScript loop over the same equations, printed from the cell's IR: what a researcher
  writes today for a custom cell, the fair peer for every spec;
* JAX: `lax.scan` over the same IR with `value_and_grad`, jitted (see `bench_peers.jax_peer`);
* the floor: the cell's matrix products alone (the hoisted product, one product per step each
  way, and the weight and input gradients), with numpy's BLAS, cut into the same batch chunks
  on threads as the cell's call (see `cellspec.runtime`);
* where PyTorch has the cell, the same products in one pass through `torch.mm` (MKL in PyTorch's
  x86 CPU builds): what the products cost in the BLAS of PyTorch's fused cells, so that
  `torch.mm floor / torch` says how much of a gap to PyTorch is the GEMM's.

Runs are interleaved (every peer once per round, with a pause before each so that the previous
peer's spinning BLAS threads are parked) and the median of the rounds is reported. PyTorch and
JAX are optional (`pip install -e ".[bench]"`); a peer that is missing is reported as n/a.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .bench_floor import floor, floor_torch
from .bench_peers import jax_peer, torchscript_source

SIZES = {
    "S1": (100, 32, 128, 128),
    "S2": (100, 64, 256, 256),
    "S3": (50, 16, 512, 512),
    "S4": (1000, 1, 32, 64),
    "S5": (200, 128, 64, 64),
    "tiny": (5, 2, 4, 4),
}

# specs that are PyTorch's fused cells, parameter for parameter (checked by the parity tests)
TORCH_NATIVE = {"rnn": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}


def dim_sizes(cell_module, input_size: int, hidden: int) -> dict[str, int]:
    """Sizes for a cell's dims from a benchmark's I and H: `input` is I, a dim named `proj` is
    H/2, `modules` is 4, every other dim is H; constraints make dims equal."""
    sizes = {}
    for d in cell_module.Cell.DIMS:
        sizes[d] = input_size if d == "input" else max(1, hidden // 2) if d == "proj" else 4 if d == "modules" else hidden
    for a, b in cell_module.Cell.CONSTRAINTS:
        sizes[a] = sizes[b]
    return sizes


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


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


def _ours(cell_module, shape: tuple):
    """The generated cell in float32 at a benchmark's shape, with its inputs (seeded) and dy = 1:
    (cell, inputs by name, forward+backward, forward alone for inference, with no tape)."""
    T, B, I, H = shape
    cell = cell_module.Cell(dtype="float32", seed=0, **dim_sizes(cell_module, I, H))
    rng = np.random.default_rng(0)
    xs = {n: rng.normal(size=(T, B, cell.dims[d])).astype(np.float32) for n, d in cell.INPUTS}
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    dys = {n: np.ones((T, B, cell.dims[d]), np.float32) for n, d in cell.OUTPUTS}
    dy = dys if len(dys) > 1 else next(iter(dys.values()))

    def both():
        _, _, tape = cell.forward(x)
        cell.backward(tape, dy)

    return cell, xs, both, lambda: cell.forward(x, tape=False)


def _torch_native(torch, name: str, shape: tuple):
    """PyTorch's fused twin of a spec and its input: (forward+backward with dy = 1, forward alone)."""
    T, B, I, H = shape
    kind = getattr(torch.nn, TORCH_NATIVE[name])
    native = kind(I, H, nonlinearity="relu") if name == "rnn_relu" else kind(I, H)
    xt = torch.tensor(np.random.default_rng(0).normal(size=(T, B, I)).astype(np.float32), requires_grad=True)

    def both():
        y, _ = native(xt)
        y.backward(torch.ones_like(y))

    def forward():
        with torch.no_grad():
            native(xt)

    return both, forward


def _peers(name: str, cell_module, schedule, shape: tuple, peers: set[str]):
    """The callables to time, warmed up: {peer: forward+backward}, {peer: forward alone}, and our
    cell with its inputs."""
    cell_ir = schedule.cell
    T, B = shape[:2]
    cell, xs, both, forward = _ours(cell_module, shape)
    sizes = cell.dims
    runs: dict[str, object] = {"cellspec": both}
    fwd_runs: dict[str, object] = {"cellspec": forward}
    runs["floor"], fwd_runs["floor"] = floor(schedule, sizes, T, cell.batch_chunks(B))

    if "torch" in peers or "torchscript" in peers:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            if "torch" in peers and name in TORCH_NATIVE:
                runs["torch"], fwd_runs["torch"] = _torch_native(torch, name, shape)
                runs["floor_torch"], fwd_runs["floor_torch"] = floor_torch(torch, schedule, sizes, T, B)
            source = torchscript_source(cell_ir) if "torchscript" in peers else None
            if source is not None:
                fn = torch.jit.CompilationUnit(source).loop
                targs = [torch.tensor(xs[n], requires_grad=True) for n in cell_ir.inputs]
                targs += [torch.zeros((B, sizes[cell_ir.states[s]]), requires_grad=True) for s in cell_ir.states]
                targs += [torch.tensor(cell.params[p.name], requires_grad=True) for p in cell_ir.params]

                def scripted():
                    out = fn(*targs)
                    loss = sum(o.sum() for o in out[: len(cell_ir.outputs)])
                    loss.backward()

                runs["torchscript"] = scripted
    if "jax" in peers:
        jax_run = jax_peer(cell_ir, cell, xs, sizes)
        if jax_run is not None:
            runs["jax"] = jax_run
    for f in list(runs.values()) + list(fwd_runs.values()):
        f()  # compile and warm up: Numba and XLA compile on the first call, TorchScript's
        f()  # profiling executor optimises on the second
    return runs, fwd_runs, cell, xs


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc/stat's unit, per second


def cpu_reading() -> tuple[float, float, float, float] | None:
    """(steal, busy, total, own) CPU seconds: from /proc/stat, the time since boot of all CPUs
    that the hypervisor gave other guests (steal), that anything here ran (busy) and in all,
    and the CPU time of this process (all its threads). None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) / _CLK_TCK for v in fields[1:9])
    busy = user + nice + system + irq + softirq
    return steal, busy, busy + idle + iowait + steal, time.process_time()


def others_share(before, after) -> float:
    """The share of the CPUs' time between two `cpu_reading()`s that went to others: other
    guests of the host (steal) and other processes here. 0 without /proc."""
    if before is None or after is None or after[2] <= before[2]:
        return 0.0
    steal, busy, total, own = (a - b for a, b in zip(after, before))
    return (steal + max(0.0, busy - own)) / total


@dataclass
class Quiet:
    """How the timing deals with a shared machine. A round during which others (other guests of
    the host, or other processes here) took more than `max_others` of the CPUs' time is thrown
    away and run again, after waiting for a quiet second, for at most `patience` seconds of
    waiting over the whole bench run; once that is spent, rounds are kept as they come. The
    table reports the others' share of the rounds kept."""

    max_others: float = 0.03
    patience: float = 900.0
    waited: float = 0.0
    spoiled: int = 0

    def wait(self) -> None:
        """Sleep until a second passes in which others took little, or the patience is spent."""
        while self.waited < self.patience:
            before = cpu_reading()
            time.sleep(1.0)
            self.waited += 1.0
            if others_share(before, cpu_reading()) <= self.max_others:
                return


def _time_rounds(runs: dict, fwd_runs: dict, rounds: int, pause: float, quiet: Quiet | None = None):
    """Medians in ms of interleaved rounds, every peer once per round, and the mean share of the
    CPUs' time that others took during the rounds kept (see `Quiet`)."""
    quiet = quiet or Quiet(patience=0.0)
    kept, retry = [], False
    while len(kept) < rounds:
        if retry:
            quiet.wait()
        start = cpu_reading()
        sample = ({k: [] for k in runs}, {k: [] for k in fwd_runs})
        for timing, todo in zip(sample, (runs, fwd_runs)):
            for k, f in todo.items():
                # let the previous peer's BLAS and OpenMP threads stop spinning first: on two
                # cores a spinning pool steals the next peer's core
                time.sleep(pause)
                t0 = time.perf_counter()
                f()
                timing[k].append(time.perf_counter() - t0)
        others = others_share(start, cpu_reading())
        # every retry spends at least a second of patience: once it is spent, rounds are kept
        retry = others > quiet.max_others and quiet.waited < quiet.patience
        if retry:
            quiet.spoiled += 1
        else:
            kept.append((others, sample))
    medians = tuple({k: _median_ms([s[i][k][0] for _, s in kept]) for k in todo} for i, todo in enumerate((runs, fwd_runs)))
    return medians[0], medians[1], statistics.fmean(share for share, _ in kept)


def bench_cell(name: str, cell_module, schedule, size: str, rounds: int, peers: set[str], pause: float = 0.2, quiet: Quiet | None = None) -> Row:
    T, B, I, H = SIZES[size]
    runs, fwd_runs, cell, xs = _peers(name, cell_module, schedule, (T, B, I, H), peers)
    times, ftimes, others = _time_rounds(runs, fwd_runs, rounds, pause, quiet)
    _, _, tape = cell.forward(xs if len(xs) > 1 else next(iter(xs.values())))
    per_step = sum(a.nbytes for t in tape.pieces() for k, a in t.arrays.items() if not k.startswith("_W_")) / (T * B)
    return Row(name, size, (T, B, I, H), times, ftimes, per_step, others)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def memory_child(argv: list[str]) -> None:
    """In a fresh process: one forward+backward of `which` (cellspec's module at a path, or
    PyTorch's native cell), printing the peak resident memory it added, in MiB, as JSON. The
    peak is the kernel's VmHWM, reset just before the run (write 5 to /proc/self/clear_refs).
    The warm-up (Numba's compile, oneDNN's first primitives) runs at another, tiny shape, so that
    no buffer of the measured shape is already resident when the measurement starts."""
    which, path, name, module_name, threads = argv[0], argv[1], argv[2], argv[3], int(argv[4])
    shape = tuple(map(int, argv[5:9]))
    if which == "cellspec":
        from .blas import set_threads
        from .build import import_file

        set_threads(threads)
        # under the parent's module name: Numba's cache ties a kernel to the module it was
        # compiled in, and loads it in another process only under that name
        module = import_file(path, module_name)

        def prepare(*shape):
            return _ours(module, shape)[2]
    else:
        import torch

        torch.set_num_threads(threads)

        def prepare(*shape):
            return _torch_native(torch, name, shape)[0]
    prepare(3, 2, 4, 4)()
    run = prepare(*shape)  # the inputs, weights and dy are resident before the baseline
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _rss_kb("VmRSS")
    run()
    print(json.dumps({"peak_mib": (_rss_kb("VmHWM") - base) / 1024}))


def peak_memory(which: str, module, name: str, shape: tuple, threads: int) -> float | None:
    """Peak memory in MiB that one forward+backward adds, measured in a fresh process (see
    `memory_child`); None where it cannot be measured (no /proc, no PyTorch). `module` is the
    generated module, imported."""
    import subprocess
    import sys

    args = [which, module.__file__, name, module.__name__, str(threads), *map(str, shape)]
    code = "import sys; from cellspec.bench import memory_child; memory_child(sys.argv[1:])"
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"note: the memory of {which} {name} was not measured: {(run.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])["peak_mib"]


SCALING_T = (25, 50, 100, 200, 400, 800)
SCALING_H = (32, 64, 128, 256, 512)


def scaling(name: str, cell_module, schedule, rounds: int, pause: float, quiet: Quiet | None = None) -> dict:
    """Forward+backward time against T (B=32, I=H=128) and against H (T=100, B=32, I=H), for
    cellspec and PyTorch's native cell where there is one: {"T": [...], "H": [...]} of
    (value, {peer: ms})."""
    out = {"T": [], "H": []}
    for axis, values in (("T", SCALING_T), ("H", SCALING_H)):
        for v in values:
            shape = (v, 32, 128, 128) if axis == "T" else (100, 32, v, v)
            runs = _peers(name, cell_module, schedule, shape, {"torch"})[0]
            runs = {k: f for k, f in runs.items() if k in ("cellspec", "torch")}
            times, _, _ = _time_rounds(runs, {}, rounds, pause, quiet)
            out[axis].append((v, times))
    return out


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
                    who = "cellspec" if peer == "cellspec" else f"PyTorch nn.{TORCH_NATIVE.get(name, '?')}"
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


def _ratio(times: dict[str, float], a: str, b: str) -> str:
    return f"{times[a] / times[b]:.2f}" if a in times and b in times else "n/a"


def markdown(rows: list[Row]) -> str:
    peers = [p for p in ("torch", "torchscript", "jax") if any(p in r.times for r in rows)]
    head = "| spec | size | T,B,I,H | cellspec ms | floor ms | vs floor | " + " | ".join(f"{p} ms | vs {p}" for p in peers) + " | floor / torch | torch.mm floor / torch | tape bytes per step and sequence | others' CPU % |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ours = r.times["cellspec"]
        cells = [r.spec, r.size, ",".join(map(str, r.shape)), f"{ours:.1f}", f"{r.times['floor']:.1f}", f"{ours / r.times['floor']:.2f}"]
        for p in peers:
            if p in r.times:
                cells += [f"{r.times[p]:.1f}", f"{ours / r.times[p]:.2f}"]
            else:
                cells += ["n/a", "n/a"]
        cells += [_ratio(r.times, "floor", "torch"), _ratio(r.times, "floor_torch", "torch"), f"{r.tape_bytes_per_step:.0f}", f"{100 * r.others:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    native = [r for r in rows if "torch" in r.forward]
    if native:
        lines += ["", "Forward alone (inference), where PyTorch has the cell (ms; floor: the forward's products alone):", "",
                  "| spec | size | cellspec ms | floor ms | torch ms | vs torch | floor / torch | torch.mm floor / torch |", "|---|---|---|---|---|---|---|---|"]
        for r in native:
            f = r.forward
            lines.append(f"| {r.spec} | {r.size} | {f['cellspec']:.1f} | {f['floor']:.1f} | {f['torch']:.1f} | {f['cellspec'] / f['torch']:.2f} | {_ratio(f, 'floor', 'torch')} | {_ratio(f, 'floor_torch', 'torch')} |")
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
    info = {"machine": platform.machine(), "processor": platform.processor(), "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(), "numpy": np.__version__}
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


def write_results(rows: list[Row], out: str, threads: int) -> tuple[str, str]:
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, "results.json")
    md_path = os.path.join(out, "results.md")
    data = {"environment": environment(threads), "rows": [r.__dict__ for r in rows]}
    with open(json_path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    with open(md_path, "w") as f:
        f.write("Float32, forward and backward over the whole sequence, median of interleaved rounds, in ms; "
                "`vs X` is cellspec's time over X's (below 1: cellspec is faster); `others' CPU`: the share of "
                "the CPUs' time that other guests of the host (steal) and other processes took during the rounds "
                "kept (a round with more than the bench's --max-others is run again, see `cellspec.bench.Quiet`).\n\n")
        f.write(markdown(rows))
    return json_path, md_path
