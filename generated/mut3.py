"""mut3: MUT3, the third of the three GRU-like cells found by architecture search

Generated from specs/mut3.yaml (sha256 392f38ace90fcae082ad08edbeb2496a72a9be9294abcf64c395b985e61ec256) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Jozefowicz, Zaremba & Sutskever 2015, "An empirical exploration of recurrent network architectures", ICML (PMLR 37), section 3, MUT3: z = sigm(W_xz x_t + W_hz tanh(h_t) + b_z), r = sigm(W_xr x_t + W_hr h_t + b_r), h_{t+1} = tanh(W_hh (r*h_t) + W_xh x_t + b_h)*z + h_t*(1 - z). Note that z weights the new candidate, the opposite of the GRU's z.

Forward, one step (on the right, a state's name means its value at t-1):
    z = sigmoid(W_z @ x + U_z @ tanh(h) + b_z)
    r = sigmoid(W_r @ x + U_r @ h + b_r)
    n = tanh(U_n @ (r*h) + W_n @ x + b_n)
    h_new = n*z + h*(1 - z)
    h[t] = h_new
    y[t] = h_new

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_h_new = d_h[t] + dy[t]
    d_n = d_h_new*(z)
    d(W_n @ x) = d_n*(1 - n**2)
    d(U_n @ (h*r)) = d_n*(1 - n**2)
    d(h*r) = U_n^T @ d(U_n @ (h*r))
    d_r = d(h*r)*(h)
    d(U_r @ h) = d_r*(r*(1 - r))
    d(W_r @ x) = d_r*(r*(1 - r))
    d_z = d_h_new*(-h + n)
    d(U_z @ (tanh(h))) = d_z*(z*(1 - z))
    d(tanh(h)) = U_z^T @ d(U_z @ (tanh(h)))
    d(W_z @ x) = d_z*(z*(1 - z))
    d_x = W_z^T @ d(W_z @ x) + W_r^T @ d(W_r @ x) + W_n^T @ d(W_n @ x)
    d_h[t-1] = d(tanh(h))*(1 - (tanh(h))**2) + U_r^T @ d(U_r @ h) + d(h*r)*(r) + d_h_new*(1 - z)
    d_W_z += d(W_z @ x) x^T
    d_W_r += d(W_r @ x) x^T
    d_W_n += d(W_n @ x) x^T
    d_U_z += d(U_z @ (tanh(h))) (tanh(h))^T
    d_U_r += d(U_r @ h) h^T
    d_U_n += d(U_n @ (h*r)) (h*r)^T
    d_b_z += d_z*(z*(1 - z))
    d_b_r += d_r*(r*(1 - r))
    d_b_n += d_n*(1 - n**2)

Schedule:
    before the time loop, over all T*B rows: [W_z; W_r; W_n] @ x  (one matrix product)
    in the time loop, per step: [U_r] @ h  (one matrix product)
    in the time loop, per step: (tanh(h)), r, (h*r)  (fused elementwise loop)
    in the time loop, per step: [U_z] @ (tanh(h))  (one matrix product)
    in the time loop, per step: [U_n] @ (h*r)  (one matrix product)
    in the time loop, per step: z, n, h_new  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    output h_new: [T,B,hidden]
    state h: [B,hidden]
    param W_z: [hidden,input], init uniform(1/sqrt(hidden))
    param W_r: [hidden,input], init uniform(1/sqrt(hidden))
    param W_n: [hidden,input], init uniform(1/sqrt(hidden))
    param U_z: [hidden,hidden], init uniform(1/sqrt(hidden))
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
def _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all__v0, _all_r, _all__v1, _WT__v0, _G__v0, _WT__v1, _G__v1, _w_b_n, _w_b_z, _all_z, _all_n):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U_r]^T
    _G_h: [B,hidden] [U_r] @ h at this step
    _G_x: [rows,3*hidden] [W_z; W_r; W_n] @ x at every step, the rows that ran
    _w_b_r: [hidden] param b_r
    _all__v0: [T,B,hidden] (tanh(h)) at every step
    _all_r: [T,B,hidden] r at every step
    _all__v1: [T,B,hidden] (h*r) at every step
    _WT__v0: [hidden,hidden] [U_z]^T
    _G__v0: [B,hidden] [U_z] @ (tanh(h)) at this step
    _WT__v1: [hidden,hidden] [U_n]^T
    _G__v1: [B,hidden] [U_n] @ (h*r) at this step
    _w_b_n: [hidden] param b_n
    _w_b_z: [hidden] param b_z
    _all_z: [T,B,hidden] z at every step
    _all_n: [T,B,hidden] n at every step

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = U_z @ (tanh(h))
    _p2 = W_r @ x
    _p3 = U_r @ h
    _p4 = U_n @ (h*r)
    _p5 = W_n @ x
    _v0 = (tanh(h))
    _v1 = (h*r)
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_1 = _G_h[_b]
            _rt_seq_h_2 = _seq_h[_t, _b]
            _rt_all__v0_3 = _all__v0[_t, _b]
            _rt_all_r_4 = _all_r[_t, _b]
            _rt_all__v1_5 = _all__v1[_t, _b]
            for _j in range(_n_hidden):
                _p2 = _rt_G_x_0[_j]
                _p3 = _rb_G_h_1[_j]
                b_r = _w_b_r[_j]
                h = _rt_seq_h_2[_j]
                _v0 = tanh(h)
                r = sigmoid(_p2 + _p3 + b_r)
                _v1 = h*r
                _rt_all__v0_3[_j] = _v0
                _rt_all_r_4[_j] = r
                _rt_all__v1_5[_j] = _v1
        matmul(_all__v0[_t, :_nb], _WT__v0, _G__v0[:_nb])
        matmul(_all__v1[_t, :_nb], _WT__v1, _G__v1[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G__v0_1 = _G__v0[_b]
            _rb_G__v1_2 = _G__v1[_b]
            _rt_G_x_3 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_seq_h_4 = _seq_h[_t, _b]
            _rt_all_z_5 = _all_z[_t, _b]
            _rt_all_n_6 = _all_n[_t, _b]
            _rn_seq_h_7 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G__v0_1[_j]
                _p4 = _rb_G__v1_2[_j]
                _p5 = _rt_G_x_3[_j]
                b_n = _w_b_n[_j]
                b_z = _w_b_z[_j]
                h = _rt_seq_h_4[_j]
                z = sigmoid(_p0 + _p1 + b_z)
                n = tanh(_p4 + _p5 + b_n)
                h_new = h*(_F(1.0) - z) + n*z
                _rt_all_z_5[_j] = z
                _rt_all_n_6[_j] = n
                _rn_seq_h_7[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all__v0.shape[2]):
                _all__v0[_t, _b, _j] = 0.0
                _all_r[_t, _b, _j] = 0.0
                _all__v1[_t, _b, _j] = 0.0
                _all_z[_t, _b, _j] = 0.0
                _all_n[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all__v0, _all__v1, _WT__v0, _G__v0, _WT__v1, _G__v1, _w_b_n, _w_b_z):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U_r]^T
    _G_h: [B,hidden] [U_r] @ h at this step
    _G_x: [rows,3*hidden] [W_z; W_r; W_n] @ x at every step, the rows that ran
    _w_b_r: [hidden] param b_r
    _all__v0: [T,B,hidden] (tanh(h)) at every step
    _all__v1: [T,B,hidden] (h*r) at every step
    _WT__v0: [hidden,hidden] [U_z]^T
    _G__v0: [B,hidden] [U_z] @ (tanh(h)) at this step
    _WT__v1: [hidden,hidden] [U_n]^T
    _G__v1: [B,hidden] [U_n] @ (h*r) at this step
    _w_b_n: [hidden] param b_n
    _w_b_z: [hidden] param b_z

    Values the compiler named:
    _p0 = W_z @ x
    _p1 = U_z @ (tanh(h))
    _p2 = W_r @ x
    _p3 = U_r @ h
    _p4 = U_n @ (h*r)
    _p5 = W_n @ x
    _v0 = (tanh(h))
    _v1 = (h*r)
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, _n_hidden:2*_n_hidden]
            _rb_G_h_1 = _G_h[_b]
            _rt_seq_h_2 = _seq_h[_t, _b]
            _rt_all__v0_3 = _all__v0[_t, _b]
            _rt_all__v1_4 = _all__v1[_t, _b]
            for _j in range(_n_hidden):
                _p2 = _rt_G_x_0[_j]
                _p3 = _rb_G_h_1[_j]
                b_r = _w_b_r[_j]
                h = _rt_seq_h_2[_j]
                _v0 = tanh(h)
                r = sigmoid(_p2 + _p3 + b_r)
                _v1 = h*r
                _rt_all__v0_3[_j] = _v0
                _rt_all__v1_4[_j] = _v1
        matmul(_all__v0[_t, :_nb], _WT__v0, _G__v0[:_nb])
        matmul(_all__v1[_t, :_nb], _WT__v1, _G__v1[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, :_n_hidden]
            _rb_G__v0_1 = _G__v0[_b]
            _rb_G__v1_2 = _G__v1[_b]
            _rt_G_x_3 = _G_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_seq_h_4 = _seq_h[_t, _b]
            _rn_seq_h_5 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G__v0_1[_j]
                _p4 = _rb_G__v1_2[_j]
                _p5 = _rt_G_x_3[_j]
                b_n = _w_b_n[_j]
                b_z = _w_b_z[_j]
                h = _rt_seq_h_4[_j]
                z = sigmoid(_p0 + _p1 + b_z)
                n = tanh(_p4 + _p5 + b_n)
                h_new = h*(_F(1.0) - z) + n*z
                _rn_seq_h_5[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all__v0.shape[2]):
                _all__v0[_t, _b, _j] = 0.0
                _all__v1[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _n_hidden, _active, _seq_h, _all_n, _all_z, _dcarry_h, _dy_h_new, _d_h, _dG__v1, _dG_x, _W__v0, _dgemm__v0, _W__v1, _dgemm__v1, _all__v0, _all_r, _dG_h, _W_h, _dgemm_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T: the steps
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _all_n: [T,B,hidden] n at every step
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _d_h: [B,hidden] the gradient of h from its users in other fused loops, this step
    _dG__v1: [rows,hidden] the gradient of [U_n @ (h*r)] at every step, the rows that ran
    _dG_x: [rows,3*hidden] the gradient of [W_z @ x; W_r @ x; W_n @ x] and [U_z @ (tanh(h))] (their equal blocks once, as two column windows) at every step, the rows that ran
    _W__v0: [hidden,hidden] [U_z]
    _dgemm__v0: [B,hidden] the gradient of (tanh(h)) through its products, [U_z]^T @ theirs
    _W__v1: [hidden,hidden] [U_n]
    _dgemm__v1: [B,hidden] the gradient of (h*r) through its products, [U_n]^T @ theirs
    _all__v0: [T,B,hidden] (tanh(h)) at every step
    _all_r: [T,B,hidden] r at every step
    _dG_h: [rows,hidden] the gradient of [U_r @ h] at every step, the rows that ran
    _W_h: [hidden,hidden] [U_r]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U_r]^T @ theirs

    Values the compiler named:
    _v0 = (tanh(h))
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
            _rt_all_z_2 = _all_z[_t, _b]
            _rb_dcarry_h_3 = _dcarry_h[_b]
            _rt_dy_h_new_4 = _dy_h_new[_o + _b]
            _rb_d_h_5 = _d_h[_b]
            _rt_dG__v1_6 = _dG__v1[_o + _b]
            _rt_dG_x_7 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_x_8 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                h = _rt_seq_h_0[_j]
                n = _rt_all_n_1[_j]
                z = _rt_all_z_2[_j]
                _c0 = _F(1.0) - z
                _c1 = _c0*z
                _c2 = _F(1.0) - n**2
                d_h_new = _rb_dcarry_h_3[_j] + _rt_dy_h_new_4[_j]
                d_n = d_h_new*z
                d_z = d_h_new*(-h + n)
                _rb_d_h_5[_j] = _c0*d_h_new
                _rt_dG__v1_6[_j] = _c2*d_n
                _rt_dG_x_7[_j] = _c2*d_n
                _rt_dG_x_8[_j] = _c1*d_z
        matmul(_dG_x[_o:_o + _nb, 0:_n_hidden], _W__v0, _dgemm__v0[:_nb])
        matmul(_dG__v1[_o:_o + _nb], _W__v1, _dgemm__v1[:_nb])
        for _b in range(_nb):
            _rt_all__v0_0 = _all__v0[_t, _b]
            _rt_seq_h_1 = _seq_h[_t, _b]
            _rt_all_r_2 = _all_r[_t, _b]
            _rb_dgemm__v1_3 = _dgemm__v1[_b]
            _rb_dgemm__v0_4 = _dgemm__v0[_b]
            _rb_d_h_5 = _d_h[_b]
            _rt_dG_x_6 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_h_7 = _dG_h[_o + _b]
            for _j in range(_n_hidden):
                _v0 = _rt_all__v0_0[_j]
                h = _rt_seq_h_1[_j]
                r = _rt_all_r_2[_j]
                _c3 = r*(_F(1.0) - r)
                d__v1 = _rb_dgemm__v1_3[_j]
                d_r = d__v1*h
                d__v0 = _rb_dgemm__v0_4[_j]
                _rb_d_h_5[_j] += d__v0*(_F(1.0) - _v0**2) + d__v1*r
                _rt_dG_x_6[_j] = _c3*d_r
                _rt_dG_h_7[_j] = _c3*d_r
        matmul(_dG_h[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_h[_b, _j] = _d_h[_b, _j] + _dgemm_h[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_h, _all_n, _all_z, _dcarry_h, _dy_h_new, _d_h, _dG__v1, _dG_x, _W__v0, _dgemm__v0, _W__v1, _dgemm__v1, _all__v0, _all_r, _dG_h, _W_h, _dgemm_h, _dseq_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _all_n: [T,B,hidden] n at every step
    _all_z: [T,B,hidden] z at every step
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _d_h: [B,hidden] the gradient of h from its users in other fused loops, this step
    _dG__v1: [rows,hidden] the gradient of [U_n @ (h*r)] at every step, the rows that ran
    _dG_x: [rows,3*hidden] the gradient of [W_z @ x; W_r @ x; W_n @ x] and [U_z @ (tanh(h))] (their equal blocks once, as two column windows) at every step, the rows that ran
    _W__v0: [hidden,hidden] [U_z]
    _dgemm__v0: [B,hidden] the gradient of (tanh(h)) through its products, [U_z]^T @ theirs
    _W__v1: [hidden,hidden] [U_n]
    _dgemm__v1: [B,hidden] the gradient of (h*r) through its products, [U_n]^T @ theirs
    _all__v0: [T,B,hidden] (tanh(h)) at every step
    _all_r: [T,B,hidden] r at every step
    _dG_h: [rows,hidden] the gradient of [U_r @ h] at every step, the rows that ran
    _W_h: [hidden,hidden] [U_r]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U_r]^T @ theirs
    _dseq_h: [T,B,hidden] the gradient of state h after every step from a layer above that reads it

    Values the compiler named:
    _v0 = (tanh(h))
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
            _rt_all_z_2 = _all_z[_t, _b]
            _rb_dcarry_h_3 = _dcarry_h[_b]
            _rt_dy_h_new_4 = _dy_h_new[_o + _b]
            _rb_d_h_5 = _d_h[_b]
            _rt_dG__v1_6 = _dG__v1[_o + _b]
            _rt_dG_x_7 = _dG_x[_o + _b, 2*_n_hidden:3*_n_hidden]
            _rt_dG_x_8 = _dG_x[_o + _b, :_n_hidden]
            for _j in range(_n_hidden):
                h = _rt_seq_h_0[_j]
                n = _rt_all_n_1[_j]
                z = _rt_all_z_2[_j]
                _c0 = _F(1.0) - z
                _c1 = _c0*z
                _c2 = _F(1.0) - n**2
                d_h_new = _rb_dcarry_h_3[_j] + _rt_dy_h_new_4[_j]
                d_n = d_h_new*z
                d_z = d_h_new*(-h + n)
                _rb_d_h_5[_j] = _c0*d_h_new
                _rt_dG__v1_6[_j] = _c2*d_n
                _rt_dG_x_7[_j] = _c2*d_n
                _rt_dG_x_8[_j] = _c1*d_z
        matmul(_dG_x[_o:_o + _nb, 0:_n_hidden], _W__v0, _dgemm__v0[:_nb])
        matmul(_dG__v1[_o:_o + _nb], _W__v1, _dgemm__v1[:_nb])
        for _b in range(_nb):
            _rt_all__v0_0 = _all__v0[_t, _b]
            _rt_seq_h_1 = _seq_h[_t, _b]
            _rt_all_r_2 = _all_r[_t, _b]
            _rb_dgemm__v1_3 = _dgemm__v1[_b]
            _rb_dgemm__v0_4 = _dgemm__v0[_b]
            _rb_d_h_5 = _d_h[_b]
            _rt_dG_x_6 = _dG_x[_o + _b, _n_hidden:2*_n_hidden]
            _rt_dG_h_7 = _dG_h[_o + _b]
            for _j in range(_n_hidden):
                _v0 = _rt_all__v0_0[_j]
                h = _rt_seq_h_1[_j]
                r = _rt_all_r_2[_j]
                _c3 = r*(_F(1.0) - r)
                d__v1 = _rb_dgemm__v1_3[_j]
                d_r = d__v1*h
                d__v0 = _rb_dgemm__v0_4[_j]
                _rb_d_h_5[_j] += d__v0*(_F(1.0) - _v0**2) + d__v1*r
                _rt_dG_x_6[_j] = _c3*d_r
                _rt_dG_h_7[_j] = _c3*d_r
        matmul(_dG_h[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
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


class Cell(runtime.CellBase):
    NAME = 'mut3'
    SPEC_SHA256 = '392f38ace90fcae082ad08edbeb2496a72a9be9294abcf64c395b985e61ec256'
    DIMS = ['input', 'hidden']
    INPUTS = [('x', 'input')]
    STATES = [('h', 'hidden')]
    OUTPUTS = [('h_new', 'hidden')]
    CONSTRAINTS = []
    CONSTANTS = []
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = []
    PARAMS = [('W_z', ('hidden', 'input')), ('W_r', ('hidden', 'input')), ('W_n', ('hidden', 'input')), ('U_z', ('hidden', 'hidden')), ('U_r', ('hidden', 'hidden')), ('U_n', ('hidden', 'hidden')), ('b_z', ('hidden',)), ('b_r', ('hidden',)), ('b_n', ('hidden',))]
    MASKS = []
    INITS = [
        ('W_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_r', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('W_n', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_r', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U_n', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_z', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_r', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b_n', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,hidden]'), ('_all__v0', 'values', '_v0', '[T,B,hidden]'), ('_all_z', 'values', 'z', '[T,B,hidden]'), ('_all_r', 'values', 'r', '[T,B,hidden]'), ('_all__v1', 'values', '_v1', '[T,B,hidden]'), ('_all_n', 'values', 'n', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[3*hidden,input]'), ('_W__v0', 'weights', '_v0', '[hidden,hidden]'), ('_W_h', 'weights', 'h', '[hidden,hidden]'), ('_W__v1', 'weights', '_v1', '[hidden,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['U_z', 'U_r', 'U_n', 'b_z', 'b_r', 'b_n']
    TRANSCENDENTALS = [('hidden', 4)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ('x',)
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
        _n_hidden = self.dims['hidden']
        _w_b_z = _params['b_z']
        _w_b_r = _params['b_r']
        _w_b_n = _params['b_n']
        _W_x = np.concatenate((_params['W_z'], _params['W_r'], _params['W_n'],))
        _W__v0 = _params['U_z']
        _WT__v0 = step_operand(_W__v0.T, _B)
        _W_h = _params['U_r']
        _WT_h = step_operand(_W_h.T, _B)
        _W__v1 = _params['U_n']
        _WT__v1 = step_operand(_W__v1.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G__v0 = np.empty((_B, _n_hidden), _dtype)
        _G_h = np.empty((_B, _n_hidden), _dtype)
        _G__v1 = np.empty((_B, _n_hidden), _dtype)
        _all__v0 = np.empty((_T, _B, _n_hidden), _dtype)
        _all_z = np.empty((_T, _B, _n_hidden), _dtype)
        _all_r = np.empty((_T, _B, _n_hidden), _dtype)
        _all__v1 = np.empty((_T, _B, _n_hidden), _dtype)
        _all_n = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _G_x = dot(_in_x, _W_x.T)
        if tape:
            _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all__v0, _all_r, _all__v1, _WT__v0, _G__v0, _WT__v1, _G__v1, _w_b_n, _w_b_z, _all_z, _all_n)
        else:
            _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b_r, _all__v0, _all__v1, _WT__v0, _G__v0, _WT__v1, _G__v1, _w_b_n, _w_b_z)
        _y = {'h_new': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_all__v0': _all__v0, '_all_z': _all_z, '_all_r': _all_r, '_all__v1': _all__v1, '_all_n': _all_n, '_W_x': _W_x, '_W__v0': _W__v0, '_W_h': _W_h, '_W__v1': _W__v1} if tape else None
        return _y, _final, _tape

    def _backward(self, tape, dy, dstate, dseq, dseq_given):
        _dtype = self.dtype
        _T, _B = tape.T, tape.B
        _active = tape.active
        _rows = runtime.Rows(_active, _T, _B)
        _n_hidden = self.dims['hidden']
        _in_x = tape.inputs['x']
        _seq_h = tape.arrays['_seq_h']
        _all__v0 = tape.arrays['_all__v0']
        _all_z = tape.arrays['_all_z']
        _all_r = tape.arrays['_all_r']
        _all__v1 = tape.arrays['_all__v1']
        _all_n = tape.arrays['_all_n']
        _W_x = tape.arrays['_W_x']
        _W__v0 = tape.arrays['_W__v0']
        _W_h = tape.arrays['_W_h']
        _W__v1 = tape.arrays['_W__v1']
        _W_h = step_operand(_W_h, _B)
        _W__v0 = step_operand(_W__v0, _B)
        _W__v1 = step_operand(_W__v1, _B)
        _dy_h_new = dy['h_new']
        _dG_x = np.empty((_rows.count, 3*_n_hidden), _dtype)
        _dgemm__v0 = np.empty((_B, _n_hidden), _dtype)
        _dG_h = np.empty((_rows.count, _n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_hidden), _dtype)
        _dG__v1 = np.empty((_rows.count, _n_hidden), _dtype)
        _dgemm__v1 = np.empty((_B, _n_hidden), _dtype)
        _d_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h[...] = dstate['h']
        _dseq_h = dseq['h']
        _has_dseq = dseq_given
        if _has_dseq:
            _dcarry_h += _dseq_h[_T - 1]
        if _has_dseq:
            _loop_backward_dseq(_T, _B, _n_hidden, _active, _seq_h, _all_n, _all_z, _dcarry_h, _dy_h_new, _d_h, _dG__v1, _dG_x, _W__v0, _dgemm__v0, _W__v1, _dgemm__v1, _all__v0, _all_r, _dG_h, _W_h, _dgemm_h, _dseq_h)
        else:
            _loop_backward(_T, _n_hidden, _active, _seq_h, _all_n, _all_z, _dcarry_h, _dy_h_new, _d_h, _dG__v1, _dG_x, _W__v0, _dgemm__v0, _W__v1, _dgemm__v1, _all__v0, _all_r, _dG_h, _W_h, _dgemm_h)
        _rows_all__v0 = _rows.pack(_all__v0)
        _dW__v0 = dot(_dG_x[:, 0:_n_hidden].T, _rows_all__v0)
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_dG_h.T, _rows_seq_h)
        _rows_all__v1 = _rows.pack(_all__v1)
        _dW__v1 = dot(_dG__v1.T, _rows_all__v1)
        _dgemm_x = dot(_dG_x[:, 0:3*_n_hidden], _W_x)
        _dW_x = dot(_dG_x[:, 0:3*_n_hidden].T, _in_x)
        _dbias_x = column_sums(_dG_x, 0, 3*_n_hidden)
        _dparams = {}
        _dparams['W_z'] = _dW_x[0:_n_hidden].copy()
        _dparams['W_r'] = _dW_x[_n_hidden:2*_n_hidden].copy()
        _dparams['W_n'] = _dW_x[2*_n_hidden:3*_n_hidden].copy()
        _dparams['U_z'] = _dW__v0[0:_n_hidden].copy()
        _dparams['U_r'] = _dW_h[0:_n_hidden].copy()
        _dparams['U_n'] = _dW__v1[0:_n_hidden].copy()
        _dparams['b_z'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dparams['b_r'] = _dbias_x[_n_hidden:2*_n_hidden].astype(_dtype)
        _dparams['b_n'] = _dbias_x[2*_n_hidden:3*_n_hidden].astype(_dtype)
        _dinputs = {}
        _dinputs['x'] = _dgemm_x
        _dstate = {'h': _dcarry_h}
        return _dinputs, _dparams, _dstate
