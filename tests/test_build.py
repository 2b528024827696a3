"""Builds: generated/ is what specs/ builds, builds are deterministic, modules stand alone, writes
are atomic, skip unchanged files and keep ordinary modes, and `cellspec.load` caches by spec hash
(tests/test_cache.py checks what the cache holds before it is imported)."""

import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cellspec
from cellspec.build import compile_spec
from cellspec.files import write_atomic
from cellspec.catalog import tape_values
from cellspec.lower import build_ir
from cellspec.spec import load_spec

from conftest import ROOT, SPECS, generated, small_dims


def _build(out, *extra_env):
    env = dict(os.environ)
    for k, v in extra_env:
        env[k] = v
    subprocess.run([sys.executable, "-m", "cellspec", "build", "-q", *SPECS, "-o", str(out)], check=True, cwd=ROOT, env=env)
    return {f: (out / f).read_bytes() for f in sorted(os.listdir(out)) if f.endswith(".py")}


def test_generated_is_what_specs_build(tmp_path):
    built = _build(tmp_path)
    committed = sorted(f for f in os.listdir(os.path.join(ROOT, "generated")) if f.endswith(".py"))
    assert sorted(built) == committed
    for name, data in built.items():
        with open(os.path.join(ROOT, "generated", name), "rb") as f:
            assert f.read() == data, f"generated/{name} is stale: run `cellspec build specs/*.yaml`"


def test_builds_are_identical_across_hash_seeds(tmp_path):
    a = _build(tmp_path / "a", ("PYTHONHASHSEED", "1"))
    b = _build(tmp_path / "b", ("PYTHONHASHSEED", "12345"))
    assert a == b


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_header_names_spec_hash_version(path):
    source = compile_spec(path).source
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    head = source[:600]
    assert f"Generated from specs/{os.path.basename(path)} (sha256 {digest}) by cellspec {cellspec.__version__}" in head
    assert "Do not edit" in head
    assert ROOT not in source


def test_header_names_the_code_its_kernels_compile_in():
    # the modules a generated module takes jitted code from are COMPILED_IN, and the header holds
    # their bytes' sha256, so that changing them changes the module and Numba's cache with it
    from cellspec.codegen.cpu.emit import COMPILED_IN, compiled_in_digest

    h = hashlib.sha256()
    for name in COMPILED_IN:
        with open(os.path.join(ROOT, "cellspec", name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    assert compiled_in_digest() == h.hexdigest()
    for path in SPECS:
        source = compile_spec(path).source
        assert f"owned and sums of sha256 {h.hexdigest()}." in source[:800]
        imported = set(re.findall(r"^from cellspec\.(\w+) import", source, re.M)) - {"runtime"}
        # the runtime is Python that the kernels never compile in; every other module is
        assert imported <= {n[:-3] for n in COMPILED_IN}, (path, imported)
        assert "from cellspec import runtime" in source


def test_generated_modules_need_no_compiler():
    code = (
        "import sys\n"
        "from generated import lstm, gru, rnn\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('sympy', 'jinja2') or m in ('cellspec.build', 'cellspec.cache', 'cellspec.spec')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_unchanged_module_is_not_rewritten(tmp_path):
    target = tmp_path / "m.py"
    assert write_atomic(str(target), "x = 1\n")
    os.utime(target, (1, 1))
    assert not write_atomic(str(target), "x = 1\n")
    assert os.stat(target).st_mtime == 1
    assert write_atomic(str(target), "x = 2\n")
    assert target.read_text() == "x = 2\n"
    assert [f for f in os.listdir(tmp_path)] == ["m.py"]


def test_written_files_get_the_mode_of_an_ordinary_file(tmp_path):
    # mkstemp makes its file 0600; a module must be readable by whoever may read the folder
    old = os.umask(0o022)
    try:
        assert write_atomic(str(tmp_path / "new.py"), "x = 1\n")
        (tmp_path / "kept.py").write_text("x = 1\n")
        os.chmod(tmp_path / "kept.py", 0o640)
        assert write_atomic(str(tmp_path / "kept.py"), "x = 2\n")
        (tmp_path / "public.py").write_text("x = 1\n")
        os.chmod(tmp_path / "public.py", 0o644)
        assert write_atomic(str(tmp_path / "public.py"), "x = 2\n")
    finally:
        os.umask(old)
    modes = {f: os.stat(tmp_path / f).st_mode & 0o777 for f in os.listdir(tmp_path)}
    assert modes == {"new.py": 0o644, "kept.py": 0o640, "public.py": 0o644}


def test_load_builds_into_a_cache_keyed_by_the_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLSPEC_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "mine.yaml"
    with open(os.path.join(ROOT, "specs", "rnn.yaml")) as f:
        text = f.read()
    spec.write_text(text.replace("name: rnn", "name: mine"))
    first = cellspec.load(str(spec))
    assert first.Cell.NAME == "mine"
    assert cellspec.load(str(spec)) is first
    spec.write_text(text.replace("name: rnn", "name: mine").replace("tanh(", "sigmoid("))
    second = cellspec.load(str(spec))
    assert second is not first
    assert "sigmoid" in second.__doc__
    assert len(os.listdir(tmp_path / "cache")) == 2


def test_a_second_process_loads_the_kernels_from_numbas_cache(tmp_path):
    """A module imported with import_file compiles once; a new process importing it again (under
    the same name) loads every kernel from Numba's cache instead of compiling."""
    spec = tmp_path / "cached.yaml"
    with open(os.path.join(ROOT, "specs", "rnn.yaml")) as f:
        spec.write_text(f.read().replace("name: rnn", "name: cached"))
    write_atomic(str(tmp_path / "cached.py"), compile_spec(str(spec)).source)
    child = (
        "import sys, numpy as np\n"
        "from cellspec.files import import_file\n"
        "m = import_file(sys.argv[1], 'cellspec_test_cached')\n"
        "cell = m.Cell(dtype='float32', seed=0, input=3, hidden=4)\n"
        "y, _, tape = cell.forward(np.ones((2, 1, 3), np.float32))\n"
        "cell.backward(tape, np.ones_like(y))\n"
        "hits = sum(sum(f.stats.cache_hits.values()) for f in (m._loop_forward, m._loop_backward))\n"
        "misses = sum(sum(f.stats.cache_misses.values()) for f in (m._loop_forward, m._loop_backward))\n"
        "print(hits, misses)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", child, str(tmp_path / "cached.py")], capture_output=True, text=True, cwd=ROOT) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr
    assert runs[0].stdout.split() == ["0", "2"]  # compiled both kernels
    assert runs[1].stdout.split() == ["2", "0"]  # loaded both from the cache


@pytest.mark.parametrize("path", SPECS, ids=lambda p: os.path.basename(p)[:-5])
def test_the_catalogs_tape_formula_is_what_the_tape_holds(path):
    # the README's "tape per step and sequence" column, checked against a real tape: one more
    # step adds that many values per sequence (the stacked weights saved beside it do not grow)
    cell_ir = build_ir(load_spec(path))
    module = generated(cell_ir.name)
    dims = small_dims(module)
    cell = module.Cell(dtype="float32", seed=0, **dims)
    cell.threads = 1
    B = 3

    def tape_bytes(T):
        rng = np.random.default_rng(0)
        x = {n: rng.normal(size=(T, B, cell.dims[d])).astype(np.float32) for n, d in cell.INPUTS}
        _, _, tape = cell.forward(x if len(x) > 1 else next(iter(x.values())))
        return tape.per_step_nbytes

    # the formula is a sum of terms "count*dim" or "dim"
    per_step = 0
    for term in tape_values(cell_ir).split(" + "):
        count, _, dim = term.rpartition("*")
        per_step += int(count or 1) * cell.dims[dim]
    assert tape_bytes(5) - tape_bytes(4) == 4 * B * per_step


def test_a_call_compiles_only_the_kernels_it_runs(build_module):
    """Numba compiles a kernel at its first call, in the dtype of that call: a float32
    forward+backward with no layer above compiles the taped forward and the plain backward, in
    float32 only; the inference twin compiles at the first tape=False call, the dseq twin at the
    first backward given dseq."""
    _, m = build_module(os.path.join(ROOT, "specs", "lstm.yaml"), "lazy")
    cell = m.Cell(dtype="float32", seed=0, input=3, hidden=4)
    x = np.ones((2, 1, 3), np.float32)
    y, _, tape = cell.forward(x)
    cell.backward(tape, np.ones_like(y))

    def compiled():
        return {n: len(getattr(m, n).signatures) for n in ("_loop_forward", "_loop_infer", "_loop_backward", "_loop_backward_dseq")}

    assert compiled() == {"_loop_forward": 1, "_loop_infer": 0, "_loop_backward": 1, "_loop_backward_dseq": 0}
    floats = {str(a.dtype) for sig in m._loop_forward.signatures for a in sig if hasattr(a, "dtype")} - {"int64"}
    assert floats == {"float32"}
    cell.forward(x, tape=False)
    cell.backward(tape, np.ones_like(y), dseq={"h": np.ones((2, 1, 4), np.float32)})
    assert compiled() == {"_loop_forward": 1, "_loop_infer": 1, "_loop_backward": 1, "_loop_backward_dseq": 1}
