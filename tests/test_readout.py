"""cellspec.train.readout: the gradients against central differences (float64) and torch autograd,
the loss against torch.nn.functional's (masking done by indexing), large logits, dtypes, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cellspec.train.readout import Readout

T, B, H, O = 4, 3, 5, 3
COMBOS = [(loss, at) for loss in ("mse", "xent") for at in ("last", "every")]


def _ids(combo):
    return "-".join(combo)


def _problem(loss, at, masked, dtype=np.float64, seed=0):
    """(readout, y, target, mask). Targets at the positions the mask leaves out are NaN (mse) or
    an invalid class (xent): the readout must never read them."""
    rng = np.random.default_rng(seed)
    ro = Readout(H, O, loss, at, dtype, rng)
    y = rng.standard_normal((T, B, H)).astype(dtype)
    lead = (B,) if at == "last" else (T, B)
    mask = None
    if masked:
        mask = rng.random(lead) < 0.6
        mask.flat[0] = True
        mask.flat[-1] = False
    if loss == "mse":
        target = rng.standard_normal(lead + (O,)).astype(dtype)
        if mask is not None:
            target[~mask] = np.nan
    else:
        target = rng.integers(0, O, lead)
        if mask is not None:
            target[~mask] = -100
    return ro, y, target, mask


def _central(f, x, h=1e-6):
    """The central-difference gradient of the scalar f() w.r.t. the array x (changed in place
    and restored)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def _rel(a, b):
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)))
    return np.max(np.abs(a - b)) / scale


@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_gradients_match_central_differences(combo, masked):
    loss, at = combo
    ro, y, target, mask = _problem(loss, at, masked)
    value, pred, cache = ro.forward(y, target, mask)
    dy, grads = ro.backward(cache)
    assert np.isfinite(value)

    def f():
        return ro.forward(y, target, mask)[0]

    for name, ours, wrt in [("y", dy, y), ("W", grads["W"], ro.params["W"]), ("b", grads["b"], ro.params["b"])]:
        numeric = _central(f, wrt)
        assert ours.shape == wrt.shape and ours.dtype == np.float64, name
        assert np.all(np.isfinite(ours)) and np.all(np.isfinite(numeric)), name
        assert np.max(np.abs(numeric)) > 0, name
        assert _rel(ours, numeric) < 1e-7, (name, _rel(ours, numeric))
    if at == "last":
        assert not dy[:-1].any()  # only y[T-1] is read
    elif masked:
        assert not dy[~mask].any()  # uncounted steps get no gradient


def _torch(ro, y, target, mask):
    """torch's loss and gradients (y, W, b) of the same problem, the mask applied by indexing."""
    yt = torch.tensor(y, requires_grad=True)
    Wt = torch.tensor(ro.params["W"], requires_grad=True)
    bt = torch.tensor(ro.params["b"], requires_grad=True)
    rows = yt[-1] if ro.at == "last" else yt
    pred = rows @ Wt.T + bt
    tt = torch.from_numpy(target)
    if mask is not None:
        mt = torch.from_numpy(mask)
        pred, tt = pred[mt], tt[mt]
    if ro.loss == "mse":
        value = F.mse_loss(pred, tt)
    else:
        value = F.cross_entropy(pred.reshape(-1, ro.outputs), tt.reshape(-1))
    value.backward()
    return value.item(), yt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_matches_torch_float64(combo, masked):
    ro, y, target, mask = _problem(*combo, masked, seed=1)
    value, pred, cache = ro.forward(y, target, mask)
    dy, grads = ro.backward(cache)
    want, want_dy, want_dW, want_db = _torch(ro, y, target, mask)
    assert isinstance(value, float)
    np.testing.assert_allclose(value, want, rtol=1e-12)
    for ours, theirs in [(dy, want_dy), (grads["W"], want_dW), (grads["b"], want_db)]:
        assert np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * np.max(np.abs(theirs)))
    expected_pred = (y[-1] if combo[1] == "last" else y) @ ro.params["W"].T + ro.params["b"]
    np.testing.assert_allclose(pred, expected_pred, rtol=1e-14)


@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_float32_stays_float32(combo, masked):
    ro, y, target, mask = _problem(*combo, masked, dtype=np.float32, seed=2)
    assert ro.params["W"].dtype == np.float32 and ro.params["b"].dtype == np.float32
    value, pred, cache = ro.forward(y, target, mask)
    dy, grads = ro.backward(cache)
    assert pred.dtype == dy.dtype == grads["W"].dtype == grads["b"].dtype == np.float32
    assert cache.residual.dtype == np.float32
    want, want_dy, want_dW, want_db = _torch(ro, y, target, mask)
    np.testing.assert_allclose(value, want, rtol=1e-5)
    for ours, theirs in [(dy, want_dy), (grads["W"], want_dW), (grads["b"], want_db)]:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * np.max(np.abs(theirs)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("at", ["last", "every"])
def test_large_logits_stay_finite(at, dtype):
    ro, y, target, _ = _problem("xent", at, False, dtype=dtype, seed=3)
    ro.params["W"][...] *= 3e3  # logits ~1e3: exp(logit) would overflow even float64
    value, pred, cache = ro.forward(y, target)
    dy, grads = ro.backward(cache)
    assert np.max(np.abs(pred)) > 1000
    assert np.isfinite(value) and value > 1.0
    assert all(np.all(np.isfinite(a)) for a in (dy, grads["W"], grads["b"]))
    want, want_dy, want_dW, want_db = _torch(ro, y, target, None)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(value, want, rtol=rtol)
    np.testing.assert_allclose(dy, want_dy, rtol=rtol, atol=rtol * np.max(np.abs(want_dy)))


def test_init_like_linear():
    ro = Readout(64, 7, "mse", "every", np.float64, np.random.default_rng(0))
    W, b = ro.params["W"], ro.params["b"]
    assert W.shape == (7, 64) and b.shape == (7,)
    bound = 1 / np.sqrt(64)
    assert np.max(np.abs(W)) <= bound and np.max(np.abs(b)) <= bound
    assert np.max(np.abs(W)) > 0.9 * bound  # uniform over the whole interval, not a narrower one
    again = Readout(64, 7, "mse", "every", np.float64, np.random.default_rng(0))
    np.testing.assert_array_equal(again.params["W"], W)


def test_params_replaced_by_views_are_read():
    """The trainer swaps the params for views of its flat vector: forward and backward use them."""
    ro, y, target, _ = _problem("mse", "every", False)
    flat = np.concatenate([ro.params["W"].ravel(), ro.params["b"]])
    ro.params = {"W": flat[: O * H].reshape(O, H), "b": flat[O * H:]}
    before = ro.forward(y, target)[0]
    flat[O * H:] += 1.0
    value, _, cache = ro.forward(y, target)
    assert value != before
    _, grads = ro.backward(cache)
    want = _torch(ro, y, target, None)
    np.testing.assert_allclose(grads["b"], want[3], rtol=1e-12)


def test_backward_twice_and_non_contiguous_y():
    ro, y, target, mask = _problem("xent", "every", True)
    yt = np.asfortranarray(y)  # not C-contiguous: reshaped with a copy
    _, _, cache = ro.forward(yt, target, mask)
    first = ro.backward(cache)
    second = ro.backward(cache)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1]["W"], second[1]["W"])
    _, _, cache = ro.forward(y, target, mask)
    np.testing.assert_array_equal(ro.backward(cache)[0], first[0])


def test_predict_is_forwards_pred():
    for at in ("last", "every"):
        ro, y, target, _ = _problem("xent", at, False)
        np.testing.assert_array_equal(ro.predict(y), ro.forward(y, target)[1])


def _raises(words, call, *args, **kwargs):
    with pytest.raises(ValueError) as err:
        call(*args, **kwargs)
    assert words in str(err.value), str(err.value)


def test_bad_construction():
    rng = np.random.default_rng(0)
    _raises("unknown loss 'ce'", Readout, H, O, "ce", "last", np.float64, rng)
    _raises("unknown at 'first'", Readout, H, O, "mse", "first", np.float64, rng)
    _raises("hidden must be an integer >= 1", Readout, 0, O, "mse", "last", np.float64, rng)
    _raises("outputs must be an integer >= 2", Readout, H, 1, "xent", "last", np.float64, rng)
    _raises("dtype must be float32 or float64", Readout, H, O, "mse", "last", np.int32, rng)
    _raises("dtype must be float32 or float64", Readout, H, O, "mse", "last", "nonsense", rng)
    _raises("rng must be a numpy.random.Generator", Readout, H, O, "mse", "last", np.float64, 0)


def test_bad_forward_arguments():
    ro, y, target, _ = _problem("mse", "every", False)
    _raises("mse target has shape [3,3], expected pred's [4,3,3]", ro.forward, y, target[0])
    _raises("y has shape [4,3,6]", ro.forward, np.zeros((T, B, H + 1)), target)
    _raises("y has dtype float32", ro.forward, y.astype(np.float32), target)
    _raises("mask has shape [3], expected [T,B]", ro.forward, y, target, np.ones(B, bool))
    _raises("mask must be a numpy array of booleans", ro.forward, y, target, np.ones((T, B)))
    _raises("the mask counts no target", ro.forward, y, target, np.zeros((T, B), bool))
    _raises("must hold real numbers", ro.forward, y, target.astype(complex))

    last, y, target, _ = _problem("mse", "last", False)
    _raises("expected pred's [3,3] ([B,O])", last.forward, y, np.zeros((T, B, O)))
    _raises("mask has shape [4,3], expected [B]", last.forward, y, target, np.ones((T, B), bool))

    xent, y, target, _ = _problem("xent", "every", False)
    _raises("xent target has shape [4,3,3], expected one class index per step, [T,B] = [4,3]",
            xent.forward, y, np.zeros((T, B, O), np.int64))
    _raises("it must hold integer class indices", xent.forward, y, target.astype(np.float64))
    bad = target.copy()
    bad[1, 1] = O
    _raises("xent target holds class 3; classes are 0..2", xent.forward, y, bad)
    bad[1, 1] = -1
    _raises("holds class -1", xent.forward, y, bad)
    mask = np.ones((T, B), bool)
    mask[1, 1] = False
    assert np.isfinite(xent.forward(y, bad, mask)[0])  # an uncounted target is never read

    xlast, y, target, _ = _problem("xent", "last", False)
    _raises("one class index per sequence, [B] = [3]", xlast.forward, y, np.zeros((T, B), np.int64))
