"""Build a spec and import its module from a folder of its own: the one loader behind the
`build_module` fixture (conftest.py) and run_built.py. One folder per module, because Numba's
cache of a module is keyed by its file."""

from __future__ import annotations

import itertools
import os
import textwrap

from cellspec.build import Built, compile_spec
from cellspec.files import import_file

_COUNTER = itertools.count()


def import_built(folder, built: Built):
    """Write `built.source` to `folder`/<cell name>.py and import it under a name no other
    module of this process has."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{built.cell.name}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(built.source)
    return import_file(path, f"cellspec_test_{next(_COUNTER)}_{built.cell.name}")


def build_module_in(folder, text_or_path, name: str | None = None) -> tuple[Built, object]:
    """Compile a spec, given as YAML text (dedented, written to `folder`/<name>.yaml, name
    defaulting to "cell") or as the path of a spec file, and import its module from `folder`."""
    os.makedirs(folder, exist_ok=True)
    if isinstance(text_or_path, os.PathLike) or "\n" not in text_or_path:
        path = os.fspath(text_or_path)
    else:
        path = os.path.join(folder, f"{name or 'cell'}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text_or_path))
    built = compile_spec(path)
    return built, import_built(folder, built)
