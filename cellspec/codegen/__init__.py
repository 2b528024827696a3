"""Code generation: one folder per target, each consuming the same schedule (the backward plan
and the typed buffers of `cellspec.schedule`).

`cpu/` is the Numba target: SymPy printed for Numba (`printer.py`), the kernels (`loops.py`) and
the `Cell`'s methods (`bodies.py`) written with `kernel.py`'s writers, the module's tables and
docstring (`tables.py`), its layout (`render.py`, `templates/`), and its check with `ast`
(`verify.py`); `emit.py` puts them together. A GPU target would be a sibling folder that reads
the same schedule and writes its own kernels."""
