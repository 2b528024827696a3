"""Trials done, as they finish: a rich progress bar on a terminal, plain lines otherwise (one
every `every` seconds and one at the end), on stderr."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str = "trials", stream=None, every: float = 10.0, enabled: bool = True):
        self.total, self.label, self.every, self.enabled = total, label, every, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.counts: dict[str, int] = {}
        self._bar = None
        self._start = self._last = time.perf_counter()

    def __enter__(self):
        if self.enabled and self.total and getattr(self.stream, "isatty", lambda: False)():
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
            except ImportError:
                return self
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.fields[counts]}"), console=Console(file=self.stream), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, counts="")
        return self

    def _counts(self) -> str:
        return ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))

    def advance(self, record: dict) -> None:
        self.done += 1
        status = record.get("status") or "?"
        self.counts[status] = self.counts.get(status, 0) + 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, counts=self._counts())
            return
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.every or self.done == self.total):
            self._last = now
            print(f"{self.label}: {self.done}/{self.total} done ({self._counts()}), {now - self._start:.0f} s", file=self.stream, flush=True)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
