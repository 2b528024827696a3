"""The cache of `cellspec.load`: keyed by the spec and the compiler's own bytes, and checked before
anything in it is imported, so a planted, edited or stale module is rebuilt, never run."""

import hashlib
import json
import os
import sys

import pytest

import cellspec
import cellspec.cache as cache
from cellspec.build import compile_spec
from cellspec.cache import CacheError, cache_key

from conftest import ROOT

PLANTED = "CELLSPEC_TEST_PLANTED"


@pytest.fixture
def spec(tmp_path, monkeypatch, request):
    """A copy of the rnn spec under a cell name of its own, a cache folder of its own, and no
    module of this name left in sys.modules by an earlier test."""
    monkeypatch.setenv("CELLSPEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(PLANTED, raising=False)
    name = "cache_" + request.node.name.split("[")[0].removeprefix("test_")[:40]
    path = tmp_path / f"{name}.yaml"
    with open(os.path.join(ROOT, "specs", "rnn.yaml")) as f:
        path.write_text(f.read().replace("name: rnn", f"name: {name}"))
    yield path, name
    for m in [m for m in sys.modules if m.startswith("cellspec_cache_") and m.endswith(f"_{name}")]:
        del sys.modules[m]


def entry(path):
    """The cache folder of the spec at path."""
    return os.path.join(os.environ["CELLSPEC_CACHE"], cache_key(path.read_bytes()))


def forget(name):
    """Drop the imported module, as a new process would start without it."""
    for m in [m for m in sys.modules if m.startswith("cellspec_cache_") and m.endswith(f"_{name}")]:
        del sys.modules[m]


def write_manifest(folder, name, spec_bytes, module_bytes):
    """A manifest that matches the module beside it: what someone planting a module would write."""
    manifest = {
        "cell": name,
        "spec_sha256": hashlib.sha256(spec_bytes).hexdigest(),
        "compiler_sha256": cache.compiler_digest(),
        "module_sha256": hashlib.sha256(module_bytes).hexdigest(),
    }
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def test_an_entry_is_the_module_and_its_manifest(spec):
    path, name = spec
    module = cellspec.load(str(path))
    assert module.Cell.NAME == name
    folder = entry(path)
    assert sorted(f for f in os.listdir(folder) if f != "__pycache__") == sorted(["manifest.json", f"{name}.py"])
    source = compile_spec(str(path)).source.encode()
    with open(os.path.join(folder, f"{name}.py"), "rb") as f:
        assert f.read() == source
    with open(os.path.join(folder, "manifest.json")) as f:
        assert json.load(f) == {
            "cell": name,
            "spec_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "compiler_sha256": cache.compiler_digest(),
            "module_sha256": hashlib.sha256(source).hexdigest(),
        }


def test_a_hand_edited_module_is_rebuilt_not_imported(spec):
    path, name = spec
    cellspec.load(str(path))
    forget(name)
    module_file = os.path.join(entry(path), f"{name}.py")
    with open(module_file) as f:
        good = f.read()
    # a statement the module gate refuses, and that would show if it ran
    with open(module_file, "w") as f:
        f.write(good.replace("import math\n", f"import math\nimport os\nos.environ[{PLANTED!r}] = '1'\n", 1))
    module = cellspec.load(str(path))
    assert PLANTED not in os.environ
    assert module.Cell.NAME == name
    with open(module_file) as f:
        assert f.read() == good


def test_an_edit_the_module_gate_allows_is_still_rebuilt(spec):
    # the module's sha256 differs from the manifest's, so the edit is noticed even though the
    # edited module has the expected shape
    path, name = spec
    cellspec.load(str(path))
    forget(name)
    module_file = os.path.join(entry(path), f"{name}.py")
    with open(module_file) as f:
        good = f.read()
    assert "Do not edit" in good
    with open(module_file, "w") as f:
        f.write(good.replace("Do not edit", "Edited by hand", 1))
    assert "Edited by hand" not in cellspec.load(str(path)).__doc__
    with open(module_file) as f:
        assert f.read() == good


def test_a_planted_module_without_a_manifest_is_not_imported(spec):
    path, name = spec
    folder = entry(path)
    os.makedirs(folder)
    with open(os.path.join(folder, f"{name}.py"), "w") as f:
        f.write("raise RuntimeError('the planted module ran')\n")
    module = cellspec.load(str(path))
    assert module.Cell.NAME == name
    with open(os.path.join(folder, f"{name}.py")) as f:
        assert f.read() == compile_spec(str(path)).source


def test_a_planted_module_with_a_matching_manifest_fails_the_module_gate(spec):
    path, name = spec
    folder = entry(path)
    os.makedirs(folder)
    planted = f'"""{name}"""\nimport os\nos.environ[{PLANTED!r}] = "1"\n'.encode()
    with open(os.path.join(folder, f"{name}.py"), "wb") as f:
        f.write(planted)
    write_manifest(folder, name, path.read_bytes(), planted)
    module = cellspec.load(str(path))
    assert PLANTED not in os.environ and module.Cell.NAME == name


def test_the_module_of_another_spec_is_not_taken_for_this_ones(spec, tmp_path):
    # a well-formed module with a matching manifest, but built from other spec text: its
    # docstring names the other spec's sha256
    path, name = spec
    other = tmp_path / "other.yaml"
    other.write_text(path.read_text().replace("tanh(", "sigmoid("))
    other_source = compile_spec(str(other)).source.encode()
    folder = entry(path)
    os.makedirs(folder)
    with open(os.path.join(folder, f"{name}.py"), "wb") as f:
        f.write(other_source)
    write_manifest(folder, name, path.read_bytes(), other_source)
    module = cellspec.load(str(path))
    assert "sigmoid" not in module.__doc__ and "tanh" in module.__doc__


def test_another_compiler_gives_another_key_and_rebuilds(spec, monkeypatch):
    path, name = spec
    source = path.read_bytes()
    first_key = cache_key(source)
    cellspec.load(str(path))
    monkeypatch.setattr(cache, "compiler_digest", lambda: "0" * 64)
    assert cache_key(source) != first_key
    forget(name)
    cellspec.load(str(path))
    assert sorted(os.listdir(os.environ["CELLSPEC_CACHE"])) == sorted([first_key, cache_key(source)])


def test_a_manifest_of_another_compiler_is_stale(spec, monkeypatch):
    # the same folder (were two compilers to share a key): the manifest names the old compiler
    path, name = spec
    cellspec.load(str(path))
    folder = entry(path)
    monkeypatch.setattr(cache, "cache_key", lambda source: os.path.basename(folder))
    monkeypatch.setattr(cache, "compiler_digest", lambda: "0" * 64)
    forget(name)
    cellspec.load(str(path))
    with open(os.path.join(folder, "manifest.json")) as f:
        assert json.load(f)["compiler_sha256"] == "0" * 64


def test_the_compiler_digest_covers_python_and_templates_only(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    (package / "codegen" / "templates").mkdir(parents=True)
    (package / "build.py").write_text("x = 1\n")
    (package / "codegen" / "templates" / "cell.py.j2").write_text("{{ x }}\n")
    (package / "notes.txt").write_text("notes\n")
    monkeypatch.setattr(cache, "__file__", str(package / "build.py"))

    def digest():
        monkeypatch.setattr(cache, "_COMPILER_SHA256", None)
        return cache.compiler_digest()

    first = digest()
    assert len(first) == 64 and cache.compiler_digest() == first
    (package / "notes.txt").write_text("other notes\n")
    assert digest() == first
    (package / "codegen" / "templates" / "cell.py.j2").write_text("{{ y }}\n")
    assert digest() != first
    (package / "codegen" / "templates" / "cell.py.j2").write_text("{{ x }}\n")
    assert digest() == first
    (package / "build.py").write_text("x = 2\n")
    assert digest() != first


def test_the_compiler_digest_is_computed_once_per_process(monkeypatch):
    cache.compiler_digest()
    monkeypatch.setattr(os, "walk", lambda *a, **k: pytest.fail("walked the package again"))
    assert len(cache.compiler_digest()) == 64


def _a_file(tmp_path):
    (tmp_path / "afile").write_text("x\n")
    return tmp_path / "afile", "it is not a directory"


def _under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x\n")
    return tmp_path / "afile" / "cache", f"it cannot be created: {str(tmp_path / 'afile')!r} is not a directory"


@pytest.mark.parametrize("make", [_a_file, _under_a_file], ids=["a-file", "under-a-file"])
def test_a_cache_that_is_not_a_directory_is_a_cache_error(spec, tmp_path, monkeypatch, make):
    path, _ = spec
    cache, why = make(tmp_path)
    monkeypatch.setenv("CELLSPEC_CACHE", str(cache))
    with pytest.raises(CacheError) as e:
        cellspec.load(str(path))
    assert str(e.value) == f"CELLSPEC_CACHE={cache}: not a writable directory ({why})"


def test_a_read_only_cache_is_a_cache_error(spec, tmp_path, monkeypatch):
    # root writes into a 0o500 folder all the same: os.access stands in for a user who cannot
    path, _ = spec
    cache = tmp_path / "cache"
    cache.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if os.path.abspath(p) == str(cache) else real_access(p, mode, **k))
    with pytest.raises(CacheError, match=r"^CELLSPEC_CACHE=.*: not a writable directory \(it is not writable\)$"):
        cellspec.load(str(path))
    assert os.listdir(cache) == []


def test_a_write_the_file_system_refuses_is_a_cache_error(spec, monkeypatch):
    path, _ = spec

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache, "write_atomic", refuse)
    with pytest.raises(CacheError, match=r"^CELLSPEC_CACHE=.*: not a writable directory \(Permission denied\)$"):
        cellspec.load(str(path))


def test_a_cache_error_is_an_os_error():
    assert issubclass(CacheError, OSError)


def test_a_cached_load_imports_no_compiler(spec):
    """What a sweep pays per cell once its entry exists: a fresh process that loads the cached
    module and runs it imports neither SymPy nor Jinja2 nor any stage of the compiler."""
    import subprocess

    path, _ = spec
    cellspec.load(str(path))  # the entry, built here
    child = (
        "import sys, numpy as np, cellspec\n"
        "m = cellspec.load(sys.argv[1])\n"
        "cell = m.Cell(dtype='float32', seed=0, input=3, hidden=4)\n"
        "y, _, tape = cell.forward(np.ones((2, 1, 3), np.float32))\n"
        "cell.backward(tape, np.ones_like(y))\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('sympy', 'jinja2') or m in\n"
        "    ('cellspec.build', 'cellspec.spec', 'cellspec.ir', 'cellspec.autodiff', 'cellspec.schedule', 'cellspec.codegen.cpu.emit'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, cwd=ROOT, env=os.environ)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == []
