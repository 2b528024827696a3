"""The generated Cell API: checks before any kernel runs, initialisation, states and tapes."""

import os
import sys

import numpy as np
import pytest

from cellspec.runtime import ShapeError

from conftest import ROOT, generated

lstm = generated("lstm")
gru = generated("gru")


def cell(**kw):
    return lstm.Cell(input=3, hidden=4, **{"seed": 0, **kw})


def test_params_have_declared_shapes_and_dtype():
    c = cell(dtype="float32")
    assert list(c.params) == ["W_i", "W_f", "W_g", "W_o", "U_i", "U_f", "U_g", "U_o", "b_i", "b_f", "b_g", "b_o"]
    assert c.params["W_i"].shape == (4, 3) and c.params["U_o"].shape == (4, 4) and c.params["b_f"].shape == (4,)
    assert all(p.dtype == np.float32 for p in c.params.values())


def test_default_init_is_pytorch_uniform_and_seeded():
    a, b = cell(seed=7), cell(seed=7)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k])
        assert np.all(np.abs(a.params[k]) <= 1 / np.sqrt(4))
    assert not np.array_equal(cell(seed=8).params["W_i"], a.params["W_i"])


def test_sizes_are_checked():
    with pytest.raises(TypeError, match="missing hidden"):
        lstm.Cell(input=3)
    with pytest.raises(TypeError, match="unknown width"):
        lstm.Cell(input=3, hidden=4, width=2)
    with pytest.raises(ValueError, match="positive integer"):
        lstm.Cell(input=3, hidden=0)
    with pytest.raises(ValueError, match="dtype"):
        lstm.Cell(input=3, hidden=4, dtype="float16")


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((5, 2, 4)), r"input 'x' has shape \[5, 2, 4\], expected \[T,B,input\] = \[5, 2, 3\]"),
        (np.zeros((5, 2, 3), np.float32), "input 'x' has dtype float32, but this cell is float64"),
        (np.zeros((5, 3)), r"must be a 3-d numpy array \[T,B,input\]"),
        ([[[0.0] * 3]], r"must be a 3-d numpy array"),
        (np.zeros((0, 2, 3)), "T and B must be at least 1"),
    ],
)
def test_bad_inputs_raise_before_any_kernel(x, message):
    with pytest.raises(ShapeError, match=message):
        cell().forward(x)


def test_bad_states_and_params_raise():
    c = cell()
    x = np.zeros((5, 2, 3))
    with pytest.raises(ShapeError, match="state must be None or a dict with the keys c, h"):
        c.forward(x, {"h": np.zeros((2, 4))})
    with pytest.raises(ShapeError, match=r"state 'c' has shape \[3, 4\], expected \[B,hidden\] = \[2, 4\]"):
        c.forward(x, {"h": np.zeros((2, 4)), "c": np.zeros((3, 4))})
    c.params["U_i"] = np.zeros((4, 5))
    with pytest.raises(ShapeError, match=r"param 'U_i' has shape \[4, 5\]"):
        c.forward(x)


def test_backward_checks_dy_and_tape():
    c, other = cell(), cell()
    y, _, tape = c.forward(np.zeros((5, 2, 3)))
    with pytest.raises(ShapeError, match=r"dy has shape \[5, 2, 3\], expected \[T,B,hidden\] = \[5, 2, 4\]"):
        c.backward(tape, np.zeros((5, 2, 3)))
    with pytest.raises(ShapeError, match="tape must be the one this cell's forward returned"):
        other.backward(tape, np.zeros_like(y))


def test_non_contiguous_input_is_converted_not_misread():
    c = cell()
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).transpose(1, 0, 2)
    assert not x.flags.c_contiguous
    y1, _, _ = c.forward(x)
    y2, _, _ = c.forward(np.ascontiguousarray(x))
    assert np.array_equal(y1, y2)


def test_state_carries_across_calls():
    c = cell()
    x = np.random.default_rng(1).normal(size=(6, 2, 3))
    y_all, _, _ = c.forward(x)
    y1, s1, _ = c.forward(x[:3])
    y2, _, _ = c.forward(x[3:], s1)
    assert np.allclose(np.concatenate([y1, y2]), y_all, rtol=0, atol=1e-14)


def test_tape_keeps_only_what_backward_reads():
    _, _, tape = cell().forward(np.zeros((5, 2, 3)))
    # h and c sequences, the four gates, and the two stacked weight matrices, as TAPE says
    assert sorted(tape.arrays) == sorted(name for name, _, _, _ in tape.cell.TAPE)
    held = sorted((role, value) for _, role, value, _ in tape.cell.TAPE)
    assert held == sorted([("states", "h"), ("states", "c"), *(("values", g) for g in "ifgo"), ("weights", "x"), ("weights", "h")])
    assert tape.per_step_nbytes == 6 * 5 * 2 * 4 * 8 + 2 * 2 * 4 * 8  # 6 values of T=5 steps, plus each state's initial row


def test_relu_derivative_reads_the_saved_output():
    # relu' = step(relu(x)): the backward pass reads h, not the pre-activations W @ x and U @ h
    from conftest import generated

    relu_cell = generated("rnn_relu").Cell(input=3, hidden=4, seed=0)
    _, _, tape = relu_cell.forward(np.zeros((5, 2, 3)))
    weights = {name for name, role, _, _ in relu_cell.TAPE if role == "weights"}
    assert [k for k in tape.arrays if k not in weights] == [tape.saved("states", "h")]


def test_gru_layout_and_extra_bias():
    c = gru.Cell(input=3, hidden=4, seed=0)
    assert list(c.params)[-1] == "b_hn"
    y, state, _ = c.forward(np.zeros((2, 1, 3)))
    assert set(state) == {"h"}


def test_init_takes_self_positionally_so_no_dim_collides_with_it():
    # the spec refuses a dim named `self` (tests/bad_specs/dim-reserved-self.yaml); the signature
    # does not rely on that
    rnn = generated("rnn")

    class Cell(rnn.Cell):
        DIMS = [*rnn.Cell.DIMS, "self"]

    assert Cell(input=3, hidden=4, self=2, seed=0).dims == {"input": 3, "hidden": 4, "self": 2}


def test_tied_sizes_follow_the_right_side_of_each_constraint_through_chains():
    from cellspec.runtime import tied

    assert tied([("input", "hidden")], {"input": 3, "hidden": 5}) == {"input": 5, "hidden": 5}
    assert tied([("a", "b"), ("b", "c")], {"a": 1, "b": 2, "c": 3}) == {"a": 3, "b": 3, "c": 3}
    # gradcheck's default sizes and the bench's sizes tie dims by that one rule
    from cellspec.bench.cells import dim_sizes
    from cellspec.gradcheck import default_sizes
    from conftest import generated

    mut1 = generated("mut1")
    assert default_sizes(mut1) == {"input": 4, "hidden": 4}
    assert dim_sizes(mut1, 32, 64) == {"input": 64, "hidden": 64}


KERNEL_NAMES_SCRIPT = """
import importlib, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
m = importlib.import_module(sys.argv[2])
cell = m.Cell(input=3, hidden=4, dtype="float32", seed=0)
y, _, tape = cell.forward(np.ones((2, 2, 3), np.float32))
cell.backward(tape, np.ones_like(y))
stats = m._loop_forward.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()), float(y.sum()))
"""


def test_a_generated_file_runs_from_numbas_cache_under_any_module_name(tmp_path):
    """Numba's cache is kept by source file, and a kernel loaded from it once imported its module
    by the name it was compiled under (numba#7075): generated/rnn.py compiled as `generated.rnn`
    and then imported as `rnn` failed with "No module named 'generated'". Here one file runs as
    `pkg.rnn`, then as `rnn` (its folder on sys.path), then as `pkg.rnn` again, each in a fresh
    process: the first compiles, the other two load its kernels from the cache, and all three
    give the same outputs (kernel_names.pin_kernels)."""
    import shutil
    import subprocess

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    shutil.copy(os.path.join(ROOT, "generated", "rnn.py"), pkg / "rnn.py")
    runs = []
    for where, name in ((tmp_path, "pkg.rnn"), (pkg, "rnn"), (tmp_path, "pkg.rnn")):
        out = subprocess.run([sys.executable, "-c", KERNEL_NAMES_SCRIPT, str(where), name], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(out.stdout.split())
    assert runs[0][:2] == ["0", "1"] and runs[1][:2] == runs[2][:2] == ["1", "0"], runs
    assert runs[0][2] == runs[1][2] == runs[2][2]
