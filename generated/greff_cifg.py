"""greff_cifg: Greff et al.'s LSTM variant CIFG, coupled input and forget gate (f = 1 - i), with peepholes

Generated from specs/greff_cifg.yaml (sha256 e74574739dd2dfa664d21a960d93e952595c8201cbad62e270511fa6ff30666b) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber 2017, "LSTM: A search space odyssey", IEEE TNNLS 28(10), arXiv 1503.04069, Section III, variant CIFG (coupled input and forget gate): the vanilla LSTM of Section II with f = 1 - i, as the paper writes it (some secondary sources write the coupling the other way round, i = 1 - f; not followed here), so c = z*i + c[t-1]*(1 - i) and the forget gate's W_f, R_f, p_f and b_f go with it. Unlike specs/lstm_cifg (the nn.LSTM layout without peepholes) this keeps V's peepholes: the input gate on c[t-1], the output gate on c[t]; g = h = tanh. The paper's block output y[t-1] is the state h here.

Forward, one step (on the right, a state's name means its value at t-1):
    z = tanh(W_z @ x + R_z @ h + b_z)
    i = sigmoid(W_i @ x + R_i @ h + p_i*c + b_i)
    c_new = z*i + c*(1 - i)
    o = sigmoid(W_o @ x + R_o @ h + p_o*c_new + b_o)
    y = tanh(c_new)*o
    h[t] = y
    c[t] = c_new
    y[t] = y

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_y = d_h[t] + dy[t]
    d_o = d_y*(tanh(c_new))
    d(R_o @ h) = d_o*(o*(1 - o))
    d(W_o @ x) = d_o*(o*(1 - o))
    d_c_new = d_c[t] + d_o*(o*p_o*(1 - o)) + d_y*(o*(1 - tanh(c_new)**2))
    d_i = d_c_new*(-c + z)
    d(R_i @ h) = d_i*(i*(1 - i))
    d(W_i @ x) = d_i*(i*(1 - i))
    d_z = d_c_new*(i)
    d(R_z @ h) = d_z*(1 - z**2)
    d(W_z @ x) = d_z*(1 - z**2)
    d_x = W_z^T @ d(W_z @ x) + W_i^T @ d(W_i @ x) + W_o^T @ d(W_o @ x)
    d_c[t-1] = d_i*(i*p_i*(1 - i)) + d_c_new*(1 - i)
    d_h[t-1] = R_z^T @ d(R_z @ h) + R_i^T @ d(R_i @ h) + R_o^T @ d(R_o @ h)
    d_W_z += d(W_z @ x) x^T
    d_W_i += d(W_i @ x) x^T
    d_W_o += d(W_o @ x) x^T
    d_R_z += d(R_z @ h) h^T
    d_R_i += d(R_i @ h) h^T
    d_R_o += d(R_o @ h) h^T
    d_p_i += d_i*(c*i*(1 - i))
    d_p_o += d_o*(c_new*o*(1 - o))
    d_b_z += d_z*(1 - z**2)
    d_b_i += d_i*(i*(1 - i))
    d_b_o += d_o*(o*(1 - o))

Schedule:
    before the time loop, over all T*B rows: [W_z; W_i; W_o] @ x  (one matrix product)
    in the time loop, per step: [R_z; R_i; R_o] @ h  (one matrix product)
    in the time loop, per step: z, i, c_new, o, y  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    output y: [T,B,hidden]
    state h: [B,hidden]
    state c: [B,hidden]
    param W_z: [hidden,input], init uniform(1/sqrt(hidden))
    param W_i: [hidden,input], init uniform(1/sqrt(hidden))
    param W_o: [hidden,input], init uniform(1/sqrt(hidden))
    param R_z: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_i: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_o: [hidden,hidden], init uniform(1/sqrt(hidden))
    param p_i: [hidden], init uniform(1/sqrt(hidden))
    param p_o: [hidden], init uniform(1/sqrt(hidden))
    param b_z: [hidden], init uniform(1/sqrt(hidden))
    param b_i: [hidden], init uniform(1/sqrt(hidden))
    param b_o: [hidden], init uniform(1/sqrt(hidden))
"""

import math

import numba as nb
import numpy as np

from cellspec import runtime
from cellspec.blas import dot, matmul, step_operand
from cellspec.owned import meet
from cellspec.sums import column_sums
from cellspec.fastmath import sigmoid, tanh


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_i, _w_p_o, _all_z, _all_i, _all_o):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,3*hidden] [R_z; R_i; R_o]^T
    _G_h: [B,3*hidden] [R_z; R_i; R_o] @ h at this step
    _G_x: [rows,3*hidden] [W_z; W_i; W_o] @ x at every step, the rows that ran
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _w_b_z: [hidden] param b_z
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _all_z: [T,B,hidden] z at every step
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = R_z @ h
    _p2 = W_i @ x
    _p3 = R_i @ h
    _p4 = W_o @ x
    _p5 = R_o @ h
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b, :_n_hidden]
            _rt_G_x_2 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_3 = _G_h[_b, _n_hidden:2*_n_hidden]
            _rt_G_x_4 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_5 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rt_seq_c_6 = _seq_c[_t, _b]
            _rt_all_z_7 = _all_z[_t, _b]
            _rt_all_i_8 = _all_i[_t, _b]
            _rn_seq_c_9 = _seq_c[_t + 1, _b]
            _rt_all_o_10 = _all_o[_t, _b]
            _rn_seq_h_11 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rb_G_h_5[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                b_z = _w_b_z[_j]
                c = _rt_seq_c_6[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = tanh(_p0 + _p1 + b_z)
                i = sigmoid(_p2 + _p3 + b_i + c*p_i)
                c_new = c*(_F(1.0) - i) + i*z
                o = sigmoid(_p4 + _p5 + b_o + c_new*p_o)
                y = o*tanh(c_new)
                _rt_all_z_7[_j] = z
                _rt_all_i_8[_j] = i
                _rn_seq_c_9[_j] = c_new
                _rt_all_o_10[_j] = o
                _rn_seq_h_11[_j] = y
        for _b in range(_nb, _B):
            for _j in range(_all_z.shape[2]):
                _all_z[_t, _b, _j] = 0.0
                _all_i[_t, _b, _j] = 0.0
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _all_o[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_i, _w_p_o):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,3*hidden] [R_z; R_i; R_o]^T
    _G_h: [B,3*hidden] [R_z; R_i; R_o] @ h at this step
    _G_x: [rows,3*hidden] [W_z; W_i; W_o] @ x at every step, the rows that ran
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _w_b_z: [hidden] param b_z
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = R_z @ h
    _p2 = W_i @ x
    _p3 = R_i @ h
    _p4 = W_o @ x
    _p5 = R_o @ h
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b, :_n_hidden]
            _rt_G_x_2 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_3 = _G_h[_b, _n_hidden:2*_n_hidden]
            _rt_G_x_4 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_5 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rt_seq_c_6 = _seq_c[_t, _b]
            _rn_seq_c_7 = _seq_c[_t + 1, _b]
            _rn_seq_h_8 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rb_G_h_5[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                b_z = _w_b_z[_j]
                c = _rt_seq_c_6[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = tanh(_p0 + _p1 + b_z)
                i = sigmoid(_p2 + _p3 + b_i + c*p_i)
                c_new = c*(_F(1.0) - i) + i*z
                o = sigmoid(_p4 + _p5 + b_o + c_new*p_o)
                y = o*tanh(c_new)
                _rn_seq_c_7[_j] = c_new
                _rn_seq_h_8[_j] = y
        for _b in range(_nb, _B):
            for _j in range(_seq_c.shape[2]):
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer_owned(_u0, _u1, _P, _barrier, _T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_i, _w_p_o):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running, on this thread's units of hidden (cellspec.owned).

    _u0, _u1: the units of hidden this thread runs
    _P: the threads
    _barrier: [1] the steps the threads have finished, counted once per thread (cellspec.owned.meet)
    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,3*hidden] [R_z; R_i; R_o]^T
    _G_h: [B,3*hidden] [R_z; R_i; R_o] @ h at this step
    _G_x: [rows,3*hidden] [W_z; W_i; W_o] @ x at every step, the rows that ran
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _w_b_z: [hidden] param b_z
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = R_z @ h
    _p2 = W_i @ x
    _p3 = R_i @ h
    _p4 = W_o @ x
    _p5 = R_o @ h
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h[:, _u0:_u1], _G_h[:_nb, _u0:_u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, _n_hidden + _u0:_n_hidden + _u1], _G_h[:_nb, _n_hidden + _u0:_n_hidden + _u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, 2*_n_hidden + _u0:2*_n_hidden + _u1], _G_h[:_nb, 2*_n_hidden + _u0:2*_n_hidden + _u1])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, _u0:_u1]
            _rb_G_h_1 = _G_h[_b, _u0:_u1]
            _rt_G_x_2 = _G_x[_o + _b, _n_hidden + _u0:_n_hidden + _u1]
            _rb_G_h_3 = _G_h[_b, _n_hidden + _u0:_n_hidden + _u1]
            _rt_G_x_4 = _G_x[_o + _b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rb_G_h_5 = _G_h[_b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _ru_w_b_i_6 = _w_b_i[_u0:_u1]
            _ru_w_b_o_7 = _w_b_o[_u0:_u1]
            _ru_w_b_z_8 = _w_b_z[_u0:_u1]
            _rt_seq_c_9 = _seq_c[_t, _b, _u0:_u1]
            _ru_w_p_i_10 = _w_p_i[_u0:_u1]
            _ru_w_p_o_11 = _w_p_o[_u0:_u1]
            _rn_seq_c_12 = _seq_c[_t + 1, _b, _u0:_u1]
            _rn_seq_h_13 = _seq_h[_t + 1, _b, _u0:_u1]
            for _j in range(_u1 - _u0):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rb_G_h_5[_j]
                b_i = _ru_w_b_i_6[_j]
                b_o = _ru_w_b_o_7[_j]
                b_z = _ru_w_b_z_8[_j]
                c = _rt_seq_c_9[_j]
                p_i = _ru_w_p_i_10[_j]
                p_o = _ru_w_p_o_11[_j]
                z = tanh(_p0 + _p1 + b_z)
                i = sigmoid(_p2 + _p3 + b_i + c*p_i)
                c_new = c*(_F(1.0) - i) + i*z
                o = sigmoid(_p4 + _p5 + b_o + c_new*p_o)
                y = o*tanh(c_new)
                _rn_seq_c_12[_j] = c_new
                _rn_seq_h_13[_j] = y
        for _b in range(_nb, _B):
            for _j in range(_u0, _u1):
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb
        meet(_barrier, _P * (_t + 1))


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _n_hidden, _active, _seq_c, _all_i, _all_o, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_c, _dG_x, _acc_p_o, _d_c, _acc_p_i, _W_h, _dgemm_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T: the steps
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_y: [rows,hidden] dy: the gradient of output y
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _dG_x: [rows,3*hidden] the gradient of [W_z @ x; W_i @ x; W_o @ x] = [R_z @ h; R_i @ h; R_o @ h] at every step, the rows that ran
    _acc_p_o: [hidden] the gradient of p_o, summed in float64
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _acc_p_i: [hidden] the gradient of p_i, summed in float64
    _W_h: [3*hidden,hidden] [R_z; R_i; R_o]
    _dgemm_h: [B,hidden] the gradient of h through its products, [R_z; R_i; R_o]^T @ theirs
    """
    _F = _seq_c.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_seq_c_0 = _seq_c[_t, _b]
            _rn_seq_c_1 = _seq_c[_t + 1, _b]
            _rt_all_i_2 = _all_i[_t, _b]
            _rt_all_o_3 = _all_o[_t, _b]
            _rt_all_z_4 = _all_z[_t, _b]
            _rb_dcarry_h_5 = _dcarry_h[_b]
            _rt_dy_y_6 = _dy_y[_o + _b]
            _rb_dcarry_c_7 = _dcarry_c[_b]
            _rt_dG_x_8 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_d_c_9 = _d_c[_b]
            _rt_dG_x_10 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_11 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                c = _rt_seq_c_0[_j]
                c_new = _rn_seq_c_1[_j]
                i = _rt_all_i_2[_j]
                o = _rt_all_o_3[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = _rt_all_z_4[_j]
                _c0 = _F(1.0) - z**2
                _c1 = _F(1.0) - i
                _c2 = _c1*i
                _c3 = o*(_F(1.0) - o)
                _c4 = tanh(c_new)
                d_y = _rb_dcarry_h_5[_j] + _rt_dy_y_6[_j]
                d_o = _c4*d_y
                d_c_new = _rb_dcarry_c_7[_j] + _c3*d_o*p_o + d_y*o*(_F(1.0) - _c4**2)
                d_i = d_c_new*(-c + z)
                d_z = d_c_new*i
                _rt_dG_x_8[_j] = _c3*d_o
                _acc_p_o[_j] += _c3*c_new*d_o
                _rb_d_c_9[_j] = _c1*d_c_new + _c2*d_i*p_i
                _rt_dG_x_10[_j] = _c2*d_i
                _acc_p_i[_j] += _c2*c*d_i
                _rt_dG_x_11[_j] = _c0*d_z
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
                _dcarry_c[_b, _j] = _d_c[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_c, _all_i, _all_o, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_c, _dG_x, _acc_p_o, _d_c, _acc_p_i, _W_h, _dgemm_h, _dseq_h, _dseq_c):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_y: [rows,hidden] dy: the gradient of output y
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _dG_x: [rows,3*hidden] the gradient of [W_z @ x; W_i @ x; W_o @ x] = [R_z @ h; R_i @ h; R_o @ h] at every step, the rows that ran
    _acc_p_o: [hidden] the gradient of p_o, summed in float64
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _acc_p_i: [hidden] the gradient of p_i, summed in float64
    _W_h: [3*hidden,hidden] [R_z; R_i; R_o]
    _dgemm_h: [B,hidden] the gradient of h through its products, [R_z; R_i; R_o]^T @ theirs
    _dseq_h: [T,B,hidden] the gradient of state h after every step from a layer above that reads it
    _dseq_c: [T,B,hidden] the gradient of state c after every step from a layer above that reads it
    """
    _F = _seq_c.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_seq_c_0 = _seq_c[_t, _b]
            _rn_seq_c_1 = _seq_c[_t + 1, _b]
            _rt_all_i_2 = _all_i[_t, _b]
            _rt_all_o_3 = _all_o[_t, _b]
            _rt_all_z_4 = _all_z[_t, _b]
            _rb_dcarry_h_5 = _dcarry_h[_b]
            _rt_dy_y_6 = _dy_y[_o + _b]
            _rb_dcarry_c_7 = _dcarry_c[_b]
            _rt_dG_x_8 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_d_c_9 = _d_c[_b]
            _rt_dG_x_10 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_11 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                c = _rt_seq_c_0[_j]
                c_new = _rn_seq_c_1[_j]
                i = _rt_all_i_2[_j]
                o = _rt_all_o_3[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = _rt_all_z_4[_j]
                _c0 = _F(1.0) - z**2
                _c1 = _F(1.0) - i
                _c2 = _c1*i
                _c3 = o*(_F(1.0) - o)
                _c4 = tanh(c_new)
                d_y = _rb_dcarry_h_5[_j] + _rt_dy_y_6[_j]
                d_o = _c4*d_y
                d_c_new = _rb_dcarry_c_7[_j] + _c3*d_o*p_o + d_y*o*(_F(1.0) - _c4**2)
                d_i = d_c_new*(-c + z)
                d_z = d_c_new*i
                _rt_dG_x_8[_j] = _c3*d_o
                _acc_p_o[_j] += _c3*c_new*d_o
                _rb_d_c_9[_j] = _c1*d_c_new + _c2*d_i*p_i
                _rt_dG_x_10[_j] = _c2*d_i
                _acc_p_i[_j] += _c2*c*d_i
                _rt_dG_x_11[_j] = _c0*d_z
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        if _t > 0:
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] = _dgemm_h[_b, _j] + _dseq_h[_t - 1, _b, _j]
                    _dcarry_c[_b, _j] = _d_c[_b, _j] + _dseq_c[_t - 1, _b, _j]
            for _b in range(_nb, _B):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] += _dseq_h[_t - 1, _b, _j]
                    _dcarry_c[_b, _j] += _dseq_c[_t - 1, _b, _j]
        else:
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
                    _dcarry_c[_b, _j] = _d_c[_b, _j]


class Cell(runtime.CellBase):
    NAME = 'greff_cifg'
    SPEC_SHA256 = 'e74574739dd2dfa664d21a960d93e952595c8201cbad62e270511fa6ff30666b'
    DIMS = ['input', 'hidden']
    INPUTS = [('x', 'input')]
    STATES = [('h', 'hidden'), ('c', 'hidden')]
    OUTPUTS = [('y', 'hidden')]
    CONSTRAINTS = []
    CONSTANTS = []
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = []
    PARAMS = [('W_z', ('hidden', 'input')), ('W_i', ('hidden', 'input')), ('W_o', ('hidden', 'input')), ('R_z', ('hidden', 'hidden')), ('R_i', ('hidden', 'hidden')), ('R_o', ('hidden', 'hidden')), ('p_i', ('hidden',)), ('p_o', ('hidden',)), ('b_z', ('hidden',)), ('b_i', ('hidden',)), ('b_o', ('hidden',))]
    MASKS = []
    INITS = [
        ('W_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,hidden]'), ('_seq_c', 'states', 'c', '[T+1,B,hidden]'), ('_all_z', 'values', 'z', '[T,B,hidden]'), ('_all_i', 'values', 'i', '[T,B,hidden]'), ('_all_o', 'values', 'o', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[3*hidden,input]'), ('_W_h', 'weights', 'h', '[3*hidden,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['p_i', 'p_o', 'b_z', 'b_i', 'b_o']
    TRANSCENDENTALS = [('hidden', 4)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ('x',)
    # the outputs whose gradient the backward pass takes as its packed rows ([rows, n])
    PACKED_DY = ('y',)
    # the layout of the torch.nn module this cell is (cellspec.torch_layout), or None
    TORCH = None
    # the dim a step kernel that keeps its weights splits over threads, and the recurrent weights
    # it reads ([operand dim, blocks of dim] each), or None (cellspec.owned)
    OWNED = {'dim': 'hidden', 'weights': [('hidden', 3)]}

    def _forward(self, inputs, state, tape, _active):
        _dtype = self.dtype
        _params = self.params
        _in_x = inputs['x']
        _T, _B = _active.shape[0], state['h'].shape[0]
        _n_hidden = self.dims['hidden']
        _w_p_i = _params['p_i']
        _w_p_o = _params['p_o']
        _w_b_z = _params['b_z']
        _w_b_i = _params['b_i']
        _w_b_o = _params['b_o']
        _W_x = np.concatenate((_params['W_z'], _params['W_i'], _params['W_o'],))
        _W_h = np.concatenate((_params['R_z'], _params['R_i'], _params['R_o'],))
        _WT_h = step_operand(_W_h.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _seq_c = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G_h = np.empty((_B, 3*_n_hidden), _dtype)
        _all_z = np.empty((_T, _B, _n_hidden), _dtype)
        _all_i = np.empty((_T, _B, _n_hidden), _dtype)
        _all_o = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _seq_c[0] = state['c']
        _G_x = dot(_in_x, _W_x.T)
        if tape:
            _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_i, _w_p_o, _all_z, _all_i, _all_o)
        elif self.owned_units is not None:
            runtime.owned_steps(_loop_infer_owned, self.owned_units, (_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_i, _w_p_o,))
        else:
            _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_i, _w_p_o)
        _y = {'y': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy(), 'c': _seq_c[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_seq_c': _seq_c, '_all_z': _all_z, '_all_i': _all_i, '_all_o': _all_o, '_W_x': _W_x, '_W_h': _W_h} if tape else None
        return _y, _final, _tape

    def _backward(self, tape, dy, dstate, dseq, dseq_given):
        _dtype = self.dtype
        _params = tape.params
        _T, _B = tape.T, tape.B
        _active = tape.active
        _rows = runtime.Rows(_active, _T, _B)
        _n_hidden = self.dims['hidden']
        _in_x = tape.inputs['x']
        _w_p_i = _params['p_i']
        _w_p_o = _params['p_o']
        _seq_h = tape.arrays['_seq_h']
        _seq_c = tape.arrays['_seq_c']
        _all_z = tape.arrays['_all_z']
        _all_i = tape.arrays['_all_i']
        _all_o = tape.arrays['_all_o']
        _W_x = tape.arrays['_W_x']
        _W_h = tape.arrays['_W_h']
        _W_h = step_operand(_W_h, _B)
        _dy_y = dy['y']
        _dG_x = np.empty((_rows.count, 3*_n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_hidden), _dtype)
        _d_c = np.empty((_B, _n_hidden), _dtype)
        _acc_p_i = np.zeros((_n_hidden,), np.float64)
        _acc_p_o = np.zeros((_n_hidden,), np.float64)
        _dcarry_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_c = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h[...] = dstate['h']
        _dseq_h = dseq['h']
        _dcarry_c[...] = dstate['c']
        _dseq_c = dseq['c']
        _has_dseq = dseq_given
        if _has_dseq:
            _dcarry_h += _dseq_h[_T - 1]
            _dcarry_c += _dseq_c[_T - 1]
        if _has_dseq:
            _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_c, _all_i, _all_o, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_c, _dG_x, _acc_p_o, _d_c, _acc_p_i, _W_h, _dgemm_h, _dseq_h, _dseq_c)
        else:
            _loop_backward(_T, _n_hidden, _active, _seq_c, _all_i, _all_o, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_c, _dG_x, _acc_p_o, _d_c, _acc_p_i, _W_h, _dgemm_h)
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_dG_x.T, _rows_seq_h)
        _dgemm_x = dot(_dG_x, _W_x)
        _dW_x = dot(_dG_x.T, _in_x)
        _dbias_x = column_sums(_dG_x, 0, 3*_n_hidden)
        _dparams = {}
        _dparams['W_z'] = _dW_x[0:_n_hidden].copy()
        _dparams['W_i'] = _dW_x[_n_hidden:2*_n_hidden].copy()
        _dparams['W_o'] = _dW_x[2*_n_hidden:3*_n_hidden].copy()
        _dparams['R_z'] = _dW_h[0:_n_hidden].copy()
        _dparams['R_i'] = _dW_h[_n_hidden:2*_n_hidden].copy()
        _dparams['R_o'] = _dW_h[2*_n_hidden:3*_n_hidden].copy()
        _dparams['p_i'] = _acc_p_i.astype(_dtype)
        _dparams['p_o'] = _acc_p_o.astype(_dtype)
        _dparams['b_z'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dparams['b_i'] = _dbias_x[_n_hidden:2*_n_hidden].astype(_dtype)
        _dparams['b_o'] = _dbias_x[2*_n_hidden:3*_n_hidden].astype(_dtype)
        _dinputs = {}
        _dinputs['x'] = _dgemm_x
        _dstate = {'h': _dcarry_h, 'c': _dcarry_c}
        return _dinputs, _dparams, _dstate
