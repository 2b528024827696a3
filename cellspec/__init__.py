"""cellspec: recurrent cells declared as equations, compiled to Numba forward and backward passes.

This module stays light: generated modules import `cellspec.runtime`, which must not pull in the
compiler (SymPy, Jinja2). `load` imports the compiler only when called, and `Layer` (numpy, the
runtime and Numba) is imported on first use, as are `cellspec.torch` and `cellspec.jax` (the
only modules that import PyTorch and JAX, optional dependencies: the `torch` and `jax` extras).
"""

__version__ = "0.1.0"


def load(path: str):
    """Build the spec at `path` into a cache keyed by the spec's bytes, cellspec's version and the
    compiler's own sources, and import the generated module once its manifest and the module gate
    accept it."""
    from .cache import load as _load

    return _load(path)


def __getattr__(name: str):
    if name == "Layer":
        from .layer import Layer

        return Layer
    if name in ("jax", "torch"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cellspec' has no attribute {name!r}")
