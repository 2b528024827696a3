"""One module name for a generated module's kernels, whatever name the module is imported under.

Numba's cache is kept by source file, and a kernel loaded from it imports the module it was
compiled in by the name of that module's globals (numba#7075): a file compiled as
`generated.rnn` and later imported as `rnn` (its folder on sys.path) failed with "No module named
'generated'". `pin_kernels` names a generated module's kernels by the file's path instead.
Imports numba only.
"""

from __future__ import annotations

import hashlib
import os
import sys
import types

from numba.core.dispatcher import Dispatcher


def pin_kernels(module) -> None:
    """Name the module's kernels by its file's path: a module `_cellspec_kernels_<hash>` in
    sys.modules, holding a copy of the module's globals under that name (what Numba keeps as a
    compiled kernel's environment), so that every name the file is imported under shares one
    cache. Called as the module's `Cell` is defined (`CellBase.__init_subclass__`), after its
    kernels."""
    path = getattr(module, "__file__", None)
    if path is None:
        return
    alias = "_cellspec_kernels_" + hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:20]
    if alias not in sys.modules:
        pinned = types.ModuleType(alias)
        pinned.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        sys.modules[alias] = pinned
    for value in vars(module).values():
        if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
            value.py_func.__module__ = alias
