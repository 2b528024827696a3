"""What generated modules import: the Cell base class, the checks that stand between user arrays
and the kernels, parameter initialisation, and the batch-parallel driver. Imports numpy and
`cellspec.blas` (for BLAS's thread count), never the compiler.

Batch parallelism: the sequences of a batch are independent, so a call can run as chunks of the
batch, one per thread, each a whole forward (or backward) pass of its rows with numpy's BLAS
single-threaded, instead of one pass that splits every small per-step product across the cores
and leaves the elementwise work on one. It pays where that elementwise work is heavy; a call is
split when (see `CellBase.batch_chunks`):

* there are `blas.threads()` > 1 threads (or `cell.threads` says so);
* each chunk gets at least `MIN_ROWS` rows: with fewer, a per-step product is bound by streaming
  the recurrent weights, and splitting its columns across cores (BLAS's threads) is what pays;
* the cell evaluates at least `MIN_TRANSCENDENTALS` exp/log/tanh/sigmoid/softplus per step and
  batch row for each value of its widest state (the generated TRANSCENDENTALS): with fewer (an
  Elman RNN has one), a call is bound by memory traffic, which a chunked call adds to (it cuts
  the inputs and joins the outputs). A call with lengths follows the same rule (the README and
  the notes of #13 have the measures).

Those two limits are for a BLAS that threads each product itself (numpy's OpenBLAS). On MKL's
sequential layer (`blas.threads_its_products()` is False) a one-pass call runs on one core, so a
call splits whatever its cell, down to `MIN_ROWS // 2` rows a chunk (the README's "BLAS
backends"); an inference call that would still leave a thread idle may run as the step kernel
that keeps its weights instead (`cellspec.owned`).

A chunked call's results equal an unchunked call's up to rounding (BLAS may block a chunk's rows
differently; each chunk sums its rows of a parameter gradient before the chunks are added). It
costs memory: each chunk's copy of the stacked weights, and the joined outputs beside its own.

The tape owns what the backward pass reads: a taped call copies into it the inputs and the params
read as they are (`_checked_params`) and hands out y as a copy of its arrays, so that writing to
x, `cell.params` or y between forward and backward cannot change the gradients (the README has
the copies' cost). `tape.sequence` is a read-only view instead.
"""

from __future__ import annotations

import contextlib
import copy
import sys

import numpy as np

from . import blas, formula, owned, parallel
from .kernel_names import pin_kernels
from . import lengths as lengths_
from .lengths import Rows  # noqa: F401  (the generated code reads runtime.Rows)
from .owned import run as owned_steps  # noqa: F401  (and runtime.owned_steps)
from .tape import Tape

DTYPES = ("float32", "float64")


def tied(constraints, sizes: dict[str, int]) -> dict[str, int]:
    """Sizes made to meet a cell's constraints: for each `a == b`, a takes b's size (in the
    catalog, `input == hidden`: the input is as wide as the state), to a fixed point for chains.
    The one rule for callers that pick every size themselves (gradcheck's default sizes, the
    bench's); a Cell given only one of two tied sizes fills in the other."""
    out = dict(sizes)
    for _ in range(len(constraints) + 1):
        for a, b in constraints:
            out[a] = out[b]
    return out


def blas_for_one_pass(B: int):
    """BLAS's threads for a call that runs as one pass: as they are, but one for a batch of one row,
    whose matrix-vector products OpenBLAS splits even small (the LSTM's 64 x 256 at S4), waking
    the other thread for a microsecond's work: the LSTM at S4 took 13.0 ms against 3.6."""
    return blas.single_threaded() if B == 1 else contextlib.nullcontext()


class ShapeError(ValueError):
    """An array handed to a cell has the wrong shape, dtype or type; nothing ran."""


# when a call runs as parallel chunks of its batch (see the module docstring)
MIN_ROWS = 16
MIN_TRANSCENDENTALS = 2


def _check_array(what: str, a, shape: tuple[int, ...], dtype: np.dtype, names: str, own: bool = False) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ShapeError(f"{what} must be a numpy array, not {type(a).__name__}")
    if a.dtype != dtype:
        raise ShapeError(f"{what} has dtype {a.dtype}, but this cell is {dtype}: convert it with .astype(np.{dtype})")
    if a.shape != shape:
        raise ShapeError(f"{what} has shape {list(a.shape)}, expected {names} = {list(shape)}")
    # kernels index raw memory: give them C-contiguous arrays only; `own` for an array the tape
    # keeps (np.array copies, once, even where ascontiguousarray would not)
    return np.array(a, order="C") if own else np.ascontiguousarray(a)


def _init(rng: np.random.Generator, kind: str, shape: tuple[int, ...], args: tuple[float, ...], dtype, what: str = "an init") -> np.ndarray:
    """A param's initial value. The arguments are checked here, at the cell's sizes (the compiler
    tries only sizes 1 and 1000); `what` names the cell, the param and the sizes in an error."""
    dtype = np.dtype(dtype)
    for v in args:
        if not abs(v) <= float(np.finfo(dtype).max):
            raise ValueError(f"{what}: the argument {v!r} of {kind}() is not a finite {dtype.name}")
    if kind in ("normal", "orthogonal") or (kind == "uniform" and len(args) == 1):
        if args and not args[0] > 0:
            raise ValueError(f"{what}: {kind}() needs a positive argument, got {args[0]!r}")
    if kind == "uniform" and len(args) == 2 and not args[0] < args[1]:
        raise ValueError(f"{what}: uniform(a, b) needs a < b, got a={args[0]!r}, b={args[1]!r}")
    if kind == "zeros":
        out = np.zeros(shape)
    elif kind == "ones":
        out = np.ones(shape)
    elif kind == "constant":
        out = np.full(shape, float(args[0]))
    elif kind == "uniform":
        lo, hi = (-args[0], args[0]) if len(args) == 1 else args
        try:
            out = rng.uniform(lo, hi, size=shape)
        except OverflowError:
            raise ValueError(f"{what}: the range of uniform{tuple(args)} is too wide for float64") from None
    elif kind == "normal":
        out = rng.normal(0.0, args[0], size=shape)
    elif kind == "orthogonal":
        gain = args[0] if args else 1.0
        rows, cols = shape
        a = rng.normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        out = gain * (q if rows >= cols else q.T)
    else:  # the compiler admits only the kinds above
        raise ValueError(f"unknown init {kind!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(out, dtype=dtype)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what}: {kind}{tuple(args)} gives values that do not fit {dtype.name}")
    return out


class CellBase:
    """A compiled recurrent cell. Subclasses (generated) set the class attributes and implement
    `_param_inits`, `_forward` and `_backward`; this class checks everything a user hands in."""

    NAME: str = ""
    SPEC_SHA256: str = ""
    DIMS: list = []
    INPUTS: list = []
    STATES: list = []
    OUTPUTS: list = []
    CONSTRAINTS: list = []
    CONSTANTS: list = []
    CONSTANT_VALUES: list = []
    PARAMS: list = []
    MASKS: list = []
    INITS: list = []
    TAPE: list = []
    TAPE_PARAMS: list | None = None  # None (a module from before the table): every param
    TRANSCENDENTALS: list = []
    TORCH: dict | None = None
    # the inputs that the generated passes read only in the products over all steps: `_forward`
    # takes each as its packed rows ([rows, n], `Rows.pack`) and `_backward` gives its gradient so,
    # which for a ragged batch packs and spreads in one pass from and into the caller's order
    # (for a batch at full length the rows are a view of [T,B,n])
    PACKED_INPUTS: tuple = ()
    # the outputs whose gradient only the backward time loop reads, on the rows still running:
    # `_backward` takes dy as its packed rows
    PACKED_DY: tuple = ()
    # the dim and weights of the step kernel that keeps its weights (cellspec.owned), or None; on
    # the copy of the cell a call runs on, each thread's units of it, or None for the chunks
    OWNED: dict | None = None
    owned_units: list | None = None

    # the most chunks a batch-parallel call may run as; None: as many as numpy's BLAS has threads
    threads: int | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        pin_kernels(sys.modules.get(cls.__module__))

    # self is positional-only, so that no dim could collide with it
    def __init__(self, /, dtype: str = "float64", seed: int | None = None, **dims: int):
        blas.check()
        # a dim that a constraint ties to a given one may be left out
        for a, b in self.CONSTRAINTS * 2:
            if a in dims and b not in dims:
                dims[b] = dims[a]
            elif b in dims and a not in dims:
                dims[a] = dims[b]
        missing = [d for d in self.DIMS if d not in dims]
        unknown = [d for d in dims if d not in self.DIMS]
        if missing or unknown:
            raise TypeError(
                f"{self.NAME}.Cell takes the sizes {', '.join(self.DIMS)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        for d, n in dims.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"size {d} must be a positive integer, not {n!r}")
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        for a, b in self.CONSTRAINTS:
            if dims[a] != dims[b]:
                raise ValueError(f"{self.NAME} needs {a} == {b}, got {a}={dims[a]}, {b}={dims[b]}")
        self.dims = {d: int(dims[d]) for d in self.DIMS}
        self.dtype = np.dtype(str(dtype))
        # constants, masks and init arguments: formula trees, evaluated exactly at these sizes
        shapes, constant_dims = dict(self.PARAMS), dict(self.CONSTANTS)
        self.constants = {
            name: formula.evaluate(tree, self.dims, (constant_dims[name],), self.dtype, f"{self.NAME}: constant {name!r}")
            for name, tree in self.CONSTANT_VALUES
        }
        self.masks = {
            name: formula.evaluate(tree, self.dims, shapes[name], self.dtype, f"{self.NAME}: the mask of param {name!r}")
            for name, tree in self.MASKS
        }
        rng = np.random.default_rng(seed)
        self.params = {}
        for name, kind, trees in self.INITS:
            what = f"{self.NAME}: the init of param {name!r}"
            args = tuple(float(formula.evaluate(t, self.dims, (), np.float64, what)) for t in trees)
            at = formula.sizes(trees, self.dims)
            shape = tuple(self.dims[d] for d in shapes[name])
            value = _init(rng, kind, shape, args, self.dtype, f"{what} at {at}" if at else what)
            self.params[name] = value * self.masks[name] if name in self.masks else value

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}={n}" for d, n in self.dims.items())
        return f"{self.NAME}.Cell({sizes}, dtype={self.dtype.name!r})"

    # --- checks -------------------------------------------------------------------------------

    def _size(self, dim: str) -> int:
        return self.dims[dim]

    def _checked_inputs(self, x, tape: bool = False, lengths=None) -> tuple[dict, int, int, bool]:
        """The inputs as the kernels take them, T, B, and whether they are copies of the caller's
        (a taped one-pass call's own, see below)."""
        if len(self.INPUTS) == 1 and not isinstance(x, dict):
            x = {self.INPUTS[0][0]: x}
        if not isinstance(x, dict) or set(x) != {n for n, _ in self.INPUTS}:
            names = ", ".join(n for n, _ in self.INPUTS)
            raise ShapeError(f"{self.NAME} takes its inputs as a dict with the keys {names}")
        first, first_dim = self.INPUTS[0]
        a = x[first]
        if not isinstance(a, np.ndarray) or a.ndim != 3:
            raise ShapeError(f"input {first!r} must be a 3-d numpy array [T,B,{first_dim}]")
        T, B = a.shape[0], a.shape[1]
        if T < 1 or B < 1:
            raise ShapeError(f"input {first!r} has shape {list(a.shape)}: T and B must be at least 1")
        # a taped one-pass call keeps the inputs for the backward pass: copies, so that writing to
        # the caller's arrays cannot change the gradients (a chunked call copies its rows as it
        # cuts them, and a ragged one as it sorts them, so copying here too would copy twice;
        # lengths that are not valid are refused next, whatever this says)
        ragged = lengths is not None and not bool(np.all(np.asarray(lengths) == T))
        own = tape and len(self.batch_chunks(B)) == 1 and not ragged
        out = {}
        for name, dim in self.INPUTS:
            out[name] = _check_array(f"input {name!r}", x[name], (T, B, self._size(dim)), self.dtype, f"[T,B,{dim}]", own)
        return out, T, B, own

    def _checked_states(self, state, B: int, what: str) -> dict:
        if state is None:
            return {name: np.zeros((B, self._size(dim)), self.dtype) for name, dim in self.STATES}
        names = {n for n, _ in self.STATES}
        if not isinstance(state, dict) or set(state) != names:
            raise ShapeError(f"{what} must be None or a dict with the keys {', '.join(sorted(names))}")
        return {
            name: _check_array(f"{what} {name!r}", state[name], (B, self._size(dim)), self.dtype, f"[B,{dim}]")
            for name, dim in self.STATES
        }

    def _checked_params(self, own: bool = False) -> tuple[dict, dict]:
        """cell.params as the kernels take them, and what of them the tape keeps: with `own` (a
        taped call), copies of the params the backward pass reads as they are (TAPE_PARAMS, or
        all of them where a module has no such table), so that an optimizer step on cell.params
        before backward cannot change the gradients; the others reach the tape only in their
        group's stacked copy."""
        kept = [n for n, _ in self.PARAMS] if self.TAPE_PARAMS is None else self.TAPE_PARAMS
        out = {}
        for name, dims in self.PARAMS:
            if name not in self.params:
                raise ShapeError(f"param {name!r} is missing from cell.params")
            shape = tuple(self._size(d) for d in dims)
            out[name] = _check_array(f"param {name!r}", self.params[name], shape, self.dtype, f"[{','.join(dims)}]", own and name in kept)
        return out, ({n: out[n] for n in kept} if own else {})

    # --- the API ------------------------------------------------------------------------------

    def forward(self, x, state=None, tape: bool = True, lengths=None):
        """Run the cell over a sequence.

        x: [T,B,input] (a dict name -> array when the cell has several inputs);
        state: dict state name -> [B,dim], or None for zeros; tape: False for inference, which
        saves nothing for a backward pass and skips the stores only that pass reads; lengths:
        None, or [B] integers in 1..T, in any order: a sequence's state stops changing after its
        last step (the final state is the one after it), its outputs past the end are zero, and
        its padded input rows are never read (they may hold anything, NaN included).
        Returns y [T,B,out] (a dict output name -> array when the spec has several outputs),
        the final state (dict), and the tape for `backward` (None without one)."""
        inputs, T, B, _ = self._checked_inputs(x, tape, lengths)
        state = self._checked_states(state, B, "state")
        # an inference call may run as the step kernel that keeps its weights (cellspec.owned)
        units = None if tape else owned.unit_slices(self, B)
        chunks = [slice(0, B)] if units else self.batch_chunks(B)
        ragged = lengths_.arrange(lengths, T, B, chunks)
        params, taped = self._checked_params(own=tape)
        # the generated `_forward` reads self.params: it runs on a shallow copy of the cell, so
        # cell.params is never swapped out, not even while another thread's call reads it
        runner = copy.copy(self)
        runner.params = params
        runner.owned_units = units
        if len(chunks) == 1 and ragged is None:
            passed = {k: v.reshape(T * B, v.shape[2]) if k in self.PACKED_INPUTS else v for k, v in inputs.items()}
            with blas_for_one_pass(B):
                y, final, arrays = runner._forward(passed, state, tape, lengths_.full(T, B))
            record = None
            if tape:
                record = Tape(self, T, B, passed, taped, arrays, active=lengths_.full(T, B))
                # y is a view of the tape (an output that is a state is its `_seq_` array): a copy,
                # so that writing to y cannot change what the backward pass reads
                y = {k: v.copy() for k, v in y.items()}
        else:
            y, final, record = self._forward_chunks(runner, chunks, inputs, state, taped, T, B, tape, ragged)
        if ragged is not None and record is not None:
            record.ragged = ragged
        if len(self.OUTPUTS) == 1:
            y = y[self.OUTPUTS[0][0]]
        return y, final, record

    def batch_chunks(self, B: int) -> list[slice]:
        """The batch slices a call with B rows runs as, in parallel (see the module docstring)."""
        n = self.threads if self.threads is not None else blas.threads()
        if not blas.threads_its_products():
            # MKL's sequential layer: one pass is one core, products and all
            n = min(n, B // max(1, MIN_ROWS // 2))
            return parallel.chunks(B, n) if n > 1 else [slice(0, B)]
        n = min(n, B // MIN_ROWS)
        work = sum(count * self.dims[d] for d, count in self.TRANSCENDENTALS)
        widest = max((self.dims[d] for _, d in self.STATES), default=1)
        if work < MIN_TRANSCENDENTALS * widest:
            n = 1
        return parallel.chunks(B, n) if n > 1 else [slice(0, B)]

    def _forward_chunks(self, runner, chunks, inputs, state, params, T, B, tape: bool, ragged):
        # each thread cuts its own chunk out of the inputs and copies its outputs into the whole
        # batch's arrays: the copies run in parallel too. A ragged batch's chunk is its rows in
        # the kernels' order (`Part.take`), padding zeroed in the copy, so that no kernel reads
        # the caller's NaN; its outputs go back to the caller's rows, zeros past each end. It
        # runs the steps up to its longest sequence's end; its outputs after them are zeros
        trimmed = ragged is not None and ragged.steps < T
        y = {n: (np.zeros if trimmed else np.empty)((T, B, self._size(d)), self.dtype) for n, d in self.OUTPUTS}
        final = {n: np.empty((B, self._size(d)), self.dtype) for n, d in self.STATES}

        def run(sl):
            active = lengths_.full(T, sl.stop - sl.start) if ragged is None else ragged.active(sl)
            part = parallel.Part(sl, active, ragged)
            # a taped chunk keeps its rows of the inputs: a copy, never a view of the caller's
            part_in = part.take(inputs, own=tape, packed=self.PACKED_INPUTS)
            ys, fin, arrays = runner._forward(part_in, part.take_rows(state), tape, part.active)
            part.put(ys, y)
            part.put_rows(fin, final)
            return Tape(self, len(active), sl.stop - sl.start, part_in, params, arrays, active=active) if tape else None

        if len(chunks) == 1:
            # one pass on this thread (a ragged batch too small to split)
            with blas_for_one_pass(B):
                parts = [run(chunks[0])]
        else:
            parts = parallel.on_threads(run, [(sl,) for sl in chunks])
        # the chunks' tapes hold the arrays; this one holds none, not even the caller's inputs
        return y, final, Tape(self, T, B, {}, params, {}, list(zip(chunks, parts))) if tape else None

    def backward(self, tape: Tape, dy, dstate=None, dseq=None):
        """Backpropagate through the whole sequence of `tape`.

        dy: [T,B,out], the gradient arriving at the outputs (a dict for several outputs);
        dstate: the gradient arriving at the final state (dict, or None for zeros); dseq: the
        gradient arriving at each step's state, for a state another layer reads (dict state
        name -> [T,B,dim]; missing or None for zeros). Returns dx (like x), dparams (like
        cell.params) and dstate (the gradient with respect to the initial state)."""
        if not isinstance(tape, Tape) or tape.cell is not self:
            raise ShapeError("tape must be the one this cell's forward returned")
        if len(self.OUTPUTS) == 1:
            name, dim = self.OUTPUTS[0]
            dy = {name: _check_array("dy", dy, (tape.T, tape.B, self._size(dim)), self.dtype, f"[T,B,{dim}]")}
        else:
            names = {n for n, _ in self.OUTPUTS}
            if not isinstance(dy, dict) or set(dy) != names:
                raise ShapeError(f"dy must be a dict with the keys {', '.join(sorted(names))}")
            dy = {n: _check_array(f"dy {n!r}", dy[n], (tape.T, tape.B, self._size(d)), self.dtype, f"[T,B,{d}]") for n, d in self.OUTPUTS}
        dstate = self._checked_states(dstate, tape.B, "dstate")
        dseq = {k: v for k, v in (dseq or {}).items() if v is not None}
        unknown = set(dseq) - {n for n, _ in self.STATES}
        if unknown:
            raise ShapeError(f"dseq has keys that are no state: {', '.join(sorted(unknown))}")
        given = bool(dseq)
        for name, dim in self.STATES:
            shape = (tape.T, tape.B, self._size(dim))
            if name in dseq:
                dseq[name] = _check_array(f"dseq {name!r}", dseq[name], shape, self.dtype, f"[T,B,{dim}]")
            elif given:
                dseq[name] = np.zeros(shape, self.dtype)
            else:
                # never read: the kernel takes its no-dseq path
                dseq[name] = np.zeros((1, 1, 1), self.dtype)
        if not tape.parts and tape.ragged is None:
            dy = {k: v.reshape(tape.T * tape.B, v.shape[2]) if k in self.PACKED_DY else v for k, v in dy.items()}
            with blas_for_one_pass(tape.B):
                dinputs, dparams, dstate0 = self._backward(tape, dy, dstate, dseq, given)
            # a packed input's gradient: its rows, all of them, a view of [T,B,n]
            dinputs = {k: v.reshape(tape.T, tape.B, v.shape[1]) if k in self.PACKED_INPUTS else v for k, v in dinputs.items()}
        else:
            dinputs, dparams, dstate0 = self._backward_chunks(tape, dy, dstate, dseq, given)
        dx = dinputs[self.INPUTS[0][0]] if len(self.INPUTS) == 1 else dinputs
        return dx, dparams, dstate0

    def _backward_chunks(self, tape: Tape, dy, dstate, dseq, given):
        T, B = tape.T, tape.B
        ragged = tape.ragged
        parts = tape.parts or [(slice(0, B), tape)]
        # the steps the kernels ran: all T, or a ragged batch's up to its longest sequence's end
        steps = parts[0][1].T
        if given and steps < T:
            # after the longest sequence's end every state passes through unchanged: what a
            # layer above gives those steps reaches the final state
            dstate = {k: v + dseq[k][steps:].sum(axis=0) for k, v in dstate.items()}
        dinputs = {n: (np.zeros if steps < T else np.empty)((T, B, self._size(d)), self.dtype) for n, d in self.INPUTS}
        dstate0 = {n: np.empty((B, self._size(d)), self.dtype) for n, d in self.STATES}

        def run(sl, piece):
            # a ragged batch's chunk takes its rows in the kernels' order, as the forward pass
            # ran them; dy past each end is zeroed (those outputs are zeros, whatever dy says)
            # or, read by the time loop alone (PACKED_DY), not taken; dseq is not zeroed (a
            # state passes through past the end, and so does its gradient)
            part = parallel.Part(sl, piece.active, ragged)
            # without dseq the kernels never read it: every chunk gets the same placeholder
            part_dseq = part.take(dseq, zero=False) if given else dseq
            dx, dp, ds = self._backward(piece, part.take(dy, packed=self.PACKED_DY), part.take_rows(dstate), part_dseq, given)
            part.put(dx, dinputs)
            part.put_rows(ds, dstate0)
            return dp

        if len(parts) == 1:
            with blas_for_one_pass(B):
                dparams = run(*parts[0])
            return dinputs, dparams, dstate0
        grads = parallel.on_threads(run, parts)
        # each chunk's gradients are fresh copies of its own: summed into the first's in place
        for g in grads[1:]:
            for k, v in g.items():
                grads[0][k] += v
        return dinputs, grads[0], dstate0

