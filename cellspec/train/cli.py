"""`cellspec train SPEC --task NAME --T N ...`: one trial, with a progress display, into a folder
of its own (`log.jsonl`, `params.npz`, `result.json`, `loss.png`)."""

from __future__ import annotations

import argparse
import os
import sys

from ..argtypes import nonnegative_float, positive_float, positive_int

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
TASKS_HELP = "adding, adding_hs, copy, copy_variable, cue, forget or temporal_order"


def dim_pairs(items: list[str]) -> dict[str, int]:
    """`--dim proj=32 --dim modules=4` -> {"proj": 32, "modules": 4}."""
    dims = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name or not value.isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"--dim takes NAME=N with N a positive integer, not {item!r}")
        dims[name] = int(value)
    return dims


def option_pairs(items: list[str]) -> dict:
    """`--task-option cue_at=end --task-option K=4` -> {"cue_at": "end", "K": 4}: whole numbers
    as ints, true/false as bools, anything else as text (the task checks them)."""
    options = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise argparse.ArgumentTypeError(f"--task-option takes NAME=VALUE, not {item!r}")
        options[name] = int(value) if value.isdigit() else {"true": True, "false": False}.get(value.lower(), value)
    return options


def add_options(p: argparse.ArgumentParser) -> None:
    """The training options `train` and `compare` share."""
    p.add_argument("--batch", type=positive_int, default=32, help="sequences per step (default 32)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "rmsprop", "sgd"], help="default adam (torch.optim's rules)")
    p.add_argument("--clip", type=nonnegative_float, default=1.0, help="clip the gradient's 2-norm to this; 0: no clipping (default 1)")
    p.add_argument("--steps", type=positive_int, default=2000, help="the most optimizer steps (default 2000); a run stops when solved")
    p.add_argument("--eval-every", type=positive_int, default=100, help="steps between evaluations on the held-out batch (default 100)")
    p.add_argument("--eval-batch", type=positive_int, default=256, help="sequences in the held-out batch (default 256)")
    p.add_argument("--layers", type=positive_int, default=1, help="stacked layers of the cell (default 1)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="default float32")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=N", help="a size of the spec other than input and hidden (lstmp's proj, clockwork's modules); repeat")
    p.add_argument("--task-option", action="append", default=[], metavar="NAME=VALUE", help="an option of the task (cue's cue_at=end, K=4; forget's max_len=24); repeat")
    p.add_argument("--no-stop", action="store_true", help="run every step even once solved (final losses at one budget)")
    p.add_argument("--encoder", default="auto", choices=["auto", "on", "off"], help="a learned linear map of the task's inputs to the cell's input: auto uses it where the spec ties input to hidden (mut1, mut2)")


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train one cell on one task, with numpy only")
    t.add_argument("spec", metavar="SPEC")
    t.add_argument("--task", default="adding", help=TASKS_HELP + " (default adding)")
    t.add_argument("--T", type=positive_int, default=100, help="the task's gap / length (default 100)")
    t.add_argument("--hidden", type=positive_int, default=64, help="hidden size (default 64)")
    t.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default 1e-3)")
    t.add_argument("--seed", type=int, default=0, help="seeds params, batches and the held-out batch (default 0)")
    t.add_argument("--out", default=None, metavar="DIR", help="where the log, params and figure go (default runs/<cell>-<task>-T<T>-seed<S>)")
    add_options(t)
    t.set_defaults(run=cmd_train)


def shared_config(args) -> dict:
    """The config keys of the shared options (`add_options`), as `check` takes them."""
    return {"batch": args.batch, "optimizer": args.optimizer, "clip": args.clip, "steps": args.steps,
            "eval_every": args.eval_every, "eval_batch": args.eval_batch, "layers": args.layers, "dtype": args.dtype,
            "dims": dim_pairs(args.dim), "encoder": args.encoder, "stop_when_solved": not args.no_stop,
            "task_options": option_pairs(args.task_option)}


def cmd_train(args) -> int:
    from .outputs import JsonLines, plot_loss, save_params, write_result
    from .progress import progress
    from .trial import TrialError, check, train

    try:
        cfg = check({**shared_config(args), "spec": os.path.abspath(args.spec), "task": args.task, "T": args.T,
                     "hidden": args.hidden, "lr": args.lr, "seed": args.seed})
    except (TrialError, argparse.ArgumentTypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    name = os.path.splitext(os.path.basename(args.spec))[0]
    out = args.out or os.path.join("runs", f"{name}-{args.task}-T{args.T}-seed{args.seed}")
    try:
        os.makedirs(out, exist_ok=True)
        log = JsonLines(os.path.join(out, "log.jsonl"))
    except OSError as e:
        print(f"error: {out}: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    label = f"{name} on {args.task}, T={args.T}"
    try:
        with progress(cfg["steps"], label) as bar:
            def on_eval(row):
                log(row)
                bar.evaluated(row)

            result, model = train(cfg, on_step=bar.step, on_eval=on_eval)
            bar.done(result)
    finally:
        log.close()
    save_params(os.path.join(out, "params.npz"), model, result["config"])
    write_result(os.path.join(out, "result.json"), result)
    png = plot_loss(os.path.join(out, "loss.png"), result, label)
    status = result["status"]
    if status == "solved":
        what = f"solved at step {result['solved_step']}"
    elif status == "failed":
        what = f"FAILED: {result['error']}"
    else:
        what = f"not solved in {result['steps']} steps"
    ratio = "n/a" if result["ratio"] is None else f"{result['ratio']:.3g}"
    print(f"{label}: {what}; held-out loss {ratio} of the baseline ({result['baseline']:.4g}), {result['wall_s']:.1f} s")
    print(f"wrote {out}/log.jsonl, params.npz, result.json" + (", loss.png" if png else " (no loss.png: matplotlib is not installed)"))
    return EXIT_FAILED if status == "failed" else EXIT_OK
