"""The CPU emitter (`cellspec/codegen/cpu/`): every kernel of every catalog module takes exactly
the Buffers it uses and documents each of them, the generated code has no dead lines, `_F` is
defined exactly where it is called, and the TAPE table is the schedule's tape, spelled by
`buffers.buffer_name`. Structure is checked through `ast`, not by matching generated text."""

import ast
import functools
import os
import re

import numpy as np
import pytest

from cellspec.buffers import Access, Buffer, Role, buffer_name, shape_text
from cellspec.build import compile_spec
from cellspec.codegen.cpu.kernel import Kernel, Writer
from cellspec.codegen.cpu.printer import NumbaPrinter

from conftest import ROOT, SPEC_NAMES, generated

# the sizes and flags a kernel takes besides its buffers; _active, the rows running at each step, is
# an int array of the runtime's (cellspec.lengths), not a buffer of the schedule
SCALARS = re.compile(r"^(_T|_B|_n_\w+|_has_dseq|_active)$")
# a name spelled as buffer_name spells it: `_<role prefix>_<value>`
BUFFER_LIKE = re.compile(r"^_(%s)_" % "|".join(sorted((re.escape(r.prefix) for r in Role), key=len, reverse=True)))


@functools.lru_cache(maxsize=None)
def built(name):
    return compile_spec(os.path.join(ROOT, "specs", f"{name}.yaml"))


@functools.lru_cache(maxsize=None)
def tree(name):
    path = os.path.join(ROOT, "generated", f"{name}.py")
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read())


def kernels(name):
    """The njit functions of a catalog module, by name."""
    out = {}
    for node in tree(name).body:
        if isinstance(node, ast.FunctionDef) and any("njit" in ast.unparse(d) for d in node.decorator_list):
            out[node.name] = node
    return out


def methods(name):
    cls = next(n for n in tree(name).body if isinstance(n, ast.ClassDef) and n.name == "Cell")
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


OWNED_HEAD = ["_u0", "_u1", "_P", "_barrier"]


def params(fn):
    return [a.arg for a in fn.args.args]


def names(fn, ctx):
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def buffers_by_name(name):
    return {b.name: b for b in built(name).schedule.buffers.values()}


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_kernel_takes_exactly_the_buffers_it_uses_and_documents_each(name):
    by_name = buffers_by_name(name)
    ks = kernels(name)
    assert {"_loop_forward", "_loop_backward"} <= set(ks)
    for kname, fn in ks.items():
        ps = params(fn)
        if kname.endswith("_owned"):
            # a step kernel that keeps its weights first takes its units, threads and barrier
            # (cellspec.owned), each documented
            assert ps[:4] == OWNED_HEAD, kname
            doc = ast.get_docstring(fn).splitlines()
            assert all(any(ln.startswith(p) for ln in doc) for p in ("_u0, _u1:", "_P:", "_barrier:")), kname
            ps = ps[4:]
            # and then what the inference kernel it stands in for takes, but for a size it does
            # not read (clockwork's, whose one product needs no offset)
            twin = params(ks.get("_loop_infer", ks["_loop_forward"]))
            assert [p for p in twin if p in ps] == ps and all(p.startswith("_n_") for p in set(twin) - set(ps)), kname
        # _B where the kernel reads it (a time loop whose per-step stores are all packed has no
        # rows past the sequences' ends to run over)
        head = ["_T", "_B"] if "_B" in ps else ["_T"]
        assert ps[:len(head)] == head, kname
        doc = ast.get_docstring(fn).splitlines()
        assert any(ln.startswith(", ".join(head) + ":") for ln in doc), kname
        arrays = [p for p in ps if not SCALARS.match(p)]
        assert arrays and len(set(ps)) == len(ps), kname
        for p in ps[len(head):]:
            assert any(ln.startswith(f"{p}:") for ln in doc), (kname, p)
        for p in arrays:
            # an array parameter is a Buffer of the schedule, documented with its shape
            assert p in by_name, (kname, p)
            line = next(ln for ln in doc if ln.startswith(f"{p}:"))
            assert re.match(rf"{re.escape(p)}: \[[^\]]+\] ", line), line
            assert line.startswith(f"{p}: {shape_text(by_name[p].shape)} "), (line, by_name[p].shape)
        # and every Buffer its body names is a parameter (not a global, not a leftover)
        assert set(by_name) & (names(fn, ast.Load) | names(fn, ast.Store)) <= set(ps), kname
        assert all(p[3:] in built(name).cell.dims for p in ps if p.startswith("_n_")), kname  # sizes of dims
    # every call of a kernel from the Cell passes exactly its parameters, by name, in order
    calls = [c for m in methods(name).values() for c in ast.walk(m)
             if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in ks]
    # and a step kernel that keeps its weights, through runtime.owned_steps(kernel, units, args)
    owned = [c for m in methods(name).values() for c in ast.walk(m)
             if isinstance(c, ast.Call) and ast.unparse(c.func) == "runtime.owned_steps"]
    assert {c.func.id for c in calls} | {c.args[0].id for c in owned} == set(ks)
    for c in calls:
        assert [ast.unparse(a) for a in c.args] == params(ks[c.func.id]) and not c.keywords
    for c in owned:
        assert ast.unparse(c.args[1]) == "self.owned_units" and [ast.unparse(a) for a in c.args[2].elts] == params(ks[c.args[0].id])[4:]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_no_dead_lines(name):
    fns = {**kernels(name), **{m: f for m, f in methods(name).items() if m in ("_forward", "_backward")}}
    assert {"_forward", "_backward"} <= set(fns)
    for fname, fn in fns.items():
        loaded = names(fn, ast.Load)
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if isinstance(t, ast.Name):
                            assert t.id in loaded, f"{name}.{fname}: {t.id} is assigned and never read"
        for p in params(fn):
            if p != "self":
                assert p in loaded, f"{name}.{fname}: parameter {p} is never read"


def test_writer_define_drops_what_no_line_reads():
    w = Writer()
    w.define("_a", "1")                 # read nowhere: dropped
    w.define("_b", "2")                 # read below: kept
    w.define("_T", "3")                 # read only by _R, which nothing reads: dropped with it
    w.define("_R", "_T * _B")
    w.define("_n", "4")                 # `_n_hidden` and `self._n` are not reads of _n
    w.line("x = _n_hidden + self._n")
    with w.block("for _j in range(_b):"):
        w.line("pass")
    lines = w.text().splitlines()
    assert lines == ["_b = 2", "x = _n_hidden + self._n", "for _j in range(_b):", "    pass"]
    # plain lines are never dropped, even when nothing reads what they assign
    w2 = Writer()
    w2.line("_unused = 1")
    w2.define("_c", "2")
    w2.line("_d = _c")
    assert w2.text() == "_unused = 1\n_c = 2\n_d = _c\n"


def test_kernel_records_its_buffers_and_documents_them():
    acc = Buffer(Role.D_VECTOR, "b", (("hidden",),), "the gradient of b, summed in float64")
    x = Buffer(Role.VALUES, "x", ("T", "B", ("hidden",)), "x at every step")
    G = Buffer(Role.PRODUCTS, "h", ("B", ("hidden", "hidden")), "[U; V] @ h at this step")
    k = Kernel("_k", NumbaPrinter(), "A kernel of a test.")
    with k.block("for _t in range(_T):"):
        with k.rows_loop("hidden"):
            k.line(f"{k.at(Access(acc, 'j'))} += {k.at(Access(x, 'tbj'))} * {k.at(Access(G, 'bj', ('hidden',)))} * _F(2.0)")
            k.line(f"{k.at(Access(x, 'tbj'))} = 0.0")
    assert k.arrays == [acc, x, G]      # in order of first use, each once
    src = k.source(("input", "hidden"))
    fn = ast.parse(src).body[0]
    assert params(fn) == ["_T", "_B", "_n_hidden", "_acc_b", "_all_x", "_G_h"]
    # the float type comes from the first array that is not a float64 accumulator
    assert ast.unparse(fn.body[1]) == "_F = _all_x.dtype.type"
    doc = ast.get_docstring(fn).splitlines()
    assert "_acc_b: [hidden] the gradient of b, summed in float64" in doc
    assert "_G_h: [B,2*hidden] [U; V] @ h at this step" in doc
    assert "_n_hidden: the size of hidden" in doc and not any("input" in ln for ln in doc)
    # the stacked block is read through a view of exactly the loop's columns
    assert "_G_h[_b, _n_hidden:2*_n_hidden]" in src


def defines_F(fn):
    return [s for s in fn.body if isinstance(s, ast.Assign) and [ast.unparse(t) for t in s.targets] == ["_F"]]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_F_is_defined_exactly_where_it_is_called(name):
    by_name = buffers_by_name(name)
    for kname, fn in kernels(name).items():
        calls = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_F" for n in ast.walk(fn))
        defs = defines_F(fn)
        assert len(defs) == int(calls), (name, kname)
        if defs:
            value = defs[0].value
            assert ast.unparse(value).endswith(".dtype.type"), ast.unparse(value)
            array = value.value.value.id
            assert array in params(fn) and not by_name[array].float64, (name, kname, array)


def test_F_is_sometimes_needed_and_sometimes_not():
    found = {bool(defines_F(fn)) for name in SPEC_NAMES for fn in kernels(name).values()}
    assert found == {True, False}


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_TAPE_table_is_the_schedule_tape(name):
    s = built(name).schedule
    table = generated(name).Cell.TAPE
    assert [n for n, *_ in table] == [b.name for b in s.tape]
    assert [(r, v, sh) for _, r, v, sh in table] == [(b.role.name.lower(), b.value, shape_text(b.shape)) for b in s.tape]
    assert {r for _, r, _, _ in table} <= {"states", "values", "products", "weights"}
    assert [r for _, r, _, _ in table if r == "weights"] == [r for _, r, _, _ in table[-len(s.groups):]]
    # the dict the forward pass returns as its tape holds exactly those arrays, each by its name
    ret = next(n for n in ast.walk(methods(name)["_forward"]) if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "_tape")
    d = ret.value.body
    assert [k.value for k in d.keys] == [n for n, *_ in table] == [v.id for v in d.values]


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_the_forward_pass_returns_the_TAPE_arrays(name):
    Cell = generated(name).Cell
    cell = Cell(input=3, hidden=4, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 2, 3))
    y, final, tape = cell.forward(x)
    assert set(tape.arrays) == {n for n, *_ in Cell.TAPE}
    for n, role, value, shape in Cell.TAPE:
        sizes = {"T": 3, "T+1": 4, "B": 2, "hidden": 4, "input": 3}
        want = [eval(e, {}, sizes) for e in shape[1:-1].split(",")]
        assert list(tape.arrays[n].shape) == want, (n, shape)
    assert cell.forward(x, tape=False)[2] is None


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_buffer_name_is_the_one_spelling(name):
    s = built(name).schedule
    for (role, value), b in s.buffers.items():
        assert (b.role, b.value) == (role, value)
        assert b.name == buffer_name(role, value) == f"_{role.prefix}_{value}"
    spelled = [b.name for b in s.buffers.values()]
    assert len(set(spelled)) == len(spelled)
    # every name of the module spelled like a buffer is one of the schedule's
    used = {n.id for n in ast.walk(tree(name)) if isinstance(n, ast.Name)} | {a.arg for n in kernels(name).values() for a in n.args.args}
    stray = {n for n in used if BUFFER_LIKE.match(n)} - set(spelled)
    assert not stray, stray


def infer_twins(name):
    ks = kernels(name)
    for kname, fn in ks.items():
        if "_infer" in kname and not kname.endswith("_owned"):
            yield kname, fn, ks[kname.replace("_infer", "_forward")]


def test_the_lstm_inference_twin_drops_only_the_gates():
    (kname, infer, fwd), = infer_twins("lstm")
    assert kname == "_loop_infer"
    dropped = [p for p in params(fwd) if p not in params(infer)]
    assert [p for p in params(fwd) if p not in dropped] == params(infer)
    assert dropped == [buffer_name(Role.VALUES, g) for g in "ifgo"]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_an_inference_twin_drops_tape_only_arrays_never_a_state_sequence(name):
    s = built(name).schedule
    tape_only = {b.name for b in s.saved() if b.role is not Role.STATES}
    for kname, infer, fwd in infer_twins(name):
        dropped = [p for p in params(fwd) if p not in params(infer)]
        assert [p for p in params(fwd) if p not in dropped] == params(infer), kname
        assert dropped and set(dropped) <= tape_only, (kname, dropped)
        assert not any(p.startswith(buffer_name(Role.STATES, "")) for p in dropped)
        # the twin writes none of them, and the taped kernel stores into each
        assert not set(dropped) & names(infer, ast.Load)
        stored = {ast.unparse(t.value) for n in ast.walk(fwd) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Subscript)}
        views = {ast.unparse(n.targets[0]): ast.unparse(n.value) for n in ast.walk(fwd) if isinstance(n, ast.Assign)}
        for p in dropped:
            assert any(v == p or views.get(v, "").startswith(f"{p}[") for v in stored), (kname, p)
