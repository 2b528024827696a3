"""The bench's timing on a shared machine: interleaved rounds, their medians, and the
quiet-machine filter (a round during which others took the CPUs' time is run again, see `Quiet`)."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass


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


# Before its timed call, after the pause, a peer runs untimed for at least this long (and at least
# once): on this kind of machine (a VM on a shared host) work that follows a pause with the second
# core idle runs slow until some 30 ms of two threads' work have passed. The LSTM at S1 on MKL, 2
# threads, in one process, pause 0.2 s, then none, one or three untimed calls before the timed
# one: cellspec's forward+backward 19.3, 15.0, 10.9 ms, nn.LSTM's 19.4, 11.7, 11.1; their
# inference (forward alone) back to back 6.4 and 3.6 ms, but 8.7 and 10.9 right after the pause.
# The timed call then runs as in a loop of calls back to back (a training loop, a server's
# batches), whose cost each peer is measured at.
WARM_S = 0.05


def time_rounds(runs: dict, fwd_runs: dict, rounds: int, pause: float, quiet: Quiet | None = None, warm: float = WARM_S):
    """Interleaved rounds, every peer once per round, its timed call after `warm` seconds (at least
    one call) of untimed ones:
    ([{peer: ms} per round kept] forward and backward, the same for the forward alone, and the
    mean share of the CPUs' time that others took during the rounds kept (see `Quiet`))."""
    quiet = quiet or Quiet(patience=0.0)
    kept, retry = [], False
    while len(kept) < rounds:
        if retry:
            quiet.wait()
        start = cpu_reading()
        sample = ({}, {})
        for timing, todo in zip(sample, (runs, fwd_runs)):
            for k, f in todo.items():
                # let the previous peer's BLAS and OpenMP threads stop spinning first: on two
                # cores a spinning pool steals the next peer's core
                time.sleep(pause)
                t0 = time.perf_counter()
                while warm:
                    f()
                    if time.perf_counter() - t0 >= warm:
                        break
                t0 = time.perf_counter()
                f()
                timing[k] = (time.perf_counter() - t0) * 1e3
        others = others_share(start, cpu_reading())
        # every retry spends at least a second of patience: once it is spent, rounds are kept
        retry = others > quiet.max_others and quiet.waited < quiet.patience
        if retry:
            quiet.spoiled += 1
        else:
            kept.append((others, sample))
    return [s[0] for _, s in kept], [s[1] for _, s in kept], statistics.fmean(share for share, _ in kept)


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    """{peer: median ms} of rounds of `time_rounds`."""
    return {k: statistics.median(r[k] for r in rounds) for k in (rounds[0] if rounds else {})}


def paired_ratio(rounds: list[dict[str, float]], a: str, b: str) -> float | None:
    """The median over rounds of a's time over b's in the same round (None where either is
    missing): paired within a round, so that the host's load, which drifts over a run, weighs on
    both sides of each ratio alike."""
    if not rounds or a not in rounds[0] or b not in rounds[0]:
        return None
    return statistics.median(r[a] / r[b] for r in rounds)


def _time_rounds(runs: dict, fwd_runs: dict, rounds: int, pause: float, quiet: Quiet | None = None, warm: float = WARM_S):
    """Medians in ms of interleaved rounds (`time_rounds`), every peer once per round, and the
    mean share of the CPUs' time that others took during the rounds kept (see `Quiet`)."""
    both, forward, others = time_rounds(runs, fwd_runs, rounds, pause, quiet, warm)
    return medians(both), medians(forward), others
