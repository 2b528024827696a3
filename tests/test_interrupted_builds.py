"""A build killed at any point leaves every previous module intact: each file is the whole old
module or the whole new one, never a part, and the next build completes.

The build runs in a child process that kills itself with SIGKILL (no cleanup, no finally) at a
chosen point of `write_atomic`: before the temporary file exists, halfway through writing it,
before fsync, just before the rename, just after the first rename. Then a few builds are killed
from outside at a fraction of a measured build's time, wherever they happen to be, each checked to
have been still running.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cellspec.build import compile_spec

from conftest import ROOT

NAMES = ["rnn", "gru", "lstm"]
SPECS = [os.path.join(ROOT, "specs", f"{n}.yaml") for n in NAMES]

CHILD = textwrap.dedent(
    """
    import os, signal, sys, tempfile
    import cellspec.files as files
    from cellspec import cli

    point = sys.argv[1]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_mkstemp, real_fdopen, real_fsync, real_replace = tempfile.mkstemp, os.fdopen, os.fsync, os.replace

    def mkstemp(*a, **k):
        if point == "before-temp":
            die()
        return real_mkstemp(*a, **k)

    class HalfWriter:
        def __init__(self, f):
            self.f = f
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)
        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            die()
        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(*a, **k):
        f = real_fdopen(*a, **k)
        return HalfWriter(f) if point == "half-written" else f

    def fsync(fd):
        if point == "before-fsync":
            die()
        return real_fsync(fd)

    def replace(src, dst):
        if point == "before-rename":
            die()
        real_replace(src, dst)
        if point == "after-first-rename":
            die()

    tempfile.mkstemp, os.fdopen, os.fsync, os.replace = mkstemp, fdopen, fsync, replace
    sys.exit(cli.main(["build", "-q", *sys.argv[3:], "-o", sys.argv[2]]))
    """
)


@pytest.fixture(scope="module")
def new_sources():
    return {n: compile_spec(p).source.encode() for n, p in zip(NAMES, SPECS)}


def previous_build(out):
    """An output folder as an older build left it: each module's bytes differ from the new ones."""
    out.mkdir()
    (out / "__init__.py").write_text('"""Cells."""\n')
    old = {}
    for n in NAMES:
        old[n] = f'"""{n}: the module an older cellspec wrote."""\n\nclass Cell:\n    NAME = {n!r}\n'.encode()
        (out / f"{n}.py").write_bytes(old[n])
    return old


def assert_whole(out, old, new):
    """Every module is entirely the old one or entirely the new one, and importable source."""
    states = {}
    for n in NAMES:
        data = (out / f"{n}.py").read_bytes()
        assert data in (old[n], new[n]), f"{n}.py is neither the old module nor the new one ({len(data)} bytes)"
        compile(data, f"{n}.py", "exec")
        states[n] = "new" if data == new[n] else "old"
    leftovers = [f for f in os.listdir(out) if f not in {"__init__.py", *(f"{n}.py" for n in NAMES)}]
    # SIGKILL leaves no chance to remove the temporary file; it is hidden and not a module
    assert all(f.startswith(".cellspec-") and f.endswith(".tmp") for f in leftovers), leftovers
    return states


@pytest.mark.parametrize(
    "point, expected",
    [
        ("before-temp", {"rnn": "old", "gru": "old", "lstm": "old"}),
        ("half-written", {"rnn": "old", "gru": "old", "lstm": "old"}),
        ("before-fsync", {"rnn": "old", "gru": "old", "lstm": "old"}),
        ("before-rename", {"rnn": "old", "gru": "old", "lstm": "old"}),
        ("after-first-rename", {"rnn": "new", "gru": "old", "lstm": "old"}),
    ],
)
def test_a_build_killed_while_writing(tmp_path, new_sources, point, expected):
    out = tmp_path / "out"
    old = previous_build(out)
    run = subprocess.run([sys.executable, "-c", CHILD, point, str(out), *SPECS], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert assert_whole(out, old, new_sources) == expected
    # the next build completes over whatever the killed one left
    subprocess.run([sys.executable, "-m", "cellspec", "build", "-q", *SPECS, "-o", str(out)], check=True, cwd=ROOT)
    assert assert_whole(out, old, new_sources) == {n: "new" for n in NAMES}


@pytest.fixture(scope="module")
def build_seconds(tmp_path_factory):
    """How long a whole build of SPECS takes here, so that the kills below land inside one."""
    out = tmp_path_factory.mktemp("timed")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cellspec", "build", "-q", *SPECS, "-o", str(out)], check=True, cwd=ROOT)
    return time.perf_counter() - start


@pytest.mark.parametrize("fraction", [0.15, 0.3, 0.45, 0.6])
def test_a_build_killed_from_outside(tmp_path, new_sources, build_seconds, fraction):
    out = tmp_path / "out"
    old = previous_build(out)
    child = subprocess.Popen([sys.executable, "-m", "cellspec", "build", "-q", *SPECS, "-o", str(out)], cwd=ROOT)
    time.sleep(fraction * build_seconds)
    # the kill must land in a running build: one that had finished would prove nothing
    assert child.poll() is None, f"the build ended within {fraction * build_seconds:.2f} s"
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert_whole(out, old, new_sources)
    # the next build completes over whatever the killed one left
    subprocess.run([sys.executable, "-m", "cellspec", "build", "-q", *SPECS, "-o", str(out)], check=True, cwd=ROOT)
    assert assert_whole(out, old, new_sources) == {n: "new" for n in NAMES}
