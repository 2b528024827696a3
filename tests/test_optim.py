"""cellspec.train.optim against torch.optim and torch.nn.utils.clip_grad_norm_ (the CPU build of
torch 2.13), in float64 to 1e-12 and float32 to ~1e-6; and its errors."""

import math

import numpy as np
import pytest
import torch

from cellspec.train import optim

N = 50
STEPS = 25

# (name, options): every option each optimizer has, alone and together
CASES = [
    ("adam", {}),
    ("adam", {"weight_decay": 0.1}),
    ("adam", {"betas": (0.5, 0.9), "eps": 1e-3}),
    ("adam", {"betas": (0.0, 0.0)}),
    ("adam", {"amsgrad": True}),
    ("adam", {"amsgrad": True, "weight_decay": 0.05, "betas": (0.8, 0.95)}),
    ("rmsprop", {}),
    ("rmsprop", {"weight_decay": 0.1}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"alpha": 0.5, "eps": 1e-4}),
    ("rmsprop", {"alpha": 0.3, "centered": True, "momentum": 0.5, "weight_decay": 0.01}),
    ("sgd", {}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.01}),
]
LR = {"adam": 1e-2, "rmsprop": 1e-2, "sgd": 1e-1}
TORCH = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


def _ids(case):
    name, opts = case
    return name + ("-" + "-".join(f"{k}={v}" for k, v in opts.items()) if opts else "")


def _run_both(name, opts, dtype, seed=0):
    """(ours, torch's) params after STEPS steps from the same start and gradients."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(N).astype(dtype)
    # gradients of varied scale (some entries tiny, some large) so eps and the moments matter
    grads = [(rng.standard_normal(N) * 10.0 ** rng.uniform(-3, 1, N)).astype(dtype) for _ in range(STEPS)]

    ours = start.copy()
    opt = optim.make(name, LR[name], **opts)
    for g in grads:
        before = g.copy()
        opt.step(ours, g)
        np.testing.assert_array_equal(g, before)  # the gradient is left as it was

    p = torch.nn.Parameter(torch.from_numpy(start.copy()))
    kw = dict(opts)
    ref = TORCH[name]([p], lr=LR[name], foreach=False, **kw)
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        ref.step()
    return ours, p.detach().numpy(), start


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_float64_matches_torch(case):
    name, opts = case
    ours, theirs, start = _run_both(name, opts, np.float64)
    assert ours.dtype == np.float64
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))
    assert not np.allclose(ours, start)  # it moved
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_float32_matches_torch(case):
    name, opts = case
    ours, theirs, start = _run_both(name, opts, np.float32, seed=1)
    assert ours.dtype == np.float32
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)


def _adam_passes(opt, params, grads):
    """torch's single-tensor Adam as whole-vector numpy passes, op for op (the way optim.Adam
    ran before its fused loop): the sequence the fused loop must equal to the bit, so that a
    trial's results do not change with it."""
    beta1, beta2 = opt.betas
    m, v, top, tmp = (np.zeros_like(params) for _ in range(4))
    for k, grad in enumerate(grads, 1):
        g = grad
        if opt.weight_decay != 0.0:
            g = params * opt.weight_decay
            g += grad
        optim._lerp(m, g, 1.0 - beta1, tmp)
        v *= beta2
        np.multiply(g, 1.0 - beta2, out=tmp)
        tmp *= g
        v += tmp
        step_size = opt.lr / (1.0 - beta1 ** float(k))
        bias_correction2_sqrt = (1.0 - beta2 ** float(k)) ** 0.5
        read = v
        if opt.amsgrad:
            np.maximum(top, v, out=top)
            read = top
        np.sqrt(read, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += opt.eps
        np.divide(m, tmp, out=tmp)
        tmp *= -step_size
        params += tmp
    return params


# every Adam case above, and beta1 below 0.5 (lerp's other formula), in both dtypes
ADAM_CASES = [opts for name, opts in CASES if name == "adam"] + [{"betas": (0.3, 0.9), "eps": 1e-3, "weight_decay": 0.1}]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", ADAM_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_adam_fused_loop_equals_the_numpy_passes_to_the_bit(opts, dtype):
    rng = np.random.default_rng(3)
    n = 1000   # a vector of ~1,000 entries: the fused loop's vectorised body and its remainder
    start = rng.standard_normal(n).astype(dtype)
    # gradients over six decades, zeros among them (v = 0: the division by eps alone)
    grads = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 2, n) * (rng.random(n) > 0.05)).astype(dtype) for _ in range(STEPS)]
    opt = optim.make("adam", 1e-2, **opts)
    ours = start.copy()
    for g in grads:
        opt.step(ours, g)
    want = _adam_passes(optim.make("adam", 1e-2, **opts), start.copy(), grads)
    assert np.all(np.isfinite(ours)) and not np.array_equal(ours, start)
    np.testing.assert_array_equal(ours, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_takes_params_dtype(dtype):
    opt = optim.Adam(lr=1e-3, amsgrad=True, weight_decay=0.1)
    p = np.ones(7, dtype)
    opt.step(p, np.full(7, 0.5, dtype))
    assert opt.steps == 1
    assert all(buf.dtype == dtype and buf.shape == (7,) for buf in opt._state.values())


def test_step_on_a_view_of_a_flat_vector():
    """The trainer's params are views of one flat array: a step updates the array itself."""
    flat = np.zeros(12)
    view = flat[:]
    optim.SGD(lr=0.5).step(view, np.arange(12.0))
    np.testing.assert_array_equal(flat, -0.5 * np.arange(12.0))


def test_reset_starts_afresh():
    a, b = optim.SGD(lr=0.1, momentum=0.9), optim.SGD(lr=0.1, momentum=0.9)
    p, q = np.ones(5), np.ones(5)
    a.step(p, np.ones(5))
    a.reset()
    a.step(p, np.full(5, 2.0))
    q -= 0.1
    b.step(q, np.full(5, 2.0))
    np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(
    "name, lr, opts, words",
    [
        ("adamw", 1e-3, {}, "unknown optimizer"),
        ("Adam", 1e-3, {}, "unknown optimizer"),
        ("adam", 1e-3, {"momentum": 0.9}, "unknown option momentum"),
        ("sgd", 1e-3, {"betas": (0.9, 0.9)}, "unknown option betas"),
        ("rmsprop", 1e-3, {"nesterov": True, "amsgrad": True}, "unknown options amsgrad, nesterov"),
        ("adam", 0.0, {}, "lr must be > 0"),
        ("sgd", -1.0, {}, "lr must be > 0"),
        ("adam", math.nan, {}, "lr must be finite"),
        ("adam", math.inf, {}, "lr must be finite"),
        ("adam", "0.1", {}, "lr must be a number"),
        ("adam", True, {}, "lr must be a number"),
        ("adam", 1e-3, {"betas": (1.0, 0.999)}, "betas[0] must be in [0, 1)"),
        ("adam", 1e-3, {"betas": (0.9, -0.1)}, "betas[1] must be in [0, 1)"),
        ("adam", 1e-3, {"betas": 0.9}, "betas must be a pair"),
        ("adam", 1e-3, {"eps": -1e-8}, "eps must be >= 0"),
        ("adam", 1e-3, {"weight_decay": -0.1}, "weight_decay must be >= 0"),
        ("adam", 1e-3, {"amsgrad": 1}, "amsgrad must be True or False"),
        ("rmsprop", 1e-3, {"alpha": 1.0}, "alpha must be in [0, 1)"),
        ("rmsprop", 1e-3, {"momentum": -0.5}, "momentum must be in [0, 1)"),
        ("rmsprop", 1e-3, {"centered": "yes"}, "centered must be True or False"),
        ("rmsprop", 1e-3, {"eps": math.nan}, "eps must be finite"),
        ("sgd", 1e-3, {"momentum": 1.5}, "momentum must be in [0, 1)"),
        ("sgd", 1e-3, {"dampening": 2.0}, "dampening must be in [0, 1]"),
        ("sgd", 1e-3, {"nesterov": True}, "nesterov needs momentum > 0 and dampening 0"),
        ("sgd", 1e-3, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov needs"),
    ],
)
def test_bad_names_and_values(name, lr, opts, words):
    with pytest.raises(ValueError) as err:
        optim.make(name, lr, **opts)
    message = str(err.value)
    assert words in message and "\n" not in message


def test_bad_step_arguments():
    opt = optim.Adam()
    with pytest.raises(ValueError, match="1-D"):
        opt.step(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="float32 or float64"):
        opt.step(np.zeros(3, np.int64), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="must match"):
        opt.step(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="must match"):
        opt.step(np.zeros(3), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="numpy array"):
        opt.step([0.0, 0.0], np.zeros(2))
    assert opt.steps == 0  # nothing ran
    opt.step(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="reset"):
        opt.step(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="reset"):
        opt.step(np.zeros(3, np.float32), np.ones(3, np.float32))


def _torch_clip(grad, max_norm):
    p = torch.nn.Parameter(torch.zeros(grad.shape, dtype=torch.from_numpy(grad).dtype))
    p.grad = torch.from_numpy(grad.copy())
    total = torch.nn.utils.clip_grad_norm_([p], max_norm)
    return float(total), p.grad.numpy()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_grad_norm_matches_torch(dtype, rtol, max_norm):
    rng = np.random.default_rng(3)
    grad = rng.standard_normal(N).astype(dtype)  # norm ~7: clipped at 0.5 and 3, not at 1e3
    before = grad.copy()
    want_total, want_grad = _torch_clip(grad, max_norm)
    total = optim.clip_grad_norm(grad, max_norm)
    assert isinstance(total, float)
    assert grad.dtype == dtype
    np.testing.assert_allclose(total, want_total, rtol=rtol)
    np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=0)
    if max_norm > total:
        np.testing.assert_array_equal(grad, before)  # under the max: untouched
    else:
        assert np.linalg.norm(grad) <= max_norm


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_clip_grad_norm_non_finite(bad):
    grad = np.arange(6.0)
    grad[2] = bad
    before = grad.copy()
    want_total, _ = _torch_clip(grad, 1.0)
    total = optim.clip_grad_norm(grad, 1.0)
    assert math.isnan(total) == math.isnan(want_total) and math.isinf(total) == math.isinf(want_total)
    np.testing.assert_array_equal(grad, before)  # left as it was (torch would scale it by 0 or NaN)


def test_clip_grad_norm_bad_arguments():
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        optim.clip_grad_norm(np.ones(3), 0.0)
    with pytest.raises(ValueError, match="max_norm must be finite"):
        optim.clip_grad_norm(np.ones(3), math.nan)
    with pytest.raises(ValueError, match="1-D"):
        optim.clip_grad_norm(np.ones((3, 1)), 1.0)
    grad = np.full(4, 10.0)
    assert optim.clip_grad_norm(grad, math.inf) == 20.0  # an infinite max never clips
    np.testing.assert_array_equal(grad, 10.0)
