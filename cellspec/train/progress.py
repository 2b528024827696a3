"""Progress of a training run: a bar on a terminal (rich, else tqdm), periodic plain lines when
the output is not a terminal (a log file, CI) or neither is installed."""

from __future__ import annotations

import sys
import time


def _fmt(row: dict) -> str:
    return f"loss {row['loss']:.4g} ({row['ratio']:.3g} of baseline), accuracy {row['accuracy']:.3f}"


class Plain:
    """A line at most every `every` seconds, and one at each evaluation that comes after it."""

    def __init__(self, total: int, label: str, stream=None, every: float = 5.0):
        self.total, self.label, self.every = total, label, every
        self.stream = stream or sys.stderr
        self._last = -float("inf")
        self._row = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def step(self, step: int, loss: float) -> None:
        pass

    def evaluated(self, row: dict) -> None:
        now = time.monotonic()
        if row["train_loss"] is None:   # before the first step
            print(f"{self.label}: before training, held-out {_fmt(row)}", file=self.stream, flush=True)
        elif now - self._last >= self.every or row["step"] == self.total:
            self._last = now
            print(f"{self.label}: step {row['step']}/{self.total}  train loss {row['train_loss']:.4g}  held-out {_fmt(row)}", file=self.stream, flush=True)

    def done(self, result: dict) -> None:
        row = result["log"][-1] if result["log"] else None
        if row is not None and row["step"] != self.total:
            print(f"{self.label}: step {row['step']}/{self.total}  held-out {_fmt(row)}", file=self.stream, flush=True)


class Rich(Plain):
    def __init__(self, total: int, label: str, stream=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        super().__init__(total, label, stream)
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=Console(file=self.stream))
        self._task = self._bar.add_task(label, total=total, status="")

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def step(self, step: int, loss: float) -> None:
        self._bar.update(self._task, completed=step)

    def evaluated(self, row: dict) -> None:
        self._bar.update(self._task, completed=row["step"], status=_fmt(row))

    def done(self, result: dict) -> None:
        pass


class Tqdm(Plain):
    def __init__(self, total: int, label: str, stream=None):
        from tqdm import tqdm

        super().__init__(total, label, stream)
        self._bar = tqdm(total=total, desc=label, file=self.stream, dynamic_ncols=True)
        self._at = 0

    def __exit__(self, *exc):
        self._bar.close()
        return False

    def step(self, step: int, loss: float) -> None:
        self._bar.update(step - self._at)
        self._at = step

    def evaluated(self, row: dict) -> None:
        self._bar.set_postfix_str(_fmt(row))

    def done(self, result: dict) -> None:
        pass


def progress(total: int, label: str, stream=None):
    """The display for this stream: rich or tqdm on a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        for kind in (Rich, Tqdm):
            try:
                return kind(total, label, stream)
            except ImportError:
                continue
    return Plain(total, label, stream)
