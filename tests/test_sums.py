"""`cellspec.sums.column_sums`, the bias gradients' sums: a window of a C-contiguous array's
columns, added up in float64 whatever the array's dtype."""

import numpy as np
import pytest

from cellspec.sums import column_sums


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lo, hi", [(0, 12), (3, 9), (11, 12)])
def test_column_sums_are_numpys_float64_sums(dtype, lo, hi):
    a = np.random.default_rng(0).normal(size=(1000, 12)).astype(dtype) * 1e3
    got = column_sums(a, lo, hi)
    assert got.dtype == np.float64 and got.shape == (hi - lo,)
    np.testing.assert_allclose(got, a[:, lo:hi].sum(axis=0, dtype=np.float64), rtol=1e-12, atol=1e-9)


def test_column_sums_of_no_rows_are_zeros():
    np.testing.assert_array_equal(column_sums(np.empty((0, 5), np.float32), 1, 4), np.zeros(3))
