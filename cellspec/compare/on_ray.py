"""The Ray Tune engine (`pip install -e ".[ray]"`): a `tune.Tuner` over a `tune.grid_search` of
the trials' ids, each trial a function trainable that runs `worker.execute` with a report
callback calling `tune.report` (step, loss, accuracy, ratio), 1 CPU each. The trial's record
goes back to the driver in its last report (as JSON text), and a Tune callback in the driver
writes it to the same store as the local engine, as it arrives.

With the ASHA scheduler (metric "ratio", mode "min", time_attr "step", max_t the trials' steps,
grace_period a tenth of them rounded up to an evaluation, reduction_factor 3) hopeless trials
stop early; a trial ASHA stopped is recorded with status "stopped", its last reported metrics and
the curve of its reports. Trials survive the last rung (stop_last_trials=False), so that one that
ran its budget hands in its own record.

Without an address, Ray starts locally with `num_cpus` = jobs and stops after; with one it joins
that cluster, whose workers must see the specs' absolute paths (a shared file system) and build
the specs in their own cellspec cache if they cannot see this one."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time

from .grid import Trial
from .local import warm_all
from .progress import Progress
from .store import Store
from .worker import THREAD_VARS, context, execute


class RayMissing(RuntimeError):
    pass


class EngineError(RuntimeError):
    """Ray could not start or join its cluster: one line."""


class TrialsLost(RuntimeError):
    """Trials that Ray itself failed (their records are not stored): one line."""


def _init(ray, address, num_cpus, **kwargs) -> None:
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local": a Ray of its own, even where another one on this machine (or a stale
            # /tmp/ray/ray_current_cluster of a dead one) would be joined by default
            ray.init(address="local", num_cpus=num_cpus, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        cause = str(e.__cause__ or "").strip().splitlines()
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if any("Authentication" in line for line in cause):
            why += (" (the cluster wants its auth token: set RAY_AUTH_MODE=token, with the head's token in"
                    " RAY_AUTH_TOKEN or ~/.ray/auth_token)")
        raise EngineError(f"{'--address ' + address if address else 'a local Ray'}: {why}") from None


def require_ray():
    """Ray Tune's modules, or RayMissing with a one-line reason."""
    try:
        import ray
        from ray import tune
    except ImportError as e:
        raise RayMissing(f"--engine ray needs Ray Tune (pip install -e \".[ray]\"): {e}") from None
    return ray, tune


def _metric(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else math.inf


def _trainable(params, trials, trainer, ctx):
    from ray import tune

    trial = trials[params["id"]]
    last = {"step": 0}

    def report(step, metrics):
        last["step"] = step
        tune.report({"step": step, "loss": _metric(metrics.get("loss")), "accuracy": metrics.get("accuracy"),
                     "ratio": _metric(metrics.get("ratio"))})

    record = execute(trainer, trial, ctx, report=report)
    step = max(last["step"], record.get("steps") or 0)
    tune.report({"step": step, "loss": _metric(record.get("loss")), "ratio": _metric(record.get("ratio")),
                 "record": json.dumps(record)})


def _error_line(path) -> str:
    """The last line of a Ray trial's error file that says something."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except (OSError, TypeError):
        return "no error file"
    said = [l for l in lines if not l.startswith("An unexpected internal error")]
    return (said or lines or ["an empty error file"])[-1]


def _stopped_record(trial: dict, history: list[dict], wall_s: float) -> dict:
    last = history[-1] if history else {}
    fin = (lambda x: x if isinstance(x, (int, float)) and math.isfinite(x) else None)
    ratio, loss = fin(last.get("ratio")), fin(last.get("loss"))
    return {"config": trial["config"], "status": "stopped", "steps": last.get("step"), "solved_step": None,
            "loss": loss, "baseline": loss / ratio if loss is not None and ratio else None, "ratio": ratio,
            "accuracy": last.get("accuracy"), "curve": [[h["step"], h.get("loss")] for h in history],
            "failed_step": None, "error": None, "wall_s": wall_s,
            "id": trial["id"], "cell": trial["cell"], "spec_sha256": trial["spec_sha256"], "worker": None}


def run_ray(trials: list[Trial], store: Store, trainer: str, jobs: int | None = None, address: str | None = None,
            scheduler: str = "none", progress: bool = True) -> list[dict]:
    """Run `trials` on Ray Tune; returns their records (in the order they finished)."""
    if not trials:
        return []
    ray, tune = require_ray()
    from ray.tune.schedulers import ASHAScheduler

    warm_all(trials, trainer)
    ctx = context()
    by_id = {t.id: t.as_dict() for t in trials}
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # the workers import cellspec from where the driver does (a cluster joined on this machine or
    # a shared file system; elsewhere cellspec must be installed on the nodes)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.pathsep.join(dict.fromkeys([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env_vars = {**{v: "1" for v in THREAD_VARS}, **ctx["env"], "PYTHONPATH": python_path, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    init = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                runtime_env={"env_vars": env_vars}, ignore_reinit_error=True)
    n = max(1, min(jobs or os.cpu_count() or 1, len(trials)))
    _init(ray, address, jobs or os.cpu_count() or 1, **init)
    records: list[dict] = []
    errors: list[str] = []
    history: dict[str, list[dict]] = {}
    written: set[str] = set()
    started: dict[str, float] = {}
    folder = tempfile.mkdtemp(prefix="cellspec-compare-ray-")
    try:
        with Progress(len(trials), "trials (ray)", enabled=progress) as bar:

            def keep(record):
                if record["id"] not in written:
                    written.add(record["id"])
                    store.write(record)
                    records.append(record)
                    bar.advance(record)

            class Collect(tune.Callback):
                def __reduce__(self):
                    # Tune pickles its callbacks with the experiment (for a restore, which a
                    # compare run does not use: the store resumes it); this one holds the
                    # driver's store and progress display, so it travels as a plain Callback
                    return (tune.Callback, ())

                def on_trial_start(self, iteration, trials, trial, **info):
                    started[trial.config["id"]] = time.perf_counter()

                def on_trial_result(self, iteration, trials, trial, result, **info):
                    tid = trial.config["id"]
                    if "record" in result:
                        keep(json.loads(result["record"]))
                    else:
                        history.setdefault(tid, []).append({k: result.get(k) for k in ("step", "loss", "ratio", "accuracy")})

                def on_trial_complete(self, iteration, trials, trial, **info):
                    tid = trial.config["id"]
                    if tid not in written:
                        keep(_stopped_record(by_id[tid], history.get(tid, []), time.perf_counter() - started.get(tid, time.perf_counter())))

                def on_trial_error(self, iteration, trials, trial, **info):
                    # Ray's own failure (a worker that cannot import cellspec, a lost node), not
                    # the trial's: `execute` records those. Not stored, so a run again retries it.
                    tid = trial.config["id"]
                    if tid not in written:
                        errors.append(f"{tid}: {_error_line(trial.error_file)}")

            sched = None
            if scheduler == "asha":
                steps = max(t.config["steps"] for t in trials)
                every = max(1, min(t.config.get("eval_every", 1) for t in trials))
                grace = max(every, math.ceil(steps / 10 / every) * every)
                sched = ASHAScheduler(time_attr="step", metric="ratio", mode="min", max_t=steps,
                                      grace_period=min(grace, steps), reduction_factor=3, stop_last_trials=False)
            trainable = tune.with_resources(tune.with_parameters(_trainable, trials=by_id, trainer=trainer, ctx=ctx), {"cpu": 1})
            tuner = tune.Tuner(
                trainable,
                param_space={"id": tune.grid_search([t.id for t in trials])},
                tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=n, reuse_actors=True,
                                            trial_name_creator=lambda t: t.config["id"],
                                            trial_dirname_creator=lambda t: t.config["id"]),
                run_config=tune.RunConfig(name="compare", storage_path=folder, verbose=0, callbacks=[Collect()],
                                          log_to_file=False),
            )
            tuner.fit()
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    if errors:
        raise TrialsLost(f"{len(errors)} of {len(trials)} trials failed inside Ray, not in training (not stored: a run again retries them); the first: {errors[0]}")
    return records
