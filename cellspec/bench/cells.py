"""The benchmark's shapes and the cells it times: the sizes S1..S5 (and tiny), the scaling
axes, and each cell at a benchmark's shape: the generated cell (`_ours`) and, for a spec that
declares its PyTorch layout (`torch:`, the generated `Cell.TORCH`), PyTorch's fused twin
(`_torch_native`)."""

from __future__ import annotations

import numpy as np

from ..runtime import tied
from ..torch_layout import torch_kwargs

SIZES = {
    "S1": (100, 32, 128, 128),
    "S2": (100, 64, 256, 256),
    "S3": (50, 16, 512, 512),
    "S4": (1000, 1, 32, 64),
    "S5": (200, 128, 64, 64),
    "tiny": (5, 2, 4, 4),
}

SCALING_T = (25, 50, 100, 200, 400, 800)
SCALING_H = (32, 64, 128, 256, 512)


def dim_sizes(cell_module, input_size: int, hidden: int) -> dict[str, int]:
    """Sizes for a cell's dims from a benchmark's I and H: `input` is I, a dim named `proj` is
    H/2, `modules` is 4, every other dim is H; constraints make dims equal."""
    sizes = {}
    for d in cell_module.Cell.DIMS:
        sizes[d] = input_size if d == "input" else max(1, hidden // 2) if d == "proj" else 4 if d == "modules" else hidden
    return tied(cell_module.Cell.CONSTRAINTS, sizes)


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


def _torch_native(torch, cell_module, shape: tuple):
    """PyTorch's fused twin of a spec (the module its `torch:` section names, at the sizes the
    cell has at this shape) and its input: (forward+backward with dy = 1, forward alone)."""
    T, B, I, H = shape
    kwargs = torch_kwargs(cell_module.Cell(dtype="float32", seed=0, **dim_sizes(cell_module, I, H)))
    native = getattr(torch.nn, kwargs.pop("mode"))(**kwargs)
    xt = torch.tensor(np.random.default_rng(0).normal(size=(T, B, kwargs["input_size"])).astype(np.float32), requires_grad=True)

    dy = None

    def both():
        nonlocal dy
        # as a training step after optimizer.zero_grad() (set_to_none, torch's default)
        native.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = native(xt)
        dy = torch.ones_like(y) if dy is None else dy
        y.backward(dy)

    def forward():
        with torch.no_grad():
            native(xt)

    return both, forward
