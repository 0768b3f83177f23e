"""Vectorizable float32 transcendentals in LLVM IR: exp, log, tanh.

Calls to libm block the loop vectorizer; these are straight-line code (selects, no branches),
so a loop over them vectorizes to the host's full width. Float64 keeps LLVM's intrinsics.

exp(x):  n = round(x / ln2), r = x - n*ln2 (ln2 split in two parts, Cody-Waite), so that
         |r| <= ln2/2; e^r by its Taylor polynomial to degree 7 (the truncation error,
         r^8/8! < 6e-9, is below half an ulp); then the result is scaled by 2^n in two steps,
         2^(n/2) * 2^(n - n/2), so that overflow gives inf and underflow gives denormals.
log(x):  x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m-1)/(m+1),
         |s| <= 0.1716, by its odd series to s^11; result e*ln2 + log(m).
tanh(x): an odd Taylor polynomial to x^15 for |x| < 0.55, else sign(x) (1 - t^2)/(1 + t^2)
         with t = e^-|x| (the exponential sigmoid also needs).
Measured maximum errors are in tests/test_vmath.py (and the README).
"""
from __future__ import annotations

import math

from llvmlite import ir

F32 = ir.FloatType()
I32 = ir.IntType(32)


def _f(value: float) -> ir.Constant:
    return ir.Constant(F32, value)


def _i(value: int) -> ir.Constant:
    return ir.Constant(I32, value)


def _call(b: ir.IRBuilder, name: str, args):
    from flowjit.codegen.scalar import call_intrinsic
    return call_intrinsic(b, name, args)


def _horner(b: ir.IRBuilder, x: ir.Value, coefficients) -> ir.Value:
    """c0 + x*(c1 + x*(c2 + ...)), with fused multiply-adds."""
    acc = _f(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = _call(b, "llvm.fma", [acc, x, _f(c)])
    return acc


def _pow2(b: ir.IRBuilder, n: ir.Value) -> ir.Value:
    """2^n as a float for integer n in [-126, 127]."""
    return b.bitcast(b.shl(b.add(n, _i(127)), _i(23)), F32)


EXP_TAYLOR = [1.0 / math.factorial(i) for i in range(8)]
LN2_HI = 0.693145751953125       # ln 2 rounded to 16 significant bits: n*LN2_HI is exact
LN2_LO = math.log(2) - LN2_HI


def exp_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    clamped = _call(b, "llvm.minnum", [_call(b, "llvm.maxnum", [x, _f(-104.0)]), _f(89.0)])
    n_float = _call(b, "llvm.roundeven", [b.fmul(clamped, _f(1 / math.log(2)))])
    r = _call(b, "llvm.fma", [n_float, _f(-LN2_HI), clamped])
    r = _call(b, "llvm.fma", [n_float, _f(-LN2_LO), r])
    p = _horner(b, r, EXP_TAYLOR)
    n = b.fptosi(n_float, I32)
    half = b.ashr(n, _i(1))
    result = b.fmul(b.fmul(p, _pow2(b, half)), _pow2(b, b.sub(n, half)))
    return b.select(b.fcmp_unordered("uno", x, x), x, result)  # NaN stays NaN


def log_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    # Denormal inputs are scaled into the normal range first.
    tiny = b.fcmp_ordered("<", x, _f(1.1754943508222875e-38))
    scaled = b.select(tiny, b.fmul(x, _f(2.0 ** 23)), x)
    bits = b.bitcast(scaled, I32)
    exponent = b.sub(b.lshr(bits, _i(23)), _i(127))
    exponent = b.select(tiny, b.sub(exponent, _i(23)), exponent)
    m = b.bitcast(b.or_(b.and_(bits, _i(0x007FFFFF)), _i(0x3F800000)), F32)  # [1, 2)
    big = b.fcmp_ordered(">", m, _f(math.sqrt(2.0)))
    m = b.select(big, b.fmul(m, _f(0.5)), m)
    exponent = b.select(big, b.add(exponent, _i(1)), exponent)
    s = b.fdiv(b.fsub(m, _f(1.0)), b.fadd(m, _f(1.0)))
    s2 = b.fmul(s, s)
    series = _horner(b, s2, [2.0, 2 / 3, 2 / 5, 2 / 7, 2 / 9, 2 / 11])
    log_m = b.fmul(s, series)
    e = b.sitofp(exponent, F32)
    result = _call(b, "llvm.fma", [e, _f(LN2_HI), _call(b, "llvm.fma", [e, _f(LN2_LO), log_m])])
    # Special cases: log(0) = -inf, log(x<0) = nan, log(inf) = inf, log(nan) = nan.
    result = b.select(b.fcmp_ordered("==", x, _f(0.0)), _f(float("-inf")), result)
    result = b.select(b.fcmp_ordered("==", x, _f(float("inf"))), x, result)
    nan = _f(float("nan"))
    return b.select(b.fcmp_unordered("ult", x, _f(0.0)), nan, result)


# tanh(x) = x - x^3/3 + 2x^5/15 - 17x^7/315 + ...: the coefficients of x^(2i+1)
TANH_TAYLOR = [1.0, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925,
               21844 / 6081075, -929569 / 638512875]


def tanh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = _call(b, "llvm.fabs", [x])
    small = b.fmul(x, _horner(b, b.fmul(x, x), TANH_TAYLOR))
    # (1 - t^2) / (1 + t^2) with t = e^-|x|: the same e^-|x| that sigmoid and softplus use,
    # so a fusion computing several of them evaluates one exponential (LLVM merges them).
    t = exp_f32(b, b.fneg(ax))
    t2 = b.fmul(t, t)
    large = b.fdiv(b.fsub(_f(1.0), t2), b.fadd(_f(1.0), t2))
    large = _call(b, "llvm.copysign", [large, x])
    result = b.select(b.fcmp_ordered("<", ax, _f(0.55)), small, large)
    return b.select(b.fcmp_unordered("uno", x, x), x, result)
