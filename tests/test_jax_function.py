"""cellspec.jax.function: a Layer of any generated cell as a JAX function (custom_vjp over the
kernels, through buffer_callback): gradients by check_grads for the whole catalog, equality with
the numpy Layer (forward, gradients, lengths), jit, vmap, the batch-parallel path and the errors."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cellspec
import cellspec.jax as cj
from cellspec import parallel, runtime
from cellspec.lengths import LengthsError
from cellspec.runtime import ShapeError, tied

from conftest import ROOT, SPEC_NAMES, generated

lstm = generated("lstm")
gru = generated("gru")


@pytest.fixture(autouse=True)
def x64():
    """JAX's 64-bit mode for every test here, restored afterwards."""
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def random_x(dims, Cell, T, B, rng, dtype="float64"):
    xs = {n: rng.normal(size=(T, B, dims[d])).astype(dtype) for n, d in Cell.INPUTS}
    return xs if len(xs) > 1 else xs[Cell.INPUTS[0][0]]


def random_state(layer, B, rng, dtype="float64"):
    n = layer.num_layers * layer.num_directions
    return {s: (0.5 * rng.normal(size=(n, B, layer.dims[d]))).astype(dtype) for s, d in layer.module.Cell.STATES}


def both(module, **kw):
    """The JAX function and a numpy Layer of the same arguments (and so the same params)."""
    apply, params = cj.function(module, **kw)
    layer = cellspec.Layer(module, **kw)
    return apply, params, layer


def as_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


# --- what jax sees of cellspec ----------------------------------------------------------------


def test_cellspec_and_the_generated_modules_import_without_jax():
    code = ("import sys, cellspec, cellspec.layer, cellspec.runtime, generated.lstm, generated.gru\n"
            "assert 'jax' not in sys.modules, sorted(m for m in sys.modules if 'jax' in m)\n"
            "assert callable(cellspec.jax.function)\n"   # imported on first use
            "import jax\n"
            "assert cellspec.jax.jax is jax and jax.__name__ == 'jax' and hasattr(jax, 'custom_vjp')\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": ROOT})


def test_params_are_the_layers_keys_and_initial_values():
    apply, params, layer = both(lstm, num_layers=2, bidirectional=True, dtype="float64", seed=3, input=3, hidden=4)
    assert list(params) == list(layer.params)
    for k, v in layer.params.items():
        assert isinstance(params[k], jax.Array) and params[k].dtype == jnp.float64
        np.testing.assert_array_equal(params[k], v)


# --- gradients over the whole catalog ---------------------------------------------------------


def tiny_sizes(Cell):
    return tied(Cell.CONSTRAINTS, {d: 2 if d in ("modules", "proj") else 3 if d == "hidden" else 2 for d in Cell.DIMS})


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_check_grads_for_every_catalog_cell(name):
    """Reverse mode against finite differences, with respect to the params, x and the initial
    state, one layer, float64."""
    module = generated(name)
    Cell = module.Cell
    apply, params = cj.function(module, dtype="float64", seed=7, **tiny_sizes(Cell))
    layer = cellspec.Layer(module, dtype="float64", seed=7, **tiny_sizes(Cell))
    rng = np.random.default_rng(8)
    x, state = random_x(layer.dims, Cell, 3, 2, rng), random_state(layer, 2, rng)
    check_grads(lambda p, x, s: apply(p, x, s), (params, x, state), order=1, modes=["rev"])


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_callbacks_leave_their_arguments_and_residuals_as_they_were(name):
    """The callbacks run the kernels on XLA's own buffers, uncopied (the residuals in the backward
    pass, x, the state and the params in the forward one): one vjp called with a cotangent, then
    another, then the first again gives the first's gradients to the bit (both directions,
    ragged lengths, so that every residual is read), and the arrays passed in keep their values."""
    assert cj._callback_kind() == "buffer"   # JAX on the CPU: XLA's own buffers
    module = generated(name)
    Cell = module.Cell
    apply, params = cj.function(module, bidirectional=True, dtype="float64", seed=5, **tiny_sizes(Cell))
    layer = cellspec.Layer(module, bidirectional=True, dtype="float64", seed=5, **tiny_sizes(Cell))
    rng = np.random.default_rng(6)
    x, state = random_x(layer.dims, Cell, 4, 3, rng), random_state(layer, 3, rng)
    given = jax.tree_util.tree_map(lambda a: np.array(a, copy=True), (params, x, state))   # copies, not views
    x, state = jax.tree_util.tree_map(jnp.asarray, (x, state))
    lengths = np.array([4, 2, 3])
    out, vjp = jax.vjp(lambda p, x, s: apply(p, x, s, lengths=lengths), params, x, state)
    one, two = (jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)), out) for _ in range(2))
    first = as_numpy(vjp(one))
    assert all(np.all(np.isfinite(a)) for a in jax.tree_util.tree_leaves(first))
    other = as_numpy(vjp(two))
    assert not np.array_equal(jax.tree_util.tree_leaves(other)[0], jax.tree_util.tree_leaves(first)[0])
    again = as_numpy(vjp(one))
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(a, b)
    # jitted and without lengths, the callbacks get the very buffers of x, the state and params
    def total(p, x, s):
        return sum(jnp.sum(a) for a in jax.tree_util.tree_leaves(apply(p, x, s)))

    jax.block_until_ready(jax.jit(jax.grad(total, argnums=(0, 1, 2)))(params, x, state))
    jax.block_until_ready(jax.jit(apply)(params, x, state))
    for a, b in zip(jax.tree_util.tree_leaves(given), jax.tree_util.tree_leaves((params, x, state))):
        np.testing.assert_array_equal(a, np.asarray(b))


@pytest.mark.parametrize("lengths", [np.array([2, 4, 3]), np.array([2, 3, 1])], ids=["longest-T", "all-shorter"])
def test_check_grads_for_two_bidirectional_lstm_layers_with_lengths(lengths):
    apply, params = cj.function(lstm, num_layers=2, bidirectional=True, dtype="float64", seed=9, input=2, hidden=3)
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4, 3, 2))
    state = {s: 0.5 * rng.normal(size=(4, 3, 3)) for s in ("h", "c")}
    check_grads(lambda p, x, s: apply(p, x, s, lengths=lengths), (params, x, state), order=1, modes=["rev"])
    # and jitted, with the lengths traced
    f = jax.jit(apply)
    check_grads(lambda p, x, s: f(p, x, s, lengths=jnp.asarray(lengths)), (params, x, state), order=1, modes=["rev"])


def test_check_grads_for_depth_gated_layers_with_a_state_link():
    """Two inputs (x and the linked c_low, a dict), the upper layer reading the lower's memory."""
    module = generated("lstm_depth_gated")
    apply, params = cj.function(module, num_layers=2, bidirectional=True, links={"c_low": "c"}, dtype="float64", seed=4, input=2, hidden=3)
    rng = np.random.default_rng(4)
    x = {"x": rng.normal(size=(3, 2, 2)), "c_low": rng.normal(size=(3, 2, 3))}
    check_grads(lambda p, x: apply(p, x, lengths=np.array([3, 2])), (params, x), order=1, modes=["rev"])


# --- the same as the numpy Layer ----------------------------------------------------------------


def layer_run(layer, x, state, lengths, dy, dfinal):
    y, final, tape = layer.forward(x, state, lengths=lengths)
    dx, dparams, dstate = layer.backward(tape, dy, dfinal)
    return y, final, dx, dparams, dstate


def jax_run(apply, params, x, state, lengths, dy, dfinal, jit=True):
    """y, the final state and the gradients of sum(y*dy) + sum(final*dfinal), by jax.grad."""

    def loss(p, x, s):
        y, final = apply(p, x, s, lengths=lengths)
        return jnp.sum(y * dy) + sum(jnp.sum(final[n] * dfinal[n]) for n in final)

    grad = jax.grad(loss, argnums=(0, 1, 2))
    run = jax.jit(apply) if jit else apply
    y, final = run(params, x, state, lengths=lengths)
    dparams, dx, dstate = (jax.jit(grad) if jit else grad)(params, x, state)
    return as_numpy((y, final, dx, dparams, dstate))


def assert_equal_runs(a, b, tol):
    names = ("y", "final", "dx", "dparams", "dstate")
    for what, u, v in zip(names, a, b):
        if isinstance(u, dict):
            assert set(u) == set(v), what
            for k in u:
                np.testing.assert_allclose(u[k], v[k], **tol, err_msg=f"{what} {k}")
        else:
            np.testing.assert_allclose(u, v, **tol, err_msg=what)


@pytest.mark.parametrize("module", [lstm, gru], ids=["lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
# "shorter": every sequence ends before T, so the Layer's kernels run only up to the longest
# one's end, and the residuals carry the tape padded to T
@pytest.mark.parametrize("lengths", [None, np.array([3, 5, 1]), np.array([3, 4, 1])], ids=["full", "lengths", "shorter"])
# "pure": the callbacks as they run where JAX computes on a GPU (jax.pure_callback), forced here
@pytest.mark.parametrize("kind", ["buffer", "pure"])
def test_equals_the_layer_forward_and_backward(monkeypatch, module, dtype, lengths, kind):
    monkeypatch.setattr(cj, "_callback_kind", lambda: kind)
    kw = dict(num_layers=2, bidirectional=True, dtype=dtype, seed=5, input=3, hidden=4)
    apply, params, layer = both(module, **kw)
    rng = np.random.default_rng(5)
    T, B = 5, 3
    x, state = random_x(layer.dims, module.Cell, T, B, rng, dtype), random_state(layer, B, rng, dtype)
    dy = rng.normal(size=(T, B, 8)).astype(dtype)
    dfinal = {n: rng.normal(size=v.shape).astype(dtype) for n, v in state.items()}
    want = layer_run(layer, x, state, lengths, dy, dfinal)
    jitted = jax_run(apply, params, x, state, lengths, dy, dfinal, jit=True)
    eager = jax_run(apply, params, x, state, lengths, dy, dfinal, jit=False)
    # the same kernels on the same arrays: equal to the last bit
    assert_equal_runs(jitted, eager, dict(rtol=0, atol=0))
    assert_equal_runs(jitted, want, dict(rtol=0, atol=0))
    y = jitted[0]
    assert y.dtype == np.dtype(dtype) and all(v.dtype == np.dtype(dtype) for v in jitted[3].values())
    if lengths is not None:
        for b, n in enumerate(lengths):
            assert np.all(y[n:, b] == 0)


def test_float32_without_64_bit_mode_equals_the_layer():
    """JAX's default, 32-bit mode: float32 arrays and int32 lengths."""
    jax.config.update("jax_enable_x64", False)
    kw = dict(num_layers=2, bidirectional=True, dtype="float32", seed=8, input=3, hidden=4)
    apply, params, layer = both(gru, **kw)
    rng = np.random.default_rng(8)
    T, B = 4, 3
    x, state = random_x(layer.dims, gru.Cell, T, B, rng, "float32"), random_state(layer, B, rng, "float32")
    dy = rng.normal(size=(T, B, 8)).astype("float32")
    dfinal = {n: rng.normal(size=v.shape).astype("float32") for n, v in state.items()}
    lengths = jnp.array([4, 1, 2])
    assert lengths.dtype == jnp.int32
    want = layer_run(layer, x, state, np.asarray(lengths), dy, dfinal)
    assert_equal_runs(jax_run(apply, params, x, state, lengths, dy, dfinal), want, dict(rtol=0, atol=0))


def test_batch_first_and_no_state_equal_the_layer():
    kw = dict(num_layers=2, bidirectional=False, batch_first=True, dtype="float64", seed=6, input=3, hidden=4)
    apply, params, layer = both(lstm, **kw)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 5, 3))   # [B,T,input]
    lengths = np.array([5, 2, 4])
    y, final = jax.jit(apply)(params, x, lengths=lengths)
    y_l, final_l, tape = layer.forward(x, lengths=lengths)
    np.testing.assert_array_equal(y, y_l)
    dy = rng.normal(size=y_l.shape)
    dparams, dx = jax.grad(lambda p, x: jnp.sum(apply(p, x, lengths=lengths)[0] * dy), argnums=(0, 1))(params, x)
    dx_l, dparams_l, _ = layer.backward(tape, dy)
    np.testing.assert_array_equal(dx, dx_l)
    for k in dparams_l:
        np.testing.assert_array_equal(dparams[k], dparams_l[k])


def test_lengths_are_not_differentiable():
    apply, params = cj.function(lstm, dtype="float64", seed=1, input=2, hidden=3)
    x = np.random.default_rng(1).normal(size=(4, 2, 2))
    lengths = jnp.array([4, 2])
    y, vjp = jax.vjp(lambda p, x, n: apply(p, x, lengths=n)[0], params, x, lengths)
    _, dx, dlengths = vjp(jnp.ones_like(y))
    assert dlengths.dtype == jax.dtypes.float0 and dlengths.shape == (2,)
    assert np.all(np.asarray(dx)[2:, 1] == 0)   # past its end, a sequence's input gets no gradient


def test_lengths_out_of_range_under_jit_raise_from_the_callback_with_the_lengths_error():
    """Traced under jit, lengths are values only the callback sees: the error comes from there,
    as JAX's error ending with the LengthsError (the README says so); unjitted, the
    LengthsError itself, before any kernel runs."""
    apply, params = cj.function(lstm, dtype="float32", seed=1, input=2, hidden=3)
    x = jnp.ones((4, 3, 2), jnp.float32)
    f = jax.jit(lambda p, x, n: apply(p, x, lengths=n)[0].sum())
    assert np.isfinite(float(f(params, x, jnp.array([4, 1, 2]))))
    # JAX raises it as a ValueError or a JaxRuntimeError (a RuntimeError), depending on its path
    with pytest.raises((ValueError, RuntimeError), match=r"LengthsError: lengths holds 7: every length must be in 1..T = 1..4"):
        f(params, x, jnp.array([7, 1, 2]))
    with pytest.raises(LengthsError, match=r"lengths holds 0: every length must be in 1..T = 1..4"):
        apply(params, x, lengths=np.array([0, 1, 2]))


def test_a_batch_parallel_call_equals_the_layer(monkeypatch):
    """A batch cut into chunks (each with its own tape): the residuals keep one set per chunk and
    the backward pass runs each chunk's tape on its own."""
    monkeypatch.setattr(runtime, "MIN_ROWS", 1)
    monkeypatch.setattr(runtime, "MIN_TRANSCENDENTALS", 0)
    monkeypatch.setattr(runtime.CellBase, "threads", 3)
    kw = dict(num_layers=2, bidirectional=True, dtype="float64", seed=2, input=3, hidden=4)
    apply, params, layer = both(lstm, **kw)
    rng = np.random.default_rng(2)
    T, B = 5, 7
    x, state = rng.normal(size=(T, B, 3)), random_state(layer, B, rng)
    dy = rng.normal(size=(T, B, 8))
    dfinal = {n: rng.normal(size=v.shape) for n, v in state.items()}
    lengths = np.array([5, 1, 3, 2, 5, 4, 2])
    want = layer_run(layer, x, state, lengths, dy, dfinal)
    assert len(layer.forward(x, state, lengths=lengths)[2].tapes[1][1].parts) == 3
    assert_equal_runs(jax_run(apply, params, x, state, lengths, dy, dfinal), want, dict(rtol=0, atol=0))


def test_results_copied_on_threads_are_the_results(monkeypatch):
    """Above PARALLEL_COPY_BYTES (here 0) a callback's results are copied into XLA's buffers in
    pieces on two threads: every array whole and in place, a 0-d one and one of fewer rows than
    threads included, and a jitted value and gradient equal to the Layer's to the bit."""
    monkeypatch.setattr(cj, "PARALLEL_COPY_BYTES", 0)
    monkeypatch.setattr(cj.blas, "threads", lambda: 2)
    rng = np.random.default_rng(4)
    results = [rng.normal(size=(5, 3, 2)), np.float64(2.5) * np.ones(()), rng.normal(size=(1, 4)), rng.normal(size=7)]
    outs = [np.full(r.shape, np.nan) for r in results]
    cj._copy_all(list(zip(outs, results)))
    assert all(np.array_equal(o, r) for o, r in zip(outs, results))
    used = []
    pool = parallel.pool
    monkeypatch.setattr(cj.parallel, "pool", lambda n: used.append(n) or pool(n))
    kw = dict(num_layers=2, bidirectional=True, dtype="float64", seed=3, input=3, hidden=4)
    apply, params, layer = both(gru, **kw)
    T, B = 5, 4
    x, state = rng.normal(size=(T, B, 3)), random_state(layer, B, rng)
    dy, lengths = rng.normal(size=(T, B, 8)), np.array([5, 2, 4, 1])
    dfinal = {n: rng.normal(size=v.shape) for n, v in state.items()}
    want = layer_run(layer, x, state, lengths, dy, dfinal)
    assert_equal_runs(jax_run(apply, params, x, state, lengths, dy, dfinal), want, dict(rtol=0, atol=0))
    assert used and set(used) == {2}


@pytest.mark.parametrize("uneven", [False, True], ids=["same-chunks", "upper-layer-rechunks"])
def test_the_backward_pass_runs_on_the_forward_passs_arrangement(monkeypatch, uneven):
    """Unsorted lengths, two directions, two chunks of 16 rows (threads=2): the backward rule
    rebuilds the tape from the arrangement the forward callback handed over (the batch order,
    the reversed frame, each chunk's active rows); with `uneven`, the upper layer's cells cut
    the batch in three, so that they sort it again (a `Ragged` with an order of its own)."""
    monkeypatch.setattr(runtime.CellBase, "threads", 2)
    if uneven:
        chunks = runtime.CellBase.batch_chunks
        monkeypatch.setattr(runtime.CellBase, "batch_chunks",
                            lambda self, B: parallel.chunks(B, 3) if self.dims["input"] != 3 else chunks(self, B))
    kw = dict(num_layers=2, bidirectional=True, dtype="float64", seed=12, input=3, hidden=4)
    apply, params, layer = both(lstm, **kw)
    rng = np.random.default_rng(12)
    T, B = 6, 32
    x, state = rng.normal(size=(T, B, 3)), random_state(layer, B, rng)
    dy = rng.normal(size=(T, B, 8))
    dfinal = {n: rng.normal(size=v.shape) for n, v in state.items()}
    lengths = rng.integers(1, T + 1, size=B)
    assert not np.all(np.diff(lengths) <= 0)
    tape = layer.forward(x, state, lengths=lengths)[2]
    assert [len(t.parts) for row in tape.tapes for t in row] == [2, 2, 3, 3] if uneven else [2, 2, 2, 2]
    assert not uneven or tape.tapes[1][0].ragged.order is not None
    want = layer_run(layer, x, state, lengths, dy, dfinal)
    assert_equal_runs(jax_run(apply, params, x, state, lengths, dy, dfinal), want, dict(rtol=0, atol=0))


def test_calls_from_several_threads_at_once_each_get_their_own_params():
    """Each callback runs on its own copy of the template layer: no call sees another's params."""
    apply, params = cj.function(lstm, dtype="float64", seed=4, input=3, hidden=4)
    x = np.random.default_rng(4).normal(size=(6, 2, 3))
    sets = [{k: v * (1 + 0.1 * i) for k, v in params.items()} for i in range(8)]
    f = jax.jit(lambda p, x: jax.grad(lambda p: jnp.sum(apply(p, x)[0] ** 2))(p))
    alone = [as_numpy(f(p, x)) for p in sets]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: as_numpy(f(p, x)), sets * 3))
    for i, g in enumerate(together):
        for k in g:
            np.testing.assert_array_equal(g[k], alone[i % len(sets)][k])


# --- vmap: the callbacks loop over the mapped axis ----------------------------------------------


def test_vmap_equals_a_python_loop():
    apply, params = cj.function(gru, num_layers=2, bidirectional=True, dtype="float64", seed=3, input=3, hidden=4)
    rng = np.random.default_rng(3)
    N, T, B = 3, 4, 2
    xs = rng.normal(size=(N, T, B, 3))
    lengths = np.array([[4, 2], [1, 3], [2, 2]])
    dy = rng.normal(size=(N, T, B, 8))

    # x and lengths mapped, params shared
    y, final = jax.jit(jax.vmap(lambda x, n: apply(params, x, lengths=n)))(xs, lengths)
    for i in range(N):
        y_i, final_i = apply(params, xs[i], lengths=lengths[i])
        np.testing.assert_array_equal(y[i], y_i)
        np.testing.assert_array_equal(final["h"][i], final_i["h"])

    # per-example gradients of the params, x mapped
    def loss(p, x, n, g):
        return jnp.sum(apply(p, x, lengths=n)[0] * g)

    grads = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0, 0)))(params, xs, lengths, dy)
    for i in range(N):
        g_i = jax.grad(loss)(params, xs[i], lengths[i], dy[i])
        for k in params:
            np.testing.assert_array_equal(grads[k][i], g_i[k])

    # params mapped too: one set of params per example
    stacked = {k: jnp.stack([v, 2 * v, -v]) for k, v in params.items()}
    y = jax.vmap(lambda p, x: apply(p, x)[0])(stacked, xs)
    for i in range(N):
        np.testing.assert_array_equal(y[i], apply({k: v[i] for k, v in stacked.items()}, xs[i])[0])


# --- errors -------------------------------------------------------------------------------------


def test_wrong_dtypes_and_shapes_are_refused_at_trace_time():
    apply, params = cj.function(lstm, dtype="float32", seed=1, input=3, hidden=4)
    x = np.zeros((5, 2, 3), np.float32)
    jitted = jax.jit(apply)
    cases = [
        ((params, x.astype(np.float64)), {}, ShapeError, r"input 'x' has dtype float64, but this function is float32"),
        ((params, x[..., :2]), {}, ShapeError, r"input 'x' has shape \[5, 2, 2\], expected \[T,B,input\] = \[5, 2, 3\]"),
        ((params, x[0]), {}, ShapeError, r"input 'x' must be a 3-d array \[T,B,input\]"),
        (({**params, "W_i_l0": params["W_i_l0"][:, :2]}, x), {}, ShapeError, r"param 'W_i_l0' has shape \[4, 2\], expected \[hidden,input\]"),
        (({**params, "b_i_l0": params["b_i_l0"].astype(jnp.float64)}, x), {}, ShapeError, "param 'b_i_l0' has dtype float64"),
        (({k: v for k, v in params.items() if k != "b_o_l0"}, x), {}, ShapeError, "missing b_o_l0"),
        ((params, x), {"state": {"h": np.zeros((1, 2, 4), np.float32)}}, ShapeError, "state must be None or a dict with the keys c, h"),
        ((params, x), {"state": {"h": np.zeros((1, 3, 4), np.float32), "c": np.zeros((1, 3, 4), np.float32)}}, ShapeError,
         r"state 'h' has shape \[1, 3, 4\], expected \[num_layers\*num_directions,B,hidden\] = \[1, 2, 4\]"),
        ((params, x), {"lengths": np.array([1.0, 2.0])}, LengthsError, "lengths has dtype float64"),
        ((params, x), {"lengths": np.array([1, 2, 3])}, LengthsError, r"lengths has shape \[3\], expected \[B\] = \[2\]"),
    ]
    for args, kwargs, error, message in cases:
        for f in (apply, jitted):
            with pytest.raises(error, match=message):
                f(*args, **kwargs)
    # lengths that are known are checked up front; traced ones, in the callback
    with pytest.raises(LengthsError, match=r"every length must be in 1..T = 1..5"):
        apply(params, x, lengths=np.array([6, 1]))
    with pytest.raises(Exception, match=r"every length must be in 1..T = 1..5"):
        jax.block_until_ready(jitted(params, x, lengths=jnp.array([6, 1])))


def test_what_the_function_does_not_do_says_so():
    with pytest.raises(ValueError, match="supports dropout=0.0 only"):
        cj.function(lstm, num_layers=2, dropout=0.5, input=3, hidden=4)
    jax.config.update("jax_enable_x64", False)
    with pytest.raises(ValueError, match="needs JAX's 64-bit mode"):
        cj.function(lstm, dtype="float64", input=3, hidden=4)
    jax.config.update("jax_enable_x64", True)
    # a custom_vjp has no forward mode
    apply, params = cj.function(lstm, dtype="float64", seed=1, input=3, hidden=4)
    x = np.zeros((2, 1, 3))
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: apply(params, x)[0], (x,), (x,))
