"""The bench's timing on a shared host: rounds during which the hypervisor stole CPU time are run
again, within a budget of patience (no time is measured or asserted here: the clock and
/proc/stat are stand-ins)."""

import pytest

from cellspec import bench


class Host:
    """/proc/stat as a script: each round or wait second reads it twice, and `steal` gives the
    share stolen in each such window in turn."""

    def __init__(self, shares):
        self.shares = list(shares)
        self.steal = self.total = 0
        self.reads = 0

    def read(self):
        # every second read closes a window: 1000 jiffies, of which the next share were stolen
        self.reads += 1
        if self.reads % 2 == 0:
            share = self.shares.pop(0)
            self.steal += round(1000 * share)
            self.total += 1000
        return self.steal, self.total


@pytest.fixture
def host(monkeypatch):
    def make(shares):
        h = Host(shares)
        monkeypatch.setattr(bench, "host_steal", h.read)
        monkeypatch.setattr(bench.time, "sleep", lambda s: None)
        return h

    return make


def runner():
    calls = []
    return calls, {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}


def test_a_stolen_round_is_run_again_after_a_quiet_second(host):
    # round 1 quiet, round 2 stolen (10%), a noisy then a quiet second of waiting, round 3 quiet
    h = host([0.0, 0.10, 0.30, 0.0, 0.01])
    calls, runs = runner()
    quiet = bench.Quiet(max_steal=0.02, patience=60)
    times, fwd, stolen = bench._time_rounds(runs, {}, 2, 0.0, quiet)
    assert calls == ["a", "b"] * 3
    assert quiet.spoiled == 1 and quiet.waited == 2.0
    assert set(times) == {"a", "b"} and fwd == {}
    assert stolen == pytest.approx(0.005)  # the mean of the rounds kept: 0 and 1%
    assert not h.shares


def test_once_patience_is_spent_rounds_are_kept_as_they_come(host):
    # every window is noisy: one second of patience, then the rounds are kept with their steal
    host([0.5, 0.5, 0.2, 0.3])
    calls, runs = runner()
    quiet = bench.Quiet(max_steal=0.02, patience=1)
    _, _, stolen = bench._time_rounds(runs, {}, 2, 0.0, quiet)
    assert quiet.spoiled == 1 and quiet.waited == 1.0
    assert stolen == pytest.approx(0.25)
    assert calls == ["a", "b"] * 3


def test_without_proc_stat_nothing_counts_as_stolen(monkeypatch):
    monkeypatch.setattr(bench, "host_steal", lambda: None)
    calls, runs = runner()
    _, _, stolen = bench._time_rounds(runs, {}, 3, 0.0, bench.Quiet())
    assert stolen == 0.0 and calls == ["a", "b"] * 3


def test_host_steal_reads_the_steal_column_of_proc_stat():
    reading = bench.host_steal()
    if reading is None:  # no /proc here: the bench then counts nothing as stolen
        assert bench.steal_share(None, None) == 0.0
        return
    steal, total = reading
    assert 0 <= steal <= total
    assert bench.steal_share((0, 100), (3, 200)) == pytest.approx(0.03)
