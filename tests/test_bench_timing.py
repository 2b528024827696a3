"""The bench's timing on a shared machine: rounds during which others (other guests of the host,
or other processes) took the CPUs' time are run again, within a budget of patience. No time is
measured or asserted here: the clock and /proc/stat are stand-ins."""

import pytest

from cellspec.bench import timing as bench


class Machine:
    """/proc/stat and this process's CPU time as a script. A round or a second of waiting reads
    them twice; each such window takes the next (steal, others' busy) shares of 100 CPU
    seconds, this process using 50 of them."""

    def __init__(self, windows):
        self.windows = list(windows)
        self.steal = self.busy = self.total = self.own = 0.0
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.reads % 2 == 0:
            steal, others = self.windows.pop(0)
            self.steal += 100 * steal
            self.busy += 50 + 100 * others
            self.own += 50
            self.total += 100
        return self.steal, self.busy, self.total, self.own


@pytest.fixture
def machine(monkeypatch):
    def make(windows):
        m = Machine(windows)
        monkeypatch.setattr(bench, "cpu_reading", m.read)
        monkeypatch.setattr(bench.time, "sleep", lambda s: None)
        return m

    return make


def peers():
    calls = []
    return calls, {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}


def test_a_round_others_took_the_cpus_in_is_run_again_after_a_quiet_second(machine):
    # round 1 quiet; round 2: another process took 10%; a stolen second, then a quiet one, of
    # waiting; round 3 with 1% stolen, under the 3% limit
    m = machine([(0, 0), (0, 0.10), (0.30, 0), (0, 0), (0.01, 0)])
    calls, runs = peers()
    quiet = bench.Quiet(max_others=0.03, patience=60)
    times, fwd, others = bench._time_rounds(runs, {}, 2, 0.0, quiet, warm=0)
    assert calls == ["a", "b"] * 3
    assert quiet.spoiled == 1 and quiet.waited == 2.0
    assert set(times) == {"a", "b"} and fwd == {}
    assert others == pytest.approx(0.005)  # the mean of the rounds kept: 0 and 1%
    assert not m.windows


def test_once_patience_is_spent_rounds_are_kept_as_they_come(machine):
    # every window is busy: one second of patience, then the rounds are kept with their share
    machine([(0.5, 0), (0.2, 0.3), (0.2, 0), (0, 0.3)])
    calls, runs = peers()
    quiet = bench.Quiet(max_others=0.03, patience=1)
    _, _, others = bench._time_rounds(runs, {}, 2, 0.0, quiet, warm=0)
    assert quiet.spoiled == 1 and quiet.waited == 1.0
    assert others == pytest.approx(0.25)
    assert calls == ["a", "b"] * 3


def test_each_timed_call_follows_untimed_ones_of_the_same_peer(machine, monkeypatch):
    # the clock advances 1 s a call, and 100 s across the pause: a call after the pause is never
    # the one timed; with 2.5 s of warming, three calls are untimed, with 0.5 s one
    machine([(0, 0)] * 3)
    clock = {"now": 0.0}
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(bench.time, "sleep", lambda s: clock.__setitem__("now", clock["now"] + 100))
    calls = []

    def peer(name):
        def run():
            calls.append(name)
            clock["now"] += 1.0
        return run

    both, _, _ = bench.time_rounds({"a": peer("a"), "b": peer("b")}, {}, 2, 0.2, warm=2.5)
    assert calls == ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4
    assert both == [{"a": 1000.0, "b": 1000.0}] * 2  # ms: each timed call took its one second
    calls.clear()
    bench.time_rounds({"a": peer("a")}, {}, 1, 0.2, warm=0.5)
    assert calls == ["a", "a"]


def test_this_process_own_cpu_time_is_not_counted_as_others():
    assert bench.others_share((0, 10, 100, 4), (0, 60, 200, 54)) == 0.0
    assert bench.others_share((1, 10, 100, 4), (3, 70, 200, 54)) == pytest.approx(0.12)
    assert bench.others_share(None, None) == 0.0


def test_without_proc_stat_nothing_counts_as_others(monkeypatch):
    monkeypatch.setattr(bench, "cpu_reading", lambda: None)
    calls, runs = peers()
    _, _, others = bench._time_rounds(runs, {}, 3, 0.0, bench.Quiet(), warm=0)
    assert others == 0.0 and calls == ["a", "b"] * 3


def test_cpu_reading_reads_proc_stat_and_this_process():
    # Linux, where CI runs: a reading is four non-negative totals, steal and busy within total
    steal, busy, total, own = bench.cpu_reading()
    assert 0 <= steal <= total and 0 < busy <= total and own > 0


def test_a_ratio_is_the_median_of_the_ratios_within_each_round():
    # the host's load changes from round to round for both peers: paired within its round, the
    # ratio is 0.5 in three of four rounds; the ratio of the medians (3.0 / 3.5 = 0.86) mixes
    # rounds of different loads
    rounds = [{"a": 1.0, "b": 2.0}, {"a": 4.0, "b": 8.0}, {"a": 2.0, "b": 4.0}, {"a": 8.0, "b": 3.0}]
    assert bench.paired_ratio(rounds, "a", "b") == pytest.approx(0.5)
    assert bench.medians(rounds) == {"a": 3.0, "b": 3.5}
    assert bench.paired_ratio(rounds, "a", "c") is None and bench.paired_ratio([], "a", "b") is None
