"""The bench's memory measurement: the peak resident memory that one forward+backward adds,
measured in a fresh process (`peak_memory` runs `memory_child`)."""

from __future__ import annotations

import json

from .cells import _ours, _torch_native


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def memory_child(argv: list[str]) -> None:
    """In a fresh process: one forward+backward of `which` (cellspec's module at a path,
    "cellspec.torch" for that cell in `cellspec.torch.Module`, or PyTorch's native cell), printing the peak resident memory it added, in MiB, as JSON. The
    peak is the kernel's VmHWM, reset just before the run (write 5 to /proc/self/clear_refs).
    The warm-up (Numba's compile, oneDNN's first primitives) runs at another, tiny shape, so that
    no buffer of the measured shape is already resident when the measurement starts."""
    from ..files import import_file

    which, path, module_name, threads = argv[0], argv[1], argv[2], int(argv[3])
    shape = tuple(map(int, argv[4:8]))
    # under the parent's module name: Numba's cache ties a kernel to the module it was compiled
    # in, and loads it in another process only under that name. PyTorch's twin reads the
    # module's TORCH table.
    module = import_file(path, module_name)
    if which == "cellspec":
        from ..blas import set_threads

        set_threads(threads)

        def prepare(*shape):
            return _ours(module, shape)[2]
    else:
        import torch

        torch.set_num_threads(threads)
        if which == "cellspec.torch":
            from ..blas import set_threads
            from .interop import torch_module_run

            set_threads(threads)

            def prepare(*shape):
                return torch_module_run(torch, module, shape)
        else:

            def prepare(*shape):
                return _torch_native(torch, module, shape)[0]
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

    args = [which, module.__file__, module.__name__, str(threads), *map(str, shape)]
    code = "import sys; from cellspec.bench.memory import memory_child; memory_child(sys.argv[1:])"
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"note: the memory of {which} {name} was not measured: {(run.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])["peak_mib"]
