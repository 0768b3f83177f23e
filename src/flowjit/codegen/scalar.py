"""Scalar semantics of the elementwise IR ops in LLVM IR: one emitter per mnemonic.

`emit(builder, mnemonic, args, arg_dtypes, result_dtype, attrs)` returns the LLVM value of
one output element. Floating point follows numpy's results (NaN propagates through
maximum/minimum/relu), so compiled code matches the interpreter. An op whose emitter is
missing here (or that rejects a dtype) is not compiled: the executable runs its numpy kernel.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from llvmlite import ir

from flowjit import dtypes
from flowjit.codegen import vmath

FLOAT_TYPES = {dtypes.float32: ir.FloatType(), dtypes.float64: ir.DoubleType()}
INT_TYPES = {dtypes.int32: ir.IntType(32), dtypes.int64: ir.IntType(64),
             dtypes.int8: ir.IntType(8), dtypes.int16: ir.IntType(16),
             dtypes.uint8: ir.IntType(8)}
BOOL_STORAGE = ir.IntType(8)  # numpy stores bool as one byte


def llvm_type(dtype: dtypes.DType) -> ir.Type:
    """The in-register type of an element (bool is i1 in registers, i8 in memory)."""
    if dtype in FLOAT_TYPES:
        return FLOAT_TYPES[dtype]
    if dtype in INT_TYPES:
        return INT_TYPES[dtype]
    if dtype is dtypes.bool_:
        return ir.IntType(1)
    raise NotImplementedError(f"no LLVM type for {dtype.name}")


def storage_type(dtype: dtypes.DType) -> ir.Type:
    return BOOL_STORAGE if dtype is dtypes.bool_ else llvm_type(dtype)


def is_unsigned(dtype: dtypes.DType) -> bool:
    return dtype is dtypes.uint8 or dtype is dtypes.bool_


def icmp(b: ir.IRBuilder, predicate: str, x: ir.Value, y: ir.Value,
         dtype: dtypes.DType) -> ir.Value:
    """An integer comparison with the signedness of `dtype` (uint8 and bool are unsigned)."""
    if is_unsigned(dtype):
        return b.icmp_unsigned(predicate, x, y)
    return b.icmp_signed(predicate, x, y)


def float_extremum(b: ir.IRBuilder, predicate: str, x: ir.Value, y: ir.Value) -> ir.Value:
    """numpy's maximum (predicate '>') or minimum ('<'): a NaN operand is returned (x's
    first), and on a tie y is returned, so maximum(-0., 0.) is 0. exactly as in numpy."""
    pick_x = b.or_(b.fcmp_ordered(predicate, x, y), b.fcmp_unordered("uno", x, x))
    return b.select(pick_x, x, y)


def supported_dtype(dtype: dtypes.DType) -> bool:
    return dtype in FLOAT_TYPES or dtype in INT_TYPES or dtype is dtypes.bool_


class Ctx:
    """What an emitter needs: the builder, the module (for intrinsics) and the dtypes."""

    def __init__(self, builder: ir.IRBuilder, arg_dtypes, result_dtype, attrs) -> None:
        self.b = builder
        self.module = builder.module
        self.arg_dtypes = arg_dtypes
        self.dtype = result_dtype
        self.attrs = attrs

    @property
    def is_float(self) -> bool:
        return self.arg_dtypes[0] in FLOAT_TYPES

    def const(self, value, dtype: Optional[dtypes.DType] = None):
        dtype = dtype or self.arg_dtypes[0]
        return ir.Constant(llvm_type(dtype), value)

    def intrinsic(self, name: str, args: List[ir.Value]):
        return call_intrinsic(self.b, name, args)


def call_intrinsic(b: ir.IRBuilder, name: str, args: List[ir.Value]) -> ir.Value:
    """Calls an overloaded LLVM intrinsic on operands of one type (llvm.maximum.f32, ...)."""
    t = args[0].type
    fn = b.module.declare_intrinsic(name, [t], fnty=ir.FunctionType(t, [t] * len(args)))
    return b.call(fn, args)


Emitter = Callable[[Ctx, List[ir.Value]], ir.Value]
EMITTERS: Dict[str, Emitter] = {}
FLOAT_ONLY = set()


def emitter(*mnemonics: str, float_only: bool = False):
    def register(fn: Emitter) -> Emitter:
        for m in mnemonics:
            EMITTERS[m] = fn
            if float_only:
                FLOAT_ONLY.add(m)
        return fn
    return register


def can_emit(mnemonic: str, arg_dtypes, result_dtype) -> bool:
    if mnemonic not in EMITTERS or not all(supported_dtype(d) for d in arg_dtypes):
        return False
    if not supported_dtype(result_dtype):
        return False
    if mnemonic in FLOAT_ONLY and not (arg_dtypes and arg_dtypes[0] in FLOAT_TYPES):
        return False
    return True


def emit(builder: ir.IRBuilder, mnemonic: str, args, arg_dtypes, result_dtype,
         attrs: Dict[str, Any]) -> ir.Value:
    return EMITTERS[mnemonic](Ctx(builder, arg_dtypes, result_dtype, attrs), args)


# -- arithmetic -------------------------------------------------------------------------------
def _arith(float_op: str, int_op: str) -> Emitter:
    def fn(c: Ctx, a):
        return getattr(c.b, float_op if c.is_float else int_op)(a[0], a[1])
    return fn


emitter("add")(_arith("fadd", "add"))
emitter("sub")(_arith("fsub", "sub"))
emitter("mul")(_arith("fmul", "mul"))
emitter("div", float_only=True)(_arith("fdiv", "sdiv"))


@emitter("neg")
def _neg(c, a):
    return c.b.fneg(a[0]) if c.is_float else c.b.neg(a[0])


@emitter("abs")
def _abs(c, a):
    if c.is_float:
        return c.intrinsic("llvm.fabs", a)
    if is_unsigned(c.arg_dtypes[0]):
        return a[0]
    return c.b.select(c.b.icmp_signed("<", a[0], c.const(0)), c.b.neg(a[0]), a[0])


@emitter("square")
def _square(c, a):
    return c.b.fmul(a[0], a[0]) if c.is_float else c.b.mul(a[0], a[0])


def _extremum(predicate: str) -> Emitter:
    def fn(c: Ctx, a):
        if c.is_float:
            return float_extremum(c.b, predicate, a[0], a[1])
        return c.b.select(icmp(c.b, predicate, a[0], a[1], c.arg_dtypes[0]), a[0], a[1])
    return fn


EMITTERS["maximum"] = _extremum(">")
EMITTERS["minimum"] = _extremum("<")


@emitter("relu")
def _relu(c, a):
    return EMITTERS["maximum"](c, [a[0], c.const(0)])


@emitter("relu6")
def _relu6(c, a):
    low = EMITTERS["maximum"](c, [a[0], c.const(0)])
    return EMITTERS["minimum"](c, [low, c.const(6)])


@emitter("sign")
def _sign(c, a):
    x = a[0]
    if c.is_float:
        pos = c.b.uitofp(c.b.fcmp_ordered(">", x, c.const(0.0)), x.type)
        neg = c.b.uitofp(c.b.fcmp_ordered("<", x, c.const(0.0)), x.type)
        sign = c.b.fsub(pos, neg)
        is_nan = c.b.fcmp_unordered("uno", x, x)
        return c.b.select(is_nan, x, sign)
    pos = c.b.zext(icmp(c.b, "!=" if is_unsigned(c.arg_dtypes[0]) else ">", x, c.const(0),
                        c.arg_dtypes[0]), x.type)
    if is_unsigned(c.arg_dtypes[0]):
        return pos
    neg = c.b.zext(c.b.icmp_signed("<", x, c.const(0)), x.type)
    return c.b.sub(pos, neg)


@emitter("reciprocal", float_only=True)
def _reciprocal(c, a):
    return c.b.fdiv(c.const(1.0), a[0])


@emitter("rsqrt", float_only=True)
def _rsqrt(c, a):
    return c.b.fdiv(c.const(1.0), c.intrinsic("llvm.sqrt", a))


def _unary_intrinsic(name: str) -> Emitter:
    return lambda c, a: c.intrinsic(name, a)


for _mnemonic, _intrinsic in [("sqrt", "llvm.sqrt"), ("sin", "llvm.sin"), ("cos", "llvm.cos"),
                              ("floor", "llvm.floor"), ("ceil", "llvm.ceil")]:
    emitter(_mnemonic, float_only=True)(_unary_intrinsic(_intrinsic))


def exp(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Vectorizable for float32 (see vmath.py); LLVM's intrinsic for float64."""
    if isinstance(x.type, ir.FloatType):
        return vmath.exp_f32(b, x)
    return call_intrinsic(b, "llvm.exp", [x])


def log(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    if isinstance(x.type, ir.FloatType):
        return vmath.log_f32(b, x)
    return call_intrinsic(b, "llvm.log", [x])


def _exp(c: Ctx, x: ir.Value) -> ir.Value:
    return exp(c.b, x)


@emitter("exp", float_only=True)
def _exp_op(c, a):
    return _exp(c, a[0])


@emitter("log", float_only=True)
def _log(c, a):
    return log(c.b, a[0])


@emitter("round")
def _round(c, a):
    return c.intrinsic("llvm.roundeven", a) if c.is_float else a[0]


@emitter("pow", float_only=True)
def _pow(c, a):
    return c.intrinsic("llvm.pow", a)


@emitter("expm1", float_only=True)
def _expm1(c, a):
    return _libm(c, "expm1", a[0])


@emitter("log1p", float_only=True)
def _log1p(c, a):
    return _libm(c, "log1p", a[0])


@emitter("tanh", float_only=True)
def _tanh(c, a):
    if isinstance(a[0].type, ir.FloatType):
        return vmath.tanh_f32(c.b, a[0])
    return _libm(c, "tanh", a[0])


def _libm(c: Ctx, name: str, x: ir.Value) -> ir.Value:
    """A C math library call (single precision names end in 'f')."""
    symbol = name + ("f" if isinstance(x.type, ir.FloatType) else "")
    fn = c.module.globals.get(symbol)
    if fn is None:
        fn = ir.Function(c.module, ir.FunctionType(x.type, [x.type]), symbol)
    return c.b.call(fn, [x])


@emitter("sigmoid", float_only=True)
def _sigmoid(c, a):
    """1/(1+exp(-x)) for x >= 0, exp(x)/(1+exp(x)) otherwise: no overflow on either tail."""
    x = a[0]
    e = _exp(c, c.b.fneg(c.intrinsic("llvm.fabs", [x])))
    one = c.const(1.0)
    denominator = c.b.fadd(one, e)
    positive = c.b.fdiv(one, denominator)
    negative = c.b.fdiv(e, denominator)
    return c.b.select(c.b.fcmp_ordered(">=", x, c.const(0.0)), positive, negative)


@emitter("softplus", float_only=True)
def _softplus(c, a):
    x = a[0]
    e = _exp(c, c.b.fneg(c.intrinsic("llvm.fabs", [x])))
    return c.b.fadd(EMITTERS["maximum"](c, [x, c.const(0.0)]), _libm(c, "log1p", e))


@emitter("elu", float_only=True)
def _elu(c, a):
    x = a[0]  # x < 0 ? expm1(x) : x, so elu(-0.) is -0. (TF's kernel)
    negative = _libm(c, "expm1", EMITTERS["minimum"](c, [x, c.const(0.0)]))
    return c.b.select(c.b.fcmp_ordered("<", x, c.const(0.0)), negative, x)


# -- comparisons and logic ----------------------------------------------------------------------
_PREDICATES = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _compare(predicate: str) -> Emitter:
    def fn(c: Ctx, a):
        if c.is_float:
            if predicate == "!=":  # numpy: nan != x is True (unordered)
                return c.b.fcmp_unordered(predicate, a[0], a[1])
            return c.b.fcmp_ordered(predicate, a[0], a[1])
        return icmp(c.b, predicate, a[0], a[1], c.arg_dtypes[0])
    return fn


for _mnemonic, _predicate in _PREDICATES.items():
    EMITTERS[_mnemonic] = _compare(_predicate)

emitter("and")(lambda c, a: c.b.and_(a[0], a[1]))
emitter("or")(lambda c, a: c.b.or_(a[0], a[1]))
emitter("not")(lambda c, a: c.b.not_(a[0]))


@emitter("select")
def _select(c, a):
    return c.b.select(a[0], a[1], a[2])


@emitter("convert")
def _convert(c, a):
    source, target = c.arg_dtypes[0], c.dtype
    x = a[0]
    to = llvm_type(target)
    if source is target:
        return x
    if source in FLOAT_TYPES:
        if target in FLOAT_TYPES:
            return c.b.fptrunc(x, to) if to.intrinsic_name == "f32" else c.b.fpext(x, to)
        if target is dtypes.bool_:
            return c.b.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
        return _float_to_int(c.b, x, to)
    if source is dtypes.bool_:
        return c.b.uitofp(x, to) if target in FLOAT_TYPES else c.b.zext(x, to)
    signed = source is not dtypes.uint8
    if target in FLOAT_TYPES:
        return c.b.sitofp(x, to) if signed else c.b.uitofp(x, to)
    if target is dtypes.bool_:
        return c.b.icmp_signed("!=", x, ir.Constant(x.type, 0))
    if to.width > x.type.width:
        return c.b.sext(x, to) if signed else c.b.zext(x, to)
    if to.width < x.type.width:
        return c.b.trunc(x, to)
    return x



def _float_to_int(b: ir.IRBuilder, x: ir.Value, to: ir.IntType) -> ir.Value:
    """numpy's float -> integer astype on x86, with no undefined behaviour: truncate toward
    zero into a 32-bit integer (64-bit for int64), where a NaN or an out-of-range value
    becomes the minimum integer, then keep the low bits for narrower types, so
    200.0 -> uint8 is 200, -1.0 -> 255 and 300.0 -> 44. A bare `fptosi` to i8 is poison
    past 127 (the vectorized form saturates: 200.0 gave 127)."""
    wide = ir.IntType(max(to.width, 32))
    limit = ir.Constant(x.type, float(2 ** (wide.width - 1)))
    in_range = b.and_(b.fcmp_ordered("<", x, limit),
                      b.fcmp_ordered(">=", x, b.fneg(limit)))
    safe = b.select(in_range, x, ir.Constant(x.type, 0.0))  # fptosi of the rest is poison
    value = b.select(in_range, b.fptosi(safe, wide), ir.Constant(wide, -2 ** (wide.width - 1)))
    return b.trunc(value, to) if to.width < wide.width else value
