"""Inference: `forward(x, tape=False)` runs twins of the forward kernels that skip the stores only
the backward pass reads, and gives exactly what the forward pass with a tape gives."""

import numpy as np
import pytest

from conftest import SPEC_NAMES, generated, small_dims

# every cell in float64; float32 kernels are twins by the same code path, so two cells suffice
# there (each dtype compiles its own kernels, which is most of this file's time)
CASES = [(name, "float64") for name in SPEC_NAMES] + [("lstm", "float32"), ("gru_cho", "float32")]


@pytest.mark.parametrize("name, dtype", CASES)
def test_inference_equals_the_taped_forward(name, dtype):
    module = generated(name)
    cell = module.Cell(seed=0, dtype=dtype, **small_dims(module))
    rng = np.random.default_rng(1)
    xs = {n: rng.normal(size=(6, 3, cell.dims[d])).astype(dtype) for n, d in cell.INPUTS}
    state = {n: rng.normal(size=(3, cell.dims[d])).astype(dtype) for n, d in cell.STATES}
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    y, final, tape = cell.forward(x, state)
    y_i, final_i, none = cell.forward(x, state, tape=False)
    assert tape is not None and none is None
    # the same operations in the same order on the same values: equal to the last bit
    ys, ys_i = (y, y_i) if isinstance(y, dict) else ({"y": y}, {"y": y_i})
    for k in ys:
        np.testing.assert_array_equal(ys[k], ys_i[k])
    for k in final:
        np.testing.assert_array_equal(final[k], final_i[k])


def test_a_cell_that_saves_more_than_its_states_gets_a_twin_kernel():
    lstm, rnn = generated("lstm"), generated("rnn")
    # an LSTM's tape holds its gates, which inference does not store
    gate = next(name for name, role, value, _ in lstm.Cell.TAPE if (role, value) == ("values", "i"))
    assert gate in lstm._loop_forward.py_func.__code__.co_varnames
    assert hasattr(lstm, "_loop_infer") and gate not in lstm._loop_infer.py_func.__code__.co_varnames
    # an Elman RNN saves only its state: inference runs the forward kernel itself
    assert not hasattr(rnn, "_loop_infer")
    assert [(role, value) for _, role, value, _ in rnn.Cell.TAPE if role != "weights"] == [("states", "h")]
