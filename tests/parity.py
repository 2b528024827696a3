"""Comparing a generated cell with a reference: the relative error and its check, and the PyTorch
parity harness of tests/test_torch_parity.py and tests/test_catalog_variants.py.

Both sides of a PyTorch comparison get the same weights, inputs, initial states and incoming
gradients; PyTorch's side is differentiated by autograd through the loss

    sum(y * dy) + sum(h_T * dh_T) (+ sum(c_T * dc_T) for an LSTM),

so its gradients are exactly what `cell.backward(tape, dy, dstate)` must return. What maps onto
what is the spec's `torch:` section (the generated `Cell.TORCH`): the torch module is built from
it (`torch_kwargs`), the module's weights are loaded into the cell through it (`from_torch`), and
each of our params is compared with every torch block it stands for. Our single biases stand for
sums of PyTorch's two, so the gradient of each of ours must equal that of every torch bias it
stands for.
"""

from __future__ import annotations

import numpy as np
import torch

from cellspec.torch_layout import TENSORS, from_torch, torch_kwargs

# Relative error: max |ours - torch| / max |torch|.
# float64: both sides compute the same formulas in double precision; only the order of
# summation differs, so agreement is near machine epsilon (~1e-16) times a modest factor; 1e-10
# leaves a wide margin and still catches any wrong term (errors of order 1e-2 or more).
TOL_FLOAT64 = 1e-10
# float32: roundoff (~6e-8 per operation) accumulates through the T-step recurrence and the
# summed gradients, and both sides sum in different orders, so 1e-4 is the bound.
TOL_FLOAT32 = 1e-4
TOLERANCES = {"float64": TOL_FLOAT64, "float32": TOL_FLOAT32}
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def relative_error(ours, ref) -> float:
    """max |ours - ref| / max |ref|; the reference must not be all zeros."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.all(np.isfinite(ours)), "non-finite values in ours"
    scale = np.max(np.abs(ref))
    assert scale > 0, "reference is all zeros: the comparison would be meaningless"
    return float(np.max(np.abs(ours - ref)) / scale)


def assert_errors_below(errors: dict[str, float], tol: float) -> None:
    bad = {k: v for k, v in errors.items() if not v < tol}  # `not <` also catches NaN
    worst = max(errors, key=errors.get)
    assert not bad, f"above {tol:g}: {bad}; worst {worst} = {errors[worst]:.3g}"


# --- the PyTorch harness ------------------------------------------------------------------------


def make_torch_module(cell, dtype: str, seed: int) -> torch.nn.Module:
    """The one-layer, batch_first=False torch.nn module of the cell's `torch:` section, at the
    cell's sizes, with random weights of scale ~1."""
    kwargs = torch_kwargs(cell)
    kind = getattr(torch.nn, kwargs.pop("mode"))
    torch.manual_seed(seed)
    module = kind(num_layers=1, bias=True, batch_first=False, dtype=TORCH_DTYPES[dtype], **kwargs)
    # larger than the default 1/sqrt(hidden) so the nonlinearities are exercised away from 0
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


def torch_sources(layout: dict) -> dict[str, list[tuple[str, int, int]]]:
    """Each of our params -> the torch blocks it stands for, as (torch name, block, blocks)."""
    sources: dict[str, list[tuple[str, int, int]]] = {}
    for t in TENSORS:
        for k, p in enumerate(layout.get(t, ())):
            sources.setdefault(p, []).append((f"{t}_l0", k, len(layout[t])))
    return sources


def torch_piece(tensor: np.ndarray, k: int, n: int) -> np.ndarray:
    """Block k of the n stacked in a torch weight or bias."""
    return np.split(tensor, n, axis=0)[k]


def copy_torch_weights_to_cell(module, cell) -> None:
    """Assign the module's weights to cell.params through the cell's torch layout (one layer)."""
    like = {f"{k}_l0": v for k, v in cell.params.items()}
    loaded = from_torch(cell.TORCH, module.state_dict(), like, num_layers=1, bidirectional=False)
    cell.params = {k.removesuffix("_l0"): v for k, v in loaded.items()}


def torch_states(cell) -> dict[str, int]:
    """The cell's states in the order of torch's (h_n, c_n), with their sizes."""
    sizes = {s: cell.dims[d] for s, d in cell.STATES}
    return {s: sizes[s] for s in cell.TORCH["state"]}


def run_torch(module, x, state0, dy, dstate, states: dict[str, int], dtype: str):
    """Forward and autograd backward in torch. states: {name: size}, in the order of torch's
    (h_n, c_n); state0/dstate: dict or None (zeros).

    Returns y, final states, input grad, initial-state grads, param grads (all numpy float64)."""
    tdt = TORCH_DTYPES[dtype]
    B = x.shape[1]
    xt = torch.tensor(x, dtype=tdt, requires_grad=True)
    init = {}
    for s, size in states.items():
        value = np.zeros((B, size), dtype) if state0 is None else state0[s]
        init[s] = torch.tensor(value[None], dtype=tdt, requires_grad=True)  # [1,B,size]
    module.zero_grad(set_to_none=True)
    given = tuple(init.values())
    y, out = module(xt, given if len(given) > 1 else given[0])
    final = {s: v[0] for s, v in zip(states, out if len(given) > 1 else (out,))}
    loss = (y * torch.tensor(dy, dtype=tdt)).sum()
    if dstate is not None:
        for s in states:
            loss = loss + (final[s] * torch.tensor(dstate[s], dtype=tdt)).sum()
    loss.backward()
    as_np = lambda t: t.detach().numpy().astype(np.float64)  # noqa: E731
    return {
        "y": as_np(y),
        "final": {s: as_np(v) for s, v in final.items()},
        "dx": as_np(xt.grad),
        "dstate0": {s: as_np(init[s].grad[0]) for s in states},
        "dparams": {n: as_np(p.grad) for n, p in module.named_parameters()},
    }


def compare_with_torch(cell, module, dtype: str, T: int, B: int, zero_state=False, zero_dstate=False, seed=0) -> dict[str, float]:
    """Copy the module's weights to the cell, run both on the same random problem (x [T,B,input],
    y [T,B,out], the states); return {label: relative error}."""
    copy_torch_weights_to_cell(module, cell)
    states = torch_states(cell)
    (_, out_dim), = cell.OUTPUTS
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, module.input_size)).astype(dtype)
    state0 = None if zero_state else {s: rng.normal(size=(B, n)).astype(dtype) for s, n in states.items()}
    dy = rng.normal(size=(T, B, cell.dims[out_dim])).astype(dtype)
    dstate = None if zero_dstate else {s: rng.normal(size=(B, n)).astype(dtype) for s, n in states.items()}

    ref = run_torch(module, x, state0, dy, dstate, states, dtype)

    # ours; pass copies so nothing our cell does can alter the inputs torch saw
    y, final, tape = cell.forward(x.copy(), None if state0 is None else {k: v.copy() for k, v in state0.items()})
    dx, dparams, dstate0 = cell.backward(tape, dy.copy(), None if dstate is None else {k: v.copy() for k, v in dstate.items()})

    assert y.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
    assert set(final) == set(states) and set(dstate0) == set(states)
    assert set(dparams) == set(cell.params)

    errors = {"y": relative_error(y, ref["y"]), "dx": relative_error(dx, ref["dx"])}
    for s in states:
        errors[f"final {s}"] = relative_error(final[s], ref["final"][s])
        errors[f"d initial {s}"] = relative_error(dstate0[s], ref["dstate0"][s])
    sources = torch_sources(cell.TORCH)
    assert set(sources) == set(cell.params), (sorted(sources), sorted(cell.params))
    for p, blocks in sources.items():
        assert dparams[p].shape == cell.params[p].shape and dparams[p].dtype == np.dtype(dtype), p
        for t, k, n in blocks:
            label = t if n == 1 else f"{t}[gate {k}]"
            errors[f"d{p} vs {label}"] = relative_error(dparams[p], torch_piece(ref["dparams"][t], k, n))
    return errors
