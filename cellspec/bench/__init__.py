"""`cellspec bench`: the generated cell timed against its peers (PyTorch's fused cells, a
TorchScript loop, JAX, the GEMM floor), side by side in one process. Submodules, imports flowing
from `run` to the others:

* `run`: `bench_cell` and `scaling`, which warm up the peers and time them (the peers are listed
  in its docstring);
* `cells`: the sizes, the scaling axes, and the cells timed at a shape (ours, PyTorch's twin);
* `timing`: interleaved rounds, their medians, and the quiet-machine filter (`Quiet`);
* `memory`: the peak memory of one forward+backward, measured in a fresh process;
* `report`: a row of results, the markdown tables, results.json and results.md, the scaling figure;
* `peers`: the TorchScript loop printed from the IR and JAX's `lax.scan` over it;
* `floor`: the cell's matrix products alone, in the cells' BLAS or PyTorch's GEMM;
* `limit`: the machine's GEMM limit per core and the FLOPs of a cell's products;
* `compile`: a spec's build, first forward+backward and cached load, each in a fresh process;
* `profile`: a forward+backward's time by phase (`--profile`), from timers on the module's calls.

PyTorch, JAX and matplotlib are imported only when a peer or the figure needs them.
"""

from .cells import SCALING_H, SCALING_T, SIZES, dim_sizes
from .memory import memory_child, peak_memory
from .peers import jax_peer, torchscript_source
from .report import Row, environment, markdown, plot_scaling, write_results
from .run import bench_cell, scaling
from .timing import Quiet, cpu_reading, others_share

__all__ = [
    "SCALING_H", "SCALING_T", "SIZES", "Quiet", "Row", "bench_cell", "cpu_reading", "dim_sizes",
    "environment", "jax_peer", "markdown", "memory_child", "others_share", "peak_memory", "plot_scaling",
    "scaling", "torchscript_source", "write_results",
]
