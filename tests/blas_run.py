"""Run every catalog cell's forward and backward on seeded data under the BLAS backend that
CELLSPEC_BLAS names, and save every output, final state and gradient to an .npz: test_blas_backends
runs it once per backend in its own process (a process links its kernels to one backend) and
compares. Each cell runs a full batch and a ragged one (lengths in 1..T). Also saves `blas.dot`
on the operand layouts the kernels hand it."""

import sys

import numpy as np

from cellspec import blas

sys.path.insert(0, sys.argv[2])  # the repository root, for `generated`
from conftest import SPEC_NAMES, generated, small_dims  # noqa: E402

T, B = 20, 32  # 640 rows in the products outside the loop, on 2 threads


def main(out):
    blas.set_threads(2)
    rng = np.random.default_rng(0)
    saved = {"backend": np.array(blas.BACKEND)}
    for dtype in ("float32", "float64"):
        for transpose_a in (False, True):
            a = rng.standard_normal((700, 48) if not transpose_a else (48, 700)).astype(dtype)
            a = a.T if transpose_a else a
            b = rng.standard_normal((33, 48)).astype(dtype).T  # the kernels' W.T
            saved[f"dot/{dtype}/{transpose_a}"] = blas.dot(a, b)
            saved[f"dot/{dtype}/{transpose_a}/numpy"] = np.dot(a, b)
        saved[f"dot/{dtype}/strided"] = blas.dot(a[::2], b)
    # the bench floor's per-step products: the kernels' matmul, jitted, in this backend
    from cellspec.bench.floor import step_products

    v, WT, last = rng.standard_normal((3 * 5, 7)).astype(np.float32), rng.standard_normal((7, 9)).astype(np.float32), np.empty((5, 9), np.float32)
    step_products(3, 5, v, WT, last)
    saved["floor/float32/steps"], saved["floor/float32/steps/numpy"] = last, v[10:] @ WT
    for name in SPEC_NAMES:
        module = generated(name)
        for dtype in ("float32", "float64"):
            cell = module.Cell(dtype=dtype, seed=1, **small_dims(module))
            xs = {k: rng.standard_normal((T, B, cell.dims[d])).astype(dtype) for k, d in cell.INPUTS}
            y, final, tape = cell.forward(xs)
            one = not isinstance(y, dict)  # one output: an array, and dy one too
            y = {"y": y} if one else y
            dy = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in y.items()}
            dx, dparams, dstate = cell.backward(tape, dy["y"] if one else dy)
            dx = dx if isinstance(dx, dict) else {"x": dx}
            for part, d in (("y", y), ("final", final), ("dx", dx), ("dparams", dparams), ("dstate", dstate)):
                for k, v in d.items():
                    saved[f"{name}/{dtype}/{part}/{k}"] = v
            # and a ragged batch: its products over all steps run on the rows that ran, packed
            lengths = rng.integers(1, T + 1, size=B)
            y, final, tape = cell.forward(xs, lengths=lengths)
            y = {"y": y} if one else y
            dx, dparams, dstate = cell.backward(tape, dy["y"] if one else dy)
            dx = dx if isinstance(dx, dict) else {"x": dx}
            for part, d in (("y", y), ("final", final), ("dx", dx), ("dparams", dparams), ("dstate", dstate)):
                for k, v in d.items():
                    saved[f"{name}/{dtype}/ragged/{part}/{k}"] = v
    np.savez(out, **saved)


if __name__ == "__main__":
    main(sys.argv[1])
