"""The figures of a compare run (matplotlib, Agg, imported only here):

* solved.png: the fraction of seeds solved against the gap T, a line per cell;
* curves.png: eval loss / baseline against step, the median over seeds (a seed solved early
  held at its last value), a line per cell, one panel per gap;
* final.png: the final loss / baseline of every seed, a box per cell, one panel per gap (how
  Greff et al. 2015 show their LSTM variants).

Where several hyperparameters were run, a "cell" is the cell with its hyperparameters."""

from __future__ import annotations

import math
import os

from .table import summarize


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(cell: str, config: dict, axes: list[str]) -> str:
    return " ".join([cell] + [f"{a}={config.get(a)}" for a in axes])


def _series(records: list[dict], order: list[str] | None):
    """{label: {T: [records]}} in the table's order of cells, and the sorted gaps."""
    rows, axes = summarize(records, order)
    labels = list(dict.fromkeys(_label(r["cell"], r, axes) for r in rows))
    out: dict[str, dict[int, list[dict]]] = {k: {} for k in labels}
    for r in sorted(records, key=lambda r: r["id"]):
        out[_label(r["cell"], r["config"], axes)].setdefault(r["config"]["T"], []).append(r)
    return rows, axes, out, sorted({r["config"]["T"] for r in records})


def _ratio(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else math.nan


def _log_if_positive(ax, values) -> None:
    """A log y axis where some plotted value is positive and finite (none: a linear one, empty)."""
    if any(math.isfinite(v) and v > 0 for v in values):
        ax.set_yscale("log")


def _grid(plt, n: int, width=4.2, height=3.2):
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axs.flat[n:]:
        ax.set_visible(False)
    return fig, list(axs.flat[:n])


def plot_solved(records, path, order=None) -> str:
    plt = _plt()
    rows, axes, series, gaps = _series(records, order)
    fig, ax = plt.subplots(figsize=(6, 4))
    markers, styles = "osD^vP*Xh", ("-", "--", "-.", ":")
    n = len(series)
    for i, label in enumerate(series):
        pts = [(r["T"], r["solved_fraction"]) for r in rows if _label(r["cell"], r, axes) == label]
        # lines that coincide (two cells solving every gap) stay apart by marker, style and width
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=markers[i % len(markers)], linestyle=styles[i % len(styles)],
                linewidth=1.2 + 1.6 * (n - 1 - i) / max(1, n - 1), markersize=5 + 4 * (n - 1 - i) / max(1, n - 1), alpha=0.85, label=label)
    if len(gaps) > 1 and gaps[-1] / gaps[0] >= 10:
        ax.set_xscale("log")
    ax.set_xticks(gaps, [str(g) for g in gaps])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("gap T")
    ax.set_ylabel("fraction of seeds solved")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _median_curve(records):
    """The median over seeds of loss / baseline at each step some seed evaluated (NaN skipped).
    A seed that stopped because it was solved keeps its last value from there on: it is still
    solved, and a median over the seeds still running alone would climb as the good ones leave."""
    import numpy as np

    curves = []
    for r in records:
        base = r.get("baseline")
        ok = isinstance(base, (int, float)) and base
        curves.append(({int(step): (_ratio(loss) / base if ok else math.nan) for step, loss in r.get("curve") or []},
                       r.get("status") == "solved"))
    steps = sorted({s for c, _ in curves for s in c})
    med = []
    for s in steps:
        values = []
        for c, solved in curves:
            if s in c:
                values.append(c[s])
            elif solved and c and s > max(c):
                values.append(c[max(c)])
        med.append(float(np.nanmedian(values)) if any(math.isfinite(v) for v in values) else math.nan)
    return steps, med


def plot_curves(records, path, order=None, gaps=None) -> str:
    plt = _plt()
    _, _, series, all_gaps = _series(records, order)
    gaps = [g for g in (gaps or all_gaps) if g in all_gaps]
    fig, axs = _grid(plt, len(gaps))
    for ax, T in zip(axs, gaps):
        plotted = []
        for label, by_T in series.items():
            if T in by_T:
                steps, med = _median_curve(by_T[T])
                ax.plot(steps, med, label=label)
                plotted += med
        _log_if_positive(ax, plotted)
        ax.set_title(f"T = {T}: median over seeds")
        ax.set_xlabel("step")
        ax.set_ylabel("eval loss / baseline")
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_final(records, path, order=None, gaps=None) -> str:
    plt = _plt()
    _, _, series, all_gaps = _series(records, order)
    gaps = [g for g in (gaps or all_gaps) if g in all_gaps]
    fig, axs = _grid(plt, len(gaps), width=max(4.2, 0.7 * len(series) + 1.5), height=3.6)
    for ax, T in zip(axs, gaps):
        labels = [k for k in series if T in series[k]]
        data = [[v for v in (_ratio(r.get("ratio")) for r in series[k][T]) if math.isfinite(v) and v > 0] for k in labels]
        ax.boxplot([d or [math.nan] for d in data])
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right", fontsize="small")
        _log_if_positive(ax, [v for d in data for v in d])
        ax.set_title(f"T = {T}")
        ax.set_ylabel("final loss / baseline")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(folder: str, records: list[dict], order=None) -> list[str]:
    if not records:
        return []
    return [plot_solved(records, os.path.join(folder, "solved.png"), order),
            plot_curves(records, os.path.join(folder, "curves.png"), order),
            plot_final(records, os.path.join(folder, "final.png"), order)]
