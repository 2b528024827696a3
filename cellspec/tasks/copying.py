"""The copy memory task of Arjovsky et al. (`copy`) and its variable-gap form from Henaff et al.
(`copy_variable`). Tokens: 0 blank, 1..8 the symbols to copy, 9 the delimiter; inputs and
outputs over those 10 classes."""

from __future__ import annotations

import math

import numpy as np

from .base import Batch, Task, one_hot

BLANK, DELIM, SYMBOLS, N = 0, 9, 8, 10  # N: the sequence of symbols to copy has 10 of them
CLASSES = 10


class Copy(Task):
    """The copy memory task of Arjovsky, Shah & Bengio 2016 ("Unitary evolution recurrent neural
    networks", Section 4.1), after Hochreiter & Schmidhuber 1997.

    L = T + 20 steps of one-hot tokens over 10 classes: 10 symbols drawn uniformly from the 8
    categories 1..8, then T - 1 blanks (0), the delimiter (9), and 10 blanks. The target, one
    class per step (cross-entropy at every step, all steps counted): blank for the first T + 10
    steps, then the 10 symbols in order.

    Baseline: the memoryless strategy of the paper, blanks where the target is surely blank and
    a uniform guess over the 8 symbols at the 10 recall steps: 10 ln 8 / (T + 20) nats per step.
    Accuracy: the fraction of the 10 recalled symbols right (argmax), over all sequences.
    Solved: accuracy >= 0.99 on a held-out batch (the paper reports loss curves, not a rule;
    0.99 per symbol is near-perfect recall, well past anything a symbol-blind guess reaches,
    1/8)."""

    name = "copy"
    cite = "Arjovsky, Shah & Bengio 2016 (uRNN), Sec. 4.1; after Hochreiter & Schmidhuber 1997"
    loss = "xent"
    at = "every"
    min_T = 1
    defaults = {}

    def _configure(self):
        self.inputs = self.outputs = CLASSES
        self.length = self.T + 2 * N

    def _gaps(self, rng: np.random.Generator, B: int) -> np.ndarray:
        """The number of blanks between the symbols and the delimiter, per sequence."""
        return np.full(B, self.T - 1)

    def batch(self, rng: np.random.Generator, B: int) -> Batch:
        B = self._check_B(B)
        L = self.length
        symbols = rng.integers(1, SYMBOLS + 1, (N, B))
        gaps = self._gaps(rng, B)
        cols = np.arange(B)[None, :]
        tokens = np.full((L, B), BLANK, dtype=np.int64)
        tokens[:N] = symbols
        delim = N + gaps
        tokens[delim, cols[0]] = DELIM
        target = np.full((L, B), BLANK, dtype=np.int64)
        target[delim[None, :] + 1 + np.arange(N)[:, None], cols] = symbols
        return Batch(one_hot(tokens, CLASSES), target, None)

    def baseline(self) -> float:
        return N * math.log(SYMBOLS) / self.length

    def _answers(self, batch: Batch) -> np.ndarray:
        return batch.target != BLANK  # the recall steps: the only non-blank targets

    def solved(self, metrics: dict) -> bool:
        return metrics["accuracy"] >= 0.99


class CopyVariable(Copy):
    """The variable copy task of Henaff, Szlam & LeCun 2016 ("Recurrent orthogonal networks and
    long-memory tasks", ICML 2016, the variable-length copy problem), as Tallec & Ollivier 2018
    ("Can recurrent neural networks warp time?", ICLR 2018, copy-task experiments) restate it
    (Henaff et al.'s own text was not at hand when this was written; their restatement was):
    the number of blanks between the end of the 10 symbols and the delimiter is drawn uniformly
    from 1..T, here per sequence, so the delimiter's position varies and a cell cannot simply
    count T steps; the 10 symbols are to be output on the 10 steps right after the delimiter.

    Sequences share one length L = T + 21 (the longest gap, T, ends its recall at step L-1);
    after its recall a sequence is blank, input and target. All L steps count, as in `copy`.
    Baseline: the same memoryless (symbol-blind) strategy: blank wherever the target is blank,
    which the delimiter reveals, and a uniform guess over the 8 symbols at the 10 recall steps:
    10 ln 8 / (T + 21) nats per step. Accuracy and solved as in `copy` (recalled symbols right,
    solved at accuracy >= 0.99)."""

    name = "copy_variable"
    cite = ("Henaff, Szlam & LeCun 2016, Recurrent orthogonal networks and long-memory tasks "
            "(variable copy), as restated by Tallec & Ollivier 2018 (copy experiments)")

    def _configure(self):
        self.inputs = self.outputs = CLASSES
        self.length = self.T + 2 * N + 1

    def _gaps(self, rng: np.random.Generator, B: int) -> np.ndarray:
        return rng.integers(1, self.T + 1, B)
