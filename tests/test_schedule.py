"""The emitted schedule is the cuDNN one: input products hoisted as one GEMM, products sharing an
operand fused, one BLAS call per step for the recurrence, one fused elementwise loop."""

import ast
import os

import pytest

from cellspec.buffers import Role
from cellspec.build import compile_spec
from cellspec.codegen.cpu.kernel import window

from conftest import ROOT


def built(name):
    return compile_spec(os.path.join(ROOT, "specs", f"{name}.yaml"))


def kernel_source(source, name):
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(source, fn)


@pytest.mark.parametrize(
    "name, hoisted, recurrent",
    [
        ("rnn", [("W",)], [("U",)]),
        ("lstm", [("W_i", "W_f", "W_g", "W_o")], [("U_i", "U_f", "U_g", "U_o")]),
        # the recurrent group restacked with U_n first: its gradient and the input group's are
        # column windows of one array, equal in r and z (test_equal_gradients_are_computed_once)
        ("gru", [("W_r", "W_z", "W_n")], [("U_n", "U_r", "U_z")]),
        ("lstm_peephole", [("W_i", "W_f", "W_g", "W_o")], [("U_i", "U_f", "U_g", "U_o")]),
    ],
)
def test_input_products_hoisted_and_recurrent_products_fused(name, hoisted, recurrent):
    b = built(name)
    pre, loop = b.schedule.phases["pre"], b.schedule.phases["loop"]
    assert [g.weights for ph in pre for g in ph.groups] == hoisted
    assert all(not ph.nodes for ph in pre)
    assert [g.weights for g in loop[0].groups] == recurrent
    assert len(loop) == 1
    forward = kernel_source(b.source, "_loop_forward")
    assert forward.count("matmul(") == 1
    # one fused elementwise loop per step (over a dim's size; the loop that passes the states of
    # rows past their sequence's end through runs over the arrays' width)
    assert forward.count("for _j in range(_n_") == 1 and forward.count("for _j in range(") == 2
    backward = kernel_source(b.source, "_loop_backward")
    # in the loop, only d_h = d_G @ U; weight and input gradients are products after it
    assert backward.count("matmul(") == 1
    dG_h = b.schedule.dG_of["h"].name
    h_cols, x_cols = (window(b.schedule.dG_columns(g)) for g in ("h", "x"))
    cols = "" if h_cols is None else f", {h_cols}"
    dG_x = "_dG_x" if x_cols is None else f"_dG_x[:, {x_cols}]"
    # over the rows that ran (all T*B of a batch without lengths): the hoisted products and
    # their gradient live packed (storage.packed), the kernels index them at the step's offset;
    # x, which no kernel reads, comes packed and its gradient goes back so (PACKED_INPUTS)
    assert "PACKED_INPUTS = ('x',)" in b.source
    assert "_G_x = dot(_in_x, _W_x.T)" in b.source and "_G_x[_o + _b" in forward and "_rows.pack(_in_x)" not in b.source
    assert f"= dot({dG_h}{f'[:{cols}]' if cols else ''}.T, " in b.source and f"_dgemm_x = dot({dG_x}, _W_x)" in b.source
    assert "_rows.spread(" not in b.source
    assert f"{dG_h}[_o + _b" in backward and f"matmul({dG_h}[_o:_o + _nb{cols}]" in backward


def test_an_input_a_kernel_reads_comes_whole():
    """mut1 reads x in its time loop (tanh(x), elementwise, in n): x comes [T,B,input], and the
    body packs it for the hoisted products; lstm_depth_gated's c_low (read elementwise in the
    loop) comes whole, its x packed."""
    mut1 = built("mut1")
    assert not mut1.schedule.buf(Role.INPUT, "x").packed
    assert "PACKED_INPUTS = ()" in mut1.source and "_rows.pack(_in_x)" in mut1.source
    assert "_dgemm_x = _rows.spread(dot(" in mut1.source
    gated = built("lstm_depth_gated")
    assert gated.schedule.buf(Role.INPUT, "x").packed and not gated.schedule.buf(Role.INPUT, "c_low").packed
    assert "PACKED_INPUTS = ('x',)" in gated.source and "_rows.pack(_in_x)" not in gated.source


def test_dy_comes_as_the_rows_that_ran():
    """An output computed in the time loop has its gradient read there alone, on the rows still
    running: the backward loops read dy packed, at the step's offset, as they read dG."""
    b = built("rnn")
    assert b.schedule.buf(Role.D_OUTPUT, "h_new").packed and "PACKED_DY = ('h_new',)" in b.source
    for name in ("_loop_backward", "_loop_backward_dseq"):
        loop = kernel_source(b.source, name)
        assert "_dy_h_new[_o + _b]" in loop and "_dy_h_new[_t" not in loop


def test_cho_gru_needs_a_second_product_per_step():
    b = built("gru_cho")
    loop = b.schedule.phases["loop"]
    assert [g.weights for g in loop[0].groups] == [("U_r", "U_z")]
    assert [g.weights for g in loop[1].groups] == [("U_n",)]
    assert b.schedule.groups["_v0"].operand == "_v0"
    assert kernel_source(b.source, "_loop_forward").count("matmul(") == 2


def test_saved_values_are_what_the_derivatives_read():
    s = built("gru").schedule
    # r, z, n and U_n @ h + b_hn's product are read by the derivatives; h is in its sequence
    assert sorted((b.role.name, b.value) for b in s.saved()) == [("STATES", "h"), ("VALUES", "_p5"), ("VALUES", "n"), ("VALUES", "r"), ("VALUES", "z")]
    assert str(s.plan.partials[("n", "r")]) == "(1 - n**2)*(_p5 + b_hn)"


def test_sigmoid_derivative_is_written_from_its_output():
    s = built("lstm").schedule
    assert str(s.plan.partials[("i", "_p0")]) == "i*(1 - i)"
    assert str(s.plan.partials[("g", "_p4")]) == "1 - g**2"
    backward = kernel_source(built("lstm").source, "_loop_backward")
    # the backward pass recomputes no gate: no exp, no sigmoid
    assert "exp" not in backward and "sigmoid" not in backward


def test_equal_gradients_are_computed_once():
    # in an LSTM d(W_i @ x) = d(U_i @ h) = d(b_i): one gradient array, biases summed from it
    s = built("lstm").schedule
    assert {k: (v.role.name, v.value) for k, v in s.dG_of.items()} == {"x": ("D_PRODUCTS", "x"), "h": ("D_PRODUCTS", "x")}
    assert s.bias_of == {"b_i": "_p0", "b_f": "_p2", "b_g": "_p4", "b_o": "_p6"}
    assert "_acc_" not in built("lstm").source
    # in a GRU the candidate's products differ (r multiplies U_n @ h + b_hn), the gates' do not:
    # one array [U_n h | r | z | W_n x], the recurrent group's gradient its first three blocks and
    # the input group's its last three, the gates' gradients written once
    g = built("gru").schedule
    assert {k: v.value for k, v in g.dG_of.items()} == {"x": "x", "h": "x"}
    assert g.dG_of["x"].shape == ("rows", ("hidden",) * 4)
    assert g.dG_columns("h") == ((), ("hidden",) * 3) and g.dG_columns("x") == (("hidden",), ("hidden",) * 3)
    assert g.groups["h"].weights == ("U_n", "U_r", "U_z") and g.groups["x"].weights == ("W_r", "W_z", "W_n")
    h, x = g.groups["h"].products, g.groups["x"].products
    assert g.alias == {h[1]: x[0], h[2]: x[1]}   # U_r @ h's gradient is W_r @ x's, U_z @ h's W_z @ x's
    assert g.bias_of["b_hn"] == "_p5"
    backward = kernel_source(built("gru").source, "_loop_backward")
    assert "_dG_h" not in backward and backward.count("_dG_x[_o + _b, ") == 4   # n twice, r and z once
