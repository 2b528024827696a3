"""clockwork: Clockwork RNN, hidden units in modules with periods 1, 2, 4, ... that update only when t mod period == 0

Generated from specs/clockwork.yaml (sha256 20df78eb9cfe772501028235183ea30bd373442cf8b719ba1cf6687d03a09857) by cellspec 0.1.0, taking
jitted code from cellspec's blas, fastmath, owned and sums of sha256 3785a55d289f0cf18ddf2408e2bcbd0a2339aa03ce9cf4a503bb92b87fbda149.
Do not edit: change the spec and run `cellspec build`.

Source: Koutník, Greff, Gomez & Schmidhuber 2014, "A Clockwork RNN", ICML, eqs. (1)-(3): modules sorted by increasing period T_i = 2^(i-1); module i updates at step t only when t mod T_i == 0 and otherwise keeps its value; W_H is block upper-triangular, so each module reads itself and the slower modules, never the faster ones. Here t counts from 0, so every module updates at the first step, and the module of unit u is u*modules//hidden (equal modules when modules divides hidden). The paper's output layer is left to the user (y is the hidden state).

Forward, one step (on the right, a state's name means its value at t-1):
    h_run = tanh(W @ x + U @ h + b)
    h_new = where(t % period == 0, h_run, h)
    h[t] = h_new
    y[t] = h_new

Backward, one step, derived by cellspec (d_v is the gradient of the loss with respect to v;
d_h[t] that of state h after step t, so step t starts from d_h[t] and gives d_h[t-1] to the h
it read; param gradients add up over all steps and sequences):
    d_h_new = d_h[t] + dy[t]
    d_h_run = d_h_new*(Piecewise((1, Eq(Mod(t, period), 0)), (0, True)))
    d(U @ h) = d_h_run*(1 - h_run**2)
    d(W @ x) = d_h_run*(1 - h_run**2)
    d_x = W^T @ d(W @ x)
    d_h[t-1] = U^T @ d(U @ h) + d_h_new*(Piecewise((0, Eq(Mod(t, period), 0)), (1, True)))
    d_W += d(W @ x) x^T
    d_U += d(U @ h) h^T
    d_b += d_h_run*(1 - h_run**2)

Schedule:
    before the time loop, over all T*B rows: [W] @ x  (one matrix product)
    in the time loop, per step: [U] @ h  (one matrix product)
    in the time loop, per step: h_run, h_new  (fused elementwise loop)

Shapes, T steps of B sequences:
    input x: [T,B,input]
    output h_new: [T,B,hidden]
    state h: [B,hidden]
    param W: [hidden,input], init uniform(1/sqrt(hidden))
    param U: [hidden,hidden], init uniform(1/sqrt(hidden))
    param b: [hidden], init uniform(1/sqrt(hidden))
"""

import math

import numba as nb
import numpy as np

from cellspec import runtime
from cellspec.blas import dot, matmul, step_operand
from cellspec.owned import meet
from cellspec.sums import column_sums
from cellspec.fastmath import tanh


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b, _w_period, _all_h_run):
    """The time loop of the forward pass, saving the tape: every step's products and fused
    elementwise loops, on the sequences still running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U]^T
    _G_h: [B,hidden] [U] @ h at this step
    _G_x: [rows,hidden] [W] @ x at every step, the rows that ran
    _w_b: [hidden] param b
    _w_period: [hidden] constant period
    _all_h_run: [T,B,hidden] h_run at every step

    Values the compiler named:
    _p0 = W @ x
    _p1 = U @ h
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b]
            _rb_G_h_1 = _G_h[_b]
            _rt_seq_h_2 = _seq_h[_t, _b]
            _rt_all_h_run_3 = _all_h_run[_t, _b]
            _rn_seq_h_4 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                b = _w_b[_j]
                h = _rt_seq_h_2[_j]
                period = _w_period[_j]
                t = _F(_t)
                h_run = tanh(_p0 + _p1 + b)
                h_new = ((h_run) if (t % period == _F(0.0)) else (h))
                _rt_all_h_run_3[_j] = h_run
                _rn_seq_h_4[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_all_h_run.shape[2]):
                _all_h_run[_t, _b, _j] = 0.0
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b, _w_period):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U]^T
    _G_h: [B,hidden] [U] @ h at this step
    _G_x: [rows,hidden] [W] @ x at every step, the rows that ran
    _w_b: [hidden] param b
    _w_period: [hidden] constant period

    Values the compiler named:
    _p0 = W @ x
    _p1 = U @ h
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h, _G_h[:_nb])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b]
            _rb_G_h_1 = _G_h[_b]
            _rt_seq_h_2 = _seq_h[_t, _b]
            _rn_seq_h_3 = _seq_h[_t + 1, _b]
            for _j in range(_n_hidden):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                b = _w_b[_j]
                h = _rt_seq_h_2[_j]
                period = _w_period[_j]
                t = _F(_t)
                h_run = tanh(_p0 + _p1 + b)
                h_new = ((h_run) if (t % period == _F(0.0)) else (h))
                _rn_seq_h_3[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_seq_h.shape[2]):
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_infer_owned(_u0, _u1, _P, _barrier, _T, _B, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b, _w_period):
    """The time loop of the forward pass, without the stores only the backward pass reads
    (tape=False): every step's products and fused elementwise loops, on the sequences still
    running, on this thread's units of hidden (cellspec.owned).

    _u0, _u1: the units of hidden this thread runs
    _P: the threads
    _barrier: [1] the steps the threads have finished, counted once per thread (cellspec.owned.meet)
    _T, _B: the steps and the sequences of the batch
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _seq_h: [T+1,B,hidden] state h: [0] the initial state, [t+1] after step t
    _WT_h: [hidden,hidden] [U]^T
    _G_h: [B,hidden] [U] @ h at this step
    _G_x: [rows,hidden] [W] @ x at every step, the rows that ran
    _w_b: [hidden] param b
    _w_period: [hidden] constant period

    Values the compiler named:
    _p0 = W @ x
    _p1 = U @ h
    """
    _F = _seq_h.dtype.type
    _o = 0
    for _t in range(_T):
        _nb = _active[_t]
        matmul(_seq_h[_t, :_nb], _WT_h[:, _u0:_u1], _G_h[:_nb, _u0:_u1])
        for _b in range(_nb):
            _rt_G_x_0 = _G_x[_o + _b, _u0:_u1]
            _rb_G_h_1 = _G_h[_b, _u0:_u1]
            _ru_w_b_2 = _w_b[_u0:_u1]
            _rt_seq_h_3 = _seq_h[_t, _b, _u0:_u1]
            _ru_w_period_4 = _w_period[_u0:_u1]
            _rn_seq_h_5 = _seq_h[_t + 1, _b, _u0:_u1]
            for _j in range(_u1 - _u0):
                _p0 = _rt_G_x_0[_j]
                _p1 = _rb_G_h_1[_j]
                b = _ru_w_b_2[_j]
                h = _rt_seq_h_3[_j]
                period = _ru_w_period_4[_j]
                t = _F(_t)
                h_run = tanh(_p0 + _p1 + b)
                h_new = ((h_run) if (t % period == _F(0.0)) else (h))
                _rn_seq_h_5[_j] = h_new
        for _b in range(_nb, _B):
            for _j in range(_u0, _u1):
                _seq_h[_t + 1, _b, _j] = _seq_h[_t, _b, _j]
        _o += _nb
        meet(_barrier, _P * (_t + 1))


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward(_T, _n_hidden, _active, _all_h_run, _w_period, _dcarry_h, _dy_h_new, _d_h, _dG_x, _W_h, _dgemm_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states.

    _T: the steps
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _all_h_run: [T,B,hidden] h_run at every step
    _w_period: [hidden] constant period
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _d_h: [B,hidden] the gradient of h from its users in other fused loops, this step
    _dG_x: [rows,hidden] the gradient of [W @ x] = [U @ h] at every step, the rows that ran
    _W_h: [hidden,hidden] [U]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U]^T @ theirs
    """
    _F = _all_h_run.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_all_h_run_0 = _all_h_run[_t, _b]
            _rb_dcarry_h_1 = _dcarry_h[_b]
            _rt_dy_h_new_2 = _dy_h_new[_o + _b]
            _rb_d_h_3 = _d_h[_b]
            _rt_dG_x_4 = _dG_x[_o + _b]
            for _j in range(_n_hidden):
                h_run = _rt_all_h_run_0[_j]
                period = _w_period[_j]
                t = _F(_t)
                _c0 = _F(1.0) - h_run**2
                _c1 = (t % period == _F(0.0))
                d_h_new = _rb_dcarry_h_1[_j] + _rt_dy_h_new_2[_j]
                d_h_run = d_h_new*((_F(1.0)) if _c1 else (_F(0.0)))
                _rb_d_h_3[_j] = d_h_new*((_F(0.0)) if _c1 else (_F(1.0)))
                _rt_dG_x_4[_j] = _c0*d_h_run
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
        for _b in range(_nb):
            for _j in range(_n_hidden):
                _dcarry_h[_b, _j] = _d_h[_b, _j] + _dgemm_h[_b, _j]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "contract", "arcp"})
def _loop_backward_dseq(_T, _B, _n_hidden, _active, _all_h_run, _w_period, _dcarry_h, _dy_h_new, _d_h, _dG_x, _W_h, _dgemm_h, _dseq_h):
    """The time loop of the backward pass, from the last step to the first: each step's fused loops
    in reverse, the products that carry gradient to the step before, and the gradient carried to
    the previous states and what the layer above gives every step's states.

    _T, _B: the steps and the sequences of the batch
    _n_hidden: the size of hidden
    _active: [T] the sequences still running at each step: the first _active[t] rows of a batch sorted longest first
    rows: the rows of the steps each sequence ran, step after step: step t's _active[t] rows from row sum(_active[:t]) (_o)
    _all_h_run: [T,B,hidden] h_run at every step
    _w_period: [hidden] constant period
    _dcarry_h: [B,hidden] d_h[t]: the gradient of state h after step t
    _dy_h_new: [rows,hidden] dy: the gradient of output h_new
    _d_h: [B,hidden] the gradient of h from its users in other fused loops, this step
    _dG_x: [rows,hidden] the gradient of [W @ x] = [U @ h] at every step, the rows that ran
    _W_h: [hidden,hidden] [U]
    _dgemm_h: [B,hidden] the gradient of h through its products, [U]^T @ theirs
    _dseq_h: [T,B,hidden] the gradient of state h after every step from a layer above that reads it
    """
    _F = _all_h_run.dtype.type
    _o = 0
    for _s in range(_T):
        _o += _active[_s]
    for _t in range(_T - 1, -1, -1):
        _nb = _active[_t]
        _o -= _nb
        for _b in range(_nb):
            _rt_all_h_run_0 = _all_h_run[_t, _b]
            _rb_dcarry_h_1 = _dcarry_h[_b]
            _rt_dy_h_new_2 = _dy_h_new[_o + _b]
            _rb_d_h_3 = _d_h[_b]
            _rt_dG_x_4 = _dG_x[_o + _b]
            for _j in range(_n_hidden):
                h_run = _rt_all_h_run_0[_j]
                period = _w_period[_j]
                t = _F(_t)
                _c0 = _F(1.0) - h_run**2
                _c1 = (t % period == _F(0.0))
                d_h_new = _rb_dcarry_h_1[_j] + _rt_dy_h_new_2[_j]
                d_h_run = d_h_new*((_F(1.0)) if _c1 else (_F(0.0)))
                _rb_d_h_3[_j] = d_h_new*((_F(0.0)) if _c1 else (_F(1.0)))
                _rt_dG_x_4[_j] = _c0*d_h_run
        matmul(_dG_x[_o:_o + _nb], _W_h, _dgemm_h[:_nb])
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
    NAME = 'clockwork'
    SPEC_SHA256 = '20df78eb9cfe772501028235183ea30bd373442cf8b719ba1cf6687d03a09857'
    DIMS = ['modules', 'input', 'hidden']
    INPUTS = [('x', 'input')]
    STATES = [('h', 'hidden')]
    OUTPUTS = [('h_new', 'hidden')]
    CONSTRAINTS = []
    CONSTANTS = [('period', 'hidden')]
    # formula trees, evaluated exactly at the cell's sizes by cellspec.formula
    CONSTANT_VALUES = [
        ('period', ('**', 2, ('//', ('*', ('index', 'i'), ('dim', 'modules')), ('dim', 'hidden')))),
    ]
    PARAMS = [('W', ('hidden', 'input')), ('U', ('hidden', 'hidden')), ('b', ('hidden',))]
    MASKS = [
        ('U', ('>=', ('//', ('*', ('index', 'j'), ('dim', 'modules')), ('dim', 'hidden')), ('//', ('*', ('index', 'i'), ('dim', 'modules')), ('dim', 'hidden')))),
    ]
    INITS = [
        ('W', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('U', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
        ('b', 'uniform', (('/', 1, ('sqrt', ('dim', 'hidden'))),)),
    ]
    TAPE = [('_seq_h', 'states', 'h', '[T+1,B,hidden]'), ('_all_h_run', 'values', 'h_run', '[T,B,hidden]'), ('_W_x', 'weights', 'x', '[hidden,input]'), ('_W_h', 'weights', 'h', '[hidden,hidden]')]
    # the params a taped call copies for the backward pass, which reads them as they are
    TAPE_PARAMS = ['W', 'b']
    TRANSCENDENTALS = [('hidden', 1)]
    # the inputs the passes take, and give the gradients of, as their packed rows ([rows, n])
    PACKED_INPUTS = ('x',)
    # the outputs whose gradient the backward pass takes as its packed rows ([rows, n])
    PACKED_DY = ('h_new',)
    # the layout of the torch.nn module this cell is (cellspec.torch_layout), or None
    TORCH = None
    # the dim a step kernel that keeps its weights splits over threads, and the recurrent weights
    # it reads ([operand dim, blocks of dim] each), or None (cellspec.owned)
    OWNED = {'dim': 'hidden', 'weights': [('hidden', 1)]}

    def _forward(self, inputs, state, tape, _active):
        _dtype = self.dtype
        _params = self.params
        _in_x = inputs['x']
        _T, _B = _active.shape[0], state['h'].shape[0]
        _n_hidden = self.dims['hidden']
        _w_b = _params['b']
        _w_period = self.constants['period']
        _W_x = _params['W']
        _W_h = _params['U'] * self.masks['U']
        _WT_h = step_operand(_W_h.T, _B)
        _seq_h = np.empty((_T + 1, _B, _n_hidden), _dtype)
        _G_h = np.empty((_B, _n_hidden), _dtype)
        _all_h_run = np.empty((_T, _B, _n_hidden), _dtype)
        _seq_h[0] = state['h']
        _G_x = dot(_in_x, _W_x.T)
        if tape:
            _loop_forward(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b, _w_period, _all_h_run)
        elif self.owned_units is not None:
            runtime.owned_steps(_loop_infer_owned, self.owned_units, (_T, _B, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b, _w_period,))
        else:
            _loop_infer(_T, _B, _n_hidden, _active, _seq_h, _WT_h, _G_h, _G_x, _w_b, _w_period)
        _y = {'h_new': _seq_h[1:]}
        _final = {'h': _seq_h[_T].copy()}
        _tape = {'_seq_h': _seq_h, '_all_h_run': _all_h_run, '_W_x': _W_x, '_W_h': _W_h} if tape else None
        return _y, _final, _tape

    def _backward(self, tape, dy, dstate, dseq, dseq_given):
        _dtype = self.dtype
        _T, _B = tape.T, tape.B
        _active = tape.active
        _rows = runtime.Rows(_active, _T, _B)
        _n_hidden = self.dims['hidden']
        _in_x = tape.inputs['x']
        _w_period = self.constants['period']
        _seq_h = tape.arrays['_seq_h']
        _all_h_run = tape.arrays['_all_h_run']
        _W_x = tape.arrays['_W_x']
        _W_h = tape.arrays['_W_h']
        _W_h = step_operand(_W_h, _B)
        _dy_h_new = dy['h_new']
        _dG_x = np.empty((_rows.count, _n_hidden), _dtype)
        _dgemm_h = np.empty((_B, _n_hidden), _dtype)
        _d_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h = np.empty((_B, _n_hidden), _dtype)
        _dcarry_h[...] = dstate['h']
        _dseq_h = dseq['h']
        _has_dseq = dseq_given
        if _has_dseq:
            _dcarry_h += _dseq_h[_T - 1]
        if _has_dseq:
            _loop_backward_dseq(_T, _B, _n_hidden, _active, _all_h_run, _w_period, _dcarry_h, _dy_h_new, _d_h, _dG_x, _W_h, _dgemm_h, _dseq_h)
        else:
            _loop_backward(_T, _n_hidden, _active, _all_h_run, _w_period, _dcarry_h, _dy_h_new, _d_h, _dG_x, _W_h, _dgemm_h)
        _rows_seq_h = _rows.pack(_seq_h[:-1])
        _dW_h = dot(_dG_x.T, _rows_seq_h)
        _dgemm_x = dot(_dG_x, _W_x)
        _dW_x = dot(_dG_x.T, _in_x)
        _dbias_x = column_sums(_dG_x, 0, _n_hidden)
        _dparams = {}
        _dparams['W'] = _dW_x[0:_n_hidden].copy()
        _dparams['U'] = (_dW_h[0:_n_hidden]) * self.masks['U']
        _dparams['b'] = _dbias_x[0:_n_hidden].astype(_dtype)
        _dinputs = {}
        _dinputs['x'] = _dgemm_x
        _dstate = {'h': _dcarry_h}
        return _dinputs, _dparams, _dstate
