"""The cache behind `cellspec.load`: keyed by the spec's bytes, cellspec's version and the
compiler's own bytes, and checked before anything in it is imported."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys

from . import __version__
from .codegen.cpu.verify import GeneratedCodeError, verify_module
from .files import folder_problem, import_file, write_atomic


class CacheError(OSError):
    """The cache folder of `load` (CELLSPEC_CACHE) is not a writable directory."""


MANIFEST = "manifest.json"
_CELL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_COMPILER_SHA256: str | None = None


def compiler_digest() -> str:
    """sha256 over the relative path and bytes of every .py and .j2 file of the cellspec package,
    once per process. An edit to the compiler that leaves the version string alone (an editable
    install) must still give new cache keys. Files that do not shape modules (cli, bench) count
    too: a needless rebuild costs seconds, a stale module a wrong answer."""
    global _COMPILER_SHA256
    if _COMPILER_SHA256 is None:
        root = os.path.dirname(os.path.abspath(__file__))
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            files += [os.path.relpath(os.path.join(folder, n), root) for n in names if n.endswith((".py", ".j2"))]
        h = hashlib.sha256()
        for rel in sorted(f.replace(os.sep, "/") for f in files):
            with open(os.path.join(root, rel), "rb") as f:
                data = f.read()
            h.update(f"{rel}\0{len(data)}\0".encode() + data)
        _COMPILER_SHA256 = h.hexdigest()
    return _COMPILER_SHA256


def cache_key(source: bytes) -> str:
    """The cache folder name of a spec: its bytes, cellspec's version and the compiler's bytes."""
    return hashlib.sha256(source + b"\0" + __version__.encode() + b"\0" + compiler_digest().encode()).hexdigest()[:24]


def cache_dir() -> str:
    base = os.environ.get("CELLSPEC_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cellspec")
    return base


def _cache_error(base: str, why: str) -> CacheError:
    label = f"CELLSPEC_CACHE={base}" if os.environ.get("CELLSPEC_CACHE") else f"cache folder {base}"
    return CacheError(f"{label}: not a writable directory ({why})")


def load(path: str):
    """Compile the spec at `path` into the cache (keyed by the spec's bytes, cellspec's version
    and the compiler's own bytes) unless a checked entry is there, and import the module."""
    with open(path, "rb") as f:
        source = f.read()
    key = cache_key(source)
    folder = os.path.join(cache_dir(), key)
    entry = _checked_entry(folder, hashlib.sha256(source).hexdigest())
    if entry is None:
        entry = _build_entry(path, source, folder)
    module_path, cell_name = entry
    name = f"cellspec_cache_{key}_{cell_name}"
    if name in sys.modules:
        return sys.modules[name]
    return import_file(module_path, name)


def _checked_entry(folder: str, spec_sha256: str) -> tuple[str, str] | None:
    """(module path, cell name) of a cache entry that is what this spec and compiler build, or
    None. Anyone who can write the folder could have put a module there, or edited one: its
    manifest must name this spec and compiler, the module must have the sha256 the manifest
    records, name the spec's sha256 in its docstring, and pass the module gate."""
    try:
        with open(os.path.join(folder, MANIFEST), "rb") as f:
            manifest = json.loads(f.read())
        name = manifest["cell"]
        if not isinstance(name, str) or not _CELL_NAME.match(name):
            return None
        if manifest["spec_sha256"] != spec_sha256 or manifest["compiler_sha256"] != compiler_digest():
            return None
        module_path = os.path.join(folder, f"{name}.py")
        with open(module_path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != manifest["module_sha256"]:
            return None
        tree = verify_module(data.decode("utf-8"), name)
        if f"(sha256 {spec_sha256})" not in (ast.get_docstring(tree) or ""):
            return None
    except (OSError, ValueError, KeyError, TypeError, RecursionError, GeneratedCodeError):
        return None
    return module_path, name


def _build_entry(path: str, source: bytes, folder: str) -> tuple[str, str]:
    """Compile the spec and write its module, then its manifest (so an entry whose manifest is
    there is whole), over whatever the folder held."""
    base = cache_dir()
    problem = folder_problem(base)
    if problem:
        raise _cache_error(base, problem)
    from .build import compile_spec  # the compiler (SymPy): imported only when there is a spec to build

    built = compile_spec(path, source)
    module_path = os.path.join(folder, f"{built.cell.name}.py")
    manifest = {
        "cell": built.cell.name,
        "spec_sha256": hashlib.sha256(source).hexdigest(),
        "compiler_sha256": compiler_digest(),
        "module_sha256": hashlib.sha256(built.source.encode("utf-8")).hexdigest(),
    }
    try:
        os.makedirs(folder, exist_ok=True)
        write_atomic(module_path, built.source)
        write_atomic(os.path.join(folder, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise _cache_error(base, e.strerror or str(e)) from None
    return module_path, built.cell.name
