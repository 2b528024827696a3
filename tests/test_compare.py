"""`cellspec compare`: the grid and its ids, the store and resuming, failed trials, the tables,
the local engine with 1 and 2 jobs, Ray Tune (plain and ASHA) against the local engine, the
figures, and the command line's bad input. The trainer is the real one
(`cellspec.train.trial`) with tiny configs; `compare_toy` (a trainer of the same contract)
only stands in for a trainer that raises."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys

import pytest

from cellspec.compare import Store, expand, trial_id
from cellspec.compare.local import run_local
from cellspec.compare.table import markdown, summarize, trial_summaries, write_tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNN, GRU = os.path.join(ROOT, "specs", "rnn.yaml"), os.path.join(ROOT, "specs", "gru.yaml")
TINY = {"hidden": 8, "steps": 20, "eval_every": 5, "batch": 8, "eval_batch": 32}


@pytest.fixture(scope="module")
def cache_folder(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cellspec-cache"))


@pytest.fixture(autouse=True)
def cache(cache_folder, monkeypatch):
    """cellspec's cache in a folder of this module's, for this process and its workers."""
    monkeypatch.setenv("CELLSPEC_CACHE", cache_folder)
    return cache_folder


def tiny(specs=(RNN,), Ts=(3, 5), seeds=2, axes=None, **fixed):
    return expand(list(specs), "adding", list(Ts), seeds, axes or {}, {**TINY, **fixed})


def rows_of(records):
    return summarize(records)[0]


def test_grid_ids_are_stable_distinct_and_follow_the_spec(tmp_path):
    a = tiny(specs=(RNN, GRU), axes={"lr": [1e-3, 3e-3]})
    b = tiny(specs=(RNN, GRU), axes={"lr": [1e-3, 3e-3]})
    assert len(a) == 2 * 2 * 2 * 2
    assert [t.id for t in a] == [t.id for t in b]
    assert len({t.id for t in a}) == len(a)
    assert a[0].id.startswith("rnn-T3-s0-") and a[-1].id.startswith("gru-T5-s1-")
    assert all(os.path.isabs(t.config["spec"]) for t in a)
    # the full config is filled in by the trainer's check
    from cellspec.train.trial import DEFAULTS

    assert set(a[0].config) == set(DEFAULTS)
    # a copy of the spec elsewhere keeps the ids; an edit to it gives new ones
    moved = tmp_path / "rnn.yaml"
    shutil.copy(RNN, moved)
    assert [t.id for t in tiny(specs=(str(moved),))] == [t.id for t in tiny()]
    moved.write_text(moved.read_text() + "\n# edited\n")
    assert not {t.id for t in tiny(specs=(str(moved),))} & {t.id for t in tiny()}
    # any config key changes the id
    t = a[0]
    assert trial_id(t.cell, {**t.config, "clip": 0.5}, t.digest) != t.id
    assert trial_id(t.cell, dict(t.config), t.digest) == t.id


def test_an_empty_grid_is_refused():
    with pytest.raises(ValueError, match="empty"):
        expand([RNN], "adding", [], 2)
    with pytest.raises(ValueError, match="empty"):
        expand([RNN], "adding", [5], 2, {"lr": []})


def test_resume_runs_only_the_missing_trial(tmp_path):
    trials = tiny()
    store = Store(str(tmp_path / "out"))
    assert len(run_local(trials, store, "cellspec.train.trial", jobs=2, progress=False)) == 4
    assert store.ids() == {t.id for t in trials}
    stamps = {t.id: os.stat(store.path(t.id)).st_mtime_ns for t in trials}
    gone = trials[2].id
    os.unlink(store.path(gone))
    todo = [t for t in trials if not store.has(t.id)]
    assert [t.id for t in todo] == [gone]
    ran = run_local(todo, store, "cellspec.train.trial", jobs=2, progress=False)
    assert [r["id"] for r in ran] == [gone]
    assert {t.id: os.stat(store.path(t.id)).st_mtime_ns for t in trials if t.id != gone} == {k: v for k, v in stamps.items() if k != gone}
    assert len(store.load([t.id for t in trials])) == 4


def test_a_stored_spec_path_names_no_machine(tmp_path, monkeypatch):
    # a spec inside the current folder is stored relative to it (results folders are committed);
    # one outside stays as given
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    store = Store("out")
    inside, outside = str(tmp_path / "specs" / "rnn.yaml"), RNN
    for i, spec in enumerate((inside, outside)):
        store.write({"id": f"t{i}", "config": {"spec": spec, "T": 5}, "status": "solved"})
    assert store.read("t0")["config"]["spec"] == os.path.join("specs", "rnn.yaml")
    assert store.read("t1")["config"]["spec"] == RNN   # the repository is not under tmp_path


def test_resume_through_the_command_line(tmp_path, capsys):
    from cellspec.cli import main

    out = str(tmp_path / "out")
    argv = ["compare", RNN, "--task", "adding", "--T", "3,5", "--seeds", "2", "--steps", "10", "--hidden", "8", "--jobs", "2", "--out", out, "-q"]
    assert main(argv) == 0
    assert "4 trials, 0 in" in capsys.readouterr().out
    store = Store(out)
    victim = sorted(store.ids())[1]
    os.unlink(store.path(victim))
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"4 trials, 3 in {store.trials} already, 1 to run" in printed
    assert victim in store.ids() and len(store.ids()) == 4
    assert "(1 run now)" in printed   # the header of the table
    # --no-stop is another config: every trial runs again, to its budget
    assert main(argv + ["--no-stop"]) == 0
    assert "4 trials, 0 in" in capsys.readouterr().out and len(store.ids()) == 8
    assert all(r["steps"] == 10 for r in store.load(store.ids()) if r["config"]["stop_when_solved"] is False)
    for name in ("results.md", "results.json", "solved.png", "curves.png", "final.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0


def test_a_diverging_trial_is_recorded_as_failed_and_the_others_finish(tmp_path):
    trials = tiny(Ts=(3,), axes={"lr": [1e-3, 1e30]})
    store = Store(str(tmp_path / "out"))
    run_local(trials, store, "cellspec.train.trial", jobs=2, progress=False)
    records = store.load([t.id for t in trials])
    assert len(records) == 4
    by_lr = {lr: [r for r in records if r["config"]["lr"] == lr] for lr in (1e-3, 1e30)}
    assert all(r["status"] == "failed" and r["failed_step"] >= 1 and r["ratio"] is None for r in by_lr[1e30])
    assert all(r["status"] in ("solved", "unsolved") and r["steps"] == 20 for r in by_lr[1e-3])
    rows, axes = summarize(records)
    assert axes == ["lr"]
    assert [(r["lr"], r["failed"], r["median_ratio"] is None) for r in rows] == [(1e-3, 0, False), (1e30, 2, True)]
    # the files are strict JSON (no NaN)
    for t in trials:
        with open(store.path(t.id)) as f:
            json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"{c} in a trial file"))


def test_a_trial_that_raises_is_recorded_with_its_error(tmp_path):
    trials = expand([RNN], "boom", [5], 3, {}, {"steps": 100, "eval_every": 10}, trainer="compare_toy")
    store = Store(str(tmp_path / "out"))
    run_local(trials, store, "compare_toy", jobs=2, progress=False)
    records = {r["config"]["seed"]: r for r in store.load([t.id for t in trials])}
    assert sorted(records) == [0, 1, 2]
    assert records[1]["status"] == "failed" and records[1]["error"] == "RuntimeError: the toy trainer was told to fail"
    assert "Traceback" in records[1]["traceback"]
    assert records[0]["status"] != "failed" and records[2]["status"] != "failed"


def test_tables_do_not_depend_on_the_order_of_trials(tmp_path):
    trials = expand([RNN, GRU], "adding", [5, 50], 3, {"lr": [1e-3, 1e5]}, {"steps": 200, "eval_every": 20}, trainer="compare_toy")
    store = Store(str(tmp_path / "out"))
    run_local(trials, store, "compare_toy", jobs=2, progress=False)
    records = store.load([t.id for t in trials])
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert shuffled != records
    assert summarize(shuffled, ["rnn", "gru"]) == summarize(records, ["rnn", "gru"])
    assert trial_summaries(shuffled) == trial_summaries(records)
    rows, axes = summarize(records, ["rnn", "gru"])
    assert [(r["cell"], r["T"], r["lr"]) for r in rows] == [(c, T, lr) for c in ("rnn", "gru") for T in (5, 50) for lr in (1e-3, 1e5)]
    assert summarize(records)[0][0]["cell"] == "gru"   # no order given: alphabetical
    info = {"task": "adding", "steps": 200, "seeds": 3, "trials": 24, "ran": 24, "engine": "local", "wall_s": 1.0}
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write_tables(str(a), records, info, ["rnn", "gru"])
    write_tables(str(b), shuffled, info, ["rnn", "gru"])
    for name in ("results.md", "results.json"):
        assert (a / name).read_text() == (b / name).read_text()
    text = markdown(rows, axes, "h")
    assert "| rnn | 5 | 0.001 | 1.00 (3/3) |" in text and "| rnn | 5 | 1e+05 | 0.00 (0/3) | — | — | 3 |" in text


def test_two_jobs_give_the_table_of_one(tmp_path):
    trials = tiny(specs=(RNN, GRU), axes={"lr": [1e-3, 1e-2]})
    one, two = Store(str(tmp_path / "one")), Store(str(tmp_path / "two"))
    run_local(trials, one, "cellspec.train.trial", jobs=1, progress=False)
    records = run_local(trials, two, "cellspec.train.trial", jobs=2, progress=False)
    ids = [t.id for t in trials]
    a, b = one.load(ids), two.load(ids)
    assert rows_of(a) == rows_of(b)
    assert [r["curve"] for r in a] == [r["curve"] for r in b]
    # two worker processes, each with BLAS on one thread
    assert len({r["worker"]["pid"] for r in records}) == 2
    assert all(r["worker"]["blas_threads"] == 1 and r["worker"]["OPENBLAS_NUM_THREADS"] == "1" for r in records)


def test_ray_gives_the_table_of_the_local_engine(tmp_path):
    pytest.importorskip("ray.tune")
    from cellspec.compare.on_ray import run_ray

    trials = tiny(specs=(RNN, GRU), Ts=(3,), axes={"lr": [1e-3, 1e30]})
    local, ray = Store(str(tmp_path / "local")), Store(str(tmp_path / "ray"))
    run_local(trials, local, "cellspec.train.trial", jobs=2, progress=False)
    run_ray(trials, ray, "cellspec.train.trial", jobs=2, progress=False)
    ids = [t.id for t in trials]
    a, b = local.load(ids), ray.load(ids)
    assert len(b) == len(trials)
    assert rows_of(a) == rows_of(b)
    strip = lambda rs: [{k: v for k, v in s.items() if k != "wall_s"} for s in trial_summaries(rs)]
    assert strip(a) == strip(b)
    assert all(r["worker"]["blas_threads"] == 1 for r in b)


def test_ray_with_asha_records_stopped_and_finished_trials(tmp_path):
    pytest.importorskip("ray.tune")
    from cellspec.compare.on_ray import run_ray

    # the good learning rate first, so that its trials set the rungs' cutoffs that the bad one misses
    trials = expand([RNN], "adding", [5], 2, {"lr": [3e-2, 1e-5]}, {**TINY, "steps": 60}, trainer="cellspec.train.trial")
    assert [t.config["lr"] for t in trials] == [3e-2, 3e-2, 1e-5, 1e-5]
    store = Store(str(tmp_path / "out"))
    run_ray(trials, store, "cellspec.train.trial", jobs=2, scheduler="asha", progress=False)
    records = store.load([t.id for t in trials])
    assert len(records) == len(trials)
    statuses = {lr: sorted(r["status"] for r in records if r["config"]["lr"] == lr) for lr in (3e-2, 1e-5)}
    # ASHA is asynchronous: which trials it stops depends on who reaches a rung first, but the
    # first at each rung goes on (so one trial at least runs its budget or solves), and the
    # hopeless learning rate, started after the good one, falls below the good one's cutoffs
    every = statuses[3e-2] + statuses[1e-5]
    assert set(every) <= {"stopped", "solved", "unsolved"}, statuses
    assert "stopped" in statuses[1e-5], statuses
    assert any(s != "stopped" for s in every), statuses
    for r in records:
        if r["status"] == "stopped":
            assert r["steps"] < 60 and r["curve"] and r["curve"][-1][0] == r["steps"] and r["ratio"] > 0
    rows, _ = summarize(records)
    assert sum(r["stopped"] for r in rows) == sum(r["status"] == "stopped" for r in records)


def test_figures_are_drawn(tmp_path):
    trials = expand([RNN, GRU], "adding", [5, 50], 3, {}, {"steps": 200, "eval_every": 20}, trainer="compare_toy")
    store = Store(str(tmp_path / "out"))
    run_local(trials, store, "compare_toy", jobs=2, progress=False)
    from cellspec.compare.figures import draw

    paths = draw(str(tmp_path), store.load([t.id for t in trials]), ["rnn", "gru"])
    assert [os.path.basename(p) for p in paths] == ["solved.png", "curves.png", "final.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # trials that all diverged (no finite loss anywhere) still give figures
    failed = expand([RNN], "adding", [5], 2, {}, {"steps": 100, "eval_every": 10, "lr": 1e5}, trainer="compare_toy")
    run_local(failed, store, "compare_toy", jobs=1, progress=False)
    records = store.load([t.id for t in failed])
    assert {r["status"] for r in records} == {"failed"}
    assert len(draw(str(tmp_path / "out"), records)) == 3


BAD = {
    "unknown task": ["--task", "nope"],
    "no such spec": ["--spec", os.path.join(ROOT, "specs", "nope.yaml")],
    "spec does not build": ["--spec", os.path.join(ROOT, "tests", "bad_specs", "bias-wrong-dim.yaml")],
    "spec does not fit the task": ["--spec", os.path.join(ROOT, "specs", "lstm_depth_gated.yaml")],
    "empty grid": ["--T", ","],
    "zero T": ["--T", "5,0"],
    "negative T": ["--T", "-5"],
    "zero seeds": ["--seeds", "0"],
    "bad engine": ["--engine", "spark"],
    "bad scheduler": ["--engine", "ray", "--scheduler", "hyperband"],
    "asha without ray": ["--scheduler", "asha"],
    "bad lr": ["--lr", "1e-3,fast"],
    "zero hidden": ["--hidden", "0"],
    "bad dim": ["--dim", "proj"],
    "unknown option": ["--bogus", "1"],
    "no task": ["--no-task"],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    from cellspec.cli import main

    out = tmp_path / "out"
    extra = list(BAD[case])
    spec = RNN
    if extra[0] == "--spec":
        spec, extra = extra[1], extra[2:]
    argv = {"--task": "adding", "--T": "3", "--seeds": "1", "--steps": "5", "--out": str(out)}
    if extra == ["--no-task"]:
        del argv["--task"]
        extra = []
    for key in extra[::2]:
        argv.pop(key, None)
    with pytest.raises(SystemExit) as exit_:
        sys.exit(main(["compare", spec, *(x for kv in argv.items() for x in kv), *extra]))
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") or ": error: " in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_ray_engine_without_ray_is_bad_input(tmp_path, capsys, monkeypatch):
    from cellspec.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)   # import ray raises ImportError
    out = tmp_path / "out"
    assert main(["compare", RNN, "--task", "adding", "--T", "3", "--seeds", "1", "--engine", "ray", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --engine ray needs Ray Tune")
    assert not out.exists()
