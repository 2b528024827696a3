"""The numpy trainer (cellspec.train): the whole model's gradient (encoder, layer, readout over one
flat vector) against finite differences in float64; a tiny run that provably learns; the same
config twice gives the same result bit for bit; a diverging run is recorded as failed; configs that
cannot run are refused before anything is built; `cellspec train` writes its log, params and
figure, and its progress display."""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

from cellspec.cli import main
from cellspec.tasks import make
from cellspec.train.model import FitError, Model
from cellspec.train.outputs import load_params, read_jsonl
from cellspec.train.progress import Plain, progress
from cellspec.train.trial import Run, TrialError, check, run_trial

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")


def spec(name: str) -> str:
    return os.path.join(SPECS, f"{name}.yaml")


@pytest.fixture(scope="module")
def modules():
    from generated import gru, lstm, mut1, rnn

    return {"lstm": lstm, "gru": gru, "rnn": rnn, "mut1": mut1}


def _flat_loss(model, batch, flat):
    keep = model.flat.copy()
    model.flat[:] = flat
    loss = model.loss_and_grad(batch)
    model.flat[:] = keep
    return loss


# (cell, task, encoder): every readout form (mse at the last step, cross-entropy at every step
# with a mask, cross-entropy at the last step) and the encoder, alone and where a spec ties input
# to hidden (mut1)
CASES = [("lstm", "adding", "off"), ("gru", "copy_variable", "off"), ("rnn", "temporal_order", "on"), ("mut1", "cue", "auto")]


@pytest.mark.parametrize("name,task_name,encoder", CASES)
def test_model_gradient_matches_finite_differences(modules, name, task_name, encoder):
    task = make(task_name, 10 if task_name == "temporal_order" else 6)
    model = Model(modules[name], task, hidden=5, dtype="float64", seed=3, encoder=encoder)
    assert (model.encoder is not None) == (encoder != "off")
    batch = task.batch(np.random.default_rng(1), 4)
    model.loss_and_grad(batch)
    grad = model.grad.copy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    # every param of the flat vector, central differences; a step of 1e-5 balances truncation
    # (~eps^2) against rounding in the loss (~1e-16 / eps): at 1e-6 rounding alone reaches 1e-9
    eps, numeric = 1e-5, np.empty_like(grad)
    for i in range(model.size):
        e = np.zeros(model.size)
        e[i] = eps
        numeric[i] = (_flat_loss(model, batch, model.flat + e) - _flat_loss(model, batch, model.flat - e)) / (2 * eps)
    err = np.abs(grad - numeric) / np.maximum(1e-3, np.abs(numeric))
    assert err.max() < 1e-6, f"worst {err.max():.2e} at {model.names}"


def test_params_are_views_of_the_flat_vector(modules):
    model = Model(modules["lstm"], make("adding", 5), hidden=4, dtype="float64", seed=0)
    model.flat[:] = np.arange(model.size)
    arrays = model.arrays()
    assert np.concatenate([a.ravel() for a in arrays.values()]).tolist() == list(range(model.size))
    # the layer's cells and the readout read the same memory
    assert np.shares_memory(model.layer.cells[0][0].params["W_i"], model.flat)
    assert np.shares_memory(model.readout.params["W"], model.flat)


def test_fit_errors(modules):
    with pytest.raises(FitError, match="needs input == hidden"):
        Model(modules["mut1"], make("adding", 5), hidden=4, encoder="off")
    from generated import lstm_depth_gated, lstmp

    with pytest.raises(FitError, match="c_low"):
        Model(lstm_depth_gated, make("adding", 5), hidden=4)
    with pytest.raises(FitError, match="proj"):
        Model(lstmp, make("adding", 5), hidden=4)
    Model(lstmp, make("adding", 5), hidden=4, dims={"proj": 3})


TINY = {"spec": spec("lstm"), "task": "adding", "T": 10, "hidden": 16, "batch": 32, "lr": 1e-2, "steps": 400, "eval_every": 25, "seed": 0}


def test_a_tiny_run_learns_and_repeats_bit_for_bit():
    first = run_trial(TINY)
    # it learns: the held-out MSE falls below a fifth of the memoryless baseline (predicting 1)
    assert first["status"] in ("solved", "unsolved") and first["error"] is None
    assert first["ratio"] < 0.2, first["ratio"]
    assert first["log"][0]["ratio"] > first["ratio"]
    second = run_trial(TINY)
    # bit for bit: every logged number and the result, all but the clock
    untimed = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]
    assert untimed(first["log"]) == untimed(second["log"])
    strip = lambda r: {k: v for k, v in r.items() if k not in ("wall_s", "log")}
    assert strip(first) == strip(second)
    other = run_trial({**TINY, "seed": 1, "steps": 50})
    assert other["curve"][0] != first["curve"][0]


def test_stops_when_solved():
    result = run_trial({**TINY, "T": 5, "steps": 3000})
    assert result["status"] == "solved"
    assert result["steps"] == result["solved_step"] < 3000
    assert result["log"][-1]["step"] == result["solved_step"]


def test_a_diverging_run_is_recorded_as_failed():
    result = run_trial({"spec": spec("rnn_relu"), "task": "adding", "T": 20, "hidden": 8, "lr": 1e6, "clip": 0, "steps": 200, "eval_every": 10})
    assert result["status"] == "failed"
    assert result["failed_step"] is not None and result["failed_step"] <= 200
    assert "not finite" in result["error"]


@pytest.mark.parametrize("bad,match", [
    ({"task": "nope"}, "unknown task"),
    ({"T": 0}, "T must be"),
    ({"T": -3}, "T must be"),
    ({"lr": 0}, "lr must be"),
    ({"lr": float("nan")}, "lr must be"),
    ({"optimizer": "adagrad"}, "adagrad"),
    ({"spec": "/nonexistent/cell.yaml"}, "no such spec"),
    ({"spec": spec("mut1"), "encoder": "off"}, "input == hidden"),
    ({"spec": spec("lstmp")}, "proj"),
    ({"colour": 1}, "unknown config key"),
])
def test_bad_configs_are_refused_before_anything_runs(bad, match):
    with pytest.raises(TrialError, match=match):
        check({**TINY, **bad})


def test_cli_train_writes_log_params_figure(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", spec("gru"), "--task", "adding", "--T", "8", "--hidden", "8", "--steps", "60",
                 "--eval-every", "20", "--lr", "1e-2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    assert "wrote" in printed.out
    # not a terminal: plain lines, no bar
    assert "step 20/60" in printed.err
    rows = read_jsonl(out / "log.jsonl")
    # the held-out loss before the first step, then every --eval-every steps
    assert [r["step"] for r in rows] == [0, 20, 40, 60] and rows[0]["train_loss"] is None
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in rows)
    config, params = load_params(out / "params.npz")
    assert config["hidden"] == 8 and config["task"] == "adding"
    assert {"readout.W", "readout.b"} <= set(params) and any(k.startswith("cell.") for k in params)
    result = json.loads((out / "result.json").read_text())
    assert result["log"] == rows and result["status"] in ("solved", "unsolved")
    png = (out / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,match", [
    (["--task", "nope"], "unknown task"),
    (["--T", "0"], None),
    (["--dim", "proj"], "NAME=N"),
])
def test_cli_train_bad_input_exits_2(tmp_path, capsys, argv, match):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) if match is None else contextlib.nullcontext():
        code = main(["train", spec("lstm"), "--out", str(out), *argv])
        assert code == 2
    err = capsys.readouterr().err
    if match:
        assert err.count("\n") == 1 and match in err and "Traceback" not in err
    assert not out.exists()


def test_progress_display_by_stream():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert type(progress(10, "x", io.StringIO())) is Plain
    bar = progress(10, "x", Tty())
    assert type(bar).__name__ in ("Rich", "Tqdm")
    row = {"step": 10, "train_loss": 0.5, "loss": 0.25, "ratio": 0.5, "accuracy": 0.75}
    stream = io.StringIO()
    plain = Plain(10, "lstm", stream, every=0.0)
    plain.evaluated(row)
    assert "step 10/10" in stream.getvalue() and "0.75" in stream.getvalue()


@pytest.mark.parametrize("name,task_name", [("lstm", "cue"), ("gru", "copy"), ("rnn", "adding")])
def test_the_trainer_equals_pytorch_side_by_side(name, task_name):
    """The same model in PyTorch (nn.LSTM/GRU/RNN + nn.Linear, torch.optim.Adam,
    clip_grad_norm_) from the same weights on the same batches: the same losses and gradient
    norms for 30 steps, float64 to 1e-10. PyTorch's second bias, where the spec has one, is held
    at zero (its gradient masked): the spec's one bias is their sum."""
    torch = pytest.importorskip("torch")
    run = Run(check({"spec": spec(name), "task": task_name, "T": 8, "hidden": 6, "batch": 8, "lr": 3e-3, "dtype": "float64"}))
    model = run.model
    exported = model.layer.torch_state_dict()
    rnn = getattr(torch.nn, model.layer.module.Cell.TORCH["module"])(run.task.inputs, 6).double()
    rnn.load_state_dict({k: torch.tensor(v) for k, v in exported.items()})
    keep = torch.tensor(exported["bias_hh_l0"] != 0)
    rnn.bias_hh_l0.register_hook(lambda g: g * keep)
    head = torch.nn.Linear(6, run.task.outputs).double()
    head.weight.data = torch.tensor(model.readout.params["W"].copy())
    head.bias.data = torch.tensor(model.readout.params["b"].copy())
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    for _ in range(30):
        before = run.data.bit_generator.state
        batch = run.task.batch(run.data, 8)
        run.data.bit_generator.state = before   # run.step() draws the same batch
        loss, norm = run.step()
        y, _ = rnn(torch.tensor(batch.x))
        if run.task.at == "last":
            pred, target = head(y[-1]), torch.tensor(batch.target)
        else:
            pred, target = head(y), torch.tensor(batch.target)
            if batch.mask is not None:
                pred, target = pred[torch.tensor(batch.mask)], target[torch.tensor(batch.mask)]
            pred, target = pred.reshape(-1, pred.shape[-1]), target.reshape(-1, *target.shape[2:]) if run.task.loss == "mse" else target.reshape(-1)
        if run.task.loss == "mse":
            theirs = torch.nn.functional.mse_loss(pred, target)
        else:
            theirs = torch.nn.functional.cross_entropy(pred, target)
        opt.zero_grad()
        theirs.backward()
        their_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        assert np.isfinite(loss) and loss == pytest.approx(theirs.item(), rel=1e-10)
        assert norm == pytest.approx(their_norm.item(), rel=1e-10)


def test_no_stop_runs_every_step_and_keeps_the_first_solved_step():
    stopped = run_trial({**TINY, "T": 5, "steps": 3000})
    full = run_trial({**TINY, "T": 5, "steps": stopped["solved_step"] + 100, "stop_when_solved": False})
    assert full["status"] == "solved" and full["solved_step"] == stopped["solved_step"]
    assert full["steps"] == stopped["solved_step"] + 100
    # the same run up to there: the same held-out losses
    assert [r["loss"] for r in full["log"][: len(stopped["log"])]] == [r["loss"] for r in stopped["log"]]


def test_a_training_process_flushes_subnormals_and_keeps_freed_memory():
    # in a fresh process: the settings are process-wide (MXCSR per thread, inherited by threads
    # started after), and this one's state should not depend on which test ran first
    import subprocess
    import sys

    code = (
        "import threading, numpy as np\n"
        "from cellspec.train.process import flush_denormals, keep_freed_memory\n"
        "tiny = np.full(4, 1e-39, np.float32)\n"
        "print(float((tiny * np.float32(0.5))[0]) > 0)\n"
        "print(flush_denormals(), keep_freed_memory())\n"
        "print(float((tiny * np.float32(0.5))[0]))\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(float((tiny * np.float32(0.5))[0]))); t.start(); t.join()\n"
        "print(seen[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split("\n")
    import platform

    assert out[0] == "True"   # subnormals exist before
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert out[1] == "True True" and out[2] == "0.0" and out[3] == "0.0"
    else:
        assert out[1].startswith("False")
