"""`cellspec.jax.function`: a `Layer` of any generated cell as a JAX function, differentiable in
reverse mode, that runs the cell's own Numba kernels.

    apply, params = cellspec.jax.function(spec, num_layers=1, bidirectional=False, batch_first=False,
                                          dtype="float32", seed=None, links=None, **dims)
    y, state = apply(params, x, state=None, lengths=None)

`spec`, `dims` and the options are `Layer`'s (`dropout` must be 0.0, see below). `params` is a dict
of jax arrays keyed as `Layer.params` (`f"{param}_l{k}"`, `f"{param}_l{k}_reverse"`), with the
values a Layer of the same arguments and `seed` starts with. `apply` takes x as `Layer.forward`
does ([T,B,input], [B,T,input] with batch_first; a dict for a cell with several inputs), state
None (zeros) or a dict name -> [num_layers*num_directions, B, dim], lengths None or integers [B]
in 1..T, and returns y and the final state (a dict), as `Layer.forward` does, without a tape.

How it runs. `apply` is a `jax.custom_vjp` whose primal, forward and backward rules call the
kernels on the host, in numpy, through `jax.experimental.buffer_callback` (`_host_call`): the
callback reads XLA's own buffers as numpy arrays and writes its results into XLA's output
buffers (where JAX computes on a GPU, through `jax.pure_callback`, which brings the arrays to
the host). `jax.pure_callback` would copy every argument into a new jax.Array first and every
result after: with it, the jitted value and gradient took 1.3-1.7 of the raw cell's time at S2
and 2.0-3.0 at S4, against 1.2-1.3 and 1.4-1.8 now (lstm, gru, rnn, both in one process,
interleaved, 11 rounds). Each callback runs on a shallow copy of
one Layer made by `function` (the template), whose cells hold the params the callback received:
the template itself is never written to, so callbacks may run at the same time (no lock).
Everything the arrays' shapes and dtypes decide is checked when `apply` is traced, with the
messages of `Layer` (`cellspec.runtime.ShapeError`); the values of traced lengths are checked in
the callback (a `LengthsError` raised there reaches the caller as JAX's runtime error; lengths
that are not traced are checked up front). Lengths are not differentiable: their cotangent is a
zero (float0) one.

The tape (residuals). The forward rule returns the tapes of the Layer's cells as residuals: for
each cell, the inputs it read (its rows in its kernels' order, reversed and zeroed past each end;
an input the kernels take as packed rows, `PACKED_INPUTS`, spread out to [T,B,n]) and every
array of its generated TAPE table, whose shapes the table gives in the dims, T and B
(`'[T+1,B,hidden]'`, `'[4*hidden,input]'`), so they are known at trace time. A batch-parallel
call keeps one tape per chunk, and the residuals keep them so: per chunk its inputs and its
arrays with a B axis, and once per cell those without (a stacked weight matrix, the same in
every chunk). The chunking is fixed when `function` is called (below), so their shapes are
known at trace time too, and no array is joined in the forward rule or cut again in the
backward one. With them go, as small integer arrays, the arrangement the
forward pass used: the lengths, the reversed frame, and for each cell its chunks, their active
rows per step and, with lengths, its `lengths.Ragged` (its lengths and order); their shapes are
known at trace time too, the chunking being fixed (see below). The backward rule rebuilds the
Layer's tape from all these, working nothing out again, and runs `Layer.backward`. The cost: the
residuals take the memory of the Layer's tape, and each is copied once, from the kernels' tape
into XLA's output buffer; the backward callback runs the kernels on XLA's buffers of the
residuals, uncopied (the backward pass reads its tape and never writes it). No step is computed twice. Without differentiation (`apply` alone, jitted or not) the primal rule
runs the inference kernels, which keep no tape. So that the forward and backward callbacks cut a
batch into the same chunks, each cell's `threads` is fixed when `function` is called (to the
cell's own setting, else numpy's BLAS thread count then).

Transformations. `jax.jit` and `jax.grad` / `jax.vjp` work (reverse mode); forward mode
(`jax.jvp`, `jax.jacfwd`) does not, as with any `custom_vjp`. Under `jax.vmap` every callback is
`vmap_method="sequential"`: JAX loops it over the mapped axis, one Layer call per element (a
mapped x, state, lengths or params alike), so `vmap(apply)` gives exactly what a Python loop over
the mapped axis gives, and `vmap(grad(...))` per-element gradients. It is no faster than the
loop; to run examples together, put them in the batch axis B instead.

Dropout. Training-time dropout needs randomness that the callbacks, being pure, cannot draw for
themselves; `function` takes dropout=0.0 only (apply dropout in JAX between one-layer functions,
with your own key, if you need it).

Dtypes. float32 and float64; float64 needs `jax.config.update("jax_enable_x64", True)` before
`function` is called. This module is the only one of cellspec that imports jax (`import cellspec`
and the generated modules never do).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.buffer_callback import buffer_callback

from . import blas, parallel
from . import layer_parts as parts
from . import lengths as lengths_
from .layer import Layer, LayerTape
from .lengths import LengthsError, Ragged, Rows
from .runtime import ShapeError
from .tape import Tape, as_steps, padded_steps, size_of, tape_layout

__all__ = ["function"]

VMAP_METHOD = "sequential"


def _callback_kind() -> str:
    """"buffer" where JAX computes on the CPU (its default backend), else "pure": on a GPU,
    `buffer_callback` hands the callback device buffers, which numpy cannot read."""
    return "buffer" if jax.default_backend() == "cpu" else "pure"


# a callback's results, above this many bytes in all, are copied into XLA's buffers on
# `blas.threads()` threads (see _copy_all)
PARALLEL_COPY_BYTES = 16 << 20


def _copy_all(pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """np.copyto(out, result) for each pair; where they add up to more than PARALLEL_COPY_BYTES,
    cut along their first axes and dealt over `blas.threads()` threads (numpy lets go of the GIL
    as it copies). The forward callback's results are the kernels' tape, 50-65 MB for lstm and gru
    at S2, copied into fresh buffers whose pages fault in as they are first written: on two
    threads the jitted value and gradient took 0.92-0.93 of its time with one (interleaved, 11
    and 15 rounds); rnn at S2 (13 MB) 1.01-1.02, so it stays on one."""
    n = blas.threads()
    if n < 2 or sum(o.nbytes for o, _ in pairs) <= PARALLEL_COPY_BYTES:
        for o, r in pairs:
            np.copyto(o, r)
        return
    pieces = []
    for o, r in pairs:
        if o.ndim == 0 or o.shape[0] < n:
            pieces.append((o, r))
        else:
            edges = [o.shape[0] * i // n for i in range(n + 1)]
            pieces += [(o[a:b], r[a:b]) for a, b in zip(edges, edges[1:])]
    # the largest first, each to the thread with the fewest bytes so far
    loads, groups = [0] * n, [[] for _ in range(n)]
    for o, r in sorted(pieces, key=lambda p: -p[0].nbytes):
        k = loads.index(min(loads))
        loads[k] += o.nbytes
        groups[k].append((o, r))

    def run(group):
        for o, r in group:
            np.copyto(o, r)

    list(parallel.pool(n).map(run, groups))


def _host_call(fn, result_shapes, *args):
    """`fn(*args)` on the host, in numpy, as a JAX operation whose results have `result_shapes`.
    On the CPU through `buffer_callback`: the callback gets XLA's own buffers, the arguments as
    numpy views (`pure_callback` first copies every argument into a new jax.Array: 145-167 us
    for 8 small ones, and the time of a copy for large ones), and fn's results are copied into
    XLA's output buffers (`_copy_all`), checked first for shape and dtype (`pure_callback` copies
    them too).
    Elsewhere through `pure_callback`, which brings the arrays to the host. fn must not write
    into its arguments."""
    if _callback_kind() == "pure":
        return jax.pure_callback(fn, result_shapes, *args, vmap_method=VMAP_METHOD)

    def body(ctx, out, *buffers):
        del ctx
        results = jax.tree.leaves(fn(*jax.tree.map(np.asarray, buffers)))
        outs = [np.asarray(o) for o in jax.tree.leaves(out)]
        if len(results) != len(outs):
            raise RuntimeError(f"cellspec.jax: a callback returned {len(results)} arrays for {len(outs)} outputs")
        pairs = []
        for o, r in zip(outs, results):
            r = np.asarray(r)
            if r.shape != o.shape or r.dtype != o.dtype:
                raise RuntimeError(f"cellspec.jax: a callback returned {r.dtype}{list(r.shape)} for {o.dtype}{list(o.shape)}")
            pairs.append((o, r))
        _copy_all(pairs)

    return buffer_callback(body, result_shapes, vmap_method=VMAP_METHOD)(*args)


# --- the template layer and its runners -----------------------------------------------------------


def _runner(template: Layer, keys: list[str], arrays) -> Layer:
    """A shallow copy of the template whose cells hold `arrays` (copies, writable and
    C-contiguous) as their params; the template is left as it is."""
    layer = copy.copy(template)
    layer.cells = [[copy.copy(c) for c in row] for row in template.cells]
    for row in layer.cells:
        for c in row:
            c.params = dict(c.params)
    layer.params = parts.LayerParams(layer.cells)
    for k, a in zip(keys, arrays):
        layer.params[k] = np.array(a, dtype=layer.dtype, order="C")
    return layer


def _arranged(tape: LayerTape):
    """The arrangement the forward pass used, as int32 arrays for the residuals (their shapes in
    `function`'s `arrangement_shapes`): the checked lengths [B] (None without), the reversed
    frame [T,B] (None with one direction), and for each cell (k, d) its chunks [n,2] (start, stop),
    their active rows [n,T] and, with lengths, its `Ragged`: (whether it has one, its lengths [B],
    its order [B], the identity for none)."""
    def ints(a):
        return np.asarray(a, np.int32)

    B, cells = tape.B, []
    for t in (t for row in tape.tapes for t in row):
        pieces = t.parts or [(slice(0, t.B), t)]
        r, ragged = t.ragged, None
        if tape.lengths is not None:
            ragged = (np.bool_(r is not None), ints(np.zeros(B) if r is None else r.lengths),
                      ints(np.arange(B) if r is None or r.order is None else r.order))
        # the active rows of every one of the T steps (none after a ragged batch's longest sequence)
        actives = [np.concatenate([q.active, np.zeros(tape.T - len(q.active), np.int64)]) for _, q in pieces]
        cells.append((ints([(sl.start, sl.stop) for sl, _ in pieces]), ints(actives), ragged))
    lengths = None if tape.lengths is None else ints(tape.lengths)
    return lengths, None if tape.reversal is None else ints(tape.reversal), tuple(cells)


# --- the function ---------------------------------------------------------------------------------


def function(spec, num_layers=1, bidirectional=False, batch_first=False, dtype="float32", seed=None, links=None, dropout=0.0, **dims):
    """`(apply, params)`: `apply(params, x, state=None, lengths=None) -> (y, state)`, a JAX function
    of a Layer of `spec` (see the module docstring); `params`, a dict of jax arrays keyed as
    `Layer.params`, initialised as `Layer(spec, ..., seed=seed)` initialises them."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.integer, np.floating)) or dropout != 0:
        raise ValueError(f"cellspec.jax.function supports dropout=0.0 only, not {dropout!r}: training-time dropout needs "
                         "random masks, which its pure callbacks cannot draw (apply dropout in JAX, between one-layer functions)")
    if str(dtype) == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError('dtype="float64" needs JAX\'s 64-bit mode: call jax.config.update("jax_enable_x64", True) first')
    template = Layer(spec, num_layers=num_layers, bidirectional=bidirectional, dropout=0.0, batch_first=False,
                     dtype=dtype, seed=seed, links=links, **dims)
    for row in template.cells:
        for cell in row:
            # the forward and backward callbacks must cut a batch into the same chunks
            cell.threads = cell.threads if cell.threads is not None else blas.threads()
    Cell = template.module.Cell
    dt = template.dtype
    keys = list(template.params)
    shapes = {k: template.params[k].shape for k in keys}
    param_dims = {parts.param_key(n, k, d): f"[{','.join(dims)}]" for k, row in enumerate(template.cells)
                  for d, _ in enumerate(row) for n, dims in Cell.PARAMS}
    in_names = [n for n, _ in Cell.INPUTS]
    state_dims = [(n, d) for n, d in Cell.STATES]
    L, nd = template.num_layers, template.num_directions
    width = nd * template.dims[Cell.OUTPUTS[0][1]]
    layout = tape_layout(Cell)
    flat_cells = [c for row in template.cells for c in row]
    params = {k: jnp.asarray(template.params[k]) for k in keys}

    def out_shapes(T, B):
        y = jax.ShapeDtypeStruct((T, B, width), dt)
        finals = tuple(jax.ShapeDtypeStruct((L * nd, B, template.dims[d]), dt) for _, d in state_dims)
        return y, finals

    batched = [(name, texts) for name, texts, axis in layout if axis is not None]
    shared = [(name, texts) for name, texts, axis in layout if axis is None]

    def residual_shapes(T, B):
        """Per cell: per chunk, the inputs it read and its TAPE arrays with a B axis; then its
        TAPE arrays without one, once."""
        out = []
        for cell in flat_cells:
            def arrays(names, rows):
                sizes = {**cell.dims, "T": T, "B": rows}
                return tuple(jax.ShapeDtypeStruct(tuple(size_of(t, sizes, Cell.NAME) for t in texts), dt) for _, texts in names)

            chunks = tuple((tuple(jax.ShapeDtypeStruct((T, sl.stop - sl.start, cell.dims[d]), dt) for _, d in Cell.INPUTS),
                            arrays(batched, sl.stop - sl.start)) for sl in cell.batch_chunks(B))
            out.append((chunks, arrays(shared, B)))
        return tuple(out)

    def arrangement_shapes(T, B, lengths: bool):
        """The shapes of `_arranged`: the chunking is fixed (each cell's threads), so its shapes are."""
        def ints(*shape):
            return jax.ShapeDtypeStruct(shape, np.int32)

        ragged = (jax.ShapeDtypeStruct((), np.bool_), ints(B), ints(B)) if lengths else None
        cells = tuple((ints(n, 2), ints(n, T), ragged) for n in (len(c.batch_chunks(B)) for c in flat_cells))
        return ints(B) if lengths else None, ints(T, B) if template.bidirectional else None, cells

    # --- the callbacks (numpy) ----------------------------------------------------------------

    def host_inputs(inputs, states, lengths):
        # views of XLA's buffers: the forward pass copies what its tape keeps (x, the state)
        x = {n: np.ascontiguousarray(a, dtype=dt) for n, a in zip(in_names, inputs)}
        x = x if len(x) > 1 else x[in_names[0]]
        state = {n: np.ascontiguousarray(a, dtype=dt) for (n, _), a in zip(state_dims, states)}
        return x, state, None if lengths is None else np.asarray(lengths)

    def finals_of(finals):
        return tuple(np.asarray(finals[n], dt) for n, _ in state_dims)

    def primal_cb(p, inputs, states, lengths):
        layer = _runner(template, keys, p)
        x, state, lengths = host_inputs(inputs, states, lengths)
        y, finals, _ = layer.forward(x, state, lengths=lengths, train=False)
        return np.asarray(y, dt), finals_of(finals)

    def steps_of(tape, name, T):
        # a tape's input as [T,B,n] (zeros after the steps its kernels ran): a packed input's
        # rows spread out in one pass (a view at full length)
        a = tape.inputs[name]
        if name in Cell.PACKED_INPUTS:
            return Rows(tape.active, len(tape.active), tape.B).spread(a, T)
        return padded_steps(a, T, state=False)

    def forward_cb(p, inputs, states, lengths):
        layer = _runner(template, keys, p)
        x, state, lengths = host_inputs(inputs, states, lengths)
        y, finals, tape = layer.forward(x, state, lengths=lengths, train=True)
        residuals = []
        for t in (t for row in tape.tapes for t in row):
            pieces = t.pieces()
            chunks = tuple((tuple(steps_of(q, n, t.T) for n in in_names),
                            tuple(as_steps(q.arrays[name], texts, t.T) for name, texts in batched)) for q in pieces)
            residuals.append((chunks, tuple(as_steps(pieces[0].arrays[name], texts, t.T) for name, texts in shared)))
        return np.asarray(y, dt), finals_of(finals), tuple(residuals), _arranged(tape)

    def backward_cb(p, residuals, arrangement, dy, dfinals):
        layer = _runner(template, keys, p)
        T, B = dy.shape[0], dy.shape[1]
        lengths, reversal, arranged = arrangement
        tapes = []
        cells = [c for row in layer.cells for c in row]
        def kept(a):
            # XLA's buffer of the residual, not copied: the backward pass reads its tape and never
            # writes it (tests/test_jax_function.py calls one vjp twice, and the residuals' values
            # must stay as they were)
            return np.ascontiguousarray(a, dtype=dt)

        for cell, (chunked, common), (bounds, actives, ragged) in zip(cells, residuals, arranged):
            checked, _ = cell._checked_params()
            common = {name: kept(a) for (name, _), a in zip(shared, common)}
            pieces = []
            for (ins, arrays), (a, b), active in zip(chunked, np.asarray(bounds), np.asarray(actives)):
                rows, active = int(b) - int(a), np.array(active, dtype=np.int64)
                # a packed input as the passes take it (`Rows.pack`: a view at full length)
                inputs = {n: Rows(active, T, rows).pack(kept(v)) if n in Cell.PACKED_INPUTS else kept(v)
                          for n, v in zip(in_names, ins)}
                saved = {**{name: kept(v) for (name, _), v in zip(batched, arrays)}, **common}
                pieces.append((slice(int(a), int(b)), Tape(cell, T, rows, inputs, checked, saved, active=active)))
            record = pieces[0][1] if len(pieces) == 1 else Tape(cell, T, B, {}, checked, {}, pieces)
            if ragged is not None and ragged[0]:
                record.ragged = Ragged.rebuilt(np.asarray(ragged[1], np.int64), T, np.asarray(ragged[2], np.int64))
            tapes.append(record)
        rows = [tapes[k * nd:(k + 1) * nd] for k in range(L)]
        lengths = None if lengths is None else np.asarray(lengths, np.int64)
        reversal = None if reversal is None else np.asarray(reversal, np.int64)
        tape = LayerTape(layer, T, B, lengths, reversal, rows, [None] * L)
        dstate = {n: np.array(a, dtype=dt, order="C") for (n, _), a in zip(state_dims, dfinals)}
        dx, dparams, dstate0 = layer.backward(tape, np.array(dy, dtype=dt, order="C"), dstate)
        dx = dx if isinstance(dx, dict) else {in_names[0]: dx}
        return (tuple(np.asarray(dparams[k], dt) for k in keys), tuple(np.asarray(dx[n], dt) for n in in_names),
                tuple(np.asarray(dstate0[n], dt) for n, _ in state_dims))

    # --- the custom_vjp -------------------------------------------------------------------------

    def sizes_of(inputs):
        return inputs[0].shape[0], inputs[0].shape[1]

    @jax.custom_vjp
    def core(p, inputs, states, lengths):
        T, B = sizes_of(inputs)
        return _host_call(primal_cb, out_shapes(T, B), p, inputs, states, lengths)

    def core_fwd(p, inputs, states, lengths):
        T, B = sizes_of(inputs)
        outs = (*out_shapes(T, B), residual_shapes(T, B), arrangement_shapes(T, B, lengths is not None))
        y, finals, residuals, arrangement = _host_call(forward_cb, outs, p, inputs, states, lengths)
        return (y, finals), (p, residuals, arrangement)

    def core_bwd(res, cotangents):
        p, residuals, arrangement = res
        dy, dfinals = cotangents
        T, B = dy.shape[0], dy.shape[1]
        grads = (tuple(jax.ShapeDtypeStruct(shapes[k], dt) for k in keys),
                 tuple(jax.ShapeDtypeStruct((T, B, template.dims[d]), dt) for _, d in Cell.INPUTS),
                 tuple(jax.ShapeDtypeStruct((L * nd, B, template.dims[d]), dt) for _, d in state_dims))
        dp, dinputs, dstates = _host_call(backward_cb, grads, p, residuals, arrangement, dy, dfinals)
        # lengths are integers: no cotangent (JAX makes it a float0 zero)
        return dp, dinputs, dstates, None

    core.defvjp(core_fwd, core_bwd)

    # --- the checks at trace time ---------------------------------------------------------------

    lead = "B,T" if batch_first else "T,B"

    def check(what, a, shape, names):
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise ShapeError(f"{what} must be an array (jax or numpy), not {type(a).__name__}")
        if np.dtype(a.dtype) != dt:
            raise ShapeError(f"{what} has dtype {np.dtype(a.dtype).name}, but this function is {dt.name}: convert it with .astype(jnp.{dt.name})")
        if tuple(a.shape) != tuple(shape):
            raise ShapeError(f"{what} has shape {list(a.shape)}, expected {names} = {list(shape)}")
        return jnp.asarray(a)

    def apply(params, x, state=None, lengths=None):
        """y, state = apply(params, x, state=None, lengths=None): see cellspec.jax."""
        if dt == np.float64 and not jax.config.read("jax_enable_x64"):
            raise ValueError('this function is float64, which needs JAX\'s 64-bit mode: jax.config.update("jax_enable_x64", True)')
        if not isinstance(params, dict) or set(params) != set(keys):
            missing = sorted(set(keys) - set(params)) if isinstance(params, dict) else []
            unknown = sorted(set(params) - set(keys)) if isinstance(params, dict) else []
            raise ShapeError("params must be a dict with the keys of the params `function` returned" + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        p = tuple(check(f"param {k!r}", params[k], shapes[k], param_dims[k]) for k in keys)
        x, two = parts.first_input(Cell, x, lead, "array")
        inputs = tuple(check(f"input {n!r}", x[n], (*two, template.dims[d]), f"[{lead},{d}]") for n, d in Cell.INPUTS)
        if batch_first:
            inputs = tuple(jnp.swapaxes(v, 0, 1) for v in inputs)
        T, B = inputs[0].shape[:2]
        if state is None:
            # zeros, as Layer's; passed like a given state (its cotangent is dropped)
            states = tuple(jnp.zeros((L * nd, B, template.dims[d]), dt) for _, d in state_dims)
        else:
            names = {n for n, _ in state_dims}
            if not isinstance(state, dict) or set(state) != names:
                raise ShapeError(f"state must be None or a dict with the keys {', '.join(sorted(names))}")
            states = tuple(check(f"state {n!r}", state[n], (L * nd, B, template.dims[d]), f"[num_layers*num_directions,B,{d}]")
                           for n, d in state_dims)
        if lengths is not None:
            lengths = _checked_lengths(lengths, T, B)
        y, finals = core(p, inputs, states, lengths)
        if batch_first:
            y = jnp.swapaxes(y, 0, 1)
        return y, {n: v for (n, _), v in zip(state_dims, finals)}

    apply.__doc__ = f"y, state = apply(params, x, state=None, lengths=None), over {template!r}: see cellspec.jax."
    return apply, params


def _checked_lengths(lengths, T: int, B: int):
    """lengths as an integer [B] array, its values checked when they are known (not traced)."""
    if isinstance(lengths, (list, tuple)):
        lengths = lengths_.checked(lengths, T, B)
    if not hasattr(lengths, "shape") or not hasattr(lengths, "dtype"):
        raise LengthsError(f"lengths must be an array of integers, not {type(lengths).__name__}")
    dtype = np.dtype(lengths.dtype)
    if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
        raise LengthsError(f"lengths has dtype {dtype}: it must hold integers (one length per sequence)")
    if tuple(lengths.shape) != (B,):
        raise LengthsError(f"lengths has shape {list(lengths.shape)}, expected [B] = [{B}]")
    try:
        known = np.asarray(lengths)
    except jax.errors.TracerArrayConversionError:
        # traced (under jit or vmap): the callback checks the values
        return lengths
    lengths_.checked(known, T, B)
    return jnp.asarray(known)
