"""Tasks that hang on one cue: `cue`, this project's own example, and `forget`, a continual
stream of cue episodes that needs a cell able to erase its memory."""

from __future__ import annotations

import math

import numpy as np

from .base import Batch, Task, TaskError, int_option, one_hot


class Cue(Task):
    """This project's own example ("I grew up in France ... I speak fluent French"): a cue, then
    distractors, then a question whose answer the cue decides.

    Tokens, one-hot over K + D + 1 inputs: the K cue symbols (0..K-1), the D distractor symbols
    (K..K+D-1) and the query (K+D). L = T + 2. With cue_at="start" (default) the cue is at step
    0, T distractors (each uniform over the D symbols) follow, and the query is at step T+1, so
    the cue must be kept T+1 steps. With cue_at="end" the T distractors come first and the cue
    sits at step T, right before the query: the same length and distractors, a 1-step gap, the
    control for the long gap. The answer, read at the last step (cross-entropy over K classes),
    is the cue itself (its index).

    Baseline: chance, the uniform guess over K classes: ln K nats. Accuracy: the fraction of
    sequences answered right (argmax). Solved: accuracy >= 0.99 on a held-out batch."""

    name = "cue"
    cite = "this project's own example (cue ... distractors ... query)"
    loss = "xent"
    at = "last"
    min_T = 1
    defaults = {"K": 8, "D": 8, "cue_at": "start"}

    def _configure(self, K, D, cue_at):
        self.K = int_option(self.name, "K", K, 2)
        self.D = int_option(self.name, "D", D, 1)
        if cue_at not in ("start", "end"):
            raise TaskError(f"{self.name}: option cue_at must be 'start' or 'end', got {cue_at!r}")
        self.cue_at = cue_at
        self.inputs, self.outputs = self.K + self.D + 1, self.K
        self.length = self.T + 2

    def batch(self, rng: np.random.Generator, B: int) -> Batch:
        B = self._check_B(B)
        T, K, D = self.T, self.K, self.D
        cue = rng.integers(0, K, B)
        tokens = np.empty((T + 2, B), dtype=np.int64)
        distract = rng.integers(K, K + D, (T, B))
        if self.cue_at == "start":
            tokens[0], tokens[1:T + 1] = cue, distract
        else:
            tokens[:T], tokens[T] = distract, cue
        tokens[T + 1] = K + D
        return Batch(one_hot(tokens, self.inputs), cue.astype(np.int64), None)

    def baseline(self) -> float:
        return math.log(self.K)

    def solved(self, metrics: dict) -> bool:
        return metrics["accuracy"] >= 0.99


class Forget(Task):
    """A continual stream of cue episodes, a task that needs forgetting; inspired by Gers,
    Schmidhuber & Cummins 2000 ("Learning to forget: continual prediction with LSTM", Neural
    Computation 12(10): the limits of standard LSTM on continual input, and the continual
    embedded Reber grammar, a stream never reset from outside).

    One sequence is a stream of L = T steps, never reset, cut into episodes whose lengths are
    drawn uniformly from [min_len, max_len]. An episode of length n is: a start marker, a cue
    (uniform over K symbols), n - 3 distractors (uniform over D symbols), and a query, at whose
    step the target is the episode's cue (cross-entropy over K classes). The mask holds exactly
    the query steps; the stream's last episode, cut short by the end of the stream, has no
    query and no target. Inputs, one-hot over K + D + 2: cues 0..K-1, distractors K..K+D-1,
    marker K+D, query K+D+1. T >= max_len, so every stream holds at least one whole episode.

    Why it needs a forget gate: each answer depends on its own episode only, but nothing resets
    the state between episodes. A cell that can only add to its memory, as the LSTM without a
    forget gate, c_t = c_{t-1} + i_t * g_t, holds the sum of the cues of every episode so far;
    to answer the current one it would have to subtract exactly what it stored before, and Gers
    et al. report that such cells instead let their state grow on continual input until it
    saturates and they fail. A forget gate (or any gate that can scale the state toward zero)
    erases it at the marker. The gap within an episode is short (at most max_len), so the
    difficulty is the erasing, not the lag.

    Baseline: chance at the counted (query) steps, ln K nats. Accuracy: the fraction of queries
    answered right (argmax). Solved: accuracy >= 0.99 on a held-out batch."""

    name = "forget"
    cite = ("inspired by Gers, Schmidhuber & Cummins 2000, Learning to forget: continual "
            "prediction with LSTM (continual tasks)")
    loss = "xent"
    at = "every"
    min_T = 1
    defaults = {"K": 8, "D": 8, "min_len": 8, "max_len": 16}

    def _configure(self, K, D, min_len, max_len):
        self.K = int_option(self.name, "K", K, 2)
        self.D = int_option(self.name, "D", D, 1)
        self.min_len = int_option(self.name, "min_len", min_len, 3)
        self.max_len = int_option(self.name, "max_len", max_len, self.min_len)
        if self.T < self.max_len:
            raise TaskError(f"{self.name}: T must be >= max_len ({self.max_len}), got {self.T}")
        self.inputs, self.outputs = self.K + self.D + 2, self.K
        self.length = self.T

    def batch(self, rng: np.random.Generator, B: int) -> Batch:
        B = self._check_B(B)
        L, K, D = self.length, self.K, self.D
        E = L // self.min_len + 1  # episodes enough to pass the end of the stream
        lens = rng.integers(self.min_len, self.max_len + 1, (E, B))
        cues = rng.integers(0, K, (E, B))
        starts = np.cumsum(lens, axis=0) - lens
        cols = np.arange(B)
        begins = np.zeros((L, B), dtype=np.int64)
        for e in range(E):  # E is small (L // min_len + 1): one step of numpy per episode
            inside = starts[e] < L
            begins[starts[e][inside], cols[inside]] = 1
        episode = np.cumsum(begins, axis=0) - 1  # [L,B]: the episode each step belongs to
        offset = np.arange(L)[:, None] - np.take_along_axis(starts, episode, axis=0)
        n = np.take_along_axis(lens, episode, axis=0)
        cue = np.take_along_axis(cues, episode, axis=0)
        tokens = rng.integers(K, K + D, (L, B))
        tokens[offset == 1] = cue[offset == 1]
        tokens[offset == 0] = K + D
        query = offset == n - 1
        tokens[query] = K + D + 1
        target = np.where(query, cue, 0).astype(np.int64)
        return Batch(one_hot(tokens, self.inputs), target, query)

    def baseline(self) -> float:
        return math.log(self.K)

    def solved(self, metrics: dict) -> bool:
        return metrics["accuracy"] >= 0.99
