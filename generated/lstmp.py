"""lstmp: LSTM with a recurrent projection layer (LSTMP), in the layout of PyTorch's nn.LSTM(proj_size=...)

Generated from specs/lstmp.yaml (sha256 0872da3aa89d1fe8527af685191c6f990045ac86f4f27e8cef9e8323b5cb671d) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Sak, Senior & Beaufays 2014, "Long short-term memory recurrent neural network architectures for large scale acoustic modeling", INTERSPEECH (arXiv:1402.1128): r_t = W_rm m_t, and r_t, not m_t, is fed back to the gates. This spec follows PyTorch's nn.LSTM with proj_size > 0 (documentation of torch.nn.LSTM): h_t = W_hr (o_t * tanh(c_t)), without the peepholes (W_ic, W_fc, W_oc) of Sak et al.'s LSTMP and without their non-recurrent projection p_t and output layer y_t.

Forward, one step (on the right, a state's name means its value at t-1):
    i = sigmoid(W_i @ x + U_i @ h + b_i)
    f = sigmoid(W_f @ x + U_f @ h + b_f)
    g = tanh(W_g @ x + U_g @ h + b_g)
    o = sigmoid(W_o @ x + U_o @ h + b_o)
    c_new = f*c + i*g
    m = o*tanh(c_new)
    h_new = P @ m
    h[t] = h_new
    c[t] = c_new
    y[t] = h_new

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_h_new = d_h[t] + dy[t]
    d(P @ m) = d_h_new*(1)
    d_m = P^T @ d(P @ m)
    d_c_new = d_c[t] + d_m*(o*(1 - tanh(c_new)**2))
    d_o = d_m*(tanh(c_new))
    d(U_o @ h) = d_o*(o*(1 - o))
    d(W_o @ x) = d_o*(o*(1 - o))
    d_g = d_c_new*(i)
    d(U_g @ h) = d_g*(1 - g**2)
    d(W_g @ x) = d_g*(1 - g**2)
    d_f = d_c_new*(c)
    d(U_f @ h) = d_f*(f*(1 - f))
    d(W_f @ x) = d_f*(f*(1 - f))
    d_i = d_c_new*(g)
    d(U_i @ h) = d_i*(i*(1 - i))
    d(W_i @ x) = d_i*(i*(1 - i))
    d_x = W_i^T @ d(W_i @ x) + W_f^T @ d(W_f @ x) + W_g^T @ d(W_g @ x) + W_o^T @ d(W_o @ x)
    d_c[t-1] = d_c_new*(f)
    d_h[t-1] = U_i^T @ d(U_i @ h) + U_f^T @ d(U_f @ h) + U_g^T @ d(U_g @ h) + U_o^T @ d(U_o @ h)
    d_W_i += d(W_i @ x) x^T
    d_W_f += d(W_f @ x) x^T
    d_W_g += d(W_g @ x) x^T
    d_W_o += d(W_o @ x) x^T
    d_U_i += d(U_i @ h) h^T
    d_U_f += d(U_f @ h) h^T
    d_U_g += d(U_g @ h) h^T
    d_U_o += d(U_o @ h) h^T
    d_b_i += d_i*(i*(1 - i))
    d_b_f += d_f*(f*(1 - f))
    d_b_g += d_g*(1 - g**2)
    d_b_o += d_o*(o*(1 - o))
    d_P += d(P @ m) m^T

Schedule:
    before the time loop, over all T*B rows: [W_i; W_f; W_g; W_o] @ x  (one matrix product)
    in the time loop, per step: [U_i; U_f; U_g; U_o] @ h  (one matrix product)
    in the time loop, per step: i, f, g, o, c_new, m  (fused elementwise loop)
    in the time loop, per step: [P] @ m  (one matrix product)
    in the time loop, per step: h_new  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    output h_new: [T,B,proj]
    state h: [B,proj]
    state c: [B,hidden]
    param W_i: [hidden,input], init uniform(1/sqrt(hidden))
    param W_f: [hidden,input], init uniform(1/sqrt(hidden))
    param W_g: [hidden,input], init uniform(1/sqrt(hidden))
    param W_o: [hidden,input], init uniform(1/sqrt(hidden))
    param U_i: [hidden,proj], init uniform(1/sqrt(hidden))
    param U_f: [hidden,proj], init uniform(1/sqrt(hidden))
    param U_g: [hidden,proj], init uniform(1/sqrt(hidden))
    param U_o: [hidden,proj], init uniform(1/sqrt(hidden))
    param b_i: [hidden], init uniform(1/sqrt(hidden))
    param b_f: [hidden], init uniform(1/sqrt(hidden))
    param b_g: [hidden], init uniform(1/sqrt(hidden))
    param b_o: [hidden], init uniform(1/sqrt(hidden))
    param P: [proj,hidden], init uniform(1/sqrt(hidden))
"""

import math

import numba as nb
import numpy as np

from cellspec import runtime
from cellspec.blas import dot, matmul, step_operand
from cellspec.sums import column_sums
from cellspec.fastmath import sigmoid, tanh


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_forward(_T, _B, _n_proj, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_f, _w_b_g, _w_b_i, _w_b_o, _seq_c, _all_i, _all_f, _all_g, _all_o, _all_m, _WT_m, _G_m):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_proj: the size of proj
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,proj] state h: [0] the initial state, [t+1] after step t
    _WT_h: [proj,4*hidden] [U_i; U_f; U_g; U_o]^T
    _G_h: [B,4*hidden] [U_i; U_f; U_g; U_o] @ h at this step
    _G_x: [rows,4*hidden] [W_i; W_f; W_g; W_o] @ x at every step, the rows that ran
    _w_b_f: [hidden] param b_f
    _w_b_g: [hidden] param b_g
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _all_i: [T,B,hidden] i at every step
    _all_f: [T,B,hidden] f at every step
    _all_g: [T,B,hidden] g at every step
    _all_o: [T,B,hidden] o at every step
    _all_m: [T,B,hidden] m at every step
    _WT_m: [hidden,proj] [P]^T
    _G_m: [B,proj] [P] @ m at this step

    Values the compiler named:
    _p0 = W_i @ x
    _p1 = U_i @ h
    _p2 = W_f @ x
    _p3 = U_f @ h
    _p4 = W_g @ x
    _p5 = U_g @ h
    _p6 = W_o @ x
    _p7 = U_o @ h
    _p8 = P @ m
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
            _rt_G_x_4 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_5 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rt_G_x_6 = _G_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_G_h_7 = _G_h[_b, 3*_n_hidden:4*_n_hidden]
            _rt_seq_c_8 = _seq_c[_t, _b]
            _rt_all_i_9 = _all_i[_t, _b]
            _rt_all_f_10 = _all_f[_t, _b]
            _rt_all_g_11 = _all_g[_t, _b]
            _rt_all_o_12 = _all_o[_t, _b]
            _rn_seq_c_13 = _seq_c[_t + 1, _b]
            _rt_all_m_14 = _all_m[_t, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rb_G_h_5[_j]
                _p6 = _rt_G_x_6[_j]
                _p7 = _rb_G_h_7[_j]
                b_f = _w_b_f[_j]
                b_g = _w_b_g[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                c = _rt_seq_c_8[_j]
                i = sigmoid(_p0 + _p1 + b_i)
                f = sigmoid(_p2 + _p3 + b_f)
                g = tanh(_p4 + _p5 + b_g)
                o = sigmoid(_p6 + _p7 + b_o)
                c_new = c*f + g*i
                m = o*tanh(c_new)
                _rt_all_i_9[_j] = i
                _rt_all_f_10[_j] = f
                _rt_all_g_11[_j] = g
                _rt_all_o_12[_j] = o
                _rn_seq_c_13[_j] = c_new
                _rt_all_m_14[_j] = m
        matmul(_all_m[_t, :_nb], _WT_m, _G_m[:_nb])
        for _b in range(_nb):
            _rb_G_m_0 = _G_m[_b]
            _rn_seq_h_1 = _seq_h[_t + 1, _b]
            for _j in range(_n_proj):
                _p8 = _rb_G_m_0[_j]
                h_new = _p8
                _rn_seq_h_1[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all_i.shape[2]):
                _all_i[_t, _b, _j] = 0.0
                _all_f[_t, _b, _j] = 0.0
                _all_g[_t, _b, _j] = 0.0
                _all_o[_t, _b, _j] = 0.0
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _all_m[_t, _b, _j] = 0.0
            for _j in range(_seq_h.shape[2]):
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_proj, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_f, _w_b_g, _w_b_i, _w_b_o, _seq_c, _all_m, _WT_m, _G_m):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_proj: the size of proj
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,proj] state h: [0] the initial state, [t+1] after step t
    _WT_h: [proj,4*hidden] [U_i; U_f; U_g; U_o]^T
    _G_h: [B,4*hidden] [U_i; U_f; U_g; U_o] @ h at this step
    _G_x: [rows,4*hidden] [W_i; W_f; W_g; W_o] @ x at every step, the rows that ran
    _w_b_f: [hidden] param b_f
    _w_b_g: [hidden] param b_g
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _all_m: [T,B,hidden] m at every step
    _WT_m: [hidden,proj] [P]^T
    _G_m: [B,proj] [P] @ m at this step

    Values the compiler named:
    _p0 = W_i @ x
    _p1 = U_i @ h
    _p2 = W_f @ x
    _p3 = U_f @ h
    _p4 = W_g @ x
    _p5 = U_g @ h
    _p6 = W_o @ x
    _p7 = U_o @ h
    _p8 = P @ m
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
            _rt_G_x_4 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_5 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rt_G_x_6 = _G_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_G_h_7 = _G_h[_b, 3*_n_hidden:4*_n_hidden]
            _rt_seq_c_8 = _seq_c[_t, _b]
            _rn_seq_c_9 = _seq_c[_t + 1, _b]
            _rt_all_m_10 = _all_m[_t, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p2 = _rt_G_x_2[_j]
                _p3 = _rb_G_h_3[_j]
                _p4 = _rt_G_x_4[_j]
                _p5 = _rb_G_h_5[_j]
                _p6 = _rt_G_x_6[_j]
                _p7 = _rb_G_h_7[_j]
                b_f = _w_b_f[_j]
                b_g = _w_b_g[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                c = _rt_seq_c_8[_j]
                i = sigmoid(_p0 + _p1 + b_i)
                f = sigmoid(_p2 + _p3 + b_f)
                g = tanh(_p4 + _p5 + b_g)
                o = sigmoid(_p6 + _p7 + b_o)
                c_new = c*f + g*i
                m = o*tanh(c_new)
                _rn_seq_c_9[_j] = c_new
                _rt_all_m_10[_j] = m
        matmul(_all_m[_t, :_nb], _WT_m, _G_m[:_nb])
        for _b in range(_nb):
            _rb_G_m_0 = _G_m[_b]
            _rn_seq_h_1 = _seq_h[_t + 1, _b]
            for _j in range(_n_proj):
                _p8 = _rb_G_m_0[_j]
                h_new = _p8
                _rn_seq_h_1[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_seq_c.shape[2]):
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _all_m[_t, _b, _j] = 0.0
            for _j in range(_seq_h.shape[2]):
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _n_proj, _n_hidden, _active, _dcarry_h, _dy_h_new, _dG_m, _W_m, _dgemm_m, _seq_c, _all_f, _all_g, _all_i, _all_o, _dcarry_c, _d_c, _dG_x, _W_h, _dgemm_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T: the steps
    _n_proj: the size of proj
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _dcarry_h: [B,proj] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,proj] dy: the gradient of output h_new
    _dG_m: [rows,proj] the gradient of [P @ m] at every step, the rows that ran
    _W_m: [proj,hidden] [P]
    _dgemm_m: [B,hidden] the gradient of m through its products, [P]^T @ theirs
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _all_f: [T,B,hidden] f at every step
    _all_g: [T,B,hidden] g at every step
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _dG_x: [rows,4*hidden] the gradient of [W_i @ x; W_f @ x; W_g @ x; W_o @ x] = [U_i @ h; U_f @ h; U_g @ h; U_o @ h] at every step, the rows that ran
    _W_h: [4*hidden,proj] [U_i; U_f; U_g; U_o]
    _dgemm_h: [B,proj] the gradient of h through its products, [U_i; U_f; U_g; U_o]^T @ theirs
    """
    _F = _dcarry_h.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rb_dcarry_h_0 = _dcarry_h[_b]
            _rt_dy_h_new_1 = _dy_h_new[_o + _b]
            _rt_dG_m_2 = _dG_m[_o + _b]
            for _j in range(_n_proj):
                d_h_new = _rb_dcarry_h_0[_j] + _rt_dy_h_new_1[_j]
                _rt_dG_m_2[_j] = d_h_new
        matmul(_dG_m[_o:_o + _nb], _W_m, _dgemm_m[:_nb])
        for _b in range(_nb):
            _rt_seq_c_0 = _seq_c[_t, _b]
            _rn_seq_c_1 = _seq_c[_t + 1, _b]
            _rt_all_f_2 = _all_f[_t, _b]
            _rt_all_g_3 = _all_g[_t, _b]
            _rt_all_i_4 = _all_i[_t, _b]
            _rt_all_o_5 = _all_o[_t, _b]
            _rb_dgemm_m_6 = _dgemm_m[_b]
            _rb_dcarry_c_7 = _dcarry_c[_b]
            _rb_d_c_8 = _d_c[_b]
            _rt_dG_x_9 = _dG_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rt_dG_x_10 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_x_11 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_12 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                c = _rt_seq_c_0[_j]
                c_new = _rn_seq_c_1[_j]
                f = _rt_all_f_2[_j]
                g = _rt_all_g_3[_j]
                i = _rt_all_i_4[_j]
                o = _rt_all_o_5[_j]
                _c0 = i*(_F(1.0) - i)
                _c1 = f*(_F(1.0) - f)
                _c2 = _F(1.0) - g**2
                _c3 = o*(_F(1.0) - o)
                _c4 = tanh(c_new)
                d_m = _rb_dgemm_m_6[_j]
                d_c_new = _rb_dcarry_c_7[_j] + d_m*o*(_F(1.0) - _c4**2)
                d_o = _c4*d_m
                d_g = d_c_new*i
                d_f = c*d_c_new
                d_i = d_c_new*g
                _rb_d_c_8[_j] = d_c_new*f
                _rt_dG_x_9[_j] = _c3*d_o
                _rt_dG_x_10[_j] = _c2*d_g
                _rt_dG_x_11[_j] = _c1*d_f
                _rt_dG_x_12[_j] = _c0*d_i
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb):
            for _j in range(_n_proj):
                _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_c[_b, _j] = _d_c[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_proj, _n_hidden, _active, _dcarry_h, _dy_h_new, _dG_m, _W_m, _dgemm_m, _seq_c, _all_f, _all_g, _all_i, _all_o, _dcarry_c, _d_c, _dG_x, _W_h, _dgemm_h, _dseq_h, _dseq_c):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_proj: the size of proj
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _dcarry_h: [B,proj] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,proj] dy: the gradient of output h_new
    _dG_m: [rows,proj] the gradient of [P @ m] at every step, the rows that ran
    _W_m: [proj,hidden] [P]
    _dgemm_m: [B,hidden] the gradient of m through its products, [P]^T @ theirs
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _all_f: [T,B,hidden] f at every step
    _all_g: [T,B,hidden] g at every step
    _all_i: [T,B,hidden] i at every step
    _all_o: [T,B,hidden] o at every step
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _dG_x: [rows,4*hidden] the gradient of [W_i @ x; W_f @ x; W_g @ x; W_o @ x] = [U_i @ h; U_f @ h; U_g @ h; U_o @ h] at every step, the rows that ran
    _W_h: [4*hidden,proj] [U_i; U_f; U_g; U_o]
    _dgemm_h: [B,proj] the gradient of h through its products, [U_i; U_f; U_g; U_o]^T @ theirs
    _dseq_h: [T,B,proj] the gradient of state h after every step from a layer above that reads it
    _dseq_c: [T,B,hidden] the gradient of state c after every step from a layer above that reads it
    """
    _F = _dcarry_h.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rb_dcarry_h_0 = _dcarry_h[_b]
            _rt_dy_h_new_1 = _dy_h_new[_o + _b]
            _rt_dG_m_2 = _dG_m[_o + _b]
            for _j in range(_n_proj):
                d_h_new = _rb_dcarry_h_0[_j] + _rt_dy_h_new_1[_j]
                _rt_dG_m_2[_j] = d_h_new
        matmul(_dG_m[_o:_o + _nb], _W_m, _dgemm_m[:_nb])
        for _b in range(_nb):
            _rt_seq_c_0 = _seq_c[_t, _b]
            _rn_seq_c_1 = _seq_c[_t + 1, _b]
            _rt_all_f_2 = _all_f[_t, _b]
            _rt_all_g_3 = _all_g[_t, _b]
            _rt_all_i_4 = _all_i[_t, _b]
            _rt_all_o_5 = _all_o[_t, _b]
            _rb_dgemm_m_6 = _dgemm_m[_b]
            _rb_dcarry_c_7 = _dcarry_c[_b]
            _rb_d_c_8 = _d_c[_b]
            _rt_dG_x_9 = _dG_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rt_dG_x_10 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_x_11 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_12 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                c = _rt_seq_c_0[_j]
                c_new = _rn_seq_c_1[_j]
                f = _rt_all_f_2[_j]
                g = _rt_all_g_3[_j]
                i = _rt_all_i_4[_j]
                o = _rt_all_o_5[_j]
                _c0 = i*(_F(1.0) - i)
                _c1 = f*(_F(1.0) - f)
                _c2 = _F(1.0) - g**2
                _c3 = o*(_F(1.0) - o)
                _c4 = tanh(c_new)
                d_m = _rb_dgemm_m_6[_j]
                d_c_new = _rb_dcarry_c_7[_j] + d_m*o*(_F(1.0) - _c4**2)
                d_o = _c4*d_m
                d_g = d_c_new*i
                d_f = c*d_c_new
                d_i = d_c_new*g
                _rb_d_c_8[_j] = d_c_new*f
                _rt_dG_x_9[_j] = _c3*d_o
                _rt_dG_x_10[_j] = _c2*d_g
                _rt_dG_x_11[_j] = _c1*d_f
                _rt_dG_x_12[_j] = _c0*d_i
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        if _t > 0:
            for _b in range(_nb):
                for _j in range(_n_proj):
                    _dcarry_h[_b, _j] = _dgemm_h[_b, _j] + _dseq_h[_t - 1, _b, _j]
            for _b in range(_nb, _B):
                for _j in range(_n_proj):
                    _dcarry_h[_b, _j] += _dseq_h[_t - 1, _b, _j]
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_c[_b, _j] = _d_c[_b, _j] + _dseq_c[_t - 1, _b, _j]
            for _b in range(_nb, _B):
                for _j in range(_n_hidden):
                    _dcarry_c[_b, _j] += _dseq_c[_t - 1, _b, _j]
        else:
            for _b in range(_nb):
                for _j in range(_n_proj):
                    _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_c[_b, _j] = _d_c[_b, _j]


class Cell(runtime.CellBase):
    NAME = 'lstmp'
    SPEC_SHA256 = '0872da3aa89d1fe8527af685191c6f990045ac86f4f27e8cef9e8323b5cb671d'
    DIMS = ['input', 'proj', 'hidden']
    INPUTS = [('x', 'input')]
    STATES = [('h', 'proj'), ('c', 'hidden')]
    OUTPUTS = [('h_new', 'proj')]
    CONSTRAINTS = []
    CONSTANTS = []
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = []
    PARAMS = [('W_i', ('hidden', 'input')), ('W_f', ('hidden', 'input')), ('W_g', ('hidden', 'input')), ('W_o', ('hidden', 'input')), ('U_i', ('hidden', 'proj')), ('U_f', ('hidden', 'proj')), ('U_g', ('hidden', 'proj')), ('U_o', ('hidden', 'proj')), ('b_i', ('hidden',)), ('b_f', ('hidden',)), ('b_g', ('hidden',)), ('b_o', ('hidden',)), ('P', ('proj', 'hidden'))]
    MASKS = []
    INITS = [
        ('W_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_g', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_g', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_g', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('P', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,proj]'), ('_seq_c', 'states', 'c', '[T+1,B,hidden]'), ('_all_i', 'values', 'i', '[T,B,hidden]'), ('_all_f', 'values', 'f', '[T,B,hidden]'), ('_all_g', 'values', 'g', '[T,B,hidden]'), ('_all_o', 'values', 'o', '[T,B,hidden]'), ('_all_m', 'values', 'm', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[4*hidden,input]'), ('_W_h', 'weights', 'h', '[4*hidden,proj]'), ('_W_m', 'weights', 'm', '[proj,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['b_i', 'b_f', 'b_g', 'b_o', 'P']
    TRANSCENDENTALS = [('hidden', 5)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ('x',)
    # the outputs whose gradient the backward pass takes as its packed rows ([rows, n])
    PACKED_DY = ('h_new',)
    # the layout of the torch.nn module this cell is (cellspec.torch_layout), or None
    TORCH = {'module': 'LSTM', 'state': ['h', 'c'], 'weight_ih': ['W_i', 'W_f', 'W_g', 'W_o'], 'weight_hh': ['U_i', 'U_f', 'U_g', 'U_o'], 'bias_ih': ['b_i', 'b_f', 'b_g', 'b_o'], 'bias_hh': ['b_i', 'b_f', 'b_g', 'b_o'], 'weight_hr': ['P']}
    # the dim a step kernel that keeps its weights splits over threads, and the recurrent weights
    # it reads ([operand dim, blocks of dim] each), or None (cellspec.owned)
    OWNED = None

    def _forward(self, inputs, state, tape, _active):
        _dtype = self.dtype
        _params = self.params
        _in_x = inputs['x']
        _T, _B = _active.shape[0], state['h'].shape[0]
        _n_proj = self.dims['proj']
        _n_hidden = self.dims['hidden']
        _w_b_i = _params['b_i']
        _w_b_f = _params['b_f']
        _w_b_g = _params['b_g']
        _w_b_o = _params['b_o']
        _W_x = np.concatenate((_params['W_i'], _params['W_f'], _params['W_g'], _params['W_o'],))
        _W_h = np.concatenate((_params['U_i'], _params['U_f'], _params['U_g'], _params['U_o'],))
        _WT_h = step_operand(_W_h.T, _B)
        _W_m = _params['P']
        _WT_m = step_operand(_W_m.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_proj), _dtype)
        _seq_c = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G_h = np.empty((_B, 4*_n_hidden), _dtype)
        _G_m = np.empty((_B, _n_proj), _dtype)
        _all_i = np.empty((_T, _B, _n_hidden), _dtype)
        _all_f = np.empty((_T, _B, _n_hidden), _dtype)
        _all_g = np.empty((_T, _B, _n_hidden), _dtype)
        _all_o = np.empty((_T, _B, _n_hidden), _dtype)
        _all_m = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _seq_c[0] = state['c']
        _G_x = dot(_in_x, _W_x.T)
        if tape:
            _loop_forward(_T, _B, _n_proj, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_f, _w_b_g, _w_b_i, _w_b_o, _seq_c, _all_i, _all_f, _all_g, _all_o, _all_m, _WT_m, _G_m)
        else:
            _loop_infer(_T, _B, _n_proj, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_f, _w_b_g, _w_b_i, _w_b_o, _seq_c, _all_m, _WT_m, _G_m)
        _y = {'h_new': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy(), 'c': _seq_c[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_seq_c': _seq_c, '_all_i': _all_i, '_all_f': _all_f, '_all_g': _all_g, '_all_o': _all_o, '_all_m': _all_m, '_W_x': _W_x, '_W_h': _W_h, '_W_m': _W_m} if tape else None
        return _y, _final, _tape

    def _backward(self, tape, dy, dstate, dseq, dseq_given):
        _dtype = self.dtype
        _T, _B = tape.T, tape.B
        _active = tape.active
        _rows = runtime.Rows(_active, _T, _B)
        _n_proj = self.dims['proj']
        _n_hidden = self.dims['hidden']
        _in_x = tape.inputs['x']
        _seq_h = tape.arrays['_seq_h']
        _seq_c = tape.arrays['_seq_c']
        _all_i = tape.arrays['_all_i']
        _all_f = tape.arrays['_all_f']
        _all_g = tape.arrays['_all_g']
        _all_o = tape.arrays['_all_o']
        _all_m = tape.arrays['_all_m']
        _W_x = tape.arrays['_W_x']
        _W_h = tape.arrays['_W_h']
        _W_m = tape.arrays['_W_m']
        _W_h = step_operand(_W_h, _B)
        _W_m = step_operand(_W_m, _B)
        _dy_h_new = dy['h_new']
        _dG_x = np.empty((_rows.count, 4*_n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_proj), _dtype)
        _dG_m = np.empty((_rows.count, _n_proj), _dtype)
        _dgemm_m = np.empty((_B, _n_hidden), _dtype)
        _d_c = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h = np.empty((_B, _n_proj), _dtype)
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
            _loop_backward_dseq(_T, _B, _n_proj, _n_hidden, _active, _dcarry_h, _dy_h_new, _dG_m, _W_m, _dgemm_m, _seq_c, _all_f, _all_g, _all_i, _all_o, _dcarry_c, _d_c, _dG_x, _W_h, _dgemm_h, _dseq_h, _dseq_c)
        else:
            _loop_backward(_T, _n_proj, _n_hidden, _active, _dcarry_h, _dy_h_new, _dG_m, _W_m, _dgemm_m, _seq_c, _all_f, _all_g, _all_i, _all_o, _dcarry_c, _d_c, _dG_x, _W_h, _dgemm_h)
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_dG_x.T, _rows_seq_h)
        _rows_all_m = _rows.pack(_all_m)
        _dW_m = dot(_dG_m.T, _rows_all_m)
        _dgemm_x = dot(_dG_x, _W_x)
        _dW_x = dot(_dG_x.T, _in_x)
        _dbias_x = column_sums(_dG_x, 0, 4*_n_hidden)
        _dparams = {}
        _dparams['W_i'] = _dW_x[0:_n_hidden].copy()
        _dparams['W_f'] = _dW_x[_n_hidden:2*_n_hidden].copy()
        _dparams['W_g'] = _dW_x[2*_n_hidden:3*_n_hidden].copy()
        _dparams['W_o'] = _dW_x[3*_n_hidden:4*_n_hidden].copy()
        _dparams['U_i'] = _dW_h[0:_n_hidden].copy()
        _dparams['U_f'] = _dW_h[_n_hidden:2*_n_hidden].copy()
        _dparams['U_g'] = _dW_h[2*_n_hidden:3*_n_hidden].copy()
        _dparams['U_o'] = _dW_h[3*_n_hidden:4*_n_hidden].copy()
        _dparams['b_i'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dparams['b_f'] = _dbias_x[_n_hidden:2*_n_hidden].astype(_dtype)
        _dparams['b_g'] = _dbias_x[2*_n_hidden:3*_n_hidden].astype(_dtype)
        _dparams['b_o'] = _dbias_x[3*_n_hidden:4*_n_hidden].astype(_dtype)
        _dparams['P'] = _dW_m[0:_n_proj].copy()
        _dinputs = {}
        _dinputs['x'] = _dgemm_x
        _dstate = {'h': _dcarry_h, 'c': _dcarry_c}
        return _dinputs, _dparams, _dstate
