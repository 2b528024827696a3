"""The `cellspec` command at its edges: a gradient check never passes a NaN or an infinity, and
every bad argument or unwritable output is one `error:` line, exit 2, with nothing written."""

import os
import subprocess
import sys

import numpy as np
import pytest

import cellspec.files
from cellspec import cli
from cellspec.gradcheck import check_model

from conftest import ROOT

RNN = os.path.join(ROOT, "specs", "rnn.yaml")
GRU = os.path.join(ROOT, "specs", "gru.yaml")


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cellspec", *args], cwd=cwd, capture_output=True, text=True)


def snapshot(folder):
    """Every path under folder, with the bytes of each file and the target of each link."""
    seen = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                seen[rel] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    seen[rel] = ("file", f.read())
            else:
                seen[rel] = ("dir",)
    return seen


def assert_one_error_line(r):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "error: " in lines[0], r.stderr
    return lines[0]


# --- non-finite gradients ------------------------------------------------------------------------

def _rnn_with_sqrt_abs_z(tmp_path, z_first: bool):
    """The base rnn with `z` (zeros) added as the first or the last param, and sqrt(abs(z)) added
    to h_new: the derivative of sqrt at 0 makes d_z NaN, every other gradient is right."""
    with open(RNN) as f:
        text = f.read()
    # with a param nn.RNN has not, the cell is no longer nn.RNN: its `torch:` section goes
    text = text[: text.index("torch:\n")]
    z = "  z: {shape: [hidden], init: zeros}\n"
    if z_first:
        text = text.replace("  W: [hidden, input]\n", z + "  W: [hidden, input]\n")
    else:
        text = text.replace("  b: [hidden]\n", "  b: [hidden]\n" + z)
    text = text.replace("h_new: tanh(W @ x + U @ h + b)\n", "h_new: tanh(W @ x + U @ h + b) + sqrt(abs(z))\n")
    path = tmp_path / "rnn_z.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("z_first", [False, True], ids=["z-last", "z-first"])
def test_check_fails_on_a_nan_gradient_wherever_its_param_is(tmp_path, z_first):
    r = run("check", str(_rnn_with_sqrt_abs_z(tmp_path, z_first)))
    assert r.returncode == 1, r.stdout + r.stderr
    head = r.stdout.splitlines()[0]
    assert head.startswith("rnn: FAILED  param z: gradient is NaN in 4 of 4 entries"), r.stdout
    assert "  param z: gradient is NaN in 4 of 4 entries" in r.stdout.splitlines()
    # the other arrays are still reported with their (small) errors
    assert any(line.startswith("  param W: ") and "e-" in line for line in r.stdout.splitlines())


class Affine:
    """y[t] = w*x[t] + a, h_T = h_0 + sum_t y[t], with a correct backward pass; `fault` spoils
    one thing: a NaN in the gradient of a param, or an inf in the output or the final state."""

    def __init__(self, fault=None):
        self.params = {"a": np.array([0.5, -1.0]), "w": np.array([1.0, 2.0])}
        self.fault = fault

    def forward(self, x, state):
        y = self.params["w"] * x + self.params["a"]
        final = {"h": state["h"] + y.sum(axis=0)}
        if self.fault == "output":
            y[0, 0, 1] = np.inf
        if self.fault == "final":
            final["h"][1, 0] = -np.inf
        return y, final, x

    def backward(self, x, dy, dstate):
        d_y = dy + dstate["h"][None]
        dparams = {"a": d_y.sum(axis=(0, 1)), "w": (d_y * x).sum(axis=(0, 1))}
        if self.fault in dparams:
            dparams[self.fault][-1] = np.nan
        return d_y * self.params["w"], dparams, {"h": dstate["h"].copy()}


def _check(fault, directions=None):
    rng = np.random.default_rng(0)
    x, state = rng.normal(size=(3, 2, 2)), {"h": rng.normal(size=(2, 2))}
    return check_model(Affine(fault), x, state, rng, directions=directions)


@pytest.mark.parametrize("directions", [None, 2])
def test_check_model_passes_the_fault_free_model(directions):
    result = _check(None, directions)
    assert result.nonfinite == {} and result.worst < 1e-8 and result.passed(1e-6)


@pytest.mark.parametrize("directions", [None, 2])
@pytest.mark.parametrize("param", ["a", "w"], ids=["first-param", "last-param"])
def test_check_model_fails_on_a_nan_gradient(param, directions):
    result = _check(param, directions)
    assert result.nonfinite == {f"param {param}": "gradient is NaN in 1 of 2 entries"}
    assert result.worst == np.inf and result.errors[f"param {param}"] == np.inf
    assert not result.passed(1e-6) and not result.passed(np.inf)
    assert result.worst_label() == f"param {param}"


@pytest.mark.parametrize(
    "fault, label, why",
    [("output", "output", "value is inf in 1 of 12 entries"), ("final", "final state h", "value is inf in 1 of 4 entries")],
)
def test_check_model_fails_on_an_infinite_output_or_state(fault, label, why):
    result = _check(fault)
    assert result.nonfinite[label] == why
    # the loss is inf or NaN at every perturbation, so every numerical gradient is named too
    assert all("numerical gradient is" in result.nonfinite[f"param {p}"] for p in ("a", "w"))
    assert not result.passed(1e-6) and result.worst_label() == label


# --- arguments ------------------------------------------------------------------------------------

@pytest.mark.parametrize("tol", ["0", "-1e-6", "nan", "inf", "-inf", "tiny"])
def test_tol_must_be_a_positive_finite_number(tol):
    r = run("check", RNN, f"--tol={tol}")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [f"cellspec check: error: argument --tol: {tol!r} is {'not a number' if tol == 'tiny' else 'not a positive finite number'}"]


@pytest.mark.parametrize("steps", ["0", "-3", "2.5"])
def test_steps_must_be_a_positive_whole_number(steps):
    r = run("check", RNN, f"--steps={steps}")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("cellspec check: error: argument --steps: ")


def test_catalog_of_a_missing_readme_is_one_error_line(tmp_path):
    r = run("catalog", RNN, "--readme", str(tmp_path / "nope.md"))
    assert assert_one_error_line(r) == f"{tmp_path / 'nope.md'}: error: cannot read: No such file or directory"
    assert os.listdir(tmp_path) == []


# --- outputs that cannot be written ---------------------------------------------------------------

def _file(tmp_path):
    (tmp_path / "afile").write_text("a file\n")
    return "afile"


def _under_file(tmp_path):
    (tmp_path / "afile").write_text("a file\n")
    return os.path.join("afile", "sub")


def _dangling(tmp_path):
    os.symlink(str(tmp_path / "missing"), tmp_path / "dangling")
    return "dangling"


def _module_is_a_folder(tmp_path):
    (tmp_path / "out" / "rnn.py").mkdir(parents=True)
    return "out"


def _init_is_a_folder(tmp_path):
    (tmp_path / "out" / "__init__.py").mkdir(parents=True)
    return "out"


@pytest.mark.parametrize(
    "make, message",
    [
        (_file, "error: output folder 'afile': it is not a directory"),
        (_under_file, "error: output folder 'afile/sub': it cannot be created: 'afile' is not a directory"),
        (lambda tmp_path: "", "error: output folder '': it is an empty path"),
        (_dangling, "error: output folder 'dangling': it is a symlink to a missing path"),
        (_module_is_a_folder, "error: cannot write out/rnn.py: it is a directory"),
        (_init_is_a_folder, "error: cannot write out/__init__.py: it is a directory"),
    ],
    ids=["file", "under-a-file", "empty", "dangling-symlink", "module-is-a-folder", "init-is-a-folder"],
)
def test_an_unwritable_output_is_one_error_line_and_nothing_is_written(tmp_path, make, message):
    output = make(tmp_path)
    before = snapshot(tmp_path)
    r = run("build", RNN, GRU, "-o", output, cwd=tmp_path)
    assert assert_one_error_line(r) == message
    assert r.stdout == ""
    assert snapshot(tmp_path) == before


def test_a_read_only_output_folder_is_refused_before_writing(tmp_path, monkeypatch, capsys):
    # root writes into a 0o500 folder all the same, so the refusal is shown with os.access as a
    # user without write permission would see it
    out = tmp_path / "out"
    out.mkdir()
    (out / "rnn.py").write_text("previous\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if os.path.abspath(p) == str(out) else real_access(p, mode, **k))
    assert cli.main(["build", "-q", RNN, "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"error: output folder {str(out)!r}: it is not writable\n"
    assert snapshot(tmp_path) == {"out": ("dir",), "out/rnn.py": ("file", b"previous\n")}


@pytest.mark.parametrize("existing", [True, False], ids=["into-a-package", "into-a-new-folder"])
def test_a_write_that_fails_midway_puts_everything_back(tmp_path, monkeypatch, capsys, existing):
    """Past every check, the file system may still refuse a write (a full disk, a read-only
    mount): the modules written before it get their old bytes back, new files and folders go."""
    out = tmp_path / "deep" / "out"
    if existing:
        out.mkdir(parents=True)
        (out / "rnn.py").write_text("previous\n")
    before = snapshot(tmp_path)
    real_write = cellspec.files.write_atomic

    def write_atomic(path, text):
        if path.endswith("gru.py"):
            raise OSError(28, "No space left on device")
        return real_write(path, text)

    monkeypatch.setattr(cellspec.files, "write_atomic", write_atomic)
    assert cli.main(["build", "-q", RNN, GRU, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {out / 'gru.py'}: cannot write (No space left on device); every file was left as it was\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_built_modules_get_an_ordinary_files_mode(tmp_path, umask, mode):
    out = tmp_path / "out"
    out.mkdir()
    (out / "gru.py").write_text("previous\n")
    os.chmod(out / "gru.py", 0o604)
    old = os.umask(umask)
    try:
        r = run("build", "-q", RNN, GRU, "-o", str(out))
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    modes = {f: os.stat(out / f).st_mode & 0o777 for f in sorted(os.listdir(out))}
    # new files: 0666 less the umask; a replaced file keeps its own mode
    assert modes == {"__init__.py": mode, "gru.py": 0o604, "rnn.py": mode}
    assert (out / "gru.py").read_text() != "previous\n"


def test_a_cell_name_too_long_for_numbas_cache_files_is_a_located_error(tmp_path):
    # the name is the module's file name, and Numba's cache files (<module>.<kernel>-<line>.py311.nbi)
    # add to it: at 225 characters they pass Linux's 255-byte limit on a file name
    spec = tmp_path / "long.yaml"
    with open(RNN) as f:
        spec.write_text(f.read().replace("name: rnn", "name: " + "r" * 225))
    r = run("build", str(spec), "-o", str(tmp_path / "out"))
    assert assert_one_error_line(r).startswith(f"{spec}:1:7: error: cell name is 225 characters long")
    assert os.listdir(tmp_path) == ["long.yaml"]
