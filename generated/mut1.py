"""mut1: MUT1, the best of the three GRU-like cells found by architecture search; needs input == hidden

Generated from specs/mut1.yaml (sha256 113d5f6d441f0a42c89c5dbddc70fc8c95077c334761802d41d9e57be8557881) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Jozefowicz, Zaremba & Sutskever 2015, "An empirical exploration of recurrent network architectures", ICML (PMLR 37), section 3, MUT1: z = sigm(W_xz x_t + b_z), r = sigm(W_xr x_t + W_hr h_t + b_r), h_{t+1} = tanh(W_hh (r*h_t) + tanh(x_t) + b_h)*z + h_t*(1 - z). x_t enters elementwise, so input == hidden. Some ports (RecurrentLayers.jl) write tanh(W_xh x_t) to drop that constraint; this spec keeps the paper's tanh(x_t). z weights the new candidate.

Forward, one step (on the right, a state's name means its value at t-1):
    z = sigmoid(W_z @ x + b_z)
    r = sigmoid(W_r @ x + U_r @ h + b_r)
    n = tanh(U_n @ (r*h) + tanh(x) + b_n)
    h_new = n*z + h*(1 - z)
    h[t] = h_new
    y[t] = h_new

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_h_new = d_h[t] + dy[t]
    d_n = d_h_new*(z)
    d(U_n @ (h*r)) = d_n*(1 - n**2)
    d(h*r) = U_n^T @ d(U_n @ (h*r))
    d_r = d(h*r)*(h)
    d(U_r @ h) = d_r*(r*(1 - r))
    d(W_r @ x) = d_r*(r*(1 - r))
    d_z = d_h_new*(-h + n)
    d(W_z @ x) = d_z*(z*(1 - z))
    d_x = W_z^T @ d(W_z @ x) + W_r^T @ d(W_r @ x) + d_n*((1 - n**2)*(1 - tanh(x)**2))
    d_h[t-1] = U_r^T @ d(U_r @ h) + d(h*r)*(r) + d_h_new*(1 - z)
    d_W_z += d(W_z @ x) x^T
    d_W_r += d(W_r @ x) x^T
    d_U_r += d(U_r @ h) h^T
    d_U_n += d(U_n @ (h*r)) (h*r)^T
    d_b_z += d_z*(z*(1 - z))
    d_b_r += d_r*(r*(1 - r))
    d_b_n += d_n*(1 - n**2)

Schedule:
    before the time loop, over all T*B rows: [W_r; W_z] @ x  (one matrix product)
    before the time loop, over all T*B rows: z  (fused elementwise loop)
    in the time loop, per step: [U_r] @ h  (one matrix product)
    in the time loop, per step: r, (h*r)  (fused elementwise loop)
    in the time loop, per step: [U_n] @ (h*r)  (one matrix product)
    in the time loop, per step: n, h_new  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    output h_new: [T,B,hidden]
    state h: [B,hidden]
    param W_z: [hidden,input], init uniform(1/sqrt(hidden))
    param W_r: [hidden,input], init uniform(1/sqrt(hidden))
    param U_r: [hidden,hidden], init uniform(1/sqrt(hidden))
    param U_n: [hidden,hidden], init uniform(1/sqrt(hidden))
    param b_z: [hidden], init uniform(1/sqrt(hidden))
    param b_r: [hidden], init uniform(1/sqrt(hidden))
    param b_n: [hidden], init uniform(1/sqrt(hidden))
"""

import math

import numba as nb
import numpy as np

from cellspec import runtime
from cellspec.blas import dot, matmul, step_operand
from cellspec.sums import column_sums
from cellspec.fastmath import sigmoid, tanh


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _pre_forward_1(_T, _B, _n_hidden, _G_x, _w_b_z, _all_z):
    """Phase 1 of the values that read no state, over all steps before the time loop.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _G_x: [T,B,2*hidden] [W_r; W_z] @ x at every step
    _w_b_z: [hidden] param b_z
    _all_z: [T,B,hidden] z at every step

    Values the compiler named:
    _p0 = W_z @ x
    """
    for _t in range(_T):
        for _b in range(_B):
            _rt_G_x_0 = _G_x[_t, _b, _n_hidden:2*_n_hidden]
            _rt_all_z_1 = _all_z[_t, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                b_z = _w_b_z[_j]
                z = sigmoid(_p0 + b_z)
                _rt_all_z_1[_j] = z


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all_r, _all__v0, _WT__v0, _G__v0, _w_b_n, _in_x, _all_z, _all_n):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U_r]^T
    _G_h: [B,hidden] [U_r] @ h at this step
    _G_x: [T,B,2*hidden] [W_r; W_z] @ x at every step
    _w_b_r: [hidden] param b_r
    _all_r: [T,B,hidden] r at every step
    _all__v0: [T,B,hidden] (h*r) at every step
    _WT__v0: [hidden,hidden] [U_n]^T
    _G__v0: [B,hidden] [U_n] @ (h*r) at this step
    _w_b_n: [hidden] param b_n
    _in_x: [T,B,input] input x
    _all_z: [T,B,hidden] z at every step
    _all_n: [T,B,hidden] n at every step

    Values the compiler named:
    _p1 = W_r @ x
    _p2 = U_r @ h
    _p3 = U_n @ (h*r)
    _v0 = (h*r)
    """
    _F = _seq_h.dtype.type
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_t, _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b]
            _rt_seq_h_2 = _seq_h[_t, _b]
            _rt_all_r_3 = _all_r[_t, _b]
            _rt_all__v0_4 = _all__v0[_t, _b]
            for _j in range(_n_hidden):
                _p1 = _rt_G_x_0[_j]
                _p2 = _rb_G_h_1[_j]
                b_r = _w_b_r[_j]
                h = _rt_seq_h_2[_j]
                r = sigmoid(_p1 + _p2 + b_r)
                _v0 = h*r
                _rt_all_r_3[_j] = r
                _rt_all__v0_4[_j] = _v0
        matmul(_all__v0[_t, :_nb], _WT__v0, _G__v0[:_nb])
        for _b in range(_nb):
            _rb_G__v0_0 = _G__v0[_b]
            _rt_seq_h_1 = _seq_h[_t, _b]
            _rt_in_x_2 = _in_x[_t, _b, :_n_hidden]
            _rt_all_z_3 = _all_z[_t, _b]
            _rt_all_n_4 = _all_n[_t, _b]
            _rn_seq_h_5 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p3 = _rb_G__v0_0[_j]
                b_n = _w_b_n[_j]
                h = _rt_seq_h_1[_j]
                x = _rt_in_x_2[_j]
                z = _rt_all_z_3[_j]
                n = tanh(_p3 + b_n + tanh(x))
                h_new = h*(_F(1.0) - z) + n*z
                _rt_all_n_4[_j] = n
                _rn_seq_h_5[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all_r.shape[2]):
                _all_r[_t, _b, _j] = 0.0
                _all__v0[_t, _b, _j] = 0.0
                _all_n[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all__v0, _WT__v0, _G__v0, _w_b_n, _in_x, _all_z):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U_r]^T
    _G_h: [B,hidden] [U_r] @ h at this step
    _G_x: [T,B,2*hidden] [W_r; W_z] @ x at every step
    _w_b_r: [hidden] param b_r
    _all__v0: [T,B,hidden] (h*r) at every step
    _WT__v0: [hidden,hidden] [U_n]^T
    _G__v0: [B,hidden] [U_n] @ (h*r) at this step
    _w_b_n: [hidden] param b_n
    _in_x: [T,B,input] input x
    _all_z: [T,B,hidden] z at every step

    Values the compiler named:
    _p1 = W_r @ x
    _p2 = U_r @ h
    _p3 = U_n @ (h*r)
    _v0 = (h*r)
    """
    _F = _seq_h.dtype.type
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_t, _b, :_n_hidden]
            _rb_G_h_1 = _G_h[_b]
            _rt_seq_h_2 = _seq_h[_t, _b]
            _rt_all__v0_3 = _all__v0[_t, _b]
            for _j in range(_n_hidden):
                _p1 = _rt_G_x_0[_j]
                _p2 = _rb_G_h_1[_j]
                b_r = _w_b_r[_j]
                h = _rt_seq_h_2[_j]
                r = sigmoid(_p1 + _p2 + b_r)
                _v0 = h*r
                _rt_all__v0_3[_j] = _v0
        matmul(_all__v0[_t, :_nb], _WT__v0, _G__v0[:_nb])
        for _b in range(_nb):
            _rb_G__v0_0 = _G__v0[_b]
            _rt_seq_h_1 = _seq_h[_t, _b]
            _rt_in_x_2 = _in_x[_t, _b, :_n_hidden]
            _rt_all_z_3 = _all_z[_t, _b]
            _rn_seq_h_4 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p3 = _rb_G__v0_0[_j]
                b_n = _w_b_n[_j]
                h = _rt_seq_h_1[_j]
                x = _rt_in_x_2[_j]
                z = _rt_all_z_3[_j]
                n = tanh(_p3 + b_n + tanh(x))
                h_new = h*(_F(1.0) - z) + n*z
                _rn_seq_h_4[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all__v0.shape[2]):
                _all__v0[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _B, _n_hidden, _active, _seq_h, _all_n, _in_x, _all_z, _dcarry_h, _dy_h_new, _d_h, _d_z, _dG__v0, _d_x, _W__v0, _dgemm__v0, _all_r, _dG_x, _W_h, _dgemm_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _all_n: [T,B,hidden] n at every step
    _in_x: [T,B,input] input x
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _d_h: [B,hidden] the gradient of h from its users in other fused loops, this step
    _d_z: [T,B,hidden] the gradient of z from its users in other fused loops, every step
    _dG__v0: [rows,hidden] the gradient of [U_n @ (h*r)] at every step, the rows that ran
    _d_x: [T,B,input] the gradient of x from its users in other fused loops, every step
    _W__v0: [hidden,hidden] [U_n]
    _dgemm__v0: [B,hidden] the gradient of (h*r) through its products, [U_n]^T @ theirs
    _all_r: [T,B,hidden] r at every step
    _dG_x: [T,B,2*hidden] the gradient of [W_r @ x; W_z @ x] and [U_r @ h] (their equal blocks once, as two column windows) at every step
    _W_h: [hidden,hidden] [U_r]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U_r]^T @ theirs
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_seq_h_0 = _seq_h[_t, _b]
            _rt_all_n_1 = _all_n[_t, _b]
            _rt_in_x_2 = _in_x[_t, _b, :_n_hidden]
            _rt_all_z_3 = _all_z[_t, _b]
            _rb_dcarry_h_4 = _dcarry_h[_b]
            _rt_dy_h_new_5 = _dy_h_new[_o + _b]
            _rb_d_h_6 = _d_h[_b]
            _rt_d_z_7 = _d_z[_t, _b]
            _rt_dG__v0_8 = _dG__v0[_o + _b]
            _rt_d_x_9 = _d_x[_t, _b, :_n_hidden]
            for _j in range(_n_hidden):
                h = _rt_seq_h_0[_j]
                n = _rt_all_n_1[_j]
                x = _rt_in_x_2[_j]
                z = _rt_all_z_3[_j]
                _c0 = _F(1.0) - n**2
                d_h_new = _rb_dcarry_h_4[_j] + _rt_dy_h_new_5[_j]
                d_n = d_h_new*z
                _rb_d_h_6[_j] = d_h_new*(_F(1.0) - z)
                _rt_d_z_7[_j] = d_h_new*(-h + n)
                _rt_dG__v0_8[_j] = _c0*d_n
                _rt_d_x_9[_j] = _c0*d_n*(_F(1.0) - tanh(x)**2)
        matmul(_dG__v0[_o:_o + _nb], _W__v0, _dgemm__v0[:_nb])
        for _b in range(_nb):
            _rt_seq_h_0 = _seq_h[_t, _b]
            _rt_all_r_1 = _all_r[_t, _b]
            _rb_dgemm__v0_2 = _dgemm__v0[_b]
            _rb_d_h_3 = _d_h[_b]
            _rt_dG_x_4 = _dG_x[_t, _b, :_n_hidden]
            for _j in range(_n_hidden):
                h = _rt_seq_h_0[_j]
                r = _rt_all_r_1[_j]
                _c1 = r*(_F(1.0) - r)
                d__v0 = _rb_dgemm__v0_2[_j]
                d_r = d__v0*h
                _rb_d_h_3[_j] += d__v0*r
                _rt_dG_x_4[_j] = _c1*d_r
        matmul(_dG_x[_t, :_nb, 0:_n_hidden], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb, _B):
            for _j in range(_d_z.shape[2]):
                _d_z[_t, _b, _j] = 0.0
            for _j in range(_d_x.shape[2]):
                _d_x[_t, _b, _j] = 0.0
            for _j in range(_dG_x.shape[2]):
                _dG_x[_t, _b, _j] = 0.0
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_h[_b, _j] = _d_h[_b, _j] + _dgemm_h[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_h, _all_n, _in_x, _all_z, _dcarry_h, _dy_h_new, _d_h, _d_z, _dG__v0, _d_x, _W__v0, _dgemm__v0, _all_r, _dG_x, _W_h, _dgemm_h, _dseq_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _all_n: [T,B,hidden] n at every step
    _in_x: [T,B,input] input x
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _d_h: [B,hidden] the gradient of h from its users in other fused loops, this step
    _d_z: [T,B,hidden] the gradient of z from its users in other fused loops, every step
    _dG__v0: [rows,hidden] the gradient of [U_n @ (h*r)] at every step, the rows that ran
    _d_x: [T,B,input] the gradient of x from its users in other fused loops, every step
    _W__v0: [hidden,hidden] [U_n]
    _dgemm__v0: [B,hidden] the gradient of (h*r) through its products, [U_n]^T @ theirs
    _all_r: [T,B,hidden] r at every step
    _dG_x: [T,B,2*hidden] the gradient of [W_r @ x; W_z @ x] and [U_r @ h] (their equal blocks once, as two column windows) at every step
    _W_h: [hidden,hidden] [U_r]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U_r]^T @ theirs
    _dseq_h: [T,B,hidden] the gradient of state h after every step from a layer above that reads it
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_seq_h_0 = _seq_h[_t, _b]
            _rt_all_n_1 = _all_n[_t, _b]
            _rt_in_x_2 = _in_x[_t, _b, :_n_hidden]
            _rt_all_z_3 = _all_z[_t, _b]
            _rb_dcarry_h_4 = _dcarry_h[_b]
            _rt_dy_h_new_5 = _dy_h_new[_o + _b]
            _rb_d_h_6 = _d_h[_b]
            _rt_d_z_7 = _d_z[_t, _b]
            _rt_dG__v0_8 = _dG__v0[_o + _b]
            _rt_d_x_9 = _d_x[_t, _b, :_n_hidden]
            for _j in range(_n_hidden):
                h = _rt_seq_h_0[_j]
                n = _rt_all_n_1[_j]
                x = _rt_in_x_2[_j]
                z = _rt_all_z_3[_j]
                _c0 = _F(1.0) - n**2
                d_h_new = _rb_dcarry_h_4[_j] + _rt_dy_h_new_5[_j]
                d_n = d_h_new*z
                _rb_d_h_6[_j] = d_h_new*(_F(1.0) - z)
                _rt_d_z_7[_j] = d_h_new*(-h + n)
                _rt_dG__v0_8[_j] = _c0*d_n
                _rt_d_x_9[_j] = _c0*d_n*(_F(1.0) - tanh(x)**2)
        matmul(_dG__v0[_o:_o + _nb], _W__v0, _dgemm__v0[:_nb])
        for _b in range(_nb):
            _rt_seq_h_0 = _seq_h[_t, _b]
            _rt_all_r_1 = _all_r[_t, _b]
            _rb_dgemm__v0_2 = _dgemm__v0[_b]
            _rb_d_h_3 = _d_h[_b]
            _rt_dG_x_4 = _dG_x[_t, _b, :_n_hidden]
            for _j in range(_n_hidden):
                h = _rt_seq_h_0[_j]
                r = _rt_all_r_1[_j]
                _c1 = r*(_F(1.0) - r)
                d__v0 = _rb_dgemm__v0_2[_j]
                d_r = d__v0*h
                _rb_d_h_3[_j] += d__v0*r
                _rt_dG_x_4[_j] = _c1*d_r
        matmul(_dG_x[_t, :_nb, 0:_n_hidden], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb, _B):
            for _j in range(_d_z.shape[2]):
                _d_z[_t, _b, _j] = 0.0
            for _j in range(_d_x.shape[2]):
                _d_x[_t, _b, _j] = 0.0
            for _j in range(_dG_x.shape[2]):
                _dG_x[_t, _b, _j] = 0.0
        if _t > 0:
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] = _d_h[_b, _j] + _dgemm_h[_b, _j] + _dseq_h[_t - 1, _b, _j]
            for _b in range(_nb, _B):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] += _dseq_h[_t - 1, _b, _j]
        else:
            for _b in range(_nb):
                for _j in range(_n_hidden):
                    _dcarry_h[_b, _j] = _d_h[_b, _j] + _dgemm_h[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _pre_backward_1(_T, _B, _n_hidden, _all_z, _d_z, _dG_x):
    """The backward pass of phase 1 of the values that read no state, over all steps after the time
    loop.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _all_z: [T,B,hidden] z at every step
    _d_z: [T,B,hidden] the gradient of z from its users in other fused loops, every step
    _dG_x: [T,B,2*hidden] the gradient of [W_r @ x; W_z @ x] and [U_r @ h] (their equal blocks once, as two column windows) at every step
    """
    _F = _all_z.dtype.type
    for _t in range(_T):
        for _b in range(_B):
            _rt_all_z_0 = _all_z[_t, _b]
            _rt_d_z_1 = _d_z[_t, _b]
            _rt_dG_x_2 = _dG_x[_t, _b, _n_hidden:2*_n_hidden]
            for _j in range(_n_hidden):
                z = _rt_all_z_0[_j]
                _c0 = z*(_F(1.0) - z)
                d_z = _rt_d_z_1[_j]
                _rt_dG_x_2[_j] = _c0*d_z


class Cell(runtime.CellBase):
    NAME = 'mut1'
    SPEC_SHA256 = '113d5f6d441f0a42c89c5dbddc70fc8c95077c334761802d41d9e57be8557881'
    DIMS = ['input', 'hidden']
    INPUTS = [('x', 'input')]
    STATES = [('h', 'hidden')]
    OUTPUTS = [('h_new', 'hidden')]
    CONSTRAINTS = [('input', 'hidden')]
    CONSTANTS = []
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = []
    PARAMS = [('W_z', ('hidden', 'input')), ('W_r', ('hidden', 'input')), ('U_r', ('hidden', 'hidden')), ('U_n', ('hidden', 'hidden')), ('b_z', ('hidden',)), ('b_r', ('hidden',)), ('b_n', ('hidden',))]
    MASKS = []
    INITS = [
        ('W_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_r', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_r', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_n', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_r', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_n', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,hidden]'), ('_all_z', 'values', 'z', '[T,B,hidden]'), ('_all_r', 'values', 'r', '[T,B,hidden]'), ('_all__v0', 'values', '_v0', '[T,B,hidden]'), ('_all_n', 'values', 'n', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[2*hidden,input]'), ('_W_h', 'weights', 'h', '[hidden,hidden]'), ('_W__v0', 'weights', '_v0', '[hidden,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['U_r', 'U_n', 'b_z', 'b_r', 'b_n']
    TRANSCENDENTALS = [('hidden', 4)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ()
    # the outputs whose gradient the backward pass takes as its packed rows ([rows, n])
    PACKED_DY = ('h_new',)
    # the layout of the torch.nn module this cell is (cellspec.torch_layout), or None
    TORCH = None
    # the dim a step kernel that keeps its weights splits over threads, and the recurrent weights
    # it reads ([operand dim, blocks of dim] each), or None (cellspec.owned)
    OWNED = None

    def _forward(self, inputs, state, tape, _active):
        _dtype = self.dtype
        _params = self.params
        _in_x = inputs['x']
        _T, _B = _active.shape[0], state['h'].shape[0]
        _rows = runtime.Rows(_active, _T, _B)
        _n_hidden = self.dims['hidden']
        _w_b_z = _params['b_z']
        _w_b_r = _params['b_r']
        _w_b_n = _params['b_n']
        _W_x = np.concatenate((_params['W_r'], _params['W_z'],))
        _W_h = _params['U_r']
        _WT_h = step_operand(_W_h.T, _B)
        _W__v0 = _params['U_n']
        _WT__v0 = step_operand(_W__v0.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G_h = np.empty((_B, _n_hidden), _dtype)
        _G__v0 = np.empty((_B, _n_hidden), _dtype)
        _all_z = np.empty((_T, _B, _n_hidden), _dtype)
        _all_r = np.empty((_T, _B, _n_hidden), _dtype)
        _all__v0 = np.empty((_T, _B, _n_hidden), _dtype)
        _all_n = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _rows_in_x = _rows.pack(_in_x)
        _G_x = _rows.spread(dot(_rows_in_x, _W_x.T))
        _pre_forward_1(_T, _B, _n_hidden, _G_x, _w_b_z, _all_z)
        if tape:
            _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all_r, _all__v0, _WT__v0, _G__v0, _w_b_n, _in_x, _all_z, _all_n)
        else:
            _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all__v0, _WT__v0, _G__v0, _w_b_n, _in_x, _all_z)
        _y = {'h_new': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_all_z': _all_z, '_all_r': _all_r, '_all__v0': _all__v0, '_all_n': _all_n, '_W_x': _W_x, '_W_h': _W_h, '_W__v0': _W__v0} if tape else None
        return _y, _final, _tape

    def _backward(self, tape, dy, dstate, dseq, dseq_given):
        _dtype = self.dtype
        _T, _B = tape.T, tape.B
        _active = tape.active
        _rows = runtime.Rows(_active, _T, _B)
        _n_input = self.dims['input']
        _n_hidden = self.dims['hidden']
        _in_x = tape.inputs['x']
        _seq_h = tape.arrays['_seq_h']
        _all_z = tape.arrays['_all_z']
        _all_r = tape.arrays['_all_r']
        _all__v0 = tape.arrays['_all__v0']
        _all_n = tape.arrays['_all_n']
        _W_x = tape.arrays['_W_x']
        _W_h = tape.arrays['_W_h']
        _W__v0 = tape.arrays['_W__v0']
        _W_h = step_operand(_W_h, _B)
        _W__v0 = step_operand(_W__v0, _B)
        _dy_h_new = dy['h_new']
        _dG_x = np.empty((_T, _B, 2*_n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_hidden), _dtype)
        _dG__v0 = np.empty((_rows.count, _n_hidden), _dtype)
        _dgemm__v0 = np.empty((_B, _n_hidden), _dtype)
        _d_x = np.empty((_T, _B, _n_input), _dtype)
        _d_h = np.empty((_B, _n_hidden), _dtype)
        _d_z = np.empty((_T, _B, _n_hidden), _dtype)
        _dcarry_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h[...] = dstate['h']
        _dseq_h = dseq['h']
        _has_dseq = dseq_given
        if _has_dseq:
            _dcarry_h += _dseq_h[_T - 1]
        if _has_dseq:
            _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_h, _all_n, _in_x, _all_z, _dcarry_h, _dy_h_new, _d_h, _d_z, _dG__v0, _d_x, _W__v0, _dgemm__v0, _all_r, _dG_x, _W_h, _dgemm_h, _dseq_h)
        else:
            _loop_backward(_T, _B, _n_hidden, _active, _seq_h, _all_n, _in_x, _all_z, _dcarry_h, _dy_h_new, _d_h, _d_z, _dG__v0, _d_x, _W__v0, _dgemm__v0, _all_r, _dG_x, _W_h, _dgemm_h)
        _rows_dG_x_h = _rows.pack(_dG_x[:, :, 0:_n_hidden])
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_rows_dG_x_h.T, _rows_seq_h)
        _rows_all__v0 = _rows.pack(_all__v0)
        _dW__v0 = dot(_dG__v0.T, _rows_all__v0)
        _pre_backward_1(_T, _B, _n_hidden, _all_z, _d_z, _dG_x)
        _rows_dG_x_x = _rows.pack(_dG_x[:, :, 0:2*_n_hidden])
        _dgemm_x = _rows.spread(dot(_rows_dG_x_x, _W_x))
        _rows_in_x = _rows.pack(_in_x)
        _dW_x = dot(_rows_dG_x_x.T, _rows_in_x)
        _dbias_x = column_sums(_rows_dG_x_x, 0, 2*_n_hidden)
        _dbias__v0 = column_sums(_dG__v0, 0, _n_hidden)
        _dparams = {}
        _dparams['W_z'] = _dW_x[_n_hidden:2*_n_hidden].copy()
        _dparams['W_r'] = _dW_x[0:_n_hidden].copy()
        _dparams['U_r'] = _dW_h[0:_n_hidden].copy()
        _dparams['U_n'] = _dW__v0[0:_n_hidden].copy()
        _dparams['b_z'] = _dbias_x[_n_hidden:2*_n_hidden].astype(_dtype)
        _dparams['b_r'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dparams['b_n'] = _dbias__v0[0:_n_hidden].astype(_dtype)
        _dinputs = {}
        _dinputs['x'] = _d_x + _dgemm_x
        _dstate = {'h': _dcarry_h}
        return _dinputs, _dparams, _dstate
