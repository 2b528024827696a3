"""lstm_depth_gated: Depth-gated LSTM layer, whose memory cell takes a gated share of the cell of the layer below at the same step

Generated from specs/lstm_depth_gated.yaml (sha256 a15872be6c8677ac7db0e51ecbabf8f1b806093806454ceb7e0de8c8c3e03ffd) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Yao, Cohn, Vylomova, Duh & Dyer 2015, "Depth-Gated LSTM", arXiv:1508.03790, eqs. (1)-(7): an LSTM with diagonal peepholes (input and forget gates see c[t-1], the output gate the new c) and a depth gate d = sigmoid(b_d + W_xd x + w_cd*c[t-1] + w_ld*c_low[t]) that adds d*c_low[t] to the new memory cell, where c_low[t] is the memory cell of the layer below at the same step and x is that layer's output. Stack it with cellspec.stack.Stack, linking c_low to the lower layer's state c.

Forward, one step (on the right, a state's name means its value at t-1):
    i = sigmoid(W_i @ x + U_i @ h + p_i*c + b_i)
    f = sigmoid(W_f @ x + U_f @ h + p_f*c + b_f)
    d = sigmoid(W_d @ x + w_cd*c + w_ld*c_low + b_d)
    c_new = d*c_low + f*c + i*tanh(W_c @ x + U_c @ h + b_c)
    o = sigmoid(W_o @ x + U_o @ h + p_o*c_new + b_o)
    h_new = o*tanh(c_new)
    h[t] = h_new
    c[t] = c_new
    y[t] = h_new

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_h_new = d_h[t] + dy[t]
    d_o = d_h_new*(tanh(c_new))
    d(U_o @ h) = d_o*(o*(1 - o))
    d(W_o @ x) = d_o*(o*(1 - o))
    d_c_new = d_c[t] + d_o*(o*p_o*(1 - o)) + d_h_new*(o*(1 - tanh(c_new)**2))
    d(tanh((U_c @ h) + (W_c @ x) + b_c)) = d_c_new*(i)
    d(U_c @ h) = d(tanh((U_c @ h) + (W_c @ x) + b_c))*(1 - (tanh((U_c @ h) + (W_c @ x) + b_c))**2)
    d(W_c @ x) = d(tanh((U_c @ h) + (W_c @ x) + b_c))*(1 - (tanh((U_c @ h) + (W_c @ x) + b_c))**2)
    d_d = d_c_new*(c_low)
    d(W_d @ x) = d_d*(d*(1 - d))
    d_f = d_c_new*(c)
    d(U_f @ h) = d_f*(f*(1 - f))
    d(W_f @ x) = d_f*(f*(1 - f))
    d_i = d_c_new*((tanh((U_c @ h) + (W_c @ x) + b_c)))
    d(U_i @ h) = d_i*(i*(1 - i))
    d(W_i @ x) = d_i*(i*(1 - i))
    d_c_low = d_d*(d*w_ld*(1 - d)) + d_c_new*(d)
    d_x = W_i^T @ d(W_i @ x) + W_f^T @ d(W_f @ x) + W_d^T @ d(W_d @ x) + W_c^T @ d(W_c @ x) + W_o^T @ d(W_o @ x)
    d_c[t-1] = d_i*(i*p_i*(1 - i)) + d_f*(f*p_f*(1 - f)) + d_d*(d*w_cd*(1 - d)) + d_c_new*(f)
    d_h[t-1] = U_i^T @ d(U_i @ h) + U_f^T @ d(U_f @ h) + U_c^T @ d(U_c @ h) + U_o^T @ d(U_o @ h)
    d_W_i += d(W_i @ x) x^T
    d_W_f += d(W_f @ x) x^T
    d_W_c += d(W_c @ x) x^T
    d_W_o += d(W_o @ x) x^T
    d_W_d += d(W_d @ x) x^T
    d_U_i += d(U_i @ h) h^T
    d_U_f += d(U_f @ h) h^T
    d_U_c += d(U_c @ h) h^T
    d_U_o += d(U_o @ h) h^T
    d_p_i += d_i*(c*i*(1 - i))
    d_p_f += d_f*(c*f*(1 - f))
    d_p_o += d_o*(c_new*o*(1 - o))
    d_w_cd += d_d*(c*d*(1 - d))
    d_w_ld += d_d*(c_low*d*(1 - d))
    d_b_i += d_i*(i*(1 - i))
    d_b_f += d_f*(f*(1 - f))
    d_b_c += d(tanh((U_c @ h) + (W_c @ x) + b_c))*(1 - (tanh((U_c @ h) + (W_c @ x) + b_c))**2)
    d_b_o += d_o*(o*(1 - o))
    d_b_d += d_d*(d*(1 - d))

Schedule:
    before the time loop, over all T*B rows: [W_i; W_f; W_c; W_o; W_d] @ x  (one matrix product)
    in the time loop, per step: [U_i; U_f; U_c; U_o] @ h  (one matrix product)
    in the time loop, per step: i, f, d, (tanh((U_c @ h) + (W_c @ x) + b_c)), c_new, o, h_new  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    input c_low: [T,B,hidden]
    output h_new: [T,B,hidden]
    state h: [B,hidden]
    state c: [B,hidden]
    param W_i: [hidden,input], init uniform(1/sqrt(hidden))
    param W_f: [hidden,input], init uniform(1/sqrt(hidden))
    param W_c: [hidden,input], init uniform(1/sqrt(hidden))
    param W_o: [hidden,input], init uniform(1/sqrt(hidden))
    param W_d: [hidden,input], init uniform(1/sqrt(hidden))
    param U_i: [hidden,hidden], init uniform(1/sqrt(hidden))
    param U_f: [hidden,hidden], init uniform(1/sqrt(hidden))
    param U_c: [hidden,hidden], init uniform(1/sqrt(hidden))
    param U_o: [hidden,hidden], init uniform(1/sqrt(hidden))
    param p_i: [hidden], init uniform(1/sqrt(hidden))
    param p_f: [hidden], init uniform(1/sqrt(hidden))
    param p_o: [hidden], init uniform(1/sqrt(hidden))
    param w_cd: [hidden], init uniform(1/sqrt(hidden))
    param w_ld: [hidden], init uniform(1/sqrt(hidden))
    param b_i: [hidden], init uniform(1/sqrt(hidden))
    param b_f: [hidden], init uniform(1/sqrt(hidden))
    param b_c: [hidden], init uniform(1/sqrt(hidden))
    param b_o: [hidden], init uniform(1/sqrt(hidden))
    param b_d: [hidden], init uniform(1/sqrt(hidden))
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
def _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_c, _w_b_d, _w_b_f, _w_b_i, _w_b_o, _seq_c, _in_c_low, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld, _all_i, _all_f, _all_d, _all__e0, _all_o):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,4*hidden] [U_i; U_f; U_c; U_o]^T
    _G_h: [B,4*hidden] [U_i; U_f; U_c; U_o] @ h at this step
    _G_x: [rows,5*hidden] [W_i; W_f; W_c; W_o; W_d] @ x at every step, the rows that ran
    _w_b_c: [hidden] param b_c
    _w_b_d: [hidden] param b_d
    _w_b_f: [hidden] param b_f
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _in_c_low: [T,B,hidden] input c_low
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _w_w_cd: [hidden] param w_cd
    _w_w_ld: [hidden] param w_ld
    _all_i: [T,B,hidden] i at every step
    _all_f: [T,B,hidden] f at every step
    _all_d: [T,B,hidden] d at every step
    _all__e0: [T,B,hidden] (tanh((U_c @ h) + (W_c @ x) + b_c)) at every step
    _all_o: [T,B,hidden] o at every step

    Values the compiler named:
    _e0 = (tanh((U_c @ h) + (W_c @ x) + b_c))
    _p0 = W_i @ x
    _p1 = U_i @ h
    _p2 = W_f @ x
    _p3 = U_f @ h
    _p4 = W_d @ x
    _p5 = W_c @ x
    _p6 = U_c @ h
    _p7 = W_o @ x
    _p8 = U_o @ h
    """
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b, :_n_hidden]
            _rt_G_x_2 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_3 = _G_h[_b, _n_hidden:2*_n_hidden]
            _rt_G_x_4 = _G_x[_o + _b, 4*_n_hidden:5*_n_hidden]
            _rt_G_x_5 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_6 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rt_G_x_7 = _G_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_G_h_8 = _G_h[_b, 3*_n_hidden:4*_n_hidden]
            _rt_seq_c_9 = _seq_c[_t, _b]
            _rt_in_c_low_10 = _in_c_low[_t, _b]
            _rt_all_i_11 = _all_i[_t, _b]
            _rt_all_f_12 = _all_f[_t, _b]
            _rt_all_d_13 = _all_d[_t, _b]
            _rt_all__e0_14 = _all__e0[_t, _b]
            _rn_seq_c_15 = _seq_c[_t + 1, _b]
            _rt_all_o_16 = _all_o[_t, _b]
            _rn_seq_h_17 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rt_G_x_5[_j]
                _p6 = _rb_G_h_6[_j]
                _p7 = _rt_G_x_7[_j]
                _p8 = _rb_G_h_8[_j]
                b_c = _w_b_c[_j]
                b_d = _w_b_d[_j]
                b_f = _w_b_f[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                c = _rt_seq_c_9[_j]
                c_low = _rt_in_c_low_10[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                w_cd = _w_w_cd[_j]
                w_ld = _w_w_ld[_j]
                i = sigmoid(_p0 + _p1 + b_i + c*p_i)
                f = sigmoid(_p2 + _p3 + b_f + c*p_f)
                d = sigmoid(_p4 + b_d + c*w_cd + c_low*w_ld)
                _e0 = tanh(_p5 + _p6 + b_c)
                c_new = _e0*i + c*f + c_low*d
                o = sigmoid(_p7 + _p8 + b_o + c_new*p_o)
                h_new = o*tanh(c_new)
                _rt_all_i_11[_j] = i
                _rt_all_f_12[_j] = f
                _rt_all_d_13[_j] = d
                _rt_all__e0_14[_j] = _e0
                _rn_seq_c_15[_j] = c_new
                _rt_all_o_16[_j] = o
                _rn_seq_h_17[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all_i.shape[2]):
                _all_i[_t, _b, _j] = 0.0
                _all_f[_t, _b, _j] = 0.0
                _all_d[_t, _b, _j] = 0.0
                _all__e0[_t, _b, _j] = 0.0
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _all_o[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_c, _w_b_d, _w_b_f, _w_b_i, _w_b_o, _seq_c, _in_c_low, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,4*hidden] [U_i; U_f; U_c; U_o]^T
    _G_h: [B,4*hidden] [U_i; U_f; U_c; U_o] @ h at this step
    _G_x: [rows,5*hidden] [W_i; W_f; W_c; W_o; W_d] @ x at every step, the rows that ran
    _w_b_c: [hidden] param b_c
    _w_b_d: [hidden] param b_d
    _w_b_f: [hidden] param b_f
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _in_c_low: [T,B,hidden] input c_low
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _w_w_cd: [hidden] param w_cd
    _w_w_ld: [hidden] param w_ld

    Values the compiler named:
    _e0 = (tanh((U_c @ h) + (W_c @ x) + b_c))
    _p0 = W_i @ x
    _p1 = U_i @ h
    _p2 = W_f @ x
    _p3 = U_f @ h
    _p4 = W_d @ x
    _p5 = W_c @ x
    _p6 = U_c @ h
    _p7 = W_o @ x
    _p8 = U_o @ h
    """
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b, :_n_hidden]
            _rt_G_x_2 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_3 = _G_h[_b, _n_hidden:2*_n_hidden]
            _rt_G_x_4 = _G_x[_o + _b, 4*_n_hidden:5*_n_hidden]
            _rt_G_x_5 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_6 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rt_G_x_7 = _G_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_G_h_8 = _G_h[_b, 3*_n_hidden:4*_n_hidden]
            _rt_seq_c_9 = _seq_c[_t, _b]
            _rt_in_c_low_10 = _in_c_low[_t, _b]
            _rn_seq_c_11 = _seq_c[_t + 1, _b]
            _rn_seq_h_12 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rt_G_x_5[_j]
                _p6 = _rb_G_h_6[_j]
                _p7 = _rt_G_x_7[_j]
                _p8 = _rb_G_h_8[_j]
                b_c = _w_b_c[_j]
                b_d = _w_b_d[_j]
                b_f = _w_b_f[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                c = _rt_seq_c_9[_j]
                c_low = _rt_in_c_low_10[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                w_cd = _w_w_cd[_j]
                w_ld = _w_w_ld[_j]
                i = sigmoid(_p0 + _p1 + b_i + c*p_i)
                f = sigmoid(_p2 + _p3 + b_f + c*p_f)
                d = sigmoid(_p4 + b_d + c*w_cd + c_low*w_ld)
                _e0 = tanh(_p5 + _p6 + b_c)
                c_new = _e0*i + c*f + c_low*d
                o = sigmoid(_p7 + _p8 + b_o + c_new*p_o)
                h_new = o*tanh(c_new)
                _rn_seq_c_11[_j] = c_new
                _rn_seq_h_12[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_seq_c.shape[2]):
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer_owned(_u0, _u1, _P, _barrier, _T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_c, _w_b_d, _w_b_f, _w_b_i, _w_b_o, _seq_c, _in_c_low, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld):
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
    _WT_h: [hidden,4*hidden] [U_i; U_f; U_c; U_o]^T
    _G_h: [B,4*hidden] [U_i; U_f; U_c; U_o] @ h at this step
    _G_x: [rows,5*hidden] [W_i; W_f; W_c; W_o; W_d] @ x at every step, the rows that ran
    _w_b_c: [hidden] param b_c
    _w_b_d: [hidden] param b_d
    _w_b_f: [hidden] param b_f
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _in_c_low: [T,B,hidden] input c_low
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _w_w_cd: [hidden] param w_cd
    _w_w_ld: [hidden] param w_ld

    Values the compiler named:
    _e0 = (tanh((U_c @ h) + (W_c @ x) + b_c))
    _p0 = W_i @ x
    _p1 = U_i @ h
    _p2 = W_f @ x
    _p3 = U_f @ h
    _p4 = W_d @ x
    _p5 = W_c @ x
    _p6 = U_c @ h
    _p7 = W_o @ x
    _p8 = U_o @ h
    """
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h[:, _u0:_u1], _G_h[:_nb, _u0:_u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, _n_hidden + _u0:_n_hidden + _u1], _G_h[:_nb, _n_hidden + _u0:_n_hidden + _u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, 2*_n_hidden + _u0:2*_n_hidden + _u1], _G_h[:_nb, 2*_n_hidden + _u0:2*_n_hidden + _u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, 3*_n_hidden + _u0:3*_n_hidden + _u1], _G_h[:_nb, 3*_n_hidden + _u0:3*_n_hidden + _u1])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, _u0:_u1]
            _rb_G_h_1 = _G_h[_b, _u0:_u1]
            _rt_G_x_2 = _G_x[_o + _b, _n_hidden + _u0:_n_hidden + _u1]
            _rb_G_h_3 = _G_h[_b, _n_hidden + _u0:_n_hidden + _u1]
            _rt_G_x_4 = _G_x[_o + _b, 4*_n_hidden + _u0:4*_n_hidden + _u1]
            _rt_G_x_5 = _G_x[_o + _b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rb_G_h_6 = _G_h[_b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rt_G_x_7 = _G_x[_o + _b, 3*_n_hidden + _u0:3*_n_hidden + _u1]
            _rb_G_h_8 = _G_h[_b, 3*_n_hidden + _u0:3*_n_hidden + _u1]
            _ru_w_b_c_9 = _w_b_c[_u0:_u1]
            _ru_w_b_d_10 = _w_b_d[_u0:_u1]
            _ru_w_b_f_11 = _w_b_f[_u0:_u1]
            _ru_w_b_i_12 = _w_b_i[_u0:_u1]
            _ru_w_b_o_13 = _w_b_o[_u0:_u1]
            _rt_seq_c_14 = _seq_c[_t, _b, _u0:_u1]
            _rt_in_c_low_15 = _in_c_low[_t, _b, _u0:_u1]
            _ru_w_p_f_16 = _w_p_f[_u0:_u1]
            _ru_w_p_i_17 = _w_p_i[_u0:_u1]
            _ru_w_p_o_18 = _w_p_o[_u0:_u1]
            _ru_w_w_cd_19 = _w_w_cd[_u0:_u1]
            _ru_w_w_ld_20 = _w_w_ld[_u0:_u1]
            _rn_seq_c_21 = _seq_c[_t + 1, _b, _u0:_u1]
            _rn_seq_h_22 = _seq_h[_t + 1, _b, _u0:_u1]
            for _j in range(_u1 - _u0):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rt_G_x_5[_j]
                _p6 = _rb_G_h_6[_j]
                _p7 = _rt_G_x_7[_j]
                _p8 = _rb_G_h_8[_j]
                b_c = _ru_w_b_c_9[_j]
                b_d = _ru_w_b_d_10[_j]
                b_f = _ru_w_b_f_11[_j]
                b_i = _ru_w_b_i_12[_j]
                b_o = _ru_w_b_o_13[_j]
                c = _rt_seq_c_14[_j]
                c_low = _rt_in_c_low_15[_j]
                p_f = _ru_w_p_f_16[_j]
                p_i = _ru_w_p_i_17[_j]
                p_o = _ru_w_p_o_18[_j]
                w_cd = _ru_w_w_cd_19[_j]
                w_ld = _ru_w_w_ld_20[_j]
                i = sigmoid(_p0 + _p1 + b_i + c*p_i)
                f = sigmoid(_p2 + _p3 + b_f + c*p_f)
                d = sigmoid(_p4 + b_d + c*w_cd + c_low*w_ld)
                _e0 = tanh(_p5 + _p6 + b_c)
                c_new = _e0*i + c*f + c_low*d
                o = sigmoid(_p7 + _p8 + b_o + c_new*p_o)
                h_new = o*tanh(c_new)
                _rn_seq_c_21[_j] = c_new
                _rn_seq_h_22[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_u0, _u1):
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb
        meet(_barrier, _P * (_t + 1))


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _B, _n_hidden, _active, _all__e0, _seq_c, _in_c_low, _all_d, _all_f, _all_i, _all_o, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld, _dcarry_h, _dy_h_new, _dcarry_c, _dG_x, _acc_p_o, _d_c, _d_c_low, _acc_w_cd, _acc_w_ld, _acc_p_f, _acc_p_i, _W_h, _dgemm_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _all__e0: [T,B,hidden] (tanh((U_c @ h) + (W_c @ x) + b_c)) at every step
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _in_c_low: [T,B,hidden] input c_low
    _all_d: [T,B,hidden] d at every step
    _all_f: [T,B,hidden] f at every step
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _w_w_cd: [hidden] param w_cd
    _w_w_ld: [hidden] param w_ld
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _dG_x: [rows,5*hidden] the gradient of [W_i @ x; W_f @ x; W_c @ x; W_o @ x; W_d @ x] and [U_i @ h; U_f @ h; U_c @ h; U_o @ h] (their equal blocks once, as two column windows) at every step, the rows that ran
    _acc_p_o: [hidden] the gradient of p_o, summed in float64
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _d_c_low: [T,B,hidden] the gradient of c_low from its users in other fused loops, every step
    _acc_w_cd: [hidden] the gradient of w_cd, summed in float64
    _acc_w_ld: [hidden] the gradient of w_ld, summed in float64
    _acc_p_f: [hidden] the gradient of p_f, summed in float64
    _acc_p_i: [hidden] the gradient of p_i, summed in float64
    _W_h: [4*hidden,hidden] [U_i; U_f; U_c; U_o]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U_i; U_f; U_c; U_o]^T @ theirs

    Values the compiler named:
    _e0 = (tanh((U_c @ h) + (W_c @ x) + b_c))
    """
    _F = _all__e0.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_all__e0_0 = _all__e0[_t, _b]
            _rt_seq_c_1 = _seq_c[_t, _b]
            _rt_in_c_low_2 = _in_c_low[_t, _b]
            _rn_seq_c_3 = _seq_c[_t + 1, _b]
            _rt_all_d_4 = _all_d[_t, _b]
            _rt_all_f_5 = _all_f[_t, _b]
            _rt_all_i_6 = _all_i[_t, _b]
            _rt_all_o_7 = _all_o[_t, _b]
            _rb_dcarry_h_8 = _dcarry_h[_b]
            _rt_dy_h_new_9 = _dy_h_new[_o + _b]
            _rb_dcarry_c_10 = _dcarry_c[_b]
            _rt_dG_x_11 = _dG_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_d_c_12 = _d_c[_b]
            _rt_d_c_low_13 = _d_c_low[_t, _b]
            _rt_dG_x_14 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_x_15 = _dG_x[_o + _b, 4*_n_hidden:5*_n_hidden]
            _rt_dG_x_16 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_17 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                _e0 = _rt_all__e0_0[_j]
                c = _rt_seq_c_1[_j]
                c_low = _rt_in_c_low_2[_j]
                c_new = _rn_seq_c_3[_j]
                d = _rt_all_d_4[_j]
                f = _rt_all_f_5[_j]
                i = _rt_all_i_6[_j]
                o = _rt_all_o_7[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                w_cd = _w_w_cd[_j]
                w_ld = _w_w_ld[_j]
                _c0 = i*(_F(1.0) - i)
                _c1 = f*(_F(1.0) - f)
                _c2 = d*(_F(1.0) - d)
                _c3 = _F(1.0) - _e0**2
                _c4 = o*(_F(1.0) - o)
                _c5 = tanh(c_new)
                d_h_new = _rb_dcarry_h_8[_j] + _rt_dy_h_new_9[_j]
                d_o = _c5*d_h_new
                d_c_new = _rb_dcarry_c_10[_j] + _c4*d_o*p_o + d_h_new*o*(_F(1.0) - _c5**2)
                d__e0 = d_c_new*i
                d_d = c_low*d_c_new
                d_f = c*d_c_new
                d_i = _e0*d_c_new
                _rt_dG_x_11[_j] = _c4*d_o
                _acc_p_o[_j] += _c4*c_new*d_o
                _rb_d_c_12[_j] = _c0*d_i*p_i + _c1*d_f*p_f + _c2*d_d*w_cd + d_c_new*f
                _rt_d_c_low_13[_j] = _c2*d_d*w_ld + d*d_c_new
                _rt_dG_x_14[_j] = _c3*d__e0
                _rt_dG_x_15[_j] = _c2*d_d
                _acc_w_cd[_j] += _c2*c*d_d
                _acc_w_ld[_j] += _c2*c_low*d_d
                _rt_dG_x_16[_j] = _c1*d_f
                _acc_p_f[_j] += _c1*c*d_f
                _rt_dG_x_17[_j] = _c0*d_i
                _acc_p_i[_j] += _c0*c*d_i
        matmul(_dG_x[_o:_o + _nb, 0:4*_n_hidden], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb, _B):
            for _j in range(_d_c_low.shape[2]):
                _d_c_low[_t, _b, _j] = 0.0
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
                _dcarry_c[_b, _j] = _d_c[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_hidden, _active, _all__e0, _seq_c, _in_c_low, _all_d, _all_f, _all_i, _all_o, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld, _dcarry_h, _dy_h_new, _dcarry_c, _dG_x, _acc_p_o, _d_c, _d_c_low, _acc_w_cd, _acc_w_ld, _acc_p_f, _acc_p_i, _W_h, _dgemm_h, _dseq_h, _dseq_c):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _all__e0: [T,B,hidden] (tanh((U_c @ h) + (W_c @ x) + b_c)) at every step
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _in_c_low: [T,B,hidden] input c_low
    _all_d: [T,B,hidden] d at every step
    _all_f: [T,B,hidden] f at every step
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _w_w_cd: [hidden] param w_cd
    _w_w_ld: [hidden] param w_ld
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _dG_x: [rows,5*hidden] the gradient of [W_i @ x; W_f @ x; W_c @ x; W_o @ x; W_d @ x] and [U_i @ h; U_f @ h; U_c @ h; U_o @ h] (their equal blocks once, as two column windows) at every step, the rows that ran
    _acc_p_o: [hidden] the gradient of p_o, summed in float64
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _d_c_low: [T,B,hidden] the gradient of c_low from its users in other fused loops, every step
    _acc_w_cd: [hidden] the gradient of w_cd, summed in float64
    _acc_w_ld: [hidden] the gradient of w_ld, summed in float64
    _acc_p_f: [hidden] the gradient of p_f, summed in float64
    _acc_p_i: [hidden] the gradient of p_i, summed in float64
    _W_h: [4*hidden,hidden] [U_i; U_f; U_c; U_o]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U_i; U_f; U_c; U_o]^T @ theirs
    _dseq_h: [T,B,hidden] the gradient of state h after every step from a layer above that reads it
    _dseq_c: [T,B,hidden] the gradient of state c after every step from a layer above that reads it

    Values the compiler named:
    _e0 = (tanh((U_c @ h) + (W_c @ x) + b_c))
    """
    _F = _all__e0.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_all__e0_0 = _all__e0[_t, _b]
            _rt_seq_c_1 = _seq_c[_t, _b]
            _rt_in_c_low_2 = _in_c_low[_t, _b]
            _rn_seq_c_3 = _seq_c[_t + 1, _b]
            _rt_all_d_4 = _all_d[_t, _b]
            _rt_all_f_5 = _all_f[_t, _b]
            _rt_all_i_6 = _all_i[_t, _b]
            _rt_all_o_7 = _all_o[_t, _b]
            _rb_dcarry_h_8 = _dcarry_h[_b]
            _rt_dy_h_new_9 = _dy_h_new[_o + _b]
            _rb_dcarry_c_10 = _dcarry_c[_b]
            _rt_dG_x_11 = _dG_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_d_c_12 = _d_c[_b]
            _rt_d_c_low_13 = _d_c_low[_t, _b]
            _rt_dG_x_14 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_x_15 = _dG_x[_o + _b, 4*_n_hidden:5*_n_hidden]
            _rt_dG_x_16 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_17 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                _e0 = _rt_all__e0_0[_j]
                c = _rt_seq_c_1[_j]
                c_low = _rt_in_c_low_2[_j]
                c_new = _rn_seq_c_3[_j]
                d = _rt_all_d_4[_j]
                f = _rt_all_f_5[_j]
                i = _rt_all_i_6[_j]
                o = _rt_all_o_7[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                w_cd = _w_w_cd[_j]
                w_ld = _w_w_ld[_j]
                _c0 = i*(_F(1.0) - i)
                _c1 = f*(_F(1.0) - f)
                _c2 = d*(_F(1.0) - d)
                _c3 = _F(1.0) - _e0**2
                _c4 = o*(_F(1.0) - o)
                _c5 = tanh(c_new)
                d_h_new = _rb_dcarry_h_8[_j] + _rt_dy_h_new_9[_j]
                d_o = _c5*d_h_new
                d_c_new = _rb_dcarry_c_10[_j] + _c4*d_o*p_o + d_h_new*o*(_F(1.0) - _c5**2)
                d__e0 = d_c_new*i
                d_d = c_low*d_c_new
                d_f = c*d_c_new
                d_i = _e0*d_c_new
                _rt_dG_x_11[_j] = _c4*d_o
                _acc_p_o[_j] += _c4*c_new*d_o
                _rb_d_c_12[_j] = _c0*d_i*p_i + _c1*d_f*p_f + _c2*d_d*w_cd + d_c_new*f
                _rt_d_c_low_13[_j] = _c2*d_d*w_ld + d*d_c_new
                _rt_dG_x_14[_j] = _c3*d__e0
                _rt_dG_x_15[_j] = _c2*d_d
                _acc_w_cd[_j] += _c2*c*d_d
                _acc_w_ld[_j] += _c2*c_low*d_d
                _rt_dG_x_16[_j] = _c1*d_f
                _acc_p_f[_j] += _c1*c*d_f
                _rt_dG_x_17[_j] = _c0*d_i
                _acc_p_i[_j] += _c0*c*d_i
        matmul(_dG_x[_o:_o + _nb, 0:4*_n_hidden], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb, _B):
            for _j in range(_d_c_low.shape[2]):
                _d_c_low[_t, _b, _j] = 0.0
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
    NAME = 'lstm_depth_gated'
    SPEC_SHA256 = 'a15872be6c8677ac7db0e51ecbabf8f1b806093806454ceb7e0de8c8c3e03ffd'
    DIMS = ['input', 'hidden']
    INPUTS = [('x', 'input'), ('c_low', 'hidden')]
    STATES = [('h', 'hidden'), ('c', 'hidden')]
    OUTPUTS = [('h_new', 'hidden')]
    CONSTRAINTS = []
    CONSTANTS = []
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = []
    PARAMS = [('W_i', ('hidden', 'input')), ('W_f', ('hidden', 'input')), ('W_c', ('hidden', 'input')), ('W_o', ('hidden', 'input')), ('W_d', ('hidden', 'input')), ('U_i', ('hidden', 'hidden')), ('U_f', ('hidden', 'hidden')), ('U_c', ('hidden', 'hidden')), ('U_o', ('hidden', 'hidden')), ('p_i', ('hidden',)), ('p_f', ('hidden',)), ('p_o', ('hidden',)), ('w_cd', ('hidden',)), ('w_ld', ('hidden',)), ('b_i', ('hidden',)), ('b_f', ('hidden',)), ('b_c', ('hidden',)), ('b_o', ('hidden',)), ('b_d', ('hidden',))]
    MASKS = []
    INITS = [
        ('W_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_c', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_d', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_c', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('w_cd', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('w_ld', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_c', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_d', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,hidden]'), ('_seq_c', 'states', 'c', '[T+1,B,hidden]'), ('_all_i', 'values', 'i', '[T,B,hidden]'), ('_all_f', 'values', 'f', '[T,B,hidden]'), ('_all_d', 'values', 'd', '[T,B,hidden]'), ('_all__e0', 'values', '_e0', '[T,B,hidden]'), ('_all_o', 'values', 'o', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[5*hidden,input]'), ('_W_h', 'weights', 'h', '[4*hidden,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['p_i', 'p_f', 'p_o', 'w_cd', 'w_ld', 'b_i', 'b_f', 'b_c', 'b_o', 'b_d']
    TRANSCENDENTALS = [('hidden', 6)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ('x',)
    # the outputs whose gradient the backward pass takes as its packed rows ([rows, n])
    PACKED_DY = ('h_new',)
    # the layout of the torch.nn module this cell is (cellspec.torch_layout), or None
    TORCH = None
    # the dim a step kernel that keeps its weights splits over threads, and the recurrent weights
    # it reads ([operand dim, blocks of dim] each), or None (cellspec.owned)
    OWNED = {'dim': 'hidden', 'weights': [('hidden', 4)]}

    def _forward(self, inputs, state, tape, _active):
        _dtype = self.dtype
        _params = self.params
        _in_x = inputs['x']
        _in_c_low = inputs['c_low']
        _T, _B = _active.shape[0], state['h'].shape[0]
        _n_hidden = self.dims['hidden']
        _w_p_i = _params['p_i']
        _w_p_f = _params['p_f']
        _w_p_o = _params['p_o']
        _w_w_cd = _params['w_cd']
        _w_w_ld = _params['w_ld']
        _w_b_i = _params['b_i']
        _w_b_f = _params['b_f']
        _w_b_c = _params['b_c']
        _w_b_o = _params['b_o']
        _w_b_d = _params['b_d']
        _W_x = np.concatenate((_params['W_i'], _params['W_f'], _params['W_c'], _params['W_o'], _params['W_d'],))
        _W_h = np.concatenate((_params['U_i'], _params['U_f'], _params['U_c'], _params['U_o'],))
        _WT_h = step_operand(_W_h.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _seq_c = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G_h = np.empty((_B, 4*_n_hidden), _dtype)
        _all_i = np.empty((_T, _B, _n_hidden), _dtype)
        _all_f = np.empty((_T, _B, _n_hidden), _dtype)
        _all_d = np.empty((_T, _B, _n_hidden), _dtype)
        _all__e0 = np.empty((_T, _B, _n_hidden), _dtype)
        _all_o = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _seq_c[0] = state['c']
        _G_x = dot(_in_x, _W_x.T)
        if tape:
            _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_c, _w_b_d, _w_b_f, _w_b_i, _w_b_o, _seq_c, _in_c_low, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld, _all_i, _all_f, _all_d, _all__e0, _all_o)
        elif self.owned_units is not None:
            runtime.owned_steps(_loop_infer_owned, self.owned_units, (_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_c, _w_b_d, _w_b_f, _w_b_i, _w_b_o, _seq_c, _in_c_low, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld,))
        else:
            _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_c, _w_b_d, _w_b_f, _w_b_i, _w_b_o, _seq_c, _in_c_low, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld)
        _y = {'h_new': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy(), 'c': _seq_c[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_seq_c': _seq_c, '_all_i': _all_i, '_all_f': _all_f, '_all_d': _all_d, '_all__e0': _all__e0, '_all_o': _all_o, '_W_x': _W_x, '_W_h': _W_h} if tape else None
        return _y, _final, _tape

    def _backward(self, tape, dy, dstate, dseq, dseq_given):
        _dtype = self.dtype
        _params = tape.params
        _T, _B = tape.T, tape.B
        _active = tape.active
        _rows = runtime.Rows(_active, _T, _B)
        _n_hidden = self.dims['hidden']
        _in_x = tape.inputs['x']
        _in_c_low = tape.inputs['c_low']
        _w_p_i = _params['p_i']
        _w_p_f = _params['p_f']
        _w_p_o = _params['p_o']
        _w_w_cd = _params['w_cd']
        _w_w_ld = _params['w_ld']
        _seq_h = tape.arrays['_seq_h']
        _seq_c = tape.arrays['_seq_c']
        _all_i = tape.arrays['_all_i']
        _all_f = tape.arrays['_all_f']
        _all_d = tape.arrays['_all_d']
        _all__e0 = tape.arrays['_all__e0']
        _all_o = tape.arrays['_all_o']
        _W_x = tape.arrays['_W_x']
        _W_h = tape.arrays['_W_h']
        _W_h = step_operand(_W_h, _B)
        _dy_h_new = dy['h_new']
        _dG_x = np.empty((_rows.count, 5*_n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_hidden), _dtype)
        _d_c_low = np.empty((_T, _B, _n_hidden), _dtype)
        _d_c = np.empty((_B, _n_hidden), _dtype)
        _acc_p_i = np.zeros((_n_hidden,), np.float64)
        _acc_p_f = np.zeros((_n_hidden,), np.float64)
        _acc_p_o = np.zeros((_n_hidden,), np.float64)
        _acc_w_cd = np.zeros((_n_hidden,), np.float64)
        _acc_w_ld = np.zeros((_n_hidden,), np.float64)
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
            _loop_backward_dseq(_T, _B, _n_hidden, _active, _all__e0, _seq_c, _in_c_low, _all_d, _all_f, _all_i, _all_o, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld, _dcarry_h, _dy_h_new, _dcarry_c, _dG_x, _acc_p_o, _d_c, _d_c_low, _acc_w_cd, _acc_w_ld, _acc_p_f, _acc_p_i, _W_h, _dgemm_h, _dseq_h, _dseq_c)
        else:
            _loop_backward(_T, _B, _n_hidden, _active, _all__e0, _seq_c, _in_c_low, _all_d, _all_f, _all_i, _all_o, _w_p_f, _w_p_i, _w_p_o, _w_w_cd, _w_w_ld, _dcarry_h, _dy_h_new, _dcarry_c, _dG_x, _acc_p_o, _d_c, _d_c_low, _acc_w_cd, _acc_w_ld, _acc_p_f, _acc_p_i, _W_h, _dgemm_h)
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_dG_x[:, 0:4*_n_hidden].T, _rows_seq_h)
        _dgemm_x = dot(_dG_x[:, 0:5*_n_hidden], _W_x)
        _dW_x = dot(_dG_x[:, 0:5*_n_hidden].T, _in_x)
        _dbias_x = column_sums(_dG_x, 0, 5*_n_hidden)
        _dparams = {}
        _dparams['W_i'] = _dW_x[0:_n_hidden].copy()
        _dparams['W_f'] = _dW_x[_n_hidden:2*_n_hidden].copy()
        _dparams['W_c'] = _dW_x[2*_n_hidden:3*_n_hidden].copy()
        _dparams['W_o'] = _dW_x[3*_n_hidden:4*_n_hidden].copy()
        _dparams['W_d'] = _dW_x[4*_n_hidden:5*_n_hidden].copy()
        _dparams['U_i'] = _dW_h[0:_n_hidden].copy()
        _dparams['U_f'] = _dW_h[_n_hidden:2*_n_hidden].copy()
        _dparams['U_c'] = _dW_h[2*_n_hidden:3*_n_hidden].copy()
        _dparams['U_o'] = _dW_h[3*_n_hidden:4*_n_hidden].copy()
        _dparams['p_i'] = _acc_p_i.astype(_dtype)
        _dparams['p_f'] = _acc_p_f.astype(_dtype)
        _dparams['p_o'] = _acc_p_o.astype(_dtype)
        _dparams['w_cd'] = _acc_w_cd.astype(_dtype)
        _dparams['w_ld'] = _acc_w_ld.astype(_dtype)
        _dparams['b_i'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dparams['b_f'] = _dbias_x[_n_hidden:2*_n_hidden].astype(_dtype)
        _dparams['b_c'] = _dbias_x[2*_n_hidden:3*_n_hidden].astype(_dtype)
        _dparams['b_o'] = _dbias_x[3*_n_hidden:4*_n_hidden].astype(_dtype)
        _dparams['b_d'] = _dbias_x[4*_n_hidden:5*_n_hidden].astype(_dtype)
        _dinputs = {}
        _dinputs['x'] = _dgemm_x
        _dinputs['c_low'] = _d_c_low
        _dstate = {'h': _dcarry_h, 'c': _dcarry_c}
        return _dinputs, _dparams, _dstate
