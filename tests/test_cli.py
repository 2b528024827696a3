"""The `cellspec` command as a user meets it."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT

RNN = os.path.join(ROOT, "specs", "rnn.yaml")


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cellspec", *args], cwd=cwd, capture_output=True, text=True)


def test_console_script_is_installed():
    assert shutil.which("cellspec"), "pip install -e . installs the `cellspec` command"


def test_build_writes_module_and_report(tmp_path):
    r = run("build", RNN, "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "rnn.py").exists()
    assert (tmp_path / "out" / "__init__.py").exists()
    assert "h_new = tanh(W @ x + U @ h + b)" in r.stdout
    assert "FLOPs per step" in r.stdout and "saved per step" in r.stdout


def test_bad_spec_exits_2_with_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    with open(RNN) as f:
        bad.write_text(f.read().replace("tanh(W @ x", "tanhh(W @ x"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "rnn.py").write_text("previous\n")
    r = run("build", RNN, str(bad), "-o", str(out))
    assert r.returncode == 2
    line = bad.read_text().splitlines().index("  h_new: tanhh(W @ x + U @ h + b)") + 1
    assert r.stderr == f"{bad}:{line}:10: error: unknown function 'tanhh'; known: abs, exp, log, max, min, relu, sigmoid, softplus, sqrt, tanh, where\n"
    assert "Traceback" not in r.stderr and r.stdout == ""
    # the good spec beside it was not written either
    assert sorted(os.listdir(out)) == ["rnn.py"]
    assert (out / "rnn.py").read_text() == "previous\n"


def test_missing_file_is_a_spec_error(tmp_path):
    r = run("build", str(tmp_path / "nope.yaml"), "-o", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith(f"{tmp_path / 'nope.yaml'}:1:1: error: cannot read spec")


def test_check_passes_and_reports_worst_error():
    r = run("check", RNN)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("rnn: ok  worst relative error ")


def test_check_fails_with_exit_1_when_the_tolerance_is_not_met():
    # the smallest tolerance there is: rounding alone exceeds it (0 is refused as an argument)
    r = run("check", RNN, "--tol", "5e-324")
    assert r.returncode == 1
    assert "rnn: FAILED" in r.stdout


def test_readme_catalog_is_current():
    specs = sorted(os.path.join("specs", f) for f in os.listdir(os.path.join(ROOT, "specs")) if f.endswith(".yaml"))
    r = run("catalog", *specs, "--check")
    assert r.returncode == 0, r.stderr


def test_catalog_check_notices_a_stale_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- catalog:start (cellspec catalog writes this table) -->\nold\n<!-- catalog:end -->\n")
    r = run("catalog", RNN, "--readme", str(readme), "--check")
    assert r.returncode == 1 and "stale" in r.stderr
    r = run("catalog", RNN, "--readme", str(readme))
    assert r.returncode == 0
    assert "| [`rnn`](specs/rnn.yaml) | Elman RNN with tanh" in readme.read_text()
    assert run("catalog", RNN, "--readme", str(readme), "--check").returncode == 0


def test_bench_smoke_run_writes_its_tables(tmp_path):
    # a smoke run only: benchmarks are not tests, and no time is asserted
    r = run("bench", RNN, "--sizes", "tiny", "--rounds", "1", "--memory", "tiny", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "results.json").read_text())
    (row,) = data["rows"]
    assert row["spec"] == "rnn" and row["size"] == "tiny"
    # floor_torch: the same products in torch.mm, beside PyTorch's fused twin
    assert {"cellspec", "floor", "torch", "floor_torch", "torchscript"} <= set(row["times"])
    assert set(row["forward"]) == {"cellspec", "floor", "torch", "floor_torch"}
    # JAX is in the bench extra, not the test extra: its peer runs where it is installed
    assert ("jax" in row["times"]) == (importlib.util.find_spec("jax") is not None)
    # the peak memory of each, measured in a fresh process; a tiny run may add nothing measurable
    assert set(row["memory"]) == {"cellspec", "torch"} and all(m >= 0 for m in row["memory"].values())
    md = (tmp_path / "results.md").read_text()
    assert "| rnn | tiny | 5,2,4,4 |" in md and "Peak memory" in md and "Forward alone" in md
    assert "torch.mm floor / torch" in md
    # the machine's limit: the backend's GEMM rate per core, and each row's FLOPs (rnn at tiny:
    # products of 4 rows by 4 columns, input and hidden, 2 FLOPs each, times 3 with the backward)
    assert data["environment"]["blas"] in md and data["environment"]["gemm_gflops_per_core"] > 0
    assert row["flops"] == [3 * 2 * (4 * 4 + 4 * 4) * 5 * 2, 2 * (4 * 4 + 4 * 4) * 5 * 2] and row["limit"] > 0
    assert "cellspec % of limit" in md
    # which machine: its CPU as /proc/cpuinfo and LLVM name it, in the json and the table's first line
    cpu = data["environment"]["cpu"]
    assert set(cpu) == {"model", "vendor", "llvm_cpu", "avx512", "mkl_code_path"} and cpu["mkl_code_path"] is None
    assert md.startswith(f"Measured on {cpu['model'] or 'an unnamed CPU'}") and (cpu["llvm_cpu"] is None or cpu["llvm_cpu"] in md.split("\n")[0])
    # the compile times, each from fresh processes with empty caches: positive, and the cached
    # load (a later process: imports, cache check, kernels loaded, first run) below the fresh
    # process's build and compile together (its compile alone is what the cache saves)
    (times,) = data["environment"]["compile_s"].values()
    assert set(times) == {"build", "first", "cached"} and min(times.values()) > 0
    assert times["cached"] < times["build"] + times["first"]
    assert "| rnn | " in md.split("Compile, per cell")[1]


def test_bench_with_an_unknown_blas_is_refused_with_exit_2(tmp_path):
    r = run("bench", RNN, "--sizes", "tiny", "--blas", "cublas", "--out", str(tmp_path))
    assert r.returncode == 2 and "invalid choice: 'cublas'" in r.stderr and not any(tmp_path.iterdir())


def test_bench_interop_smoke_run_writes_its_tables(tmp_path):
    # a smoke run only: the lengths, cellspec.torch and cellspec.jax rows and the module's peak
    # memory, at the tiny size; no time is asserted
    r = run("bench", RNN, "--interop", "--sizes", "tiny", "--rounds", "1", "--memory", "tiny", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "interop.json").read_text())
    (lengths,) = data["lengths"]
    assert set(lengths["times"]) == {"lengths=None", "all T", "ragged"} and 0 < lengths["steps"] <= 1
    (torch_row,) = data["torch"]
    assert set(torch_row["times"]) == {"raw cell", "cellspec.torch", "bare Function", "nn.RNN"}
    (jax_row,) = data["jax"]
    assert set(jax_row["times"]) == {"raw cell", "cellspec.jax"}
    (memory,) = data["memory"]
    assert set(memory["peak_mib"]) == {"cellspec", "cellspec.torch", "torch"}
    assert all(v is not None and v >= 0 for v in memory["peak_mib"].values())
    md = (tmp_path / "interop.md").read_text()
    for title in ("Variable lengths", "cellspec.torch.Module", "cellspec.jax.function", "Peak memory"):
        assert title in md
    assert "| rnn | tiny |" in md and "bare Function / raw" in md


def test_bench_trainer_smoke_run_writes_its_table(tmp_path):
    # a smoke run only: cellspec train's defaults on adding and copy against the cell alone; no
    # time is asserted
    r = run("bench", RNN, "--trainer", "--rounds", "1", "--threads", "1", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "trainer.json").read_text())
    assert [(r["task"], r["T"]) for r in rows] == [("adding", 100), ("copy", 100)]
    assert all(set(r["times"]) == {"cell", "trainer", "readout", "batches"} and min(r["times"].values()) > 0 for r in rows)
    assert "The trainer" in (tmp_path / "trainer.md").read_text() and "1 BLAS thread;" in (tmp_path / "trainer.md").read_text()


def test_bench_profile_smoke_run_writes_its_table(tmp_path):
    # a smoke run only: the phases of rnn's forward+backward at the tiny size; no time is asserted,
    # only that each of the module's calls landed in its phase (rnn has a hoisted input product,
    # a per-step product and weight gradients, and no kernel of values that read no state)
    r = run("bench", RNN, "--profile", "--sizes", "tiny", "--rounds", "2", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    (row,) = json.loads((tmp_path / "profile.json").read_text())
    phases = row["phases"]
    assert row["spec"] == "rnn" and row["total_ms"] > 0
    assert set(phases) == {"products per step", "elementwise", "hoisted products", "weight gradients", "hoisted elementwise", "other"}
    assert min(phases["products per step"], phases["hoisted products"], phases["weight gradients"]) > 0
    assert phases["hoisted elementwise"] == 0 and min(phases.values()) >= 0
    assert "| rnn | tiny |" in (tmp_path / "profile.md").read_text()
    assert (tmp_path / "profile.md").read_text().startswith("Measured on ")  # which machine


def test_scaling_figure_is_a_png(tmp_path):
    from cellspec.bench import SCALING_H, SCALING_T, plot_scaling

    curves = {"lstm": {
        "T": [(t, {"cellspec": 0.1 * t, "torch": 0.12 * t}) for t in SCALING_T],
        "H": [(h, {"cellspec": 1e-3 * h * h, "torch": 2e-3 * h * h}) for h in SCALING_H],
    }}
    path = plot_scaling(curves, str(tmp_path / "scaling.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_closed_pipe_ends_a_command_without_a_traceback(tmp_path):
    specs = sorted(os.path.join(ROOT, "specs", n) for n in os.listdir(os.path.join(ROOT, "specs")) if n.endswith(".yaml"))
    proc = subprocess.Popen([sys.executable, "-m", "cellspec", "build", *specs, "-o", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before the first line, as `| head -0` would
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141
