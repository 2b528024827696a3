"""The time loops' weights laid out for few rows (`cellspec.blas.step_operand`): where numpy's
OpenBLAS runs a few rows' product faster as out^T = W a^T, a call hands its kernels W^T as the
transpose of a C-ordered W, and `matmul` computes it that way. Every catalog cell (float64, small
dims, a full batch and a ragged one) gives the same outputs, final state and gradients with the
weights laid out either way; at the catalog's small dims only a forced threshold takes the
second, so the test forces it."""

import numpy as np
import pytest

from cellspec import blas
from conftest import SPEC_NAMES, generated, small_dims

T, B = 6, 5


def run(name, rng_seed, lengths=None):
    module = generated(name)
    cell = module.Cell(dtype="float64", seed=1, **small_dims(module))
    rng = np.random.default_rng(rng_seed)
    xs = {k: rng.standard_normal((T, B, cell.dims[d])) for k, d in cell.INPUTS}
    y, final, tape = cell.forward(xs, lengths=lengths)
    one = not isinstance(y, dict)
    ys = {"y": y} if one else y
    dy = {k: rng.standard_normal(v.shape) for k, v in ys.items()}
    dx, dparams, dstate = cell.backward(tape, dy["y"] if one else dy)
    return {"y": ys, "final": final, "dx": dx if isinstance(dx, dict) else {"x": dx}, "dparams": dparams, "dstate": dstate}


@pytest.mark.skipif(not blas.CBLAS or blas._on_mkl, reason="the layout for few rows is taken on numpy's OpenBLAS only")
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_cell_is_the_same_with_its_weights_laid_out_for_few_rows(name, monkeypatch):
    lengths = np.array([6, 2, 6, 1, 4])
    want = [run(name, 0), run(name, 0, lengths)]
    monkeypatch.setattr(blas, "STEP_BYTES", 0)  # every loop group's weights, however small
    got = [run(name, 0), run(name, 0, lengths)]
    # the loop kernels ran on the transposed view: a signature of theirs has a 2-d F-ordered array
    kernels = [getattr(generated(name), k) for k in dir(generated(name)) if k.startswith("_loop_")]
    assert any("2, 'F'" in str(sig) for k in kernels for sig in getattr(k, "signatures", ()))
    for w, g in zip(want, got):
        for part in w:
            assert set(w[part]) == set(g[part])
            for k in w[part]:
                assert np.isfinite(g[part][k]).all()
                np.testing.assert_allclose(g[part][k], w[part][k], rtol=1e-12, atol=1e-12, err_msg=f"{name} {part} {k}")


def test_step_operand_lays_out_few_rows_and_large_weights_only():
    W = np.random.default_rng(0).standard_normal((1024, 256)).astype(np.float32)  # 1 MiB
    for b in (W, W.T):
        for rows, fast in ((1, False), (2, True), (32, True), (33, False)):
            got = blas.step_operand(b, rows)
            np.testing.assert_array_equal(got, b)
            taken = fast and blas.CBLAS and not blas._on_mkl
            assert (got.T.flags.c_contiguous if taken else got.flags.c_contiguous), (b.shape, rows)
    small = W[:512]  # 512 KiB: the C-ordered W^T the kernels always read
    assert blas.step_operand(small.T, 16).flags.c_contiguous and blas.step_operand(small, 16) is small
