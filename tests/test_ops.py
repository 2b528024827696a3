"""The op table: every row's spellings exist and agree, and every consumer's table is derived from it."""

from types import SimpleNamespace

import numpy as np
import pytest
import sympy

from cellspec import fastmath, ops, reference, spec
from cellspec.bench import peers as bench_peers
from cellspec.codegen.cpu import tables
from cellspec.codegen.cpu.printer import NumbaPrinter
from cellspec.ir import Elementwise
from cellspec.ops import FUNCTIONS, OPS

x = sympy.Symbol("x")
POINTS = [-30.0, -2.5, -1.0, -0.25, 0.0, 0.5, 1.0, 3.0, 30.0]
POSITIVE = [0.01, 0.5, 1.0, 2.0, 30.0]

# the functions that appear only in derivatives have no op, hence no `numeric`
_DERIVATIVE_ONLY = {ops.step: lambda v: 1.0 if v > 0 else 0.0, sympy.sign: lambda v: float(np.sign(v))}


def _numeric(cls):
    for op in OPS.values():
        if op.build is cls:
            return op.numeric
    return _DERIVATIVE_ONLY[cls]


def _arity(cls):
    return min(cls.nargs)  # SymPy's log also takes a base


def _arguments(cls):
    """Points where the function is defined, one tuple of arguments each: pairs include ties."""
    points = POSITIVE if cls is sympy.log else POINTS
    if _arity(cls) == 2:
        return [(a, b) for a in points for b in points[::3]] + [(a, a) for a in points]
    return [(a,) for a in points]


ROWS = sorted(FUNCTIONS, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", ROWS, ids=lambda cls: cls.__name__)
def test_kernel_spelling_exists(cls):
    row = FUNCTIONS[cls]
    if row.builtin:
        assert row.kernel == "abs"
    else:
        assert callable(getattr(fastmath, row.kernel))


@pytest.mark.parametrize("cls", ROWS, ids=lambda cls: cls.__name__)
def test_numpy_spelling_matches_numeric(cls):
    fn = FUNCTIONS[cls].numpy(np)
    numeric = _numeric(cls)
    args = _arguments(cls)
    for point in args:
        got = fn(*(np.float64(a) for a in point))
        assert float(got) == pytest.approx(numeric(*point), rel=1e-12, abs=1e-300), (cls, point)
    # and on arrays
    cols = [np.array(c) for c in zip(*args)]
    np.testing.assert_allclose(fn(*cols), [numeric(*p) for p in args], rtol=1e-12)


@pytest.mark.parametrize("cls", [cls for cls in ROWS if FUNCTIONS[cls].torch], ids=lambda cls: cls.__name__)
def test_torch_spelling_evaluates_to_the_same(cls):
    torch = pytest.importorskip("torch")
    args = _arguments(cls)
    cols = [torch.tensor(c, dtype=torch.float64) for c in zip(*args)]
    names = [f"a{i}" for i in range(len(cols))]
    text = FUNCTIONS[cls].torch.format(*names)
    got = eval(text, {"torch": torch}, dict(zip(names, cols)))
    np.testing.assert_allclose(got.double().numpy(), [_numeric(cls)(*p) for p in args], rtol=1e-12)


def test_transcendental_flags():
    heavy = {cls for cls, row in FUNCTIONS.items() if row.transcendental}
    assert heavy == {ops.sigmoid, sympy.tanh, sympy.exp, sympy.log, ops.softplus}
    for cls in (ops.relu, ops.absolute, ops.maximum, ops.minimum, ops.step, sympy.sign):
        assert not FUNCTIONS[cls].transcendental


def test_every_op_is_a_row_or_a_power():
    for op in OPS.values():
        assert op.build in FUNCTIONS or op.name == "sqrt"
    assert isinstance(OPS["sqrt"].build(x), sympy.Pow)


def test_kernel_function_is_the_fastmath_view():
    assert ops.KERNEL_FUNCTION == {cls: row.kernel for cls, row in FUNCTIONS.items() if not row.builtin}
    assert {row.kernel for row in FUNCTIONS.values()} <= spec.RESERVED


class _twice(ops._RealFunction):
    nargs = 1


@pytest.fixture
def fake_row(monkeypatch):
    """A function added to the language by one row of the table, and nowhere else."""
    row = ops.Function(_twice, "twice", lambda xp: lambda v: 2 * v, "(2.0 * {0})", transcendental=True)
    monkeypatch.setitem(FUNCTIONS, _twice, row)
    monkeypatch.setattr(reference, "_TABLES", {})
    return row


def test_a_new_row_reaches_every_consumer(fake_row):
    printer = NumbaPrinter()
    assert printer.doprint(_twice(x) + 1) == "twice(x) + _F(1.0)"
    assert printer.functions == {"twice"}
    assert bench_peers._TorchPrinter().doprint(_twice(x)) == "(2.0 * x)"
    assert reference.evaluate(_twice(x) + 1, {"x": np.array([1.5])}).tolist() == [4.0]
    assert ops.unsupported(_twice(x)) is None


def test_a_function_without_a_row_is_refused_everywhere():
    assert ops.unsupported(_twice(x)) == _twice(x)
    with pytest.raises(NotImplementedError):
        bench_peers._TorchPrinter().doprint(_twice(x))
    with pytest.raises(NotImplementedError):
        reference.evaluate(_twice(x), {"x": np.array([1.0])})
    with pytest.raises(NotImplementedError):
        NumbaPrinter().doprint(_twice(x))


def _cell_of(*exprs):
    nodes = {f"n{i}": Elementwise(f"n{i}", e, "hidden", ("x",)) for i, e in enumerate(exprs)}
    return SimpleNamespace(nodes=nodes)


def test_transcendentals_count_the_flagged_rows(fake_row):
    counted = tables.transcendentals(_cell_of(ops.sigmoid(x) * sympy.tanh(x), _twice(ops.relu(x)) + ops.absolute(x)))
    assert counted == [("hidden", 3)]
