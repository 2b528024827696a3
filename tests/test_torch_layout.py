"""cellspec.torch_layout: params to and from PyTorch's state_dict as each spec's `torch:` section
(the generated `Cell.TORCH`) declares, for stacks of layers in both directions; PyTorch's
outputs from weights loaded into a Cell; and the errors of a state dict that does not fit.

The layer keys are `f"{param}_l{k}"` and `f"{param}_l{k}_reverse"`, torch's own suffixes.
Multi-layer outputs are the Layer's tests; here a layer is only its dict of params.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cellspec.torch_layout import from_torch, suffixes, to_torch, torch_kwargs
from conftest import SPEC_NAMES, generated
from parity import TOL_FLOAT64, relative_error, torch_states

TORCH_SPECS = [n for n in SPEC_NAMES if generated(n).Cell.TORCH is not None]
SIZES = {"input": 5, "hidden": 6, "proj": 3}

# PyTorch's CPU LSTM has no oneDNN kernel for proj_size > 0 and says so once
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def cell_of(name, dtype="float64", seed=0, **sizes):
    module = generated(name)
    return module.Cell(dtype=dtype, seed=seed, **{d: sizes.get(d, SIZES[d]) for d in module.Cell.DIMS})


def layer_params(name, num_layers, bidirectional, dtype="float64") -> dict[str, np.ndarray]:
    """A stack's params as a Layer keeps them: layer 0 reads the input, each layer above reads
    the outputs of the one below, both directions side by side (as in torch)."""
    first = cell_of(name, dtype)
    (_, out_dim), = first.OUTPUTS
    width = first.dims[out_dim] * (2 if bidirectional else 1)
    out = {}
    for n, s in enumerate(suffixes(num_layers, bidirectional)):
        cell = cell_of(name, dtype, seed=n, input=SIZES["input"] if s.startswith("_l0") else width)
        out.update({f"{p}{s}": v for p, v in cell.params.items()})
    return out


def torch_module(name, dtype=torch.float64, **kwargs):
    sizes = torch_kwargs(cell_of(name))
    kind = getattr(torch.nn, sizes.pop("mode"))
    torch.manual_seed(0)
    return kind(**sizes, **kwargs, dtype=dtype)


def test_the_specs_that_are_torchs_cells_declare_it():
    assert TORCH_SPECS == ["gru", "lstm", "lstm_fb1", "lstmp", "rnn", "rnn_relu"]
    assert generated("gru").Cell.TORCH == {
        "module": "GRU", "state": ["h"], "weight_ih": ["W_r", "W_z", "W_n"], "weight_hh": ["U_r", "U_z", "U_n"],
        "bias_ih": ["b_r", "b_z", "b_n"], "bias_hh": ["b_r", "b_z", "b_hn"],
    }


def test_torch_kwargs():
    assert torch_kwargs(cell_of("lstm")) == {"mode": "LSTM", "input_size": 5, "hidden_size": 6}
    assert torch_kwargs(cell_of("lstmp")) == {"mode": "LSTM", "input_size": 5, "hidden_size": 6, "proj_size": 3}
    assert torch_kwargs(cell_of("rnn")) == {"mode": "RNN", "input_size": 5, "hidden_size": 6}
    assert torch_kwargs(cell_of("rnn_relu")) == {"mode": "RNN", "input_size": 5, "hidden_size": 6, "nonlinearity": "relu"}
    assert torch_kwargs(cell_of("gru", input=4, hidden=9)) == {"mode": "GRU", "input_size": 4, "hidden_size": 9}
    with pytest.raises(ValueError, match=r"^mut1: its spec declares no 'torch:' section, so it has no PyTorch layout$"):
        torch_kwargs(generated("mut1").Cell(input=4, hidden=4))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("name", TORCH_SPECS)
def test_params_to_torch_and_back(name, bidirectional):
    params = layer_params(name, 2, bidirectional)
    layout = generated(name).Cell.TORCH
    sd = to_torch(layout, params, 2, bidirectional)
    # torch's names, in the order of its state_dict
    assert list(sd) == list(torch_module(name, num_layers=2, bidirectional=bidirectional).state_dict())
    back = from_torch(layout, sd, params, 2, bidirectional)
    assert list(back) == list(params)
    for k, v in params.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)
        assert back[k].dtype == v.dtype and back[k].flags.c_contiguous


@pytest.mark.parametrize("name", TORCH_SPECS)
def test_a_torch_state_dict_back_and_forth_keeps_every_tensor_and_the_bias_sums(name):
    """Random nn.RNN/LSTM/GRU of 2 layers in both directions (lstmp: with proj_size) -> our
    params -> torch: the same weights, the same non-shared biases, and the same sum of the two
    biases where one of ours stands for both (it comes back whole in bias_ih, zeros in bias_hh)."""
    module = torch_module(name, dtype=torch.float32, num_layers=2, bidirectional=True)
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    layout = generated(name).Cell.TORCH
    back = to_torch(layout, from_torch(layout, module.state_dict(), layer_params(name, 2, True), 2, True), 2, True)
    assert list(back) == list(sd)
    shared = [k for k, p in enumerate(layout["bias_hh"]) if p in layout["bias_ih"]]
    for key in sd:
        if key.startswith("bias_"):
            continue
        np.testing.assert_array_equal(back[key], sd[key], err_msg=key)
    for s in suffixes(2, True):
        n = len(layout["bias_ih"])
        ih, hh = np.split(sd[f"bias_ih{s}"].astype(np.float64), n), np.split(sd[f"bias_hh{s}"].astype(np.float64), n)
        ih_back, hh_back = np.split(back[f"bias_ih{s}"], n), np.split(back[f"bias_hh{s}"], n)
        for k in range(n):
            if k in shared:
                np.testing.assert_array_equal(ih_back[k], ih[k] + hh[k])
                np.testing.assert_array_equal(hh_back[k], 0)
            else:
                np.testing.assert_array_equal(ih_back[k], ih[k])
                np.testing.assert_array_equal(hh_back[k], hh[k])


@pytest.mark.parametrize("name", TORCH_SPECS)
def test_a_cell_loaded_from_torch_gives_torchs_outputs(name):
    """One layer, one direction: the weights of a random torch module, through from_torch, make
    the cell compute what the module does (y and the final states, float64)."""
    module = torch_module(name)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)  # larger than the default init, so the nonlinearities bend
    cell = cell_of(name)
    like = {f"{k}_l0": v for k, v in cell.params.items()}
    cell.params = {k.removesuffix("_l0"): v for k, v in from_torch(cell.TORCH, module.state_dict(), like, 1, False).items()}
    rng = np.random.default_rng(0)
    T, B = 6, 3
    x = rng.normal(size=(T, B, SIZES["input"]))
    states = torch_states(cell)
    state0 = {s: rng.normal(size=(B, n)) for s, n in states.items()}
    given = tuple(torch.tensor(v[None]) for v in state0.values())
    with torch.no_grad():
        y_ref, final_ref = module(torch.tensor(x), given if len(given) > 1 else given[0])
    final_ref = dict(zip(states, final_ref if len(given) > 1 else (final_ref,)))
    y, final, _ = cell.forward(x, state0)
    assert relative_error(y, y_ref.numpy()) < TOL_FLOAT64
    for s in states:
        assert relative_error(final[s], final_ref[s][0].numpy()) < TOL_FLOAT64, s


def test_from_torch_copies_and_casts():
    """The params are arrays of the like's dtype that share no memory with torch's tensors;
    parameters that require grad are read too (detached)."""
    module = torch_module("lstm", dtype=torch.float32)
    like = layer_params("lstm", 1, False)
    params = from_torch(generated("lstm").Cell.TORCH, dict(module.named_parameters()), like, 1, False)
    assert all(v.dtype == np.float64 for v in params.values())
    before = module.weight_ih_l0.detach().clone()
    params["W_i_l0"][:] = 0
    assert torch.equal(module.weight_ih_l0.detach(), before)


LSTM = generated("lstm").Cell.TORCH


def load_error(state_dict, num_layers, bidirectional) -> str:
    with pytest.raises(ValueError) as info:
        from_torch(LSTM, state_dict, layer_params("lstm", num_layers, bidirectional), num_layers, bidirectional)
    return str(info.value)


def test_a_state_dict_of_fewer_layers_or_directions_says_so():
    one = torch_module("lstm").state_dict()
    assert load_error(one, 2, False) == (
        "the state dict does not fit this layer: the state dict has 1 layer(s), this layer has 2; "
        "missing weight_ih_l1, weight_hh_l1, bias_ih_l1, bias_hh_l1"
    )
    assert load_error(one, 1, True) == (
        "the state dict does not fit this layer: the state dict has no reverse direction, this layer is bidirectional; "
        "missing weight_ih_l0_reverse, weight_hh_l0_reverse, bias_ih_l0_reverse, bias_hh_l0_reverse"
    )


def test_a_state_dict_of_more_layers_or_directions_says_so():
    assert load_error(torch_module("lstm", num_layers=2).state_dict(), 1, False) == (
        "the state dict does not fit this layer: the state dict has 2 layer(s), this layer has 1; "
        "unexpected weight_ih_l1, weight_hh_l1, bias_ih_l1, bias_hh_l1"
    )
    assert load_error(torch_module("lstm", bidirectional=True).state_dict(), 1, False) == (
        "the state dict does not fit this layer: the state dict has a reverse direction, this layer is not bidirectional; "
        "unexpected weight_ih_l0_reverse, weight_hh_l0_reverse, bias_ih_l0_reverse, bias_hh_l0_reverse"
    )


def test_a_state_dict_with_a_key_missing_or_of_another_shape_names_it():
    sd = dict(torch_module("lstm").state_dict())
    del sd["bias_hh_l0"]
    assert load_error(sd, 1, False) == "the state dict does not fit this layer: missing bias_hh_l0"
    proj = dict(torch_module("lstmp").state_dict())
    assert load_error(proj, 1, False) == "the state dict does not fit this layer: unexpected weight_hr_l0"
    wider = torch.nn.LSTM(5, 7).state_dict()
    assert load_error(wider, 1, False) == "weight_ih_l0 has shape (28, 5), this layer expects (24, 5)"


def test_params_that_are_not_the_layouts_are_refused():
    params = layer_params("lstm", 1, False)
    del params["U_f_l0"]
    with pytest.raises(ValueError, match=r"^the params do not match the layout of 1 layer\(s\): missing U_f_l0$"):
        to_torch(LSTM, params, 1, False)
    with pytest.raises(ValueError, match=r"^the params of `like` do not match the layout of 2 layer\(s\), bidirectional: missing W_i_l0_reverse, "):
        from_torch(LSTM, torch_module("lstm", num_layers=2, bidirectional=True).state_dict(), layer_params("lstm", 2, False), 2, True)
