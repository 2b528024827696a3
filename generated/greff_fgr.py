"""greff_fgr: Greff et al.'s LSTM variant FGR, full gate recurrence (nine gate-to-gate recurrent matrices)

Generated from specs/greff_fgr.yaml (sha256 f646d44e7fbc4a2bd35c461d3c368b8fa9d32aaca403feccd162469faf04605e) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber 2017, "LSTM: A search space odyssey", IEEE TNNLS 28(10), arXiv 1503.04069, Section III, variant FGR (full gate recurrence, after the original 1997 LSTM): the vanilla LSTM of Section II whose gate pre-activations each add the previous step's gate activations, in the paper's names i_bar += R_ii i[t-1] + R_fi f[t-1] + R_oi o[t-1], f_bar += R_if i[t-1] + R_ff f[t-1] + R_of o[t-1], o_bar += R_io i[t-1] + R_fo f[t-1] + R_oo o[t-1] (R_ab carries gate a at t-1 into gate b), so i, f and o are states (zero unless given). The additions are inside the sigmoids and leave V's peepholes as they are: input and forget gates on c[t-1], the output gate on the new c[t]. g = h = tanh. The paper's block output y[t-1] is the state h here.

Forward, one step (on the right, a state's name means its value at t-1):
    z = tanh(W_z @ x + R_z @ h + b_z)
    i_new = sigmoid(W_i @ x + R_i @ h + p_i*c + b_i + R_ii @ i + R_fi @ f + R_oi @ o)
    f_new = sigmoid(W_f @ x + R_f @ h + p_f*c + b_f + R_if @ i + R_ff @ f + R_of @ o)
    c_new = z*i_new + c*f_new
    o_new = sigmoid(W_o @ x + R_o @ h + p_o*c_new + b_o + R_io @ i + R_fo @ f + R_oo @ o)
    y = tanh(c_new)*o_new
    h[t] = y
    c[t] = c_new
    i[t] = i_new
    f[t] = f_new
    o[t] = o_new
    y[t] = y

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_y = d_h[t] + dy[t]
    d_o_new = d_o[t] + d_y*(tanh(c_new))
    d(R_oo @ o) = d_o_new*(o_new*(1 - o_new))
    d(R_fo @ f) = d_o_new*(o_new*(1 - o_new))
    d(R_io @ i) = d_o_new*(o_new*(1 - o_new))
    d(R_o @ h) = d_o_new*(o_new*(1 - o_new))
    d(W_o @ x) = d_o_new*(o_new*(1 - o_new))
    d_c_new = d_c[t] + d_o_new*(o_new*p_o*(1 - o_new)) + d_y*(o_new*(1 - tanh(c_new)**2))
    d_f_new = d_f[t] + d_c_new*(c)
    d(R_of @ o) = d_f_new*(f_new*(1 - f_new))
    d(R_ff @ f) = d_f_new*(f_new*(1 - f_new))
    d(R_if @ i) = d_f_new*(f_new*(1 - f_new))
    d(R_f @ h) = d_f_new*(f_new*(1 - f_new))
    d(W_f @ x) = d_f_new*(f_new*(1 - f_new))
    d_i_new = d_i[t] + d_c_new*(z)
    d(R_oi @ o) = d_i_new*(i_new*(1 - i_new))
    d(R_fi @ f) = d_i_new*(i_new*(1 - i_new))
    d(R_ii @ i) = d_i_new*(i_new*(1 - i_new))
    d(R_i @ h) = d_i_new*(i_new*(1 - i_new))
    d(W_i @ x) = d_i_new*(i_new*(1 - i_new))
    d_z = d_c_new*(i_new)
    d(R_z @ h) = d_z*(1 - z**2)
    d(W_z @ x) = d_z*(1 - z**2)
    d_x = W_z^T @ d(W_z @ x) + W_i^T @ d(W_i @ x) + W_f^T @ d(W_f @ x) + W_o^T @ d(W_o @ x)
    d_o[t-1] = R_oi^T @ d(R_oi @ o) + R_of^T @ d(R_of @ o) + R_oo^T @ d(R_oo @ o)
    d_f[t-1] = R_fi^T @ d(R_fi @ f) + R_ff^T @ d(R_ff @ f) + R_fo^T @ d(R_fo @ f)
    d_i[t-1] = R_ii^T @ d(R_ii @ i) + R_if^T @ d(R_if @ i) + R_io^T @ d(R_io @ i)
    d_c[t-1] = d_i_new*(i_new*p_i*(1 - i_new)) + d_f_new*(f_new*p_f*(1 - f_new)) + d_c_new*(f_new)
    d_h[t-1] = R_z^T @ d(R_z @ h) + R_i^T @ d(R_i @ h) + R_f^T @ d(R_f @ h) + R_o^T @ d(R_o @ h)
    d_W_z += d(W_z @ x) x^T
    d_W_i += d(W_i @ x) x^T
    d_W_f += d(W_f @ x) x^T
    d_W_o += d(W_o @ x) x^T
    d_R_z += d(R_z @ h) h^T
    d_R_i += d(R_i @ h) h^T
    d_R_f += d(R_f @ h) h^T
    d_R_o += d(R_o @ h) h^T
    d_p_i += d_i_new*(c*i_new*(1 - i_new))
    d_p_f += d_f_new*(c*f_new*(1 - f_new))
    d_p_o += d_o_new*(c_new*o_new*(1 - o_new))
    d_b_z += d_z*(1 - z**2)
    d_b_i += d_i_new*(i_new*(1 - i_new))
    d_b_f += d_f_new*(f_new*(1 - f_new))
    d_b_o += d_o_new*(o_new*(1 - o_new))
    d_R_ii += d(R_ii @ i) i^T
    d_R_fi += d(R_fi @ f) f^T
    d_R_oi += d(R_oi @ o) o^T
    d_R_if += d(R_if @ i) i^T
    d_R_ff += d(R_ff @ f) f^T
    d_R_of += d(R_of @ o) o^T
    d_R_io += d(R_io @ i) i^T
    d_R_fo += d(R_fo @ f) f^T
    d_R_oo += d(R_oo @ o) o^T

Schedule:
    before the time loop, over all T*B rows: [W_z; W_i; W_f; W_o] @ x  (one matrix product)
    in the time loop, per step: [R_z; R_i; R_f; R_o] @ h  (one matrix product)
    in the time loop, per step: [R_ii; R_if; R_io] @ i  (one matrix product)
    in the time loop, per step: [R_fi; R_ff; R_fo] @ f  (one matrix product)
    in the time loop, per step: [R_oi; R_of; R_oo] @ o  (one matrix product)
    in the time loop, per step: z, i_new, f_new, c_new, o_new, y  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    output y: [T,B,hidden]
    state h: [B,hidden]
    state c: [B,hidden]
    state i: [B,hidden]
    state f: [B,hidden]
    state o: [B,hidden]
    param W_z: [hidden,input], init uniform(1/sqrt(hidden))
    param W_i: [hidden,input], init uniform(1/sqrt(hidden))
    param W_f: [hidden,input], init uniform(1/sqrt(hidden))
    param W_o: [hidden,input], init uniform(1/sqrt(hidden))
    param R_z: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_i: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_f: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_o: [hidden,hidden], init uniform(1/sqrt(hidden))
    param p_i: [hidden], init uniform(1/sqrt(hidden))
    param p_f: [hidden], init uniform(1/sqrt(hidden))
    param p_o: [hidden], init uniform(1/sqrt(hidden))
    param b_z: [hidden], init uniform(1/sqrt(hidden))
    param b_i: [hidden], init uniform(1/sqrt(hidden))
    param b_f: [hidden], init uniform(1/sqrt(hidden))
    param b_o: [hidden], init uniform(1/sqrt(hidden))
    param R_ii: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_fi: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_oi: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_if: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_ff: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_of: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_io: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_fo: [hidden,hidden], init uniform(1/sqrt(hidden))
    param R_oo: [hidden,hidden], init uniform(1/sqrt(hidden))
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
def _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _seq_i, _WT_i, _G_i, _seq_f, _WT_f, _G_f, _seq_o, _WT_o, _G_o, _G_x, _w_b_f, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_f, _w_p_i, _w_p_o, _all_z):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,4*hidden] [R_z; R_i; R_f; R_o]^T
    _G_h: [B,4*hidden] [R_z; R_i; R_f; R_o] @ h at this step
    _seq_i: [T+1,B,hidden] state i: [0] the initial state, [t+1] after step t
    _WT_i: [hidden,3*hidden] [R_ii; R_if; R_io]^T
    _G_i: [B,3*hidden] [R_ii; R_if; R_io] @ i at this step
    _seq_f: [T+1,B,hidden] state f: [0] the initial state, [t+1] after step t
    _WT_f: [hidden,3*hidden] [R_fi; R_ff; R_fo]^T
    _G_f: [B,3*hidden] [R_fi; R_ff; R_fo] @ f at this step
    _seq_o: [T+1,B,hidden] state o: [0] the initial state, [t+1] after step t
    _WT_o: [hidden,3*hidden] [R_oi; R_of; R_oo]^T
    _G_o: [B,3*hidden] [R_oi; R_of; R_oo] @ o at this step
    _G_x: [rows,4*hidden] [W_z; W_i; W_f; W_o] @ x at every step, the rows that ran
    _w_b_f: [hidden] param b_f
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _w_b_z: [hidden] param b_z
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _all_z: [T,B,hidden] z at every step

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = R_z @ h
    _p2 = W_i @ x
    _p3 = R_i @ h
    _p4 = R_ii @ i
    _p5 = R_fi @ f
    _p6 = R_oi @ o
    _p7 = W_f @ x
    _p8 = R_f @ h
    _p9 = R_if @ i
    _p10 = R_ff @ f
    _p11 = R_of @ o
    _p12 = W_o @ x
    _p13 = R_o @ h
    _p14 = R_io @ i
    _p15 = R_fo @ f
    _p16 = R_oo @ o
    """
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        matmul(_seq_i[_t, :_nb], _WT_i, _G_i[:_nb])
        matmul(_seq_f[_t, :_nb], _WT_f, _G_f[:_nb])
        matmul(_seq_o[_t, :_nb], _WT_o, _G_o[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b, :_n_hidden]
            _rb_G_f_2 = _G_f[_b, _n_hidden:2*_n_hidden]
            _rb_G_o_3 = _G_o[_b, _n_hidden:2*_n_hidden]
            _rt_G_x_4 = _G_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_G_h_5 = _G_h[_b, 3*_n_hidden:4*_n_hidden]
            _rb_G_i_6 = _G_i[_b, 2*_n_hidden:3*_n_hidden]
            _rb_G_f_7 = _G_f[_b, 2*_n_hidden:3*_n_hidden]
            _rb_G_o_8 = _G_o[_b, 2*_n_hidden:3*_n_hidden]
            _rt_G_x_9 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_10 = _G_h[_b, _n_hidden:2*_n_hidden]
            _rb_G_i_11 = _G_i[_b, :_n_hidden]
            _rb_G_f_12 = _G_f[_b, :_n_hidden]
            _rb_G_o_13 = _G_o[_b, :_n_hidden]
            _rt_G_x_14 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_15 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rb_G_i_16 = _G_i[_b, _n_hidden:2*_n_hidden]
            _rt_seq_c_17 = _seq_c[_t, _b]
            _rt_all_z_18 = _all_z[_t, _b]
            _rn_seq_i_19 = _seq_i[_t + 1, _b]
            _rn_seq_f_20 = _seq_f[_t + 1, _b]
            _rn_seq_c_21 = _seq_c[_t + 1, _b]
            _rn_seq_o_22 = _seq_o[_t + 1, _b]
            _rn_seq_h_23 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p10 = _rb_G_f_2[_j]
                _p11 = _rb_G_o_3[_j]
                _p12 = _rt_G_x_4[_j]
                _p13 = _rb_G_h_5[_j]
                _p14 = _rb_G_i_6[_j]
                _p15 = _rb_G_f_7[_j]
                _p16 = _rb_G_o_8[_j]
                _p2 = _rt_G_x_9[_j]
                _p3 = _rb_G_h_10[_j]
                _p4 = _rb_G_i_11[_j]
                _p5 = _rb_G_f_12[_j]
                _p6 = _rb_G_o_13[_j]
                _p7 = _rt_G_x_14[_j]
                _p8 = _rb_G_h_15[_j]
                _p9 = _rb_G_i_16[_j]
                b_f = _w_b_f[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                b_z = _w_b_z[_j]
                c = _rt_seq_c_17[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = tanh(_p0 + _p1 + b_z)
                i_new = sigmoid(_p2 + _p3 + _p4 + _p5 + _p6 + b_i + c*p_i)
                f_new = sigmoid(_p10 + _p11 + _p7 + _p8 + _p9 + b_f + c*p_f)
                c_new = c*f_new + i_new*z
                o_new = sigmoid(_p12 + _p13 + _p14 + _p15 + _p16 + b_o + c_new*p_o)
                y = o_new*tanh(c_new)
                _rt_all_z_18[_j] = z
                _rn_seq_i_19[_j] = i_new
                _rn_seq_f_20[_j] = f_new
                _rn_seq_c_21[_j] = c_new
                _rn_seq_o_22[_j] = o_new
                _rn_seq_h_23[_j] = y
        for _b in range(_nb, _B):
            for _j in range(_all_z.shape[2]):
                _all_z[_t, _b, _j] = 0.0
                _seq_i[_t + 1, _b, _j] = _seq_i[_t, _b, _j]
                _seq_f[_t + 1, _b, _j] = _seq_f[_t, _b, _j]
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_o[_t + 1, _b, _j] = _seq_o[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _seq_i, _WT_i, _G_i, _seq_f, _WT_f, _G_f, _seq_o, _WT_o, _G_o, _G_x, _w_b_f, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_f, _w_p_i, _w_p_o):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,4*hidden] [R_z; R_i; R_f; R_o]^T
    _G_h: [B,4*hidden] [R_z; R_i; R_f; R_o] @ h at this step
    _seq_i: [T+1,B,hidden] state i: [0] the initial state, [t+1] after step t
    _WT_i: [hidden,3*hidden] [R_ii; R_if; R_io]^T
    _G_i: [B,3*hidden] [R_ii; R_if; R_io] @ i at this step
    _seq_f: [T+1,B,hidden] state f: [0] the initial state, [t+1] after step t
    _WT_f: [hidden,3*hidden] [R_fi; R_ff; R_fo]^T
    _G_f: [B,3*hidden] [R_fi; R_ff; R_fo] @ f at this step
    _seq_o: [T+1,B,hidden] state o: [0] the initial state, [t+1] after step t
    _WT_o: [hidden,3*hidden] [R_oi; R_of; R_oo]^T
    _G_o: [B,3*hidden] [R_oi; R_of; R_oo] @ o at this step
    _G_x: [rows,4*hidden] [W_z; W_i; W_f; W_o] @ x at every step, the rows that ran
    _w_b_f: [hidden] param b_f
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _w_b_z: [hidden] param b_z
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = R_z @ h
    _p2 = W_i @ x
    _p3 = R_i @ h
    _p4 = R_ii @ i
    _p5 = R_fi @ f
    _p6 = R_oi @ o
    _p7 = W_f @ x
    _p8 = R_f @ h
    _p9 = R_if @ i
    _p10 = R_ff @ f
    _p11 = R_of @ o
    _p12 = W_o @ x
    _p13 = R_o @ h
    _p14 = R_io @ i
    _p15 = R_fo @ f
    _p16 = R_oo @ o
    """
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        matmul(_seq_i[_t, :_nb], _WT_i, _G_i[:_nb])
        matmul(_seq_f[_t, :_nb], _WT_f, _G_f[:_nb])
        matmul(_seq_o[_t, :_nb], _WT_o, _G_o[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b, :_n_hidden]
            _rb_G_f_2 = _G_f[_b, _n_hidden:2*_n_hidden]
            _rb_G_o_3 = _G_o[_b, _n_hidden:2*_n_hidden]
            _rt_G_x_4 = _G_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rb_G_h_5 = _G_h[_b, 3*_n_hidden:4*_n_hidden]
            _rb_G_i_6 = _G_i[_b, 2*_n_hidden:3*_n_hidden]
            _rb_G_f_7 = _G_f[_b, 2*_n_hidden:3*_n_hidden]
            _rb_G_o_8 = _G_o[_b, 2*_n_hidden:3*_n_hidden]
            _rt_G_x_9 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_10 = _G_h[_b, _n_hidden:2*_n_hidden]
            _rb_G_i_11 = _G_i[_b, :_n_hidden]
            _rb_G_f_12 = _G_f[_b, :_n_hidden]
            _rb_G_o_13 = _G_o[_b, :_n_hidden]
            _rt_G_x_14 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_G_h_15 = _G_h[_b, 2*_n_hidden:3*_n_hidden]
            _rb_G_i_16 = _G_i[_b, _n_hidden:2*_n_hidden]
            _rt_seq_c_17 = _seq_c[_t, _b]
            _rn_seq_i_18 = _seq_i[_t + 1, _b]
            _rn_seq_f_19 = _seq_f[_t + 1, _b]
            _rn_seq_c_20 = _seq_c[_t + 1, _b]
            _rn_seq_o_21 = _seq_o[_t + 1, _b]
            _rn_seq_h_22 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p10 = _rb_G_f_2[_j]
                _p11 = _rb_G_o_3[_j]
                _p12 = _rt_G_x_4[_j]
                _p13 = _rb_G_h_5[_j]
                _p14 = _rb_G_i_6[_j]
                _p15 = _rb_G_f_7[_j]
                _p16 = _rb_G_o_8[_j]
                _p2 = _rt_G_x_9[_j]
                _p3 = _rb_G_h_10[_j]
                _p4 = _rb_G_i_11[_j]
                _p5 = _rb_G_f_12[_j]
                _p6 = _rb_G_o_13[_j]
                _p7 = _rt_G_x_14[_j]
                _p8 = _rb_G_h_15[_j]
                _p9 = _rb_G_i_16[_j]
                b_f = _w_b_f[_j]
                b_i = _w_b_i[_j]
                b_o = _w_b_o[_j]
                b_z = _w_b_z[_j]
                c = _rt_seq_c_17[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = tanh(_p0 + _p1 + b_z)
                i_new = sigmoid(_p2 + _p3 + _p4 + _p5 + _p6 + b_i + c*p_i)
                f_new = sigmoid(_p10 + _p11 + _p7 + _p8 + _p9 + b_f + c*p_f)
                c_new = c*f_new + i_new*z
                o_new = sigmoid(_p12 + _p13 + _p14 + _p15 + _p16 + b_o + c_new*p_o)
                y = o_new*tanh(c_new)
                _rn_seq_i_18[_j] = i_new
                _rn_seq_f_19[_j] = f_new
                _rn_seq_c_20[_j] = c_new
                _rn_seq_o_21[_j] = o_new
                _rn_seq_h_22[_j] = y
        for _b in range(_nb, _B):
            for _j in range(_seq_i.shape[2]):
                _seq_i[_t + 1, _b, _j] = _seq_i[_t, _b, _j]
                _seq_f[_t + 1, _b, _j] = _seq_f[_t, _b, _j]
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_o[_t + 1, _b, _j] = _seq_o[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer_owned(_u0, _u1, _P, _barrier, _T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _seq_i, _WT_i, _G_i, _seq_f, _WT_f, _G_f, _seq_o, _WT_o, _G_o, _G_x, _w_b_f, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_f, _w_p_i, _w_p_o):
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
    _WT_h: [hidden,4*hidden] [R_z; R_i; R_f; R_o]^T
    _G_h: [B,4*hidden] [R_z; R_i; R_f; R_o] @ h at this step
    _seq_i: [T+1,B,hidden] state i: [0] the initial state, [t+1] after step t
    _WT_i: [hidden,3*hidden] [R_ii; R_if; R_io]^T
    _G_i: [B,3*hidden] [R_ii; R_if; R_io] @ i at this step
    _seq_f: [T+1,B,hidden] state f: [0] the initial state, [t+1] after step t
    _WT_f: [hidden,3*hidden] [R_fi; R_ff; R_fo]^T
    _G_f: [B,3*hidden] [R_fi; R_ff; R_fo] @ f at this step
    _seq_o: [T+1,B,hidden] state o: [0] the initial state, [t+1] after step t
    _WT_o: [hidden,3*hidden] [R_oi; R_of; R_oo]^T
    _G_o: [B,3*hidden] [R_oi; R_of; R_oo] @ o at this step
    _G_x: [rows,4*hidden] [W_z; W_i; W_f; W_o] @ x at every step, the rows that ran
    _w_b_f: [hidden] param b_f
    _w_b_i: [hidden] param b_i
    _w_b_o: [hidden] param b_o
    _w_b_z: [hidden] param b_z
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = R_z @ h
    _p2 = W_i @ x
    _p3 = R_i @ h
    _p4 = R_ii @ i
    _p5 = R_fi @ f
    _p6 = R_oi @ o
    _p7 = W_f @ x
    _p8 = R_f @ h
    _p9 = R_if @ i
    _p10 = R_ff @ f
    _p11 = R_of @ o
    _p12 = W_o @ x
    _p13 = R_o @ h
    _p14 = R_io @ i
    _p15 = R_fo @ f
    _p16 = R_oo @ o
    """
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h[:, _u0:_u1], _G_h[:_nb, _u0:_u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, _n_hidden + _u0:_n_hidden + _u1], _G_h[:_nb, _n_hidden + _u0:_n_hidden + _u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, 2*_n_hidden + _u0:2*_n_hidden + _u1], _G_h[:_nb, 2*_n_hidden + _u0:2*_n_hidden + _u1])
        matmul(_seq_h[_t, :_nb], _WT_h[:, 3*_n_hidden + _u0:3*_n_hidden + _u1], _G_h[:_nb, 3*_n_hidden + _u0:3*_n_hidden + _u1])
        matmul(_seq_i[_t, :_nb], _WT_i[:, _u0:_u1], _G_i[:_nb, _u0:_u1])
        matmul(_seq_i[_t, :_nb], _WT_i[:, _n_hidden + _u0:_n_hidden + _u1], _G_i[:_nb, _n_hidden + _u0:_n_hidden + _u1])
        matmul(_seq_i[_t, :_nb], _WT_i[:, 2*_n_hidden + _u0:2*_n_hidden + _u1], _G_i[:_nb, 2*_n_hidden + _u0:2*_n_hidden + _u1])
        matmul(_seq_f[_t, :_nb], _WT_f[:, _u0:_u1], _G_f[:_nb, _u0:_u1])
        matmul(_seq_f[_t, :_nb], _WT_f[:, _n_hidden + _u0:_n_hidden + _u1], _G_f[:_nb, _n_hidden + _u0:_n_hidden + _u1])
        matmul(_seq_f[_t, :_nb], _WT_f[:, 2*_n_hidden + _u0:2*_n_hidden + _u1], _G_f[:_nb, 2*_n_hidden + _u0:2*_n_hidden + _u1])
        matmul(_seq_o[_t, :_nb], _WT_o[:, _u0:_u1], _G_o[:_nb, _u0:_u1])
        matmul(_seq_o[_t, :_nb], _WT_o[:, _n_hidden + _u0:_n_hidden + _u1], _G_o[:_nb, _n_hidden + _u0:_n_hidden + _u1])
        matmul(_seq_o[_t, :_nb], _WT_o[:, 2*_n_hidden + _u0:2*_n_hidden + _u1], _G_o[:_nb, 2*_n_hidden + _u0:2*_n_hidden + _u1])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, _u0:_u1]
            _rb_G_h_1 = _G_h[_b, _u0:_u1]
            _rb_G_f_2 = _G_f[_b, _n_hidden + _u0:_n_hidden + _u1]
            _rb_G_o_3 = _G_o[_b, _n_hidden + _u0:_n_hidden + _u1]
            _rt_G_x_4 = _G_x[_o + _b, 3*_n_hidden + _u0:3*_n_hidden + _u1]
            _rb_G_h_5 = _G_h[_b, 3*_n_hidden + _u0:3*_n_hidden + _u1]
            _rb_G_i_6 = _G_i[_b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rb_G_f_7 = _G_f[_b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rb_G_o_8 = _G_o[_b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rt_G_x_9 = _G_x[_o + _b, _n_hidden + _u0:_n_hidden + _u1]
            _rb_G_h_10 = _G_h[_b, _n_hidden + _u0:_n_hidden + _u1]
            _rb_G_i_11 = _G_i[_b, _u0:_u1]
            _rb_G_f_12 = _G_f[_b, _u0:_u1]
            _rb_G_o_13 = _G_o[_b, _u0:_u1]
            _rt_G_x_14 = _G_x[_o + _b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rb_G_h_15 = _G_h[_b, 2*_n_hidden + _u0:2*_n_hidden + _u1]
            _rb_G_i_16 = _G_i[_b, _n_hidden + _u0:_n_hidden + _u1]
            _ru_w_b_f_17 = _w_b_f[_u0:_u1]
            _ru_w_b_i_18 = _w_b_i[_u0:_u1]
            _ru_w_b_o_19 = _w_b_o[_u0:_u1]
            _ru_w_b_z_20 = _w_b_z[_u0:_u1]
            _rt_seq_c_21 = _seq_c[_t, _b, _u0:_u1]
            _ru_w_p_f_22 = _w_p_f[_u0:_u1]
            _ru_w_p_i_23 = _w_p_i[_u0:_u1]
            _ru_w_p_o_24 = _w_p_o[_u0:_u1]
            _rn_seq_i_25 = _seq_i[_t + 1, _b, _u0:_u1]
            _rn_seq_f_26 = _seq_f[_t + 1, _b, _u0:_u1]
            _rn_seq_c_27 = _seq_c[_t + 1, _b, _u0:_u1]
            _rn_seq_o_28 = _seq_o[_t + 1, _b, _u0:_u1]
            _rn_seq_h_29 = _seq_h[_t + 1, _b, _u0:_u1]
            for _j in range(_u1 - _u0):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                _p10 = _rb_G_f_2[_j]
                _p11 = _rb_G_o_3[_j]
                _p12 = _rt_G_x_4[_j]
                _p13 = _rb_G_h_5[_j]
                _p14 = _rb_G_i_6[_j]
                _p15 = _rb_G_f_7[_j]
                _p16 = _rb_G_o_8[_j]
                _p2 = _rt_G_x_9[_j]
                _p3 = _rb_G_h_10[_j]
                _p4 = _rb_G_i_11[_j]
                _p5 = _rb_G_f_12[_j]
                _p6 = _rb_G_o_13[_j]
                _p7 = _rt_G_x_14[_j]
                _p8 = _rb_G_h_15[_j]
                _p9 = _rb_G_i_16[_j]
                b_f = _ru_w_b_f_17[_j]
                b_i = _ru_w_b_i_18[_j]
                b_o = _ru_w_b_o_19[_j]
                b_z = _ru_w_b_z_20[_j]
                c = _rt_seq_c_21[_j]
                p_f = _ru_w_p_f_22[_j]
                p_i = _ru_w_p_i_23[_j]
                p_o = _ru_w_p_o_24[_j]
                z = tanh(_p0 + _p1 + b_z)
                i_new = sigmoid(_p2 + _p3 + _p4 + _p5 + _p6 + b_i + c*p_i)
                f_new = sigmoid(_p10 + _p11 + _p7 + _p8 + _p9 + b_f + c*p_f)
                c_new = c*f_new + i_new*z
                o_new = sigmoid(_p12 + _p13 + _p14 + _p15 + _p16 + b_o + c_new*p_o)
                y = o_new*tanh(c_new)
                _rn_seq_i_25[_j] = i_new
                _rn_seq_f_26[_j] = f_new
                _rn_seq_c_27[_j] = c_new
                _rn_seq_o_28[_j] = o_new
                _rn_seq_h_29[_j] = y
        for _b in range(_nb, _B):
            for _j in range(_u0, _u1):
                _seq_i[_t + 1, _b, _j] = _seq_i[_t, _b, _j]
                _seq_f[_t + 1, _b, _j] = _seq_f[_t, _b, _j]
                _seq_c[_t + 1, _b, _j] = _seq_c[_t, _b, _j]
                _seq_o[_t + 1, _b, _j] = _seq_o[_t, _b, _j]
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb
        meet(_barrier, _P * (_t + 1))


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _n_hidden, _active, _seq_c, _seq_f, _seq_i, _seq_o, _w_p_f, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_o, _dcarry_c, _dcarry_f, _dcarry_i, _dG_x, _dG_i, _acc_p_o, _d_c, _acc_p_f, _acc_p_i, _W_h, _dgemm_h, _W_i, _dgemm_i, _W_f, _dgemm_f, _W_o, _dgemm_o):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T: the steps
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _seq_f: [T+1,B,hidden] state f: [0] the initial state, [t+1] after step t
    _seq_i: [T+1,B,hidden] state i: [0] the initial state, [t+1] after step t
    _seq_o: [T+1,B,hidden] state o: [0] the initial state, [t+1] after step t
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_y: [rows,hidden] dy: the gradient of output y
    _dcarry_o: [B,hidden] d_o[t]: the gradient of state o after step t
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _dcarry_f: [B,hidden] d_f[t]: the gradient of state f after step t
    _dcarry_i: [B,hidden] d_i[t]: the gradient of state i after step t
    _dG_x: [rows,4*hidden] the gradient of [W_z @ x; W_i @ x; W_f @ x; W_o @ x] = [R_z @ h; R_i @ h; R_f @ h; R_o @ h] at every step, the rows that ran
    _dG_i: [rows,3*hidden] the gradient of [R_ii @ i; R_if @ i; R_io @ i] = [R_fi @ f; R_ff @ f; R_fo @ f] = [R_oi @ o; R_of @ o; R_oo @ o] at every step, the rows that ran
    _acc_p_o: [hidden] the gradient of p_o, summed in float64
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _acc_p_f: [hidden] the gradient of p_f, summed in float64
    _acc_p_i: [hidden] the gradient of p_i, summed in float64
    _W_h: [4*hidden,hidden] [R_z; R_i; R_f; R_o]
    _dgemm_h: [B,hidden] the gradient of h through its products, [R_z; R_i; R_f; R_o]^T @ theirs
    _W_i: [3*hidden,hidden] [R_ii; R_if; R_io]
    _dgemm_i: [B,hidden] the gradient of i through its products, [R_ii; R_if; R_io]^T @ theirs
    _W_f: [3*hidden,hidden] [R_fi; R_ff; R_fo]
    _dgemm_f: [B,hidden] the gradient of f through its products, [R_fi; R_ff; R_fo]^T @ theirs
    _W_o: [3*hidden,hidden] [R_oi; R_of; R_oo]
    _dgemm_o: [B,hidden] the gradient of o through its products, [R_oi; R_of; R_oo]^T @ theirs
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
            _rn_seq_f_2 = _seq_f[_t + 1, _b]
            _rn_seq_i_3 = _seq_i[_t + 1, _b]
            _rn_seq_o_4 = _seq_o[_t + 1, _b]
            _rt_all_z_5 = _all_z[_t, _b]
            _rb_dcarry_h_6 = _dcarry_h[_b]
            _rt_dy_y_7 = _dy_y[_o + _b]
            _rb_dcarry_o_8 = _dcarry_o[_b]
            _rb_dcarry_c_9 = _dcarry_c[_b]
            _rb_dcarry_f_10 = _dcarry_f[_b]
            _rb_dcarry_i_11 = _dcarry_i[_b]
            _rt_dG_x_12 = _dG_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rt_dG_i_13 = _dG_i[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_d_c_14 = _d_c[_b]
            _rt_dG_x_15 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_i_16 = _dG_i[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_17 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_i_18 = _dG_i[_o + _b, :_n_hidden]
            _rt_dG_x_19 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                c = _rt_seq_c_0[_j]
                c_new = _rn_seq_c_1[_j]
                f_new = _rn_seq_f_2[_j]
                i_new = _rn_seq_i_3[_j]
                o_new = _rn_seq_o_4[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = _rt_all_z_5[_j]
                _c0 = _F(1.0) - z**2
                _c1 = i_new*(_F(1.0) - i_new)
                _c2 = f_new*(_F(1.0) - f_new)
                _c3 = o_new*(_F(1.0) - o_new)
                _c4 = tanh(c_new)
                d_y = _rb_dcarry_h_6[_j] + _rt_dy_y_7[_j]
                d_o_new = _rb_dcarry_o_8[_j] + _c4*d_y
                d_c_new = _rb_dcarry_c_9[_j] + _c3*d_o_new*p_o + d_y*o_new*(_F(1.0) - _c4**2)
                d_f_new = _rb_dcarry_f_10[_j] + c*d_c_new
                d_i_new = _rb_dcarry_i_11[_j] + d_c_new*z
                d_z = d_c_new*i_new
                _rt_dG_x_12[_j] = _c3*d_o_new
                _rt_dG_i_13[_j] = _c3*d_o_new
                _acc_p_o[_j] += _c3*c_new*d_o_new
                _rb_d_c_14[_j] = _c1*d_i_new*p_i + _c2*d_f_new*p_f + d_c_new*f_new
                _rt_dG_x_15[_j] = _c2*d_f_new
                _rt_dG_i_16[_j] = _c2*d_f_new
                _acc_p_f[_j] += _c2*c*d_f_new
                _rt_dG_x_17[_j] = _c1*d_i_new
                _rt_dG_i_18[_j] = _c1*d_i_new
                _acc_p_i[_j] += _c1*c*d_i_new
                _rt_dG_x_19[_j] = _c0*d_z
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        matmul(_dG_i[_o:_o + _nb], _W_i, _dgemm_i[:_nb])
        matmul(_dG_i[_o:_o + _nb], _W_f, _dgemm_f[:_nb])
        matmul(_dG_i[_o:_o + _nb], _W_o, _dgemm_o[:_nb])
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
                _dcarry_c[_b, _j] = _d_c[_b, _j]
                _dcarry_i[_b, _j] = _dgemm_i[_b, _j]
                _dcarry_f[_b, _j] = _dgemm_f[_b, _j]
                _dcarry_o[_b, _j] = _dgemm_o[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_c, _seq_f, _seq_i, _seq_o, _w_p_f, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_o, _dcarry_c, _dcarry_f, _dcarry_i, _dG_x, _dG_i, _acc_p_o, _d_c, _acc_p_f, _acc_p_i, _W_h, _dgemm_h, _W_i, _dgemm_i, _W_f, _dgemm_f, _W_o, _dgemm_o, _dseq_h, _dseq_c, _dseq_i, _dseq_f, _dseq_o):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_c: [T+1,B,hidden] state c: [0] the initial state, [t+1] after step t
    _seq_f: [T+1,B,hidden] state f: [0] the initial state, [t+1] after step t
    _seq_i: [T+1,B,hidden] state i: [0] the initial state, [t+1] after step t
    _seq_o: [T+1,B,hidden] state o: [0] the initial state, [t+1] after step t
    _w_p_f: [hidden] param p_f
    _w_p_i: [hidden] param p_i
    _w_p_o: [hidden] param p_o
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_y: [rows,hidden] dy: the gradient of output y
    _dcarry_o: [B,hidden] d_o[t]: the gradient of state o after step t
    _dcarry_c: [B,hidden] d_c[t]: the gradient of state c after step t
    _dcarry_f: [B,hidden] d_f[t]: the gradient of state f after step t
    _dcarry_i: [B,hidden] d_i[t]: the gradient of state i after step t
    _dG_x: [rows,4*hidden] the gradient of [W_z @ x; W_i @ x; W_f @ x; W_o @ x] = [R_z @ h; R_i @ h; R_f @ h; R_o @ h] at every step, the rows that ran
    _dG_i: [rows,3*hidden] the gradient of [R_ii @ i; R_if @ i; R_io @ i] = [R_fi @ f; R_ff @ f; R_fo @ f] = [R_oi @ o; R_of @ o; R_oo @ o] at every step, the rows that ran
    _acc_p_o: [hidden] the gradient of p_o, summed in float64
    _d_c: [B,hidden] the gradient of c from its users in other fused loops, this step
    _acc_p_f: [hidden] the gradient of p_f, summed in float64
    _acc_p_i: [hidden] the gradient of p_i, summed in float64
    _W_h: [4*hidden,hidden] [R_z; R_i; R_f; R_o]
    _dgemm_h: [B,hidden] the gradient of h through its products, [R_z; R_i; R_f; R_o]^T @ theirs
    _W_i: [3*hidden,hidden] [R_ii; R_if; R_io]
    _dgemm_i: [B,hidden] the gradient of i through its products, [R_ii; R_if; R_io]^T @ theirs
    _W_f: [3*hidden,hidden] [R_fi; R_ff; R_fo]
    _dgemm_f: [B,hidden] the gradient of f through its products, [R_fi; R_ff; R_fo]^T @ theirs
    _W_o: [3*hidden,hidden] [R_oi; R_of; R_oo]
    _dgemm_o: [B,hidden] the gradient of o through its products, [R_oi; R_of; R_oo]^T @ theirs
    _dseq_h: [T,B,hidden] the gradient of state h after every step from a layer above that reads it
    _dseq_c: [T,B,hidden] the gradient of state c after every step from a layer above that reads it
    _dseq_i: [T,B,hidden] the gradient of state i after every step from a layer above that reads it
    _dseq_f: [T,B,hidden] the gradient of state f after every step from a layer above that reads it
    _dseq_o: [T,B,hidden] the gradient of state o after every step from a layer above that reads it
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
            _rn_seq_f_2 = _seq_f[_t + 1, _b]
            _rn_seq_i_3 = _seq_i[_t + 1, _b]
            _rn_seq_o_4 = _seq_o[_t + 1, _b]
            _rt_all_z_5 = _all_z[_t, _b]
            _rb_dcarry_h_6 = _dcarry_h[_b]
            _rt_dy_y_7 = _dy_y[_o + _b]
            _rb_dcarry_o_8 = _dcarry_o[_b]
            _rb_dcarry_c_9 = _dcarry_c[_b]
            _rb_dcarry_f_10 = _dcarry_f[_b]
            _rb_dcarry_i_11 = _dcarry_i[_b]
            _rt_dG_x_12 = _dG_x[_o + _b, 3*_n_hidden:4*_n_hidden]
            _rt_dG_i_13 = _dG_i[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rb_d_c_14 = _d_c[_b]
            _rt_dG_x_15 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_i_16 = _dG_i[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_x_17 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_i_18 = _dG_i[_o + _b, :_n_hidden]
            _rt_dG_x_19 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                c = _rt_seq_c_0[_j]
                c_new = _rn_seq_c_1[_j]
                f_new = _rn_seq_f_2[_j]
                i_new = _rn_seq_i_3[_j]
                o_new = _rn_seq_o_4[_j]
                p_f = _w_p_f[_j]
                p_i = _w_p_i[_j]
                p_o = _w_p_o[_j]
                z = _rt_all_z_5[_j]
                _c0 = _F(1.0) - z**2
                _c1 = i_new*(_F(1.0) - i_new)
                _c2 = f_new*(_F(1.0) - f_new)
                _c3 = o_new*(_F(1.0) - o_new)
                _c4 = tanh(c_new)
                d_y = _rb_dcarry_h_6[_j] + _rt_dy_y_7[_j]
                d_o_new = _rb_dcarry_o_8[_j] + _c4*d_y
                d_c_new = _rb_dcarry_c_9[_j] + _c3*d_o_new*p_o + d_y*o_new*(_F(1.0) - _c4**2)
                d_f_new = _rb_dcarry_f_10[_j] + c*d_c_new
                d_i_new = _rb_dcarry_i_11[_j] + d_c_new*z
                d_z = d_c_new*i_new
                _rt_dG_x_12[_j] = _c3*d_o_new
                _rt_dG_i_13[_j] = _c3*d_o_new
                _acc_p_o[_j] += _c3*c_new*d_o_new
                _rb_d_c_14[_j] = _c1*d_i_new*p_i + _c2*d_f_new*p_f + d_c_new*f_new
                _rt_dG_x_15[_j] = _c2*d_f_new
                _rt_dG_i_16[_j] = _c2*d_f_new
                _acc_p_f[_j] += _c2*c*d_f_new
                _rt_dG_x_17[_j] = _c1*d_i_new
                _rt_dG_i_18[_j] = _c1*d_i_new
                _acc_p_i[_j] += _c1*c*d_i_new
                _rt_dG_x_19[_j] = _c0*d_z
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        matmul(_dG_i[_o:_o + _nb], _W_i, _dgemm_i[:_nb])
        matmul(_dG_i[_o:_o + _nb], _W_f, _dgemm_f[:_nb])
        matmul(_dG_i[_o:_o + _nb], _W_o, _dgemm_o[:_nb])
        if _t > 0:
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] = _dgemm_h[_b, _j] + _dseq_h[_t - 1, _b, _j]
                    _dcarry_c[_b, _j] = _d_c[_b, _j] + _dseq_c[_t - 1, _b, _j]
                    _dcarry_i[_b, _j] = _dgemm_i[_b, _j] + _dseq_i[_t - 1, _b, _j]
                    _dcarry_f[_b, _j] = _dgemm_f[_b, _j] + _dseq_f[_t - 1, _b, _j]
                    _dcarry_o[_b, _j] = _dgemm_o[_b, _j] + _dseq_o[_t - 1, _b, _j]
            for _b in range(_nb, _B):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] += _dseq_h[_t - 1, _b, _j]
                    _dcarry_c[_b, _j] += _dseq_c[_t - 1, _b, _j]
                    _dcarry_i[_b, _j] += _dseq_i[_t - 1, _b, _j]
                    _dcarry_f[_b, _j] += _dseq_f[_t - 1, _b, _j]
                    _dcarry_o[_b, _j] += _dseq_o[_t - 1, _b, _j]
        else:
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] = _dgemm_h[_b, _j]
                    _dcarry_c[_b, _j] = _d_c[_b, _j]
                    _dcarry_i[_b, _j] = _dgemm_i[_b, _j]
                    _dcarry_f[_b, _j] = _dgemm_f[_b, _j]
                    _dcarry_o[_b, _j] = _dgemm_o[_b, _j]


class Cell(runtime.CellBase):
    NAME = 'greff_fgr'
    SPEC_SHA256 = 'f646d44e7fbc4a2bd35c461d3c368b8fa9d32aaca403feccd162469faf04605e'
    DIMS = ['input', 'hidden']
    INPUTS = [('x', 'input')]
    STATES = [('h', 'hidden'), ('c', 'hidden'), ('i', 'hidden'), ('f', 'hidden'), ('o', 'hidden')]
    OUTPUTS = [('y', 'hidden')]
    CONSTRAINTS = []
    CONSTANTS = []
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = []
    PARAMS = [('W_z', ('hidden', 'input')), ('W_i', ('hidden', 'input')), ('W_f', ('hidden', 'input')), ('W_o', ('hidden', 'input')), ('R_z', ('hidden', 'hidden')), ('R_i', ('hidden', 'hidden')), ('R_f', ('hidden', 'hidden')), ('R_o', ('hidden', 'hidden')), ('p_i', ('hidden',)), ('p_f', ('hidden',)), ('p_o', ('hidden',)), ('b_z', ('hidden',)), ('b_i', ('hidden',)), ('b_f', ('hidden',)), ('b_o', ('hidden',)), ('R_ii', ('hidden', 'hidden')), ('R_fi', ('hidden', 'hidden')), ('R_oi', ('hidden', 'hidden')), ('R_if', ('hidden', 'hidden')), ('R_ff', ('hidden', 'hidden')), ('R_of', ('hidden', 'hidden')), ('R_io', ('hidden', 'hidden')), ('R_fo', ('hidden', 'hidden')), ('R_oo', ('hidden', 'hidden'))]
    MASKS = []
    INITS = [
        ('W_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('p_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_i', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_f', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_o', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_ii', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_fi', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_oi', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_if', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_ff', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_of', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_io', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_fo', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('R_oo', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,hidden]'), ('_seq_c', 'states', 'c', '[T+1,B,hidden]'), ('_seq_i', 'states', 'i', '[T+1,B,hidden]'), ('_seq_f', 'states', 'f', '[T+1,B,hidden]'), ('_seq_o', 'states', 'o', '[T+1,B,hidden]'), ('_all_z', 'values', 'z', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[4*hidden,input]'), ('_W_h', 'weights', 'h', '[4*hidden,hidden]'), ('_W_i', 'weights', 'i', '[3*hidden,hidden]'), ('_W_f', 'weights', 'f', '[3*hidden,hidden]'), ('_W_o', 'weights', 'o', '[3*hidden,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['p_i', 'p_f', 'p_o', 'b_z', 'b_i', 'b_f', 'b_o']
    TRANSCENDENTALS = [('hidden', 5)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ('x',)
    # the outputs whose gradient the backward pass takes as its packed rows ([rows, n])
    PACKED_DY = ('y',)
    # the layout of the torch.nn module this cell is (cellspec.torch_layout), or None
    TORCH = None
    # the dim a step kernel that keeps its weights splits over threads, and the recurrent weights
    # it reads ([operand dim, blocks of dim] each), or None (cellspec.owned)
    OWNED = {'dim': 'hidden', 'weights': [('hidden', 4), ('hidden', 3), ('hidden', 3), ('hidden', 3)]}

    def _forward(self, inputs, state, tape, _active):
        _dtype = self.dtype
        _params = self.params
        _in_x = inputs['x']
        _T, _B = _active.shape[0], state['h'].shape[0]
        _n_hidden = self.dims['hidden']
        _w_p_i = _params['p_i']
        _w_p_f = _params['p_f']
        _w_p_o = _params['p_o']
        _w_b_z = _params['b_z']
        _w_b_i = _params['b_i']
        _w_b_f = _params['b_f']
        _w_b_o = _params['b_o']
        _W_x = np.concatenate((_params['W_z'], _params['W_i'], _params['W_f'], _params['W_o'],))
        _W_h = np.concatenate((_params['R_z'], _params['R_i'], _params['R_f'], _params['R_o'],))
        _WT_h = step_operand(_W_h.T, _B)
        _W_i = np.concatenate((_params['R_ii'], _params['R_if'], _params['R_io'],))
        _WT_i = step_operand(_W_i.T, _B)
        _W_f = np.concatenate((_params['R_fi'], _params['R_ff'], _params['R_fo'],))
        _WT_f = step_operand(_W_f.T, _B)
        _W_o = np.concatenate((_params['R_oi'], _params['R_of'], _params['R_oo'],))
        _WT_o = step_operand(_W_o.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _seq_c = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _seq_i = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _seq_f = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _seq_o = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G_h = np.empty((_B, 4*_n_hidden), _dtype)
        _G_i = np.empty((_B, 3*_n_hidden), _dtype)
        _G_f = np.empty((_B, 3*_n_hidden), _dtype)
        _G_o = np.empty((_B, 3*_n_hidden), _dtype)
        _all_z = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _seq_c[0] = state['c']
        _seq_i[0] = state['i']
        _seq_f[0] = state['f']
        _seq_o[0] = state['o']
        _G_x = dot(_in_x, _W_x.T)
        if tape:
            _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _seq_i, _WT_i, _G_i, _seq_f, _WT_f, _G_f, _seq_o, _WT_o, _G_o, _G_x, _w_b_f, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_f, _w_p_i, _w_p_o, _all_z)
        elif self.owned_units is not None:
            runtime.owned_steps(_loop_infer_owned, self.owned_units, (_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _seq_i, _WT_i, _G_i, _seq_f, _WT_f, _G_f, _seq_o, _WT_o, _G_o, _G_x, _w_b_f, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_f, _w_p_i, _w_p_o,))
        else:
            _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _seq_i, _WT_i, _G_i, _seq_f, _WT_f, _G_f, _seq_o, _WT_o, _G_o, _G_x, _w_b_f, _w_b_i, _w_b_o, _w_b_z, _seq_c, _w_p_f, _w_p_i, _w_p_o)
        _y = {'y': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy(), 'c': _seq_c[_T].copy(), 'i': _seq_i[_T].copy(), 'f': _seq_f[_T].copy(), 'o': _seq_o[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_seq_c': _seq_c, '_seq_i': _seq_i, '_seq_f': _seq_f, '_seq_o': _seq_o, '_all_z': _all_z, '_W_x': _W_x, '_W_h': _W_h, '_W_i': _W_i, '_W_f': _W_f, '_W_o': _W_o} if tape else None
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
        _w_p_f = _params['p_f']
        _w_p_o = _params['p_o']
        _seq_h = tape.arrays['_seq_h']
        _seq_c = tape.arrays['_seq_c']
        _seq_i = tape.arrays['_seq_i']
        _seq_f = tape.arrays['_seq_f']
        _seq_o = tape.arrays['_seq_o']
        _all_z = tape.arrays['_all_z']
        _W_x = tape.arrays['_W_x']
        _W_h = tape.arrays['_W_h']
        _W_i = tape.arrays['_W_i']
        _W_f = tape.arrays['_W_f']
        _W_o = tape.arrays['_W_o']
        _W_h = step_operand(_W_h, _B)
        _W_i = step_operand(_W_i, _B)
        _W_f = step_operand(_W_f, _B)
        _W_o = step_operand(_W_o, _B)
        _dy_y = dy['y']
        _dG_x = np.empty((_rows.count, 4*_n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_hidden), _dtype)
        _dG_i = np.empty((_rows.count, 3*_n_hidden), _dtype)
        _dgemm_i = np.empty((_B, _n_hidden), _dtype)
        _dgemm_f = np.empty((_B, _n_hidden), _dtype)
        _dgemm_o = np.empty((_B, _n_hidden), _dtype)
        _d_c = np.empty((_B, _n_hidden), _dtype)
        _acc_p_i = np.zeros((_n_hidden,), np.float64)
        _acc_p_f = np.zeros((_n_hidden,), np.float64)
        _acc_p_o = np.zeros((_n_hidden,), np.float64)
        _dcarry_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_c = np.empty((_B, _n_hidden), _dtype)
        _dcarry_i = np.empty((_B, _n_hidden), _dtype)
        _dcarry_f = np.empty((_B, _n_hidden), _dtype)
        _dcarry_o = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h[...] = dstate['h']
        _dseq_h = dseq['h']
        _dcarry_c[...] = dstate['c']
        _dseq_c = dseq['c']
        _dcarry_i[...] = dstate['i']
        _dseq_i = dseq['i']
        _dcarry_f[...] = dstate['f']
        _dseq_f = dseq['f']
        _dcarry_o[...] = dstate['o']
        _dseq_o = dseq['o']
        _has_dseq = dseq_given
        if _has_dseq:
            _dcarry_h += _dseq_h[_T - 1]
            _dcarry_c += _dseq_c[_T - 1]
            _dcarry_i += _dseq_i[_T - 1]
            _dcarry_f += _dseq_f[_T - 1]
            _dcarry_o += _dseq_o[_T - 1]
        if _has_dseq:
            _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_c, _seq_f, _seq_i, _seq_o, _w_p_f, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_o, _dcarry_c, _dcarry_f, _dcarry_i, _dG_x, _dG_i, _acc_p_o, _d_c, _acc_p_f, _acc_p_i, _W_h, _dgemm_h, _W_i, _dgemm_i, _W_f, _dgemm_f, _W_o, _dgemm_o, _dseq_h, _dseq_c, _dseq_i, _dseq_f, _dseq_o)
        else:
            _loop_backward(_T, _n_hidden, _active, _seq_c, _seq_f, _seq_i, _seq_o, _w_p_f, _w_p_i, _w_p_o, _all_z, _dcarry_h, _dy_y, _dcarry_o, _dcarry_c, _dcarry_f, _dcarry_i, _dG_x, _dG_i, _acc_p_o, _d_c, _acc_p_f, _acc_p_i, _W_h, _dgemm_h, _W_i, _dgemm_i, _W_f, _dgemm_f, _W_o, _dgemm_o)
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_dG_x.T, _rows_seq_h)
        _rows_seq_i = _rows.pack(_seq_i[:-1])
        _dW_i = dot(_dG_i.T, _rows_seq_i)
        _rows_seq_f = _rows.pack(_seq_f[:-1])
        _dW_f = dot(_dG_i.T, _rows_seq_f)
        _rows_seq_o = _rows.pack(_seq_o[:-1])
        _dW_o = dot(_dG_i.T, _rows_seq_o)
        _dgemm_x = dot(_dG_x, _W_x)
        _dW_x = dot(_dG_x.T, _in_x)
        _dbias_x = column_sums(_dG_x, 0, 4*_n_hidden)
        _dparams = {}
        _dparams['W_z'] = _dW_x[0:_n_hidden].copy()
        _dparams['W_i'] = _dW_x[_n_hidden:2*_n_hidden].copy()
        _dparams['W_f'] = _dW_x[2*_n_hidden:3*_n_hidden].copy()
        _dparams['W_o'] = _dW_x[3*_n_hidden:4*_n_hidden].copy()
        _dparams['R_z'] = _dW_h[0:_n_hidden].copy()
        _dparams['R_i'] = _dW_h[_n_hidden:2*_n_hidden].copy()
        _dparams['R_f'] = _dW_h[2*_n_hidden:3*_n_hidden].copy()
        _dparams['R_o'] = _dW_h[3*_n_hidden:4*_n_hidden].copy()
        _dparams['p_i'] = _acc_p_i.astype(_dtype)
        _dparams['p_f'] = _acc_p_f.astype(_dtype)
        _dparams['p_o'] = _acc_p_o.astype(_dtype)
        _dparams['b_z'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dparams['b_i'] = _dbias_x[_n_hidden:2*_n_hidden].astype(_dtype)
        _dparams['b_f'] = _dbias_x[2*_n_hidden:3*_n_hidden].astype(_dtype)
        _dparams['b_o'] = _dbias_x[3*_n_hidden:4*_n_hidden].astype(_dtype)
        _dparams['R_ii'] = _dW_i[0:_n_hidden].copy()
        _dparams['R_fi'] = _dW_f[0:_n_hidden].copy()
        _dparams['R_oi'] = _dW_o[0:_n_hidden].copy()
        _dparams['R_if'] = _dW_i[_n_hidden:2*_n_hidden].copy()
        _dparams['R_ff'] = _dW_f[_n_hidden:2*_n_hidden].copy()
        _dparams['R_of'] = _dW_o[_n_hidden:2*_n_hidden].copy()
        _dparams['R_io'] = _dW_i[2*_n_hidden:3*_n_hidden].copy()
        _dparams['R_fo'] = _dW_f[2*_n_hidden:3*_n_hidden].copy()
        _dparams['R_oo'] = _dW_o[2*_n_hidden:3*_n_hidden].copy()
        _dinputs = {}
        _dinputs['x'] = _dgemm_x
        _dstate = {'h': _dcarry_h, 'c': _dcarry_c, 'i': _dcarry_i, 'f': _dcarry_f, 'o': _dcarry_o}
        return _dinputs, _dparams, _dstate
