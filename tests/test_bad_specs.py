"""The corpus of bad specs: tests/bad_specs/*.yaml, one file each, ending in the line

    # expect: LINE:COL: error: MESSAGE

Every one goes through the real command line, `cellspec build`, into a folder that already holds a
module: the command must exit 2, print exactly `path:LINE:COL: error: MESSAGE` and nothing else (no
traceback), and leave every file of the folder as it was. Most specs are small edits of
specs/rnn.yaml (see tests/test_spec_errors.py for its numbered lines). To add a case, add a file.
"""

import os
import pathlib
import subprocess
import sys

import pytest

from cellspec import cli

CORPUS = pathlib.Path(__file__).resolve().parent / "bad_specs"
FILES = sorted(CORPUS.glob("*.yaml"))
MARK = "# expect: "


def expected(path: pathlib.Path) -> str:
    last = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("utf-8")
    assert last.startswith(MARK), f"{path.name} does not end in a '{MARK}...' line"
    return f"{path}:{last[len(MARK):]}"


def snapshot(folder: pathlib.Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture
def populated(tmp_path):
    """An output folder as a previous good build left it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "__init__.py").write_text("")
    (out / "rnn.py").write_text("# the module a previous build wrote\n")
    return out


def test_the_corpus_is_large_enough():
    assert len(FILES) >= 60
    assert len({expected(f).split(": error: ", 1)[1] for f in FILES}) >= 60  # distinct messages, not one case 60 times


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_bad_spec(path, populated, capsys):
    before = snapshot(populated)
    status = cli.main(["build", str(path), "-o", str(populated)])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_BAD_SPEC
    assert err == expected(path) + "\n"
    assert out == ""
    assert snapshot(populated) == before


def test_check_refuses_them_too(capsys):
    # `cellspec check` goes through the same front end; a few are enough to show it
    for path in FILES[:5]:
        assert cli.main(["check", str(path)]) == cli.EXIT_BAD_SPEC
        out, err = capsys.readouterr()
        assert (out, err) == ("", expected(path) + "\n")


def test_the_console_script_on_the_whole_corpus(populated):
    """One real process over every file: each error on its own line, in order, exit 2, no traceback,
    nothing written."""
    before = snapshot(populated)
    run = subprocess.run(
        [sys.executable, "-m", "cellspec", "build", *map(str, FILES), "-o", str(populated)],
        capture_output=True, text=True, encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [expected(f) for f in FILES]
    assert "Traceback" not in run.stderr
    assert snapshot(populated) == before
