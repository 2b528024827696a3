"""cellspec.torch.Module: any generated cell as a torch.nn.Module, where nn.LSTM is used.

Gradients (torch.autograd.gradcheck over every catalog cell), training side by side with
nn.LSTM/GRU/RNN, torch.optim and the nn.Module API, PackedSequence, the params' shared memory,
the modes, the argument checks and what autograd saves."""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import cellspec.torch as ct
from cellspec.layer import LayerTape
from cellspec.lengths import LengthsError
from cellspec.runtime import ShapeError, tied
from conftest import ROOT, SPEC_NAMES, generated

lstm, gru, rnn, depth_gated = generated("lstm"), generated("gru"), generated("rnn"), generated("lstm_depth_gated")
F64 = torch.float64

# central differences (gradcheck's eps=1e-6) carry ~1e-10 of float64 noise on these tiny cells; a
# wrong gradient is off by order 1. Tighter than gradcheck's defaults (atol 1e-5, rtol 1e-3).
GRADCHECK_TOL = dict(atol=1e-7, rtol=1e-5)


def tiny_dims(Cell) -> dict[str, int]:
    """Dims of 2-3 (clockwork's `modules` must divide hidden: hidden 4 there)."""
    sizes = {d: 2 if d in ("modules", "proj", "input") else 3 for d in Cell.DIMS}
    if "modules" in Cell.DIMS:
        sizes["hidden"] = 4
    return tied(Cell.CONSTRAINTS, sizes)


def gradcheck_module(module, T, B, lengths=None, seed=0):
    """gradcheck of `module` over x, the initial states and every param: the params as inputs of a
    function that runs the module on them with torch.func.functional_call (the module's own
    params untouched)."""
    Cell = module.layer.module.Cell
    g = torch.Generator().manual_seed(seed)
    n = module.num_layers * (2 if module.bidirectional else 1)
    xs = {k: torch.randn(T, B, module.layer.dims[d], dtype=F64, generator=g).requires_grad_() for k, d in Cell.INPUTS}
    states = {k: (0.5 * torch.randn(n, B, module.layer.dims[d], dtype=F64, generator=g)).requires_grad_() for k, d in Cell.STATES}
    keys = list(module.layer.params)
    params = [module._parameters[k].detach().clone().requires_grad_() for k in keys]
    ni, ns = len(xs), len(states)

    def f(*tensors):
        x = dict(zip(xs, tensors[:ni]))
        state = dict(zip(states, tensors[ni:ni + ns]))
        y, final = functional_call(module, dict(zip(keys, tensors[ni + ns:])), (x if ni > 1 else tensors[0], state), {"lengths": lengths})
        return (y, *final.values())

    before = {k: v.copy() for k, v in module.layer.params.items()}
    inputs = (*xs.values(), *states.values(), *params)
    assert torch.autograd.gradcheck(f, inputs, **GRADCHECK_TOL)
    # the check is not vacuous: the gradients reach the tensors functional_call passed, and are
    # those the module's own params get
    loss = lambda outputs: sum((o * torch.linspace(-1, 1, o.numel(), dtype=F64).reshape(o.shape)).sum() for o in outputs)  # noqa: E731
    grads = torch.autograd.grad(loss(f(*inputs)), params)
    own = torch.autograd.grad(loss(f(*inputs[:ni + ns], *(module._parameters[k] for k in keys))), [module._parameters[k] for k in keys])
    assert sum(float(g.abs().sum()) for g in grads) > 0
    for a, b in zip(grads, own):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # functional_call ran on a copy of the Layer: the module's params and the Layer's arrays are
    # as they were, and still one memory
    for k, v in module.layer.params.items():
        np.testing.assert_array_equal(v, before[k])
        assert module._parameters[k].data_ptr() == v.ctypes.data


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_gradcheck_every_catalog_cell(name):
    """One layer, T=3, B=2, every param entry (gradcheck perturbs each)."""
    module = generated(name)
    gradcheck_module(ct.Module(module, dtype=F64, seed=0, **tiny_dims(module.Cell)), T=3, B=2)


def test_gradcheck_two_bidirectional_lstm_layers_with_lengths():
    module = ct.Module(lstm, num_layers=2, bidirectional=True, input_size=2, hidden_size=3, dtype=F64, seed=1)
    gradcheck_module(module, T=4, B=3, lengths=torch.tensor([2, 4, 1]), seed=1)


# --- side by side with PyTorch ------------------------------------------------------------------

TORCH_KINDS = {"lstm": (lstm, torch.nn.LSTM), "gru": (gru, torch.nn.GRU), "rnn": (rnn, torch.nn.RNN)}
# The relative difference of the losses over 20 Adam steps.
# float64: the same formulas summed in other orders: ~1e-16 per step; Adam divides by sqrt(v) but
# every gradient here is far from zero, so rounding grows little over 20 steps (measured ~2e-16).
# float32: the same rounding at ~6e-8 per operation through the 2-layer recurrence, the gradients
# and Adam's updates (measured ~2e-7); 1e-4 as tests/parity.py bounds float32.
SIDE_BY_SIDE_TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(TORCH_KINDS))
def test_trains_side_by_side_with_torch(name, dtype):
    """nn.LSTM/GRU/RNN and our Module of its spec, 2 layers, bidirectional, the same initial weights
    (load_torch from the torch module), each under a linear readout and MSE, trained for 20 Adam
    steps on the same batches: the same losses.

    A single bias of ours is the sum of torch's bias_ih and bias_hh blocks: trained as two
    params, torch's sum would move by two Adam steps where ours moves by one (the losses part by
    ~1e-2 within 20 steps). So the torch module gets the whole sum in bias_ih (our
    torch_state_dict) and the summed blocks of bias_hh are held at zero (their gradient masked:
    Adam never moves an entry whose gradient is always 0); the GRU's b_hn, a block of bias_hh
    alone, trains as ours does. Then both are the same function of the same parametrization."""
    spec, Kind = TORCH_KINDS[name]
    torch.manual_seed(0)
    ref = Kind(3, 5, num_layers=2, bidirectional=True, dtype=dtype)
    ours = ct.Module(spec, input_size=3, hidden_size=5, num_layers=2, bidirectional=True, dtype=dtype)
    ours.load_torch(ref)
    ref.load_state_dict(ours.torch_state_dict())
    layout = spec.Cell.TORCH
    held = torch.tensor(np.repeat([0.0 if p in layout["bias_ih"] else 1.0 for p in layout["bias_hh"]], 5), dtype=dtype)
    for key, p in ref.named_parameters():
        if key.startswith("bias_hh"):
            p.register_hook(lambda grad: grad * held)
    head_ref = torch.nn.Linear(10, 2, dtype=dtype)
    head_ours = copy.deepcopy(head_ref)
    runs = [(ref, head_ref, torch.optim.Adam([*ref.parameters(), *head_ref.parameters()], lr=0.01)),
            (ours, head_ours, torch.optim.Adam([*ours.parameters(), *head_ours.parameters()], lr=0.01))]
    g = torch.Generator().manual_seed(1)
    differences = []
    for _ in range(20):
        x, target = torch.randn(6, 4, 3, dtype=dtype, generator=g), torch.randn(6, 4, 2, dtype=dtype, generator=g)
        losses = []
        for model, head, opt in runs:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(head(model(x)[0]), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        differences.append(abs(losses[1] - losses[0]) / abs(losses[0]))
    assert max(differences) < SIDE_BY_SIDE_TOL[dtype], differences
    # and the weights have moved alike
    for key, v in ref.state_dict().items():
        np.testing.assert_allclose(ours.torch_state_dict()[key].numpy() - v.numpy(), 0, atol=100 * SIDE_BY_SIDE_TOL[dtype])


# --- torch.optim and the nn.Module API ----------------------------------------------------------


def test_trains_with_clipping_and_a_state_dict_round_trip():
    torch.manual_seed(2)
    module = ct.Module(gru, input_size=3, hidden_size=4, num_layers=2, dropout=0.2)
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(5, 3, 3)
    for _ in range(3):
        opt.zero_grad()
        y, state = module(x)
        (y.square().mean() + state["h"].square().mean()).backward()
        norm = torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm=1e-3)
        assert norm > 1e-3
        opt.step()
    # the optimizer's in-place steps reached the cells
    for key, p in module.named_parameters():
        assert p.data_ptr() == module.layer.params[key].ctypes.data
    other = ct.Module(gru, input_size=3, hidden_size=4, num_layers=2, dropout=0.2)
    other.load_state_dict(module.state_dict())
    module.eval(), other.eval()
    torch.testing.assert_close(other(x)[0], module(x)[0], rtol=0, atol=0)
    assert set(module.state_dict()) == set(module.layer.params)
    for key, p in other.named_parameters():
        assert p.data_ptr() == other.layer.params[key].ctypes.data


class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.rnn = ct.Module(lstm, input_size=4, hidden_size=6, bidirectional=True, batch_first=True)
        self.out = torch.nn.Linear(12, 10)

    def forward(self, tokens, lengths):
        y, _ = self.rnn(self.embed(tokens), lengths=lengths)
        return self.out(y)


def test_a_model_with_ordinary_layers_trains_end_to_end():
    torch.manual_seed(3)
    model = Tagger()
    tokens = torch.randint(0, 10, (4, 7))
    lengths = torch.tensor([7, 3, 5, 2])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    # the task: each token's successor
    target = (tokens + 1) % 10
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tokens, lengths)[mask], target[mask])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert model.embed.weight.grad is not None and model.embed.weight.grad.abs().sum() > 0


# --- PackedSequence -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_packed_sequence_is_lengths_and_is_what_nn_lstm_gives(batch_first):
    torch.manual_seed(4)
    ref = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, dtype=F64)
    ours = ct.Module(lstm, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=batch_first, dtype=F64)
    ours.load_torch(ref)
    lengths = torch.tensor([3, 5, 1, 5])
    x = torch.randn(*((4, 5) if batch_first else (5, 4)), 3, dtype=F64)
    h0, c0 = torch.randn(4, 4, 4, dtype=F64), torch.randn(4, 4, 4, dtype=F64)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    results = []
    for model in (ref, ours):
        xp = torch.nn.utils.rnn.PackedSequence(packed.data.clone().requires_grad_(), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        h, c = h0.clone().requires_grad_(), c0.clone().requires_grad_()
        y, state = model(xp, (h, c))
        hn, cn = state if model is ref else (state["h"], state["c"])
        assert isinstance(y, torch.nn.utils.rnn.PackedSequence)
        ((y.data ** 2).sum() + (hn * cn).sum()).backward()
        results.append((y, hn, cn, xp.data.grad, h.grad, c.grad))
    (y_t, *rest_t), (y_o, *rest_o) = results
    # the same operations up to summation order: rounding of float64
    torch.testing.assert_close(y_o.data, y_t.data, rtol=0, atol=1e-12)
    torch.testing.assert_close(y_o.batch_sizes, y_t.batch_sizes, rtol=0, atol=0)
    torch.testing.assert_close(y_o.sorted_indices, y_t.sorted_indices, rtol=0, atol=0)
    torch.testing.assert_close(y_o.unsorted_indices, y_t.unsorted_indices, rtol=0, atol=0)
    for a, b in zip(rest_o, rest_t):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # and the padded tensor with lengths= gives the same
    with torch.no_grad():
        y_l, state_l = ours(x, (h0, c0), lengths=lengths)
    padded, _ = pad_packed_sequence(y_o, batch_first=batch_first)
    torch.testing.assert_close(y_l, padded.detach(), rtol=0, atol=0)
    torch.testing.assert_close(state_l["h"], rest_o[0].detach(), rtol=0, atol=0)


# --- states, modes, params ----------------------------------------------------------------------


def test_states_as_a_dict_a_tuple_or_a_tensor():
    module = ct.Module(lstm, input_size=3, hidden_size=4, dtype=F64, seed=5)
    x, h0, c0 = torch.randn(4, 2, 3, dtype=F64), torch.randn(1, 2, 4, dtype=F64), torch.randn(1, 2, 4, dtype=F64)
    y, state = module(x, {"h": h0, "c": c0})
    y_t, state_t = module(x, (h0, c0))
    torch.testing.assert_close(y_t, y, rtol=0, atol=0)
    assert set(state_t) == {"h", "c"}
    assert not torch.equal(module(x)[0], y)
    one = ct.Module(gru, input_size=3, hidden_size=4, dtype=F64, seed=5)
    torch.testing.assert_close(one(x, h0)[0], one(x, {"h": h0})[0], rtol=0, atol=0)
    torch.testing.assert_close(one(x, (h0,))[0], one(x, {"h": h0})[0], rtol=0, atol=0)


def test_dropout_follows_the_mode_and_the_tape_follows_autograd():
    module = ct.Module(lstm, input_size=3, hidden_size=4, num_layers=2, dropout=0.5, dtype=F64, seed=6)
    x = torch.randn(5, 2, 3, dtype=F64)
    module.eval()
    with torch.no_grad():
        y_eval = module(x)[0]
    # eval mode under autograd: a tape (a gradient reaches x) and no dropout
    xg = x.clone().requires_grad_()
    y = module(xg)[0]
    torch.testing.assert_close(y.detach(), y_eval, rtol=0, atol=0)
    y.sum().backward()
    assert xg.grad.abs().sum() > 0
    # training mode under no_grad: dropout and no tape
    module.train()
    with torch.no_grad():
        y_train = module(x)[0]
    assert y_train.grad_fn is None and not torch.equal(y_train, y_eval)
    with torch.inference_mode():
        module.eval()
        torch.testing.assert_close(module(x)[0], y_eval, rtol=0, atol=0)


def test_params_share_memory_with_the_layer_through_load_state_dict_assign():
    module = ct.Module(gru, input_size=3, hidden_size=4, dtype=F64, seed=7)
    for key, p in module.named_parameters():
        assert p.data_ptr() == module.layer.params[key].ctypes.data
    with torch.no_grad():
        module.W_r_l0.add_(1.0)
    np.testing.assert_array_equal(module.layer.params["W_r_l0"], module.W_r_l0.detach().numpy())
    x = torch.randn(4, 2, 3, dtype=F64)
    new = {k: torch.randn_like(v) for k, v in module.state_dict().items()}
    module.load_state_dict(new, assign=True)
    y = module(x)[0]
    # the forward re-pointed the Layer at the assigned tensors' memory
    for key, p in module.named_parameters():
        assert p.data_ptr() == module.layer.params[key].ctypes.data
    reference = ct.Module(gru, input_size=3, hidden_size=4, dtype=F64)
    reference.load_state_dict(new)
    torch.testing.assert_close(y, reference(x)[0], rtol=0, atol=0)


def test_load_torch_writes_in_place():
    torch.manual_seed(8)
    ref = torch.nn.GRU(3, 4, dtype=F64)
    module = ct.Module(gru, input_size=3, hidden_size=4, dtype=F64)
    pointers = {k: p.data_ptr() for k, p in module.named_parameters()}
    module.load_torch(ref.state_dict())
    x = torch.randn(4, 2, 3, dtype=F64)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], ref(x)[0], rtol=0, atol=1e-12)
    for key, p in module.named_parameters():
        assert p.data_ptr() == pointers[key] == module.layer.params[key].ctypes.data
    assert set(module.torch_state_dict()) == set(ref.state_dict())


def test_a_deep_copy_and_a_pickle_have_params_of_their_own_shared_with_their_layer(tmp_path):
    module = ct.Module(lstm, input_size=3, hidden_size=4, num_layers=2, dropout=0.3, dtype=F64, seed=9)
    x = torch.randn(5, 2, 3, dtype=F64)

    def through_a_file(module):
        torch.save(module, tmp_path / "module.pt")
        return torch.load(tmp_path / "module.pt", weights_only=False)

    for make in (copy.deepcopy, through_a_file):
        other = make(module)
        for key, p in other.named_parameters():
            assert p.data_ptr() == other.layer.params[key].ctypes.data != module._parameters[key].data_ptr()
        # the same weights and the same dropout generator
        torch.testing.assert_close(other(x)[0], module(x)[0], rtol=0, atol=0)
        with torch.no_grad():
            other.U_f_l1.add_(1.0)
        other.eval(), module.eval()
        assert not torch.equal(other(x)[0], module(x)[0])
        module.train()
    from_path = ct.Module(ROOT + "/specs/rnn.yaml", input_size=3, hidden_size=2)
    again = copy.deepcopy(from_path)
    assert again.layer.module is from_path.layer.module


def test_repr_attributes_and_the_sizes_spelled_both_ways():
    module = ct.Module(generated("lstmp"), input_size=3, hidden_size=5, proj_size=2, num_layers=2, bidirectional=True)
    assert repr(module) == "Module(lstmp, input=3, proj=2, hidden=5, num_layers=2, bidirectional=True, dtype=torch.float32)"
    assert (module.input_size, module.hidden_size, module.proj_size, module.num_layers) == (3, 5, 2, 2)
    plain = ct.Module(lstm, input=3, hidden=5, proj_size=0)
    assert plain.proj_size == 0 and plain.layer.dims == {"input": 3, "hidden": 5}
    with pytest.raises(TypeError, match="give input= or input_size=, not both"):
        ct.Module(lstm, input=3, input_size=3, hidden=5)


def test_import_cellspec_and_generated_modules_without_torch():
    code = "import sys; sys.modules['torch'] = None\nimport cellspec, cellspec.layer, generated.lstm\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": ROOT, "PATH": ""})
    assert out.stdout.strip() == "ok", out.stderr


# --- what autograd keeps ------------------------------------------------------------------------


def test_autograd_saves_no_copy_of_the_tape_and_frees_it_with_the_graph():
    T, B, H = 20, 8, 16
    module = ct.Module(lstm, input_size=4, hidden_size=H, num_layers=2, bidirectional=True, batch_first=True)
    lengths = torch.randint(1, T + 1, (B,))
    x = torch.randn(B, T, 4, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    for xs in (x, pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y, state = module(xs, lengths=lengths if xs is x else None)
        # what the packing saves are indices and batch sizes, never a T*B*hidden array
        assert max(saved, default=0) < T * B * H, saved
        assert sum(type(o) is LayerTape for o in gc.get_objects()) == 1
        data = y if xs is x else y.data
        (data.sum() + state["c"].sum()).backward()
        del y, state, data
        gc.collect()
        assert sum(type(o) is LayerTape for o in gc.get_objects()) == 0


# --- errors, all before any kernel runs ---------------------------------------------------------


@pytest.fixture
def guarded():
    """A 2-layer bidirectional float64 LSTM module whose kernels fail the test if reached."""
    module = ct.Module(lstm, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, dtype=F64, seed=0)

    def reached(*args):
        raise AssertionError("a kernel ran before the arguments were checked")

    for row in module.layer.cells:
        for cell in row:
            cell._forward = cell._backward = reached
    return module


X = torch.zeros(5, 3, 3, dtype=F64)
H0 = torch.zeros(4, 3, 4, dtype=F64)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(x=torch.zeros(5, 3, 3, dtype=F64, device="meta")), ValueError, "x is on meta: cellspec's kernels run on the CPU"),
    (dict(x=torch.zeros(5, 3, 3)), ShapeError, "x has dtype torch.float32, but this module is torch.float64"),
    (dict(x=torch.zeros(5, 3, 3, 1, dtype=F64)), ShapeError, r"x must be a 3-d tensor \[T,B,input\]"),   # 2-d: unbatched
    (dict(x=torch.zeros(5, 3, dtype=F64), lengths=[5]), LengthsError, r"lengths goes with a batch: an unbatched x \[T,input\]"),
    (dict(x=torch.zeros(5, 3, dtype=F64), state=(H0[:, 0], H0)), ShapeError, r"for an unbatched x \[T,input\] the state is unbatched too"),
    (dict(x=np.zeros((5, 3, 3))), TypeError, "x must be a torch.Tensor, not ndarray"),
    (dict(x=torch.zeros(5, 3, 2, dtype=F64)), ShapeError, r"input 'x' has shape \[5, 3, 2\], expected \[T,B,input\]"),
    (dict(lengths=torch.tensor([1.0, 2.0, 3.0])), LengthsError, "lengths has dtype torch.float32: it must be an integer tensor"),
    (dict(lengths=torch.tensor([1.0, 2.0, 3.0], requires_grad=True)), LengthsError, "lengths requires grad"),
    (dict(lengths=torch.tensor([1, 2, 3], device="meta")), LengthsError, "lengths is on meta"),
    (dict(lengths=torch.tensor([1, 2, 9])), LengthsError, r"lengths holds 9: every length must be in 1..T = 1..5"),
    (dict(lengths=[1, 2]), LengthsError, r"lengths has shape \[2\], expected \[B\] = \[3\]"),
    (dict(state=(H0,)), ShapeError, r"state as a tuple holds \(h, c\): 2 tensors, not 1"),
    (dict(state=H0), ShapeError, "state must be None, a dict with the keys c, h, or a tuple \\(h, c\\), not Tensor"),
    (dict(state={"h": H0}), ShapeError, "state must have the keys c, h; missing c"),
    (dict(state=(H0, H0[:2])), ShapeError, "state 'c' has 2 entries on axis 0, this layer needs num_layers[*]num_directions = 4"),
    (dict(state=(H0, H0[:, :2])), ShapeError, "state 'c' has batch size 2 on axis 1, but x has B = 3"),
    (dict(state=(H0, H0[0])), ShapeError, r"state 'c' must be a 3-d tensor \[num_layers[*]num_directions,B,hidden\]"),
    (dict(state=(H0, H0.float())), ShapeError, "state 'c' has dtype torch.float32"),
    (dict(state=(H0, H0.to("meta"))), ValueError, "state 'c' is on meta"),
])
def test_bad_arguments_are_refused_before_any_kernel(guarded, kwargs, error, message):
    kwargs = {"x": X.clone().requires_grad_(), **kwargs}
    for grad in (True, False):
        with torch.set_grad_enabled(grad), pytest.raises(error, match=message):
            guarded(**kwargs)


def test_bad_packed_and_module_arguments(guarded):
    packed = pack_padded_sequence(X, torch.tensor([5, 2, 3]), enforce_sorted=False)
    with pytest.raises(LengthsError, match="a PackedSequence carries its own"):
        guarded(packed, lengths=[5, 2, 3])
    with pytest.raises(ShapeError, match=r"x \(the PackedSequence's data\) has dtype torch.float32"):
        guarded(pack_padded_sequence(X.float(), torch.tensor([5, 2, 3]), enforce_sorted=False))
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.float64"):
        ct.Module(lstm, input_size=3, hidden_size=4, dtype=torch.float16)
    with pytest.raises(TypeError, match="cannot become torch.float32 on cpu; build a new Module with dtype=torch.float32"):
        guarded.float()
    with pytest.raises(TypeError, match="cannot become torch.float64 on meta"):
        guarded.to("meta")
    guarded.to(F64)   # no change: allowed
    gated = ct.Module(depth_gated, input_size=3, hidden_size=4)
    with pytest.raises(ShapeError, match="state as a tuple needs the order of a `torch:` section, which spec 'lstm_depth_gated' does not declare"):
        gated({"x": torch.zeros(2, 1, 3), "c_low": torch.zeros(2, 1, 4)}, (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4)))
    with pytest.raises(ShapeError, match="lstm_depth_gated has the inputs x, c_low: x must be a dict of tensors"):
        gated(torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="declares no `torch:` section"):
        gated.load_torch({})


def test_under_cpu_autocast_its_inputs_are_cast_to_its_dtype():
    """The kernels are float32 and float64 only: under torch.autocast("cpu") the module casts its
    floating inputs and state to its dtype (as custom_fwd(cast_inputs=...) does), runs there, and
    the gradients flow back through the casts in the callers' dtype. Outside autocast a bfloat16
    tensor is refused, as before."""
    torch.manual_seed(0)
    m = ct.Module(lstm, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, seed=0)
    x16 = torch.randn(5, 3, 3).bfloat16().requires_grad_()
    h16 = tuple(torch.randn(4, 3, 4).bfloat16().requires_grad_() for _ in range(2))
    x32 = x16.detach().float().requires_grad_()
    h32 = tuple(h.detach().float().requires_grad_() for h in h16)
    w = torch.randn(5, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = m(x16, h16)
    assert y.dtype == state["h"].dtype == state["c"].dtype == torch.float32
    y_ref, state_ref = m(x32, h32)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(state["c"], state_ref["c"], rtol=0, atol=0)
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    assert x16.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x16.grad, x32.grad.bfloat16(), rtol=0, atol=0)
    torch.testing.assert_close(h16[1].grad, h32[1].grad.bfloat16(), rtol=0, atol=0)

    # a PackedSequence of bfloat16 data too
    lengths = torch.tensor([5, 2, 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = m(pack_padded_sequence(x16.detach(), lengths, enforce_sorted=False))
    ref, _ = m(pack_padded_sequence(x32.detach(), lengths, enforce_sorted=False))
    assert out.data.dtype == torch.float32
    torch.testing.assert_close(out.data, ref.data, rtol=0, atol=0)

    # a bfloat16 model around it trains end to end
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fed = model(x32.detach())
        assert fed.dtype == torch.bfloat16
        y, _ = m(fed)
        loss = torch.nn.functional.linear(y, torch.ones(1, 8)).pow(2).mean()
    loss.backward()
    assert model[0].weight.grad is not None and torch.isfinite(model[0].weight.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())

    with pytest.raises(ShapeError, match="x has dtype torch.bfloat16, but this module is torch.float32"):
        m(x16)


class _Tagger(torch.nn.Module):
    """The module between two ordinary layers, as a model would hold it."""

    def __init__(self):
        super().__init__()
        self.rnn = ct.Module(gru, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, seed=0)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.rnn(x)[0])


def test_torch_compile_runs_it_outside_the_graph_and_trace_and_export_are_refused():
    """torch.compile breaks its graph at the module and runs the kernels eagerly: the same values
    and gradients as without it. torch.jit.trace would keep the kernels' outputs as constants
    (wrong for any other input) and torch.export's fake tensors have no memory for the kernels:
    both refused, saying why, instead of a trace check or a .numpy() error deep inside."""
    torch.manual_seed(0)
    model = _Tagger()
    x = torch.randn(5, 3, 3, requires_grad=True)
    want = model(x)
    want.square().sum().backward()
    want_grad, x.grad = x.grad, None
    got = torch.compile(model, backend="eager")(x)
    got.square().sum().backward()
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, want_grad, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="torch.jit.trace cannot record a cellspec.torch.Module"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # torch 2.13 deprecates jit.trace itself
        torch.jit.trace(model, (x.detach(),), check_trace=False)
    with pytest.raises(TypeError, match="x is a FakeTensor, with no memory behind it"):
        torch.export.export(model, (x.detach(),))


def test_concurrent_calls_of_one_module_give_what_serial_calls_give():
    """Eight Python threads through one module at once, forward and backward, each its own batch
    and lengths: the same gradients, to the bit, as one call after the other. (A call beside
    another thread's single-threaded BLAS block once chose one pass instead of chunks, and its
    gradients then differed in the last bits: `blas.threads()`.)"""
    import threading

    torch.manual_seed(0)
    m = ct.Module(gru, input_size=8, hidden_size=32, num_layers=2, bidirectional=True, seed=0)
    xs = [torch.randn(30, 40, 8) for _ in range(8)]
    lengths = [torch.randint(1, 31, (40,)) for _ in range(8)]

    def grad(i):
        x = xs[i].clone().requires_grad_()
        y, _ = m(x, lengths=lengths[i])
        (y ** 2).sum().backward(inputs=[x])
        return x.grad

    serial = [grad(i) for i in range(8)]
    got = [None] * 8

    def work(i):
        got[i] = grad(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, serial):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_params_under_parametrize_weight_norm_and_a_doubling():
    """A param under torch.nn.utils.parametrize is read as its parametrization computes it at each
    call, and its gradient flows back through it: weight_norm (the identity when registered) gives
    the plain module's outputs and, to its g and v, the chain rule of the plain module's gradient;
    a parametrization that doubles U_i computes as a module whose U_i is doubled, exports that
    weight (torch_state_dict) and loads through its right_inverse (load_torch)."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    x, w = torch.randn(5, 2, 3, dtype=F64), torch.randn(5, 2, 4, dtype=F64)
    plain = ct.Module(lstm, input_size=3, hidden_size=4, seed=0, dtype=F64)
    normed = weight_norm(ct.Module(lstm, input_size=3, hidden_size=4, seed=0, dtype=F64), "U_f_l0")
    y_plain, y_normed = plain(x)[0], normed(x)[0]
    # weight_norm recomputes U_f as g * v / |v|: equal to U_f up to float64 rounding (~1e-16)
    torch.testing.assert_close(y_normed, y_plain, rtol=0, atol=1e-14)
    (y_plain * w).sum().backward()
    (y_normed * w).sum().backward()
    original = normed.parametrizations.U_f_l0
    g, v = (t.detach().clone().requires_grad_() for t in (original.original0, original.original1))
    (torch._weight_norm(v, g, 0) * plain.U_f_l0.grad).sum().backward()
    # the same chain rule by autograd, from dU_f of a module whose U_f differs by that rounding:
    # float64 rounding apart; a gradient that missed the parametrization is off by order 1
    torch.testing.assert_close(original.original0.grad, g.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(original.original1.grad, v.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(normed.W_i_l0.grad, plain.W_i_l0.grad, rtol=0, atol=1e-14)

    class Double(torch.nn.Module):
        def forward(self, weight):
            return 2 * weight

        def right_inverse(self, weight):
            return weight / 2

    doubled = ct.Module(lstm, input_size=3, hidden_size=4, seed=0, dtype=F64)
    weight = doubled.U_i_l0.detach().clone()
    # registered through right_inverse, the computed weight is the old one: set the original to
    # it, so that the module computes with twice the weight
    parametrize.register_parametrization(doubled, "U_i_l0", Double())
    with torch.no_grad():
        doubled.parametrizations.U_i_l0.original.copy_(weight)
    twice = ct.Module(lstm, input_size=3, hidden_size=4, seed=0, dtype=F64)
    with torch.no_grad():
        twice.U_i_l0.mul_(2)
    y_doubled, y_twice = doubled(x)[0], twice(x)[0]
    torch.testing.assert_close(y_doubled, y_twice, rtol=0, atol=0)
    (y_doubled * w).sum().backward()
    (y_twice * w).sum().backward()
    torch.testing.assert_close(doubled.parametrizations.U_i_l0.original.grad, 2 * twice.U_i_l0.grad, rtol=0, atol=0)
    exported, wanted = doubled.torch_state_dict(), twice.torch_state_dict()
    assert exported.keys() == wanted.keys()
    for k in wanted:
        torch.testing.assert_close(exported[k], wanted[k], rtol=0, atol=0)
    ref = torch.nn.LSTM(3, 4, dtype=F64)
    doubled.load_torch(ref)
    # PyTorch's LSTM and the kernels in float64, sums in their own orders (as the parity tests)
    torch.testing.assert_close(doubled(x)[0], ref(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_an_unbatched_sequence_runs_as_nn_lstm_runs_it(batch_first):
    """x [T,input] with no batch axis, and its state [num_layers*num_directions,dim], as nn.LSTM
    takes them: the same outputs, final state and gradients as nn.LSTM with the same weights,
    unbatched results; batch_first does not apply to an unbatched x (as in PyTorch)."""
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, dtype=F64)
    ours = ct.Module(lstm, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=batch_first, dtype=F64)
    ours.load_torch(ref)
    x = torch.randn(6, 3, dtype=F64)
    h0, c0 = torch.randn(4, 4, dtype=F64), torch.randn(4, 4, dtype=F64)
    w = torch.randn(6, 8, dtype=F64)
    grads = []
    ours.flatten_parameters()   # nn.LSTM's, a no-op here, for code written for it
    for module, run in ((ref, lambda xx: ref(xx, (h0, c0))), (ours, lambda xx: ours(xx, (h0, c0)))):
        xx = x.clone().requires_grad_()
        y, state = run(xx)
        h, c = state if module is ref else (state["h"], state["c"])
        assert y.shape == (6, 8) and h.shape == c.shape == (4, 4)
        ((y * w).sum() + c.sum()).backward()
        grads.append((y, h, c, xx.grad))
    for a, b in zip(*grads):
        # PyTorch's LSTM and the kernels in float64, sums in their own orders (as the parity tests)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
