"""The elementwise functions that generated kernels call, for float32 and float64.

float64 keeps the accurate libm functions. float32 uses branch-free polynomial and rational
approximations that LLVM vectorises (this Numba has no SVML, so `math.tanh` on float32 is a scalar
libm call, ~58 ns an element against ~3 ns here):

* tanh: Eigen's rational approximation on [-7.905, 7.905] (max abs error 2.7e-7, see the tests);
* sigmoid(x) = 0.5 + 0.5*tanh(x/2), stable at both ends;
* exp: Cephes' expf, range reduced by ln 2 with the power of two built in the exponent bits;
* log: Cephes' logf, the exponent taken from the bits.

Each function is plain Python (NumPy) too, so the module works without compiling; inside Numba an
`overload` picks the implementation by argument type. Imports only numpy and numba.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

_F32 = np.float32


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of an integer."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        value = args[0]
        if bits.bitwidth > 32:
            value = builder.trunc(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def _bits_from_f32(typingctx, value):
    if value != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.sext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

    return types.int64(types.float32), codegen


# --- float32 implementations (Numba only) ------------------------------------------------------

_TANH_CLAMP = _F32(7.90531110763549805)
_A1, _A3, _A5, _A7 = _F32(4.89352455891786e-03), _F32(6.37261928875436e-04), _F32(1.48572235717979e-05), _F32(5.12229709037114e-08)
_A9, _A11, _A13 = _F32(-8.60467152213735e-11), _F32(2.00018790482477e-13), _F32(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = _F32(4.89352518554385e-03), _F32(2.26843463243900e-03), _F32(1.18534705686654e-04), _F32(1.19825839466702e-06)


@njit(inline="always")
def _tanh32(x):
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = x * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return p / q


_HALF, _ONE, _ZERO = _F32(0.5), _F32(1.0), _F32(0.0)


@njit(inline="always")
def _sigmoid32(x):
    return _HALF + _HALF * _tanh32(_HALF * x)


_EXP_HI, _EXP_LO = _F32(88.3762626647949), _F32(-87.3365447504019)
_LOG2E, _C1, _C2 = _F32(1.44269504088896341), _F32(0.693359375), _F32(-2.12194440e-4)
_E0, _E1, _E2, _E3, _E4, _E5 = _F32(1.9875691500e-4), _F32(1.3981999507e-3), _F32(8.3334519073e-3), _F32(4.1665795894e-2), _F32(1.6666665459e-1), _F32(5.0000001201e-1)


@njit(inline="always")
def _exp32(x):
    x = min(max(x, _EXP_LO), _EXP_HI)
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _C1 - n * _C2
    p = _E0 * r + _E1
    p = p * r + _E2
    p = p * r + _E3
    p = p * r + _E4
    p = p * r + _E5
    y = p * r * r + r + _ONE
    return y * _f32_from_bits((np.int64(n) + 127) << 23)


_SQRTHF = _F32(0.707106781186547524)
_L = (_F32(7.0376836292e-2), _F32(-1.1514610310e-1), _F32(1.1676998740e-1), _F32(-1.2420140846e-1), _F32(1.4249322787e-1), _F32(-1.6668057665e-1), _F32(2.0000714765e-1), _F32(-2.4999993993e-1), _F32(3.3333331174e-1))


@njit(inline="always")
def _log32(x):
    bits = _bits_from_f32(x)
    e = _F32((bits >> 23) & 0xFF) - _F32(126.0)
    m = _f32_from_bits((bits & 0x7FFFFF) | 0x3F000000)
    small = m < _SQRTHF
    e = e - _ONE if small else e
    m = m + m - _ONE if small else m - _ONE
    z = m * m
    y = _L[0] * m + _L[1]
    y = y * m + _L[2]
    y = y * m + _L[3]
    y = y * m + _L[4]
    y = y * m + _L[5]
    y = y * m + _L[6]
    y = y * m + _L[7]
    y = y * m + _L[8]
    y = y * m * z
    y = y + _C2 * e - _HALF * z
    out = m + y + _C1 * e
    # log of 0 is -inf, of a negative number nan, as libm has it
    return -np.inf if x == _ZERO else (np.nan if x < _ZERO else out)


@njit(inline="always")
def _softplus32(x):
    return max(x, _ZERO) + _log32(_ONE + _exp32(-abs(x)))


# --- the functions kernels call ---------------------------------------------------------------


def tanh(x):
    return np.tanh(x)


def exp(x):
    return np.exp(x)


def log(x):
    return np.log(x)


def sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def relu(x):
    return np.maximum(x, 0)


def step(x):
    return np.where(x > 0, 1.0, 0.0)


def sign(x):
    return np.sign(x)


def maximum(a, b):
    return np.where(a >= b, a, b)


def minimum(a, b):
    return np.where(a <= b, a, b)


@njit(inline="always")
def _sigmoid64(x):
    # stable both ways: exp of a non-positive number only
    e = math.exp(-abs(x))
    return 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)


@njit(inline="always")
def _softplus64(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _by_type(python_fn, f32, f64):
    """Give `python_fn` a Numba implementation: `f32` for float32 arguments, `f64` otherwise."""

    @overload(python_fn)
    def _impl(x):
        if x == types.float32:
            return lambda x: f32(x)
        if isinstance(x, types.Float):
            return lambda x: f64(x)
        return None


@njit(inline="always")
def _tanh64(x):
    return math.tanh(x)


@njit(inline="always")
def _exp64(x):
    return math.exp(x)


@njit(inline="always")
def _log64(x):
    return math.log(x)


_by_type(tanh, _tanh32, _tanh64)
_by_type(exp, _exp32, _exp64)
_by_type(log, _log32, _log64)
_by_type(sigmoid, _sigmoid32, _sigmoid64)
_by_type(softplus, _softplus32, _softplus64)


@overload(relu)
def _relu(x):
    if isinstance(x, types.Float):
        zero = np.float32(0.0) if x == types.float32 else 0.0
        return lambda x: x if x > zero else zero
    return None


@overload(step)
def _step(x):
    if isinstance(x, types.Float):
        one, zero = (np.float32(1.0), np.float32(0.0)) if x == types.float32 else (1.0, 0.0)
        return lambda x: one if x > zero else zero
    return None


@overload(sign)
def _sign(x):
    if isinstance(x, types.Float):
        one, zero = (np.float32(1.0), np.float32(0.0)) if x == types.float32 else (1.0, 0.0)
        return lambda x: one if x > zero else (-one if x < zero else zero)
    return None


@overload(maximum)
def _maximum(a, b):
    if isinstance(a, types.Float) and isinstance(b, types.Float):
        return lambda a, b: a if a >= b else b
    return None


@overload(minimum)
def _minimum(a, b):
    if isinstance(a, types.Float) and isinstance(b, types.Float):
        return lambda a, b: a if a <= b else b
    return None
