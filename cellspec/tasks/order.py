"""The temporal order problem of Hochreiter & Schmidhuber 1997 (experiment 6a)."""

from __future__ import annotations

import math

import numpy as np

from .base import Batch, VaryingLength, log_softmax, one_hot

A, B_, C, D, TRIGGER, START, X, Y = range(8)  # a b c d B E X Y


class TemporalOrder(VaryingLength):
    """The temporal order problem, two relevant symbols: Hochreiter & Schmidhuber 1997 ("Long
    short-term memory", Neural Computation 9(8), Section 5.6, Experiment 6a; also Hochreiter &
    Schmidhuber, NIPS 1996, "LSTM can solve hard long time lag problems", Task 2a).

    Symbols, one-hot over 8 inputs: a, b, c, d (distractors), B (the trigger), E (the start), X,
    Y. A sequence starts with E, ends with B, and is otherwise uniform over {a, b, c, d} except
    at two steps t1 and t2, each X or Y. The class, read at the last step (cross-entropy over 4
    classes), is the temporal order: XX -> 0 (their Q), XY -> 1 (R), YX -> 2 (S), YY -> 3 (U).

    Scaling with T: the paper's sequences have length in [100, 110], t1 in [10, 20], t2 in
    [50, 60]. Here T plays their 100: by default every sequence has length L = T; t1 is drawn
    uniformly from [T//10, 2T//10] and t2 from [5T//10, 6T//10], both counted in steps after E
    (E at step 0). With vary_length=True, L = T + T//10 and each sequence's length n is drawn
    from [T, L] as in the paper, the sequence placed at the end (it ends at step L-1) after
    L - n all-zero input steps; t1 and t2 count from its own E.

    Right answer: the paper's rule, "classified correctly if the final absolute error of all
    output units is below 0.3", applied to the softmax of the logits: the right class has
    probability above 0.7 (then every other unit is below 0.3). Solved: the paper's stopping
    rule read on a held-out batch: every sequence right (they asked the 2000 most recent
    training sequences to be right). Baseline: chance, ln 4 nats."""

    name = "temporal_order"
    cite = "Hochreiter & Schmidhuber 1997, Long Short-Term Memory, Sec. 5.6 (Experiment 6a)"
    loss = "xent"
    at = "last"
    min_T = 10  # t1 >= T//10 >= 1 keeps t1 off the start symbol

    def _configure(self, vary_length):
        self._lengths(vary_length)
        self.inputs, self.outputs = 8, 4

    def batch(self, rng: np.random.Generator, B: int) -> Batch:
        B = self._check_B(B)
        T, L = self.T, self.length
        cols = np.arange(B)
        start = self._starts(rng, B)
        tokens = rng.integers(A, D + 1, (L, B))
        tokens[np.arange(L)[:, None] < start[None, :]] = -1  # padding: all-zero inputs
        tokens[start, cols] = START
        tokens[L - 1, cols] = TRIGGER
        t1 = start + rng.integers(T // 10, 2 * T // 10 + 1, B)
        t2 = start + rng.integers(5 * T // 10, 6 * T // 10 + 1, B)
        first = rng.integers(0, 2, B)
        second = rng.integers(0, 2, B)
        tokens[t1, cols] = X + first
        tokens[t2, cols] = X + second
        return Batch(one_hot(tokens, 8), (2 * first + second).astype(np.int64), None)

    def baseline(self) -> float:
        return math.log(4)

    def _right(self, pred: np.ndarray, batch: Batch) -> np.ndarray:
        logp = np.take_along_axis(log_softmax(pred), batch.target[..., None], axis=-1)[..., 0]
        return np.exp(logp) > 0.7

    def solved(self, metrics: dict) -> bool:
        return metrics["accuracy"] == 1.0
