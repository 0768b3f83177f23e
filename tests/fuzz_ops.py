"""The fuzzer's op table: a generator for each op type, and what the comparison must know
about each op (which round exactly, which jump). Array and indexing ops are in
fuzz_ops_array.py; fuzz_chains.py adds the generic elementwise generator and builds chains.

`GENERATORS[op_type](ch, prog, x)` applies the op to the chain's current value `x`, adding
leaves for its other operands, and returns the result (a `Var`), or None when `x` does not
fit (wrong rank, too many elements). Source generators make a value from nothing (x is None)
and so only start chains. A new op fails test_every_op_is_fuzzed until it gets a generator
(or an entry, with its reason, in IMPLICIT or EXCLUDED); elementwise ops get one for free.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import dtypes
from flowjit.graph.registry import OP_DEFS, TensorSpec
from flowjit.ops.shape_values import DYNAMIC_FORMS
from flowjit.graph.shape import TensorShape

from fuzz_program import ANY, LEAF_DTYPES, Chooser, Domain, Program, Var

# Ops no generator makes, because every program makes them anyway.
IMPLICIT = {
    "Const": "the constant leaves, and the numbers API calls convert",
    "Placeholder": "the fed leaves of every program",
    "Gradients": "the backward check of every float chain (tf.gradients)",
    "RngCounter": "the run-counter input every random op creates",
}
# Ops not fuzzed, with the reason.
EXCLUDED = {
    "NoOp": "computes nothing: there is no value to compare",
    "Fusion": "IR-only: the fusion pass makes it of the fuzzed ops in compiled programs",
}
# Host ops with effects or user code (ops/host.py), tested in test_host_ops.py: both
# backends run the same numpy kernel for them, and random inputs would only spam stderr
# (printing) or stop the chain (NaN checks, assertions).
EXCLUDED.update({
    "PyFunc": "calls the user's Python function (test_host_ops.py)",
    "PyFuncStateless": "calls the user's Python function (test_host_ops.py)",
    "Print": "prints to stderr (test_host_ops.py)",
    "PrintV2": "prints, and has no result to compare (test_host_ops.py)",
    "CheckNumerics": "fails on the NaN and infinities the fuzzer feeds (test_host_ops.py)",
    "Assert": "has no result to compare (test_host_ops.py)",
})
# Collectives (ops/collective.py) talk to the other processes of an MPI job: one numpy
# kernel on every backend; test_distributed.py runs them as 2 processes and as 1.
EXCLUDED.update({op: "an MPI collective, one numpy kernel (test_distributed.py)" for op in (
    "HorovodAllreduce", "HorovodAllgather", "HorovodBroadcast", "AllreduceStart",
    "AllreduceWait")})
# Control-flow ops run functions traced from Python (test_control_flow.py runs them on both
# backends); their regions hold the fuzzed ops.
EXCLUDED.update({
    "CustomGradient": "an identity autodiff removes (test_custom_gradient.py)",
    "If": "runs traced branch functions (test_control_flow.py)",
    "While": "runs traced loop functions (test_control_flow.py)",
})
# Summary ops (summary/ops.py) make serialized protos from their inputs with one numpy
# kernel on every backend; test_summary_ops.py reads what they make back with TensorBoard.
EXCLUDED.update({op: "a serialized Summary, one numpy kernel (test_summary_ops.py)" for op in (
    "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummaryV2", "TensorSummaryV2",
    "MergeSummary")})
# Ops given shapes as tensors are lowered to their static op (ops/shape_values.py): the IR,
# and so both backends, only ever see that op, which is fuzzed.
EXCLUDED.update({form: f"lowered to {DYNAMIC_FORMS[form].static}" for form in DYNAMIC_FORMS})

# Ops whose float results every backend rounds the same way (IEEE-exact arithmetic, data
# movement, max/min, or a numpy kernel on both sides): a chain of them is compared bit for
# bit, and ops that jump (DISCONTINUOUS) may follow it. Any other op (transcendentals,
# reassociated sums, matmul) may differ by a few ulps, so its results are compared within a
# tolerance and never fed to an op that jumps.
EXACT = {
    "Neg", "Abs", "Sign", "Reciprocal", "Square", "Sqrt", "Rsqrt", "Floor", "Ceil", "Round",
    "LogicalNot", "Add", "Sub", "Mul", "RealDiv", "FloorDiv", "FloorMod", "Maximum",
    "Minimum", "LogicalAnd", "LogicalOr", "Equal", "NotEqual", "Less", "LessEqual", "Greater",
    "GreaterEqual", "Cast", "Relu", "Relu6", "Select", "Identity", "StopGradient", "Reshape",
    "Transpose", "Squeeze", "ExpandDims", "ConcatV2", "Pack", "Unpack", "SplitV", "Tile",
    "Pad", "Shape", "Size", "Rank", "Where", "BroadcastTo", "PlaceholderWithDefault", "Range",
    "Fill", "ZerosLike", "OnesLike", "Slice", "StridedSlice", "StridedSliceGrad", "GatherV2",
    "OneHot", "UnsortedSegmentSum", "Max", "Min", "Any", "All", "ArgMax", "ArgMin", "AddN",
    "RandomStandardNormal", "TruncatedNormal", "RandomUniform", "RandomUniformInt",
    "RandomUniformLike", "VariableV2", "Assign", "AssignAdd", "AssignSub",
    "IsVariableInitialized", "ReportUninitializedVariables", "IndexUpdate",
}
# Ops whose result jumps where their float input crosses a threshold: one ulp of difference
# upstream can change them completely.
DISCONTINUOUS = {"Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual", "Floor",
                 "Ceil", "Round", "Sign", "FloorDiv", "FloorMod", "ArgMax", "ArgMin", "Where",
                 "AsString", "StringJoin", "InTopKV2", "TopKV2", "MaxPoolGrad"}
# Ops whose result depends only on their input's shape: constants at compile time.
SHAPE_ONLY = {"Shape", "Size", "Rank", "ZerosLike", "OnesLike"}
# Integer operands that must stay in a domain: nonzero divisors, non-negative exponents.
SECOND_OPERAND = {"FloorDiv": Domain("nonzero"), "FloorMod": Domain("nonzero"),
                  "Pow": Domain("exponent")}
# How often a generator is picked relative to the others (see weight()): elementwise ops,
# reductions and matmuls are where fusion and code generation do the most, and casts have
# 72 pairs of dtypes to cover.
WEIGHTS = {"MatMul": 25, "Sum": 4, "Mean": 3, "Max": 3, "Min": 3, "Prod": 3, "Any": 3,
           "All": 3, "ArgMax": 2, "ArgMin": 2, "Softmax": 3, "LogSoftmax": 2, "Cast": 8}
ELEMENTWISE_WEIGHT = 3


def weight(op_type: str) -> int:
    default = ELEMENTWISE_WEIGHT if OP_DEFS[op_type].elementwise else 1
    return WEIGHTS.get(op_type, default)


Build = Callable[[Chooser, Program, Optional[Var], str], Optional[Var]]


@dataclass(frozen=True)
class Generator:
    op_type: str
    build: Build
    source: bool = False    # makes a value from nothing (x is None): only starts a chain

    def __call__(self, ch: Chooser, prog: Program, x: Optional[Var]) -> Optional[Var]:
        return self.build(ch, prog, x, self.op_type)


GENERATORS: Dict[str, Generator] = {}


def generates(*op_types: str, source: bool = False):
    def register(fn: Build) -> Build:
        for op_type in op_types:
            GENERATORS[op_type] = Generator(op_type, fn, source)
        return fn
    return register


def emit(prog: Program, op_type: str, expr: str, inputs: Sequence[Var], outputs: int = 0,
         work: int = 0, differentiable: bool = True):
    constant = True if op_type in SHAPE_ONLY else None
    return prog.emit(expr, inputs, op_type, outputs, exact=op_type in EXACT, work=work,
                     constant=constant, differentiable=differentiable)


def size_of(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def literal(value) -> str:
    """Python source for a scalar attribute value (NaN and infinities included)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def scalar_for(ch: Chooser, dtype: dtypes.DType):
    if dtype.is_bool:
        return ch.chance(50)
    if dtype.is_floating:
        return ch.choice((0.0, 1.5, -2.0, 7.25, float("nan"), float("-inf")))
    return ch.choice((0, 1, 3, 5) if dtype is dtypes.uint8 else (0, 1, -3, 5))


# -- elementwise ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def arity(op_type: str) -> int:
    """How many operands an elementwise op takes, from its shape rule."""
    infer = OP_DEFS[op_type].infer
    for n in (1, 2, 3):
        for dtype in dtypes.ALL_DTYPES:
            try:
                infer([TensorSpec(dtype, TensorShape([2]))] * n)
                return n
            except Exception:
                continue
    raise AssertionError(f"no operand count fits the shape rule of {op_type}")


def partner_shape(ch: Chooser, shape: Tuple[int, ...], max_elements: int) -> Tuple[int, ...]:
    """A shape that broadcasts with `shape`: the same, a suffix with 1s (a bias), a scalar,
    or one that `shape` broadcasts to (its 1s replaced, dimensions added in front)."""
    kind = ch.integer(0, 9)
    if kind <= 3:
        return shape
    if kind <= 6:
        suffix = shape[len(shape) - ch.integer(0, len(shape)):]
        return tuple(1 if ch.chance(25) else d for d in suffix)
    if kind == 7:
        return ()
    grown = tuple(ch.dim(0) if d == 1 and ch.chance(70) else d for d in shape)
    grown = tuple(ch.dim(0, upto=9) for _ in range(ch.integer(0, max(0, 3 - len(shape))))) \
        + grown
    result = np.broadcast_shapes(grown, shape)
    return grown if size_of(result) <= max_elements else shape


def elementwise(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    """Any elementwise op: the chain's value with leaves of its dtype as other operands."""
    n = arity(op_type)
    if n == 1:
        return emit(prog, op_type, f"apply_op({op_type!r}, [{x}])", [x])
    domain = SECOND_OPERAND.get(op_type, ANY) if x.dtype.is_integer else ANY
    risky = domain is not ANY and not prog.allow_errors  # x might be a zero divisor
    if ch.chance(8) and not risky:
        operands = [x] * n
    else:
        others, shape = [], x.shape
        for _ in range(n - 1):
            others.append(prog.leaf(ch, x.dtype, partner_shape(ch, shape, prog.max_elements),
                                    domain))
            shape = np.broadcast_shapes(shape, others[-1].shape)
        at = ch.integer(0, n - 1) if ch.chance(25) and not risky else 0
        operands = others[:at] + [x] + others[at:]
    names = ", ".join(v.name for v in operands)
    return emit(prog, op_type, f"apply_op({op_type!r}, [{names}])", operands)


@generates("Select")
def select(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if len(x.shape) >= 2 and ch.chance(25):  # TF1's where: a rank-1 condition picks rows
        cond = prog.leaf(ch, dtypes.bool_, x.shape[:1])
        other = prog.leaf(ch, x.dtype, x.shape)
        return emit(prog, op_type, f"tf.where({cond}, {x}, {other})", [cond, x, other])
    other = prog.leaf(ch, x.dtype, partner_shape(ch, x.shape, prog.max_elements))
    both = np.broadcast_shapes(x.shape, other.shape)
    cond = prog.leaf(ch, dtypes.bool_, partner_shape(ch, both, prog.max_elements))
    a, b = (x, other) if ch.chance(50) else (other, x)
    return emit(prog, op_type, f"tf.where_v2({cond}, {a}, {b})", [cond, a, b])


def cast_bounds(source: dtypes.DType, target: dtypes.DType) -> Tuple[float, float]:
    """The range of `source` floats whose truncation fits `target` (float -> int casts
    outside it are undefined, in C as in numpy)."""
    info, big = np.iinfo(target.np_dtype), float(np.finfo(source.np_dtype).max)
    float_of = source.np_dtype.type
    with np.errstate(over="ignore"):
        lo, hi = float_of(max(float(info.min), -big)), float_of(min(float(info.max), big))
    if float(hi) > info.max:  # rounded up past the largest integer: one float lower
        hi = np.nextafter(hi, float_of(-np.inf))
    if float(lo) < info.min:
        lo = np.nextafter(lo, float_of(np.inf))
    return float(lo), float(hi)


@generates("Cast")
def cast(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    targets = [d for d in dtypes.ALL_DTYPES if d is not x.dtype
               and (d.is_floating or x.exact or not x.dtype.is_floating)]
    target = ch.choice(targets)
    if x.dtype.is_floating and target.is_integer and x.size:
        lo, hi = cast_bounds(x.dtype, target)
        x = emit(prog, "Minimum", f"tf.clip_by_value(tf.where_v2(tf.equal({x}, {x}), {x}, "
                                  f"tf.zeros_like({x})), {lo!r}, {hi!r})", [x])
    return emit(prog, op_type, f"tf.cast({x}, tf.{target.name})", [x])


# -- matmul, reductions -------------------------------------------------------------------------
@generates("MatMul")
def matmul(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if len(x.shape) < 2 or not x.static:
        return None
    ta, tb = ch.chance(30), ch.chance(30)
    batch = x.shape[:-2] if ch.chance(50) else ()
    x_is_a = ch.chance(75)
    rows, cols = x.shape[-2:]
    new = ch.dim(4)
    if x_is_a:
        m, k = (cols, rows) if ta else (rows, cols)
        n = new
        other = batch + ((n, k) if tb else (k, n))
    else:
        k, n = (cols, rows) if tb else (rows, cols)
        m = new
        other = batch + ((k, m) if ta else (m, k))
    if size_of(x.shape[:-2] + (m, n)) > prog.max_elements or size_of(other) > prog.max_elements:
        return None
    y = prog.leaf(ch, x.dtype, other)
    a, b = (x, y) if x_is_a else (y, x)
    flags = (", transpose_a=True" if ta else "") + (", transpose_b=True" if tb else "")
    return emit(prog, op_type, f"tf.matmul({a}, {b}{flags})", [a, b], work=k)


@generates("AddN")
def add_n(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    others = [prog.leaf(ch, x.dtype, x.shape) for _ in range(ch.integer(1, 3))]
    operands = ch.shuffled([x] + others)
    return emit(prog, op_type, f"tf.add_n([{', '.join(v.name for v in operands)}])", operands,
                work=len(operands))


REDUCE_API = {"Sum": "reduce_sum", "Mean": "reduce_mean", "Prod": "reduce_prod",
              "Max": "reduce_max", "Min": "reduce_min", "Any": "reduce_any",
              "All": "reduce_all"}


def random_axes(ch: Chooser, rank: int) -> List[int]:
    axes = [a for a in range(rank) if ch.chance(50)] or ([ch.integer(0, rank - 1)]
                                                        if rank and ch.chance(90) else [])
    return [a - rank if ch.chance(30) else a for a in axes]


@generates(*REDUCE_API)
def reduce(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    axes = None if rank == 0 or ch.chance(25) else random_axes(ch, rank)
    reduced = x.shape if axes is None else [x.shape[a] for a in axes]
    keep = ", keepdims=True" if ch.chance(40) else ""
    return emit(prog, op_type, f"tf.{REDUCE_API[op_type]}({x}, axis={axes}{keep})", [x],
                work=size_of(reduced))


@generates("ArgMax", "ArgMin")
def arg_reduce(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    if rank == 0:
        return None
    axis = ch.integer(-rank, rank - 1)
    if x.shape[axis] == 0 and not prog.allow_errors:
        return None
    out = ch.choice(("int64", "int32"))
    return emit(prog, op_type, f"tf.{op_type.lower()}({x}, axis={axis}, output_type=tf.{out})",
                [x])


# -- activations and softmax ----------------------------------------------------------------------
@generates("Softmax", "LogSoftmax")
def softmax(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    if rank == 0:
        return None
    axis = -1 if ch.chance(60) else ch.integer(-rank, rank - 1)
    api = "softmax" if op_type == "Softmax" else "log_softmax"
    return emit(prog, op_type, f"tf.nn.{api}({x}, axis={axis})", [x], work=x.shape[axis])


@generates("SoftmaxCrossEntropyWithLogits")
def softmax_xent(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if len(x.shape) == 0:
        return None
    labels = prog.leaf(ch, x.dtype, x.shape)
    work = x.shape[-1]
    if ch.chance(60):
        return emit(prog, op_type, f"tf.nn.softmax_cross_entropy_with_logits_v2("
                                   f"labels={labels}, logits={x})", [x, labels], work=work)
    outputs = emit(prog, op_type, f"apply_op({op_type!r}, [{x}, {labels}])", [x, labels],
                   outputs=2, work=work)
    return ch.choice(outputs)


@generates("SparseSoftmaxCrossEntropyWithLogits")
def sparse_softmax_xent(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if len(x.shape) == 0 or (x.shape[-1] == 0 and size_of(x.shape[:-1]) and
                             not prog.allow_errors):
        return None
    domain = Domain("index", x.shape[-1], bad=prog.allow_errors and ch.chance(10))
    labels = prog.leaf(ch, ch.choice((dtypes.int32, dtypes.int64)), x.shape[:-1], domain)
    return emit(prog, op_type, f"tf.nn.sparse_softmax_cross_entropy_with_logits("
                               f"labels={labels}, logits={x})", [x, labels], work=x.shape[-1])


# -- sources ------------------------------------------------------------------------------------
@generates("Range", source=True)
def range_(ch: Chooser, prog: Program, x: None, op_type: str) -> Var:
    dtype = ch.choice((dtypes.int32, dtypes.float32, dtypes.int64, dtypes.float64))
    n = ch.dim(5)
    if dtype.is_integer:
        start, delta = ch.integer(-5, 5), ch.choice((1, 2, -1, 3, -2))
        limit = start + n * delta - (ch.integer(0, abs(delta) - 1) if abs(delta) > 1 else 0)
    else:
        start, delta = ch.choice((0.0, -2.5, 1.25)), ch.choice((0.5, 1.0, -0.75, 0.25))
        limit = start + n * delta
    return emit(prog, op_type, f"tf.range({start}, {limit}, {delta}, dtype=tf.{dtype.name})",
                [])


@generates("Fill", source=True)
def fill(ch: Chooser, prog: Program, x: None, op_type: str) -> Var:
    value = prog.leaf(ch, ch.choice(LEAF_DTYPES), ())
    shape = ch.shape(prog.max_elements)
    return emit(prog, op_type, f"tf.fill({list(shape)}, {value})", [value])


RANDOM_API = {"RandomStandardNormal": "random_normal", "TruncatedNormal": "truncated_normal",
              "RandomUniform": "random_uniform"}


@generates(*RANDOM_API, source=True)
def random_float(ch: Chooser, prog: Program, x: None, op_type: str) -> Var:
    dtype = ch.choice((dtypes.float32, dtypes.float64, dtypes.float16))
    shape = ch.shape(prog.max_elements)
    scale = ", 1.5, 2.0" if ch.chance(30) else ""
    return emit(prog, op_type, f"tf.{RANDOM_API[op_type]}({list(shape)}{scale}, "
                               f"dtype=tf.{dtype.name}, seed={ch.integer(0, 99)})", [])


@generates("RandomUniformInt", source=True)
def random_int(ch: Chooser, prog: Program, x: None, op_type: str) -> Var:
    dtype = ch.choice((dtypes.int32, dtypes.int64, dtypes.uint8, dtypes.int8, dtypes.int16))
    info = np.iinfo(dtype.np_dtype)
    lo = max(int(info.min), ch.choice((0, -5, -100)))
    hi = min(int(info.max), lo + ch.choice((1, 10, 1000)))
    shape = ch.shape(prog.max_elements)
    return emit(prog, op_type, f"tf.random_uniform({list(shape)}, minval={lo}, maxval={hi}, "
                               f"dtype=tf.{dtype.name}, seed={ch.integer(0, 99)})", [])


@generates("RandomUniformLike")
def random_like(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if not x.static:
        return None
    return emit(prog, op_type, f"random_ops.random_uniform_like({x}, seed={ch.integer(0, 99)})",
                [x])


# -- state -----------------------------------------------------------------------------------
@generates("VariableV2", source=True)
def variable(ch: Chooser, prog: Program, x: None, op_type: str) -> Var:
    var = prog.leaf(ch, ch.choice(LEAF_DTYPES), ch.shape(prog.max_elements), kind="variable")
    return emit(prog, op_type, f"{var}.value()", [var])


@generates("Assign", "AssignAdd", "AssignSub")
def assign(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if not x.static:
        return None
    var = prog.leaf(ch, x.dtype, x.shape, kind="variable")
    api = {"Assign": "assign", "AssignAdd": "assign_add", "AssignSub": "assign_sub"}[op_type]
    return emit(prog, op_type, f"tf.{api}({var}, {x})", [var, x])


@generates("IsVariableInitialized", source=True)
def is_initialized(ch: Chooser, prog: Program, x: None, op_type: str) -> Var:
    var = prog.leaf(ch, ch.choice(LEAF_DTYPES), ch.shape(64), kind="variable")
    if ch.chance(50):
        prog.initialize.remove(var.name)
    return emit(prog, op_type, f"tf.is_variable_initialized({var})", [var])


@generates("ReportUninitializedVariables")
def report_uninitialized(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    if ch.chance(50):
        var = prog.leaf(ch, ch.choice(LEAF_DTYPES), (2,), kind="variable")
        prog.initialize.remove(var.name)
    return emit(prog, op_type, "tf.report_uninitialized_variables()", [])


@generates("AsString")
def as_string(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if x.dtype is dtypes.string:
        return None
    style = ch.choice(("", ", shortest=True", ", scientific=True, precision=3",
                       ", width=6, fill='0'"))
    return emit(prog, op_type, f"tf.as_string({x}{style})", [x], differentiable=False)


@generates("StringJoin")
def string_join(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    text = str(x) if x.dtype is dtypes.string else f"tf.as_string({x})"
    return emit(prog, op_type, f"tf.strings.join([{text}, {text}, 'end'], separator='-')",
                [x], differentiable=False)
