"""`cellspec bench`: the generated cell against its peers, side by side in one process.

Peers, all float32 on the CPU, forward and backward over the whole sequence:

* PyTorch's fused `nn.RNN` / `nn.LSTM` / `nn.GRU`, for the specs that are those cells (that
  declare their layout, `torch:`);
* a TorchScript loop over the same equations, printed from the cell's IR: what a researcher
  writes today for a custom cell, the fair peer for every spec;
* JAX: `lax.scan` over the same IR with `value_and_grad`, jitted (see `peers.jax_peer`);
* the floor: the cell's matrix products alone (the hoisted product, one product per step each
  way, and the weight and input gradients), in the cells' BLAS (the per-step products through
  the kernels' own `matmul`, jitted), cut into the same batch chunks on threads as the cell's
  call (see `cellspec.runtime`);
* where PyTorch has the cell, the same products in one pass through `torch.mm` (MKL in PyTorch's
  x86 CPU builds): what the products cost in the BLAS of PyTorch's fused cells, so that
  `torch.mm floor / torch` says how much of a gap to PyTorch is the GEMM's.

Runs are interleaved (every peer once per round, with a pause before each so that the previous
peer's spinning BLAS threads are parked, then 50 ms of untimed calls so that the timed one runs
back to back with them, as in a training loop: `timing.WARM_S`); times are the medians of the
rounds, ratios the medians of each round's ratio (`timing.paired_ratio`). PyTorch and
JAX are optional (`pip install -e ".[bench]"`); a peer that is missing is reported as n/a.
"""

from __future__ import annotations

from .. import blas
from .cells import SCALING_H, SCALING_T, SIZES, _ours, _torch_native
from .floor import floor, floor_torch
from .limit import gemm_peak, product_flops
from .peers import jax_peer, torchscript_source
from .report import Row
from .timing import Quiet, _time_rounds, medians, time_rounds


def _peers(cell_module, schedule, shape: tuple, peers: set[str]):
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
            if "torch" in peers and cell.TORCH is not None:
                runs["torch"], fwd_runs["torch"] = _torch_native(torch, cell_module, shape)
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


def bench_cell(name: str, cell_module, schedule, size: str, rounds: int, peers: set[str], pause: float = 0.2, quiet: Quiet | None = None) -> Row:
    T, B, I, H = SIZES[size]
    runs, fwd_runs, cell, xs = _peers(cell_module, schedule, (T, B, I, H), peers)
    both, forward, others = time_rounds(runs, fwd_runs, rounds, pause, quiet)
    _, _, tape = cell.forward(xs if len(xs) > 1 else next(iter(xs.values())))
    per_step = tape.per_step_nbytes / (T * B)
    limit = gemm_peak() * blas.threads()
    return Row(name, size, (T, B, I, H), medians(both), medians(forward), per_step, others, flops=product_flops(schedule, cell.dims, T, B), limit=limit,
               rounds=both, forward_rounds=forward)


def scaling(cell_module, schedule, rounds: int, pause: float, quiet: Quiet | None = None) -> dict:
    """Forward+backward time against T (B=32, I=H=128) and against H (T=100, B=32, I=H), for
    cellspec and PyTorch's native cell where there is one: {"T": [...], "H": [...]} of
    (value, {peer: ms}), and "torch": the torch.nn class of that cell (None without one)."""
    out = {"torch": (cell_module.Cell.TORCH or {}).get("module"), "T": [], "H": []}
    for axis, values in (("T", SCALING_T), ("H", SCALING_H)):
        for v in values:
            shape = (v, 32, 128, 128) if axis == "T" else (100, 32, v, v)
            runs = _peers(cell_module, schedule, shape, {"torch"})[0]
            runs = {k: f for k, f in runs.items() if k in ("cellspec", "torch")}
            times, _, _ = _time_rounds(runs, {}, rounds, pause, quiet)
            out[axis].append((v, times))
    return out
