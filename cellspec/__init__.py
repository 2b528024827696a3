"""cellspec: recurrent cells declared as equations, compiled to Numba forward and backward passes.

This module stays light: generated modules import `cellspec.runtime`, which must not pull in the
compiler (SymPy, Jinja2). `load` imports the compiler only when called.
"""

__version__ = "0.1.0"


def load(path: str):
    """Build the spec at `path` into a cache keyed by its hash and cellspec's version, and import
    the generated module."""
    from .build import load as _load

    return _load(path)
