"""The bench's rows for using a cell (`cellspec bench --interop`): what variable lengths save,
and what the PyTorch module and the JAX function cost over the raw cell.

* lengths: a batch whose lengths are uniform in [T/4, T] against the same batch at full length
  (`lengths=None`, and all lengths T, which must cost the same), forward+backward of one cell;
* torch: `cellspec.torch.Module` (one layer, forward and autograd's backward) against the raw
  cell's forward+backward on the same arrays (the module's overhead: tensor/array views, the
  autograd node, the checks) and against PyTorch's fused `nn.RNN`/`nn.LSTM`/`nn.GRU`; beside
  them the module's floor, the raw cell inside a bare `torch.autograd.Function` (no Layer, no
  checks): what autograd's node, its engine and the tensor/array views cost by themselves;
* jax: `cellspec.jax.function`'s jitted value-and-grad against the raw cell.

Every row is interleaved rounds in one process, medians, float32, as the main table's.
"""

from __future__ import annotations

import numpy as np

from .cells import SIZES, _ours, _torch_native, dim_sizes
from .timing import Quiet, _time_rounds


def ragged_lengths(T: int, B: int, seed: int = 0) -> np.ndarray:
    """Lengths uniform in [T/4, T], seeded."""
    return np.random.default_rng(seed).integers(max(1, T // 4), T + 1, size=B)


def lengths_row(name: str, module, size: str, rounds: int, pause: float, quiet: Quiet | None = None) -> dict:
    T, B, I, H = SIZES[size]
    cell, xs, _, _ = _ours(module, (T, B, I, H))
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    dy = {n: np.ones((T, B, cell.dims[d]), np.float32) for n, d in cell.OUTPUTS}
    dy = dy if len(dy) > 1 else next(iter(dy.values()))
    lengths = ragged_lengths(T, B)

    def run(given):
        def both():
            _, _, tape = cell.forward(x, lengths=given)
            cell.backward(tape, dy)

        return both

    runs = {"lengths=None": run(None), "all T": run(np.full(B, T)), "ragged": run(lengths)}
    for f in runs.values():
        f()
    times, _, others = _time_rounds(runs, {}, rounds, pause, quiet)
    return {"spec": name, "size": size, "times": times, "steps": float(lengths.mean() / T), "others": others}


def _x_and_dy(torch, cell, T: int, B: int):
    """The seeded input x [T,B,input] (requiring grad) and dy = 1 of the torch rows, for `cell`'s
    first input and output. dy is made once, as the raw cell's is: a torch op between our kernels
    can wait for PyTorch's threads, which the BLAS threads of the kernels' products keep from the
    cores for a while (see the README), and that wait is not the module's."""
    dim = cell.dims[cell.INPUTS[0][1]]
    xt = torch.tensor(np.random.default_rng(0).normal(size=(T, B, dim)).astype(np.float32), requires_grad=True)
    return xt, torch.ones((T, B, cell.dims[cell.OUTPUTS[0][1]]))


def torch_module_run(torch, module, shape: tuple):
    """`cellspec.torch.Module` (one layer) at a benchmark's shape and its input, seeded:
    forward and autograd's backward with dy = 1."""
    from .. import torch as cst

    T, B, I, H = shape
    mod = cst.Module(module, dtype=torch.float32, seed=0, **dim_sizes(module, I, H))
    xt, dy = _x_and_dy(torch, mod.layer.cells[0][0], T, B)

    def both():
        # as a training step after optimizer.zero_grad() (set_to_none, torch's default): autograd
        # then hands over the kernels' gradients instead of adding them into the old ones
        mod.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = mod(xt)
        y.backward(dy)

    return both


def bare_function_run(torch, module, shape: tuple):
    """The raw cell's forward and backward inside a bare `torch.autograd.Function`, at a
    benchmark's shape, as `torch_module_run` calls the module: no Layer, no checks, the tape on
    ctx, the tensors viewed as arrays; the least any autograd wrapper of the kernels costs. For a
    cell of one input and one output."""
    from torch.autograd.function import once_differentiable

    T, B, I, H = shape
    cell = module.Cell(dtype="float32", seed=0, **dim_sizes(module, I, H))
    keys, states = list(cell.params), [n for n, _ in cell.STATES]
    params = [torch.nn.Parameter(torch.from_numpy(cell.params[k])) for k in keys]

    class Bare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *_params):
            y, final, ctx.tape = cell.forward(x.detach().numpy())
            ctx.set_materialize_grads(False)
            return (torch.from_numpy(y), *(torch.from_numpy(final[n]) for n in states))

        @staticmethod
        @once_differentiable
        def backward(ctx, dy, *_dfinal):
            dx, dp, _ = cell.backward(ctx.tape, dy.numpy())
            return (torch.from_numpy(dx), *(torch.from_numpy(dp[k]) for k in keys))

    xt, dy = _x_and_dy(torch, cell, T, B)

    def both():
        for p in params:
            p.grad = None
        xt.grad = None
        y, *_ = Bare.apply(xt, *params)
        y.backward(dy)

    return both


def torch_row(name: str, module, size: str, rounds: int, pause: float, quiet: Quiet | None = None) -> dict | None:
    """The module's forward+backward against the raw cell's and against PyTorch's fused cell
    (where the spec declares its torch layout); None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    shape = SIZES[size]
    runs = {"raw cell": _ours(module, shape)[2], "cellspec.torch": torch_module_run(torch, module, shape)}
    if len(module.Cell.INPUTS) == 1 and len(module.Cell.OUTPUTS) == 1:
        runs["bare Function"] = bare_function_run(torch, module, shape)
    if module.Cell.TORCH is not None:
        runs[f"nn.{module.Cell.TORCH['module']}"] = _torch_native(torch, module, shape)[0]
    for f in runs.values():
        f()
        f()
    times, _, others = _time_rounds(runs, {}, rounds, pause, quiet)
    return {"spec": name, "size": size, "times": times, "others": others}


def jax_row(name: str, module, size: str, rounds: int, pause: float, quiet: Quiet | None = None) -> dict | None:
    """The JAX function's jitted value and gradient against the raw cell; None without JAX."""
    try:
        import jax
        import jax.numpy as jnp

        from .. import jax as csj
    except ImportError:
        return None
    T, B, I, H = SIZES[size]
    cell, xs, raw, _ = _ours(module, (T, B, I, H))
    apply, params = csj.function(module, dtype="float32", seed=0, **dim_sizes(module, I, H))
    x = jnp.asarray(next(iter(xs.values())))

    def loss(params, x):
        y, _ = apply(params, x)
        return y.sum()

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    def ours():
        jax.block_until_ready(grad(params, x))

    runs = {"raw cell": raw, "cellspec.jax": ours}
    for f in runs.values():
        f()
        f()
    times, _, others = _time_rounds(runs, {}, rounds, pause, quiet)
    return {"spec": name, "size": size, "times": times, "others": others}


def markdown(rows: dict[str, list[dict]]) -> str:
    """The three tables, times in ms and the ratios each is read by."""
    out = []
    if rows.get("lengths"):
        out += ["### Variable lengths (forward+backward, lengths uniform in [T/4, T])", "",
                "| spec | size | lengths=None ms | all T ms | ragged ms | ragged / full | mean steps / T | others |",
                "|---|---|---|---|---|---|---|---|"]
        for r in rows["lengths"]:
            t = r["times"]
            out.append(f"| {r['spec']} | {r['size']} | {t['lengths=None']:.2f} | {t['all T']:.2f} | {t['ragged']:.2f} | "
                       f"{t['ragged'] / t['lengths=None']:.2f} | {r['steps']:.2f} | {r['others']:.0%} |")
        out.append("")
    if rows.get("torch"):
        out += ["### cellspec.torch.Module (forward + autograd backward, one layer)", "",
                "`bare Function`: the raw cell inside a bare torch.autograd.Function (no Layer, no checks), "
                "the floor of any autograd wrapper of the kernels.", "",
                "| spec | size | raw cell ms | module ms | module / raw | bare Function / raw | PyTorch ms | module / PyTorch | others |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in rows["torch"]:
            t = r["times"]
            native = next((k for k in t if k.startswith("nn.")), None)
            theirs = f"{t[native]:.2f} | {t['cellspec.torch'] / t[native]:.2f}" if native else "n/a | n/a"
            bare = f"{t['bare Function'] / t['raw cell']:.3f}" if "bare Function" in t else "n/a"
            out.append(f"| {r['spec']} | {r['size']} | {t['raw cell']:.2f} | {t['cellspec.torch']:.2f} | "
                       f"{t['cellspec.torch'] / t['raw cell']:.3f} | {bare} | {theirs} | {r['others']:.0%} |")
        out.append("")
    if rows.get("jax"):
        out += ["### cellspec.jax.function (jitted value and gradient)", "",
                "| spec | size | raw cell ms | jax ms | jax / raw | others |", "|---|---|---|---|---|---|"]
        for r in rows["jax"]:
            t = r["times"]
            out.append(f"| {r['spec']} | {r['size']} | {t['raw cell']:.2f} | {t['cellspec.jax']:.2f} | "
                       f"{t['cellspec.jax'] / t['raw cell']:.3f} | {r['others']:.0%} |")
        out.append("")
    if rows.get("memory"):
        out += ["### Peak memory of one forward+backward (MiB, each in a fresh process)", "",
                "| spec | size | raw cell | cellspec.torch | PyTorch | cellspec.torch / PyTorch |", "|---|---|---|---|---|---|"]
        for r in rows["memory"]:
            p = r["peak_mib"]
            fmt = {k: "n/a" if v is None else f"{v:.1f}" for k, v in p.items()}
            ratio = f"{p['cellspec.torch'] / p['torch']:.2f}" if p.get("torch") and p.get("cellspec.torch") is not None else "n/a"
            out.append(f"| {r['spec']} | {r['size']} | {fmt['cellspec']} | {fmt['cellspec.torch']} | {fmt['torch']} | {ratio} |")
        out.append("")
    return "\n".join(out)


def interop_rows(modules: dict, sizes, rounds: int, pause: float, quiet: Quiet | None = None, memory: str | None = "S2", threads: int = 2) -> dict[str, list[dict]]:
    """The rows for the generated modules given by spec name, at each size: lengths, the torch
    module (and its peak memory at `memory` against the raw cell's and PyTorch's, each in a
    fresh process), the JAX function."""
    from .memory import peak_memory

    rows: dict[str, list[dict]] = {"lengths": [], "torch": [], "jax": [], "memory": []}
    for name, module in modules.items():
        for size in sizes:
            rows["lengths"].append(lengths_row(name, module, size, rounds, pause, quiet))
            for kind, row in (("torch", torch_row(name, module, size, rounds, pause, quiet)), ("jax", jax_row(name, module, size, rounds, pause, quiet))):
                if row is not None:
                    rows[kind].append(row)
        if memory:
            peaks = {w: peak_memory(w, module, name, SIZES[memory], threads) for w in ("cellspec", "cellspec.torch", "torch")}
            rows["memory"].append({"spec": name, "size": memory, "peak_mib": peaks})
    return rows
