"""The bench's timing on a shared machine: interleaved rounds, their medians, and the
quiet-machine filter (a round during which others took the CPUs' time is run again, see `Quiet`)."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc/stat's unit, per second


def cpu_reading() -> tuple[float, float, float, float] | None:
    """(steal, busy, total, own) CPU seconds: from /proc/stat, the time since boot of all CPUs
    that the hypervisor gave other guests (steal), that anything here ran (busy) and in all,
    and the CPU time of this process (all its threads). None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) / _CLK_TCK for v in fields[1:9])
    busy = user + nice + system + irq + softirq
    return steal, busy, busy + idle + iowait + steal, time.process_time()


def others_share(before, after) -> float:
    """The share of the CPUs' time between two `cpu_reading()`s that went to others: other
    guests of the host (steal) and other processes here. 0 without /proc."""
    if before is None or after is None or after[2] <= before[2]:
        return 0.0
    steal, busy, total, own = (a - b for a, b in zip(after, before))
    return (steal + max(0.0, busy - own)) / total


@dataclass
class Quiet:
    """How the timing deals with a shared machine. A round during which others (other guests of
    the host, or other processes here) took more than `max_others` of the CPUs' time is thrown
    away and run again, after waiting for a quiet second, for at most `patience` seconds of
    waiting over the whole bench run; once that is spent, rounds are kept as they come. The
    table reports the others' share of the rounds kept."""

    max_others: float = 0.03
    patience: float = 900.0
    waited: float = 0.0
    spoiled: int = 0

    def wait(self) -> None:
        """Sleep until a second passes in which others took little, or the patience is spent."""
        while self.waited < self.patience:
            before = cpu_reading()
            time.sleep(1.0)
            self.waited += 1.0
            if others_share(before, cpu_reading()) <= self.max_others:
                return


def _time_rounds(runs: dict, fwd_runs: dict, rounds: int, pause: float, quiet: Quiet | None = None):
    """Medians in ms of interleaved rounds, every peer once per round, and the mean share of the
    CPUs' time that others took during the rounds kept (see `Quiet`)."""
    quiet = quiet or Quiet(patience=0.0)
    kept, retry = [], False
    while len(kept) < rounds:
        if retry:
            quiet.wait()
        start = cpu_reading()
        sample = ({k: [] for k in runs}, {k: [] for k in fwd_runs})
        for timing, todo in zip(sample, (runs, fwd_runs)):
            for k, f in todo.items():
                # let the previous peer's BLAS and OpenMP threads stop spinning first: on two
                # cores a spinning pool steals the next peer's core
                time.sleep(pause)
                t0 = time.perf_counter()
                f()
                timing[k].append(time.perf_counter() - t0)
        others = others_share(start, cpu_reading())
        # every retry spends at least a second of patience: once it is spent, rounds are kept
        retry = others > quiet.max_others and quiet.waited < quiet.patience
        if retry:
            quiet.spoiled += 1
        else:
            kept.append((others, sample))
    medians = tuple({k: _median_ms([s[i][k][0] for _, s in kept]) for k in todo} for i, todo in enumerate((runs, fwd_runs)))
    return medians[0], medians[1], statistics.fmean(share for share, _ in kept)
