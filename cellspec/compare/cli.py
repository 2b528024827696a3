"""`cellspec compare SPEC... --task TASK --T 10,25,50 --seeds 5 ...`: every cell x gap x seed x
hyperparameter (the comma lists of --lr and --hidden are axes) trained, the trials stored in
DIR/trials/ (a run again runs only the missing ones), then DIR/results.md, results.json,
solved.png, curves.png and final.png. Bad input is one line `error: ...` on stderr and exit 2,
with nothing written: every config goes through the trainer's `check` and every spec is built
before any trial runs."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from ..train.cli import TASKS_HELP, add_options, shared_config

EXIT_OK, EXIT_BAD = 0, 2
TRAINER = "cellspec.train.trial"   # the module whose run_trial, check and warm run the trials
ENGINES = ("local", "ray")
SCHEDULERS = ("none", "asha")


class BadInput(ValueError):
    pass


def _list(text: str, kind, name: str, positive: bool = True) -> list:
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            x = kind(part)
        except ValueError:
            raise BadInput(f"--{name}: {part!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
            raise BadInput(f"--{name}: {part!r} is not {'positive' if positive else 'non-negative'}")
        values.append(x)
    if not values:
        raise BadInput(f"--{name}: no values: the grid is empty")
    return list(dict.fromkeys(values))


def _one(text: str, kind, name: str, positive: bool = True):
    values = _list(text, kind, name, positive)
    if len(values) != 1:
        raise BadInput(f"--{name} takes one value, not {text!r}")
    return values[0]


def _plan(args):
    """The trials of the command line, every config checked, every spec built; BadInput else."""
    from ..errors import SpecError
    from .grid import expand, trainer_module

    if args.engine not in ENGINES:
        raise BadInput(f"--engine must be one of {', '.join(ENGINES)}, not {args.engine!r}")
    if args.scheduler not in SCHEDULERS:
        raise BadInput(f"--scheduler must be one of {', '.join(SCHEDULERS)}, not {args.scheduler!r}")
    if args.engine != "ray" and args.scheduler != "none":
        raise BadInput(f"--scheduler {args.scheduler} needs --engine ray")
    if args.engine != "ray" and args.address:
        raise BadInput("--address needs --engine ray")
    Ts = _list(args.T, int, "T")
    seeds = _one(args.seeds, int, "seeds")
    axes = {"lr": _list(args.lr, float, "lr"), "hidden": _list(args.hidden, int, "hidden")}
    try:
        fixed = shared_config(args)
    except argparse.ArgumentTypeError as e:
        raise BadInput(str(e)) from None
    jobs = _one(args.jobs, int, "jobs") if args.jobs is not None else None
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise BadInput(f"--out {args.out}: not a folder")
    for path in args.specs:
        if not os.path.isfile(path):
            raise BadInput(f"{path}: no such spec file")
    if args.engine == "local":
        try:
            import joblib  # noqa: F401
        except ImportError:
            raise BadInput("the local engine runs trials in joblib's processes: pip install -e \".[compare]\"") from None
    if args.engine == "ray":
        from .on_ray import RayMissing, require_ray

        try:
            require_ray()
        except RayMissing as e:
            raise BadInput(str(e)) from None
    trainer = trainer_module(TRAINER)
    import cellspec

    for path in dict.fromkeys(args.specs):
        try:
            cellspec.load(path)
        except SpecError as e:
            raise BadInput(str(e)) from None   # the compiler's `file:line:col: error: ...`
        except OSError as e:
            raise BadInput(f"{path}: cannot build: {e}") from None
    try:
        trials = expand(args.specs, args.task, Ts, seeds, axes, fixed, trainer=TRAINER)
    except trainer.TrialError as e:
        raise BadInput(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    except SpecError as e:
        raise BadInput(str(e)) from None
    except ValueError as e:
        raise BadInput(str(e)) from None
    return trials, seeds, jobs


def _say(message: str) -> None:
    text = str(message).splitlines()[0] if str(message) else "bad input"
    print(text if ": error: " in text or text.startswith("error: ") else f"error: {text}", file=sys.stderr)


def cmd_compare(args) -> int:
    from .figures import draw
    from .local import run_local
    from .store import Store
    from .table import write_tables

    start = time.perf_counter()
    try:
        trials, seeds, jobs = _plan(args)
    except BadInput as e:
        _say(str(e))
        return EXIT_BAD
    store = Store(args.out)
    todo = [t for t in trials if not store.has(t.id)]
    print(f"{len(trials)} trials, {len(trials) - len(todo)} in {store.trials} already, {len(todo)} to run", flush=True)
    progress = not args.quiet
    if args.engine == "ray":
        from .on_ray import run_ray

        from .on_ray import EngineError, TrialsLost

        try:
            run_ray(todo, store, TRAINER, jobs, args.address, args.scheduler, progress)
        except EngineError as e:
            _say(str(e))
            return EXIT_BAD
        except TrialsLost as e:
            _say(str(e))   # the tables of the trials that were stored still follow; exit 1
        engine = f"ray ({args.address or f'local, {jobs or os.cpu_count()} CPUs'}, scheduler {args.scheduler})"
    else:
        run_local(todo, store, TRAINER, jobs, progress)
        n = jobs or os.cpu_count()
        engine = f"local ({n} job{'s' if n != 1 else ''})"
    records = store.load([t.id for t in trials])
    order = [os.path.splitext(os.path.basename(p))[0] for p in args.specs]
    info = {"task": args.task, "steps": trials[0].config.get("steps"), "seeds": seeds, "trials": len(trials),
            "ran": len(todo), "engine": engine, "wall_s": time.perf_counter() - start,
            "trial_wall_s": sum(r.get("wall_s") or 0.0 for r in records)}
    os.makedirs(args.out, exist_ok=True)
    md, js, text = write_tables(args.out, records, info, order)
    pngs = draw(args.out, records, order)
    print(text, end="")
    print(f"wrote {md}, {js}" + "".join(f", {p}" for p in pngs))
    missing = len(trials) - len(records)
    if missing:
        print(f"error: {missing} trials have no record in {store.trials}", file=sys.stderr)
        return 1
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Errors in one line, `error: ...`, exit 2 (argparse's own adds the usage)."""

    def error(self, message):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("compare", help="train cells on a task over gaps, seeds and hyperparameters; tables and figures",
                              description=__doc__.split("\n\n")[0])
    p.error = _Parser.error.__get__(p)   # the subcommand's errors in one line as well
    known = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        # an unknown option is the subcommand's error too, not the top parser's usage and error
        ns, extra = known(args, namespace)
        if extra:
            p.error(f"unrecognized arguments: {' '.join(extra)}")
        return ns, extra

    p.parse_known_args = parse_known_args
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--task", required=True, help=TASKS_HELP)
    p.add_argument("--T", default="10,25,50,100,200", help="comma-separated gaps (default 10,25,50,100,200)")
    p.add_argument("--seeds", default="5", help="seeds per cell, gap and hyperparameter: 0..N-1 (default 5)")
    p.add_argument("--lr", default="1e-3", help="learning rate; a comma list is an axis (default 1e-3)")
    p.add_argument("--hidden", default="64", help="hidden size; a comma list is an axis (default 64)")
    add_options(p)
    p.add_argument("--jobs", default=None, help="trials at a time (default: every CPU)")
    p.add_argument("--engine", default="local", help="local (joblib processes, default) or ray (Ray Tune)")
    p.add_argument("--address", default=None, help="with --engine ray: the address of a Ray cluster to join")
    p.add_argument("--scheduler", default="none", help="with --engine ray: none (default) or asha (stop hopeless trials early)")
    p.add_argument("--out", default="compare", metavar="DIR", help="where trials/, results.md/.json and the figures go (default compare/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_compare)
    return p
