"""cellspec.tasks: every task's baseline measured on its own data against the formula, the
batches' layout against the contract, answers decidable from x (an oracle reading only x is
solved, a constant predictor is not), determinism, and the one-line errors.

Statistical tolerances are written beside each check: with n samples, a mean is within
5 standard errors (5 s / sqrt(n)) of its expectation but for a chance of about 6e-7."""

import math

import numpy as np
import pytest

from cellspec.tasks import TASKS, Batch, TaskError, make

# (name, T, options): a couple of T per task, and the options that change the layout
CASES = [
    ("adding", 2, {}), ("adding", 57, {}),
    ("adding_hs", 11, {}), ("adding_hs", 100, {}), ("adding_hs", 40, {"vary_length": True}),
    ("copy", 1, {}), ("copy", 30, {}),
    ("copy_variable", 1, {}), ("copy_variable", 30, {}),
    ("cue", 1, {}), ("cue", 25, {}), ("cue", 25, {"cue_at": "end", "K": 5, "D": 3}),
    ("forget", 16, {}), ("forget", 120, {"K": 4, "min_len": 3, "max_len": 7}),
    ("temporal_order", 10, {}), ("temporal_order", 100, {}),
    ("temporal_order", 60, {"vary_length": True}),
]
IDS = [f"{n}-T{T}" + "".join(f"-{k}={v}" for k, v in o.items()) for n, T, o in CASES]
BIG = 1e3  # a logit gap that makes a softmax one-hot to float64 precision


def rng(seed=0):
    return np.random.default_rng(seed)


def tokens_of(task, x):
    """[L,B] token indices of a one-hot x, -1 where a step is all zeros (padding)."""
    tok = np.argmax(x, axis=-1)
    return np.where(x.sum(-1) == 0, -1, tok)


def sharp(classes, C):
    """logits [..., C] that put all probability on `classes`."""
    out = np.full(classes.shape + (C,), -BIG)
    np.put_along_axis(out, classes[..., None], 0.0, axis=-1)
    return out


# -- oracles: the answer computed from x alone ----------------------------------------------
def oracle(task, batch):
    x = batch.x
    L, B, _ = x.shape
    if task.name in ("adding", "adding_hs"):
        s = np.sum(x[:, :, 0] * (x[:, :, 1] == 1.0), axis=0)
        return (s if task.name == "adding" else 0.5 + s / 4.0)[:, None]
    tok = tokens_of(task, x)
    if task.name in ("copy", "copy_variable"):
        cls = np.zeros((L, B), dtype=np.int64)
        for b in range(B):
            d = int(np.flatnonzero(tok[:, b] == 9)[0])
            cls[d + 1:d + 11, b] = tok[:10, b]
        return sharp(cls, task.outputs)
    if task.name == "cue":
        return sharp(np.array([tok[tok[:, b] < task.K, b][0] for b in range(B)]), task.K)
    if task.name == "forget":
        marker, query = task.K + task.D, task.K + task.D + 1
        # wrong on purpose wherever no query is: the mask must keep those steps out
        cls = np.full((L, B), -1)
        for b in range(B):
            for t in np.flatnonzero(tok[:, b] == query):
                m = np.flatnonzero(tok[:t, b] == marker)[-1]
                cls[t, b] = tok[m + 1, b]
        wrong = (batch.target + 1) % task.K
        return sharp(np.where(cls >= 0, cls, wrong), task.K)
    if task.name == "temporal_order":
        xy = [tok[(tok[:, b] == 6) | (tok[:, b] == 7), b] - 6 for b in range(B)]
        assert all(len(v) == 2 for v in xy)
        return sharp(np.array([2 * v[0] + v[1] for v in xy]), 4)
    raise AssertionError(task.name)


def constant(task, batch):
    """A predictor blind to x: the target's mean (mse) or uniform logits (xent)."""
    if task.loss == "mse":
        return np.full(batch.target.shape, float(np.mean(batch.target)))
    return np.zeros(batch.target.shape + (task.outputs,))


# -- baselines --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,T", [("adding", 2), ("adding", 57), ("adding_hs", 11),
                                    ("adding_hs", 100)])
def test_mse_baseline_measured(name, T):
    """adding: predicting 1 -> 1/6; adding_hs: predicting 0.5 -> 19/480 (the target's mean)."""
    task = make(name, T)
    n = 40000
    b = task.batch(rng(1), n)
    guess = 1.0 if name == "adding" else 0.5
    per = (b.target[:, 0] - guess) ** 2
    tol = 5 * per.std(ddof=1) / math.sqrt(n)  # 5 standard errors of the mean of n squares
    assert abs(per.mean() - task.baseline()) < tol
    m = task.metrics(np.full(b.target.shape, guess), b)
    assert m["loss"] == pytest.approx(per.mean(), rel=1e-12)
    assert not task.solved(m)


def test_adding_hs_vary_length_keeps_baseline():
    task = make("adding_hs", 40, vary_length=True)
    n = 40000
    per = (task.batch(rng(2), n).target[:, 0] - 0.5) ** 2
    assert abs(per.mean() - 19 / 480) < 5 * per.std(ddof=1) / math.sqrt(n)  # 5 std errors


@pytest.mark.parametrize("name,T", [("copy", 1), ("copy", 30), ("copy_variable", 1),
                                    ("copy_variable", 30)])
def test_copy_memoryless_baseline(name, T):
    """The symbol-blind predictor (blank where the target is surely blank, uniform over 1..8 on
    the 10 steps after the delimiter, read from x) scores 10 ln 8 / L exactly (deterministic:
    only rounding, tolerance 1e-12 relative); its accuracy is chance, 1/8."""
    task = make(name, T)
    b = task.batch(rng(3), 4000)
    tok = tokens_of(task, b.x)
    L, B = tok.shape
    logits = np.full((L, B, 10), -BIG)
    logits[:, :, 0] = 0.0
    d = np.argmax(tok == 9, axis=0)
    recall = (np.arange(L)[:, None] > d) & (np.arange(L)[:, None] <= d + 10)
    logits[recall] = -BIG
    logits[recall, 1:9] = 0.0
    m = task.metrics(logits, b)
    assert task.baseline() == pytest.approx(10 * math.log(8) / task.length, rel=1e-15)
    assert m["loss"] == pytest.approx(task.baseline(), rel=1e-12)
    # the recalled symbols are uniform over 1..8: their empirical entropy is ln 8 less the
    # plug-in bias, which is chi2(7)/(2n); 7 + 5*sqrt(14) bounds chi2(7) but for ~1e-6
    sym = b.target[b.target != 0]
    assert set(np.unique(sym)) == set(range(1, 9))
    p = np.bincount(sym, minlength=9)[1:] / sym.size
    gap = math.log(8) + np.sum(p * np.log(p))
    assert 0 <= gap < (7 + 5 * math.sqrt(14)) / (2 * sym.size)
    assert not task.solved(m)


@pytest.mark.parametrize("name,T,opts", [c for c in CASES if TASKS[c[0]].loss == "xent"
                                         and not c[0].startswith("copy")])
def test_chance_baseline_measured(name, T, opts):
    """cue, forget, temporal_order: the input at every counted step is the same symbol (query,
    query, trigger), so a memoryless predictor is a constant one; the best constant, the
    counted classes' own frequencies fitted in-sample, scores their empirical entropy, which is
    ln K less the plug-in bias chi2(K-1)/(2n): within (K-1 + 5 sqrt(2(K-1)))/(2n)."""
    task = make(name, T, **opts)
    b = task.batch(rng(4), 20000)
    counted = np.ones(b.target.shape, bool) if b.mask is None else b.mask
    tok = tokens_of(task, b.x)
    at = tok[-1] if task.at == "last" else tok[counted]
    assert np.unique(at).size == 1  # one input symbol where answers are asked
    cls = b.target[counted]
    K = task.outputs
    p = np.bincount(cls, minlength=K) / cls.size
    best_constant = np.log(np.where(p > 0, p, 1.0))
    m = task.metrics(np.broadcast_to(best_constant, b.target.shape + (K,)), b)
    gap = task.baseline() - m["loss"]
    assert task.baseline() == pytest.approx(math.log(K), rel=1e-15)
    assert 0 <= gap < (K - 1 + 5 * math.sqrt(2 * (K - 1))) / (2 * cls.size)
    assert not task.solved(m)


# -- layout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,T,opts", CASES, ids=IDS)
def test_layout_matches_contract(name, T, opts):
    task = make(name, T, **opts)
    B = 7
    b = task.batch(rng(5), B)
    assert isinstance(b, Batch) and task.T == T and task.name == name
    L = task.length
    assert b.x.shape == (L, B, task.inputs) and b.x.dtype == np.float64
    lead = (B,) if task.at == "last" else (L, B)
    if task.loss == "mse":
        assert b.target.shape == lead + (task.outputs,) and b.target.dtype == np.float64
    else:
        assert b.target.shape == lead and b.target.dtype == np.int64
        assert b.target.min() >= 0 and b.target.max() < task.outputs
        sums = b.x.sum(-1)  # one-hot tokens (all-zero only on padding steps)
        assert set(np.unique(b.x)) <= {0.0, 1.0} and set(np.unique(sums)) <= {0.0, 1.0}
    if task.at == "last" or name.startswith("copy"):
        assert b.mask is None
    else:
        assert b.mask.shape == (L, B) and b.mask.dtype == np.bool_ and b.mask.any(axis=0).all()
    assert task.loss in ("mse", "xent") and task.at in ("last", "every") and task.cite


@pytest.mark.parametrize("name,T,opts", CASES, ids=IDS)
def test_oracle_solves_and_constant_does_not(name, T, opts):
    task = make(name, T, **opts)
    b = task.batch(rng(6), 300)
    m = task.metrics(oracle(task, b), b)
    assert m["accuracy"] == 1.0 and m["loss"] < 1e-9 and task.solved(m)
    c = task.metrics(constant(task, b), b)
    assert c["accuracy"] < 0.9 and not task.solved(c)
    with pytest.raises(TaskError):
        task.metrics(np.zeros((1, 1)), b)


def test_adding_markers_one_in_each_half():
    for T in (2, 3, 57):
        b = make("adding", T).batch(rng(7), 500)
        marks = b.x[:, :, 1]
        assert (marks.sum(0) == 2).all()
        assert (marks[:T // 2].sum(0) == 1).all() and (marks[T // 2:].sum(0) == 1).all()
        assert ((b.x[:, :, 0] >= 0) & (b.x[:, :, 0] < 1)).all()


def test_adding_hs_definition():
    T = 100
    b = make("adding_hs", T).batch(rng(8), 3000)
    v, mk = b.x[:, :, 0], b.x[:, :, 1]
    assert set(np.unique(mk)) == {-1.0, 0.0, 1.0} and (np.abs(v) <= 1).all()
    assert ((mk == 1).sum(0) == 2).all() and (mk[-1] == -1).all()
    first = np.argmax(mk == 1, axis=0)
    second = (mk.shape[0] - 1) - np.argmax((mk == 1)[::-1], axis=0)
    assert (first < 10).all() and (second < T // 2 - 1 + 1).all()  # the j-th of T//2-1 unmarked
    assert np.array_equal(mk[0] == -1, first != 0)  # the first pair is -1 unless X1's
    # X1 zeroed when it is the first pair (1 in 10); X2 may be the first pair too (1 in 49
    # otherwise), then it keeps its value: so most, not all, marked first pairs hold 0
    zero = v[0] == 0
    assert (mk[0, zero] == 1).all() and 0.6 < zero[mk[0] == 1].mean() < 1
    assert set(np.unique(first)) == set(range(10))
    assert ((b.target > 0) & (b.target < 1)).all()


@pytest.mark.parametrize("name", ["adding_hs", "temporal_order"])
def test_vary_length_pads_before_the_sequence(name):
    T = 60
    task = make(name, T, vary_length=True)
    assert task.length == T + T // 10
    b = task.batch(rng(9), 2000)
    if name == "adding_hs":
        start = np.argmax(b.x[:, :, 1] != 0, axis=0)  # the first pair's marker (-1 or X1's 1)
    else:
        start = np.argmax(tokens_of(task, b.x) == 5, axis=0)  # E
    n = task.length - start
    assert set(np.unique(n)) == set(range(T, task.length + 1))
    before = np.arange(task.length)[:, None] < start
    assert (np.abs(b.x).sum(-1)[before] == 0).all()


def test_copy_layout_and_variable_gap():
    T = 12
    tok = tokens_of(None, make("copy", T).batch(rng(10), 50).x)
    assert (tok[T + 9] == 9).all() and (tok[10:T + 9] == 0).all() and (tok[T + 10:] == 0).all()
    task = make("copy_variable", T)
    b = task.batch(rng(10), 3000)
    tok = tokens_of(task, b.x)
    gap = np.argmax(tok == 9, axis=0) - 10  # blanks between the symbols and the delimiter
    assert ((tok == 9).sum(0) == 1).all() and set(np.unique(gap)) == set(range(1, T + 1))
    assert ((b.target != 0).sum(0) == 10).all()


def test_cue_positions():
    T = 9
    for where, at in (("start", 0), ("end", T)):
        task = make("cue", T, cue_at=where, K=3, D=2)
        tok = tokens_of(task, task.batch(rng(11), 200).x)
        assert (tok[at] < 3).all() and ((tok < 3).sum(0) == 1).all() and (tok[-1] == 5).all()


def test_forget_episodes():
    task = make("forget", 200, K=4, D=3, min_len=5, max_len=9)
    b = task.batch(rng(12), 200)
    tok = tokens_of(task, b.x)
    marker, query = 4 + 3, 4 + 3 + 1
    assert (tok[0] == marker).all()  # the stream starts with an episode
    for col in range(tok.shape[1]):
        starts = np.flatnonzero(tok[:, col] == marker)
        lens = np.diff(starts)  # every episode but the last (maybe cut short) is whole
        assert ((lens >= 5) & (lens <= 9)).all()
        assert (tok[starts[starts + 1 < len(tok)] + 1, col] < 4).all()  # a cue after a marker
        queries = np.flatnonzero(tok[:, col] == query)
        assert np.array_equal(np.flatnonzero(b.mask[:, col]), queries)
        assert np.array_equal(starts[1:] - 1, queries[:len(starts) - 1])  # a query ends each


def test_temporal_order_positions_and_rule():
    T = 100
    task = make("temporal_order", T)
    b = task.batch(rng(13), 3000)
    tok = tokens_of(task, b.x)
    assert (tok[0] == 5).all() and (tok[-1] == 4).all()
    xy = (tok == 6) | (tok == 7)
    t1 = np.argmax(xy, axis=0)
    t2 = T - 1 - np.argmax(xy[::-1], axis=0)
    assert set(np.unique(t1)) == set(range(10, 21)) and set(np.unique(t2)) == set(range(50, 61))
    assert set(np.unique(b.target)) == {0, 1, 2, 3}
    # the paper's 0.3 rule on the softmax: the right class at probability 0.6 is wrong, 0.8 right
    for p, right in ((0.6, 0.0), (0.8, 1.0)):
        probs = np.full((b.target.size, 4), (1 - p) / 3)
        probs[np.arange(b.target.size), b.target] = p
        assert task.metrics(np.log(probs), b)["accuracy"] == right


# -- determinism -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,T,opts", CASES, ids=IDS)
def test_same_seed_same_batch(name, T, opts):
    task = make(name, T, **opts)
    a, b, c = (task.batch(rng(s), 16) for s in (42, 42, 43))
    for f in ("x", "target", "mask"):
        u, v = getattr(a, f), getattr(b, f)
        assert (u is None and v is None) or (u.dtype == v.dtype and np.array_equal(u, v))
    assert not (np.array_equal(a.x, c.x) and np.array_equal(a.target, c.target))


# -- errors --------------------------------------------------------------------------------
def one_line(excinfo):
    text = str(excinfo.value)
    assert text and "\n" not in text
    return text


def test_unknown_task_lists_known():
    with pytest.raises(TaskError) as e:
        make("adder", 10)
    text = one_line(e)
    assert "adder" in text and all(n in text for n in TASKS)
    assert list(TASKS) == ["adding", "adding_hs", "copy", "copy_variable", "cue", "forget",
                           "temporal_order"]


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("T", [0, -1, 2.5, "10", True, None])
def test_bad_T(name, T):
    with pytest.raises(TaskError) as e:
        make(name, T)
    assert name in one_line(e)


@pytest.mark.parametrize("name", list(TASKS))
def test_unknown_option(name):
    with pytest.raises(TaskError) as e:
        make(name, 50, colour="red")
    assert "colour" in one_line(e)


@pytest.mark.parametrize("name,T,opts", [
    ("cue", 5, {"cue_at": "middle"}), ("cue", 5, {"K": 1}), ("cue", 5, {"D": 0}),
    ("cue", 5, {"K": 2.0}), ("forget", 10, {}), ("forget", 50, {"min_len": 2}),
    ("forget", 50, {"min_len": 9, "max_len": 8}), ("adding_hs", 50, {"vary_length": "yes"}),
    ("temporal_order", 50, {"vary_length": 1}), ("adding", 1, {}), ("adding_hs", 10, {}),
    ("temporal_order", 9, {}),
])
def test_bad_option_or_too_small_T(name, T, opts):
    with pytest.raises(TaskError) as e:
        make(name, T, **opts)
    one_line(e)


def test_bad_batch_size():
    for B in (0, -3, 2.0):
        with pytest.raises(TaskError) as e:
            make("copy", 5).batch(rng(), B)
        one_line(e)
