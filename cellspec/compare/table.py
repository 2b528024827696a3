"""The tables of a compare run: per cell, gap (T) and hyperparameter (where several were run),
the fraction of seeds solved, the median steps to solve over the solved seeds, the median final
loss over the baseline (ratio; over the trials with a finite one), and the failed (and stopped)
counts. Rows and trials are sorted by their values, never by the order trials finished, so the
same trials give the same table from either engine. results.md and results.json."""

from __future__ import annotations

import json
import math
import os
import statistics

from .grid import axes_of
from .store import finite

TRIAL_KEYS = ("id", "cell", "status", "steps", "solved_step", "loss", "baseline", "ratio", "accuracy", "failed_step", "error", "wall_s")


def _number(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _sort_key(value):
    # numbers before text, each in its own order: one key for mixed columns
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, json.dumps(value, sort_keys=True))


def summarize(records: list[dict], order: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """(rows, axes): one row per cell, T and combination of the hyperparameters that vary among
    the records (`axes`). Cells come in `order` (their first appearance there), others after it,
    alphabetically; then by T and the axes' values."""
    axes = axes_of([r["config"] for r in records])
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["cell"], r["config"]["T"], *(json.dumps(r["config"].get(a), sort_keys=True) for a in axes))
        groups.setdefault(key, []).append(r)
    rank = {c: i for i, c in enumerate(dict.fromkeys(order or []))}
    rows = []
    for key, rs in groups.items():
        solved = [r for r in rs if r["status"] == "solved"]
        row = {"cell": key[0], "T": key[1], **{a: rs[0]["config"].get(a) for a in axes},
               "seeds": len(rs), "solved": len(solved), "solved_fraction": len(solved) / len(rs),
               "median_solve_step": _median([_number(r.get("solved_step")) for r in solved]),
               "median_ratio": _median([_number(r.get("ratio")) for r in rs]),
               "failed": sum(r["status"] == "failed" for r in rs),
               "stopped": sum(r["status"] == "stopped" for r in rs)}
        rows.append(row)
    rows.sort(key=lambda row: (rank.get(row["cell"], len(rank)), row["cell"], _sort_key(row["T"]), *(_sort_key(row[a]) for a in axes)))
    return rows, axes


def trial_summaries(records: list[dict]) -> list[dict]:
    """Every trial without its curve and traceback: its id, cell, config and outcome, by id."""
    out = []
    for r in sorted(records, key=lambda r: r["id"]):
        s = {k: r.get(k) for k in TRIAL_KEYS}
        s["config"] = {k: v for k, v in r["config"].items()}
        out.append(s)
    return out


def _fmt(x, digits=3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def markdown(rows: list[dict], axes: list[str], header: str) -> str:
    stopped = any(r["stopped"] for r in rows)
    head = ["cell", "T", *axes, "solved", "median steps to solve", "median loss / baseline", "failed"] + (["stopped"] if stopped else [])
    lines = [header, "", "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in rows:
        step = r["median_solve_step"]
        cells = [r["cell"], str(r["T"]), *(_fmt(r[a]) for a in axes),
                 f"{r['solved_fraction']:.2f} ({r['solved']}/{r['seeds']})",
                 "—" if step is None else f"{step:g}", _fmt(r["median_ratio"]), str(r["failed"])]
        if stopped:
            cells.append(str(r["stopped"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def header_line(info: dict) -> str:
    """`info`: task, steps, seeds, engine (a word, with jobs or scheduler), wall_s."""
    return (f"**{info['task']}**, {info['steps']} steps, {info['seeds']} seed{'s' if info['seeds'] != 1 else ''}, "
            f"{info['trials']} trials ({info['ran']} run now), engine {info['engine']}, wall time {info['wall_s']:.1f} s")


def write_tables(folder: str, records: list[dict], info: dict, order: list[str] | None = None) -> tuple[str, str, str]:
    """results.md and results.json in `folder`; returns their paths and the markdown."""
    from ..files import write_atomic

    rows, axes = summarize(records, order)
    text = markdown(rows, axes, header_line(info))
    md, js = os.path.join(folder, "results.md"), os.path.join(folder, "results.json")
    data = {**info, "axes": axes, "rows": rows, "trials": trial_summaries(records)}
    write_atomic(js, json.dumps(finite(data), indent=1, allow_nan=False) + "\n")
    write_atomic(md, text)
    return md, js, text
